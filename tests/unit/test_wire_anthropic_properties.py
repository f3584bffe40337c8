"""Properties of the Messages translation of answers: for random upstream chat answers (text,
tool calls whose JSON arguments arrive split across chunks, several and interleaved calls, with
or without ``index``, arguments that are not a JSON object, a length cut, a failure mid-stream),
the Anthropic events a client reassembles hold the upstream's content and stop reason, however
the upstream's events are batched; every call's streamed input is a JSON object; and a stream
agrees with the buffered ``message`` for the same answer."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from octoroute.config.schema import LimitsConfig
from octoroute.errors import UpstreamProtocolError
from octoroute.wire.anthropic import MessagesRequest, parse_messages_request
from octoroute.wire.anthropic_answer import MessagesStream, message_from_chat
from tests.anthropic_events import events_of, reassemble

STOP = "<END>"
REQUEST: MessagesRequest = parse_messages_request(
    orjson.dumps(
        {
            "model": "claude-sonnet-4-5",
            "max_tokens": 64,
            "stop_sequences": [STOP],
            "messages": [{"role": "user", "content": "go"}],
        }
    ),
    LimitsConfig(),
)
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
arguments = st.one_of(
    st.dictionaries(st.text(max_size=6), json_values, max_size=4).map(
        lambda value: orjson.dumps(value).decode()
    ),
    json_values.map(lambda value: orjson.dumps(value).decode()),  # a list, a number, ...
    st.text(max_size=12),  # broken JSON, as small models write it
)
texts = st.text(min_size=1, max_size=30)


@dataclass
class Call:
    id: str
    name: str
    arguments: str


@dataclass
class Answer:
    """An upstream answer: content items in order, how it finished, its usage."""

    items: list[str | Call]
    finish: str
    matched: str | None
    usage: tuple[int, int]


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    count = draw(st.integers(0, 5))
    items: list[str | Call] = []
    for number in range(count):
        if draw(st.booleans()):
            items.append(draw(texts))
        else:
            name = draw(st.sampled_from(["get_weather", "Bash", "Read", "noop"]))
            items.append(Call(f"call_{number}", name, draw(arguments)))
    has_calls = any(isinstance(item, Call) for item in items)
    finish = draw(st.sampled_from(["stop", "length"] + (["tool_calls"] * 2 if has_calls else [])))
    if finish == "length" and items:
        # Cut short by max_tokens: the last text or the last call's JSON ends early.
        last = items[-1]
        if isinstance(last, str):
            items[-1] = last[: draw(st.integers(1, len(last)))]
        else:
            last.arguments = last.arguments[: draw(st.integers(0, len(last.arguments)))]
    matched = draw(st.sampled_from([None, STOP, "other"])) if finish == "stop" else None
    usage = (draw(st.integers(0, 5000)), draw(st.integers(0, 5000)))
    return Answer(items, finish, matched, usage)


def pieces(data: st.DataObject, text: str) -> list[str]:
    """``text`` cut at random places (JSON arguments split across chunks)."""
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=4)))
    cuts = [cut for cut in cuts if 0 < cut < len(text)]
    bounds = [0, *cuts, len(text)]
    return [text[start:end] for start, end in itertools.pairwise(bounds)]


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish, **extra}
    return b"data: " + orjson.dumps({"choices": [choice]}) + b"\n\n"


def upstream_events(data: st.DataObject, answer: Answer) -> list[bytes]:
    """The chat stream a server would send for ``answer``: text in pieces, each call opened with
    its id and name then its arguments in pieces; consecutive calls may be interleaved. Some
    servers leave ``index`` out: each fragment then names its call by ``id``."""
    indexless = data.draw(st.booleans())
    events = [chunk({"role": "assistant", "content": ""})]
    position = 0
    run: list[list[bytes]] = []

    def flush() -> None:
        # Interleave the fragments of consecutive calls, each call's own order kept; calls open
        # in index order, as servers number them.
        opened = 0
        while any(run):
            ready = [index for index in range(min(opened + 1, len(run))) if run[index]]
            index = data.draw(st.sampled_from(ready))
            if index == opened:
                opened += 1
            events.append(run[index].pop(0))
        run.clear()

    for item in answer.items:
        if isinstance(item, str):
            flush()
            events.extend(chunk({"content": piece}) for piece in pieces(data, item))
            continue
        fragments = pieces(data, item.arguments) or [""]
        name: dict[str, Any] = {"id": item.id} if indexless else {"index": position}
        opening = {"index": position, "id": item.id, "type": "function"}
        if indexless:
            del opening["index"]
        opening["function"] = {"name": item.name, "arguments": fragments[0]}
        queue = [chunk({"tool_calls": [opening]})]
        queue += [
            chunk({"tool_calls": [{**name, "function": {"arguments": fragment}}]})
            for fragment in fragments[1:]
        ]
        run.append(queue)
        position += 1
        if not data.draw(st.booleans()):
            flush()
    flush()
    extra = {} if answer.matched is None else {"stop_reason": answer.matched}
    events.append(chunk({}, answer.finish, **extra))
    prompt, completion = answer.usage
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    events.append(b"data: " + orjson.dumps({"choices": [], "usage": usage}) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def batches(data: st.DataObject, events: list[bytes]) -> list[list[bytes]]:
    """The events as the relay hands them over: several per read, or one."""
    out: list[list[bytes]] = []
    index = 0
    while index < len(events):
        size = data.draw(st.integers(1, 4))
        out.append(events[index : index + size])
        index += size
    return out


def expected_blocks(items: list[str | Call]) -> list[dict[str, Any]]:
    """The blocks a client should hold: the text in one block, then a block per call (written
    when the answer ends) whose input is the arguments' object, or ``_raw``."""
    text = "".join(item for item in items if isinstance(item, str))
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    blocks += [
        {"type": "tool_use", "id": item.id, "name": item.name, "input": tool_input(item.arguments)}
        for item in items
        if isinstance(item, Call)
    ]
    return blocks


