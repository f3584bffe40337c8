"""The simulated fleet, driven over real loopback sockets with aiohttp and the openai SDK.

Every other integration test trusts the simulator as its upstream, so each scripted behaviour
is checked here from the client's side of the socket. Synchronisation is by the simulator's
``wait_for_*`` conditions and events, never by sleeping.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import tomllib
from typing import TYPE_CHECKING, Any

import aiohttp
import httpx
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai import AsyncOpenAI

from octoroute.simulator import (
    ROUTER_PROMPT_SIGNATURE,
    Behaviour,
    Drop,
    Hang,
    HttpError,
    SimulatedFleet,
    SimulatedModel,
    demo_fleet,
    fleet_config_toml,
    route_heuristic,
    tokenize,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

USER_HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi there"}]
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


@pytest.fixture
async def sim() -> AsyncIterator[SimulatedModel]:
    async with SimulatedModel("sim-test", label="fast") as model:
        yield model


@pytest.fixture
async def sdk(sim: SimulatedModel) -> AsyncIterator[AsyncOpenAI]:
    client = AsyncOpenAI(base_url=sim.base_url, api_key="x", max_retries=0)
    yield client
    await client.close()


def chat_body(**fields: Any) -> dict[str, Any]:
    return {"model": "sim-test", "messages": [{"role": "user", "content": "hi there"}], **fields}


def router_prompt(request_text: str) -> str:
    """A prompt laid out like v1's router prompt, whose instructions mention code and research."""
    return (
        "You are a router that chooses which LLM to use.\n\n"
        "Available models:\n- FAST: simple chat.\n- BALANCED: coding, summaries.\n"
        "- DEEP: complex analysis, research.\n\n"
        f"User request:\n{request_text}\n\n"
        "Metadata:\n- Estimated tokens: 12\n- Task type: code\n\n"
        f"{ROUTER_PROMPT_SIGNATURE}\nDo not include explanations or other text."
    )


def sse_payloads(text: str) -> list[str]:
    """The ``data:`` payloads of a complete SSE body, checking the framing on the way."""
    assert text.endswith("\n\n")
    events = text.split("\n\n")[:-1]
    assert all(event.startswith("data: ") for event in events)
    return [event.removeprefix("data: ") for event in events]


# -- JSON answers -----------------------------------------------------------------------------


async def test_json_answer_has_the_openai_shape_and_the_request_is_recorded(
    sim: SimulatedModel, session: aiohttp.ClientSession
) -> None:
    raw = json.dumps(chat_body(temperature=0.2, vendor_field={"x": 1})).encode()
    headers = {"Content-Type": "application/json", "Authorization": "Bearer k"}
    async with session.post(f"{sim.base_url}/chat/completions", data=raw, headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        answer = await resp.json()

    assert answer["id"].startswith("chatcmpl-")
    assert answer["object"] == "chat.completion"
    assert isinstance(answer["created"], int)
    assert answer["model"] == "sim-test"
    [choice] = answer["choices"]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"].startswith("[fast · sim-test] You asked: “hi there”")
    assert choice["finish_reason"] == "stop"
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] == len(tokenize(choice["message"]["content"]))

    [record] = sim.requests
    assert (record.method, record.path) == ("POST", "/v1/chat/completions")
    assert record.headers["authorization"] == "Bearer k"
    assert record.body == raw
    assert record.json["vendor_field"] == {"x": 1}
    assert (record.status, record.stream, record.completed) == (200, False, True)
    assert record.finished_at is not None
    assert record.finished_at >= record.received_at


async def test_sdk_json_answer_uses_the_requested_model_and_a_fixed_reply(
    sim: SimulatedModel, sdk: AsyncOpenAI
) -> None:
    sim.behaviour.reply = "Hello from the sim."
    answer = await sdk.chat.completions.create(model="any-name", messages=USER_HI)

    assert answer.model == "any-name"
    assert answer.choices[0].message.content == "Hello from the sim."
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 4


