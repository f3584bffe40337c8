"""Duplicate JSON keys: refused where the router reads them; the fast count never misses one."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from octoroute.config.schema import LimitsConfig
from octoroute.errors import InvalidRequest
from octoroute.wire.duplicates import duplicate_possible, find_duplicate
from octoroute.wire.legacy import parse_legacy_chat
from octoroute.wire.requests import _READ_KEYS, decode_json_object, parse_chat_request

LIMITS = LimitsConfig(max_content_chars=1000)


def rejection(body: bytes) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(body, LIMITS)
    return caught.value


def test_a_message_with_content_twice_is_refused_even_when_the_last_one_is_small() -> None:
    body = (
        b'{"model":"auto","messages":[{"role":"user","content":"'
        + b"x" * 5000
        + b'","content":"hi"}]}'
    )
    error = rejection(body)
    assert error.param == "messages[0].content"
    assert '"content" appears twice' in error.message


@pytest.mark.parametrize("key", sorted(_READ_KEYS))
def test_each_top_level_key_the_router_reads_may_appear_only_once(key: str) -> None:
    fields = {
        "model": '"auto"',
        "messages": '[{"role":"user","content":"hi"}]',
        "stream": "false",
        "temperature": "1",
        "top_p": "1",
        "presence_penalty": "0",
        "frequency_penalty": "0",
        "max_tokens": "5",
        "max_completion_tokens": "5",
    }
    pairs = [f'"{name}":{value}' for name, value in fields.items()]
    pairs.append(f'"{key}":{fields[key]}')
    error = rejection(("{" + ",".join(pairs) + "}").encode())
    assert error.param == key


def test_a_repeated_key_the_router_does_not_read_is_forwarded_as_before() -> None:
    body = b'{"model":"auto","user":"a","messages":[{"role":"user","content":"hi"}],"user":"b"}'
    request = parse_chat_request(body, LIMITS)
    assert bytes(request.fields["user"]) == b'"b"'


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ('[{"role":"user","role":"system","content":"hi"}]', "messages[0].role"),
        (
            '[{"role":"user","content":"a"},{"role":"user","name":"a","name":"b"}]',
            "messages[1].name",
        ),
        (
            '[{"role":"user","content":[{"type":"text","text":"a","text":"b"}]}]',
            "messages[0].content[0].text",
        ),
    ],
)
def test_any_key_repeated_in_a_message_or_a_content_part_is_refused(
    messages: str, param: str
) -> None:
    assert rejection(f'{{"model":"auto","messages":{messages}}}'.encode()).param == param


def test_a_key_spelled_with_an_escape_is_the_same_key() -> None:
    body = b'{"model":"auto","messages":[{"role":"user","content":"a","\\u0063ontent":"b"}]}'
    assert rejection(body).param == "messages[0].content"


def test_colons_in_keys_and_values_alone_are_not_duplicates() -> None:
    body = (
        b'{"model":"a:b","messages":[{"role":"user","content":"x: y\\u003a z",'
        b'"odd:key":"1:2"}],"meta:data":{"k:":"v:"}}'
    )
    assert parse_chat_request(body, LIMITS).model == "a:b"


def test_the_legacy_chat_body_refuses_its_keys_twice() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_legacy_chat(b'{"message":"' + b"x" * 10 + b'","message":"hi"}')
    assert caught.value.param == "message"


# -- the fast path never misses what the exact check finds --------------------------------------

KEYS = st.sampled_from(["role", "content", "name", "text", "type", "a:b", "model", "messages"])
TEXT = st.text(alphabet=st.sampled_from(["a", ":", '"', "\\", "é", " ", "{", "}"]), max_size=6)


def _string(value: str, escaped: bool) -> str:
    text = json.dumps(value, ensure_ascii=escaped)
    return text.replace(":", "\\u003a") if escaped else text


@st.composite
def _json(draw: st.DrawFn, depth: int = 0, *, object_only: bool = False) -> str:
    space = draw(st.sampled_from(["", " ", "\n  "]))
    kinds = ["scalar", "string"] + (["array", "object"] if depth < 3 else [])
    kind = "object" if object_only else draw(st.sampled_from(kinds))
    if kind == "scalar":
        return draw(st.sampled_from(["1", "-2.5e3", "true", "null"]))
    if kind == "string":
        return _string(draw(TEXT), draw(st.booleans()))
    if kind == "array":
        items = draw(st.lists(_json(depth + 1), max_size=3))
        return "[" + f",{space}".join(items) + "]"
    pairs = draw(st.lists(st.tuples(KEYS, _json(depth + 1), st.booleans()), max_size=4))
    return (
        "{" + f",{space}".join(f"{_string(k, esc)}{space}:{space}{v}" for k, v, esc in pairs) + "}"
    )


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    messages = draw(st.lists(_json(1, object_only=True), max_size=3))
    if draw(st.booleans()):  # content parts: objects inside a content array
        parts = draw(st.lists(_json(2, object_only=True), max_size=3))
        messages.append('{"role":"user","content":[' + ",".join(parts) + "]}")
    pairs = [f'"messages":[{",".join(messages)}]']
    pairs += [
        f"{_string(key, esc)}:{value}"
        for key, value, esc in draw(st.lists(st.tuples(KEYS, _json(1), st.booleans()), max_size=3))
    ]
    order = draw(st.permutations(pairs))
    return ("{" + ",".join(order) + "}").encode()


@settings(max_examples=200)
@given(_bodies())
def test_the_fast_count_allows_a_repeat_whenever_the_exact_parse_finds_one(body: bytes) -> None:
    fields = decode_json_object(body)
    if find_duplicate(body, _READ_KEYS) is not None:
        assert duplicate_possible(body, fields)


@settings(max_examples=100)
@given(_bodies())
def test_the_fast_count_passes_every_body_without_repeats_or_colons_in_keys(body: bytes) -> None:
    def refuse_repeats(pairs: list[tuple[str, object]]) -> dict[str, object]:
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys) or any(":" in key for key in keys):
            raise ValueError
        return dict(pairs)

    try:
        json.loads(body, object_pairs_hook=refuse_repeats)
    except ValueError:
        return
    assert not duplicate_possible(body, decode_json_object(body))


def test_the_fast_path_skips_the_exact_parse_for_a_typical_body() -> None:
    body = json.dumps(
        {
            "model": "auto",
            "messages": [
                {"role": "system", "content": "Answer: briefly."},
                {"role": "user", "content": [{"type": "text", "text": "time: 10:30?"}]},
            ],
            "temperature": 0.2,
        }
    ).encode()
    assert not duplicate_possible(body, msgspec.json.decode(body, type=dict[str, msgspec.Raw]))
