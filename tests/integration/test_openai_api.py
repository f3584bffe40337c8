"""``POST /v1/chat/completions`` and ``GET /v1/models`` over real sockets, against the simulator.

What a client sends must reach the model server unchanged apart from ``model`` (and the
endpoint's defaults where the client set none); what the model server answers must come back
unchanged, with headers saying how the request was routed. Every check compares what crossed the
wire on both sides: the bytes a raw aiohttp client sent and got, and ``sim.chat_requests``.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from multidict import CIMultiDictProxy

from octoroute.enums import Tier
from octoroute.simulator import (
    Behaviour,
    Drop,
    Hang,
    HttpError,
    RecordedRequest,
    SimulatedFleet,
    SimulatedModel,
)
from tests.harness import RouterHandle, config_for, running_router, with_server

CHAT = "/v1/chat/completions"
HI: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]
TIER_OF = {
    "sim-fast-a": "fast",
    "sim-fast-b": "fast",
    "sim-balanced": "balanced",
    "sim-deep": "deep",
}
RAW_FIELDS = msgspec.json.Decoder(dict[str, msgspec.Raw])


@dataclass
class Reply:
    """One HTTP answer as the client saw it."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes | dict[str, Any],
    headers: dict[str, str] | None = None,
) -> Reply:
    """POST ``body`` (a dict is JSON-encoded) as ``application/json`` and read the whole answer."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    # A BytesIO, because aiohttp warns (an error here) about bodies over 1 MiB as plain bytes.
    async with session.post(url, data=io.BytesIO(data), headers=sent) as response:
        return Reply(response.status, response.headers, await response.read())


async def chat(
    session: aiohttp.ClientSession,
    router: RouterHandle,
    body: bytes | dict[str, Any],
    headers: dict[str, str] | None = None,
) -> Reply:
    return await post(session, router.url + CHAT, body, headers)


def chat_requests(fleet: SimulatedFleet) -> list[tuple[str, RecordedRequest]]:
    """Every chat request any simulated model received, with the model's name."""
    return [(sim.name, record) for sim in fleet.models for record in sim.chat_requests]


def only_request(fleet: SimulatedFleet) -> tuple[str, RecordedRequest]:
    """The single chat request the fleet received (fails if there were more or none)."""
    [received] = chat_requests(fleet)
    return received


def assert_error(reply: Reply, status: int, code: str, param: str | None = None) -> str:
    """The reply is the OpenAI error envelope; returns its message."""
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.headers["x-request-id"]
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    assert error["param"] == param
    assert isinstance(error["message"], str)
    assert error["message"]
    message: str = error["message"]
    return message


def sse_events(body: bytes) -> list[bytes]:
    """A complete LF-framed SSE body cut into its events, each without the blank line."""
    assert body.endswith(b"\n\n"), body[-200:]
    return body[:-2].split(b"\n\n")


def sse_payloads(body: bytes) -> list[bytes]:
    """The ``data:`` payloads of an SSE body; comments are dropped."""
    return [e.removeprefix(b"data: ") for e in sse_events(body) if not e.startswith(b":")]


def streamed_text(payloads: list[bytes]) -> str:
    text = ""
    for payload in payloads:
        if payload == b"[DONE]":
            continue
        for choice in json.loads(payload).get("choices", []):
            text += choice["delta"].get("content") or ""
    return text


@asynccontextmanager
async def router_for(fleet: SimulatedFleet, **options: object) -> AsyncIterator[RouterHandle]:
    """A started ``fleet`` and a rule router in front of it."""
    async with fleet, running_router(config_for(fleet, strategy="rule", **options)) as handle:
        yield handle


def replica_fleet() -> SimulatedFleet:
    """Two fast instances sharing one name, the first preferred (priority 2), plus the rest."""
    return SimulatedFleet(
        fast=[
            SimulatedModel("sim-twin", config_keys={"priority": 2}),
            SimulatedModel("sim-twin", config_keys={"priority": 1}),
            SimulatedModel("sim-solo"),
        ],
        balanced=[SimulatedModel("sim-balanced")],
        deep=[SimulatedModel("sim-deep")],
    )


# -- model resolution ---------------------------------------------------------------------------