async def test_behaviour_edited_between_requests_applies_to_the_next_one(
    sim: SimulatedModel, sdk: AsyncOpenAI
) -> None:
    sim.behaviour.reply = "first"
    first = await sdk.chat.completions.create(model="m", messages=USER_HI)
    sim.behaviour.reply = lambda body: f"echo {body['messages'][0]['content']}"
    second = await sdk.chat.completions.create(model="m", messages=USER_HI)

    assert first.choices[0].message.content == "first"
    assert second.choices[0].message.content == "echo hi there"


# -- streaming --------------------------------------------------------------------------------


async def test_stream_is_role_then_tokens_then_finish_then_done(
    sim: SimulatedModel, session: aiohttp.ClientSession
) -> None:
    sim.behaviour.reply = "Hello  streamed world "
    async with session.post(
        f"{sim.base_url}/chat/completions", json=chat_body(stream=True)
    ) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        payloads = sse_payloads(await resp.text())

    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    contents = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    assert contents == ["Hello", "  streamed", " world", " "]
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert sim.requests[0].chunks_sent == len(payloads)


async def test_sdk_stream_concatenates_to_the_reply_and_ends_with_usage_when_asked(
    sim: SimulatedModel, sdk: AsyncOpenAI
) -> None:
    sim.behaviour.reply = "one two three"
    stream = await sdk.chat.completions.create(
        model="m", messages=USER_HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3


async def test_usage_chunk_is_absent_unless_asked_for_or_always_on(
    sim: SimulatedModel, session: aiohttp.ClientSession
) -> None:
    url = f"{sim.base_url}/chat/completions"
    async with session.post(url, json=chat_body(stream=True)) as resp:
        plain = sse_payloads(await resp.text())
    sim.behaviour.always_usage = True
    async with session.post(url, json=chat_body(stream=True)) as resp:
        always = sse_payloads(await resp.text())

    assert all("usage" not in json.loads(p) for p in plain[:-1])
    assert json.loads(always[-2])["choices"] == []
    assert "usage" in json.loads(always[-2])


async def test_token_gap_makes_chunks_arrive_one_by_one(
    sim: SimulatedModel, session: aiohttp.ClientSession
) -> None:
    gap = 0.05
    sim.behaviour.reply = "a b c d"
    sim.behaviour.token_gap = gap
    arrivals: list[float] = []
    async with session.post(
        f"{sim.base_url}/chat/completions", json=chat_body(stream=True)
    ) as resp:
        async for line in resp.content:
            if line.startswith(b'data: {"') and b'"content"' in line:
                arrivals.append(time.monotonic())

    writes = sim.requests[0].chunk_times[1:5]  # the four content chunks
    assert len(arrivals) == 4
    assert all(later - earlier >= gap * 0.9 for earlier, later in itertools.pairwise(writes))
    # Each token reached the client before the next one was even written: no buffering.
    assert all(
        arrived <= next_write for arrived, next_write in zip(arrivals[:-1], writes[1:], strict=True)
    )


async def test_latency_delays_headers_and_first_token_delay_delays_the_role_chunk(
    sim: SimulatedModel, session: aiohttp.ClientSession
) -> None:
    sim.behaviour.latency = 0.05
    sim.behaviour.first_token_delay = 0.05
    async with session.post(
        f"{sim.base_url}/chat/completions", json=chat_body(stream=True)
    ) as resp:
        headers_at = time.monotonic()
        await resp.read()

    record = sim.requests[0]
    assert headers_at - record.received_at >= 0.045
    assert record.chunk_times[0] - headers_at >= 0.045


# -- faults -----------------------------------------------------------------------------------


async def test_scripted_context_length_error_reaches_the_sdk_as_a_400(
    sim: SimulatedModel, sdk: AsyncOpenAI
) -> None:
    sim.behaviour.fault = HttpError.context_length(4096)
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(model="m", messages=USER_HI)

    assert caught.value.status_code == 400
    assert caught.value.code == "context_length_exceeded"
    assert "maximum context length is 4096" in caught.value.message


async def test_rate_limit_error_carries_retry_after_and_streams_fail_before_any_byte(
    sim: SimulatedModel, sdk: AsyncOpenAI
) -> None:
    sim.behaviour.fault = HttpError.rate_limited(retry_after=7)
    with pytest.raises(openai.RateLimitError) as caught:
        await sdk.chat.completions.create(model="m", messages=USER_HI, stream=True)

    assert caught.value.response.headers["retry-after"] == "7"
    assert sim.requests[0].chunks_sent == 0


async def test_error_with_a_text_body_is_sent_verbatim(
    sim: SimulatedModel, session: aiohttp.ClientSession
) -> None:
    sim.behaviour.fault = HttpError(502, "<html>Bad Gateway</html>")
    async with session.post(f"{sim.base_url}/chat/completions", json=chat_body()) as resp:
        assert resp.status == 502
        assert resp.content_type == "text/plain"
        assert await resp.text() == "<html>Bad Gateway</html>"


async def test_default_error_body_is_an_openai_envelope(
    sim: SimulatedModel, session: aiohttp.ClientSession
) -> None:
    sim.behaviour.fault = HttpError(500)
    async with session.post(f"{sim.base_url}/chat/completions", json=chat_body()) as resp:
        assert resp.status == 500
        error = (await resp.json())["error"]

    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "server_error"


async def test_fail_next_n_requests_then_succeed(
    sim: SimulatedModel, session: aiohttp.ClientSession
) -> None:
    sim.behaviour.fault = HttpError(503)
    sim.behaviour.fault_times = 2
    statuses = []
    for stream in (False, True, False):
        async with session.post(
            f"{sim.base_url}/chat/completions", json=chat_body(stream=stream)
        ) as resp:
            await resp.read()
            statuses.append(resp.status)

    assert statuses == [503, 503, 200]
    assert sim.behaviour.fault is None


async def test_hang_holds_the_request_until_the_client_times_out(
    sim: SimulatedModel, sdk: AsyncOpenAI
) -> None:
    sim.behaviour.fault = Hang()
    with pytest.raises(openai.APITimeoutError):
        await sdk.with_options(timeout=0.2).chat.completions.create(model="m", messages=USER_HI)

    await sim.wait_for_disconnects(1)
    assert sim.requests[0].client_disconnected


async def test_stream_dropped_after_k_chunks_gives_the_client_exactly_k(
    sim: SimulatedModel, session: aiohttp.ClientSession
) -> None:
    sim.behaviour.fault = Drop(after_chunks=3)
    received: list[bytes] = []

    async def read_stream() -> None:
        async with session.post(
            f"{sim.base_url}/chat/completions", json=chat_body(stream=True)
        ) as resp:
            assert resp.status == 200
            async for line in resp.content:
                if line.startswith(b"data: "):
                    received.append(line)

    with pytest.raises(aiohttp.ClientPayloadError):
        await read_stream()

    assert len(received) == 3
    record = sim.requests[0]
    assert (record.chunks_sent, record.dropped, record.completed) == (3, True, False)
    await sim.wait_for_idle()
    assert sim.disconnects == 0


async def test_sdk_stream_dropped_mid_way_raises_after_the_first_tokens(
    sim: SimulatedModel, sdk: AsyncOpenAI
) -> None:
    sim.behaviour.reply = "alpha beta gamma delta"
    sim.behaviour.fault = Drop(after_chunks=2)
    contents: list[str] = []

    async def read_stream() -> None:
        stream = await sdk.chat.completions.create(model="m", messages=USER_HI, stream=True)
        async for chunk in stream:
            contents.append(chunk.choices[0].delta.content or "")

    with pytest.raises((openai.APIConnectionError, httpx.TransportError)):
        await read_stream()

    assert contents == ["", "alpha"]


async def test_drop_before_headers_looks_like_a_vanished_server(
    sim: SimulatedModel, sdk: AsyncOpenAI
) -> None:
    sim.behaviour.fault = Drop()
    with pytest.raises(openai.APIConnectionError):
        await sdk.chat.completions.create(model="m", messages=USER_HI)

    assert sim.requests[0].status is None
    assert sim.requests[0].dropped


async def test_json_dropped_mid_body_is_an_incomplete_payload(
    sim: SimulatedModel, session: aiohttp.ClientSession
) -> None:
    sim.behaviour.fault = Drop(after_chunks=1)
    async with session.post(f"{sim.base_url}/chat/completions", json=chat_body()) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


# -- disconnects and in-flight tracking -------------------------------------------------------


async def test_client_leaving_mid_stream_is_detected(
    sim: SimulatedModel, session: aiohttp.ClientSession
) -> None:
    sim.behaviour.reply = "one two three four"
    sim.behaviour.token_gap = 30.0  # the client leaves long before the second token
    async with session.post(
        f"{sim.base_url}/chat/completions", json=chat_body(stream=True)
    ) as resp:
        await resp.content.readline()  # the role chunk
        resp.close()

    await asyncio.wait_for(sim.client_disconnected.wait(), 5)
    record = sim.requests[0]
    assert record.client_disconnected
    assert not record.completed
    await sim.wait_for_idle()


async def test_requests_in_flight_are_counted_and_a_cancelled_client_is_a_disconnect(
    sim: SimulatedModel, session: aiohttp.ClientSession
) -> None:
    sim.behaviour.fault = Hang()

    async def call() -> None:
        async with session.post(f"{sim.base_url}/chat/completions", json=chat_body()) as resp:
            await resp.read()

    calls = [asyncio.create_task(call()) for _ in range(2)]
    await sim.wait_for_in_flight(2)
    assert sim.in_flight == 2
    for task in calls:
        task.cancel()
    await asyncio.gather(*calls, return_exceptions=True)

    await sim.wait_for_disconnects(2)
    await sim.wait_for_idle()
    assert sim.in_flight == 0


async def test_waiting_past_the_deadline_raises_with_the_state(sim: SimulatedModel) -> None:
    with pytest.raises(TimeoutError, match="0/1"):
        await sim.wait_for_requests(1, timeout=0.05)


async def test_stop_ends_a_hung_request_at_once_without_counting_a_disconnect(
    sim: SimulatedModel, session: aiohttp.ClientSession
) -> None:
    sim.behaviour.fault = Hang()

    async def call() -> int:
        async with session.post(f"{sim.base_url}/chat/completions", json=chat_body()) as resp:
            return resp.status

    pending = asyncio.create_task(call())
    await sim.wait_for_in_flight(1)
    await asyncio.wait_for(sim.stop(), 2)

    with pytest.raises(aiohttp.ClientError):
        await pending
    assert sim.disconnects == 0


async def test_a_stopped_model_restarts_on_the_same_port(
    sim: SimulatedModel, session: aiohttp.ClientSession
) -> None:
    base_url = sim.base_url
    await sim.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        await session.get(f"{base_url}/models")
    await sim.start(port=sim.port)

    async with session.get(f"{sim.base_url}/models") as resp:
        assert resp.status == 200
    assert sim.base_url == base_url


# -- health endpoint, unknown paths, bad requests ---------------------------------------------


async def test_models_endpoint_lists_the_model_and_its_status_is_scriptable(
    sim: SimulatedModel, sdk: AsyncOpenAI
) -> None:
    listing = await sdk.models.list()
    sim.behaviour.health_status = 503
    with pytest.raises(openai.InternalServerError) as caught:
        await sdk.models.list()

    assert [model.id for model in listing.data] == ["sim-test"]
    assert caught.value.status_code == 503
    assert sim.health_checks == 2
    assert sim.chat_requests == []


async def test_hanging_health_probe_is_a_probe_timeout(
    sim: SimulatedModel, session: aiohttp.ClientSession
) -> None:
    sim.behaviour.health_hang = True
    with pytest.raises(TimeoutError):
        await session.get(f"{sim.base_url}/models", timeout=aiohttp.ClientTimeout(total=0.2))

    await sim.wait_for_requests(1, path="/v1/models")
    await sim.wait_for_disconnects(1)


async def test_unknown_path_is_a_recorded_404(
    sim: SimulatedModel, session: aiohttp.ClientSession
) -> None:
    async with session.post(f"{sim.base_url}/edits", json={}) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "unknown_url"
    await sim.wait_for_requests(1, path=None)
    assert sim.requests[0].path == "/v1/edits"


async def test_malformed_json_is_a_400_and_still_recorded(
    sim: SimulatedModel, session: aiohttp.ClientSession
) -> None:
    async with session.post(f"{sim.base_url}/chat/completions", data=b"{nope") as resp:
        assert resp.status == 400
    assert sim.requests[0].body == b"{nope"
    assert sim.requests[0].json is None


async def test_strict_model_rejects_another_name_with_model_not_found(
    sim: SimulatedModel, sdk: AsyncOpenAI
) -> None:
    sim.behaviour.strict_model = True
    await sdk.chat.completions.create(model="sim-test", messages=USER_HI)
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk.chat.completions.create(model="other", messages=USER_HI)
    assert caught.value.code == "model_not_found"


# -- tool calls -------------------------------------------------------------------------------


async def test_tools_are_answered_with_a_call_to_the_first_tool(sdk: AsyncOpenAI) -> None:
    answer = await sdk.chat.completions.create(model="m", messages=USER_HI, tools=[WEATHER_TOOL])

    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    [call] = choice.message.tool_calls
    assert call.id.startswith("call_")
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"location": "sim", "days": 1}


