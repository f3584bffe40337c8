"""The Responses dialect without sockets: request translation, native bodies, the answer object,
the stream translator (checked against the openai SDK's own event types) and the store."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from octoroute.config.schema import EndpointConfig, LimitsConfig
from octoroute.enums import Pool
from octoroute.errors import BadUpstreamResponse, InvalidRequest, UpstreamProtocolError
from octoroute.wire.responses import ResponsesRequest, parse_responses_request
from octoroute.wire.responses_answer import NativeStream, ResponsesStream, response_from_chat
from octoroute.wire.responses_store import ResponseStore
from tests.endpoints import endpoint_config

CHAT = endpoint_config()
NATIVE = endpoint_config("native-model", native={"responses"}, index=1)
EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def parse(body: dict[str, Any], store: ResponseStore | None = None) -> ResponsesRequest:
    history = (store or ResponseStore(10)).get
    return parse_responses_request(orjson.dumps(body), LimitsConfig(), history, 1_700_000_000)


def chat_body(body: dict[str, Any]) -> dict[str, Any]:
    request = parse(body)
    assert request.path_for(CHAT) == "chat/completions"
    decoded: dict[str, Any] = orjson.loads(request.body_for(CHAT))
    return decoded


def test_a_string_input_becomes_one_user_message_with_the_endpoint_defaults() -> None:
    assert chat_body({"model": "fast", "input": "hi", "instructions": "Be brief."}) == {
        "model": "chat-model",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "max_tokens": 256,
        "temperature": 0.7,
    }


def test_items_become_chat_messages_tool_calls_and_tool_results() -> None:
    items = [
        {"role": "developer", "content": "rules"},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "low"},
            ],
        },
        {"role": "assistant", "content": [{"type": "output_text", "text": "calling"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": '{"a":1}'},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "reasoning", "summary": []},
    ]
    assert chat_body({"model": "m", "input": items})["messages"] == [
        {"role": "system", "content": "rules"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AA", "detail": "low"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": "calling",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "g", "arguments": '{"a":1}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
    ]


def test_settings_are_translated_to_their_chat_names() -> None:
    body = chat_body(
        {
            "model": "m",
            "input": "x",
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "f"},
            "parallel_tool_calls": False,
            "max_output_tokens": 9,
            "temperature": 0.1,
            "top_p": 0.5,
            "text": {"format": {"type": "json_schema", "name": "n", "schema": {}, "strict": True}},
            "reasoning": {"effort": "high"},
            "metadata": {"a": "b"},
            "store": False,
            "user": "u",
            "stream": True,
        }
    )
    assert body == {
        "model": "chat-model",
        "messages": [{"role": "user", "content": "x"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.1,
        "top_p": 0.5,
        "parallel_tool_calls": False,
        "user": "u",
        "max_tokens": 9,
        "tools": [
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        ],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "n", "schema": {}, "strict": True},
        },
    }
    assert chat_body({"model": "m", "input": "x", "text": {"format": {"type": "json_object"}}})[
        "response_format"
    ] == {"type": "json_object"}


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "file_search"}]}, "tools[0].type"),
        ({"tool_choice": {"type": "web_search"}}, "tool_choice"),
        ({"conversation": "c"}, "conversation"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file"}]}]},
            "input[0].content[0].type",
        ),
        ({"text": {"format": {"type": "text"}, "extra": 1}}, "text.extra"),
    ],
)
def test_what_has_no_chat_equivalent_is_refused_only_for_a_translated_scope(
    extra: dict[str, Any], param: str
) -> None:
    request = parse({"model": "m", "input": "x", **extra})
    request.check_scope([NATIVE])  # a native endpoint takes it as sent
    with pytest.raises(InvalidRequest) as caught:
        request.check_scope([NATIVE, CHAT])
    assert caught.value.param == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m"}, "input"),
        ({"model": "m", "input": 3}, "input"),
        ({"model": "m", "input": "x", "previous_response_id": "resp_nope"}, "previous_response_id"),
        ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "m", "input": "x", "temperature": 3}, "temperature"),
        ({"model": "m", "input": "x", "stream": "yes"}, "stream"),
        ({"input": "x"}, "model"),
    ],
)
def test_invalid_requests_are_refused_whatever_the_endpoint(
    body: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse(body)
    assert caught.value.param == param


def test_a_native_endpoint_gets_the_body_with_only_model_replaced() -> None:
    body = {"model": "fast", "input": "x", "reasoning": {"effort": "low"}, "vendor": [1]}
    request = parse(body)
    assert request.path_for(NATIVE) == "responses"
    assert orjson.loads(request.body_for(NATIVE)) == {**body, "model": "native-model"}


def test_a_continuation_is_spelled_out_for_both_kinds_of_endpoint() -> None:
    store = ResponseStore(10)
    first = parse({"model": "m", "input": "hi"}, store)
    response = response_from_chat(chat_answer("hello", [], "stop"), first)
    store.put(response["id"], first.input_items, response)
    second = parse({"model": "m", "input": "more", "previous_response_id": response["id"]}, store)

    native = orjson.loads(second.body_for(NATIVE))
    assert "previous_response_id" not in native
    assert [item["role"] for item in native["input"]] == ["user", "assistant", "user"]
    assert orjson.loads(second.body_for(CHAT))["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "more"},
    ]
    assert [m.role for m in second.messages] == ["user", "assistant", "user"]


def test_the_store_forgets_the_least_recently_used_and_may_keep_nothing() -> None:
    store = ResponseStore(2)
    for name in ("a", "b"):
        store.put(name, [], {"output": [{"n": name}]})
    assert store.get("a") == [{"n": "a"}]
    store.put("c", [], {"output": []})
    assert store.get("b") is None
    assert store.get("a") is not None
    empty = ResponseStore(0)
    empty.put("a", [], {"output": []})
    assert len(empty) == 0


# --- answers: the object and the events reassemble to the same content -----------------------


def chat_answer(text: str, calls: list[tuple[str, str]], finish: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = [
            {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate(calls)
        ]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
    }


def chat_chunks(
    text_pieces: list[str], calls: list[tuple[str, list[str]]], finish: str
) -> list[bytes]:
    def event(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return b"data: " + orjson.dumps({"choices": [choice]}) + b"\n\n"

    events = [event({"role": "assistant"})]
    events += [event({"content": piece}) for piece in text_pieces]
    for index, (name, pieces) in enumerate(calls):
        opening = {"index": index, "id": f"call_{index}", "type": "function"}
        events.append(
            event({"tool_calls": [{**opening, "function": {"name": name, "arguments": ""}}]})
        )
        events += [
            event({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            for piece in pieces
        ]
    events.append(event({}, finish))
    usage = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    events.append(b"data: " + orjson.dumps({"choices": [], "usage": usage}) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def content_of(response: dict[str, Any]) -> tuple[str, list[tuple[str, str]], str]:
    text = "".join(
        part["text"]
        for item in response["output"]
        if item["type"] == "message"
        for part in item["content"]
    )
    calls = [
        (i["name"], i["arguments"]) for i in response["output"] if i["type"] == "function_call"
    ]
    return text, calls, response["status"]


def replay(events: bytes) -> tuple[list[dict[str, Any]], str, list[tuple[str, str]]]:
    """Decode the events (each validated as the SDK's own type) and rebuild text and calls
    from the deltas alone."""
    decoded = []
    for block in events.split(b"\n\n")[:-1]:
        kind_line, data_line = block.split(b"\n")
        payload = orjson.loads(data_line.removeprefix(b"data: "))
        assert kind_line == b"event: " + payload["type"].encode()
        EVENT.validate_python(payload)
        decoded.append(payload)
    assert [e["sequence_number"] for e in decoded] == list(range(len(decoded)))
    text = "".join(e["delta"] for e in decoded if e["type"] == "response.output_text.delta")
    arguments: dict[int, str] = {}
    names: dict[int, str] = {}
    for e in decoded:
        if e["type"] == "response.output_item.added" and e["item"]["type"] == "function_call":
            names[e["output_index"]] = e["item"]["name"]
            arguments[e["output_index"]] = ""
        if e["type"] == "response.function_call_arguments.delta":
            arguments[e["output_index"]] += e["delta"]
    calls = [(names[i], arguments[i]) for i in sorted(names)]
    return decoded, text, calls


def pieces_of(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points) if text[a:b]]


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(max_size=40),
    calls=st.lists(
        st.tuples(st.from_regex(r"[a-z_]{1,12}", fullmatch=True), st.text(max_size=30)),
        max_size=3,
    ),
    finish=st.sampled_from(["stop", "length", "tool_calls"]),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=6),
)
def test_the_object_and_the_streamed_events_carry_the_same_answer(
    text: str, calls: list[tuple[str, str]], finish: str, cuts: list[int]
) -> None:
    request = parse({"model": "auto", "input": "q", "tools": [], "stream": True})
    whole = response_from_chat(chat_answer(text, calls, finish), request)
    Response.model_validate(whole)
    expected = (text, calls, "incomplete" if finish == "length" else "completed")
    assert content_of(whole) == expected
    assert whole["model"] == "auto"
    assert whole["usage"]["total_tokens"] == 8
    assert (whole["incomplete_details"] is not None) == (finish == "length")

    done: list[dict[str, Any]] = []
    translator = ResponsesStream(request, done.append)
    streamed = [(name, pieces_of(arguments, cuts)) for name, arguments in calls]
    events = chat_chunks(pieces_of(text, cuts), streamed, finish)
    written = translator.translate(events[:1]) + translator.opening()
    written += translator.translate(events[1:]) + translator.closing()
    decoded, delta_text, delta_calls = replay(written)

    assert decoded[0]["type"] == "response.created"
    last = decoded[-1]
    assert last["type"] == ("response.incomplete" if finish == "length" else "response.completed")
    assert (delta_text, delta_calls, last["response"]["status"]) == expected
    assert content_of(last["response"]) == expected
    assert done == [last["response"]]

    buffered = ResponsesStream(request).whole(orjson.dumps(chat_answer(text, calls, finish)))
    _, whole_text, whole_calls = replay(buffered)
    assert (whole_text, whole_calls) == expected[:2]


def test_a_stream_broken_midway_ends_with_response_failed() -> None:
    request = parse({"model": "m", "input": "q", "stream": True})
    translator = ResponsesStream(request)
    written = translator.opening() + translator.translate(chat_chunks(["Hel"], [], "stop")[:2])
    written += translator.failed(UpstreamProtocolError("connection reset"))
    decoded, text, _ = replay(written)
    assert text == "Hel"
    assert decoded[-1]["type"] == "response.failed"
    assert decoded[-1]["response"]["error"]["message"] == "connection reset"


def test_an_error_event_from_the_upstream_fails_the_response() -> None:
    request = parse({"model": "m", "input": "q", "stream": True})
    translator = ResponsesStream(request)
    error = b'data: {"error": {"message": "boom", "type": "server_error"}}\n\n'
    written = translator.translate([error]) + translator.closing()
    decoded, _, _ = replay(written)
    assert decoded[-1]["type"] == "response.failed"
    assert decoded[-1]["response"]["error"]["message"] == "boom"


def test_a_native_stream_is_relayed_unchanged_and_its_final_response_remembered() -> None:
    done: list[dict[str, Any]] = []
    native = NativeStream(done.append)
    completed = b'event: response.completed\ndata: {"type":"response.completed","response":{"id":"r1","output":[]}}\n\n'
    events = [b'event: response.created\ndata: {"type":"response.created"}\n\n', completed]
    assert native.opening() + native.translate(events) + native.closing() == b"".join(events)
    assert done == [{"id": "r1", "output": []}]


def test_interleaved_parallel_call_deltas_still_give_one_item_after_another() -> None:
    stream = ResponsesStream(parse({"model": "m", "input": "hi"}))
    chunks = [
        {
            "choices": [
                {
                    "delta": {
                        "tool_calls": [
                            {"index": 0, "id": "c0", "function": {"name": "a", "arguments": '{"x"'}}
                        ]
                    }
                }
            ]
        },
        {
            "choices": [
                {
                    "delta": {
                        "tool_calls": [
                            {"index": 1, "id": "c1", "function": {"name": "b", "arguments": '{"y"'}}
                        ]
                    }
                }
            ]
        },
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 1, "function": {"arguments": ": 2}"}}]}}]},
        {"choices": [{"delta": {}, "finish_reason": "tool_calls"}]},
    ]
    events = [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks]

    raw = stream.opening() + stream.translate(events) + stream.closing()

    decoded, _, from_deltas = replay(raw)
    items = [
        (e["type"], e["output_index"])
        for e in decoded
        if e["type"].startswith("response.output_item")
    ]
    assert items == [
        ("response.output_item.added", 0),
        ("response.output_item.done", 0),
        ("response.output_item.added", 1),
        ("response.output_item.done", 1),
    ]
    # every event a client may act on carries the call's whole arguments, not the part that
    # had arrived when the next call began
    whole = [("a", '{"x": 1}'), ("b", '{"y": 2}')]
    assert from_deltas == whole
    arguments_done = [
        (e["name"], e["arguments"])
        for e in decoded
        if e["type"] == "response.function_call_arguments.done"
    ]
    items_done = [
        (e["item"]["name"], e["item"]["arguments"])
        for e in decoded
        if e["type"] == "response.output_item.done"
    ]
    assert arguments_done == items_done == whole
    final = decoded[-1]["response"]["output"]
    assert [(item["name"], item["arguments"]) for item in final] == [
        ("a", '{"x": 1}'),
        ("b", '{"y": 2}'),
    ]


def test_a_native_server_that_ignored_stream_gets_the_full_event_sequence() -> None:
    chat_like = response_from_chat(
        chat_answer("Hello there", [("get_weather", '{"city":"Paris"}')], "tool_calls"),
        parse({"model": "m", "input": "hi"}),
    )

    raw = NativeStream().whole(orjson.dumps(chat_like))

    decoded, text, calls = replay(raw)
    kinds = [e["type"] for e in decoded]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert text == "Hello there"
    assert calls == [("get_weather", '{"city":"Paris"}')]
    assert "response.output_text.done" in kinds
    assert "response.function_call_arguments.done" in kinds


def test_a_broken_native_stream_ends_with_response_failed_carrying_what_came() -> None:
    native = NativeStream()
    created = b'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"r9","object":"response","status":"in_progress","output":[]}}\n\n'
    native.translate([created])

    ending = native.failed(UpstreamProtocolError("x: response body cut short", endpoint="x"))

    payload = orjson.loads(ending.split(b"data: ", 1)[1])
    assert payload["type"] == "response.failed"
    assert payload["sequence_number"] == 1
    assert payload["response"]["id"] == "r9"
    assert payload["response"]["status"] == "failed"
    assert payload["response"]["error"]["code"] == "server_error"


def test_strip_stream_options_applies_to_the_translated_chat_body() -> None:
    stripping = EndpointConfig(
        pool=Pool.FAST, index=2, name="old", base_url="http://z/v1", max_tokens=8,
        compat=frozenset({"strip_stream_options"}),
    )  # fmt: skip
    request = parse({"model": "m", "input": "hi", "stream": True})
    assert "stream_options" in orjson.loads(request.body_for(CHAT))
    assert "stream_options" not in orjson.loads(request.body_for(stripping))


def test_a_repeated_key_inside_an_input_item_is_refused() -> None:
    raw = b'{"model":"m","input":[{"role":"user","content":"' + b"x" * 50 + b'","content":"hi"}]}'
    with pytest.raises(InvalidRequest) as caught:
        parse_responses_request(raw, LimitsConfig(), ResponseStore(1).get, 0)
    assert caught.value.param == "input[0].content"


@pytest.mark.parametrize("body", [b'{"error": "overloaded"}', b"[1, 2]", b"not json"])
def test_a_whole_answer_the_translators_cannot_read_is_a_bad_upstream_response(
    body: bytes,
) -> None:
    with pytest.raises(BadUpstreamResponse):
        ResponsesStream(parse({"model": "m", "input": "hi"})).whole(body)
    with pytest.raises(BadUpstreamResponse):
        NativeStream().whole(b"[1, 2]" if body == b'{"error": "overloaded"}' else body)


# --- refusals, calls without index, a stream cut short ------------------------------------------


def refusal_answer(content: str | None) -> dict[str, Any]:
    answer = chat_answer("", [], "stop")
    answer["choices"][0]["message"].update(content=content, refusal="I can't help with that.")
    return answer


def test_a_refusal_is_a_refusal_part_of_the_message_item() -> None:
    request = parse({"model": "m", "input": "q"})
    refused = response_from_chat(refusal_answer(None), request)
    Response.model_validate(refused)
    assert refused["status"] == "completed"
    (item,) = refused["output"]
    assert item["content"] == [{"type": "refusal", "refusal": "I can't help with that."}]

    both = response_from_chat(refusal_answer("Well,"), request)
    Response.model_validate(both)
    assert [part["type"] for part in both["output"][0]["content"]] == ["output_text", "refusal"]


def test_a_streamed_refusal_gives_refusal_events_and_part() -> None:
    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return b"data: " + orjson.dumps({"choices": [choice]}) + b"\n\n"

    request = parse({"model": "m", "input": "q", "stream": True})
    done: list[dict[str, Any]] = []
    stream = ResponsesStream(request, done.append)
    written = stream.opening() + stream.translate(
        [
            event({"role": "assistant", "content": "Well, "}),
            event({"refusal": "I can't"}),
            event({"refusal": " help."}),
            event({}, "stop"),
            b"data: [DONE]\n\n",
        ]
    )
    written += stream.closing()

    decoded, text, _ = replay(written)
    assert text == "Well, "
    kinds = [e["type"] for e in decoded]
    assert kinds[2:-1] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.content_part.added",
        "response.refusal.delta",
        "response.refusal.delta",
        "response.refusal.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    refusal_done = next(e for e in decoded if e["type"] == "response.refusal.done")
    assert (refusal_done["content_index"], refusal_done["refusal"]) == (1, "I can't help.")
    final = decoded[-1]["response"]
    Response.model_validate(final)
    assert final["output"][0]["content"][1] == {"type": "refusal", "refusal": "I can't help."}
    assert done == [final]

    whole = ResponsesStream(request).whole(orjson.dumps(refusal_answer(None)))
    decoded, _, _ = replay(whole)
    refusal_events = [e["type"] for e in decoded if "refusal" in e["type"]]
    assert refusal_events == ["response.refusal.delta", "response.refusal.done"]
    assert decoded[-1]["response"]["output"][0]["content"] == [
        {"type": "refusal", "refusal": "I can't help with that."}
    ]


def test_a_native_response_with_a_refusal_that_came_whole_gives_refusal_events() -> None:
    refused = response_from_chat(refusal_answer(None), parse({"model": "m", "input": "q"}))
    decoded, text, _ = replay(NativeStream().whole(orjson.dumps(refused)))
    assert text == ""
    done = next(e for e in decoded if e["type"] == "response.refusal.done")
    assert done["refusal"] == "I can't help with that."


def test_streamed_calls_without_index_are_told_apart_by_their_ids() -> None:
    first = {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    second = {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}}
    chunks = [
        {"choices": [{"index": 0, "delta": {"tool_calls": [first, second]}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    ]
    stream = ResponsesStream(parse({"model": "m", "input": "hi"}))
    events = [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks]
    decoded, _, calls = replay(stream.opening() + stream.translate(events) + stream.closing())
    assert calls == [("f", '{"a":1}'), ("g", "{}")]
    final = decoded[-1]["response"]["output"]
    assert [(item["call_id"], item["arguments"]) for item in final] == [
        ("call_a", '{"a":1}'),
        ("call_b", "{}"),
    ]


def test_a_stream_is_finished_by_finish_reason_or_done_and_cut_short_without_either() -> None:
    request = parse({"model": "m", "input": "q", "stream": True})
    events = chat_chunks(["Hel", "lo"], [], "stop")  # ..., finish, usage, [DONE]
    for kept in (events, events[:-1], [*events[:3], events[-1]]):
        stream = ResponsesStream(request)
        decoded, text, _ = replay(stream.opening() + stream.translate(kept) + stream.closing())
        assert (decoded[-1]["type"], text) == ("response.completed", "Hello")

    stream = ResponsesStream(request)
    stream.opening()
    stream.translate(events[:3])
    with pytest.raises(UpstreamProtocolError, match="before the answer was complete"):
        stream.closing()
