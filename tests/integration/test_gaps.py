"""Gaps closed over real sockets: credentials in a ``base_url`` never shown, ``/chat`` typing an
upstream 4xx as ``/v1/chat/completions`` does, and ``HEAD`` on every ``GET`` route.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from octoroute.config import parse_config
from octoroute.simulator import HttpError, SimulatedFleet, fleet_config_toml
from tests.harness import RouterHandle, raw_exchange, running_router

HI: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]
GET_ROUTES = ["/v1/models", "/models", "/health", "/metrics"]
POST_ROUTES = ["/v1/chat/completions", "/chat", "/route"]


async def post_json(session: aiohttp.ClientSession, url: str, body: object) -> tuple[int, Any, Any]:
    """``(status, headers, parsed body)``."""
    data = json.dumps(body).encode()
    async with session.post(url, data=data, headers={"Content-Type": "application/json"}) as r:
        return r.status, r.headers, await r.json(content_type=None)


def chat_request_count(fleet: SimulatedFleet) -> int:
    return sum(len(sim.chat_requests) for sim in fleet.models)


# -- credentials in a base_url -------------------------------------------------------------------


@pytest.fixture
async def credentialed_router(fleet: SimulatedFleet) -> AsyncIterator[RouterHandle]:
    """The rule router, with basic credentials in the URLs of the fast replicas."""
    text = fleet_config_toml(fleet, strategy="rule")
    first, second = (sim.base_url for sim in fleet.fast)
    for url, userinfo in ((first, "alice:s3cr%40t-pw"), (second, "tok-9f8e7d6c")):
        with_credentials = url.replace("://", f"://{userinfo}@", 1)
        text = text.replace(f'base_url = "{url}"', f'base_url = "{with_credentials}"')
    async with running_router(parse_config(text)) as handle:
        yield handle


async def test_models_masks_the_password_and_keeps_scheme_host_port_and_path(
    credentialed_router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    async with session.get(credentialed_router.url + "/models") as response:
        assert response.status == 200
        raw = await response.text()

    assert "s3cr" not in raw
    assert "tok-9f8e7d6c" not in raw
    shown = {entry["id"]: entry["endpoint"] for entry in json.loads(raw)["models"]}
    first, second = (urlsplit(sim.base_url) for sim in fleet.fast)
    assert shown["fast[0]"] == f"http://alice:***@{first.netloc}/v1"
    # A user part without a password may itself be a token: masked whole.
    assert shown["fast[1]"] == f"http://***@{second.netloc}/v1"
    assert shown["balanced[0]"] == fleet.balanced[0].base_url


async def test_credentialed_endpoints_still_serve_and_probe(
    credentialed_router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    status, headers, _ = await post_json(
        session,
        credentialed_router.v1 + "/chat/completions",
        {"model": "fast", "messages": HI},
    )

    assert status == 200
    assert headers["x-octoroute-endpoint"] in {sim.name for sim in fleet.fast}


# -- POST /chat and an upstream 4xx ---------------------------------------------------------------


async def test_chat_types_an_upstream_context_length_error_exactly_as_v1_relays_it(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    for sim in fleet.models:
        sim.behaviour.fault = HttpError.context_length()

    v1_status, _, v1_body = await post_json(
        session, router.v1 + "/chat/completions", {"model": "fast", "messages": HI}
    )
    status, headers, body = await post_json(
        session, router.url + "/chat", {"message": "hi", "task_type": "casual_chat"}
    )

    assert (status, body) == (v1_status, v1_body)
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == "context_length_exceeded"
    assert body["error"]["param"] == "messages"
    assert headers["Content-Type"] == "application/json"
    assert headers["x-octoroute-tier"] == "fast"
    assert headers["x-octoroute-endpoint"] in {sim.name for sim in fleet.fast}
    assert headers["x-octoroute-strategy"] == "rule"
    assert chat_request_count(fleet) == 2  # one each: a client error is never retried


@pytest.mark.parametrize("upstream_status", [400, 404, 409, 422])
async def test_chat_gives_an_upstream_4xx_the_openai_type_for_its_status(
    router: RouterHandle,
    fleet: SimulatedFleet,
    session: aiohttp.ClientSession,
    upstream_status: int,
) -> None:
    for sim in fleet.models:
        sim.behaviour.fault = HttpError(upstream_status)

    status, _, body = await post_json(session, router.url + "/chat", {"message": "hi"})

    assert status == upstream_status
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == "upstream_status"
    assert f"Simulated error: {upstream_status}" in body["error"]["message"]


async def test_chat_quotes_an_upstream_4xx_that_is_not_an_openai_envelope(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    for sim in fleet.models:
        sim.behaviour.fault = HttpError(409, "<html>Conflict at the proxy</html>")

    status, _, body = await post_json(
        session, router.url + "/chat", {"message": "hi", "task_type": "deep_analysis"}
    )

    assert status == 409
    error = body["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "upstream_status"
    assert error["param"] is None
    assert error["message"] == (
        f"{fleet.deep[0].name} refused the request with HTTP 409: "
        "<html>Conflict at the proxy</html>"
    )


@pytest.mark.parametrize("upstream_status", [401, 403])
async def test_chat_never_relays_an_upstream_refusing_the_routers_own_key(
    router: RouterHandle,
    fleet: SimulatedFleet,
    session: aiohttp.ClientSession,
    upstream_status: int,
) -> None:
    for sim in fleet.models:
        sim.behaviour.fault = HttpError(upstream_status, "bad key sk-echoed-back")

    status, _, body = await post_json(session, router.url + "/chat", {"message": "hi"})

    assert status == 502
    # The forwarder names the last attempt's error in its message (its own code may change).
    assert body["error"]["code"] == "upstream_auth_failed"
    assert f"refused the router's credentials (HTTP {upstream_status})" in body["error"]["message"]
    assert "sk-echoed-back" not in str(body)


async def test_chat_keeps_the_message_of_an_ollama_style_error(
    router: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    for sim in fleet.models:
        sim.behaviour.fault = HttpError(404, {"error": "model 'sim' not found, try pulling it"})

    status, _, body = await post_json(session, router.url + "/chat", {"message": "hi"})

    assert status == 404
    assert body["error"] == {
        "message": "model 'sim' not found, try pulling it",
        "type": "invalid_request_error",
        "param": None,
        "code": "upstream_status",
    }


# -- HEAD and 405 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", GET_ROUTES)
async def test_head_answers_every_get_route_with_its_status_and_headers_and_no_body(
    router: RouterHandle, path: str
) -> None:
    get_line, get_headers, get_body = await raw_exchange(router.url, "GET", path)
    head_line, head_headers, head_body = await raw_exchange(router.url, "HEAD", path)

    assert get_line.startswith("HTTP/1.1 200")
    assert head_line == get_line
    assert head_body == b""
    assert head_headers["content-type"] == get_headers["content-type"]
    assert head_headers["x-request-id"]
    assert int(head_headers["content-length"]) > 0
    if path == "/v1/models":  # the only body that does not change between two requests
        assert head_headers["content-length"] == get_headers["content-length"]
        assert int(get_headers["content-length"]) == len(get_body)


async def test_head_on_v1_models_works_with_aiohttp(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    async with session.head(router.v1 + "/models") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert await response.read() == b""


@pytest.mark.parametrize("path", POST_ROUTES)
async def test_head_on_a_post_route_is_a_405_with_allow_and_no_body(
    router: RouterHandle, path: str
) -> None:
    status_line, headers, body = await raw_exchange(router.url, "HEAD", path)

    assert status_line.startswith("HTTP/1.1 405")
    assert headers["allow"] == "POST"
    assert headers["content-type"] == "application/json"
    assert headers["x-request-id"]
    assert body == b""


@pytest.mark.parametrize("path", GET_ROUTES)
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
async def test_a_wrong_method_on_a_get_route_allows_get_and_head_in_an_envelope(
    router: RouterHandle, path: str, method: str
) -> None:
    status_line, headers, body = await raw_exchange(router.url, method, path)

    assert status_line.startswith("HTTP/1.1 405")
    assert headers["allow"] == "GET, HEAD"
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "method_not_allowed"
    assert error["message"] == f"{path} does not accept {method}; use GET or HEAD."
