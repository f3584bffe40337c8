"""Chat-completions peeking: every bound at its edges, precise params, byte-faithful forwarding."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from octoroute.config.schema import LimitsConfig
from octoroute.errors import InvalidRequest, UnsupportedMediaType
from octoroute.wire.media import check_json_content_type
from octoroute.wire.requests import ChatRequest, parse_chat_request, render_upstream_body

LIMITS = LimitsConfig()
USER_HI: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]


def encode(obj: object) -> bytes:
    return json.dumps(obj).encode()


def chat(**fields: Any) -> bytes:
    """A valid body with ``fields`` added or overriding ``model``/``messages``."""
    return encode({"model": "auto", "messages": USER_HI, **fields})


def parse(body: bytes, limits: LimitsConfig = LIMITS) -> ChatRequest:
    return parse_chat_request(body, limits)


def rejection(body: bytes, limits: LimitsConfig = LIMITS) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(body, limits)
    return caught.value


def render(
    request: ChatRequest,
    model: str = "qwen",
    max_tokens: int | None = None,
    temperature: float | None = None,
) -> bytes:
    return render_upstream_body(
        request, model=model, default_max_tokens=max_tokens, default_temperature=temperature
    )


# ---- the body as a whole -------------------------------------------------------------------


def test_minimal_body_is_peeked() -> None:
    request = parse(b'{"model": "Auto", "messages": [{"role": "user", "content": "hello"}]}')
    assert request.model == "Auto"
    assert request.stream is False
    assert [(m.role, m.text()) for m in request.messages] == [("user", "hello")]
    assert list(request.fields) == ["model", "messages"]
    assert request.content_chars == 5
    assert not request.sets_max_tokens
    assert not request.sets_temperature


@pytest.mark.parametrize("body", [b"", b"   \n"])
def test_empty_body_is_rejected_as_empty(body: bytes) -> None:
    error = rejection(body)
    assert error.status == 400
    assert error.param is None
    assert "empty" in error.message


def test_malformed_json_names_the_position() -> None:
    error = rejection(b'{"model": "auto",\n "messages": [}')
    assert error.param is None
    assert error.message.startswith("Request body is not valid JSON: ")
    assert "(at byte 32, line 2 column 15)" in error.message


def test_truncated_json_says_so() -> None:
    error = rejection(b'{"model": "auto", "messages": [')
    assert "ends before the JSON value is complete" in error.message


def test_unpaired_surrogate_escape_is_rejected_with_a_hint() -> None:
    error = rejection(chat(x="PLACEHOLDER").replace(b'"PLACEHOLDER"', b'"\\ud800x"'))
    assert "surrogate" in error.message


def test_trailing_garbage_is_rejected() -> None:
    assert "trailing characters" in rejection(chat() + b" x").message


@pytest.mark.parametrize(
    ("body", "kind"),
    [(b"[1, 2]", "an array"), (b'"auto"', "a string"), (b"null", "null"), (b"12", "a number")],
)
def test_non_object_body_is_rejected_with_its_type(body: bytes, kind: str) -> None:
    error = rejection(body)
    assert error.message == f"Request body must be a JSON object, got {kind}"


def test_invalid_utf8_anywhere_is_rejected_with_its_offset() -> None:
    # Inside a field we never decode: the raw bytes would otherwise be forwarded as they are.
    body = b'{"model": "auto", "messages": [{"role": "user"}], "user": "\xff"}'
    offset = body.index(b"\xff")
    error = rejection(body)
    assert error.message.startswith("Request body is not valid UTF-8")
    assert f"(at byte {offset})" in error.message


def test_valid_non_ascii_is_accepted() -> None:
    raw = '{"model": "auto", "messages": [{"role": "user", "content": "héllo 日本 😀"}]}'
    request = parse(raw.encode())
    assert request.messages[0].text() == "héllo 日本 😀"
    assert request.content_chars == 10


def test_deeply_nested_json_is_a_client_error() -> None:
    body = chat(tools="PLACEHOLDER").replace(b'"PLACEHOLDER"', b"[" * 100_000 + b"]" * 100_000)
    assert "nested too deeply" in rejection(body).message


def test_deeply_nested_message_is_a_client_error() -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    body = b'{"model": "m", "messages": [{"role": "user", "tool_calls": ' + nested + b"}]}"
    # Either the top-level pass or the messages pass gives up first; both are a 400.
    assert "nested too deeply" in rejection(body).message


def test_a_repeated_key_the_router_does_not_read_keeps_the_last_value_in_the_first_place() -> None:
    # Keys the router reads may not repeat at all (tests/unit/test_wire_duplicates.py).
    request = parse(b'{"user": "a", "model": "m", "messages": [{"role": "user"}], "user": "b"}')
    assert bytes(request.fields["user"]) == b'"b"'
    assert render(request, "x") == b'{"user":"b","model":"x","messages":[{"role": "user"}]}'


# ---- model ----------------------------------------------------------------------------------


def test_missing_model_is_rejected() -> None:
    error = rejection(encode({"messages": USER_HI}))
    assert (error.param, error.message) == ("model", "model is required")


@pytest.mark.parametrize("model", ["", "   ", 5, None, ["auto"], True])
def test_model_must_be_a_non_blank_string(model: object) -> None:
    error = rejection(chat(model=model))
    assert error.param == "model"
    assert error.message.startswith("model must be a non-empty string, got ")


def test_model_is_kept_exactly_as_sent() -> None:
    assert parse(chat(model=" Deep ")).model == " Deep "


# ---- messages -------------------------------------------------------------------------------


def test_missing_messages_is_rejected() -> None:
    error = rejection(encode({"model": "auto"}))
    assert (error.param, error.message) == ("messages", "messages is required")


def test_zero_messages_are_rejected() -> None:
    error = rejection(chat(messages=[]))
    assert error.param == "messages"
    assert "at least one" in error.message


def test_message_count_at_the_limit_is_accepted_and_one_more_rejected() -> None:
    limits = LimitsConfig(max_messages=3)
    assert len(parse(chat(messages=USER_HI * 3), limits).messages) == 3
    error = rejection(chat(messages=USER_HI * 4), limits)
    assert error.param == "messages"
    assert "4 messages" in error.message
    assert "limit of 3" in error.message
    assert "[limits].max_messages" in error.message


def test_default_message_limit_is_inclusive() -> None:
    assert len(parse(chat(messages=USER_HI * LIMITS.max_messages)).messages) == 2048
    assert rejection(chat(messages=USER_HI * (LIMITS.max_messages + 1))).param == "messages"


def test_content_chars_at_the_limit_split_across_messages_are_accepted() -> None:
    limits = LimitsConfig(max_content_chars=10)
    # Code points, not bytes or UTF-16 units: "é" is 2 bytes, "😀" 4 bytes and 2 UTF-16 units.
    messages = [{"role": "system", "content": "abcde"}, {"role": "user", "content": "é😀xyz"}]
    assert parse(chat(messages=messages), limits).content_chars == 10


def test_content_chars_over_the_limit_are_rejected_with_the_count() -> None:
    limits = LimitsConfig(max_content_chars=10)
    messages = [{"role": "system", "content": "abcde"}, {"role": "user", "content": "é😀xyz!"}]
    error = rejection(chat(messages=messages), limits)
    assert error.param == "messages"
    assert "11 characters" in error.message
    assert "limit of 10" in error.message
    assert "[limits].max_content_chars" in error.message


def test_content_part_arrays_count_their_text_parts_only() -> None:
    parts = [
        {"type": "text", "text": "abc"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 1000}},
        {"type": "text", "text": "de"},
    ]
    request = parse(chat(messages=[{"role": "user", "content": parts}]))
    # As Message.text() joins them: "abc\nde".
    assert request.content_chars == len("abc\nde") == 6
    limits = LimitsConfig(max_content_chars=5)
    assert rejection(chat(messages=[{"role": "user", "content": parts}]), limits).param == (
        "messages"
    )


@pytest.mark.parametrize("role", ["system", "developer", "user", "assistant", "tool", "function"])
def test_every_role_is_accepted(role: str) -> None:
    assert parse(chat(messages=[{"role": role, "content": "x"}])).messages[0].role == role


def test_empty_null_and_missing_content_are_accepted() -> None:
    messages = [
        {"role": "system", "content": ""},
        {"role": "user", "content": "   "},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
        {"role": "tool", "tool_call_id": "c1", "content": []},
        {"role": "assistant"},
    ]
    assert parse(chat(messages=messages)).content_chars == 3


@pytest.mark.parametrize(
    ("messages", "param", "message"),
    [
        ({}, "messages", "messages must be an array of message objects, got an object"),
        ("hi", "messages", "messages must be an array of message objects, got a string"),
        ([USER_HI[0], "hi"], "messages[1]", "must be a message object with a string role"),
        ([{"content": "x"}], "messages[0].role", "messages[0].role is required"),
        ([{"role": None}], "messages[0].role", "messages[0].role must be a string, got null"),
        (
            [USER_HI[0], {"role": "user", "content": 5}],
            "messages[1].content",
            "must be a string, an array of content parts, or null, got a number",
        ),
        (
            [{"role": "user", "content": {"text": "x"}}],
            "messages[0].content",
            "got an object",
        ),
        (
            [{"role": "user", "content": [{"type": "text", "text": "a"}, "b"]}],
            "messages[0].content[1]",
            "must be a content-part object, got a string",
        ),
        (
            [{"role": "user", "content": [{"type": "text", "text": 3}]}],
            "messages[0].content[0].text",
            "must be a string or null, got a number",
        ),
        (
            [{"role": "user", "content": [{"type": 1}]}],
            "messages[0].content[0].type",
            "must be a string, got a number",
        ),
    ],
)
def test_malformed_messages_name_the_exact_param(
    messages: object, param: str, message: str
) -> None:
    error = rejection(chat(messages=messages))
    assert error.param == param
    assert message in error.message


# ---- stream ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), (None, False)])
def test_stream_is_a_boolean_and_null_means_false(value: bool | None, expected: bool) -> None:
    assert parse(chat(stream=value)).stream is expected


@pytest.mark.parametrize("value", ["true", 1, 0, [], {}])
def test_stream_must_be_a_boolean(value: object) -> None:
    error = rejection(chat(stream=value))
    assert error.param == "stream"
    assert error.message.startswith("stream must be true or false, got ")


# ---- sampling bounds ------------------------------------------------------------------------

ACCEPTED_NUMBERS = [
    ("temperature", b"0"),
    ("temperature", b"0.0"),
    ("temperature", b"-0"),
    ("temperature", b"2"),
    ("temperature", b"2.0"),
    ("temperature", b"1e-300"),
    ("temperature", b"null"),
    ("top_p", b"1e-9"),
    ("top_p", b"1"),
    ("top_p", b"0.5"),
    ("top_p", b"null"),
    ("presence_penalty", b"-2"),
    ("presence_penalty", b"2"),
    ("presence_penalty", b"-2.0"),
    ("presence_penalty", b"null"),
    ("frequency_penalty", b"-2"),
    ("frequency_penalty", b"2"),
    ("frequency_penalty", b"0"),
    ("frequency_penalty", b"null"),
    ("max_tokens", b"1"),
    ("max_tokens", b"4294967296"),
    ("max_tokens", b"null"),
    ("max_completion_tokens", b"1"),
    ("max_completion_tokens", b"null"),
]

REJECTED_NUMBERS = [
    ("temperature", b"-0.001", "temperature must be between 0 and 2, got -0.001"),
    ("temperature", b"2.001", "temperature must be between 0 and 2, got 2.001"),
    ("temperature", b"3.5", "temperature must be between 0 and 2, got 3.5"),
    ("temperature", b'"NaN"', 'temperature must be a number between 0 and 2 (or null), got "NaN"'),
    ("temperature", b'"1"', "temperature must be a number"),
    ("temperature", b"true", "temperature must be a number between 0 and 2 (or null), got true"),
    ("temperature", b"1e309", "got 1e309"),
    ("temperature", b"-1e309", "got -1e309"),
    ("temperature", b"[1]", "got [1]"),
    ("top_p", b"0", "top_p must be greater than 0 and at most 1, got 0"),
    ("top_p", b"-0.0", "top_p must be greater than 0 and at most 1, got -0.0"),
    ("top_p", b"1.0000001", "top_p must be greater than 0 and at most 1, got 1.0000001"),
    ("top_p", b"false", "top_p must be a number"),
    ("presence_penalty", b"2.001", "presence_penalty must be between -2 and 2, got 2.001"),
    ("presence_penalty", b"-2.001", "presence_penalty must be between -2 and 2, got -2.001"),
    ("presence_penalty", b"true", "presence_penalty must be a number"),
    ("frequency_penalty", b"2.001", "frequency_penalty must be between -2 and 2, got 2.001"),
    ("frequency_penalty", b"-2.001", "frequency_penalty must be between -2 and 2, got -2.001"),
    ("max_tokens", b"0", "max_tokens must be an integer >= 1 (or null), got 0"),
    ("max_tokens", b"-1", "max_tokens must be an integer >= 1 (or null), got -1"),
    ("max_tokens", b"1.5", "max_tokens must be an integer >= 1 (or null), got 1.5"),
    ("max_tokens", b"1.0", "got 1.0"),
    ("max_tokens", b"1e3", "got 1e3"),
    ("max_tokens", b"true", "max_tokens must be an integer >= 1 (or null), got true"),
    ("max_tokens", b'"100"', 'got "100"'),
    ("max_completion_tokens", b"0", "max_completion_tokens must be an integer >= 1"),
    ("max_completion_tokens", b"false", "max_completion_tokens must be an integer >= 1"),
]


def with_raw(name: str, raw: bytes) -> bytes:
    return chat(**{name: "PLACEHOLDER"}).replace(b'"PLACEHOLDER"', raw)


@pytest.mark.parametrize(("name", "raw"), ACCEPTED_NUMBERS)
def test_numbers_at_the_edges_of_their_range_are_accepted(name: str, raw: bytes) -> None:
    request = parse(with_raw(name, raw))
    assert bytes(request.fields[name]) == raw


@pytest.mark.parametrize(("name", "raw", "message"), REJECTED_NUMBERS)
def test_numbers_outside_their_range_name_the_field(name: str, raw: bytes, message: str) -> None:
    error = rejection(with_raw(name, raw))
    assert error.status == 400
    assert error.param == name
    assert message in error.message


def test_long_invalid_values_are_shortened_in_the_message() -> None:
    error = rejection(chat(temperature="x" * 1000))
    assert len(error.message) < 120
    assert error.message.endswith('got "' + "x" * 36 + "...")


def test_sets_flags_follow_non_null_values() -> None:
    assert parse(chat(temperature=0)).sets_temperature
    assert not parse(chat(temperature=None)).sets_temperature
    assert parse(chat(max_tokens=5)).sets_max_tokens
    assert parse(chat(max_completion_tokens=5)).sets_max_tokens
    assert parse(chat(max_tokens=None, max_completion_tokens=5)).sets_max_tokens
    assert not parse(chat(max_tokens=None, max_completion_tokens=None)).sets_max_tokens


def test_other_fields_are_not_validated() -> None:
    fields = {
        "tools": "not a list",
        "tool_choice": 42,
        "response_format": None,
        "stop": {"odd": True},
        "seed": "x",
        "n": -5,
        "logprobs": "yes",
        "stream_options": [],
        "user": 7,
        "chat_template_kwargs": {"enable_thinking": False},
        "options": {"num_ctx": 8192},
    }
    assert list(parse(chat(**fields)).fields) == ["model", "messages", *fields]


# ---- render_upstream_body -------------------------------------------------------------------


def test_render_replaces_only_the_model_and_keeps_every_value_byte_for_byte() -> None:
    body = (
        b'{ "stream" : true ,\n "model": "AUTO", "messages": [ {"role": "user",'
        b' "content": "caf\\u00e9 \\/ \xc3\xa9"} ],\t"temperature": 0.50, "x": {"b": 1, "a": [1.0]} }'
    )
    out = render(parse(body), "qwen2.5:7b")
    assert out == (
        b'{"stream":true,"model":"qwen2.5:7b","messages":[ {"role": "user",'
        b' "content": "caf\\u00e9 \\/ \xc3\xa9"} ],"temperature":0.50,"x":{"b": 1, "a": [1.0]}}'
    )


def test_render_appends_absent_defaults_in_order() -> None:
    out = render(parse(chat()), "m", max_tokens=512, temperature=0.7)
    assert out.endswith(b',"max_tokens":512,"temperature":0.7}')
    assert json.loads(out) == {
        "model": "m",
        "messages": USER_HI,
        "max_tokens": 512,
        "temperature": 0.7,
    }


def test_render_replaces_a_null_default_where_it_stands() -> None:
    out = render(parse(chat(temperature=None, max_tokens=None, top_p=1)), "m", 64, 0.2)
    assert list(json.loads(out).items())[2:] == [
        ("temperature", 0.2),
        ("max_tokens", 64),
        ("top_p", 1),
    ]


def test_render_keeps_the_client_values_over_defaults() -> None:
    out = render(parse(chat(temperature=0, max_tokens=7)), "m", 512, 0.7)
    assert json.loads(out) == {"model": "m", "messages": USER_HI, "temperature": 0, "max_tokens": 7}


def test_render_adds_no_max_tokens_when_max_completion_tokens_is_set() -> None:
    out = render(parse(chat(max_completion_tokens=9, max_tokens=None)), "m", 512)
    assert json.loads(out) == {
        "model": "m",
        "messages": USER_HI,
        "max_completion_tokens": 9,
        "max_tokens": None,
    }


def test_render_without_defaults_keeps_nulls() -> None:
    body = chat(temperature=None, max_tokens=None)
    assert render(parse(body), "auto") == (
        b'{"model":"auto","messages":[{"role": "user", "content": "hi"}],'
        b'"temperature":null,"max_tokens":null}'
    )


def test_render_reencodes_unusual_keys() -> None:
    body = b'{"model": "a", "messages": [{"role": "u"}], "\\u006bey \\"q\\"": 1, "\xc3\xa9": 2}'
    out = render(parse(body), "b")
    assert out == b'{"model":"b","messages":[{"role": "u"}],"key \\"q\\"":1,"\xc3\xa9":2}'


def test_render_encodes_the_model_name_as_json() -> None:
    out = render(parse(chat()), 'we"ird\\name\n')
    assert json.loads(out)["model"] == 'we"ird\\name\n'


def test_render_leaves_the_request_unchanged_for_the_next_attempt() -> None:
    request = parse(chat(temperature=None))
    first = render(request, "a", 10, 0.5)
    assert render(request, "b") == (
        b'{"model":"b","messages":[{"role": "user", "content": "hi"}],"temperature":null}'
    )
    assert render(request, "a", 10, 0.5) == first


# ---- hypothesis: arbitrary valid bodies round-trip -------------------------------------------

WHITESPACE = st.sampled_from([b"", b"", b" ", b"\n", b"\t", b"\r\n  "])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=10,
)
VALIDATED = {
    "model",
    "messages",
    "stream",
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "max_tokens",
    "max_completion_tokens",
}


def dump(draw: st.DrawFn, value: object) -> bytes:
    """``value`` as JSON with random whitespace and random ASCII escaping."""
    if isinstance(value, dict):
        items = [
            draw(WHITESPACE) + dump(draw, key) + draw(WHITESPACE) + b":" + dump(draw, item)
            for key, item in value.items()
        ]
        return b"{" + b",".join(items) + draw(WHITESPACE) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(dump(draw, item) for item in value) + draw(WHITESPACE) + b"]"
    text = json.dumps(value, ensure_ascii=draw(st.booleans())).encode()
    return draw(WHITESPACE) + text + draw(WHITESPACE)


CONTENT_PART = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=20)}),
    st.fixed_dictionaries(
        {"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": st.text()})},
        optional={"detail": JSON_VALUES},
    ),
    st.fixed_dictionaries({}, optional={"type": st.text(max_size=5), "text": st.none()}),
)
MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool"]) | st.text()},
    optional={
        "content": st.none() | st.text(max_size=40) | st.lists(CONTENT_PART, max_size=4),
        "tool_calls": st.lists(
            st.fixed_dictionaries(
                {
                    "id": st.text(max_size=8),
                    "type": st.just("function"),
                    "function": st.fixed_dictionaries(
                        {"name": st.text(max_size=8), "arguments": st.text(max_size=20)}
                    ),
                }
            ),
            max_size=2,
        ),
        "name": st.text(max_size=8),
        "tool_call_id": st.text(max_size=8),
        "x-vendor": JSON_VALUES,
    },
)
OPTIONAL_FIELDS = {
    "stream": st.none() | st.booleans(),
    "temperature": st.none() | st.floats(0, 2),
    "top_p": st.none() | st.floats(0, 1, exclude_min=True),
    "presence_penalty": st.none() | st.floats(-2, 2),
    "frequency_penalty": st.none() | st.floats(-2, 2),
    "max_tokens": st.none() | st.integers(1, 2**40),
    "max_completion_tokens": st.none() | st.integers(1, 2**40),
}


@st.composite
def valid_bodies(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, bytes], bytes]:
    """A valid body as (the object, each top-level value's bytes, the body bytes)."""
    obj: dict[str, Any] = {
        "model": draw(st.text(min_size=1).filter(str.strip)),
        "messages": draw(st.lists(MESSAGE, min_size=1, max_size=4)),
    }
    obj.update(draw(st.fixed_dictionaries({}, optional=OPTIONAL_FIELDS)))
    extra_keys = st.text(max_size=10).filter(lambda key: key not in VALIDATED)
    obj.update(draw(st.dictionaries(extra_keys, JSON_VALUES, max_size=5)))
    order = draw(st.permutations(list(obj)))
    obj = {key: obj[key] for key in order}
    raws = {key: dump(draw, value).strip(b" \t\r\n") for key, value in obj.items()}
    body = draw(WHITESPACE) + b"{"
    body += b",".join(
        draw(WHITESPACE) + dump(draw, key) + b":" + draw(WHITESPACE) + raws[key] + draw(WHITESPACE)
        for key in obj
    )
    return obj, raws, body + b"}" + draw(WHITESPACE)


def text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(part["text"] for part in content if part.get("text") is not None)
    return content or ""


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    valid_bodies(),
    st.text(min_size=1, max_size=20),
    st.none() | st.integers(1, 100_000),
    st.none() | st.floats(0, 2),
)
def test_render_is_the_input_with_model_replaced_and_absent_defaults_added(
    case: tuple[dict[str, Any], dict[str, bytes], bytes],
    model: str,
    default_max_tokens: int | None,
    default_temperature: float | None,
) -> None:
    obj, raws, body = case
    request = parse(body)
    assert request.model == obj["model"]
    assert request.stream is bool(obj.get("stream"))
    assert request.content_chars == sum(len(text_of(m)) for m in obj["messages"])
    assert list(request.fields) == list(obj)

    out = render_upstream_body(
        request,
        model=model,
        default_max_tokens=default_max_tokens,
        default_temperature=default_temperature,
    )

    expected = dict(obj, model=model)
    changed = {"model"}
    client_limit = obj.get("max_tokens") is not None or obj.get("max_completion_tokens") is not None
    if default_max_tokens is not None and not client_limit:
        expected["max_tokens"] = default_max_tokens
        changed.add("max_tokens")
    if default_temperature is not None and obj.get("temperature") is None:
        expected["temperature"] = default_temperature
        changed.add("temperature")
    decoded = json.loads(out)
    assert decoded == expected
    assert list(decoded) == list(expected)
    for key, raw in raws.items():
        if key not in changed:
            assert msgspec.json.encode(key) + b":" + raw in out


