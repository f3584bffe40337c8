"""``MultiModelServer``: several simulated models behind one address, over real sockets: each
request reaches the model it names, each kind's lists hold every model, an unknown name is a 404
that lists the names served."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from openai import AsyncOpenAI
from prometheus_client.parser import text_string_to_metric_families

from octoroute.enums import Kind
from octoroute.simulator import MultiModelServer, SimulatedModel

HI = [{"role": "user", "content": "hi"}]


@asynccontextmanager
async def serving(*names: str, kind: Kind = Kind.OPENAI) -> AsyncIterator[MultiModelServer]:
    server = MultiModelServer([SimulatedModel(name, label="fast") for name in names], kind=kind)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_each_request_reaches_the_model_it_names_and_is_recorded_there() -> None:
    async with (
        serving("alpha", "beta") as server,
        AsyncOpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0) as sdk,
    ):
        listed = [model.id async for model in sdk.models.list()]
        answer = await sdk.chat.completions.create(model="beta", messages=HI)  # type: ignore[arg-type]
        completion = await sdk.completions.create(model="alpha", prompt="hi")
        alpha, beta = server.models

    assert listed == ["alpha", "beta"]
    assert (answer.choices[0].message.content or "").startswith("[fast · beta]")
    assert completion.model == "alpha"
    assert [r.path for r in beta.chat_requests] == ["/v1/chat/completions"]
    assert [r.path for r in alpha.completion_requests] == ["/v1/completions"]
    assert alpha.chat_requests == []


async def test_an_unknown_name_is_a_404_listing_the_names_served() -> None:
    async with serving("alpha", "beta") as server, httpx.AsyncClient() as http:
        answer = await http.post(
            server.url + "/v1/chat/completions", json={"model": "gamma", "messages": HI}
        )

    assert answer.status_code == 404
    error = answer.json()["error"]
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    assert error["message"] == (
        "The model 'gamma' does not exist on this server; it serves 'alpha', 'beta'."
    )


async def test_a_server_with_one_model_answers_any_name_like_llama_server() -> None:
    async with serving("only") as server, httpx.AsyncClient() as http:
        answer = await http.post(
            server.url + "/v1/chat/completions", json={"model": "anything", "messages": HI}
        )

    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"].startswith("[fast · only]")


async def test_an_ollama_server_lists_every_model_and_matches_names_as_ollama_does() -> None:
    async with (
        serving("llama3.1:8b", "Qwen3", kind=Kind.OLLAMA) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        tags = (await http.get("/api/tags")).json()
        ps = (await http.get("/api/ps")).json()
        show = await http.post("/api/show", json={"model": "qwen3:latest"})
        missing = await http.post("/api/show", json={"model": "mistral"})
        chat = await http.post(
            "/v1/chat/completions", json={"model": "qwen3:latest", "messages": HI}
        )

    assert [m["name"] for m in tags["models"]] == ["llama3.1:8b", "qwen3:latest"]
    assert len({m["digest"] for m in tags["models"]}) == 2
    assert [m["name"] for m in ps["models"]] == ["llama3.1:8b", "qwen3:latest"]
    assert show.status_code == 200
    assert missing.status_code == 404
    assert chat.json()["choices"][0]["message"]["content"].startswith("[fast · Qwen3]")


async def test_a_vllm_server_exposes_each_models_gauges_in_one_valid_exposition() -> None:
    async with serving("a", "b", kind=Kind.VLLM) as server, httpx.AsyncClient() as http:
        text = (await http.get(server.url + "/metrics")).text

    families = {family.name: family for family in text_string_to_metric_families(text)}
    running = families["vllm:num_requests_running"]
    assert sorted(sample.labels["model_name"] for sample in running.samples) == ["a", "b"]
    assert text.count("# TYPE vllm:num_requests_running gauge") == 1
    assert text.count("python_gc_objects_collected_total{") == 1


async def test_llama_server_paths_take_the_model_from_the_query() -> None:
    async with serving("a", "b", kind=Kind.LLAMACPP) as server, httpx.AsyncClient() as http:
        named = (await http.get(server.url + "/props", params={"model": "b"})).json()
        default = (await http.get(server.url + "/props")).json()

    assert named["model_path"] == "/models/b.gguf"
    assert default["model_path"] == "/models/a.gguf"
