"""``octoroute check --probe``: reach every configured endpoint and suggest its ``kind``.

Each endpoint gets the router's own health probe (``GET {base_url}/models``, with its keys and
TLS settings), then the one status path that tells each kind apart (``fleet.kinds.detect``).
Endpoints are probed concurrently, each within ``timeout`` per request. Nothing is changed: the
suggestion is printed for the operator to copy into the file.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, NamedTuple

from octoroute.enums import Kind
from octoroute.errors import OctorouteError
from octoroute.fleet.kinds.detect import Suggestion, detect
from octoroute.upstream.client import Target, UpstreamClient

if TYPE_CHECKING:
    from octoroute.config.schema import Config, EndpointConfig
    from octoroute.fleet.kinds import Fetch

DEFAULT_TIMEOUT = 5.0


class Finding(NamedTuple):
    """What probing one endpoint found."""

    endpoint: EndpointConfig
    label: str
    """Model name and URL without credentials."""
    problem: str | None
    """Why the health probe failed; ``None`` when it passed."""
    suggestion: Suggestion | None
    """The kind its status paths point to (``None`` when the probe failed)."""


def _fetch(client: UpstreamClient, target: Target, timeout: float) -> Fetch:
    async def fetch(method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        try:
            return await client.status(target, method, path, body, timeout=timeout)
        except OctorouteError:
            return 0, b""  # a path that fails here must not hide the next kind's tell

    return fetch


async def _probe_one(client: UpstreamClient, endpoint: EndpointConfig, timeout: float) -> Finding:
    target = Target(endpoint)
    try:
        await client.probe(target, timeout=timeout)
    except OctorouteError as error:
        return Finding(endpoint, target.label, str(error), None)
    return Finding(endpoint, target.label, None, await detect(_fetch(client, target, timeout)))


async def probe_endpoints(config: Config, *, timeout: float = DEFAULT_TIMEOUT) -> list[Finding]:
    """Probe every endpoint of ``config`` (tiers, then embedding models) and suggest kinds."""
    client = UpstreamClient(max_response_bytes=config.limits.max_response_bytes)
    await client.open()
    try:
        return list(
            await asyncio.gather(
                *(_probe_one(client, endpoint, timeout) for endpoint in config.all_endpoints())
            )
        )
    finally:
        await client.close()


def describe(finding: Finding) -> str:
    """One line for one endpoint: reachable or not, and the kind to set."""
    where = f"{finding.endpoint.key_path}  {finding.label}"
    if finding.suggestion is None:
        return f"  {where}: unreachable ({finding.problem}); no kind suggested"
    kind, evidence = finding.suggestion
    configured = finding.endpoint.kind
    if kind is configured:
        return f'  {where}: kind = "{kind}" fits ({evidence})'
    if kind is Kind.OPENAI:
        return f'  {where}: {evidence}; kind = "openai" fits, not "{configured}"'
    return f'  {where}: looks like {kind} ({evidence}); set kind = "{kind}"'


def report(findings: list[Finding]) -> str:
    """The block ``check --probe`` prints after the summary."""
    lines = ["Endpoints (probed; kind suggested from each server's own status paths):"]
    lines += [describe(finding) for finding in findings]
    return "\n".join(lines)


async def check_probe(config: Config, *, timeout: float = DEFAULT_TIMEOUT) -> tuple[str, bool]:
    """The printed report, and whether every endpoint answered its probe."""
    findings = await probe_endpoints(config, timeout=timeout)
    return report(findings), all(finding.problem is None for finding in findings)
