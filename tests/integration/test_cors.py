"""``server.cors_origins`` over real sockets: what a browser's preflight and its calls get."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest

from octoroute.simulator import SimulatedFleet, SimulatedModel
from tests.harness import RouterHandle, config_for, running_router

APP = "https://app.example.com"
OTHER = "https://evil.example.net"
CHAT = "/v1/chat/completions"
HI: dict[str, Any] = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
EXPOSED = (
    "x-request-id, x-octoroute-tier, x-octoroute-endpoint, x-octoroute-strategy, "
    "x-octoroute-reason, x-octoroute-confidence, retry-after, retry-after-ms, "
    "x-ratelimit-limit-requests, x-ratelimit-remaining-requests, x-ratelimit-reset-requests, "
    "x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens"
)
BROWSER_PREFLIGHT = {
    "Origin": APP,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": (
        "authorization,content-type,x-stainless-arch,x-stainless-lang,x-stainless-os,"
        "x-stainless-package-version,x-stainless-retry-count,x-stainless-runtime,"
        "x-stainless-runtime-version,x-stainless-timeout,x-stainless-brand-new"
    ),
}


def configured(fleet: SimulatedFleet, origins: tuple[str, ...], **server: object) -> Any:
    config = config_for(fleet, strategy="rule")
    return msgspec.structs.replace(
        config, server=msgspec.structs.replace(config.server, cors_origins=origins, **server)
    )


@pytest.fixture
async def router(fleet: SimulatedFleet) -> AsyncIterator[RouterHandle]:
    async with running_router(configured(fleet, (APP, "http://localhost:5173"))) as handle:
        yield handle


def cors_headers(headers: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith("access-control-")}


async def test_a_preflight_from_an_allowed_origin_is_answered_204(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    async with session.options(router.url + CHAT, headers=BROWSER_PREFLIGHT) as response:
        assert response.status == 204
        assert await response.read() == b""
        assert response.headers.getall("Vary") == ["Origin"]
        allowed = cors_headers(response.headers)

    requested = BROWSER_PREFLIGHT["Access-Control-Request-Headers"].split(",")
    allowed_headers = allowed.pop("access-control-allow-headers").split(", ")
    assert set(requested) <= set(allowed_headers)
    assert {"x-api-key", "anthropic-version", "openai-beta", "x-octoroute-importance"} <= set(
        allowed_headers
    )
    assert allowed == {
        "access-control-allow-origin": APP,
        "access-control-allow-methods": "GET, POST, OPTIONS",
        "access-control-max-age": "600",
    }


async def test_a_preflight_on_any_path_is_answered(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    for path in ("/v1/models/fast", "/route", "/no/such/path"):
        async with session.options(router.url + path, headers=BROWSER_PREFLIGHT) as response:
            assert response.status == 204, path


async def test_a_preflight_never_offers_a_header_that_is_not_a_token(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    asked = {**BROWSER_PREFLIGHT, "Access-Control-Request-Headers": "x-stainless-a b,x-custom"}
    async with session.options(router.url + CHAT, headers=asked) as response:
        allowed = response.headers["Access-Control-Allow-Headers"].split(", ")

    assert "x-stainless-a b" not in allowed
    assert "x-custom" not in allowed


async def test_a_call_from_an_allowed_origin_exposes_the_routing_headers(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    async with session.post(router.url + CHAT, json=HI, headers={"Origin": APP}) as response:
        await response.read()
        assert response.status == 200
        assert response.headers.getall("Vary") == ["Origin"]
        assert cors_headers(response.headers) == {
            "access-control-allow-origin": APP,
            "access-control-expose-headers": EXPOSED,
        }
        assert response.headers["x-octoroute-tier"] == "fast"


async def test_a_streamed_answer_carries_the_headers(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    body = {**HI, "stream": True}
    async with session.post(router.url + CHAT, json=body, headers={"Origin": APP}) as response:
        streamed = await response.read()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Access-Control-Allow-Origin"] == APP
        assert response.headers["Access-Control-Expose-Headers"] == EXPOSED
    assert streamed.endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", CHAT, {**HI, "model": "nope"}, 404),
        ("POST", CHAT, {"model": "fast"}, 400),
        ("GET", "/v1/models/nope", None, 404),
        ("GET", "/no/such/path", None, 404),
        ("PUT", CHAT, None, 405),
    ],
)
async def test_error_envelopes_carry_the_headers(
    router: RouterHandle,
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    body: object,
    status: int,
) -> None:
    async with session.request(
        method, router.url + path, json=body, headers={"Origin": APP}
    ) as response:
        envelope = json.loads(await response.read())
        assert response.status == status
        assert "error" in envelope
        assert response.headers["Access-Control-Allow-Origin"] == APP
        assert response.headers["Access-Control-Expose-Headers"] == EXPOSED


async def test_a_preflight_from_another_origin_is_refused_with_an_envelope(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    asked = {**BROWSER_PREFLIGHT, "Origin": OTHER}
    async with session.options(router.url + CHAT, headers=asked) as response:
        envelope = json.loads(await response.read())
        assert response.status == 403
        assert cors_headers(response.headers) == {}
        assert response.headers.getall("Vary") == ["Origin"]
        assert response.headers["x-request-id"]

    assert envelope == {
        "error": {
            "message": f"The origin '{OTHER}' may not call this router from a browser; add it "
            "to server.cors_origins.",
            "type": "invalid_request_error",
            "param": None,
            "code": "origin_not_allowed",
        }
    }


async def test_a_call_from_another_origin_is_answered_without_cors_headers(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    async with session.post(router.url + CHAT, json=HI, headers={"Origin": OTHER}) as response:
        await response.read()
        assert response.status == 200
        assert cors_headers(response.headers) == {}


async def test_an_options_request_that_is_no_preflight_is_not_answered_as_one(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    async with session.options(router.url + CHAT, headers={"Origin": APP}) as response:
        await response.read()
        assert response.status == 405


async def test_the_wildcard_allows_every_origin_without_vary(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    async with running_router(configured(fleet, ("*",))) as router:
        async with session.options(router.url + CHAT, headers=BROWSER_PREFLIGHT) as preflight:
            assert preflight.status == 204
            assert preflight.headers["Access-Control-Allow-Origin"] == "*"
        async with session.post(router.url + CHAT, json=HI, headers={"Origin": OTHER}) as call:
            await call.read()
            assert call.headers["Access-Control-Allow-Origin"] == "*"
            assert "Vary" not in call.headers


async def test_without_origins_there_are_no_cors_headers_at_all(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    async with running_router(config_for(fleet, strategy="rule")) as router:
        assert router.config.server.cors_origins == ()
        async with session.options(router.url + CHAT, headers=BROWSER_PREFLIGHT) as preflight:
            await preflight.read()
            assert preflight.status == 405
            assert cors_headers(preflight.headers) == {}
        for body in (HI, {**HI, "stream": True}, {**HI, "model": "nope"}):
            async with session.post(router.url + CHAT, json=body, headers={"Origin": APP}) as call:
                await call.read()
                assert cors_headers(call.headers) == {}
                assert "Vary" not in call.headers


async def test_preflights_do_not_count_against_max_in_flight(
    session: aiohttp.ClientSession,
) -> None:
    slow = SimulatedModel("sim-slow")
    fleet = SimulatedFleet(
        fast=[slow], balanced=[SimulatedModel("sim-b")], deep=[SimulatedModel("sim-d")]
    )
    async with fleet, running_router(configured(fleet, (APP,), max_in_flight=1)) as router:
        slow.behaviour.latency = 1.0
        held = asyncio.ensure_future(session.post(router.url + CHAT, json=HI))
        await slow.wait_for_in_flight(1)

        async with session.options(router.url + CHAT, headers=BROWSER_PREFLIGHT) as preflight:
            assert preflight.status == 204
        async with session.post(router.url + CHAT, json=HI, headers={"Origin": APP}) as refused:
            await refused.read()
            assert refused.status == 503
            assert refused.headers["Access-Control-Allow-Origin"] == APP
            assert refused.headers["Access-Control-Expose-Headers"] == EXPOSED

        async with await asyncio.wait_for(held, 5) as finished:
            assert finished.status == 200