async def test_streamed_tool_call_arrives_as_openai_deltas(sdk: AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="m", messages=USER_HI, tools=[WEATHER_TOOL], stream=True
    )
    deltas = [chunk.choices[0] async for chunk in stream]

    calls = [d.delta.tool_calls[0] for d in deltas if d.delta.tool_calls]
    assert calls[0].id is not None
    assert calls[0].function is not None
    assert calls[0].function.name == "get_weather"
    assert all(c.index == 0 and c.id is None for c in calls[1:])
    arguments = "".join(c.function.arguments or "" for c in calls if c.function is not None)
    assert json.loads(arguments) == {"location": "sim", "days": 1}
    assert deltas[-1].finish_reason == "tool_calls"


async def test_a_tool_result_is_answered_in_text(sdk: AsyncOpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    answer = await sdk.chat.completions.create(model="m", messages=messages, tools=[WEATHER_TOOL])

    assert answer.choices[0].finish_reason == "stop"
    assert "The tool returned: sunny" in (answer.choices[0].message.content or "")


async def test_tool_choice_none_or_echo_off_answers_in_text(
    sim: SimulatedModel, sdk: AsyncOpenAI
) -> None:
    declined = await sdk.chat.completions.create(
        model="m", messages=USER_HI, tools=[WEATHER_TOOL], tool_choice="none"
    )
    sim.behaviour.echo_tool_calls = False
    ignored = await sdk.chat.completions.create(model="m", messages=USER_HI, tools=[WEATHER_TOOL])

    assert declined.choices[0].message.tool_calls is None
    assert ignored.choices[0].finish_reason == "stop"


CLOCK_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
NEWS_TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {"name": "get_news", "parameters": {"type": "object", "properties": {}}},
}


