"""``[aliases]`` and ``GET /v1/models/{id}`` over real sockets, with the official openai SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from octoroute.simulator import SimulatedFleet, SimulatedModel
from tests.harness import RouterHandle, config_for, running_router
from tests.integration.test_openai_api import assert_error, chat_requests, post

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

ALIASES = """
[aliases]
"gpt-4o-mini" = "fast"
"gpt-4o*" = "deep"
"claude-*" = "auto"
"my-coder" = "org/model"
"""
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
ROUTE_HI: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def fleet() -> AsyncIterator[SimulatedFleet]:
    """Model ids with a colon and a slash, as Ollama and Hugging Face name them."""
    models = SimulatedFleet(
        fast=[SimulatedModel("qwen3:8b")],
        balanced=[SimulatedModel("org/model")],
        deep=[SimulatedModel("sim-deep")],
    )
    async with models as started:
        yield started


@pytest.fixture
async def router(fleet: SimulatedFleet) -> AsyncIterator[RouterHandle]:
    async with running_router(config_for(fleet, strategy="rule", extra=ALIASES)) as handle:
        yield handle


@pytest.fixture
async def sdk(router: RouterHandle) -> AsyncIterator[AsyncOpenAI]:
    client = AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0)
    yield client
    await client.close()


async def test_an_exact_alias_is_served_by_its_tier(
    sdk: AsyncOpenAI, fleet: SimulatedFleet
) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HI)

    assert raw.headers["x-octoroute-tier"] == "fast"
    assert raw.headers["x-octoroute-strategy"] == "direct"
    assert raw.headers["x-octoroute-reason"] == "explicit_tier"
    assert raw.parse().choices[0].message.content
    [(served_by, record)] = chat_requests(fleet)
    assert served_by == "qwen3:8b"
    assert json.loads(record.body)["model"] == "qwen3:8b"


async def test_a_pattern_alias_is_served_by_its_tier_and_streams(
    sdk: AsyncOpenAI, fleet: SimulatedFleet
) -> None:
    stream = await sdk.chat.completions.create(model="gpt-4o-2024-08-06", messages=HI, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert text
    assert [name for name, _ in chat_requests(fleet)] == ["sim-deep"]


async def test_an_alias_to_an_endpoint_selects_that_endpoint(
    sdk: AsyncOpenAI, fleet: SimulatedFleet
) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(model="my-coder", messages=HI)

    assert raw.headers["x-octoroute-endpoint"] == "org/model"
    assert raw.headers["x-octoroute-reason"] == "explicit_endpoint"
    assert [name for name, _ in chat_requests(fleet)] == ["org/model"]


async def test_an_alias_to_auto_is_routed(sdk: AsyncOpenAI) -> None:
    raw = await sdk.chat.completions.with_raw_response.create(
        model="claude-3-5-sonnet-latest", messages=HI
    )

    assert raw.headers["x-octoroute-strategy"] == "rule"


async def test_models_list_shows_exact_aliases_but_not_patterns(sdk: AsyncOpenAI) -> None:
    listed = {m.id: m.owned_by async for m in sdk.models.list()}

    assert listed == {
        "auto": "octoroute",
        "fast": "octoroute",
        "balanced": "octoroute",
        "deep": "octoroute",
        "qwen3:8b": "user",
        "org/model": "user",
        "sim-deep": "user",
        "gpt-4o-mini": "alias",
        "my-coder": "alias",
    }


@pytest.mark.parametrize(
    ("model", "owned_by"),
    [
        ("auto", "octoroute"),
        ("fast", "octoroute"),
        ("DEEP", "octoroute"),
        ("qwen3:8b", "user"),
        ("org/model", "user"),
        ("gpt-4o-mini", "alias"),
        ("gpt-4o-2024-11-20", "alias"),
        ("claude-opus-4", "alias"),
    ],
)
async def test_sdk_retrieves_every_kind_of_model(
    sdk: AsyncOpenAI, model: str, owned_by: str
) -> None:
    retrieved = await sdk.models.retrieve(model)

    assert (retrieved.id, retrieved.object, retrieved.created, retrieved.owned_by) == (
        model,
        "model",
        0,
        owned_by,
    )


async def test_sdk_retrieve_of_an_unknown_model_is_its_not_found_error(sdk: AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk.models.retrieve("gpt-5")

    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"


async def test_retrieve_answers_head_and_raw_slashes(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    async with session.head(router.v1 + "/models/org/model") as head:
        assert head.status == 200
        assert head.headers["Content-Type"] == "application/json"
    async with session.get(router.v1 + "/models/org%2Fmodel") as encoded:
        assert (await encoded.json())["id"] == "org/model"
    async with session.get(router.v1 + "/models/nope") as missing:
        body = await missing.read()
        assert missing.status == 404
        assert json.loads(body)["error"]["code"] == "model_not_found"
        assert missing.headers["x-request-id"]


async def test_route_shows_which_alias_matched(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    pattern = await post(session, router.url + "/route", {"model": "gpt-4o", "messages": ROUTE_HI})
    exact = await post(
        session, router.url + "/route", {"model": "gpt-4o-mini", "messages": ROUTE_HI}
    )
    plain = await post(session, router.url + "/route", {"model": "fast", "messages": ROUTE_HI})
    legacy = await post(session, router.url + "/route", {"message": "hi"})

    assert (pattern.json()["alias"], pattern.json()["tier"]) == ("gpt-4o*", "deep")
    assert pattern.json()["reason"] == "explicit_tier"
    assert (exact.json()["alias"], exact.json()["tier"]) == ("gpt-4o-mini", "fast")
    assert plain.json()["alias"] is None
    assert legacy.json()["alias"] is None


async def test_an_unknown_model_is_still_a_404_listing_aliases(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    reply = await post(
        session, router.url + "/v1/chat/completions", {"model": "x", "messages": ROUTE_HI}
    )

    message = assert_error(reply, 404, "model_not_found", "model")
    assert message.endswith("'org/model', 'sim-deep', 'gpt-4o-mini', 'my-coder'.")
