"""Ollama's API (``/api/...``) over real sockets with the official ``ollama`` python client, in
front of the simulated fleet (translated to chat completions) and a fake Ollama server
(``native = ["ollama"]``, passed through)."""

from __future__ import annotations

import asyncio
import base64
import json
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import orjson
import pytest
from ollama import AsyncClient, ChatResponse, ResponseError

from octoroute.config import parse_config
from octoroute.fleet.facts import InstanceFacts
from octoroute.simulator import Drop, HttpError, SimulatedFleet, SimulatedModel, fleet_config_toml
from tests.harness import (
    RouterHandle,
    config_for,
    endpoint,
    raw_exchange,
    running_router,
    with_server,
    within,
)
from tests.integration.test_clients import WEATHER_TOOL
from tests.ollama_server import WORDS, FakeOllama, fake_ollama

PNG = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8cf000000030101006b7b4d840000000049454e44ae426082"
    )
).decode()
"""A 1x1 PNG, base64: what the client sends for an image."""
WEATHER: Any = WEATHER_TOOL
"""An OpenAI function tool: Ollama's tools have the same shape."""
HI: Any = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
async def fleet() -> AsyncIterator[SimulatedFleet]:
    """The standard fleet plus an embedding model."""
    async with SimulatedFleet(
        fast=[SimulatedModel("sim-fast-a"), SimulatedModel("sim-fast-b")],
        balanced=[SimulatedModel("sim-balanced")],
        deep=[SimulatedModel("sim-deep")],
        embeddings=[SimulatedModel("sim-embed")],
    ) as started:
        yield started


@pytest.fixture
async def client(router: RouterHandle) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(host=router.url) as sdk:
        yield sdk


async def collect(stream: Any) -> list[Any]:
    return [part async for part in stream]


# --- chat -------------------------------------------------------------------------------------


async def test_chat_answers_one_object_with_the_options_mapped(
    client: AsyncClient, fleet: SimulatedFleet
) -> None:
    answer = await client.chat(
        model="deep",
        messages=[{"role": "system", "content": "Be brief."}, *HI],
        stream=False,
        keep_alive="10m",
        options={
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 20,
            "seed": 7,
            "num_predict": 64,
            "stop": ["###"],
            "num_ctx": 8192,
            "num_thread": 4,
        },
    )

    assert answer.model == "deep"
    assert answer.done is True
    assert answer.done_reason == "stop"
    assert answer.message.role == "assistant"
    assert answer.message.content is not None
    assert answer.message.content.startswith("[deep · sim-deep] You asked")
    assert answer.prompt_eval_count
    assert answer.prompt_eval_count > 0
    assert answer.eval_count
    assert answer.eval_count > 0
    assert answer.total_duration
    assert answer.total_duration > 0
    (sent,) = fleet.deep[0].chat_requests
    assert sent.json == {
        "model": "sim-deep",
        "messages": [{"role": "system", "content": "Be brief."}, *HI],
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 20,
        "seed": 7,
        "max_tokens": 64,
        "stop": ["###"],
    }


async def test_chat_streams_ndjson_lines_that_add_up_to_the_buffered_answer(
    client: AsyncClient, router: RouterHandle, fleet: SimulatedFleet
) -> None:
    whole = await client.chat(model="deep", messages=HI, stream=False)
    parts: list[ChatResponse] = await collect(
        await client.chat(model="deep", messages=HI, stream=True)
    )

    assert all(part.done is False for part in parts[:-1])
    last = parts[-1]
    assert last.done is True
    assert last.done_reason == "stop"
    assert last.eval_count == whole.eval_count
    assert last.prompt_eval_count == whole.prompt_eval_count
    assert last.prompt_eval_duration
    assert last.eval_duration
    assert "".join(part.message.content or "" for part in parts) == whole.message.content
    assert fleet.deep[0].chat_requests[1].json["stream_options"] == {"include_usage": True}

    async with (
        aiohttp.ClientSession() as session,
        session.post(router.url + "/api/chat", json={"model": "deep", "messages": HI}) as response,
    ):
        assert response.headers["Content-Type"] == "application/x-ndjson"
        assert response.headers["x-octoroute-tier"] == "deep"
        assert response.headers["x-octoroute-endpoint"] == "sim-deep"
        lines = (await response.read()).split(b"\n")
    assert lines[-1] == b""
    assert [orjson.loads(line)["done"] for line in lines[:-1]][-1] is True


