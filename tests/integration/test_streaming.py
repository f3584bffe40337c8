"""Streaming relay over real sockets: incrementality, failover before the first byte, mid-stream
failures, client disconnects, keep-alives, and upstreams that do not stream.

Timing claims compare the client's ``time.monotonic()`` with the simulator's recorded times;
synchronisation is by conditions with deadlines, never by sleeping.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam
from prometheus_client.parser import text_string_to_metric_families

from octoroute.simulator import Drop, Fault, Hang, HttpError, SimulatedFleet
from tests.harness import (
    RouterHandle,
    config_for,
    endpoint,
    first_probe_round,
    running_router,
    wait_until,
    with_server,
)

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
WEATHER_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["location"],
        },
    },
}


def stream_body(model: str, **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": HELLO, "stream": True, **fields}


async def read_events(response: aiohttp.ClientResponse) -> list[tuple[float, bytes]]:
    """Every SSE event of the body (its lines joined, no blank line) with its arrival time."""
    events: list[tuple[float, bytes]] = []
    lines: list[bytes] = []
    async for raw in response.content:
        line = raw.rstrip(b"\r\n")
        if line:
            lines.append(line)
        elif lines:
            events.append((time.monotonic(), b"\n".join(lines)))
            lines = []
    assert lines == [], f"the stream ended inside an event: {lines!r}"
    return events


def data_of(event: bytes) -> Any:
    """The JSON of a ``data:`` event, or the string ``[DONE]``."""
    assert event.startswith(b"data: "), event
    payload = event[len(b"data: ") :]
    return "[DONE]" if payload == b"[DONE]" else orjson.loads(payload)


def content_of(chunks: list[Any]) -> str:
    return "".join(
        choice["delta"].get("content") or ""
        for chunk in chunks
        if isinstance(chunk, dict)
        for choice in chunk.get("choices", [])
    )


async def scrape(session: aiohttp.ClientSession, router: RouterHandle) -> dict[str, float]:
    """``GET /metrics`` parsed: every sample keyed by ``name{label="value",...}``."""
    async with session.get(router.url + "/metrics") as response:
        assert response.status == 200
        text = await response.text()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


# -- relay -------------------------------------------------------------------------------------


async def test_chunks_reach_the_client_while_the_upstream_is_still_generating(
    fleet: SimulatedFleet, router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    (deep,) = fleet.deep
    reply = " ".join(f"word{i}" for i in range(8))
    deep.behaviour.reply = reply
    deep.behaviour.token_gap = 0.1
    async with session.post(router.v1 + "/chat/completions", json=stream_body("deep")) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = await read_events(response)
    (record,) = deep.chat_requests
    await wait_until(lambda: record.finished_at is not None, what="the upstream handler to finish")
    assert record.finished_at is not None
    first_content_at = next(
        at for at, event in events if event != b"data: [DONE]" and content_of([data_of(event)])
    )
    # Seven 100 ms gaps follow the first token upstream; the client must not wait for them.
    assert first_content_at < record.finished_at - 0.4
    assert first_content_at < record.chunk_times[-1] - 0.4
    assert content_of([data_of(event) for _, event in events]) == reply
    assert events[-1][1] == b"data: [DONE]"


async def test_upstream_events_are_relayed_byte_for_byte_with_routing_headers(
    fleet: SimulatedFleet, router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    (balanced,) = fleet.balanced
    balanced.behaviour.reply = "Streamed faithfully."
    body = stream_body("balanced", stream_options={"include_usage": True})
    async with session.post(
        router.v1 + "/chat/completions", json=body, headers={"x-request-id": "stream-1"}
    ) as response:
        assert response.status == 200
        assert response.headers["x-octoroute-tier"] == "balanced"
        assert response.headers["x-octoroute-endpoint"] == "sim-balanced"
        assert response.headers["x-octoroute-strategy"] == "direct"
        assert response.headers["x-request-id"] == "stream-1"
        assert response.headers["Cache-Control"] == "no-cache"
        chunks = [data_of(event) for _, event in await read_events(response)]
    assert chunks[-1] == "[DONE]"
    usage = chunks[-2]
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] > 0
    assert chunks[-3]["choices"][0]["finish_reason"] == "stop"
    assert content_of(chunks) == "Streamed faithfully."
    assert all(chunk["model"] == "sim-balanced" for chunk in chunks[:-1])


async def test_sdk_streaming_text_equals_the_simulators_reply(
    fleet: SimulatedFleet, router: RouterHandle
) -> None:
    (deep,) = fleet.deep
    deep.behaviour.reply = "A careful, deep answer — with unicode ☕ and\nnew lines."
    async with AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="deep",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
        )
        parts: list[str] = []
        finish: list[str | None] = []
        usage = None
        async with stream:
            async for chunk in stream:
                for choice in chunk.choices:
                    parts.append(choice.delta.content or "")
                    finish.append(choice.finish_reason)
                if chunk.usage is not None:
                    usage = chunk.usage
    assert "".join(parts) == deep.behaviour.reply
    assert finish[-1] == "stop"
    assert usage is not None
    assert usage.completion_tokens > 0


async def test_sdk_streaming_tool_call_reassembles(router: RouterHandle) -> None:
    async with AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="fast",
            messages=[{"role": "user", "content": "weather in Paris for 3 days?"}],
            tools=[WEATHER_TOOL],
            stream=True,
        )
        name = ""
        arguments = ""
        finish: str | None = None
        async with stream:
            async for chunk in stream:
                for choice in chunk.choices:
                    for call in choice.delta.tool_calls or []:
                        if call.function is not None:
                            name += call.function.name or ""
                            arguments += call.function.arguments or ""
                    finish = choice.finish_reason or finish
    assert name == "get_weather"
    assert finish == "tool_calls"
    assert "location" in orjson.loads(arguments)


async def test_concurrent_streams_are_relayed_independently(
    fleet: SimulatedFleet, router: RouterHandle
) -> None:
    fleet.deep[0].behaviour.reply = lambda body: f"echo {body['messages'][0]['content']}"
    fleet.deep[0].behaviour.token_gap = 0.005

    async def one(client: AsyncOpenAI, n: int) -> str:
        stream = await client.chat.completions.create(
            model="deep",
            messages=[{"role": "user", "content": f"request {n}"}],
            stream=True,
        )
        text = ""
        async with stream:
            async for chunk in stream:
                text += "".join(choice.delta.content or "" for choice in chunk.choices)
        return text

    async with AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client:
        texts = await asyncio.gather(*(one(client, n) for n in range(20)))
    assert texts == [f"echo request {n}" for n in range(20)]


async def test_upstream_that_ignores_stream_is_relayed_as_json(
    fleet: SimulatedFleet, router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    (deep,) = fleet.deep
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "sim-deep",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "not streamed"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    # A 200 "error" is how the simulator answers plain JSON to a streaming request.
    deep.behaviour.fault = HttpError(200, completion)
    async with session.post(router.v1 + "/chat/completions", json=stream_body("deep")) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.headers["x-octoroute-endpoint"] == "sim-deep"
        raw = await response.read()
    assert raw == orjson.dumps(completion)
    assert deep.chat_requests[0].json["stream"] is True


async def test_keep_alive_comments_flow_while_the_upstream_is_silent(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    (deep,) = fleet.deep
    deep.behaviour.first_token_delay = 0.3
    deep.behaviour.reply = "late but fine"
    config = with_server(config_for(fleet, strategy="rule"), stream_keepalive_seconds=0.05)
    async with (
        running_router(config) as router,
        session.post(router.v1 + "/chat/completions", json=stream_body("deep")) as response,
    ):
        assert response.status == 200
        events = await read_events(response)
    (record,) = deep.chat_requests
    first_data_at = record.chunk_times[0]
    keepalives = [at for at, event in events if event == b": keep-alive"]
    assert keepalives, "no keep-alive comment while the upstream was silent"
    assert keepalives[0] < first_data_at
    data = [data_of(event) for _, event in events if event.startswith(b"data: ")]
    assert content_of(data) == "late but fine"
    assert data[-1] == "[DONE]"


# -- failover before the first byte ------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [Drop(), Drop(after_chunks=0), HttpError(500), HttpError.rate_limited()],
    ids=["drop-before-headers", "drop-after-headers", "500", "429"],
)
async def test_stream_fails_over_before_the_first_byte(fleet: SimulatedFleet, fault: Fault) -> None:
    preferred, other = fleet.fast
    preferred.config_keys["priority"] = 2
    preferred.behaviour.fault = fault
    other.behaviour.reply = "Served by the second replica, start to finish."
    async with (
        running_router(config_for(fleet, strategy="rule")) as router,
        AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client,
    ):
        await first_probe_round(router)
        raw = await client.chat.completions.with_raw_response.create(
            model="fast",
            messages=HELLO,
            stream=True,
        )
        assert raw.headers["x-octoroute-endpoint"] == "sim-fast-b"
        stream = raw.parse()
        text = ""
        async with stream:
            async for chunk in stream:
                text += "".join(choice.delta.content or "" for choice in chunk.choices)
        assert text == "Served by the second replica, start to finish."
        # A drop before any answer on the probe's pooled connection looks like a keep-alive
        # race, which the client retries once on a fresh connection before failing over.
        retried = isinstance(fault, Drop) and fault.after_chunks is None
        assert len(preferred.chat_requests) == (2 if retried else 1)
        assert other.chat_requests[0].completed
        # A 429 says busy, not broken: it fails over without counting against health.
        throttled = isinstance(fault, HttpError) and fault.status == 429
        assert endpoint(router, "sim-fast-a").consecutive_failures == (0 if throttled else 1)
        assert endpoint(router, "sim-fast-b").consecutive_failures == 0


async def test_stream_with_every_attempt_failing_is_a_json_error_not_an_event_stream(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    for sim in fleet.fast:
        sim.behaviour.fault = Drop(after_chunks=0)
    async with (
        running_router(config_for(fleet, strategy="rule")) as router,
        session.post(router.v1 + "/chat/completions", json=stream_body("fast")) as response,
    ):
        assert response.status == 502
        assert response.headers["Content-Type"].startswith("application/json")
        body = await response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"].startswith("Every attempt on tier 'fast' failed (2 endpoints")
    assert "Traceback" not in body["error"]["message"]


async def test_stream_hanging_upstream_times_out_per_tier(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    (deep,) = fleet.deep
    deep.behaviour.fault = Hang()
    config = config_for(fleet, strategy="rule", extra="[timeouts]\ndeep = 1\n")
    async with running_router(config) as router:
        started = time.monotonic()
        async with session.post(
            router.v1 + "/chat/completions", json=stream_body("deep")
        ) as response:
            elapsed = time.monotonic() - started
            assert response.status == 504
            body = await response.json()
    assert 0.9 <= elapsed < 2.5
    assert body["error"]["code"] == "upstream_timeout"
    assert "tier 'deep'" in body["error"]["message"]


async def test_stream_upstream_4xx_is_relayed_unchanged(
    fleet: SimulatedFleet, router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    preferred, other = fleet.fast
    fault = HttpError.context_length()
    for sim in fleet.fast:
        sim.behaviour.fault = fault
    async with session.post(router.v1 + "/chat/completions", json=stream_body("fast")) as response:
        assert response.status == 400
        assert response.headers["Content-Type"].startswith("application/json")
        raw = await response.read()
    assert raw == orjson.dumps(fault.body)
    assert len(preferred.chat_requests) + len(other.chat_requests) == 1
    assert all(ep.consecutive_failures == 0 for ep in router.runtime.fleet.all())


async def test_sdk_sees_a_stream_4xx_as_its_own_error(
    fleet: SimulatedFleet, router: RouterHandle
) -> None:
    fleet.deep[0].behaviour.fault = HttpError.context_length()
    async with AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="deep", messages=HELLO, stream=True)
    assert caught.value.code == "context_length_exceeded"


# -- after the first byte ----------------------------------------------------------------------


async def test_mid_stream_failure_ends_with_an_error_event_and_done(
    fleet: SimulatedFleet, router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    (deep,) = fleet.deep
    deep.behaviour.reply = "one two three four five six"
    deep.behaviour.fault = Drop(after_chunks=3)
    await first_probe_round(router)
    async with session.post(router.v1 + "/chat/completions", json=stream_body("deep")) as response:
        assert response.status == 200
        events = [data_of(event) for _, event in await read_events(response)]
    *chunks, error, done = events
    assert len(chunks) == 3  # the role chunk and two tokens made it out before the drop
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert content_of(chunks) == "one two"
    assert set(error) == {"error"}
    assert set(error["error"]) == {"message", "type", "param", "code"}
    assert error["error"]["code"] == "upstream_stream_interrupted"
    assert "incomplete" in error["error"]["message"]
    assert done == "[DONE]"
    assert deep.chat_requests[0].dropped
    failed = endpoint(router, "sim-deep")
    assert failed.consecutive_failures == 1
    assert failed.last_error is not None
    assert failed.last_error.startswith("mid-stream")
    samples = await scrape(session, router)
    assert samples['octoroute_mid_stream_failures_total{endpoint="sim-deep"}'] == 1
    assert samples['octoroute_mid_stream_failures_total{endpoint="sim-balanced"}'] == 0


async def test_upstream_dropping_after_done_leaves_a_complete_clean_stream(
    fleet: SimulatedFleet, router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    (deep,) = fleet.deep
    deep.behaviour.reply = "complete answer"
    # Past the last event: everything, [DONE] included, is sent, then the connection is cut
    # before the chunked terminator.
    deep.behaviour.fault = Drop(after_chunks=100)
    await first_probe_round(router)
    async with session.post(router.v1 + "/chat/completions", json=stream_body("deep")) as response:
        events = [data_of(event) for _, event in await read_events(response)]
    assert events.count("[DONE]") == 1
    assert events[-1] == "[DONE]"
    assert not any("error" in event for event in events if isinstance(event, dict))
    assert content_of(events) == "complete answer"
    assert deep.chat_requests[0].dropped
    assert endpoint(router, "sim-deep").consecutive_failures == 0
    samples = await scrape(session, router)
    assert samples['octoroute_mid_stream_failures_total{endpoint="sim-deep"}'] == 0
    # The connection pool is still sound afterwards.
    deep.behaviour.fault = None
    async with session.post(router.v1 + "/chat/completions", json=stream_body("deep")) as response:
        again = [data_of(event) for _, event in await read_events(response)]
    assert content_of(again) == "complete answer"


async def test_silent_upstream_mid_stream_hits_the_per_read_timeout(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    (deep,) = fleet.deep
    deep.behaviour.reply = "first second"
    deep.behaviour.token_gap = 30
    config = config_for(fleet, strategy="rule", extra="[timeouts]\ndeep = 1\n")
    async with running_router(config) as router:
        started = time.monotonic()
        async with session.post(
            router.v1 + "/chat/completions", json=stream_body("deep")
        ) as response:
            events = [data_of(event) for _, event in await read_events(response)]
        elapsed = time.monotonic() - started
        assert content_of(events[:-2]) == "first"
        assert events[-2]["error"]["code"] == "upstream_stream_interrupted"
        assert "timed out" in events[-2]["error"]["message"]
        assert events[-1] == "[DONE]"
        assert 0.9 <= elapsed < 2.5
        await deep.wait_for_disconnects(1, timeout=5)
        assert endpoint(router, "sim-deep").consecutive_failures >= 1


async def test_mid_stream_failure_is_never_failed_over(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    preferred, other = fleet.fast
    preferred.config_keys["priority"] = 2
    preferred.behaviour.fault = Drop(after_chunks=2)
    async with (
        running_router(config_for(fleet, strategy="rule")) as router,
        session.post(router.v1 + "/chat/completions", json=stream_body("fast")) as response,
    ):
        events = [data_of(event) for _, event in await read_events(response)]
    assert "error" in events[-2]
    assert events[-1] == "[DONE]"
    assert other.chat_requests == []


async def test_client_disconnect_cancels_the_upstream_request(
    fleet: SimulatedFleet, router: RouterHandle
) -> None:
    (deep,) = fleet.deep
    deep.behaviour.reply = " ".join(["slow"] * 50)
    deep.behaviour.token_gap = 0.5
    await first_probe_round(router)
    async with aiohttp.ClientSession() as client:
        response = await client.post(router.v1 + "/chat/completions", json=stream_body("deep"))
        assert response.status == 200
        async for line in response.content:
            if line.startswith(b"data: ") and b'"content"' in line:
                break
        response.close()
    await deep.wait_for_disconnects(1, timeout=5)
    (record,) = deep.chat_requests
    assert record.client_disconnected
    assert not record.completed
    assert record.chunks_sent < 10
    await deep.wait_for_idle()
    assert endpoint(router, "sim-deep").consecutive_failures == 0


async def test_client_disconnect_before_the_first_byte_cancels_the_upstream_request(
    fleet: SimulatedFleet, router: RouterHandle
) -> None:
    (deep,) = fleet.deep
    deep.behaviour.latency = 30
    await first_probe_round(router)
    async with aiohttp.ClientSession() as client:
        request = asyncio.ensure_future(
            client.post(router.v1 + "/chat/completions", json=stream_body("deep"))
        )
        await deep.wait_for_in_flight(1)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
    await deep.wait_for_disconnects(1, timeout=5)
    assert deep.chat_requests[0].client_disconnected
    assert endpoint(router, "sim-deep").consecutive_failures == 0
