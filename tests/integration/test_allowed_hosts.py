"""``[server] allowed_hosts`` over real sockets: allowed names are served, any other ``Host`` is
refused with 421 ``host_not_allowed`` in the dialect's error shape before anything runs, loopback
always works, and a changed config applies to the next request."""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import aiohttp
import msgspec
import openai
import orjson
import pytest
from openai import AsyncOpenAI

from octoroute.simulator import SimulatedFleet
from tests.harness import RouterHandle, config_for, running_router, with_server
from tests.integration.test_api_doc_examples import (
    curl_examples,
    differences,
    replay,
    split_output,
    unwrap_json,
)

ROOT: Final = Path(__file__).resolve().parents[2]

ALLOWED = ("router.lan", "*.lan:8443")
CHAT = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def guarded(fleet: SimulatedFleet) -> AsyncIterator[RouterHandle]:
    config = with_server(config_for(fleet, strategy="rule"), allowed_hosts=ALLOWED)
    async with running_router(config) as router:
        yield router


async def call(
    session: aiohttp.ClientSession,
    router: RouterHandle,
    host: str,
    path: str = "/v1/chat/completions",
    body: Any = CHAT,
) -> tuple[int, Any]:
    headers = {"Host": host}
    if body is None:
        request = session.get(router.url + path, headers=headers)
    else:
        request = session.post(router.url + path, json=body, headers=headers)
    async with request as response:
        return response.status, orjson.loads(await response.read())


@pytest.mark.parametrize(
    "host",
    [
        "router.lan",
        "Router.Lan:3000",
        "gpu-1.lan:8443",
        "localhost",
        "[::ffff:127.0.0.1]:8080",  # IPv4-mapped IPv6 loopback is loopback too
        "[::FFFF:7f00:1]",
    ],
)
async def test_an_allowed_host_is_served(
    guarded: RouterHandle, session: aiohttp.ClientSession, host: str
) -> None:
    status, body = await call(session, guarded, host)

    assert status == 200, body
    assert body["object"] == "chat.completion"


async def test_a_request_by_ip_on_loopback_is_served(
    guarded: RouterHandle, session: aiohttp.ClientSession
) -> None:
    async with session.get(guarded.url + "/health") as response:  # Host: 127.0.0.1:<port>
        assert response.status == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "gpu-1.lan:3000", "router.lan.evil.example", "[::ffff:10.0.0.1]"]
)
async def test_another_host_is_refused_421_before_anything_reaches_a_model(
    guarded: RouterHandle, fleet: SimulatedFleet, session: aiohttp.ClientSession, host: str
) -> None:
    status, body = await call(session, guarded, host)

    assert status == 421
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == "host_not_allowed"
    assert body["error"]["type"] == "invalid_request_error"
    assert repr(host) in body["error"]["message"]
    assert "allowed_hosts" in body["error"]["message"]
    assert all(sim.chat_requests == [] for sim in fleet.models)


@pytest.mark.parametrize("path", ["/health", "/metrics", "/models", "/v1/models"])
async def test_read_only_views_are_refused_too(
    guarded: RouterHandle, session: aiohttp.ClientSession, path: str
) -> None:
    status, body = await call(session, guarded, "evil.example", path, body=None)

    assert (status, body["error"]["code"]) == (421, "host_not_allowed")


async def test_the_refusal_is_in_each_dialects_own_shape(
    guarded: RouterHandle, session: aiohttp.ClientSession
) -> None:
    anthropic_body = {
        "model": "fast",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "hi"}],
    }
    status, anthropic_answer = await call(
        session, guarded, "evil.example", "/v1/messages", anthropic_body
    )
    assert status == 421
    assert anthropic_answer["type"] == "error"
    assert "allowed_hosts" in anthropic_answer["error"]["message"]

    status, ollama_answer = await call(session, guarded, "evil.example", "/api/tags", body=None)
    assert status == 421
    assert "allowed_hosts" in ollama_answer["error"]


async def test_the_openai_sdk_sees_a_421_it_can_read(guarded: RouterHandle) -> None:
    async with AsyncOpenAI(
        base_url=guarded.v1,
        api_key="x",
        max_retries=0,
        default_headers={"Host": "evil.example"},
    ) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(
                model="fast", messages=[{"role": "user", "content": "hi"}]
            )

    assert caught.value.status_code == 421
    assert caught.value.code == "host_not_allowed"


async def test_without_allowed_hosts_any_host_is_served(
    router: RouterHandle, session: aiohttp.ClientSession
) -> None:
    status, _ = await call(session, router, "evil.example")

    assert status == 200


async def test_a_changed_config_applies_to_the_next_request(
    guarded: RouterHandle, session: aiohttp.ClientSession
) -> None:
    runtime = guarded.runtime
    assert (await call(session, guarded, "other.home"))[0] == 421

    server = msgspec.structs.replace(runtime.config.server, allowed_hosts=("other.home",))
    runtime.config = msgspec.structs.replace(runtime.config, server=server)
    assert (await call(session, guarded, "other.home"))[0] == 200
    assert (await call(session, guarded, "router.lan"))[0] == 421

    server = msgspec.structs.replace(runtime.config.server, allowed_hosts=())
    runtime.config = msgspec.structs.replace(runtime.config, server=server)
    assert (await call(session, guarded, "router.lan"))[0] == 200


# --- docs/security.md ---------------------------------------------------------------------------

SECURITY_DOC = ROOT / "docs/security.md"
SECTION = "## Exposing the router safely"


def security_section() -> str:
    """The doc's "Exposing the router safely" section, up to the next section."""
    text = SECURITY_DOC.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end >= 0 else len(text)]


def documented_allowed_hosts(section: str) -> tuple[str, ...]:
    """``allowed_hosts`` of the section's ``[server]`` fragment."""
    fragments = [
        tomllib.loads(body) for body in re.findall(r"```toml[^\n]*\n(.*?)```", section, re.S)
    ]
    (server,) = [fragment["server"] for fragment in fragments if "server" in fragment]
    return tuple(server["allowed_hosts"])


async def test_the_security_docs_examples_answer_as_shown(fleet: SimulatedFleet) -> None:
    section = security_section()
    examples = curl_examples("docs/security.md", section)
    assert examples, "the section shows a refused request"
    config = with_server(
        config_for(fleet, strategy="rule"), allowed_hosts=documented_allowed_hosts(section)
    )
    async with running_router(config) as router:
        for example in examples:
            response = await replay(router, example)
            shown = split_output(example)
            (body,) = unwrap_json(shown.body, example.command)

            assert response.status_code == 421, example.command
            assert differences(body, response.json()) == [], example.command