async def test_several_tools_are_called_in_parallel_first_two(sdk: AsyncOpenAI) -> None:
    answer = await sdk.chat.completions.create(
        model="m", messages=USER_HI, tools=[WEATHER_TOOL, CLOCK_TOOL, NEWS_TOOL]
    )

    calls = answer.choices[0].message.tool_calls or []
    assert [call.function.name for call in calls] == ["get_weather", "get_time"]  # type: ignore[union-attr]
    assert len({call.id for call in calls}) == 2
    assert answer.choices[0].finish_reason == "tool_calls"


async def test_parallel_tool_calls_false_calls_one_tool(sdk: AsyncOpenAI) -> None:
    answer = await sdk.chat.completions.create(
        model="m", messages=USER_HI, tools=[WEATHER_TOOL, CLOCK_TOOL], parallel_tool_calls=False
    )

    calls = answer.choices[0].message.tool_calls or []
    assert [call.function.name for call in calls] == ["get_weather"]  # type: ignore[union-attr]


async def test_streamed_parallel_tool_calls_each_have_their_own_index(sdk: AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="m", messages=USER_HI, tools=[WEATHER_TOOL, CLOCK_TOOL], stream=True
    )
    fragments = [
        call
        async for chunk in stream
        for choice in chunk.choices
        for call in choice.delta.tool_calls or []
    ]

    openings = [call for call in fragments if call.id is not None]
    assert [(call.index, call.function.name) for call in openings] == [  # type: ignore[union-attr]
        (0, "get_weather"),
        (1, "get_time"),
    ]
    arguments = {0: "", 1: ""}
    for call in fragments:
        arguments[call.index] += call.function.arguments or ""  # type: ignore[union-attr]
    assert json.loads(arguments[0]) == {"location": "sim", "days": 1}
    assert json.loads(arguments[1]) == {}


