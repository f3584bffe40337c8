"""``compat`` rewrites: each one alone, all together, and nothing touched without them."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest

from octoroute.config.schema import EndpointConfig, LimitsConfig
from octoroute.enums import Compat
from octoroute.wire.compat import apply_compat, translated_chat_body
from octoroute.wire.requests import parse_chat_request
from tests.endpoints import endpoint_config

BODY = orjson.dumps(
    {
        "model": "auto",
        "messages": [
            {"role": "developer", "content": "Be terse."},
            {"role": "user", "content": "a developer asked", "name": "dev"},
        ],
        "max_completion_tokens": 64,
        "stream": True,
        "stream_options": {"include_usage": True},
        "x_vendor": [1, 2],
    }
)


def endpoint(*compat: Compat) -> EndpointConfig:
    return endpoint_config("m", compat=compat, max_tokens=16)


def sent(*compat: Compat) -> dict[str, Any]:
    request = parse_chat_request(BODY, LimitsConfig())
    result: dict[str, Any] = orjson.loads(request.body_for(endpoint(*compat)))
    return result


def test_without_compat_the_body_is_untouched_apart_from_model_and_defaults() -> None:
    body = sent()
    assert body["messages"] == orjson.loads(BODY)["messages"]
    assert body["max_completion_tokens"] == 64
    assert "max_tokens" not in body  # the client set a limit
    assert body["stream_options"] == {"include_usage": True}


def test_developer_to_system_changes_only_the_role() -> None:
    body = sent(Compat.DEVELOPER_TO_SYSTEM)
    assert body["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "a developer asked", "name": "dev"},
    ]


def test_max_completion_tokens_is_sent_as_max_tokens_in_its_place() -> None:
    body = sent(Compat.MAX_COMPLETION_TOKENS_TO_MAX_TOKENS)
    assert "max_completion_tokens" not in body
    assert body["max_tokens"] == 64
    assert list(body)[2] == "max_tokens"


def test_when_both_limits_are_sent_max_tokens_wins() -> None:
    fields = msgspec.json.decode(
        b'{"model":"m","max_tokens":5,"max_completion_tokens":9}', type=dict[str, msgspec.Raw]
    )
    out = apply_compat(fields, frozenset({Compat.MAX_COMPLETION_TOKENS_TO_MAX_TOKENS}))
    assert {key: bytes(value) for key, value in out.items()} == {
        "model": b'"m"',
        "max_tokens": b"5",
    }


def test_strip_stream_options_leaves_it_out() -> None:
    body = sent(Compat.STRIP_STREAM_OPTIONS)
    assert "stream_options" not in body
    assert body["stream"] is True


def test_all_rewrites_together_keep_every_other_field() -> None:
    body = sent(*Compat)
    assert body["x_vendor"] == [1, 2]
    assert body["model"] == "m"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


@pytest.mark.parametrize("escaped", [b'"\\u0064eveloper"', b'"develop\\u0065r"'])
def test_an_escaped_developer_role_is_rewritten_too(escaped: bytes) -> None:
    raw = b'{"model":"m","messages":[{"role":' + escaped + b',"content":"x"}]}'
    request = parse_chat_request(raw, LimitsConfig())
    body = orjson.loads(request.body_for(endpoint(Compat.DEVELOPER_TO_SYSTEM)))
    assert body["messages"][0]["role"] == "system"


def test_translated_dialects_get_the_same_rewrites_and_defaults() -> None:
    chat = {
        "messages": [{"role": "developer", "content": "x"}, {"role": "user", "content": "y"}],
        "max_completion_tokens": 7,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    body = orjson.loads(translated_chat_body(chat, endpoint(*Compat)))
    assert body == {
        "model": "m",
        "messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "y"}],
        "max_tokens": 7,
        "stream": True,
        "temperature": 0.7,
    }
    plain = orjson.loads(translated_chat_body(chat, endpoint()))
    assert plain["stream_options"] == {"include_usage": True}
    assert plain["max_completion_tokens"] == 7
    assert "max_tokens" not in plain  # a limit was set: no default, as for chat
    assert orjson.loads(translated_chat_body({"messages": []}, endpoint()))["max_tokens"] == 16