def outcome(body: bytes) -> ChatRequest | InvalidRequest:
    """The parsed request or the ``InvalidRequest`` raised; any other exception propagates."""
    try:
        return parse(body)
    except InvalidRequest as error:
        return error


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_raise_invalid_request(body: bytes) -> None:
    result = outcome(body)
    if isinstance(result, InvalidRequest):
        assert result.status == 400
        assert result.message


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(sorted(VALIDATED)) | st.text(max_size=4), JSON_VALUES, max_size=6
    )
)
def test_arbitrary_json_objects_parse_or_raise_invalid_request(obj: dict[str, Any]) -> None:
    result = outcome(encode(obj))
    if isinstance(result, InvalidRequest):
        # The body is a JSON object, so the problem is always one field.
        assert result.param is not None
    else:
        assert json.loads(render(result, "m", 1, 1.0))["model"] == "m"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_bodies(), st.data())
def test_mutated_valid_bodies_parse_or_raise_invalid_request(
    case: tuple[dict[str, Any], dict[str, bytes], bytes], data: st.DataObject
) -> None:
    body = bytearray(case[2])
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(body) - 1))
        action = data.draw(st.sampled_from(["delete", "replace", "insert"]))
        byte = data.draw(st.sampled_from(b'{}[]",:0-.e\\ \xff\xc3nul'))
        if action == "delete":
            del body[index]
        elif action == "replace":
            body[index] = byte
        else:
            body.insert(index, byte)
    assert isinstance(outcome(bytes(body)), ChatRequest | InvalidRequest)


# ---- Content-Type ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/json;charset=UTF-8",
        " application/json ",
        "application/vnd.api+json",
        "application/merge-patch+json; charset=utf-8",
        "APPLICATION/LD+JSON",
    ],
)
def test_json_content_types_are_accepted(content_type: str) -> None:
    check_json_content_type(content_type)


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "text/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/+json",
        "application/jsonl",
        "application/json-seq",
        "text/vnd.foo+json",
    ],
)
def test_other_content_types_are_unsupported(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        check_json_content_type(content_type)
    assert caught.value.status == 415
    assert "Content-Type: application/json" in caught.value.message