async def test_n_choices_each_carry_the_answer_with_their_own_index(sdk: AsyncOpenAI) -> None:
    answer = await sdk.chat.completions.create(model="m", messages=USER_HI, n=3)

    assert [choice.index for choice in answer.choices] == [0, 1, 2]
    texts = {choice.message.content for choice in answer.choices}
    assert len(texts) == 1
    [text] = texts
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 3 * len(tokenize(text or ""))


async def test_streamed_n_choices_reassemble_per_index(sdk: AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="m", messages=USER_HI, n=2, stream=True, stream_options={"include_usage": True}
    )
    texts = {0: "", 1: ""}
    finished: dict[int, str | None] = {}
    async for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason is not None:
                finished[choice.index] = choice.finish_reason

    assert texts[0] == texts[1]
    assert texts[0].startswith("[fast · sim-test]")
    assert finished == {0: "stop", 1: "stop"}


async def test_text_completions_honour_n(
    session: aiohttp.ClientSession, sim: SimulatedModel
) -> None:
    url = sim.base_url + "/completions"
    body = {"model": "sim-test", "prompt": "def add(a, b):", "n": 2}
    async with session.post(url, json=body) as answer:
        choices = (await answer.json())["choices"]
    async with session.post(url, json={**body, "stream": True}) as streamed:
        payloads = sse_payloads(await streamed.text())

    assert [choice["index"] for choice in choices] == [0, 1]
    indexes = {json.loads(p)["choices"][0]["index"] for p in payloads if p != "[DONE]"}
    assert indexes == {0, 1}


