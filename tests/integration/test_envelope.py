"""Every error is the OpenAI envelope with an actionable message, and every response has an id."""

from __future__ import annotations

import uuid

import aiohttp
import msgspec
import pytest
from multidict import CIMultiDict

from octoroute.simulator import SimulatedFleet
from tests.harness import RouterHandle, config_for, running_router


async def request(
    method: str, url: str, **kwargs: object
) -> tuple[int, CIMultiDict[str], dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            url,
            **kwargs,  # type: ignore[arg-type]
        ) as response,
    ):
        body = await response.json(content_type=None)
        return response.status, CIMultiDict(response.headers), body


def assert_envelope(body: dict[str, object], error_type: str, code: str | None) -> str:
    error = body["error"]
    assert isinstance(error, dict)
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == error_type
    assert error["code"] == code
    message = error["message"]
    assert isinstance(message, str)
    assert message
    assert "Traceback" not in message
    return message


async def test_unknown_path_is_a_404_envelope(router: RouterHandle) -> None:
    status, headers, body = await request("GET", router.url + "/v2/nothing")
    assert status == 404
    assert headers["Content-Type"].startswith("application/json")
    assert "/v1/chat/completions" in assert_envelope(body, "invalid_request_error", "not_found")
    uuid.UUID(headers["x-request-id"])


async def test_wrong_method_is_a_405_envelope_with_allow(router: RouterHandle) -> None:
    status, headers, body = await request("GET", router.v1 + "/chat/completions")
    assert status == 405
    assert "POST" in headers["Allow"]
    assert_envelope(body, "invalid_request_error", "method_not_allowed")


async def test_body_over_the_limit_is_a_413_envelope(fleet: SimulatedFleet) -> None:
    config = config_for(fleet, strategy="rule")
    config = msgspec.structs.replace(
        config, server=msgspec.structs.replace(config.server, max_request_bytes=4096)
    )
    async with running_router(config) as handle:
        big = {"model": "auto", "messages": [{"role": "user", "content": "x" * 10_000}]}
        status, _, body = await request("POST", handle.v1 + "/chat/completions", json=big)
    assert status == 413
    assert "4096" in assert_envelope(body, "invalid_request_error", "request_too_large")
    assert fleet.fast[0].chat_requests == []


async def test_wrong_content_type_is_a_415_envelope(router: RouterHandle) -> None:
    status, _, body = await request(
        "POST", router.v1 + "/chat/completions", data=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert status == 415
    assert "application/json" in assert_envelope(
        body, "invalid_request_error", "unsupported_media_type"
    )


async def test_malformed_json_is_a_400_envelope(router: RouterHandle) -> None:
    status, _, body = await request(
        "POST",
        router.v1 + "/chat/completions",
        data=b'{"model": "auto", "messages": [',
        headers={"Content-Type": "application/json"},
    )
    assert status == 400
    assert "JSON" in assert_envelope(body, "invalid_request_error", "invalid_request")


async def test_out_of_range_field_names_its_param(router: RouterHandle) -> None:
    status, _, body = await request(
        "POST",
        router.v1 + "/chat/completions",
        json={"model": "auto", "temperature": 3.5, "messages": [{"role": "user", "content": "x"}]},
    )
    assert status == 400
    message = assert_envelope(body, "invalid_request_error", "invalid_request")
    error = body["error"]
    assert isinstance(error, dict)
    assert error["param"] == "temperature"
    assert "3.5" in message


async def test_unknown_model_is_a_404_listing_what_exists(router: RouterHandle) -> None:
    status, _, body = await request(
        "POST",
        router.v1 + "/chat/completions",
        json={"model": "gpt-5", "messages": [{"role": "user", "content": "x"}]},
    )
    assert status == 404
    message = assert_envelope(body, "invalid_request_error", "model_not_found")
    for name in ("auto", "fast", "sim-fast-a", "sim-deep"):
        assert name in message


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [("abc-123", True), ("trace:9f.2_x", True), ("x" * 200, False), ("bad id", False)],
)
async def test_request_ids_are_kept_when_well_formed(
    router: RouterHandle, incoming: str, kept: bool
) -> None:
    _, headers, _ = await request("GET", router.url + "/health", headers={"x-request-id": incoming})
    if kept:
        assert headers["x-request-id"] == incoming
    else:
        uuid.UUID(headers["x-request-id"])
