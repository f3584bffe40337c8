"""Per-endpoint TLS against a real TLS server on 127.0.0.1 with a private CA (``trustme``).

Configurations go through ``parse_config`` so the loader's checks and the client's contexts are
exercised together, as ``octoroute serve`` would build them.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
import trustme

from octoroute.config import parse_config
from octoroute.errors import UpstreamConnectError, UpstreamError
from octoroute.upstream.client import Target, UpstreamClient
from tests.misbehaving import (
    OK_BODY,
    RawServer,
    answer_models_or,
    config_toml,
    raw_server,
    read_request,
    response,
    router_process,
)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A private certificate authority, made fresh for this module."""
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    """The CA's certificate as a PEM file."""
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def server_context(ca: trustme.CA, *, client_certs: bool = False) -> ssl.SSLContext:
    """A server context for 127.0.0.1 signed by ``ca``; optionally requiring client certs."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    if client_certs:
        context.verify_mode = ssl.CERT_REQUIRED
        ca.configure_trust(context)
    return context


async def keep_alive_json(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
) -> None:
    while (request := await read_request(reader, server)) is not None:

        async def answer(writer: asyncio.StreamWriter = writer) -> None:
            writer.write(response(OK_BODY))
            await writer.drain()

        await answer_models_or(request, writer, answer)


def target(server: RawServer, endpoint_keys: str = "") -> Target:
    """The fast endpoint of a config pointing at ``server`` with ``endpoint_keys``."""
    config = parse_config(config_toml([server.base_url], endpoint_keys=endpoint_keys))
    return Target(config.models.fast[0])


@asynccontextmanager
async def client() -> AsyncIterator[UpstreamClient]:
    """An opened client, closed afterwards."""
    upstream = UpstreamClient()
    await upstream.open()
    try:
        yield upstream
    finally:
        await upstream.close()


async def test_a_private_ca_is_refused_without_tls_ca_file(ca: trustme.CA) -> None:
    async with (
        raw_server(keep_alive_json, ssl_context=server_context(ca)) as server,
        client() as up,
    ):
        with pytest.raises(UpstreamConnectError) as caught:
            await up.send(target(server), b"{}", timeout=5)
        message = str(caught.value)
        assert "TLS certificate not accepted" in message
        assert "certificate" in message
        assert "tls_ca_file" in message


async def test_tls_ca_file_trusts_the_private_ca_for_chat_and_probes(
    ca: trustme.CA, ca_file: str
) -> None:
    async with (
        raw_server(keep_alive_json, ssl_context=server_context(ca)) as server,
        client() as up,
    ):
        trusted = target(server, f'tls_ca_file = "{ca_file}"')
        assert (await up.send(trusted, b"{}", timeout=5)).body == OK_BODY
        await up.probe(trusted, timeout=5)
        assert [request.method for request in server.requests] == ["POST", "GET"]
        assert server.connections == 1  # the TLS connection is kept alive and reused


async def test_tls_verify_false_accepts_any_certificate(ca: trustme.CA) -> None:
    async with (
        raw_server(keep_alive_json, ssl_context=server_context(ca)) as server,
        client() as up,
    ):
        anything = target(server, "tls_verify = false")
        assert (await up.send(anything, b"{}", timeout=5)).body == OK_BODY


async def test_endpoints_with_different_tls_settings_never_share_a_connection(
    ca: trustme.CA, ca_file: str
) -> None:
    async with (
        raw_server(keep_alive_json, ssl_context=server_context(ca)) as server,
        client() as up,
    ):
        trusted = target(server, f'tls_ca_file = "{ca_file}"')
        unchecked = target(server, "tls_verify = false")
        default = target(server)
        for each in (trusted, unchecked, trusted, unchecked):
            await up.send(each, b"{}", timeout=5)
        assert server.connections == 2
        assert up.idle_connections(trusted) == up.idle_connections(unchecked) == 1
        assert up.idle_connections(default) == 0


async def test_a_server_asking_for_a_client_certificate_gets_the_configured_one(
    ca: trustme.CA, ca_file: str, tmp_path: Path
) -> None:
    identity = ca.issue_cert("router.example")
    cert_file, key_file, both_file = (tmp_path / n for n in ("c.pem", "k.pem", "ck.pem"))
    identity.cert_chain_pems[0].write_to_path(str(cert_file))
    identity.private_key_pem.write_to_path(str(key_file))
    identity.private_key_and_cert_chain_pem.write_to_path(str(both_file))
    context = server_context(ca, client_certs=True)
    async with raw_server(keep_alive_json, ssl_context=context) as server, client() as up:
        separate = target(
            server,
            f'tls_ca_file = "{ca_file}"\ntls_client_cert = "{cert_file}"\n'
            f'tls_client_key = "{key_file}"',
        )
        combined = target(server, f'tls_ca_file = "{ca_file}"\ntls_client_cert = "{both_file}"')
        assert (await up.send(separate, b"{}", timeout=5)).body == OK_BODY
        assert (await up.send(combined, b"{}", timeout=5)).body == OK_BODY
        without = target(server, f'tls_ca_file = "{ca_file}"')
        with pytest.raises(UpstreamError) as caught:
            await up.send(without, b"{}", timeout=5)
        assert isinstance(caught.value, UpstreamConnectError)
        assert "TLS" in str(caught.value) or "closed the connection" in str(caught.value)


async def test_the_router_warns_about_tls_verify_false_and_probes_over_tls(
    ca: trustme.CA,
) -> None:
    async with raw_server(keep_alive_json, ssl_context=server_context(ca)) as server:
        config = config_toml([server.base_url], endpoint_keys="tls_verify = false")
        async with router_process(config) as router, aiohttp.ClientSession() as session:
            async with session.post(
                router.v1 + "/chat/completions",
                json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]},
            ) as answer:
                assert answer.status == 200
                assert await answer.read() == OK_BODY
            warnings = [line for line in router.log if "tls_verify = false" in line]
        assert {
            name for name in ("fast-0", "balanced-0", "deep-0") for w in warnings if name in w
        } == {
            "fast-0",
            "balanced-0",
            "deep-0",
        }
        assert len(warnings) == 3
        assert any(r.method == "GET" and r.path == "/v1/models" for r in server.requests)