async def test_a_native_responses_server_streams_one_item_per_parallel_call() -> None:
    async with SimulatedModel("sim") as model, aiohttp.ClientSession() as session:
        model.behaviour.native_responses = True
        tools = [
            {"type": "function", "name": "a", "parameters": {"type": "object", "properties": {}}},
            {"type": "function", "name": "b", "parameters": {"type": "object", "properties": {}}},
        ]
        body = {"model": "sim", "input": "hi", "tools": tools, "stream": True}
        async with session.post(model.base_url + "/responses", json=body) as answered:
            text = await answered.text()
    added = [
        json.loads(line.removeprefix("data: "))
        for line in text.splitlines()
        if line.startswith("data: ") and "response.output_item.added" in line
    ]
    assert [(e["output_index"], e["item"]["name"]) for e in added] == [(0, "a"), (1, "b")]


# -- router-model mode ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_text", "tier"),
    [
        ("hello!", "FAST"),
        ("What time is it in Paris?", "FAST"),
        ("Write a Python function that parses ISO dates", "BALANCED"),
        ("Summarise this article for me", "BALANCED"),
        ("Prove that there are infinitely many primes", "DEEP"),
        ("Design a distributed rate limiter and discuss the trade-offs", "DEEP"),
    ],
)
async def test_router_prompt_is_answered_with_a_sensible_tier_word(
    sdk: AsyncOpenAI, request_text: str, tier: str
) -> None:
    answer = await sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": router_prompt(request_text)}]
    )
    assert answer.choices[0].message.content == tier


@pytest.mark.parametrize("scripted", ["FAST", "I cannot help with that.", "", "x" * 2048])
async def test_scripted_router_answer_is_returned_verbatim(
    sim: SimulatedModel, sdk: AsyncOpenAI, scripted: str
) -> None:
    sim.behaviour.router_answer = scripted
    answer = await sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": router_prompt("hello")}]
    )
    assert answer.choices[0].message.content == scripted


async def test_router_answer_is_not_used_for_ordinary_requests(
    sim: SimulatedModel, sdk: AsyncOpenAI
) -> None:
    sim.behaviour.router_answer = "DEEP"
    answer = await sdk.chat.completions.create(model="m", messages=USER_HI)
    assert (answer.choices[0].message.content or "").startswith("[fast · sim-test]")


def test_heuristic_ignores_the_tier_names_in_the_signature_and_grows_with_length() -> None:
    assert route_heuristic(ROUTER_PROMPT_SIGNATURE) == "FAST"
    assert route_heuristic("ok " * 600) == "BALANCED"
    assert route_heuristic("ok " * 2100) == "DEEP"