# --- generate ---------------------------------------------------------------------------------


async def test_generate_answers_with_response_buffered_and_streamed(
    client: AsyncClient, fleet: SimulatedFleet
) -> None:
    whole = await client.generate(model="deep", prompt="Why is the sky blue?", system="Be brief.")
    parts = await collect(
        await client.generate(model="deep", prompt="Why is the sky blue?", stream=True)
    )

    assert whole.response
    assert whole.response.startswith("[deep · sim-deep] You asked")
    assert whole.done_reason == "stop"
    assert "".join(part.response for part in parts) == whole.response
    assert parts[-1].done is True
    first, second = fleet.deep[0].chat_requests
    assert first.json["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Why is the sky blue?"},
    ]
    assert second.json["messages"] == [{"role": "user", "content": "Why is the sky blue?"}]


async def test_raw_and_suffix_prompts_go_to_completions_as_written(
    client: AsyncClient, fleet: SimulatedFleet
) -> None:
    fim = "<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n<|fim_middle|>"
    raw = await client.generate(model="deep", prompt=fim, raw=True, options={"num_predict": 16})
    parts = await collect(
        await client.generate(model="deep", prompt="def add(a, b):\n", suffix="\n", stream=True)
    )

    assert raw.response
    assert "".join(part.response for part in parts)
    assert parts[-1].done_reason in ("stop", "length")
    first, second = fleet.deep[0].completion_requests
    assert first.json["prompt"] == fim
    assert first.json["max_tokens"] == 16
    assert "messages" not in first.json
    assert second.json["prompt"] == "def add(a, b):\n"
    assert second.json["suffix"] == "\n"
    assert fleet.deep[0].chat_requests == []


# --- embeddings -------------------------------------------------------------------------------


async def test_embed_and_embeddings_use_the_embedding_model(
    client: AsyncClient, fleet: SimulatedFleet
) -> None:
    many = await client.embed(model="sim-embed", input=["one", "two"], dimensions=8)
    one = await client.embed(model="auto", input="alone")
    legacy = await client.embeddings(model="sim-embed", prompt="old style")

    assert [len(vector) for vector in many.embeddings] == [8, 8]
    assert many.embeddings[0] != many.embeddings[1]
    assert [round(math.hypot(*vector), 6) for vector in many.embeddings] == [1.0, 1.0]
    assert many.model == "sim-embed"
    assert many.prompt_eval_count
    assert many.prompt_eval_count > 0
    assert len(one.embeddings) == 1
    assert len(legacy.embedding) == 16
    sent = [request.json for request in fleet.embeddings[0].embedding_requests]
    assert sent == [
        {"model": "sim-embed", "input": ["one", "two"]},
        {"model": "sim-embed", "input": "alone"},
        {"model": "sim-embed", "input": "old style"},
    ]


async def test_nothing_to_embed_is_answered_without_a_model_call(
    client: AsyncClient, fleet: SimulatedFleet
) -> None:
    assert (await client.embed(model="sim-embed", input=[])).embeddings == []
    assert (await client.embeddings(model="sim-embed", prompt="")).embedding == []
    assert fleet.embeddings[0].embedding_requests == []


# --- the model endpoints ----------------------------------------------------------------------


async def test_list_show_and_ps_describe_the_routers_models(
    client: AsyncClient, router: RouterHandle
) -> None:
    listing = await client.list()
    names = [model.model for model in listing.models]
    assert names == [
        "auto:latest",
        "fast:latest",
        "balanced:latest",
        "deep:latest",
        "sim-fast-a:latest",
        "sim-fast-b:latest",
        "sim-balanced:latest",
        "sim-deep:latest",
        "sim-embed:latest",
    ]
    assert all(model.modified_at is not None and model.digest for model in listing.models)

    shown = await client.show("auto")
    assert shown.capabilities == ["completion", "tools"]
    assert shown.modelinfo == {"general.architecture": "octoroute"}  # no window known yet
    assert (await client.show("sim-embed")).capabilities == ["embedding"]
    assert (await client.ps()).models == []

    endpoint(router, "sim-deep").observe(InstanceFacts(loaded=True, context_window=32768))
    shown = await client.show("deep")
    assert shown.modelinfo == {
        "general.architecture": "octoroute",
        "octoroute.context_length": 32768,
    }
    assert shown.parameters == "num_ctx 32768"
    (running,) = (await client.ps()).models
    assert running.model == "sim-deep:latest"
    assert running.context_length == 32768
    # "fast" has two replicas and only one reports a window: the router cannot promise it.
    endpoint(router, "sim-fast-a").observe(InstanceFacts(context_window=4096))
    assert "octoroute.context_length" not in ((await client.show("fast")).modelinfo or {})
    endpoint(router, "sim-fast-b").observe(InstanceFacts(context_window=8192))
    assert (await client.show("fast")).modelinfo == {
        "general.architecture": "octoroute",
        "octoroute.context_length": 4096,
    }