async def test_auto_is_routed_by_the_rules_and_the_headers_say_so(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    reply = await chat(session, router, {"model": "auto", "messages": HI})

    assert reply.status == 200
    assert reply.headers["x-octoroute-tier"] == "fast"
    assert reply.headers["x-octoroute-strategy"] == "rule"
    name, record = only_request(fleet)
    assert reply.headers["x-octoroute-endpoint"] == name
    assert TIER_OF[name] == "fast"
    assert record.json["model"] == name


@pytest.mark.parametrize(
    ("model", "tier"),
    [("fast", "fast"), ("FAST", "fast"), ("Balanced", "balanced"), ("dEEp", "deep")],
)
async def test_a_tier_name_in_any_case_picks_that_tier_directly(
    router: RouterHandle,
    fleet: SimulatedFleet,
    session: aiohttp.ClientSession,
    model: str,
    tier: str,
) -> None:
    # A prompt the rules would send elsewhere: the tier named wins.
    prompt = "hi" if tier != "fast" else "Prove that there are infinitely many primes."
    reply = await chat(
        session, router, {"model": model, "messages": [{"role": "user", "content": prompt}]}
    )

    assert reply.status == 200
    assert reply.headers["x-octoroute-tier"] == tier
    assert reply.headers["x-octoroute-strategy"] == "direct"
    name, record = only_request(fleet)
    assert TIER_OF[name] == tier
    assert reply.headers["x-octoroute-endpoint"] == name == record.json["model"]


@pytest.mark.parametrize("name", list(TIER_OF))
async def test_an_exact_endpoint_name_is_served_by_exactly_that_endpoint(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession, name: str
) -> None:
    for _ in range(6):
        reply = await chat(session, router, {"model": name, "messages": HI})
        assert reply.status == 200
        assert reply.headers["x-octoroute-endpoint"] == name
        assert reply.headers["x-octoroute-tier"] == TIER_OF[name]
        assert reply.headers["x-octoroute-strategy"] == "direct"
        assert reply.json()["model"] == name

    received = chat_requests(fleet)
    assert [served for served, _ in received] == [name] * 6
    assert all(record.json["model"] == name for _, record in received)


async def test_a_name_shared_by_replicas_fails_over_between_them_and_no_further() -> None:
    fleet = replica_fleet()
    primary, secondary = fleet.fast[0], fleet.fast[1]
    primary.behaviour.fault = HttpError(503)
    async with router_for(fleet) as router, aiohttp.ClientSession() as session:
        reply = await chat(session, router, {"model": "sim-twin", "messages": HI})

        assert reply.status == 200
        assert reply.headers["x-octoroute-endpoint"] == "sim-twin"
        assert reply.headers["x-octoroute-tier"] == "fast"
        assert len(primary.chat_requests) == 1
        assert len(secondary.chat_requests) == 1
        assert fleet.fast[2].chat_requests == []


@pytest.mark.parametrize("model", ["SIM-DEEP", " sim-deep", "sim-deep ", " fast ", "sim", "gpt-4o"])
async def test_a_model_that_is_no_exact_name_nor_tier_is_a_404_listing_what_exists(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession, model: str
) -> None:
    reply = await chat(session, router, {"model": model, "messages": HI})

    message = assert_error(reply, 404, "model_not_found", "model")
    assert reply.json()["error"]["type"] == "invalid_request_error"
    assert f"'{model}'" in message
    for available in ("auto", "fast", "balanced", "deep", *TIER_OF):
        assert f"'{available}'" in message
    assert chat_requests(fleet) == []


async def test_a_huge_unknown_model_name_is_cut_short_in_the_404(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    reply = await chat(session, router, {"model": "m" * 100_000, "messages": HI})

    message = assert_error(reply, 404, "model_not_found", "model")
    assert f"'{'m' * 100}...'" in message
    assert len(reply.body) < 1000


# -- validation -----------------------------------------------------------------------------------

INVALID: list[tuple[dict[str, Any], str, list[str]]] = [
    ({"model": 5}, "model", ["non-empty string", "got 5"]),
    ({"model": ""}, "model", ["non-empty string", 'got ""']),
    ({"model": "   "}, "model", ["non-empty string"]),
    ({"model": None}, "model", ["non-empty string", "got null"]),
    ({"messages": []}, "messages", ["at least one message"]),
    ({"messages": "hi"}, "messages", ["an array of message objects", "got a string"]),
    ({"messages": [5]}, "messages[0]", ["a message object", "got a number"]),
    ({"messages": [{"content": "hi"}]}, "messages[0].role", ["required", "string role"]),
    ({"messages": [{"role": 1, "content": "hi"}]}, "messages[0].role", ["a string", "a number"]),
    (
        {"messages": [*HI, {"role": "user", "content": {"text": "hi"}}]},
        "messages[1].content",
        ["a string, an array of content parts, or null", "got an object"],
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "text", "text": 7}]}]},
        "messages[0].content[0].text",
        ["a string or null", "got a number"],
    ),
    ({"temperature": -0.1}, "temperature", ["between 0 and 2", "got -0.1"]),
    ({"temperature": 2.01}, "temperature", ["between 0 and 2", "got 2.01"]),
    ({"temperature": "hot"}, "temperature", ["between 0 and 2", 'got "hot"']),
    ({"temperature": True}, "temperature", ["between 0 and 2", "got true"]),
    ({"top_p": 0}, "top_p", ["greater than 0 and at most 1", "got 0"]),
    ({"top_p": 1.5}, "top_p", ["greater than 0 and at most 1", "got 1.5"]),
    ({"top_p": [1]}, "top_p", ["greater than 0 and at most 1", "got [1]"]),
    ({"presence_penalty": -2.5}, "presence_penalty", ["between -2 and 2", "got -2.5"]),
    ({"presence_penalty": 2.5}, "presence_penalty", ["between -2 and 2", "got 2.5"]),
    ({"frequency_penalty": 3}, "frequency_penalty", ["between -2 and 2", "got 3"]),
    ({"frequency_penalty": "0"}, "frequency_penalty", ["between -2 and 2", 'got "0"']),
    ({"max_tokens": 0}, "max_tokens", ["integer >= 1", "got 0"]),
    ({"max_tokens": -5}, "max_tokens", ["integer >= 1", "got -5"]),
    ({"max_tokens": 1.5}, "max_tokens", ["integer >= 1", "got 1.5"]),
    ({"max_tokens": "10"}, "max_tokens", ["integer >= 1", 'got "10"']),
    ({"max_completion_tokens": 0}, "max_completion_tokens", ["integer >= 1", "got 0"]),
    ({"stream": "true"}, "stream", ["true or false", 'got "true"']),
    ({"stream": 1}, "stream", ["true or false", "got 1"]),
]