@settings(max_examples=50)
@given(st.text())
def test_tokens_concatenate_to_the_original_text(text: str) -> None:
    assert "".join(tokenize(text)) == text


# -- fleets -----------------------------------------------------------------------------------


async def test_fleet_config_toml_points_each_tier_at_its_models(
    session: aiohttp.ClientSession,
) -> None:
    replica = SimulatedModel("sim-fast", config_keys={"priority": 2, "weight": 0.5})
    fleet = SimulatedFleet(
        fast=[replica, SimulatedModel("sim-fast")],
        balanced=[SimulatedModel("sim-mid")],
        deep=[SimulatedModel("sim-big")],
    )
    async with fleet:
        config = tomllib.loads(
            fleet_config_toml(fleet, strategy="llm", health_interval_seconds=0.5)
        )
        async with session.post(
            f"{fleet.deep[0].base_url}/chat/completions", json=chat_body()
        ) as resp:
            answer = await resp.json()

    assert config["server"] == {"host": "127.0.0.1", "port": 0}
    assert config["routing"] == {"strategy": "llm", "router_tier": "balanced"}
    assert config["health"] == {"interval_seconds": 0.5}
    fast = config["models"]["fast"]
    assert [e["base_url"] for e in fast] == [m.base_url for m in fleet.fast]
    assert (fast[0]["priority"], fast[0]["weight"], fast[1]["max_tokens"]) == (2, 0.5, 2048)
    assert config["models"]["deep"][0]["name"] == "sim-big"
    assert answer["choices"][0]["message"]["content"].startswith("[deep · sim-big]")


async def test_demo_fleet_has_three_tiers_with_realistic_timing() -> None:
    fleet = demo_fleet()
    async with fleet:
        ports = {model.port for model in fleet.models}
        for model in fleet.fast + fleet.balanced + fleet.deep:
            assert model.behaviour.token_gap > 0
            assert model.behaviour.first_token_delay > 0
            model.behaviour = Behaviour()
        async with AsyncOpenAI(
            base_url=fleet.balanced[0].base_url, api_key="x", max_retries=0
        ) as client:
            answer = await client.chat.completions.create(model="sim-qwen-32b", messages=USER_HI)

    assert [m.name for m in fleet.fast] == ["sim-llama-8b", "sim-llama-8b"]
    assert [m.config_keys for m in fleet.fast] == [{"max_concurrent": 4}] * 2, "slots shown"
    assert [m.name for m in fleet.balanced + fleet.deep] == ["sim-qwen-32b", "sim-gpt-oss-120b"]
    assert [m.name for m in fleet.embeddings] == ["sim-embed"]
    assert len(ports) == 5
    assert (answer.choices[0].message.content or "").startswith("[balanced · sim-qwen-32b]")


def test_structured_output_follows_the_schema_deterministically() -> None:
    from octoroute.simulator.replies import schema_instance, structured_reply

    schema = {
        "type": "object",
        "properties": {
            "kind": {"enum": ["a", "b"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "maybe": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "child": {"$ref": "#/$defs/Child"},
        },
        "$defs": {"Child": {"type": "object", "properties": {"ok": {"type": "boolean"}}}},
    }
    expected = {"kind": "a", "tags": ["sim"], "maybe": 1, "child": {"ok": True}}
    assert schema_instance(schema) == expected
    body = {"response_format": {"type": "json_schema", "json_schema": {"schema": schema}}}
    assert json.loads(structured_reply(body) or "") == expected
    assert structured_reply({"response_format": {"type": "text"}}) is None


async def test_a_native_responses_server_answers_only_when_asked_to() -> None:
    async with SimulatedModel("sim") as model, aiohttp.ClientSession() as session:
        url = model.base_url + "/responses"
        async with session.post(url, json={"model": "sim", "input": "hi"}) as refused:
            assert refused.status == 404
        model.behaviour.native_responses = True
        async with session.post(url, json={"model": "sim", "input": "hi"}) as answered:
            body = await answered.json()
    assert body["object"] == "response"
    assert body["output"][0]["content"][0]["text"].startswith("[sim]")
    assert len(model.responses_requests) == 2