async def test_show_and_ps_tell_the_window_placement_enforces_the_configured_one_first() -> None:
    """``context_window`` in the config is the window placement checks: an Ollama client told
    a larger one (the server's own) would send conversations the router then refuses."""
    async with (
        SimulatedFleet(
            fast=[SimulatedModel("sim-fast", config_keys={"context_window": 3072})],
            balanced=[SimulatedModel("sim-balanced")],
            deep=[SimulatedModel("sim-deep", config_keys={"context_window": 65536})],
        ) as fleet,
        running_router(config_for(fleet, strategy="rule")) as router,
    ):
        endpoint(router, "sim-fast").observe(InstanceFacts(loaded=True, context_window=4096))
        endpoint(router, "sim-deep").observe(InstanceFacts(loaded=True))  # reports none
        async with AsyncClient(host=router.url) as client:
            fast, deep = await client.show("fast"), await client.show("deep")
            running = {model.model: model.context_length for model in (await client.ps()).models}

    assert (fast.modelinfo or {})["octoroute.context_length"] == 3072
    assert fast.parameters == "num_ctx 3072"
    assert (deep.modelinfo or {})["octoroute.context_length"] == 65536
    assert running == {"sim-fast:latest": 3072, "sim-deep:latest": 65536}


async def test_version_and_the_root_probe_answer_as_ollama_does(router: RouterHandle) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(router.url + "/api/version") as response:
            assert (await response.json()) == {"version": "0.12.0"}
        async with session.head(router.url + "/") as response:
            assert response.status == 200
        async with session.get(router.url + "/") as response:
            assert await response.text() == "Ollama is running"
        async with session.post(
            router.url + "/api/show", json={"name": "balanced"}
        ) as response:  # Continue sends the older "name"
            assert response.status == 200


async def test_a_name_and_name_latest_are_the_same_model(
    client: AsyncClient, fleet: SimulatedFleet
) -> None:
    # Open WebUI adds ":latest" to every name without a tag before it sends it.
    answer = await client.chat(model="deep:latest", messages=HI)
    vectors = await client.embed(model="sim-embed:latest", input="x")
    shown = await client.show("auto:latest")

    assert answer.model == "deep:latest"
    assert fleet.deep[0].chat_requests[0].json["model"] == "sim-deep"
    assert len(vectors.embeddings) == 1
    assert shown.capabilities == ["completion", "tools"]
    with pytest.raises(ResponseError) as unknown:
        await client.chat(model="deep:7b", messages=HI)
    assert unknown.value.status_code == 404


# --- tools, images, format --------------------------------------------------------------------


async def test_a_tool_call_round_trip(client: AsyncClient, fleet: SimulatedFleet) -> None:
    question: Any = {"role": "user", "content": "Weather in Paris?"}
    first = await client.chat(model="deep", messages=[question], tools=[WEATHER])
    (call,) = first.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert call.function.arguments == {"city": "sim", "days": 1}
    assert first.done_reason == "stop"

    streamed = await collect(
        await client.chat(model="deep", messages=[question], tools=[WEATHER], stream=True)
    )
    calls = [c for part in streamed for c in part.message.tool_calls or []]
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("get_weather", {"city": "sim", "days": 1})
    ]

    second = await client.chat(
        model="deep",
        messages=[
            question,
            first.message,
            {"role": "tool", "content": "18 °C", "tool_name": "get_weather"},
        ],
        tools=[WEATHER],
    )
    assert second.message.content
    sent = fleet.deep[0].chat_requests
    assert sent[0].json["tools"] == [WEATHER]
    history = sent[2].json["messages"]
    (upstream_call,) = history[1]["tool_calls"]
    assert upstream_call["function"] == {
        "name": "get_weather",
        "arguments": '{"city":"sim","days":1}',
    }
    assert history[2] == {"role": "tool", "tool_call_id": upstream_call["id"], "content": "18 °C"}