@pytest.mark.parametrize(("fields", "param", "fragments"), INVALID)
async def test_each_invalid_field_is_a_400_naming_it_the_allowed_range_and_what_was_sent(
    router: RouterHandle,
    fleet: SimulatedFleet,
    session: aiohttp.ClientSession,
    fields: dict[str, Any],
    param: str,
    fragments: list[str],
) -> None:
    # Streaming requests are validated before any stream starts: the error is plain JSON.
    body = {"model": "auto", "messages": HI, "stream": True, **fields}
    reply = await chat(session, router, body)

    message = assert_error(reply, 400, "invalid_request", param)
    assert reply.json()["error"]["type"] == "invalid_request_error"
    for fragment in fragments:
        assert fragment in message
    assert chat_requests(fleet) == []


@pytest.mark.parametrize("missing", ["model", "messages"])
async def test_a_missing_required_field_is_a_400_naming_it(
    router: RouterHandle, session: aiohttp.ClientSession, missing: str
) -> None:
    body = {"model": "auto", "messages": HI}
    del body[missing]
    reply = await chat(session, router, body)

    assert assert_error(reply, 400, "invalid_request", missing) == f"{missing} is required"


@pytest.mark.parametrize(
    "fields",
    [
        {"temperature": 0, "top_p": 1, "presence_penalty": -2, "frequency_penalty": 2},
        {"temperature": 2, "top_p": 1e-9, "presence_penalty": 2, "frequency_penalty": -2},
        {"max_tokens": 1, "stream": False},
        {"max_completion_tokens": 1},
        {
            "temperature": None,
            "top_p": None,
            "presence_penalty": None,
            "frequency_penalty": None,
            "max_tokens": None,
            "stream": None,
        },
    ],
)
async def test_values_on_the_bounds_and_nulls_are_accepted(
    router: RouterHandle,
    fleet: SimulatedFleet,
    session: aiohttp.ClientSession,
    fields: dict[str, Any],
) -> None:
    reply = await chat(session, router, {"model": "deep", "messages": HI, **fields})

    assert reply.status == 200, reply.body
    _, record = only_request(fleet)
    for key, value in fields.items():
        if value is not None:
            assert record.json[key] == value


