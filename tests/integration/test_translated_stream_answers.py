"""Translated answers over real sockets, read by the official SDKs: an upstream chat stream cut
short (its body ends cleanly with neither ``finish_reason`` nor ``[DONE]``) ends each dialect's
stream with its error while ``/v1/chat/completions`` relays it as it came; parallel tool calls
streamed without ``index`` stay apart; tool arguments that are not a JSON object stream to the
anthropic SDK as ``{"_raw": ...}``; a chat ``refusal`` is the Responses API's refusal part.

The upstream is a raw scripted server (``tests/misbehaving.py``) that answers each chat request
by the scenario its prompt names, writing exactly the SSE bytes of that scenario.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import ollama
import orjson
import pytest
from anthropic import AsyncAnthropic
from anthropic.types import ToolParam
from openai import AsyncOpenAI
from openai.types.responses import ResponseFunctionToolCall

from octoroute.config import parse_config
from tests.harness import RouterHandle, first_probe_round, running_router
from tests.misbehaving import LAST_CHUNK, Request, chat_script, chunk, config_toml, raw_server
from tests.misbehaving import response as json_response

SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)
DONE = b"data: [DONE]\n\n"


def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return b"data: " + orjson.dumps({**body, "choices": [choice]}) + b"\n\n"


def call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    """A whole tool call as one fragment without ``index``, as some servers stream them."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


HALF = [event({"role": "assistant", "content": ""}), event({"content": "Half an ans"})]
STREAMS: dict[str, list[bytes]] = {
    "truncated": HALF,
    "finish-only": [*HALF, event({"content": "wer."}), event({}, "stop")],
    "done-only": [*HALF, event({"content": "wer."}), DONE],
    "noindex": [
        event({"role": "assistant", "tool_calls": [call("call_a", "f", '{"a":1}')]}),
        event({"tool_calls": [call("call_b", "g", '{"b":2}'), call("call_c", "h", "{}")]}),
        event({}, "tool_calls"),
        DONE,
    ],
    "badjson": [
        event({"tool_calls": [{"index": 0, **call("call_x", "f", "{bad")}]}),
        event({"tool_calls": [{"index": 1, **call("call_y", "g", "[1,")}]}),
        event({"tool_calls": [{"index": 1, "function": {"arguments": "2]"}}]}),
        event({}, "tool_calls"),
        DONE,
    ],
    "refusal": [
        event({"role": "assistant", "refusal": "I can't"}),
        event({"refusal": " help with that."}),
        event({}, "stop"),
        DONE,
    ],
}
ANSWERS: dict[str, dict[str, Any]] = {
    "badjson": {
        "role": "assistant",
        "content": None,
        "tool_calls": [call("call_x", "f", "{bad"), call("call_y", "g", "[1,2]")],
    },
    "refusal": {"role": "assistant", "content": None, "refusal": "I can't help with that."},
}
TOOLS: list[ToolParam] = [
    {"name": name, "input_schema": {"type": "object"}} for name in ("f", "g", "h")
]


async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
    """The scenario the prompt names (``MODE:<name>``): its stream, or its whole answer."""
    decoded = orjson.loads(request.body)
    mode = orjson.dumps(decoded["messages"]).decode().split("MODE:", 1)[1].split('"', 1)[0]
    if decoded.get("stream"):
        writer.write(SSE_HEAD + b"".join(chunk(piece) for piece in STREAMS[mode]) + LAST_CHUNK)
    else:
        choice = {"index": 0, "message": ANSWERS[mode], "finish_reason": "stop"}
        writer.write(
            json_response(orjson.dumps({"object": "chat.completion", "choices": [choice]}))
        )
    await writer.drain()


@pytest.fixture
async def router() -> AsyncIterator[RouterHandle]:
    async with (
        raw_server(chat_script(answer)) as upstream,
        running_router(parse_config(config_toml([upstream.base_url]))) as router,
    ):
        await first_probe_round(router)
        yield router


def mid_stream_failures(router: RouterHandle) -> float | None:
    return router.runtime.metrics.registry.get_sample_value(
        "octoroute_mid_stream_failures_total", {"endpoint": "fast-0"}
    )


def prompt(mode: str) -> list[Any]:
    return [{"role": "user", "content": f"MODE:{mode}"}]


# --- a stream cut short ------------------------------------------------------------------------


async def test_an_anthropic_stream_cut_short_ends_with_an_error_while_chat_relays_it_as_is(
    router: RouterHandle,
) -> None:
    async with AsyncAnthropic(base_url=router.url, api_key="x", max_retries=0) as client:
        for complete in ("finish-only", "done-only"):
            async with client.messages.stream(
                model="fast", max_tokens=50, messages=prompt(complete)
            ) as stream:
                message = await stream.get_final_message()
            assert [block.text for block in message.content] == ["Half an answer."]  # type: ignore[union-attr]
            assert message.stop_reason == "end_turn"
        with pytest.raises(anthropic.APIStatusError) as raised:
            async with client.messages.stream(
                model="fast", max_tokens=50, messages=prompt("truncated")
            ) as stream:
                await stream.get_final_message()
    error = raised.value.body["error"]  # type: ignore[index]
    assert error["type"] == "api_error"
    assert "before the answer was complete" in error["message"]
    assert mid_stream_failures(router) == 1

    chat = {"model": "fast", "stream": True, "messages": prompt("truncated")}
    async with (
        aiohttp.ClientSession() as session,
        session.post(router.v1 + "/chat/completions", json=chat) as relayed,
    ):
        assert await relayed.read() == b"".join(HALF)  # relayed as it came, nothing added