async def test_images_become_image_url_parts(client: AsyncClient, fleet: SimulatedFleet) -> None:
    await client.chat(
        model="deep", messages=[{"role": "user", "content": "What is this?", "images": [PNG]}]
    )
    await client.generate(model="deep", prompt="Describe it.", images=[PNG])

    chat, generate = fleet.deep[0].chat_requests
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    assert chat.json["messages"] == [
        {"role": "user", "content": [image, {"type": "text", "text": "What is this?"}]}
    ]
    assert generate.json["messages"][0]["content"] == [
        image,
        {"type": "text", "text": "Describe it."},
    ]


async def test_format_becomes_response_format(client: AsyncClient, fleet: SimulatedFleet) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    structured = await client.chat(model="deep", messages=HI, format=schema)
    as_json = await client.generate(model="deep", prompt="Answer in JSON.", format="json")

    assert orjson.loads(structured.message.content or "") == {"name": "sim", "age": 1}
    assert orjson.loads(as_json.response or "") == {"reply": "sim"}
    first, second = fleet.deep[0].chat_requests
    assert first.json["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }
    assert second.json["response_format"] == {"type": "json_object"}


async def test_think_is_sent_as_reasoning_effort(
    client: AsyncClient, fleet: SimulatedFleet
) -> None:
    await client.chat(model="deep", messages=HI, think=False)
    await client.chat(model="deep", messages=HI, think="high")
    await client.chat(model="deep", messages=HI, think=True)

    efforts = [r.json.get("reasoning_effort") for r in fleet.deep[0].chat_requests]
    assert efforts == ["none", "high", None]


async def test_a_load_request_is_answered_without_a_model_call(
    client: AsyncClient, fleet: SimulatedFleet
) -> None:
    loaded = await client.chat(model="deep", messages=[])
    unloaded = await client.generate(model="deep", prompt="", keep_alive=0)

    assert (loaded.done, loaded.done_reason) == (True, "load")
    assert (unloaded.done, unloaded.done_reason) == (True, "unload")
    assert fleet.deep[0].requests == [] or all(
        r.path == "/v1/models" for r in fleet.deep[0].requests
    )
    with pytest.raises(ResponseError) as unknown:
        await client.chat(model="nope", messages=[])
    assert unknown.value.status_code == 404


# --- errors ---------------------------------------------------------------------------------


async def test_errors_are_response_errors_with_the_right_status(
    client: AsyncClient, router: RouterHandle, fleet: SimulatedFleet
) -> None:
    with pytest.raises(ResponseError) as not_found:
        await client.chat(model="no-such-model", messages=HI)
    assert not_found.value.status_code == 404
    assert not_found.value.error.startswith("model 'no-such-model' not found")
    with pytest.raises(ResponseError) as not_found:
        await client.show("no-such-model")
    assert not_found.value.status_code == 404
    with pytest.raises(ResponseError) as wrong_kind:
        await client.chat(model="sim-embed", messages=HI)
    assert wrong_kind.value.status_code == 400
    assert "/api/embed" in wrong_kind.value.error
    with pytest.raises(ResponseError) as no_embedding:
        await client.embed(model="deep", input="x")
    assert no_embedding.value.status_code == 400
    with pytest.raises(ResponseError) as bad_option:
        await client.chat(model="deep", messages=HI, options={"temperature": "hot"})
    assert bad_option.value.status_code == 400
    assert "options.temperature" in bad_option.value.error
    with pytest.raises(ResponseError) as untranslatable:
        await client.generate(model="deep", prompt="x", template="{{ .Prompt }}")
    assert untranslatable.value.status_code == 400
    assert untranslatable.value.error.startswith("template overrides")

    fleet.deep[0].behaviour.fault = HttpError.context_length(4096)
    with pytest.raises(ResponseError) as relayed:
        await client.chat(model="deep", messages=HI)
    assert relayed.value.status_code == 400
    assert "maximum context length is 4096" in relayed.value.error
    fleet.deep[0].behaviour.fault = HttpError(500)
    with pytest.raises(ResponseError) as failed:
        await client.chat(model="deep", messages=HI)
    assert failed.value.status_code == 502
    for _ in range(3):  # past health.failure_threshold: the tier is down
        with pytest.raises(ResponseError):
            await client.chat(model="deep", messages=HI)
    with pytest.raises(ResponseError) as down:
        await collect(await client.chat(model="deep", messages=HI, stream=True))
    assert down.value.status_code == 503

    async with aiohttp.ClientSession() as session:
        async with session.post(router.url + "/api/chat", data=b"{not json") as response:
            assert response.status == 400  # any Content-Type is read as JSON, as Ollama does
            assert set(await response.json()) == {"error"}
        async with session.post(
            router.url + "/api/chat",
            data=b"{not json",
            headers={"Content-Type": "application/json"},
        ) as response:
            assert response.status == 400
            assert "error" in await response.json()
        async with session.post(router.url + "/api/pull", json={"model": "x"}) as response:
            assert response.status == 404
            assert "POST /api/chat" in (await response.json())["error"]


async def test_numbers_no_translation_can_carry_are_a_400_naming_the_problem(
    router: RouterHandle, fleet: SimulatedFleet
) -> None:
    """A number past a 64-bit float anywhere in a body that is translated, and an integer
    option past 64 bits, are the client's error in each dialect's shape, never a 500."""
    huge = b'"x": 1e400'
    bodies = {
        "/api/chat": b'{"model": "fast", "messages": [{"role": "user", "content": "Hi"}], ',
        "/api/generate": b'{"model": "fast", "prompt": "Hi", ',
        "/api/embed": b'{"model": "sim-embed", "input": "Hi", ',
        "/api/embeddings": b'{"model": "sim-embed", "prompt": "Hi", ',
        "/api/show": b'{"model": "fast", ',
    }
    async with aiohttp.ClientSession() as session:
        for path, start in bodies.items():
            async with session.post(router.url + path, data=start + huge + b"}") as response:
                assert response.status == 400, path
                answer = await response.json()
                assert set(answer) == {"error"}
                assert "too large" in answer["error"], path
        anthropic = {"model": "fast", "max_tokens": 5, "messages": HI}
        async with session.post(
            router.url + "/v1/messages",
            data=orjson.dumps(anthropic)[:-1] + b", " + huge + b"}",
            headers={"Content-Type": "application/json"},
        ) as response:
            assert response.status == 400
            answer = await response.json()
            assert answer["type"] == "error"
            assert "too large" in answer["error"]["message"]
        async with session.post(
            router.url + "/v1/responses",
            data=b'{"model": "fast", "input": "Hi", ' + huge + b"}",
            headers={"Content-Type": "application/json"},
        ) as response:
            assert response.status == 400
            assert "too large" in (await response.json())["error"]["message"]
        for option, value in (("seed", 10**20), ("num_predict", 1e300), ("top_k", 2**64)):
            for path, sent in (
                ("/api/chat", {"model": "fast", "messages": HI}),
                ("/api/generate", {"model": "fast", "prompt": "Hi"}),
            ):
                body = {**sent, "stream": False, "options": {option: value}}
                written = json.dumps(body).encode()  # orjson cannot write 2**64
                async with session.post(router.url + path, data=written) as response:
                    assert response.status == 400, (path, option)
                    assert f"options.{option}" in (await response.json())["error"]
        for path, sent in (
            ("/api/embed", {"model": "sim-embed", "input": "Hi"}),
            ("/api/embeddings", {"model": "sim-embed", "prompt": "Hi"}),
        ):
            body = {**sent, "keep_alive": [1]}
            async with session.post(router.url + path, data=orjson.dumps(body)) as response:
                assert response.status == 400, path
                assert (await response.json())["error"].startswith("keep_alive must be a duration")
    nothing_sent = [
        r.path for model in fleet.models for r in model.requests if r.path != "/v1/models"
    ]
    assert nothing_sent == []  # every one was refused before a model was asked


FORM = "Content-Type: application/x-www-form-urlencoded\r\n"
"""What ``curl -d '{...}'`` declares, Ollama's own recipe for every endpoint."""


@pytest.mark.parametrize("head", [FORM, ""], ids=["curl -d form type", "no Content-Type"])
async def test_every_post_route_reads_json_whatever_the_content_type(
    router: RouterHandle, head: str
) -> None:
    chat = {"model": "fast", "messages": HI, "stream": False}
    status, headers, body = await raw_exchange(
        router.url, "POST", "/api/chat", head=head, body=orjson.dumps(chat)
    )
    assert status == "HTTP/1.1 200 OK"
    assert orjson.loads(body)["message"]["content"].startswith("[fast")
    status, headers, body = await raw_exchange(
        router.url, "POST", "/api/chat", head=head, body=orjson.dumps({**chat, "stream": None})
    )
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == "application/x-ndjson"
    assert b'"done":true' in body
    bodies = {
        "/api/generate": {"model": "fast", "prompt": "Hi", "stream": False},
        "/api/embed": {"model": "sim-embed", "input": "Hi"},
        "/api/embeddings": {"model": "sim-embed", "prompt": "Hi"},
        "/api/show": {"model": "fast"},
    }
    answers = {}
    for path, sent in bodies.items():
        status, headers, body = await raw_exchange(
            router.url, "POST", path, head=head, body=orjson.dumps(sent)
        )
        assert status == "HTTP/1.1 200 OK", (path, body)
        answers[path] = orjson.loads(body)
    assert answers["/api/generate"]["done"] is True
    assert len(answers["/api/embed"]["embeddings"]) == 1
    assert answers["/api/embeddings"]["embedding"]
    assert answers["/api/show"]["capabilities"] == ["completion", "tools"]
    # Not JSON is still the client's error, in Ollama's shape, whatever the header said.
    status, _, body = await raw_exchange(router.url, "POST", "/api/chat", head=head, body=b"a=b")
    assert status == "HTTP/1.1 400 Bad Request"
    assert "JSON" in orjson.loads(body)["error"]
    status, _, body = await raw_exchange(router.url, "POST", "/api/chat", head=head)
    assert status == "HTTP/1.1 400 Bad Request"
    assert set(orjson.loads(body)) == {"error"}
    # The OpenAI and Anthropic routes keep refusing a body not declared as JSON, as OpenAI's API
    # and vLLM do: a form type there is a client bug worth naming.
    for path in ("/v1/chat/completions", "/v1/messages"):
        status, _, body = await raw_exchange(
            router.url, "POST", path, head=head, body=orjson.dumps(chat)
        )
        assert status == "HTTP/1.1 415 Unsupported Media Type", path
        assert b"Content-Type: application/json" in body


async def test_a_translated_stream_fails_over_before_the_first_byte(
    fleet: SimulatedFleet,
) -> None:
    broken, healthy = fleet.fast
    broken.config_keys["priority"] = 2  # always tried first
    broken.behaviour.fault = HttpError(503)
    async with (
        running_router(config_for(fleet, strategy="rule")) as router,
        AsyncClient(host=router.url) as client,
    ):
        parts = await collect(await client.chat(model="fast", messages=HI, stream=True))
    assert parts[-1].done is True
    assert "".join(p.message.content or "" for p in parts).startswith("[fast · sim-fast-b]")
    assert len(broken.chat_requests) == 1
    assert len(healthy.chat_requests) == 1


async def test_a_stream_broken_midway_ends_with_an_error_line(
    client: AsyncClient, fleet: SimulatedFleet
) -> None:
    fleet.deep[0].behaviour.fault = Drop(after_chunks=3)
    seen: list[ChatResponse] = []

    async def consume() -> None:
        async for part in await client.chat(model="deep", messages=HI, stream=True):
            seen.append(part)

    with pytest.raises(ResponseError, match="the upstream stream failed after it had started"):
        await consume()
    assert seen
    assert all(part.done is False for part in seen)


# --- native pass-through ----------------------------------------------------------------------

NATIVE_OPTIONS: Any = {"temperature": 0.1, "num_ctx": 2048, "mirostat": 1}


def native_llama(server: FakeOllama) -> str:
    """``native-llama`` in the deep tier: the fake Ollama, native, preferred."""
    return f"""
[[models.deep]]
name = "native-llama"
base_url = "{server.base_url}"
max_tokens = 512
native = ["ollama"]
priority = 2
"""


@pytest.fixture
async def native(fleet: SimulatedFleet) -> AsyncIterator[tuple[RouterHandle, FakeOllama]]:
    """``native-llama`` (a fake Ollama, native, preferred) beside ``sim-deep`` in the deep tier,
    ``native-embed`` on the same server, and aliases with Ollama-style names."""
    async with fake_ollama() as server:
        extra = (
            native_llama(server)
            + f"""
[[embeddings]]
name = "native-embed"
base_url = "{server.base_url}"
native = ["ollama"]

[aliases]
"llama3.1:8b" = "native-llama"
"""
        )
        config = parse_config(fleet_config_toml(fleet, strategy="rule", extra=extra))
        async with running_router(config) as router:
            yield router, server


async def test_a_native_endpoint_gets_the_body_with_only_model_replaced(native: Any) -> None:
    router, server = native
    async with AsyncClient(host=router.url) as client:
        whole = await client.chat(
            model="llama3.1:8b", messages=HI, options=NATIVE_OPTIONS, keep_alive=-1
        )
        parts = await collect(await client.chat(model="llama3.1:8b", messages=HI, stream=True))
        generated = await client.generate(model="native-llama", prompt="hi", raw=True)

    assert whole.message.content == "".join(WORDS)
    assert whole.eval_count == 6
    assert [p.message.content for p in parts[:-1]] == list(WORDS)
    assert parts[-1].done is True
    assert generated.response == "".join(WORDS)
    first, second = server.generation("/api/chat")
    assert first == {
        "model": "native-llama",
        "messages": HI,
        "stream": False,
        "options": NATIVE_OPTIONS,
        "keep_alive": -1,
        "tools": [],
    }
    assert second["model"] == "native-llama"
    assert second["stream"] is True
    (raw,) = server.generation("/api/generate")
    assert raw["raw"] is True
    assert raw["model"] == "native-llama"
    tokens = router.runtime.metrics.pools["deep"].tokens
    assert tokens["completion"]._value.get() == 6 * 3


async def test_native_embeddings_are_passed_through(native: Any) -> None:
    router, server = native
    async with AsyncClient(host=router.url) as client:
        embedded = await client.embed(model="native-embed", input=["ab", "abc"], truncate=False)
        legacy = await client.embeddings(model="native-embed", prompt="x")
    assert embedded.embeddings == [[2.0, 1.0], [3.0, 1.0]]
    assert legacy.embedding == [0.5, 0.25]
    (sent,) = server.generation("/api/embed")
    assert sent == {"model": "native-embed", "input": ["ab", "abc"], "truncate": False}


async def test_a_failed_native_endpoint_fails_over_to_a_translated_one(native: Any) -> None:
    router, server = native
    server.fail_status = 500
    async with AsyncClient(host=router.url) as client:
        parts = await collect(await client.chat(model="deep", messages=HI, stream=True))
    assert len(server.generation("/api/chat")) == 1
    assert "".join(p.message.content or "" for p in parts).startswith("[deep · sim-deep]")


async def test_a_native_stream_broken_midway_ends_with_an_error_line(native: Any) -> None:
    router, server = native
    server.drop_after = 2
    seen: list[str] = []

    async def consume(client: AsyncClient) -> None:
        async for part in await client.chat(model="native-llama", messages=HI, stream=True):
            seen.append(part.message.content or "")

    async with AsyncClient(host=router.url) as client:
        with pytest.raises(ResponseError, match="stream failed after it had started"):
            await consume(client)
    assert seen == list(WORDS[:2])


async def test_an_untranslatable_field_passes_when_every_endpoint_is_native(native: Any) -> None:
    router, server = native
    async with AsyncClient(host=router.url) as client:
        answer = await within(
            client.generate(model="native-llama", prompt="hi", template="{{ .Prompt }}")
        )
    assert answer.response == "".join(WORDS)  # type: ignore[attr-defined]
    assert server.generation("/api/generate")[0]["template"] == "{{ .Prompt }}"


async def test_a_quiet_native_stream_gets_no_keepalive_filler(fleet: SimulatedFleet) -> None:
    """Relayed NDJSON has no harmless filler (every client decodes each line as JSON), so a
    native stream that goes quiet past the keep-alive interval gets nothing written meanwhile."""
    async with fake_ollama() as server:
        extra = native_llama(server)
        config = with_server(
            parse_config(fleet_config_toml(fleet, strategy="rule", extra=extra)),
            stream_keepalive_seconds=0.02,
        )
        server.pause_after = 1
        async with running_router(config) as router, httpx.AsyncClient(timeout=10) as http:
            body = {"model": "native-llama", "messages": HI}
            async with http.stream("POST", f"{router.url}/api/chat", json=body) as response:
                lines = response.aiter_lines()
                first = str(await within(anext(lines)))
                # Several keep-alive intervals pass while the upstream is silent.
                await asyncio.sleep(0.2)
                server.resume.set()
                rest = [line async for line in lines]
    decoded = [orjson.loads(line) for line in [first, *rest] if line]
    assert "".join(part["message"]["content"] for part in decoded) == "".join(WORDS)
    assert decoded[-1]["done"] is True
    assert len(decoded) == len(WORDS) + 1
