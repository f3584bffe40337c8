"""``POST /v1/embeddings`` over real sockets with the official openai SDK and LangChain: the input
shapes, ``auto`` and aliases, failover and ejection between replicas, validation, and the
embedding models in the listings."""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from langchain_openai import OpenAIEmbeddings
from openai import AsyncOpenAI
from pydantic import SecretStr

from octoroute.simulator import HttpError, SimulatedFleet, SimulatedModel
from octoroute.simulator.embeddings import vector
from tests.harness import RouterHandle, config_for, first_probe_round, running_router


def embedding_fleet() -> SimulatedFleet:
    """One model per tier, two replicas of ``sim-embed`` (the first preferred) and
    ``sim-embed-small``."""
    return SimulatedFleet(
        fast=[SimulatedModel("sim-fast")],
        balanced=[SimulatedModel("sim-balanced")],
        deep=[SimulatedModel("sim-deep")],
        embeddings=[
            SimulatedModel("sim-embed", config_keys={"priority": 2}),
            SimulatedModel("sim-embed"),
            SimulatedModel("sim-embed-small"),
        ],
    )


ALIASES = '[aliases]\n"text-embedding-3-*" = "sim-embed-small"\n"ada" = "auto"\n'


@pytest.fixture
async def fleet() -> AsyncIterator[SimulatedFleet]:
    async with embedding_fleet() as started:
        yield started


@pytest.fixture
async def router(fleet: SimulatedFleet) -> AsyncIterator[RouterHandle]:
    async with running_router(config_for(fleet, strategy="rule", extra=ALIASES)) as handle:
        yield handle


async def post(
    session: aiohttp.ClientSession, router: RouterHandle, body: object
) -> tuple[int, dict[str, str], Any]:
    async with session.post(router.v1 + "/embeddings", json=body) as response:
        return (
            response.status,
            {k.lower(): v for k, v in response.headers.items()},
            orjson.loads(await response.read()),
        )


def float32(values: list[float]) -> list[float]:
    """``values`` as they survive a float32 base64 round trip (the SDK's default encoding)."""
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


async def test_the_openai_sdk_embeds_a_string_on_the_named_model(
    router: RouterHandle, fleet: SimulatedFleet
) -> None:
    async with AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client:
        raw = await client.embeddings.with_raw_response.create(model="sim-embed", input="hello")
    answer = raw.parse()

    assert [item.index for item in answer.data] == [0]
    assert answer.data[0].embedding == pytest.approx(float32(vector("hello", 16)))
    assert answer.usage.prompt_tokens == answer.usage.total_tokens == 1
    assert raw.headers["x-octoroute-tier"] == "embeddings"
    assert raw.headers["x-octoroute-endpoint"] == "sim-embed"
    assert raw.headers["x-octoroute-strategy"] == "direct"
    assert raw.headers["x-request-id"]
    (sent,) = fleet.embeddings[0].embedding_requests  # the priority-2 replica
    # Forwarded as the SDK sent it (base64 by default), only the model replaced.
    assert sent.json == {"model": "sim-embed", "input": "hello", "encoding_format": "base64"}


async def test_a_list_of_strings_token_ids_and_token_arrays_each_get_their_vectors(
    router: RouterHandle,
) -> None:
    async with AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client:
        texts = await client.embeddings.create(model="sim-embed", input=["a", "b c"])
        tokens = await client.embeddings.create(model="sim-embed", input=[1, 2, 3])
        arrays = await client.embeddings.create(
            model="sim-embed", input=[[1, 2], [3]], encoding_format="float"
        )

    assert [item.index for item in texts.data] == [0, 1]
    assert texts.data[1].embedding == pytest.approx(float32(vector("b c", 16)))
    assert texts.usage.prompt_tokens == 3
    assert len(tokens.data) == 1
    assert tokens.usage.prompt_tokens == 3
    assert [item.embedding for item in arrays.data] == [vector([1, 2], 16), vector([3], 16)]