async def test_a_responses_stream_cut_short_ends_with_response_failed(
    router: RouterHandle,
) -> None:
    async with AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client:
        finals = {}
        for mode in ("finish-only", "done-only", "truncated"):
            events = [
                event
                async for event in await client.responses.create(
                    model="fast", input=f"MODE:{mode}", stream=True
                )
            ]
            finals[mode] = events[-1]
    assert finals["finish-only"].type == finals["done-only"].type == "response.completed"
    assert finals["done-only"].response.output_text == "Half an answer."
    failed = finals["truncated"]
    assert failed.type == "response.failed"
    assert failed.response.error is not None
    assert failed.response.error.code == "server_error"
    assert "before the answer was complete" in failed.response.error.message
    assert mid_stream_failures(router) == 1


async def test_an_ollama_stream_cut_short_ends_with_its_error_line(router: RouterHandle) -> None:
    async with ollama.AsyncClient(host=router.url) as client:
        for complete in ("finish-only", "done-only"):
            parts = [
                part
                async for part in await client.chat(
                    model="fast", messages=prompt(complete), stream=True
                )
            ]
            assert "".join(part.message.content or "" for part in parts) == "Half an answer."
            assert parts[-1].done
        got: list[str] = []

        async def read_truncated() -> None:
            async for part in await client.chat(
                model="fast", messages=prompt("truncated"), stream=True
            ):
                got.append(part.message.content or "")

        with pytest.raises(ollama.ResponseError) as raised:
            await read_truncated()
    assert got == ["Half an ans"]
    assert "before the answer was complete" in raised.value.error
    assert "the answer above is incomplete" in raised.value.error
    assert mid_stream_failures(router) == 1


# --- calls without index, arguments that are not an object, refusals --------------------------


async def test_calls_streamed_without_index_reach_every_sdk_as_separate_calls(
    router: RouterHandle,
) -> None:
    expected = [("call_a", "f", {"a": 1}), ("call_b", "g", {"b": 2}), ("call_c", "h", {})]
    async with (
        AsyncAnthropic(base_url=router.url, api_key="x", max_retries=0) as client,
        client.messages.stream(
            model="fast", max_tokens=50, tools=TOOLS, messages=prompt("noindex")
        ) as stream,
    ):
        message = await stream.get_final_message()
    assert [(b.id, b.name, b.input) for b in message.content] == expected  # type: ignore[union-attr]

    async with (
        AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as openai_client,
        openai_client.responses.stream(model="fast", input="MODE:noindex") as events,
    ):
        response = await events.get_final_response()
    items = [item for item in response.output if isinstance(item, ResponseFunctionToolCall)]
    assert len(items) == len(response.output)
    assert [(i.call_id, i.name, orjson.loads(i.arguments)) for i in items] == expected

    async with ollama.AsyncClient(host=router.url) as ollama_client:
        parts = [
            part
            async for part in await ollama_client.chat(
                model="fast", messages=prompt("noindex"), stream=True
            )
        ]
    calls = [call for part in parts for call in part.message.tool_calls or []]
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [
        (name, arguments) for _, name, arguments in expected
    ]


async def test_the_anthropic_sdk_streams_arguments_that_are_not_an_object_as_raw(
    router: RouterHandle,
) -> None:
    async with AsyncAnthropic(base_url=router.url, api_key="x", max_retries=0) as client:
        buffered = await client.messages.create(
            model="fast", max_tokens=50, tools=TOOLS, messages=prompt("badjson")
        )
        async with client.messages.stream(
            model="fast", max_tokens=50, tools=TOOLS, messages=prompt("badjson")
        ) as stream:
            streamed = await stream.get_final_message()
    inputs = [block.input for block in streamed.content]  # type: ignore[union-attr]
    assert inputs == [{"_raw": "{bad"}, {"_raw": "[1,2]"}]
    assert inputs == [block.input for block in buffered.content]  # type: ignore[union-attr]


async def test_a_refusal_reaches_the_openai_sdk_as_a_refusal_part(router: RouterHandle) -> None:
    async with AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client:
        buffered = await client.responses.create(model="fast", input="MODE:refusal")
        async with client.responses.stream(model="fast", input="MODE:refusal") as events:
            kinds = [event.type async for event in events]
            streamed = await events.get_final_response()
    for response in (buffered, streamed):
        assert response.status == "completed"
        (item,) = response.output
        assert item.type == "message"
        (part,) = item.content
        assert part.type == "refusal"
        assert part.refusal == "I can't help with that."
    assert kinds.count("response.refusal.delta") == 2
    assert "response.refusal.done" in kinds
