"""SSE framing: events survive any read boundaries, payloads and usage are peeked correctly."""

from __future__ import annotations

import itertools
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from octoroute.errors import BadUpstreamResponse
from octoroute.wire import sse
from octoroute.wire.sse import (
    DONE_EVENT,
    KEEPALIVE_EVENT,
    SSESplitter,
    data_event,
    error_event,
    event_payload,
    is_done,
    usage_from_body,
    usage_from_event,
)


def feed_all(chunks: list[bytes]) -> tuple[list[bytes], bytes]:
    splitter = SSESplitter()
    events = [event for chunk in chunks for event in splitter.feed(chunk)]
    return events, splitter.pending


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cut % (len(data) + 1) for cut in cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def reference_events(stream: bytes) -> tuple[list[bytes], bytes]:
    """A line-by-line reading of the SSE rules, written for clarity rather than speed."""
    events: list[bytes] = []
    start = position = 0
    for match in re.finditer(rb"([^\r\n]*)(\r\n|\r|\n)", stream):
        if match.start() != position:
            break
        position = match.end()
        if match.group(2) == b"\r" and position == len(stream):
            break  # a final CR may still turn out to be half of a CRLF
        if not match.group(1):
            events.append(stream[start:position])
            start = position
    return events, stream[start:]


# ---- the splitter ---------------------------------------------------------------------------


def test_whole_events_in_one_read_are_returned_as_they_came() -> None:
    data = b'data: {"a":1}\n\ndata: {"b":2}\n\n' + DONE_EVENT
    assert feed_all([data]) == ([b'data: {"a":1}\n\n', b'data: {"b":2}\n\n', DONE_EVENT], b"")


def test_a_partial_event_is_held_until_it_completes() -> None:
    splitter = SSESplitter()
    assert splitter.feed(b"data: one\n\ndata: tw") == [b"data: one\n\n"]
    assert splitter.pending == b"data: tw"
    assert splitter.feed(b"o\n") == []
    assert splitter.pending == b"data: two\n"
    assert splitter.feed(b"\nda") == [b"data: two\n\n"]
    assert splitter.pending == b"da"


def test_empty_reads_change_nothing() -> None:
    splitter = SSESplitter()
    assert splitter.feed(b"") == []
    assert splitter.feed(b"data: x\n") == []
    assert splitter.feed(b"") == []
    assert splitter.feed(b"\n") == [b"data: x\n\n"]


@pytest.mark.parametrize(
    "event",
    [
        b"data: x\n\n",
        b"data: x\r\n\r\n",
        b"data: x\r\r\n",
        b"data: x\n\r\n",
        b"data: x\r\n\n",
        b"event: e\r\nid: 1\r\ndata: a\r\ndata: b\r\n\r\n",
    ],
)
def test_each_terminator_ends_an_event(event: bytes) -> None:
    assert feed_all([event + b"data: next"]) == ([event], b"data: next")


def test_a_final_cr_is_held_because_an_lf_may_follow() -> None:
    splitter = SSESplitter()
    assert splitter.feed(b"data: x\r\r") == []
    assert splitter.pending == b"data: x\r\r"
    assert splitter.feed(b"data: y\r\r") == [b"data: x\r\r"]
    assert splitter.feed(b"\n") == [b"data: y\r\r\n"]
    assert splitter.pending == b""


def test_a_crlf_split_between_reads_is_one_terminator() -> None:
    assert feed_all([b"data: x\r\n\r", b"\ndata: y\r\n\r\n"]) == (
        [b"data: x\r\n\r\n", b"data: y\r\n\r\n"],
        b"",
    )
    assert feed_all([b"data: x\r", b"\n\r", b"\n"]) == ([b"data: x\r\n\r\n"], b"")


