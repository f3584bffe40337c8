"""``native = ["messages"]`` over real sockets: an endpoint that speaks Anthropic Messages itself
(Ollama >= 0.14, llama.cpp, LM Studio) gets the client's own body with only ``model`` replaced,
and the client gets that server's answer or events as it sent them; in a scope beside a chat
endpoint, failover crosses from one to the other before the first byte."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import orjson
import pytest
from aiohttp import web
from anthropic import AsyncAnthropic
from anthropic.types import Message

from octoroute.simulator import SimulatedFleet
from tests.harness import RouterHandle, config_for, first_probe_round, running_router
from tests.integration.test_metrics import scrape, value

MESSAGE: Any = {
    "id": "msg_native_1",
    "type": "message",
    "role": "assistant",
    "model": "native-model",
    "content": [
        {"type": "thinking", "thinking": "The user greets me.", "signature": "c2ln"},
        {"type": "text", "text": "Hello from the native server."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 11, "output_tokens": 7},
}


def sse(kind: str, **fields: Any) -> bytes:
    return b"event: %s\ndata: %s\n\n" % (kind.encode(), orjson.dumps({"type": kind, **fields}))


STREAM = [
    sse("message_start", message={**MESSAGE, "content": [], "stop_reason": None}),
    sse("ping"),
    sse("content_block_start", index=0, content_block={"type": "text", "text": ""}),
    sse("content_block_delta", index=0, delta={"type": "text_delta", "text": "Hello from "}),
    sse("content_block_delta", index=0, delta={"type": "text_delta", "text": "the native server."}),
    sse("content_block_stop", index=0),
    sse(
        "message_delta",
        delta={"stop_reason": "end_turn", "stop_sequence": None},
        usage={"output_tokens": 5},
    ),
    sse("message_stop"),
]
HI: Any = [{"role": "user", "content": "Say hello"}]
CLIENT_HEADERS = {
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
    "x-api-key": "client-key",
}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class NativeServer:
    """A fake model server speaking Messages: it answers ``MESSAGE`` (or ``STREAM``), a scripted
    error status, a stream cut after ``cut_after`` events, or JSON to a stream request."""

    base_url: str = ""
    received: list[Received] = field(default_factory=list)
    status: int = 200
    cut_after: int | None = None
    ignore_stream: bool = False

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "native-model"}]})

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(Received(request.path, dict(request.headers), body))
        if self.status != 200:
            error = {"type": "error", "error": {"type": "invalid_request_error", "message": "no"}}
            return web.json_response(error, status=self.status)
        if not orjson.loads(body).get("stream") or self.ignore_stream:
            return web.Response(body=orjson.dumps(MESSAGE), content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for number, event in enumerate(STREAM):
            if number == self.cut_after:
                assert request.transport is not None
                request.transport.abort()
                return response
            await response.write(event)
        await response.write_eof()
        return response


@pytest.fixture
async def native() -> AsyncIterator[NativeServer]:
    server = NativeServer()
    app = web.Application()
    app.router.add_get("/v1/models", server.models)
    app.router.add_post("/v1/messages", server.messages)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.base_url = f"http://{host}:{port}/v1"
    try:
        yield server
    finally:
        await runner.cleanup()


@pytest.fixture
async def router(fleet: SimulatedFleet, native: NativeServer) -> AsyncIterator[RouterHandle]:
    """The fast tier: ``native-model`` (native, preferred) beside ``sim-fast-b`` (chat)."""
    fleet.fast[0].config_keys.update(
        name="native-model", base_url=native.base_url, native=["messages"], priority=2
    )
    async with running_router(config_for(fleet, strategy="rule")) as handle:
        await first_probe_round(handle)
        yield handle


async def post(router: RouterHandle, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(
            router.url + "/v1/messages",
            content=body,
            headers={**CLIENT_HEADERS, "content-type": "application/json"},
        )


def sdk(router: RouterHandle) -> AsyncAnthropic:
    return AsyncAnthropic(base_url=router.url, api_key="unused", max_retries=0)


async def consume(client: AsyncAnthropic) -> Message:
    """Read a whole SDK stream event by event, then its final message."""
    async with client.messages.stream(model="fast", max_tokens=64, messages=HI) as stream:
        async for _ in stream:
            pass
        return await stream.get_final_message()


async def test_a_native_endpoint_gets_the_clients_body_with_only_model_replaced(
    router: RouterHandle, native: NativeServer, fleet: SimulatedFleet
) -> None:
    body = (
        b'{"model":"fast","max_tokens":64,"messages":[{"role":"user","content":"Say hello"}],'
        b'"thinking":{"type":"enabled","budget_tokens":1024},"service_tier":"auto",'
        b'"output_config":{"effort":"high"},"metadata":{"user_id":"u-1"}}'
    )
    answer = await post(router, body)

    assert answer.status_code == 200
    assert answer.headers["x-octoroute-endpoint"] == "native-model"
    assert answer.content == orjson.dumps(MESSAGE)
    (received,) = native.received
    assert received.path == "/v1/messages"
    assert received.body == body.replace(b'"model":"fast"', b'"model":"native-model"')
    assert received.headers["anthropic-version"] == "2023-06-01"
    assert received.headers["anthropic-beta"] == CLIENT_HEADERS["anthropic-beta"]
    assert "x-api-key" not in {name.lower() for name in received.headers}
    assert not fleet.fast[1].chat_requests


async def test_the_sdk_reads_a_native_answer(router: RouterHandle) -> None:
    async with sdk(router) as client:
        message = await client.messages.create(model="fast", max_tokens=64, messages=HI)
    assert message.id == "msg_native_1"
    assert [block.type for block in message.content] == ["thinking", "text", "tool_use"]
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens == 11


async def test_a_native_stream_reaches_the_client_as_the_server_sent_it(
    router: RouterHandle, native: NativeServer
) -> None:
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream(
            "POST",
            router.url + "/v1/messages",
            json={"model": "fast", "max_tokens": 64, "messages": HI, "stream": True},
            headers=CLIENT_HEADERS,
        ) as response,
    ):
        data = b"".join([piece async for piece in response.aiter_bytes()])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert data == b"".join(STREAM)
    assert orjson.loads(native.received[0].body)["stream"] is True

    async with (
        sdk(router) as anthropic_client,
        anthropic_client.messages.stream(model="fast", max_tokens=64, messages=HI) as stream,
    ):
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Hello from the native server."
    assert (final.stop_reason, final.usage.output_tokens) == ("end_turn", 5)


async def test_a_native_stream_broken_midway_ends_with_an_anthropic_error_event(
    router: RouterHandle, native: NativeServer
) -> None:
    native.cut_after = 4
    async with sdk(router) as client:
        with pytest.raises(anthropic.APIStatusError) as raised:
            await consume(client)
    assert raised.value.body["type"] == "error"  # type: ignore[index]
    assert raised.value.body["error"]["type"] == "api_error"  # type: ignore[index]


async def test_a_native_server_that_ignores_stream_gets_its_message_sent_as_events(
    router: RouterHandle, native: NativeServer
) -> None:
    native.ignore_stream = True
    async with (
        sdk(router) as client,
        client.messages.stream(model="fast", max_tokens=64, messages=HI) as stream,
    ):
        final = await stream.get_final_message()
    assert final.model_dump() == Message.model_validate(MESSAGE).model_dump()


async def test_a_native_client_error_is_relayed_and_raised_as_the_sdks_exception(
    router: RouterHandle, native: NativeServer, fleet: SimulatedFleet
) -> None:
    native.status = 400
    async with sdk(router) as client:
        with pytest.raises(anthropic.BadRequestError) as raised:
            await client.messages.create(model="fast", max_tokens=64, messages=HI)
    assert raised.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "no"},
    }
    assert not fleet.fast[1].chat_requests


@pytest.mark.parametrize("stream", [False, True])
async def test_one_scope_fails_over_from_native_to_translated_before_the_first_byte(
    router: RouterHandle, native: NativeServer, fleet: SimulatedFleet, stream: bool
) -> None:
    native.status = 503
    fleet.fast[1].behaviour.reply = "Translated from chat."
    async with sdk(router) as client:
        if stream:
            message = await consume(client)
        else:
            message = await client.messages.create(model="fast", max_tokens=64, messages=HI)
    assert len(native.received) == 1
    (sent,) = fleet.fast[1].chat_requests
    assert sent.json["messages"] == [{"role": "user", "content": "Say hello"}]
    assert message.content[0].type == "text"
    assert message.content[0].text == "Translated from chat."


PDF: Any = {
    "role": "user",
    "content": [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        },
        {"type": "text", "text": "Summarise."},
    ],
}


async def test_what_only_the_translation_cannot_carry_passes_when_the_scope_is_native(
    router: RouterHandle, native: NativeServer, fleet: SimulatedFleet
) -> None:
    async with sdk(router) as client:
        with pytest.raises(anthropic.BadRequestError) as refused:
            await client.messages.create(model="fast", max_tokens=64, messages=[PDF])
        assert refused.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
        assert "messages[0].content[0].source" in refused.value.message
        assert not native.received
        assert not fleet.fast[1].chat_requests

        message = await client.messages.create(model="native-model", max_tokens=64, messages=[PDF])
    assert message.id == "msg_native_1"
    assert orjson.loads(native.received[0].body)["messages"] == [PDF]


async def test_native_answers_count_their_tokens_in_metrics(router: RouterHandle) -> None:
    async with sdk(router) as client:
        await client.messages.create(model="fast", max_tokens=64, messages=HI)
        await consume(client)
    samples = await scrape(router)
    # Buffered: the message's usage (11 in, 7 out). Streamed: input_tokens from message_start
    # (11), the cumulative output_tokens of the last message_delta (5).
    assert value(samples, "octoroute_tokens_total", tier="fast", kind="prompt") == 22
    assert value(samples, "octoroute_tokens_total", tier="fast", kind="completion") == 12
