"""``/v1/messages`` streams and failover over real sockets: ``ping`` while the upstream is
silent, failover before the first byte (buffered and streamed, with the anthropic SDK), a
mid-stream failure that ends with an ``error`` event, and a streamed answer that reassembles to
what the upstream said."""

from __future__ import annotations

import socket
from typing import Any

import anthropic
import httpx
import orjson
import pytest
from anthropic import AsyncAnthropic

from octoroute.config import parse_config
from octoroute.simulator import Drop, Fault, HttpError, SimulatedFleet
from tests.anthropic_events import events_of, reassemble
from tests.harness import (
    RouterHandle,
    config_for,
    first_probe_round,
    running_router,
    with_server,
)
from tests.integration.test_anthropic_api import WEATHER
from tests.misbehaving import config_toml

HI: Any = [{"role": "user", "content": "Say hello"}]


def closed_port_url() -> str:
    """A base URL on a loopback port nothing listens on: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def sdk(router: RouterHandle) -> AsyncAnthropic:
    return AsyncAnthropic(base_url=router.url, api_key="unused", max_retries=0)


async def raw_stream(router: RouterHandle, body: dict[str, Any]) -> tuple[httpx.Response, bytes]:
    """POST a streamed Messages body with httpx; the response and every byte of its body."""
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream(
            "POST",
            router.url + "/v1/messages",
            json={"stream": True, **body},
            headers={"anthropic-version": "2023-06-01", "x-api-key": "unused"},
        ) as response,
    ):
        data = b"".join([piece async for piece in response.aiter_bytes()])
    return response, data


# --- ping while the upstream is silent ---------------------------------------------------------


async def test_a_silent_upstream_gets_ping_events_before_and_between_the_answers_events(
    fleet: SimulatedFleet,
) -> None:
    (deep,) = fleet.deep
    deep.behaviour.first_token_delay = 0.3
    deep.behaviour.token_gap = 0.15
    deep.behaviour.reply = "late but fine"
    config = with_server(config_for(fleet, strategy="rule"), stream_keepalive_seconds=0.05)
    async with running_router(config) as router:
        response, data = await raw_stream(
            router, {"model": "deep", "max_tokens": 50, "messages": HI}
        )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = events_of(data)
    kinds = [event["type"] for event in events]
    assert kinds[0] == "message_start"
    assert kinds[1] == "ping", "a ping follows message_start while the model is silent"
    first_block = kinds.index("content_block_start")
    assert set(kinds[1:first_block]) == {"ping"}
    between = kinds[first_block : kinds.index("message_delta")]
    assert "ping" in between, "pings while the upstream pauses between tokens"
    result = reassemble(events)
    assert result.blocks == [{"type": "text", "text": "late but fine"}]
    assert result.stopped


async def test_the_sdk_reads_a_stream_with_pings_as_a_clean_answer(fleet: SimulatedFleet) -> None:
    (deep,) = fleet.deep
    deep.behaviour.first_token_delay = 0.2
    deep.behaviour.reply = "pinged"
    config = with_server(config_for(fleet, strategy="rule"), stream_keepalive_seconds=0.03)
    async with (
        running_router(config) as router,
        sdk(router) as client,
        client.messages.stream(model="deep", max_tokens=20, messages=HI) as stream,
    ):
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "pinged"
    assert final.stop_reason == "end_turn"


# --- failover before the first byte ------------------------------------------------------------

FAULTS: Any = [
    pytest.param(None, id="connection-refused"),
    pytest.param(HttpError(500), id="500"),
    pytest.param(HttpError(503, headers={}), id="503"),
    pytest.param(Drop(), id="drop-before-the-answer"),
    pytest.param(Drop(after_chunks=0), id="drop-after-the-head"),
    pytest.param(HttpError(200, {"not": "a chat completion"}), id="200-that-is-not-chat"),
]


def failovers(router: RouterHandle) -> float | None:
    """Requests of the fast tier answered by a later attempt than the first."""
    registry = router.runtime.metrics.registry
    return registry.get_sample_value("octoroute_failovers_total", {"tier": "fast"})


def failover_config(fleet: SimulatedFleet, fault: Fault | None) -> str:
    """``fast-0`` (preferred) then ``fast-1``; ``fast-0`` is a refused port when ``fault`` is
    ``None``, else sim-fast-a with ``fault`` set."""
    first, second = fleet.fast
    if fault is not None:
        first.behaviour.fault = fault
    first_url = closed_port_url() if fault is None else first.base_url
    second.behaviour.reply = "Served by the second endpoint, start to finish."
    return config_toml([first_url, second.base_url])


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_buffered_message_fails_over_before_the_first_byte(
    fleet: SimulatedFleet, fault: Fault | None
) -> None:
    async with running_router(parse_config(failover_config(fleet, fault))) as router:
        await first_probe_round(router)
        async with sdk(router) as client:
            raw = await client.messages.with_raw_response.create(
                model="fast", max_tokens=50, messages=HI
            )
    assert raw.headers["x-octoroute-endpoint"] == "fast-1"
    message = await raw.parse()
    assert message.content[0].type == "text"
    assert message.content[0].text == "Served by the second endpoint, start to finish."
    assert message.stop_reason == "end_turn"
    assert failovers(router) == 1, "answered by a second attempt"


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_streamed_message_fails_over_before_the_first_byte(
    fleet: SimulatedFleet, fault: Fault | None
) -> None:
    async with running_router(parse_config(failover_config(fleet, fault))) as router:
        await first_probe_round(router)
        async with (
            sdk(router) as client,
            client.messages.with_streaming_response.create(
                model="fast", max_tokens=50, messages=HI, stream=True
            ) as response,
        ):
            assert response.headers["x-octoroute-endpoint"] == "fast-1"
            body = await response.read()
    result = reassemble(events_of(body))
    assert result.blocks == [
        {"type": "text", "text": "Served by the second endpoint, start to finish."}
    ]
    assert result.stopped
    assert result.error is None
    assert failovers(router) == 1, "answered by a second attempt"


async def test_every_attempt_failing_is_an_anthropic_error_the_sdk_raises(
    fleet: SimulatedFleet,
) -> None:
    for sim in fleet.fast:
        sim.behaviour.fault = Drop(after_chunks=0)
    async with running_router(config_for(fleet, strategy="rule")) as router, sdk(router) as client:
        with pytest.raises(anthropic.InternalServerError) as failed:
            await consume(client, "fast")
    assert failed.value.status_code == 502
    assert failed.value.body["type"] == "error"  # type: ignore[index]
    assert failed.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    assert "Every attempt on tier 'fast' failed" in failed.value.message


async def consume(client: AsyncAnthropic, model: str) -> None:
    """Read a whole SDK stream, as an application iterating over its events does."""
    async with client.messages.stream(model=model, max_tokens=50, messages=HI) as stream:
        async for _ in stream:
            pass


# --- a failure after the first byte ------------------------------------------------------------


async def test_a_stream_broken_midway_ends_with_an_error_event_and_is_not_retried(
    fleet: SimulatedFleet,
) -> None:
    fleet.balanced[0].behaviour.fault = Drop(after_chunks=3)
    async with running_router(config_for(fleet, strategy="rule")) as router:
        response, data = await raw_stream(
            router, {"model": "balanced", "max_tokens": 50, "messages": HI}
        )
        async with sdk(router) as client:
            with pytest.raises(anthropic.APIStatusError) as raised:
                await consume(client, "balanced")
    assert response.status_code == 200
    events = events_of(data)
    result = reassemble(events)
    assert result.blocks, "the text before the failure was relayed"
    assert not result.stopped
    assert events[-1]["type"] == "error"
    assert events[-1]["error"]["type"] == "api_error"
    assert raised.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    assert len(fleet.balanced[0].chat_requests) == 2  # one per request: nothing retried


# --- the upstream's answer, reassembled --------------------------------------------------------


async def test_a_streamed_answer_reassembles_to_the_upstreams_own_stream(
    fleet: SimulatedFleet, router: RouterHandle
) -> None:
    (deep,) = fleet.deep
    body = {"model": "deep", "max_tokens": 80, "messages": HI, "tools": [WEATHER]}
    _, data = await raw_stream(router, body)
    (sent,) = deep.chat_requests
    async with httpx.AsyncClient(timeout=10) as client:
        direct = await client.post(deep.base_url + "/chat/completions", json=sent.json)
    upstream_calls: dict[int, dict[str, str]] = {}
    finish = None
    for line in direct.content.split(b"\n"):
        if not line.startswith(b"data: {"):
            continue
        for choice in orjson.loads(line[6:]).get("choices", []):
            finish = choice.get("finish_reason") or finish
            for call in choice["delta"].get("tool_calls") or []:
                entry = upstream_calls.setdefault(call["index"], {"name": "", "arguments": ""})
                entry["name"] += call.get("function", {}).get("name") or ""
                entry["arguments"] += call.get("function", {}).get("arguments") or ""

    result = reassemble(events_of(data))
    assert finish == "tool_calls"
    assert result.stop_reason == "tool_use"
    calls = [block for block in result.blocks if block["type"] == "tool_use"]
    assert [(c["name"], orjson.loads(c["json"])) for c in calls] == [
        (c["name"], orjson.loads(c["arguments"])) for c in upstream_calls.values()
    ]