def test_mixed_terminators_in_one_stream() -> None:
    stream = b"data: a\n\ndata: b\r\n\r\n: c\r\rdata: d\n\n"
    expected = [b"data: a\n\n", b"data: b\r\n\r\n", b": c\r\r", b"data: d\n\n"]
    assert feed_all([stream]) == (expected, b"")
    assert feed_all([bytes([byte]) for byte in stream]) == (expected, b"")


def test_a_stray_blank_line_is_an_event_of_its_own() -> None:
    assert feed_all([b"\ndata: a\n\n\n"]) == ([b"\n", b"data: a\n\n", b"\n"], b"")


def test_a_long_event_in_many_small_reads_is_assembled() -> None:
    event = b"data: " + b"x" * 100_000 + b"\n\n"
    chunks = [event[i : i + 7] for i in range(0, len(event), 7)]
    assert feed_all(chunks) == ([event], b"")


def test_events_are_bytes_whichever_path_produced_them() -> None:
    events, _ = feed_all([b"data: a", b"\n\ndata: b\r", b"\r\n\n"])
    assert events == [b"data: a\n\n", b"data: b\r\r\n", b"\n"]
    assert all(type(event) is bytes for event in events)


LINE_TEXT = st.text(
    st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]), min_size=1, max_size=30
).map(str.encode)
FIELD_LINE = st.one_of(
    st.builds(lambda text: b"data: " + text, LINE_TEXT),
    st.builds(lambda text: b"data:" + text, LINE_TEXT),
    st.builds(lambda text: b": " + text, LINE_TEXT),
    st.sampled_from([b"event: message", b"id: 7", b"retry: 100", b"data", b":"]),
)
TERMINATOR = st.sampled_from([b"\n", b"\r\n", b"\r"])


@st.composite
def sse_streams(draw: st.DrawFn) -> tuple[list[bytes], bytes]:
    """Events with every terminator mix, and a trailing partial event (maybe empty)."""
    events: list[bytes] = []
    last = b""
    for _ in range(draw(st.integers(0, 8))):
        event = b""
        for line in draw(st.lists(FIELD_LINE, max_size=4)):
            event += line + draw(TERMINATOR)
        blank = draw(TERMINATOR)
        if (event or last).endswith(b"\r") and blank == b"\n":
            blank = b"\r\n"  # a lone LF here would complete the CR before it as a CRLF
        event += blank
        events.append(event)
        last = event
    partial = draw(st.lists(FIELD_LINE, max_size=2).map(b"\n".join))
    return events, partial


@settings(max_examples=400, deadline=None)
@given(sse_streams(), st.lists(st.integers(0, 10_000), max_size=12))
def test_any_read_boundaries_give_back_exactly_the_original_events(
    case: tuple[list[bytes], bytes], cuts: list[int]
) -> None:
    events, partial = case
    stream = b"".join(events) + partial
    got, pending = feed_all(split_at(stream, cuts))
    if not partial and events and events[-1].endswith(b"\r"):
        # The last event ends in a CR that may yet become a CRLF: held as pending.
        assert (got, pending) == (events[:-1], events[-1])
    else:
        assert (got, pending) == (events, partial)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120), st.lists(st.integers(0, 10_000), max_size=12))
def test_arbitrary_bytes_split_like_the_sse_rules_at_any_boundaries(
    data: bytes, cuts: list[int]
) -> None:
    stream = data.replace(b"x", b"\n").replace(b"y", b"\r")  # plenty of line breaks
    got, pending = feed_all(split_at(stream, cuts))
    assert b"".join(got) + pending == stream
    assert (got, pending) == reference_events(stream)


# ---- payloads -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        (b'data: {"a":1}\n\n', b'{"a":1}'),
        (b"data:x\n\n", b"x"),
        (b"data:  two spaces\n\n", b" two spaces"),
        (b"data: a\ndata: b\n\n", b"a\nb"),
        (b"data: a\r\ndata: b\r\n\r\n", b"a\nb"),
        (b"data: a\rdata:\r\r", b"a\n"),
        (b"event: delta\nid: 3\ndata: x\n\n", b"x"),
        (b": comment\ndata: x\n\n", b"x"),
        (b"data\n\n", b""),
        (b"data: \n\n", b""),
        (b"\ndata: x\n\n", b"x"),
        (b"data: x", b"x"),
    ],
)
def test_event_payload_joins_the_data_lines(event: bytes, payload: bytes) -> None:
    assert event_payload(event) == payload


