"""Chat answers as Messages answers without sockets: the ``message`` object (checked against the
anthropic SDK's ``Message``), stop reasons, usage, and ``MessagesStream``'s events."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from octoroute.config.schema import LimitsConfig
from octoroute.errors import BadUpstreamResponse, UpstreamProtocolError
from octoroute.wire.anthropic import MessagesRequest, parse_messages_request
from octoroute.wire.anthropic_answer import (
    MessagesStream,
    NativeMessagesStream,
    error_body,
    message_from_chat,
)
from tests.anthropic_events import MESSAGE, events_of, reassemble


def request(**fields: Any) -> MessagesRequest:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "hi"}],
        **fields,
    }
    return parse_messages_request(orjson.dumps(body), LimitsConfig())


def completion(
    content: str | None = "Hello.",
    *,
    finish_reason: Any = "stop",
    tool_calls: list[Any] | None = None,
    usage: Any = None,
    **choice: Any,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    answer: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, **choice}],
    }
    if usage is not None:
        answer["usage"] = usage
    return answer


def call(name: str, arguments: str, call_id: str = "call_1") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# --- the message object ------------------------------------------------------------------------


def test_a_text_answer_becomes_a_message_naming_the_requested_model() -> None:
    usage = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    message = message_from_chat(completion(usage=usage), request())

    MESSAGE.validate_python(message)
    assert message["id"].startswith("msg_")
    assert (message["type"], message["role"]) == ("message", "assistant")
    assert message["model"] == "claude-sonnet-4-5"
    assert message["content"] == [{"type": "text", "text": "Hello."}]
    assert (message["stop_reason"], message["stop_sequence"]) == ("end_turn", None)
    assert message["usage"] == {"input_tokens": 12, "output_tokens": 3}


def test_tool_calls_become_tool_use_blocks_with_parsed_input() -> None:
    answer = completion(
        "Checking.",
        finish_reason="tool_calls",
        tool_calls=[
            call("get_weather", '{"city": "Paris", "days": [1, 2]}'),
            call("noop", "", "call_2"),
        ],
    )
    message = message_from_chat(answer, request())

    MESSAGE.validate_python(message)
    assert message["content"] == [
        {"type": "text", "text": "Checking."},
        {
            "type": "tool_use",
            "id": "call_1",
            "name": "get_weather",
            "input": {"city": "Paris", "days": [1, 2]},
        },
        {"type": "tool_use", "id": "call_2", "name": "noop", "input": {}},
    ]
    assert message["stop_reason"] == "tool_use"


@pytest.mark.parametrize("arguments", ['{"city": "Par', "[1, 2]", "null", "not json"])
def test_arguments_that_are_not_a_json_object_are_kept_whole_under_raw(arguments: str) -> None:
    message = message_from_chat(completion(None, tool_calls=[call("f", arguments)]), request())
    assert message["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"_raw": arguments}}
    ]


def test_a_tool_call_without_an_id_gets_one() -> None:
    tool_call = {"type": "function", "function": {"name": "f", "arguments": "{}"}}
    (block,) = message_from_chat(completion(None, tool_calls=[tool_call]), request())["content"]
    assert block["id"].startswith("toolu_")


def test_an_empty_answer_has_no_content_blocks() -> None:
    message = message_from_chat(completion(""), request())
    MESSAGE.validate_python(message)
    assert message["content"] == []


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
        ("something_new", "end_turn"),
        (None, "end_turn"),
    ],
)
def test_finish_reasons_map_to_stop_reasons(finish_reason: Any, stop_reason: str) -> None:
    message = message_from_chat(completion(finish_reason=finish_reason), request())
    assert (message["stop_reason"], message["stop_sequence"]) == (stop_reason, None)


def test_a_stop_sequence_the_server_names_gives_stop_sequence() -> None:
    asked = request(stop_sequences=["###", "END"])
    matched = message_from_chat(completion(stop_reason="END"), asked)
    assert (matched["stop_reason"], matched["stop_sequence"]) == ("stop_sequence", "END")
    # vLLM's stop_reason is a token id when an EOS token stopped it, or a string not asked for.
    for other in (128009, "STOP", None):
        message = message_from_chat(completion(stop_reason=other), asked)
        assert (message["stop_reason"], message["stop_sequence"]) == ("end_turn", None)


@pytest.mark.parametrize(
    "usage",
    [None, "lots", {"prompt_tokens": "3"}, {}],
)
def test_missing_or_odd_usage_counts_zero(usage: Any) -> None:
    answer = completion()
    answer["usage"] = usage
    assert message_from_chat(answer, request())["usage"] == {"input_tokens": 0, "output_tokens": 0}


@pytest.mark.parametrize(
    "answer",
    [[], {"choices": []}, {"choices": ["x"]}, {"choices": [{"finish_reason": "stop"}]}],
)
def test_an_answer_that_is_not_a_chat_completion_is_a_value_error(answer: Any) -> None:
    with pytest.raises(ValueError, match=r"JSON object|choices|message"):
        message_from_chat(answer, request())


def test_the_error_envelope_is_anthropics() -> None:
    assert orjson.loads(error_body("overloaded_error", "busy")) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "busy"},
    }


THINKING_ON: Any = {"type": "adaptive"}


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_is_a_thinking_block_first_when_the_client_turned_thinking_on(
    field: str,
) -> None:
    answer = completion("42.")
    answer["choices"][0]["message"][field] = "Six times seven."
    on = message_from_chat(answer, request(thinking=THINKING_ON))
    assert on["content"] == [
        {"type": "thinking", "thinking": "Six times seven.", "signature": ""},
        {"type": "text", "text": "42."},
    ]
    MESSAGE.validate_python(on)
    for off in ({"type": "disabled"}, None):
        fields = {} if off is None else {"thinking": off}
        assert message_from_chat(answer, request(**fields))["content"] == [
            {"type": "text", "text": "42."}
        ]


# --- the stream translator ---------------------------------------------------------------------


def chunk(delta: dict[str, Any] | None = None, finish: Any = None, **extra: Any) -> bytes:
    choice: dict[str, Any] = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    body = {"object": "chat.completion.chunk", "choices": [choice], **extra}
    return b"data: " + orjson.dumps(body) + b"\n\n"


DONE = b"data: [DONE]\n\n"


def test_a_text_stream_becomes_one_text_block_between_start_and_stop() -> None:
    stream = MessagesStream(request())
    out = stream.opening()
    out += stream.translate([chunk({"role": "assistant", "content": ""})])
    out += stream.translate([chunk({"content": "Hel"}), chunk({"content": "lo."})])
    out += stream.translate([chunk(finish="stop")])
    usage = {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
    out += stream.translate([b"data: " + orjson.dumps({"choices": [], "usage": usage}) + b"\n\n"])
    out += stream.translate([DONE]) + stream.closing()

    events = events_of(out)
    assert [event["type"] for event in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[0]["message"]["model"] == "claude-sonnet-4-5"
    assert events[0]["message"]["id"].startswith("msg_")
    result = reassemble(events)
    assert result.blocks == [{"type": "text", "text": "Hello."}]
    assert (result.stop_reason, result.usage) == (
        "end_turn",
        {"input_tokens": 9, "output_tokens": 2},
    )


def test_streamed_reasoning_is_a_thinking_block_before_the_text_when_thinking_is_on() -> None:
    pieces = [
        chunk({"role": "assistant", "reasoning_content": "Six times"}),
        chunk({"reasoning_content": " seven."}),
        chunk({"content": "42."}),
        chunk({"reasoning": "Or is it?"}),
        chunk(finish="stop"),
    ]
    stream = MessagesStream(request(thinking={"type": "enabled", "budget_tokens": 1024}))
    out = stream.opening() + stream.translate(pieces) + stream.closing()
    assert reassemble(events_of(out)).blocks == [
        {"type": "thinking", "thinking": "Six times seven.", "signature": ""},
        {"type": "text", "text": "42."},
        {"type": "thinking", "thinking": "Or is it?", "signature": ""},
    ]
    quiet = MessagesStream(request())
    out = quiet.opening() + quiet.translate(pieces) + quiet.closing()
    assert reassemble(events_of(out)).blocks == [{"type": "text", "text": "42."}]


def test_tool_calls_become_blocks_of_their_own_each_input_one_json_object() -> None:
    stream = MessagesStream(request())
    first = {"index": 0, "id": "call_a", "function": {"name": "get_weather", "arguments": ""}}
    second = {"index": 1, "id": "call_b", "function": {"name": "noop", "arguments": "{}"}}
    out = stream.opening() + stream.translate(
        [
            chunk({"content": "Let me check."}),
            chunk({"tool_calls": [first]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]}),
            chunk({"tool_calls": [second]}),
            chunk(finish="tool_calls"),
            DONE,
        ]
    )
    out += stream.closing()

    result = reassemble(events_of(out))
    assert result.blocks == [
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "call_a", "name": "get_weather", "json": '{"city":"Paris"}'},
        {"type": "tool_use", "id": "call_b", "name": "noop", "json": "{}"},
    ]
    assert result.stop_reason == "tool_use"


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (["{bad"], {"_raw": "{bad"}),
        (["[1,", "2]"], {"_raw": "[1,2]"}),
        (['"just', ' text"'], {"_raw": '"just text"'}),
        (['{"city": "Pa', 'ris"', "}"], {"city": "Paris"}),
        ([], {}),
    ],
)
def test_streamed_tool_arguments_always_accumulate_to_a_json_object(
    pieces: list[str], expected: dict[str, Any]
) -> None:
    opening = {"index": 0, "id": "call_a", "function": {"name": "get_weather", "arguments": ""}}
    fragments = [{"index": 0, "function": {"arguments": piece}} for piece in pieces]
    stream = MessagesStream(request())
    out = stream.opening() + stream.translate(
        [chunk({"tool_calls": [opening]})]
        + [chunk({"tool_calls": [fragment]}) for fragment in fragments]
        + [chunk(finish="tool_calls"), DONE]
    )
    out += stream.closing()

    events = events_of(out)
    deltas = [event["delta"] for event in events if event["type"] == "content_block_delta"]
    assert deltas == [{"type": "input_json_delta", "partial_json": orjson.dumps(expected).decode()}]
    (block,) = reassemble(events).blocks
    assert orjson.loads(block["json"]) == expected


def test_tool_calls_are_held_until_the_answer_ends_and_pings_go_on_meanwhile() -> None:
    stream = MessagesStream(request())
    stream.opening()
    opening = {"index": 0, "id": "call_a", "function": {"name": "f", "arguments": '{"a":'}}
    assert stream.translate([chunk({"tool_calls": [opening]})]) == b""
    assert events_of(stream.keepalive()) == [{"type": "ping"}]
    rest = {"index": 0, "function": {"arguments": " 1}"}}
    assert stream.translate([chunk({"tool_calls": [rest]}), chunk(finish="tool_calls")]) == b""
    kinds = [event["type"] for event in events_of(stream.translate([DONE]) + stream.closing())]
    assert kinds == [
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


@pytest.mark.parametrize("together", [True, False], ids=["one chunk", "consecutive chunks"])
def test_streamed_calls_without_index_are_told_apart_by_their_ids(together: bool) -> None:
    first = {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    second = {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}}
    more = {"function": {"arguments": ""}}  # neither index nor id: the latest call goes on
    calls = (
        [chunk({"tool_calls": [first, second, more]})]
        if together
        else [
            chunk({"tool_calls": [first]}),
            chunk({"tool_calls": [second]}),
            chunk({"tool_calls": [more]}),
        ]
    )
    stream = MessagesStream(request())
    out = stream.opening() + stream.translate([*calls, chunk(finish="tool_calls"), DONE])
    out += stream.closing()

    assert reassemble(events_of(out)).blocks == [
        {"type": "tool_use", "id": "call_a", "name": "f", "json": '{"a":1}'},
        {"type": "tool_use", "id": "call_b", "name": "g", "json": "{}"},
    ]


def test_a_stream_is_finished_by_finish_reason_or_done_and_cut_short_without_either() -> None:
    for ending in ([chunk(finish="stop")], [DONE], [chunk(finish="stop"), DONE]):
        stream = MessagesStream(request())
        out = stream.opening() + stream.translate([chunk({"content": "Hi."}), *ending])
        result = reassemble(events_of(out + stream.closing()))
        assert result.stopped
        assert result.blocks == [{"type": "text", "text": "Hi."}]

    stream = MessagesStream(request())
    stream.opening()
    stream.translate([chunk({"content": "Half an ans"}), b": keep-alive\n\n"])
    with pytest.raises(UpstreamProtocolError, match="before the answer was complete"):
        stream.closing()


def test_a_stream_stopped_by_a_named_stop_sequence_says_so() -> None:
    stream = MessagesStream(request(stop_sequences=["###"]))
    out = stream.opening() + stream.translate(
        [chunk({"content": "a"}), chunk(finish="stop", stop_reason=None)]
    )
    out += stream.translate([chunk({}, "stop")]) + stream.closing()
    assert reassemble(events_of(out)).stop_reason == "end_turn"

    stream = MessagesStream(request(stop_sequences=["###"]))
    matched = {"index": 0, "delta": {}, "finish_reason": "stop", "stop_reason": "###"}
    event = b"data: " + orjson.dumps({"choices": [matched]}) + b"\n\n"
    out = stream.opening() + stream.translate([chunk({"content": "a"}), event]) + stream.closing()
    result = reassemble(events_of(out))
    assert (result.stop_reason, result.stop_sequence) == ("stop_sequence", "###")


def test_keepalive_is_a_ping_event_and_the_media_type_sse() -> None:
    stream = MessagesStream(request())
    assert stream.media_type == "text/event-stream"
    assert events_of(stream.keepalive()) == [{"type": "ping"}]


def test_comments_and_keepalives_from_upstream_give_no_events() -> None:
    stream = MessagesStream(request())
    opening = stream.opening()
    assert stream.translate([b": keep-alive\n\n", b": ping\n\n"]) == b""
    assert events_of(opening)[0]["type"] == "message_start"


def test_a_failure_after_the_start_ends_with_an_error_event_and_no_message_stop() -> None:
    stream = MessagesStream(request())
    out = stream.opening() + stream.translate([chunk({"content": "partial"})])
    out += stream.failed(UpstreamProtocolError("the upstream stream was cut short"))

    result = reassemble(events_of(out))
    assert result.blocks == [{"type": "text", "text": "partial"}]
    assert result.error is not None
    assert "cut short" in result.error
    assert not result.stopped
    assert events_of(out)[-1]["error"]["type"] == "api_error"


def test_an_error_chunk_from_upstream_ends_the_stream_with_an_error_event() -> None:
    stream = MessagesStream(request())
    failure = b'data: {"error": {"message": "model crashed", "type": "server_error"}}\n\n'
    out = stream.opening() + stream.translate([chunk({"content": "x"}), failure, DONE])
    out += stream.closing()

    result = reassemble(events_of(out))
    assert result.error == "model crashed"
    assert not result.stopped


def test_an_answer_that_came_whole_gives_the_whole_event_stream() -> None:
    answer = completion(
        "Done.",
        finish_reason="tool_calls",
        tool_calls=[call("f", '{"a": 1}')],
        usage={"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9},
    )
    out = MessagesStream(request()).whole(orjson.dumps(answer))

    result = reassemble(events_of(out))
    assert result.blocks == [
        {"type": "text", "text": "Done."},
        {"type": "tool_use", "id": "call_1", "name": "f", "json": '{"a":1}'},
    ]
    assert result.stopped
    assert (result.stop_reason, result.usage) == (
        "tool_use",
        {"input_tokens": 4, "output_tokens": 5},
    )


@pytest.mark.parametrize("answer", [b"<html>", b"{}", b'{"choices": []}', b"[1]"])
def test_a_whole_answer_that_is_not_a_chat_completion_is_a_bad_upstream_response(
    answer: bytes,
) -> None:
    with pytest.raises(BadUpstreamResponse, match="not a chat completion"):
        MessagesStream(request()).whole(answer)


def test_a_whole_answer_with_a_call_that_is_not_an_object_keeps_the_others() -> None:
    answer = {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        "junk",
                        {"id": "c1", "function": {"name": "f", "arguments": '{"a": 1}'}},
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    folded = reassemble(events_of(MessagesStream(request()).whole(orjson.dumps(answer))))
    assert folded.blocks == [{"type": "tool_use", "id": "c1", "name": "f", "json": '{"a":1}'}]
    assert folded.stop_reason == "tool_use"


# --- a native endpoint's stream ----------------------------------------------------------------


def test_a_native_stream_is_relayed_unchanged_with_anthropic_pings_and_errors() -> None:
    native = NativeMessagesStream()
    events = [b'event: ping\ndata: {"type": "ping"}\n\n', b"event: x\ndata: {}\n\n"]
    assert native.media_type == "text/event-stream"
    assert (native.opening(), native.closing()) == (b"", b"")
    assert native.translate(events) == b"".join(events)
    assert events_of(native.keepalive()) == [{"type": "ping"}]
    (error,) = events_of(native.failed(UpstreamProtocolError("cut short")))
    assert error == {"type": "error", "error": {"type": "api_error", "message": "cut short"}}


def test_a_native_message_that_came_whole_is_sent_as_its_events() -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "Hi."},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1]}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 4},
    }
    events = events_of(NativeMessagesStream().whole(orjson.dumps(message)))

    assert events[0]["message"]["id"] == "msg_1"
    assert [
        event["delta"]["type"] for event in events if event["type"] == "content_block_delta"
    ] == [
        "thinking_delta",
        "signature_delta",
        "text_delta",
        "input_json_delta",
    ]
    result = reassemble(events)
    assert result.blocks == [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": "Hi."},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "json": '{"a":[1]}'},
    ]
    assert result.stop_reason == "tool_use"
    assert result.usage == {"input_tokens": 3, "output_tokens": 4}


@pytest.mark.parametrize("answer", [b"nope", b"{}", b'{"type": "message"}', b"[]"])
def test_a_native_whole_answer_that_is_not_a_message_is_a_bad_upstream_response(
    answer: bytes,
) -> None:
    with pytest.raises(BadUpstreamResponse, match="not a message"):
        NativeMessagesStream().whole(answer)


# --- a refusal ---------------------------------------------------------------------------------


def test_a_refusal_is_text_with_stop_reason_refusal_buffered_streamed_and_whole() -> None:
    """Messages has no refusal field: the model's refusal must reach the client as its text,
    and the stop reason must say the model declined, not that it finished a turn."""
    refused = completion(None)
    refused["choices"][0]["message"]["refusal"] = "I can't help with that."
    message = message_from_chat(refused, request())
    assert message["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert message["stop_reason"] == "refusal"

    stream = MessagesStream(request())
    out = stream.opening()
    out += stream.translate([chunk({"role": "assistant", "refusal": "I can't"})])
    out += stream.translate([chunk({"refusal": " help."}), chunk(finish="stop"), DONE])
    out += stream.closing()
    result = reassemble(events_of(out))
    assert result.blocks == [{"type": "text", "text": "I can't help."}]
    assert result.stop_reason == "refusal"

    whole = MessagesStream(request()).whole(orjson.dumps(refused))
    assert reassemble(events_of(whole)).stop_reason == "refusal"