async def test_auto_means_the_first_embedding_model_and_aliases_reach_theirs(
    router: RouterHandle, session: aiohttp.ClientSession, fleet: SimulatedFleet
) -> None:
    async with AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client:
        auto = await client.embeddings.with_raw_response.create(model="auto", input="x")
        aliased = await client.embeddings.with_raw_response.create(
            model="text-embedding-3-small", input="x", dimensions=8
        )
        auto_alias = await client.embeddings.with_raw_response.create(model="ada", input="x")

    assert auto.headers["x-octoroute-endpoint"] == "sim-embed"
    assert auto_alias.headers["x-octoroute-endpoint"] == "sim-embed"  # an alias of "auto"
    assert aliased.headers["x-octoroute-endpoint"] == "sim-embed-small"
    assert len(aliased.parse().data[0].embedding) == 8
    (sent,) = fleet.embeddings[2].embedding_requests
    assert sent.json["model"] == "sim-embed-small"
    assert sent.json["dimensions"] == 8


async def test_a_failing_replica_fails_over_and_is_ejected(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    broken, spare = fleet.embeddings[:2]
    broken.behaviour.fault = HttpError(500)
    extra = "[health]\neject_after_failures = 2\neject_base_seconds = 60\n"
    async with running_router(config_for(fleet, strategy="rule", extra=extra)) as router:
        await first_probe_round(router)
        statuses = [
            (await post(session, router, {"model": "sim-embed", "input": "hi"}))[0]
            for _ in range(4)
        ]
        first = router.runtime.fleet.embeddings[0]
        async with session.get(router.url + "/models") as response:
            listing = orjson.loads(await response.read())["models"]
        async with session.get(router.url + "/metrics") as response:
            metrics = (await response.read()).decode()

    assert statuses == [200, 200, 200, 200]
    assert len(broken.embedding_requests) == 2  # then ejected: not tried again
    assert len(spare.embedding_requests) == 4
    assert first.id == "embeddings[0]"
    assert first.ejected
    row = next(entry for entry in listing if entry["id"] == "embeddings[0]")
    assert (row["tier"], row["name"], row["state"]) == ("embeddings", "sim-embed", "ejected")
    assert 'octoroute_failovers_total{tier="embeddings"} 2.0' in metrics


@pytest.mark.parametrize(
    "body",
    [
        {"model": "sim-embed"},
        {"model": "sim-embed", "input": {"text": "hi"}},
        {"model": "sim-embed", "input": []},
        {"model": "sim-embed", "input": ["a", 1]},
        {"model": "sim-embed", "input": [[1], []]},
        {"model": "sim-embed", "input": None},
    ],
)
async def test_an_input_of_no_openai_shape_is_a_400_naming_input(
    router: RouterHandle, session: aiohttp.ClientSession, fleet: SimulatedFleet, body: object
) -> None:
    status, _, answer = await post(session, router, body)

    assert status == 400
    assert answer["error"]["param"] == "input"
    assert not any(model.embedding_requests for model in fleet.embeddings)


async def test_an_unknown_model_is_a_404_listing_the_embedding_models(
    router: RouterHandle,
) -> None:
    async with AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client:
        with pytest.raises(openai.NotFoundError) as caught:
            await client.embeddings.create(model="nope", input="hi")

    assert caught.value.code == "model_not_found"
    assert caught.value.message.endswith(
        "The embedding model 'nope' does not exist on this router. Embedding models: "
        "'sim-embed', 'sim-embed-small' (or 'auto')."
    )


@pytest.mark.parametrize("model", ["fast", "sim-deep"])
async def test_a_tier_or_chat_model_is_a_400_saying_embeddings_need_an_embedding_model(
    router: RouterHandle, session: aiohttp.ClientSession, model: str
) -> None:
    status, _, answer = await post(session, router, {"model": model, "input": "hi"})

    assert status == 400
    assert answer["error"]["param"] == "model"
    assert answer["error"]["message"] == (
        f"The model '{model}' is not an embedding model; embeddings need one of "
        "'sim-embed', 'sim-embed-small' (or 'auto')."
    )


async def test_a_chat_request_naming_an_embedding_model_is_a_400(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    body = {"model": "sim-embed", "messages": [{"role": "user", "content": "hi"}]}
    async with session.post(router.v1 + "/chat/completions", json=body) as response:
        answer = orjson.loads(await response.read())

    assert response.status == 400
    assert "is an embedding model; send it to POST /v1/embeddings" in answer["error"]["message"]


async def test_without_embeddings_configured_the_answer_is_a_404_saying_so(
    session: aiohttp.ClientSession,
) -> None:
    fleet = SimulatedFleet(
        fast=[SimulatedModel("f")], balanced=[SimulatedModel("b")], deep=[SimulatedModel("d")]
    )
    async with fleet, running_router(config_for(fleet, strategy="rule")) as router:
        status, _, answer = await post(session, router, {"model": "auto", "input": "hi"})
        async with session.get(router.url + "/health") as response:
            health = orjson.loads(await response.read())

    assert status == 404
    assert answer["error"]["code"] == "model_not_found"
    assert answer["error"]["message"] == (
        "No embedding models are configured on this router; add [[embeddings]] endpoints to "
        "its configuration."
    )
    assert "embeddings" not in health["tiers"]


async def test_embedding_models_are_listed_retrievable_and_counted_in_health(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    async with AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client:
        listed = {model.id: model.owned_by async for model in client.models.list()}
        retrieved = await client.models.retrieve("sim-embed-small")
        aliased = await client.models.retrieve("text-embedding-3-large")
    await first_probe_round(router)
    async with session.get(router.url + "/health") as response:
        health = orjson.loads(await response.read())
    async with session.get(router.url + "/models") as response:
        instances = orjson.loads(await response.read())["models"]

    assert listed["sim-embed"] == listed["sim-embed-small"] == "user"
    assert (retrieved.id, retrieved.owned_by) == ("sim-embed-small", "user")
    assert (aliased.id, aliased.owned_by) == ("text-embedding-3-large", "alias")
    assert health["tiers"]["embeddings"] == {"healthy": 3, "unknown": 0, "total": 3}
    assert [m["id"] for m in instances if m["tier"] == "embeddings"] == [
        "embeddings[0]",
        "embeddings[1]",
        "embeddings[2]",
    ]


async def test_the_log_line_names_the_route_tier_and_endpoint(
    router: RouterHandle, session: aiohttp.ClientSession, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, _ = await post(session, router, {"model": "sim-embed-small", "input": "hi"})

    assert status == 200
    line = next(line for line in capsys.readouterr().out.splitlines() if "route=embeddings" in line)
    for part in ("tier=embeddings", "strategy=direct", "endpoint=sim-embed-small", "status=200"):
        assert part in line


async def test_langchain_openai_embeddings_embeds_documents_and_a_query(
    router: RouterHandle, fleet: SimulatedFleet
) -> None:
    # check_embedding_ctx_length=True (the default) tokenizes with tiktoken, which downloads
    # its encoding on first use; off, LangChain sends the texts themselves.
    embedder = OpenAIEmbeddings(
        model="sim-embed",
        base_url=router.v1,
        api_key=SecretStr("x"),
        check_embedding_ctx_length=False,
        max_retries=0,
    )

    try:
        documents = await embedder.aembed_documents(["first document", "second document"])
        query = await embedder.aembed_query("a question")
    finally:
        # LangChain builds its own openai clients; close them so no socket outlives the test
        # (``async_client`` is the SDK's embeddings resource, ``_client`` its AsyncOpenAI).
        await embedder.async_client._client.close()
        embedder.client._client.close()

    assert len(documents) == 2
    assert documents[0] == pytest.approx(float32(vector("first document", 16)), abs=1e-6)
    assert query == pytest.approx(float32(vector("a question", 16)), abs=1e-6)
    sent = [request.json["input"] for request in fleet.embeddings[0].embedding_requests]
    assert sent == [["first document", "second document"], ["a question"]]


def test_float32_round_trip_helper_matches_base64_decoding() -> None:
    values = vector("x", 4)
    packed = base64.b64encode(struct.pack("<4f", *values))
    assert float32(values) == list(struct.unpack("<4f", base64.b64decode(packed)))