@pytest.mark.parametrize(
    "event", [KEEPALIVE_EVENT, b": ping\r\n\r\n", b"event: x\n\n", b"\n", b"datum: x\n\n", b""]
)
def test_events_without_data_have_no_payload(event: bytes) -> None:
    assert event_payload(event) is None


@pytest.mark.parametrize(
    "event",
    [DONE_EVENT, b"data:[DONE]\n\n", b"data: [DONE]\r\n\r\n", b"id: 9\ndata: [DONE]\n\n"],
)
def test_done_is_recognised_in_any_framing(event: bytes) -> None:
    assert is_done(event)


@pytest.mark.parametrize(
    "event",
    [b'data: {"content":"[DONE]"}\n\n', b": [DONE]\n\n", b"data: [DONE]x\n\n", b"data: x\n\n"],
)
def test_other_events_are_not_done(event: bytes) -> None:
    assert not is_done(event)


def test_data_event_frames_a_payload() -> None:
    assert data_event(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert event_payload(data_event(b'{"a":1}')) == b'{"a":1}'


@pytest.mark.parametrize("payload", [b"a\nb", b"a\r\nb\rc", b"a\n", b"\n", b""])
def test_data_event_round_trips_multi_line_payloads(payload: bytes) -> None:
    event = data_event(payload)
    assert feed_all([event]) == ([event], b"")
    assert event_payload(event) == payload.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def test_error_event_is_the_openai_envelope() -> None:
    event = error_event("upstream died", "api_error", "upstream_stream_interrupted")
    assert event.startswith(b"data: ")
    assert event.endswith(b"\n\n")
    payload = event_payload(event)
    assert payload is not None
    assert json.loads(payload) == {
        "error": {
            "message": "upstream died",
            "type": "api_error",
            "param": None,
            "code": "upstream_stream_interrupted",
        }
    }
    assert json.loads(event_payload(error_event("x", "t", None)) or b"")["error"]["code"] is None


def test_constants_are_single_events() -> None:
    for event in (DONE_EVENT, KEEPALIVE_EVENT):
        assert feed_all([event]) == ([event], b"")
    assert event_payload(DONE_EVENT) == b"[DONE]"


# ---- usage ----------------------------------------------------------------------------------

FINAL_CHUNK = (
    b'data: {"id":"c","object":"chat.completion.chunk","choices":[],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46,'
    b'"prompt_tokens_details":{"cached_tokens":0}}}\n\n'
)


def test_usage_is_read_from_the_final_chunk() -> None:
    assert usage_from_event(FINAL_CHUNK) == (12, 34)
    assert usage_from_event(FINAL_CHUNK.replace(b"\n\n", b"\r\n\r\n")) == (12, 34)


@pytest.mark.parametrize(
    "event",
    [
        b'data: {"choices":[{"delta":{"content":"x"}}],"usage":null}\n\n',
        b'data: {"choices":[{"delta":{"content":"\\"usage\\""}}]}\n\n',
        b'data: {"usage":{"prompt_tokens":1}}\n\n',
        b'data: {"usage":{"prompt_tokens":1,"completion_tokens":"2"}}\n\n',
        b'data: {"usage":{"prompt_tokens":true,"completion_tokens":2}}\n\n',
        b'data: {"usage":{"prompt_tokens":1.0,"completion_tokens":2}}\n\n',
        b'data: {"usage":{"prompt_tokens":-1,"completion_tokens":2}}\n\n',
        b'data: {"usage": [1, 2]}\n\n',
        b'data: ["usage"]\n\n',
        b'data: {"usage":\n\n',
        b': {"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\n',
        b'data: {"usage":{"prompt_tokens":1,"completion_tokens":2}} \xff\n\n',
        DONE_EVENT,
        KEEPALIVE_EVENT,
    ],
)
def test_events_without_valid_usage_give_none(event: bytes) -> None:
    assert usage_from_event(event) is None


def test_usage_is_read_from_a_json_answer() -> None:
    body = json.dumps(
        {
            "id": "x",
            "choices": [{"message": {"role": "assistant", "content": "hi"}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
        }
    ).encode()
    assert usage_from_body(body) == (5, 7)


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b'{"usage": null}', b'{"usage": {}}', b"[", b"[" * 100_000 + b'"usage"'],
)
def test_bodies_without_valid_usage_give_none(body: bytes) -> None:
    assert usage_from_body(body) is None


MESSAGE_START = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1",'
    b'"type":"message","content":[],"usage":{"input_tokens":25,"output_tokens":1,'
    b'"cache_creation_input_tokens":3,"cache_read_input_tokens":4}}}\n\n'
)
MESSAGE_DELTA = (
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
    b'"usage":{"output_tokens":15}}\n\n'
)


