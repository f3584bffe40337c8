"""``wire.ollama_answer`` without sockets: chat answers and chat streams as Ollama's objects and
NDJSON lines, each line read back with the ``ollama`` client's own types; a property test that
the lines reassemble to the upstream's content and stop reason."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ollama import ChatResponse, GenerateResponse

from octoroute.config.schema import LimitsConfig
from octoroute.errors import BadUpstreamResponse, UpstreamProtocolError
from octoroute.wire.ollama import OllamaRequest, parse_chat_request, parse_generate_request
from octoroute.wire.ollama_answer import (
    DONE_REASONS,
    NativeStream,
    OllamaStream,
    Timing,
    answer_from_chat,
    embed_answer,
    embedding_answer,
    load_answer,
    shortened,
)
from tests.unit.test_wire_responses import chat_chunks, pieces_of

Json = dict[str, Any]


class Clock:
    """A fake monotonic clock in nanoseconds that moves 1 ms per reading."""

    def __init__(self) -> None:
        self.now = 1_000_000_000

    def __call__(self) -> int:
        self.now += 1_000_000
        return self.now


def timing() -> Timing:
    return Timing(1_000_000_000, Clock(), lambda: 1_780_000_000.25)


def chat_request(**extra: Any) -> OllamaRequest:
    body = {"model": "auto", "messages": [{"role": "user", "content": "q"}], **extra}
    return parse_chat_request(orjson.dumps(body), LimitsConfig())


def generate_request(**extra: Any) -> OllamaRequest:
    return parse_generate_request(
        orjson.dumps({"model": "auto", "prompt": "q", **extra}), LimitsConfig()
    )


def event(payload: Json) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def chunk(delta: Json, finish: str | None = None) -> bytes:
    return event({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


USAGE = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}


def lines_of(written: bytes) -> list[Json]:
    assert written.endswith(b"\n")
    return [orjson.loads(line) for line in written.split(b"\n")[:-1]]


# --- buffered answers -------------------------------------------------------------------------


def test_a_chat_completion_becomes_one_done_object() -> None:
    answer = {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": "It is sunny.",
                    "reasoning_content": "Check the tool first.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": USAGE,
    }
    whole = answer_from_chat(answer, chat_request(), timing())
    parsed = ChatResponse(**whole)

    assert parsed.model == "auto"
    assert parsed.created_at == "2026-05-28T20:26:40.250000Z"
    assert parsed.done is True
    assert parsed.done_reason == "stop"
    assert parsed.message.content == "It is sunny."
    assert parsed.message.thinking == "Check the tool first."
    (call,) = parsed.message.tool_calls or []
    assert call.function.name == "weather"
    assert call.function.arguments == {"city": "Paris"}
    assert whole["message"]["tool_calls"][0]["id"] == "call_1"
    assert (parsed.prompt_eval_count, parsed.eval_count) == (3, 5)
    assert parsed.total_duration == parsed.eval_duration == 1_000_000
    assert parsed.load_duration == 0


def test_a_legacy_completion_becomes_a_generate_object() -> None:
    answer = {"choices": [{"text": "def f(): pass", "finish_reason": "length"}], "usage": USAGE}
    parsed = GenerateResponse(**answer_from_chat(answer, generate_request(raw=True), timing()))
    assert parsed.response == "def f(): pass"
    assert parsed.done_reason == "length"


@pytest.mark.parametrize("answer", [[], {"choices": []}, {"choices": [{"index": 0}]}, "x"])
def test_an_answer_without_a_choice_is_a_value_error(answer: Any) -> None:
    with pytest.raises(ValueError, match=r"not a JSON object|no choices|no message"):
        answer_from_chat(answer, chat_request(), timing())


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("", {}),
        ('{"a": [1]}', {"a": [1]}),
        ("[1, 2]", {"_raw": "[1, 2]"}),
        ('{"a":', {"_raw": '{"a":'}),
    ],
)
def test_tool_arguments_are_objects_and_broken_ones_are_kept_whole(
    arguments: str, expected: Json
) -> None:
    answer = {
        "choices": [
            {
                "message": {
                    "content": None,
                    "tool_calls": [{"function": {"name": "f", "arguments": arguments}}],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    whole = answer_from_chat(answer, chat_request(), timing())
    assert whole["message"]["tool_calls"] == [
        {"function": {"index": 0, "name": "f", "arguments": expected}}
    ]
    assert whole["message"]["content"] == ""


def test_load_answers_say_load_or_unload() -> None:
    loaded = ChatResponse(**orjson.loads(load_answer(chat_request(messages=[]), timing())))
    assert (loaded.done, loaded.done_reason, loaded.message.content) == (True, "load", "")
    unloaded = orjson.loads(load_answer(generate_request(prompt="", keep_alive=0), timing()))
    assert GenerateResponse(**unloaded).done_reason == "unload"
    assert unloaded["response"] == ""


def test_embedding_answers_follow_the_index_order() -> None:
    answer = {
        "data": [{"index": 1, "embedding": [0.2]}, {"index": 0, "embedding": [0.1]}],
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    assert embed_answer(answer, "e", 99) == {
        "model": "e",
        "embeddings": [[0.1], [0.2]],
        "total_duration": 99,
        "load_duration": 0,
        "prompt_eval_count": 4,
    }
    assert embedding_answer(answer) == {"embedding": [0.1]}
    with pytest.raises(ValueError, match="no data array"):
        embed_answer({"data": [{"embedding": "base64"}]}, "e", 1)
    with pytest.raises(ValueError, match="no embedding"):
        embedding_answer({"data": []})


def test_dimensions_cut_each_vector_and_normalise_it_again_as_ollama_does() -> None:
    answer = {"data": [{"index": 0, "embedding": [3.0, 4.0, 12.0]}, {"embedding": [0.0, 0.0]}]}
    shortened_answer = embed_answer(answer, "e", 1, dimensions=2)
    assert shortened_answer["embeddings"] == [[0.6, 0.8], [0.0, 0.0]]
    assert shortened([1.0, 2.0], 5) == [1.0, 2.0]
    assert shortened([1.0, 2.0], None) == [1.0, 2.0]
    with pytest.raises(ValueError, match="other than numbers"):
        embed_answer({"data": [{"embedding": ["x", "y", "z"]}]}, "e", 1, dimensions=2)


# --- streams ----------------------------------------------------------------------------------


def test_a_stream_carries_thinking_text_then_the_done_line() -> None:
    translator = OllamaStream(chat_request(), timing())
    written = translator.translate(
        [
            chunk({"role": "assistant"}),
            chunk({"reasoning_content": "Hmm."}),
            chunk({"reasoning": "Still."}),
            chunk({"content": "Hi"}),
            b": keep-alive\n\n",
            chunk({}, "stop"),
            event({"choices": [], "usage": USAGE}),
            b"data: [DONE]\n\n",
        ]
    )
    written += translator.closing()
    lines = lines_of(written)
    parts = [ChatResponse(**line) for line in lines]

    assert [p.message.thinking for p in parts[:2]] == ["Hmm.", "Still."]
    assert parts[2].message.content == "Hi"
    last = parts[-1]
    assert (last.done, last.done_reason, last.prompt_eval_count, last.eval_count) == (
        True,
        "stop",
        3,
        5,
    )
    assert last.total_duration == last.prompt_eval_duration + last.eval_duration  # type: ignore[operator]
    assert translator.keepalive() == b""
    assert translator.opening() == b""
    assert translator.media_type == "application/x-ndjson"


def test_a_generate_stream_answers_with_response() -> None:
    translator = OllamaStream(generate_request(raw=True), timing())
    written = (
        translator.translate([event({"choices": [{"text": "abc", "finish_reason": None}]})])
        + translator.translate([event({"choices": [{"text": "", "finish_reason": "stop"}]})])
        + translator.closing()
    )
    parts = [GenerateResponse(**line) for line in lines_of(written)]
    assert [p.response for p in parts] == ["abc", ""]
    assert parts[-1].done is True


def test_an_upstream_error_chunk_ends_the_stream_with_an_error_line() -> None:
    translator = OllamaStream(chat_request(), timing())
    written = (
        translator.translate([chunk({"content": "Hel"}), event({"error": {"message": "boom"}})])
        + translator.closing()
    )
    assert lines_of(written)[-1] == {"error": "boom"}


def test_a_whole_json_answer_to_a_stream_request_gives_every_line() -> None:
    answer = {
        "choices": [{"message": {"content": "Hi"}, "finish_reason": "length"}],
        "usage": USAGE,
    }
    lines = lines_of(OllamaStream(chat_request(), timing()).whole(orjson.dumps(answer)))
    assert [line["message"]["content"] for line in lines] == ["Hi", ""]
    assert lines[-1]["done_reason"] == "length"
    with pytest.raises(BadUpstreamResponse):
        OllamaStream(chat_request(), timing()).whole(b"<html>")


@pytest.mark.parametrize("together", [True, False], ids=["one chunk", "consecutive chunks"])
def test_streamed_calls_without_index_are_told_apart_by_their_ids(together: bool) -> None:
    first = {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    second = {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": "[2]"}}
    calls = (
        [chunk({"tool_calls": [first, second]})]
        if together
        else [chunk({"tool_calls": [first]}), chunk({"tool_calls": [second]})]
    )
    translator = OllamaStream(chat_request(), timing())
    written = translator.translate([*calls, chunk({}, "tool_calls")]) + translator.closing()
    _, got, reason = reassemble(lines_of(written))
    assert got == [("f", {"a": 1}), ("g", {"_raw": "[2]"})]
    assert reason == "stop"


def test_a_stream_is_finished_by_finish_reason_or_done_and_cut_short_without_either() -> None:
    done = b"data: [DONE]\n\n"
    for ending in ([chunk({}, "stop")], [done], [chunk({}, "stop"), done]):
        translator = OllamaStream(chat_request(), timing())
        written = translator.translate([chunk({"content": "Hi."}), *ending])
        text, _, reason = reassemble(lines_of(written + translator.closing()))
        assert (text, reason) == ("Hi.", "stop")

    translator = OllamaStream(chat_request(), timing())
    translator.translate([chunk({"content": "Half an ans"})])
    with pytest.raises(UpstreamProtocolError, match="before the answer was complete"):
        translator.closing()


def test_a_native_stream_is_relayed_unchanged() -> None:
    native = NativeStream()
    lines = [b'{"message":{"content":"a"},"done":false}\n', b'{"done":true}\n']
    assert native.translate(lines) == b"".join(lines)
    assert native.opening() == native.closing() == native.keepalive() == b""
    assert native.whole(b'{"done":true}') == b'{"done":true}\n'
    failed = orjson.loads(native.failed(UpstreamProtocolError("reset")))
    assert "reset" in failed["error"]


# --- the property: lines reassemble to the upstream's answer -----------------------------------


def expected_arguments(arguments: str) -> Json:
    try:
        decoded = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return decoded if isinstance(decoded, dict) else {"_raw": arguments}


def reassemble(lines: list[Json]) -> tuple[str, list[tuple[str, Json]], str | None]:
    """Text, tool calls and stop reason from the lines alone, each read by the client's type."""
    parts = [ChatResponse(**line) for line in lines]
    text = "".join(part.message.content or "" for part in parts)
    calls = [
        (call.function.name, dict(call.function.arguments))
        for part in parts
        for call in part.message.tool_calls or []
    ]
    assert all(part.done is False for part in parts[:-1])
    return text, calls, parts[-1].done_reason if parts and parts[-1].done else None