async def test_a_150_message_agent_session_with_tools_passes_and_is_forwarded_whole(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a coding agent."}]
    for turn in range(37):
        call = {
            "id": f"call_{turn}",
            "type": "function",
            "function": {"name": "read_file", "arguments": json.dumps({"path": f"src/m{turn}.py"})},
        }
        messages += [
            {"role": "user", "content": f"Step {turn}: look at module {turn}."},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": f"call_{turn}", "content": f"def f{turn}(): pass"},
            {"role": "assistant", "content": f"Module {turn} defines f{turn}."},
        ]
    messages.append({"role": "user", "content": "Now summarise what you read."})
    assert len(messages) == 150
    tools = [
        {
            "type": "function",
            "function": {
                "name": "read_file",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
            },
        }
    ]
    body = {"model": "balanced", "messages": messages, "tools": tools, "tool_choice": "none"}

    reply = await chat(session, router, body)

    assert reply.status == 200, reply.body
    _, record = only_request(fleet)
    assert record.json["messages"] == messages
    assert record.json["tools"] == tools


async def test_max_messages_is_inclusive_and_one_more_is_a_400(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    limit = router.config.limits.max_messages
    assert limit == 2048
    messages = [{"role": "user", "content": "x"}] * limit

    accepted = await chat(session, router, {"model": "fast", "messages": messages})
    rejected = await chat(session, router, {"model": "fast", "messages": [*messages, *HI]})

    assert accepted.status == 200
    message = assert_error(rejected, 400, "invalid_request", "messages")
    assert "2049 messages" in message
    assert "limit of 2048" in message
    assert "[limits].max_messages" in message
    assert len(chat_requests(fleet)) == 1


# upstream/client.py posts the body as plain bytes, and aiohttp warns (ResourceWarning) above
# 1 MiB; under ``filterwarnings = error`` that warning is an exception and the request a 500.
@pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning")
async def test_total_content_is_bounded_by_max_content_chars_across_strings_and_parts(
    session: aiohttp.ClientSession,
) -> None:
    # The canned upstream, because the simulator (like aiohttp by default) refuses bodies > 1 MiB.
    received: list[bytes] = []
    async with canned_router(received) as router:
        limit = router.config.limits.max_content_chars
        assert limit == 2_000_000
        half = "a" * (limit // 2)
        parts = [
            {"type": "text", "text": half},
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
        ]
        exactly = [{"role": "user", "content": half}, {"role": "user", "content": parts}]
        over = [{"role": "user", "content": half + "b"}, {"role": "user", "content": parts}]

        accepted = await chat(session, router, {"model": "deep", "messages": exactly})
        rejected = await chat(session, router, {"model": "deep", "messages": over})

    assert accepted.status == 200
    message = assert_error(rejected, 400, "invalid_request", "messages")
    assert "2000001 characters" in message
    assert "limit of 2000000" in message
    [upstream_body] = received
    assert json.loads(upstream_body)["messages"] == exactly


# -- faithful forwarding --------------------------------------------------------------------------

# Hand-written on purpose: odd spacing, number spellings and \u escapes must reach the model server
# exactly as the client wrote them.
RICH_BODY = b"""{
  "model" : "auto",
  "messages": [
    {"role": "system", "content": "You are terse. Caf\\u00e9 rules apply."},
    {"role": "developer", "content": [{"type": "text", "text": "Prefer metric units."}]},
    {"role": "user", "name": "alice", "content": [
      {"type": "text", "text": "What is in this picture, and what is the weather in Paris?"},
      {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}
    ]},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "call_1", "type": "function",
       "function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}}
    ]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\\"temp_c\\": 21.50}"},
    {"role": "assistant", "content": "A cat. It is 21.5 \\u00b0C in Paris."},
    {"role": "user", "content": "Thanks! And tomorrow?"}
  ],
  "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather now",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}, "strict": true}}],
  "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
  "parallel_tool_calls": false,
  "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}},
  "stop": ["\\n\\nUser:", "END"],
  "seed": 42,
  "n": 1,
  "logprobs": true,
  "top_logprobs": 2,
  "logit_bias": {"50256": -100},
  "stream": false,
  "stream_options": {"include_usage": true},
  "user": "user-1234",
  "temperature": 0.50,
  "top_p": 9.0E-1,
  "presence_penalty": 0.0,
  "frequency_penalty": -5e-1,
  "max_tokens": 300,
  "chat_template_kwargs": {"enable_thinking": false},
  "options": {"num_ctx": 8192, "mirostat": 0},
  "x_vendor": [1, 2.000, "three", null, {"deep": {"er": []}}]
}"""


async def test_every_message_and_field_reaches_the_upstream_unchanged_but_model(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    reply = await chat(session, router, RICH_BODY)

    assert reply.status == 200, reply.body
    name, record = only_request(fleet)
    sent, received = json.loads(RICH_BODY), record.json
    assert received["model"] == name
    assert {**received, "model": "auto"} == sent
    assert list(received) == list(sent)
    # Byte-faithful: each value is the client's own bytes, spacing and number spelling included.
    sent_raw, received_raw = RAW_FIELDS.decode(RICH_BODY), RAW_FIELDS.decode(record.body)
    for key, raw in sent_raw.items():
        if key != "model":
            assert bytes(received_raw[key]) == bytes(raw), key
    assert b'"top_p":9.0E-1' in record.body
    assert b"Caf\\u00e9" in record.body


async def test_only_model_is_replaced_in_a_compact_body(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    body = b'{"model":"sim-deep","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"temperature":0.1}'
    reply = await chat(session, router, body)

    assert reply.status == 200
    _, record = only_request(fleet)
    assert record.body == body


async def test_absent_max_tokens_and_temperature_take_the_endpoint_configuration(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    for name in TIER_OF:
        body = b'{"model":"%s","messages":[{"role":"user","content":"hi"}]}' % name.encode()
        assert (await chat(session, router, body)).status == 200

    configured = {ep.name: ep for ep in router.config.models.all()}
    for name, record in chat_requests(fleet):
        endpoint = configured[name]
        expected = (
            b'{"model":"%s","messages":[{"role":"user","content":"hi"}],"max_tokens":%d,"temperature":%s}'
            % (
                name.encode(),
                endpoint.max_tokens or 0,
                repr(endpoint.temperature).encode(),
            )
        )
        assert record.body == expected


async def test_each_endpoint_uses_its_own_configured_defaults() -> None:
    fleet = SimulatedFleet(
        fast=[SimulatedModel("sim-small", config_keys={"max_tokens": 77, "temperature": 0.25})],
        balanced=[SimulatedModel("sim-mid", config_keys={"max_tokens": 555, "temperature": 1.5})],
        deep=[SimulatedModel("sim-big")],
    )
    async with router_for(fleet) as router, aiohttp.ClientSession() as session:
        for model in ("fast", "balanced"):
            assert (await chat(session, router, {"model": model, "messages": HI})).status == 200

    [small], [mid] = fleet.fast[0].chat_requests, fleet.balanced[0].chat_requests
    assert (small.json["max_tokens"], small.json["temperature"]) == (77, 0.25)
    assert (mid.json["max_tokens"], mid.json["temperature"]) == (555, 1.5)


async def test_max_completion_tokens_means_no_max_tokens_is_added(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    body = {"model": "fast", "messages": HI, "max_completion_tokens": 64}
    assert (await chat(session, router, body)).status == 200

    _, record = only_request(fleet)
    assert "max_tokens" not in record.json
    assert record.json["max_completion_tokens"] == 64
    assert record.json["temperature"] == 0.7


async def test_a_null_default_field_is_filled_where_it_stands(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    body = b'{"max_tokens":null,"model":"sim-deep","temperature":null,"messages":[{"role":"user","content":"hi"}]}'
    assert (await chat(session, router, body)).status == 200

    _, record = only_request(fleet)
    assert record.body == (
        b'{"max_tokens":8192,"model":"sim-deep","temperature":0.7,'
        b'"messages":[{"role":"user","content":"hi"}]}'
    )


async def test_the_clients_authorization_header_is_not_forwarded(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    headers = {"Authorization": "Bearer client-secret"}
    assert (await chat(session, router, {"model": "deep", "messages": HI}, headers)).status == 200

    _, record = only_request(fleet)
    assert "Authorization" not in record.headers
    assert record.headers["Content-Type"] == "application/json"


# -- the answer comes back unchanged --------------------------------------------------------------

CANNED_JSON = (
    b'{ "id" : "chatcmpl-canned", "object": "chat.completion", "created": 1700000000,\n'
    b' "model": "whatever-upstream-says", "system_fingerprint": "fp_1",\n'
    b' "choices": [{"index": 0, "message": {"role": "assistant", "content": "Caf\\u00e9 \\ud83d\\ude00",'
    b' "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},'
    b' "logprobs": null, "finish_reason": "tool_calls"}],\n'
    b' "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}, "x_extra": 1.50}'
)
CANNED_SSE = (
    b": upstream comment\n\n"
    b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n'
    b'event: message\nid: 7\ndata: {"id":"c1","object":"chat.completion.chunk",\n'
    b'data: "choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"}}]}\r\n\r\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}\n\n'
    b"data: [DONE]\n\n"
)


@asynccontextmanager
async def canned_router(received: list[bytes] | None = None) -> AsyncIterator[RouterHandle]:
    """A router whose deep endpoint is a server answering fixed bytes (JSON or SSE).

    The server takes bodies of any size and appends each one to ``received``.
    """

    async def answer(request: web.Request) -> web.Response:
        body = await request.read()
        if received is not None:
            received.append(body)
        if json.loads(body).get("stream") is True:
            return web.Response(body=CANNED_SSE, content_type="text/event-stream")
        return web.Response(body=CANNED_JSON, content_type="application/json")

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", answer)
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    fleet = SimulatedFleet(
        fast=[SimulatedModel("sim-fast")],
        balanced=[SimulatedModel("sim-balanced")],
        deep=[SimulatedModel("canned")],
    )
    try:
        async with fleet:
            config = config_for(fleet, strategy="rule")
            deep = msgspec.structs.replace(
                config.models.deep[0], base_url=f"http://{host}:{port}/v1"
            )
            models_config = msgspec.structs.replace(config.models, deep=(deep,))
            async with running_router(
                msgspec.structs.replace(config, models=models_config)
            ) as handle:
                yield handle
    finally:
        await runner.cleanup()


async def test_a_json_answer_comes_back_byte_identical_with_routing_headers(
    session: aiohttp.ClientSession,
) -> None:
    async with canned_router() as router:
        reply = await chat(
            session, router, {"model": "deep", "messages": HI}, {"x-request-id": "req-1"}
        )

    assert reply.status == 200
    assert reply.body == CANNED_JSON
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.headers["x-request-id"] == "req-1"
    assert reply.headers["x-octoroute-tier"] == "deep"
    assert reply.headers["x-octoroute-endpoint"] == "canned"
    assert reply.headers["x-octoroute-strategy"] == "direct"


async def test_an_sse_answer_comes_back_with_the_same_events_byte_for_byte(
    session: aiohttp.ClientSession,
) -> None:
    async with canned_router() as router:
        reply = await chat(session, router, {"model": "canned", "messages": HI, "stream": True})

    assert reply.status == 200
    assert reply.body == CANNED_SSE
    assert reply.headers["Content-Type"] == "text/event-stream"
    assert reply.headers["Cache-Control"] == "no-cache"
    assert reply.headers["x-request-id"]
    assert reply.headers["x-octoroute-endpoint"] == "canned"
    assert reply.headers["x-octoroute-strategy"] == "direct"


async def test_a_simulated_stream_is_relayed_whole_and_ends_with_done(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    fleet.deep[0].behaviour.reply = "Streams are relayed token by token."
    body = {
        "model": "auto",
        "messages": [{"role": "user", "content": "Prove that sqrt(2) is irrational."}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    reply = await chat(session, router, body)

    assert reply.status == 200
    assert reply.headers["x-octoroute-tier"] == "deep"
    assert reply.headers["x-octoroute-strategy"] == "rule"
    payloads = sse_payloads(reply.body)
    assert payloads[-1] == b"[DONE]"
    assert streamed_text(payloads) == "Streams are relayed token by token."
    usage = json.loads(payloads[-2])["usage"]
    assert usage["completion_tokens"] == 6
    _, record = only_request(fleet)
    assert record.json["stream"] is True
    assert record.json["stream_options"] == {"include_usage": True}


async def test_llm_strategy_is_reported_when_the_router_model_decided() -> None:
    fleet = SimulatedFleet(
        fast=[SimulatedModel("sim-fast")],
        balanced=[SimulatedModel("sim-router", behaviour=Behaviour(router_answer="DEEP"))],
        deep=[SimulatedModel("sim-deep")],
    )
    async with (
        fleet,
        running_router(config_for(fleet, strategy="llm")) as router,
        aiohttp.ClientSession() as session,
    ):
        reply = await chat(session, router, {"model": "auto", "messages": HI})

    assert reply.status == 200
    assert reply.headers["x-octoroute-strategy"] == "llm"
    assert reply.headers["x-octoroute-tier"] == "deep"
    assert reply.headers["x-octoroute-endpoint"] == "sim-deep"
    assert len(fleet.deep[0].chat_requests) == 1


async def test_the_importance_header_steers_auto_routing(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    body = {
        "model": "auto",
        "messages": [{"role": "user", "content": "Write a Python function that reverses a list."}],
    }
    normal = await chat(session, router, body)
    high = await chat(session, router, body, {"x-octoroute-importance": "HIGH"})

    assert normal.headers["x-octoroute-tier"] == "balanced"
    assert high.headers["x-octoroute-tier"] == "deep"


# -- upstream failures ------------------------------------------------------------------------------


async def test_an_upstream_client_error_is_relayed_as_it_came_and_not_retried(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    for sim in fleet.fast:
        sim.behaviour.fault = HttpError.context_length(8192)
    reply = await chat(session, router, {"model": "fast", "messages": HI})

    assert reply.status == 400
    error = reply.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert error["param"] == "messages"
    assert reply.headers["x-octoroute-endpoint"] in ("sim-fast-a", "sim-fast-b")
    assert len(chat_requests(fleet)) == 1


async def test_when_every_attempt_fails_the_answer_is_a_502_upstream_failed(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    for sim in fleet.fast:
        sim.behaviour.fault = HttpError(503)
    reply = await chat(session, router, {"model": "fast", "messages": HI})

    message = assert_error(reply, 502, "upstream_failed")
    assert reply.json()["error"]["type"] == "api_error"
    assert "tier 'fast'" in message
    assert "2 endpoints tried" in message
    assert len(chat_requests(fleet)) == 2
    assert b"Traceback" not in reply.body


async def test_a_hung_upstream_is_a_504_upstream_timeout() -> None:
    fleet = SimulatedFleet(
        fast=[SimulatedModel("sim-fast", behaviour=Behaviour(fault=Hang()))],
        balanced=[SimulatedModel("sim-balanced")],
        deep=[SimulatedModel("sim-deep")],
    )
    async with fleet:
        config = config_for(fleet, strategy="rule")
        config = msgspec.structs.replace(
            config, server=msgspec.structs.replace(config.server, request_timeout_seconds=0.2)
        )
        async with running_router(config) as router, aiohttp.ClientSession() as session:
            reply = await chat(session, router, {"model": "fast", "messages": HI})

    message = assert_error(reply, 504, "upstream_timeout")
    assert "0.2 s" in message


async def test_a_tier_with_no_healthy_endpoint_is_a_503(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    # The start-up probe may still be in flight: make it fail too, so it cannot revive the tier.
    fleet.deep[0].behaviour.health_status = 503
    for endpoint in router.runtime.fleet.tiers[Tier.DEEP]:
        for _ in range(endpoint.failure_threshold):
            router.runtime.fleet.mark_failure(endpoint, "test")
    reply = await chat(session, router, {"model": "deep", "messages": HI, "stream": True})

    message = assert_error(reply, 503, "no_healthy_endpoint")
    assert "tier 'deep'" in message
    assert chat_requests(fleet) == []


async def test_a_stream_fails_over_before_its_first_byte() -> None:
    fleet = replica_fleet()
    fleet.fast[0].behaviour.fault = Drop()
    async with router_for(fleet) as router, aiohttp.ClientSession() as session:
        reply = await chat(session, router, {"model": "sim-twin", "messages": HI, "stream": True})

    assert reply.status == 200
    assert sse_payloads(reply.body)[-1] == b"[DONE]"
    assert b'"error"' not in reply.body
    assert len(fleet.fast[1].chat_requests) == 1
    # Two when the drop came on a pooled connection: retried once on a fresh one (keep-alive race).
    assert len(fleet.fast[0].chat_requests) in (1, 2)


async def test_a_mid_stream_failure_ends_with_an_error_event_then_done(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    fleet.deep[0].behaviour.fault = Drop(after_chunks=3)
    reply = await chat(session, router, {"model": "deep", "messages": HI, "stream": True})

    assert reply.status == 200
    payloads = sse_payloads(reply.body)
    assert len(payloads) == 5
    assert [json.loads(p)["object"] for p in payloads[:3]] == ["chat.completion.chunk"] * 3
    error = json.loads(payloads[3])["error"]
    assert error["code"] == "upstream_stream_interrupted"
    assert error["type"] == "api_error"
    assert "incomplete" in error["message"]
    assert payloads[4] == b"[DONE]"
    # Nothing was retried: the client already had the first bytes.
    assert len(chat_requests(fleet)) == 1


async def test_an_idle_stream_gets_keep_alive_comments(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    fleet.deep[0].behaviour.first_token_delay = 0.3
    config = with_server(config_for(fleet, strategy="rule"), stream_keepalive_seconds=0.02)
    async with running_router(config) as router:
        reply = await chat(session, router, {"model": "deep", "messages": HI, "stream": True})

    assert reply.status == 200
    events = sse_events(reply.body)
    assert events[0] == b": keep-alive"
    first_data = next(i for i, e in enumerate(events) if e.startswith(b"data: "))
    assert set(events[:first_data]) == {b": keep-alive"}
    assert events[-1] == b"data: [DONE]"


# -- GET /v1/models ------------------------------------------------------------------------------


def model_entry(model_id: str, owner: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owner}


async def test_models_lists_auto_and_the_tiers_then_each_endpoint_name_in_config_order(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    async with session.get(router.url + "/v1/models") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["x-request-id"]
        listing = await response.json()

    assert listing == {
        "object": "list",
        "data": [
            *(model_entry(tier, "octoroute") for tier in ("auto", "fast", "balanced", "deep")),
            *(model_entry(name, "user") for name in TIER_OF),
        ],
    }


async def test_models_lists_a_name_shared_by_several_endpoints_once() -> None:
    async with (
        router_for(replica_fleet()) as router,
        aiohttp.ClientSession() as session,
        session.get(router.url + "/v1/models") as response,
    ):
        listing = await response.json()

    ids = [entry["id"] for entry in listing["data"]]
    assert ids == [
        "auto",
        "fast",
        "balanced",
        "deep",
        "sim-twin",
        "sim-solo",
        "sim-balanced",
        "sim-deep",
    ]


# -- POST /route (dry run) -------------------------------------------------------------------------


async def test_route_explains_the_decision_without_calling_any_model(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    text = "Write a Python function that parses a CSV file."
    body = {"model": "auto", "messages": [{"role": "user", "content": text}], "stream": True}
    reply = await post(session, router.url + "/route", body)

    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json"
    decision = reply.json()
    assert {
        "tier",
        "strategy",
        "task_type",
        "importance",
        "token_estimate",
        "reason",
        "routing_ms",
    } <= set(decision)
    assert decision["tier"] == "balanced"
    assert decision["strategy"] == "rule"
    assert decision["task_type"] == "code"
    assert decision["importance"] == "normal"
    assert decision["token_estimate"] == len(text) // 4
    assert decision["reason"] == "signal:code"
    assert isinstance(decision["routing_ms"], float)
    assert 0 <= decision["routing_ms"] < 1000
    assert chat_requests(fleet) == []


async def test_route_reports_an_explicit_tier_as_direct_and_honours_importance(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    messages = [{"role": "user", "content": "Tell me a joke about compilers please"}]
    direct = (
        await post(session, router.url + "/route", {"model": "Deep", "messages": messages})
    ).json()
    endpoint = (
        await post(session, router.url + "/route", {"model": "sim-fast-b", "messages": messages})
    ).json()
    high = await post(
        session,
        router.url + "/route",
        {"model": "auto", "messages": messages},
        {"x-octoroute-importance": "high"},
    )

    assert (direct["tier"], direct["strategy"], direct["reason"]) == (
        "deep",
        "direct",
        "explicit_tier",
    )
    assert (endpoint["tier"], endpoint["strategy"], endpoint["reason"]) == (
        "fast",
        "direct",
        "explicit_endpoint",
    )
    assert direct["token_estimate"] == len(messages[0]["content"]) // 4
    assert high.json()["importance"] == "high"
    assert chat_requests(fleet) == []


async def test_route_validates_like_chat_completions(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    unknown = await post(session, router.url + "/route", {"model": "nope", "messages": HI})
    invalid = await post(
        session, router.url + "/route", {"model": "auto", "messages": HI, "top_p": 2}
    )

    assert_error(unknown, 404, "model_not_found", "model")
    assert_error(invalid, 400, "invalid_request", "top_p")