def parsed(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reassembled blocks with each call's ``json`` parsed to its ``input``, as the SDK does."""
    return [
        {key: value for key, value in block.items() if key != "json"}
        | ({"input": orjson.loads(block["json"])} if block["type"] == "tool_use" else {})
        for block in blocks
    ]


def tool_input(arguments: str) -> Any:
    """The ``input`` a client gets for these arguments, as ``message_from_chat`` documents it:
    the JSON object, ``{}`` for none (or only whitespace), else the text whole under ``_raw``."""
    if not arguments.strip():
        return {}
    try:
        decoded = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return decoded if isinstance(decoded, dict) else {"_raw": arguments}


def expected_stop(answer: Answer) -> tuple[str, str | None]:
    if answer.matched == STOP:
        return "stop_sequence", STOP
    return STOP_REASONS[answer.finish], None


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_streamed_events_reassemble_to_the_upstreams_answer(data: st.DataObject) -> None:
    answer = data.draw(answers())
    events = upstream_events(data, answer)
    stream = MessagesStream(REQUEST)
    out = stream.opening()
    for batch in batches(data, events):
        out += stream.translate(batch)
    out += stream.closing()

    result = reassemble(events_of(out))
    assert parsed(result.blocks) == expected_blocks(answer.items)
    assert (result.stop_reason, result.stop_sequence) == expected_stop(answer)
    assert result.usage == {"input_tokens": answer.usage[0], "output_tokens": answer.usage[1]}
    assert result.stopped


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_a_failure_mid_stream_ends_with_an_error_event_after_what_was_sent(
    data: st.DataObject,
) -> None:
    answer = data.draw(answers())
    events = upstream_events(data, answer)
    cut = data.draw(st.integers(1, len(events) - 3))  # before the finish chunk
    stream = MessagesStream(REQUEST)
    out = stream.opening()
    for batch in batches(data, events[:cut]):
        out += stream.translate(batch)
    out += stream.failed(UpstreamProtocolError("the upstream closed the connection mid-stream"))

    result = reassemble(events_of(out))
    assert result.error is not None
    assert "mid-stream" in result.error
    assert not result.stopped
    assert result.stop_reason is None
    # What did arrive is a prefix of the text; calls are written only when the answer ends.
    whole = expected_blocks(answer.items)
    assert len(result.blocks) <= 1
    for got in result.blocks:
        assert got["type"] == "text"
        assert whole[0]["text"].startswith(got["text"])


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_stream_and_the_buffered_message_agree(data: st.DataObject) -> None:
    answer = data.draw(answers())
    text = "".join(item for item in answer.items if isinstance(item, str))
    calls = [item for item in answer.items if isinstance(item, Call)]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls
        ]
    choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": answer.finish}
    if answer.matched is not None:
        choice["stop_reason"] = answer.matched
    chat = {"choices": [choice], "usage": {"prompt_tokens": 1, "completion_tokens": 2}}

    buffered = message_from_chat(chat, REQUEST)
    streamed = reassemble(events_of(MessagesStream(REQUEST).whole(orjson.dumps(chat))))

    assert parsed(streamed.blocks) == buffered["content"]
    assert (streamed.stop_reason, streamed.stop_sequence) == (
        buffered["stop_reason"],
        buffered["stop_sequence"],
    )
    assert streamed.usage == buffered["usage"]