def test_anthropic_usage_is_read_from_message_start_and_message_delta() -> None:
    # input_tokens counts neither prompt-cache writes nor reads: the prompt is their sum.
    started = usage_from_event(MESSAGE_START)
    assert started == (32, 1)
    # message_delta's output_tokens is cumulative and its input_tokens optional: what it lacks
    # is kept from what came before.
    assert usage_from_event(MESSAGE_DELTA, started) == (32, 15)
    assert usage_from_event(MESSAGE_DELTA) == (0, 15)
    both = MESSAGE_DELTA.replace(b'"usage":{', b'"usage":{"input_tokens":40,')
    assert usage_from_event(both, started) == (40, 15)


def test_messages_and_responses_answers_give_their_usage() -> None:
    message = b'{"type":"message","content":[],"usage":{"input_tokens":3,"output_tokens":4}}'
    assert sse.answer_usage(message) == (3, 4)
    completed = (
        b'data: {"type":"response.completed","response":{"id":"resp_1","usage":'
        b'{"input_tokens":5,"input_tokens_details":{"cached_tokens":0},"output_tokens":6,'
        b'"total_tokens":11}}}\n\n'
    )
    assert usage_from_event(completed) == (5, 6)
    created = b'data: {"type":"response.created","response":{"id":"r","usage":null}}\n\n'
    assert usage_from_event(created) is None


@pytest.mark.parametrize(
    "body",
    [
        b'{"usage":{"input_tokens":-1,"output_tokens":2}}',
        b'{"usage":{"output_tokens":"2"}}',
        b'{"message":{"usage":{"output_tokens":true}}}',
        b'{"message":"a string with \\"usage\\" in it"}',
        b'{"message":{"usage":{"input_tokens":1}},"usage":{"prompt_tokens":1}}',
    ],
)
def test_odd_anthropic_usage_gives_none(body: bytes) -> None:
    assert usage_from_body(body) is None


# --- reading chat answers, for the dialect translators -------------------------------------------


def test_a_whole_answer_is_the_one_chunk_a_stream_would_have_carried() -> None:
    answer = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hi",
                    "reasoning_content": "hmm",
                    "tool_calls": [7, {"id": "c", "function": {"name": "f", "arguments": "{}"}}],
                },
                "finish_reason": "stop",
                "stop_reason": "###",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2},
    }
    chunk = sse.whole_chunk(json.dumps(answer).encode())
    (choice,) = chunk["choices"]
    assert choice["delta"]["content"] == "Hi"
    assert choice["delta"]["reasoning_content"] == "hmm"
    assert choice["delta"]["tool_calls"] == [
        {"id": "c", "function": {"name": "f", "arguments": "{}"}, "index": 1}
    ]
    assert (choice["finish_reason"], choice["stop_reason"]) == ("stop", "###")
    assert "message" not in choice
    assert chunk["usage"] == answer["usage"]
    assert sse.chunk_delta(chunk) == (choice, "Hi", choice["delta"]["tool_calls"])


