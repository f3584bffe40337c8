"""What the application answers when a request is wrong before any handler logic: unknown paths,
wrong methods, bodies that are too large, not JSON or not valid JSON, and internal errors.

Every error, whoever raises it, is the OpenAI envelope with ``Content-Type: application/json``
and an ``x-request-id``; an incoming well-formed request id is kept, anything else replaced.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest

from octoroute.catalog import ModelChoice
from octoroute.simulator import SimulatedFleet
from tests.harness import RouterHandle, config_for, running_router

HI: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]
VALID = json.dumps({"model": "auto", "messages": HI}).encode()


@pytest.fixture
async def small_router(fleet: SimulatedFleet) -> AsyncIterator[RouterHandle]:
    """The rule router with ``server.max_request_bytes = 4096``."""
    config = config_for(fleet, strategy="rule")
    config = msgspec.structs.replace(
        config, server=msgspec.structs.replace(config.server, max_request_bytes=4096)
    )
    async with running_router(config) as handle:
        yield handle


async def request(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, dict[str, Any]]:
    """``(status, headers, error)`` of a request whose answer must be the error envelope."""
    async with session.request(method, url, data=data, headers=headers) as response:
        body = await response.read()
        assert response.headers["Content-Type"] == "application/json", body
        assert b"Traceback" not in body
        envelope = json.loads(body)
        assert list(envelope) == ["error"]
        error = envelope["error"]
        assert list(error) == ["message", "type", "param", "code"]
        assert isinstance(error["message"], str)
        assert error["message"]
        uuid.UUID(response.headers["x-request-id"], version=4)
        return response.status, response.headers, error


def json_headers(content_type: str = "application/json") -> dict[str, str]:
    return {"Content-Type": content_type}


def no_chat_requests(fleet: SimulatedFleet) -> bool:
    return all(sim.chat_requests == [] for sim in fleet.models)


# -- unknown paths and methods --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nothing"),
        ("GET", "/v1/chat"),
        ("POST", "/v1/audio/speech"),
        ("POST", "/v1/nothing"),
    ],
)
async def test_an_unknown_path_is_a_404_envelope_listing_the_routes(
    router: RouterHandle, session: aiohttp.ClientSession, method: str, path: str
) -> None:
    status, _, error = await request(session, method, router.url + path)

    assert status == 404
    assert error["code"] == "not_found"
    assert error["type"] == "invalid_request_error"
    assert f"{method} {path}" in error["message"]
    assert "POST /v1/chat/completions" in error["message"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v1/chat/completions", "POST"),
        ("PUT", "/chat", "POST"),
        ("DELETE", "/route", "POST"),
        ("POST", "/v1/models", "GET, HEAD"),
        ("POST", "/health", "GET, HEAD"),
        ("PATCH", "/models", "GET, HEAD"),
        ("POST", "/metrics", "GET, HEAD"),
    ],
)
async def test_a_wrong_method_is_a_405_envelope_with_allow(
    router: RouterHandle, session: aiohttp.ClientSession, method: str, path: str, allow: str
) -> None:
    status, headers, error = await request(session, method, router.url + path)

    assert status == 405
    assert headers["Allow"] == allow
    assert error["code"] == "method_not_allowed"
    assert path in error["message"]
    assert method in error["message"]


# -- bodies -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/chat", "/route"])
async def test_a_body_over_max_request_bytes_is_a_413(
    small_router: RouterHandle,
    fleet: SimulatedFleet,
    session: aiohttp.ClientSession,
    path: str,
) -> None:
    big = json.dumps({"model": "auto", "message": "x" * 5000, "messages": HI}).encode()
    status, _, error = await request(
        session, "POST", small_router.url + path, data=big, headers=json_headers()
    )

    assert status == 413
    assert error["code"] == "request_too_large"
    assert "4096 bytes" in error["message"]
    assert "server.max_request_bytes" in error["message"]
    assert no_chat_requests(fleet)


async def test_a_chunked_body_over_the_limit_is_a_413_too(
    small_router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"model": "auto", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}]}'

    async with session.post(
        small_router.url + "/v1/chat/completions", data=chunks(), headers=json_headers()
    ) as response:
        assert response.status == 413
        assert (await response.json())["error"]["code"] == "request_too_large"


async def test_a_body_just_under_the_limit_is_served(
    small_router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    filler = "x" * (4096 - len(VALID) - 20)
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": filler}]})
    assert len(body) <= 4096
    async with session.post(
        small_router.url + "/v1/chat/completions", data=body, headers=json_headers()
    ) as response:
        assert response.status == 200


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/chat", "/route"])
@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"]
)
async def test_a_body_not_declared_as_json_is_a_415(
    router: RouterHandle,
    fleet: SimulatedFleet,
    session: aiohttp.ClientSession,
    path: str,
    content_type: str | None,
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    # skip_auto_headers keeps aiohttp from adding its own application/octet-stream.
    async with session.post(
        router.url + path, data=VALID, headers=headers, skip_auto_headers=["Content-Type"]
    ) as response:
        assert response.status == 415
        assert response.headers["Content-Type"] == "application/json"
        error = (await response.json())["error"]

    assert error["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in error["message"]
    assert no_chat_requests(fleet)


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "APPLICATION/JSON", "application/vnd.api+json"],
)
async def test_json_content_types_with_parameters_case_or_suffix_are_accepted(
    router: RouterHandle, session: aiohttp.ClientSession, content_type: str
) -> None:
    async with session.post(
        router.url + "/v1/chat/completions", data=VALID, headers=json_headers(content_type)
    ) as response:
        assert response.status == 200


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "empty"),
        (b"   ", "empty"),
        (b"{", "not valid JSON"),
        (b'{"model": "auto", "messages": [}', "line 1 column 32"),
        (b'{"model": "auto",\n "messages": [],,}', "line 2 column"),
        (b'{"model": "auto"} trailing', "trailing characters"),
        (b"[1, 2]", "must be a JSON object, got an array"),
        (b'"hello"', "must be a JSON object, got a string"),
        (b"null", "must be a JSON object, got null"),
        (b'{"model": "auto", "messages": "\xff\xfe"}', "not valid UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "must be a JSON object"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "nested too deeply"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/chat", "/route"])
async def test_malformed_json_is_a_400_saying_where(
    router: RouterHandle,
    fleet: SimulatedFleet,
    session: aiohttp.ClientSession,
    path: str,
    body: bytes,
    fragment: str,
) -> None:
    status, _, error = await request(
        session, "POST", router.url + path, data=body, headers=json_headers()
    )

    assert status == 400
    assert error["code"] == "invalid_request"
    assert error["type"] == "invalid_request_error"
    assert error["param"] is None
    assert fragment in error["message"]
    assert no_chat_requests(fleet)


async def test_a_body_whose_content_encoding_does_not_match_is_a_400_not_a_500(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    headers = {**json_headers(), "Content-Encoding": "deflate"}
    status, _, error = await request(
        session, "POST", router.url + "/v1/chat/completions", data=VALID, headers=headers
    )

    assert status == 400
    assert error["code"] == "invalid_request"
    assert "could not be read" in error["message"]
    assert "deflate" in error["message"]


async def test_a_gzip_encoded_body_is_decoded_and_served(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    headers = {**json_headers(), "Content-Encoding": "gzip"}
    async with session.post(
        router.url + "/v1/chat/completions", data=gzip.compress(VALID), headers=headers
    ) as response:
        assert response.status == 200


async def test_an_invalid_importance_header_is_a_400_naming_the_header(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    headers = {**json_headers(), "x-octoroute-importance": "urgent"}
    status, _, error = await request(
        session, "POST", router.url + "/v1/chat/completions", data=VALID, headers=headers
    )

    assert status == 400
    assert error["param"] == "x-octoroute-importance"
    assert "low, normal or high" in error["message"]
    assert "'urgent'" in error["message"]


async def test_an_internal_error_is_a_500_envelope_without_a_traceback(
    router: RouterHandle, session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(model: str) -> ModelChoice:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(router.runtime.catalog, "resolve", broken)
    async with session.post(
        router.url + "/v1/chat/completions",
        data=VALID,
        headers={**json_headers(), "x-request-id": "trace-me-42"},
    ) as response:
        body = await response.read()
        assert response.status == 500
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["x-request-id"] == "trace-me-42"

    error = json.loads(body)["error"]
    assert error["type"] == "server_error"
    assert error["code"] == "internal_error"
    assert "trace-me-42" in error["message"]
    assert b"Traceback" not in body
    assert b"secret internal detail" not in body


# -- request ids --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "incoming", ["abc-123", "0f8fad5b-d9cb-469f-a165-70867728950e", "req_1.2:3", "A" * 128]
)
@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("POST", "/v1/chat/completions", VALID),
        ("POST", "/v1/chat/completions", b"{"),
        ("GET", "/v1/models", None),
        ("GET", "/health", None),
        ("GET", "/nowhere", None),
    ],
)
async def test_a_well_formed_incoming_request_id_is_echoed_on_every_answer(
    router: RouterHandle,
    session: aiohttp.ClientSession,
    incoming: str,
    method: str,
    path: str,
    data: bytes | None,
) -> None:
    headers = {**json_headers(), "x-request-id": incoming}
    async with session.request(method, router.url + path, data=data, headers=headers) as response:
        await response.read()
        assert response.headers["x-request-id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    [
        "a" * 300,
        "A" * 129,
        "has spaces in it",
        "-leading-dash",
        "semi;colon",
        'quote"d',
        "é-accent",
        "",
    ],
)
async def test_a_malformed_incoming_request_id_is_replaced_by_a_uuid4(
    router: RouterHandle, session: aiohttp.ClientSession, incoming: str
) -> None:
    headers = {**json_headers(), "x-request-id": incoming}
    for data in (VALID, b"not json"):
        async with session.post(
            router.url + "/v1/chat/completions", data=data, headers=headers
        ) as response:
            await response.read()
            replaced = response.headers["x-request-id"]
        assert replaced != incoming
        assert str(uuid.UUID(replaced, version=4)) == replaced


async def test_every_answer_gets_a_fresh_request_id_when_none_is_sent(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    seen = set()
    for _ in range(5):
        async with session.post(
            router.url + "/v1/chat/completions", data=VALID, headers=json_headers()
        ) as response:
            await response.read()
            seen.add(response.headers["x-request-id"])
    assert len(seen) == 5


async def test_a_streamed_answer_carries_the_incoming_request_id(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    body = json.dumps({"model": "auto", "messages": HI, "stream": True}).encode()
    headers = {**json_headers(), "x-request-id": "stream-7"}
    async with session.post(
        router.url + "/v1/chat/completions", data=body, headers=headers
    ) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        assert response.headers["x-request-id"] == "stream-7"
        assert (await response.read()).endswith(b"data: [DONE]\n\n")