ARGUMENTS = st.one_of(
    st.dictionaries(
        st.text(max_size=6),
        st.one_of(st.integers(min_value=-(2**53), max_value=2**53), st.text(max_size=8)),
        max_size=3,
    ).map(lambda value: orjson.dumps(value).decode()),
    st.text(max_size=20),  # what a small model may write instead of JSON
)


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(max_size=40),
    calls=st.lists(
        st.tuples(st.from_regex(r"[a-z_]{1,12}", fullmatch=True), ARGUMENTS), max_size=3
    ),
    finish=st.sampled_from(["stop", "length", "tool_calls", "content_filter"]),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=6),
    batch=st.integers(min_value=1, max_value=4),
    broken_at=st.none() | st.integers(min_value=0, max_value=30),
)
def test_the_lines_reassemble_to_the_upstreams_content_and_stop_reason(
    text: str,
    calls: list[tuple[str, str]],
    finish: str,
    cuts: list[int],
    batch: int,
    broken_at: int | None,
) -> None:
    request = chat_request()
    streamed = [(name, pieces_of(arguments, cuts)) for name, arguments in calls]
    events = chat_chunks(pieces_of(text, cuts), streamed, finish)
    expected_calls = [(name, expected_arguments(arguments)) for name, arguments in calls]
    expected = (text, expected_calls, DONE_REASONS[finish])

    translator = OllamaStream(request, timing())
    if broken_at is None or broken_at >= len(events):
        written = translator.opening()
        for start in range(0, len(events), batch):
            written += translator.translate(events[start : start + batch])
        written += translator.closing()
        assert reassemble(lines_of(written)) == expected
    else:
        # A break after the start: what came is whole lines, then Ollama's error line.
        written = translator.translate(events[:broken_at])
        written += translator.failed(UpstreamProtocolError("connection reset"))
        lines = lines_of(written)
        assert set(lines[-1]) == {"error"}
        got_text, _, done = reassemble(lines[:-1])
        assert text.startswith(got_text)
        assert done is None

    buffered = {
        "choices": [
            {
                "message": {
                    "content": text or None,
                    "tool_calls": [
                        {"id": f"c{i}", "function": {"name": n, "arguments": a}}
                        for i, (n, a) in enumerate(calls)
                    ],
                },
                "finish_reason": finish,
            }
        ],
        "usage": USAGE,
    }
    assert reassemble([answer_from_chat(buffered, request, timing())]) == expected
    whole = OllamaStream(request, timing()).whole(orjson.dumps(buffered))
    assert reassemble(lines_of(whole)) == expected


def test_a_refusal_is_the_answers_text_buffered_and_streamed() -> None:
    """Ollama has no refusal field: the model's refusal is what the client reads."""
    answer = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "refusal": "I can't."},
                "finish_reason": "stop",
            }
        ]
    }
    line = answer_from_chat(answer, chat_request(), timing())
    assert ChatResponse(**line).message.content == "I can't."

    translator = OllamaStream(chat_request(), timing())
    written = translator.translate(
        [chunk({"role": "assistant", "refusal": "I can't"}), chunk({"refusal": "."}, "stop")]
    )
    written += translator.closing()
    parts = [ChatResponse(**line) for line in lines_of(written)]
    assert "".join(part.message.content or "" for part in parts) == "I can't."
    assert parts[-1].done is True