@pytest.mark.parametrize("answer", [b"", b"<html>", b"{}", b'{"choices": [1]}', b"[]"])
def test_a_whole_answer_that_is_not_a_chat_completion_is_a_bad_upstream_response(
    answer: bytes,
) -> None:
    with pytest.raises(BadUpstreamResponse, match="not a chat completion"):
        sse.whole_chunk(answer)


def test_a_chunk_without_a_choice_has_no_delta_and_an_error_chunk_says_its_message() -> None:
    assert sse.chunk_delta({"choices": [], "usage": {}}) is None
    assert sse.chunk_delta({"choices": [{"finish_reason": "stop"}]}) == (
        {"finish_reason": "stop"},
        "",
        [],
    )
    assert sse.chunk_error({"error": {"message": "CUDA out of memory"}}) == "CUDA out of memory"
    assert sse.chunk_error({"error": "overloaded"}) == "overloaded"
    assert sse.chunk_error({"error": {"code": 1}}) == "the upstream stream failed"
    assert sse.chunk_error({"error": None, "choices": [{"delta": {}}]}) is None


def test_tool_arguments_become_an_object_and_broken_json_is_kept_whole() -> None:
    assert sse.tool_input('{"city": "Paris"}') == {"city": "Paris"}
    assert sse.tool_input("  ") == {}
    assert sse.tool_input('{"city": "Par') == {"_raw": '{"city": "Par'}
    assert sse.tool_input("[1]") == {"_raw": "[1]"}
    assert sse.token_counts({"prompt_tokens": 3, "completion_tokens": "x"}) == (3, 0)
    assert sse.token_counts(None) == (0, 0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_usage_extraction_never_raises(garbage: bytes) -> None:
    for data in (garbage, b'{"usage":' + garbage, b'data: {"usage":' + garbage + b"\n\n"):
        usage_from_body(data)
        usage_from_event(data)
        event_payload(data)
        is_done(data)


# --- checking a complete answer ---------------------------------------------------------------


def test_answer_usage_reads_usage_of_a_json_object() -> None:
    body = b'{"id":"x","usage":{"prompt_tokens":3,"completion_tokens":4}}'
    assert sse.answer_usage(body) == (3, 4)
    assert sse.answer_usage(b'{"id":"x"}') is None


@pytest.mark.parametrize(
    "body",
    [b'{"usage":{"prompt_tokens":-1,"completion_tokens":"x"}}', b'{"usage": null}', b"{}"],
)
def test_answer_usage_accepts_objects_with_odd_or_missing_usage(body: bytes) -> None:
    assert sse.answer_usage(body) is None


@pytest.mark.parametrize(
    "body",
    [b"", b"<html>502 Bad Gateway</html>", b"[1, 2]", b'"text"', b'{"id": "trunc', b"null"],
)
def test_answer_usage_rejects_what_is_not_a_json_object(body: bytes) -> None:
    with pytest.raises(ValueError, match="not"):
        sse.answer_usage(body)


def test_describe_body_is_short_and_printable() -> None:
    assert sse.describe_body(b"") == "an empty body"
    text = sse.describe_body(b"<html>\n<body>" + b"x" * 500)
    assert text.startswith("513 bytes starting '<html> <body>")
    assert text.endswith("...")
    assert len(text) < 120


def test_pending_size_counts_the_unfinished_event() -> None:
    splitter = sse.SSESplitter()
    splitter.feed(b"data: done\n\ndata: par")
    assert splitter.pending_size == len(b"data: par")
    splitter.feed(b"tial")
    assert splitter.pending_size == len(b"data: partial")
    splitter.feed(b"\n\n")
    assert splitter.pending_size == 0
