"""``octoroute check --probe``: reach every configured endpoint, list the models it serves, say
whether its configured ``name`` is one of them, suggest its ``kind`` and show what it tells.

Each endpoint gets the router's own health probe (``GET {base_url}/models``, with its keys and
TLS settings), whose answer lists the models the server offers; an Ollama server (configured or
detected) is also asked ``GET /api/tags``, its own list of pulled models. Then the one status
path that tells each kind apart (``fleet.kinds.detect``), and that kind's status reader
(``fleet.kinds.read``: whether the model is loaded, its context window). Endpoints are probed
concurrently; the health probe gets ``timeout`` and everything after it ``timeout`` more in all,
so one hanging server delays the report by at most twice that. Nothing is changed: the report
is printed for the operator to act on.

A configured name is "served" when the server lists it: exactly, or as Ollama compares names
(case aside, with the implicit ``:latest``). A llama-server that lists a single model answers
whatever name a request gives, so its name is never reported missing. Otherwise a missing name
comes with the closest names the server does list (``difflib``).
"""

from __future__ import annotations

import asyncio
import difflib
from typing import TYPE_CHECKING, NamedTuple

import orjson

from octoroute.enums import Kind
from octoroute.errors import OctorouteError
from octoroute.fleet import kinds
from octoroute.fleet.facts import UNKNOWN, InstanceFacts
from octoroute.fleet.kinds.detect import Suggestion, detect
from octoroute.fleet.kinds.ollama import TAGS_PATH, canonical_name
from octoroute.upstream.client import Target, UpstreamClient

if TYPE_CHECKING:
    from octoroute.config.schema import Config, EndpointConfig
    from octoroute.fleet.kinds import Fetch

MODELS_SOURCE = "GET /v1/models"
TAGS_SOURCE = f"GET {TAGS_PATH}"
SHOWN_MODELS = 8
"""A server with more models than this shows the first ones and how many more."""
SUGGESTIONS = 3
SHOWN_BYTES = 40
"""How much of a model list that is not JSON is shown."""


class Served(NamedTuple):
    """The models a server says it serves, and which request said so."""

    names: tuple[str, ...]
    source: str


class Finding(NamedTuple):
    """What probing one endpoint found."""

    endpoint: EndpointConfig
    label: str
    """Model name and URL without credentials."""
    root: str
    """The server's root URL (``base_url`` without ``/v1``), shared by the endpoints it serves."""
    problem: str | None
    """Why the health probe failed; ``None`` when it passed."""
    suggestion: Suggestion | None
    """The kind its status paths point to (``None`` when the probe failed)."""
    served: Served | None = None
    """The models it lists; ``None`` when it listed none we could read."""
    facts: InstanceFacts = UNKNOWN
    """What its kind's status reader learned (loaded, context window)."""
    not_api: str | None = None
    """How its model list starts when that is not JSON at all (a web page where the API should
    be); ``None`` for JSON."""

    @property
    def missing(self) -> bool:
        """The server lists models, and the configured name is not among them."""
        return self.served is not None and not serves(self)


def serves(finding: Finding) -> bool:
    """Whether the server takes requests for the configured name (see the module docstring)."""
    served = finding.served
    if served is None:
        return True
    name = finding.endpoint.name
    if name in served.names:
        return True
    kind = finding.suggestion.kind if finding.suggestion else finding.endpoint.kind
    if kind is Kind.OLLAMA or finding.endpoint.kind is Kind.OLLAMA:
        wanted = canonical_name(name)
        return any(canonical_name(listed) == wanted for listed in served.names)
    return kind is Kind.LLAMACPP and len(served.names) == 1


def did_you_mean(name: str, served: tuple[str, ...]) -> list[str]:
    """The listed names closest to ``name`` (compared without case), best first."""
    by_lower = {listed.lower(): listed for listed in served}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=SUGGESTIONS, cutoff=0.5)
    return [by_lower[match] for match in close]


def model_ids(body: bytes) -> tuple[str, ...] | None:
    """The ``id`` of each entry of an OpenAI ``/v1/models`` answer; ``None`` for another body."""
    data = _json_field(body, "data")
    if not isinstance(data, list):
        return None
    return tuple(e["id"] for e in data if isinstance(e, dict) and isinstance(e.get("id"), str))


def tag_names(body: bytes) -> tuple[str, ...] | None:
    """The ``name`` of each model of an Ollama ``/api/tags`` answer; ``None`` for another body."""
    models = _json_field(body, "models")
    if not isinstance(models, list):
        return None
    return tuple(
        m["name"] for m in models if isinstance(m, dict) and isinstance(m.get("name"), str)
    )


def not_json(body: bytes) -> str | None:
    """The start of ``body`` when it is not JSON (a web app's page answers every path with
    200), for the report; ``None`` when it is."""
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        start = " ".join(body[:SHOWN_BYTES].decode("utf-8", "replace").split())
        more = "..." if len(body) > SHOWN_BYTES else ""
        return f"{len(body)} bytes starting {start!r}{more}"
    return None


def _json_field(body: bytes, key: str) -> object:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value.get(key) if isinstance(value, dict) else None


def _fetch(client: UpstreamClient, target: Target, deadline: float) -> Fetch:
    """Status reads sharing one deadline; a failed or late read is status 0, never a raise, so
    a path that hangs or resets on one server hides nothing that comes after it."""

    async def fetch(method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            return 0, b""
        try:
            return await client.status(target, method, path, body, timeout=left)
        except OctorouteError:
            return 0, b""

    return fetch


async def _probe_one(client: UpstreamClient, endpoint: EndpointConfig, timeout: float) -> Finding:
    target = Target(endpoint)
    try:
        listing = await client.probe(target, timeout=timeout)
    except OctorouteError as error:
        return Finding(endpoint, target.label, target.root, str(error), None)
    fetch = _fetch(client, target, asyncio.get_running_loop().time() + timeout)
    suggestion = await detect(fetch)
    names, source = model_ids(listing), MODELS_SOURCE
    if Kind.OLLAMA in (suggestion.kind, endpoint.kind):
        status, tags = await fetch("GET", TAGS_PATH)
        pulled = tag_names(tags) if status == 200 else None
        if pulled is not None:
            names, source = pulled, TAGS_SOURCE
    served = Served(names, source) if names is not None else None
    kind = suggestion.kind if suggestion.kind is not Kind.OPENAI else endpoint.kind
    facts = await kinds.read(kind, fetch, endpoint.name, UNKNOWN)
    return Finding(
        endpoint, target.label, target.root, None, suggestion, served, facts, not_json(listing)
    )


async def probe_endpoints(config: Config, *, timeout: float) -> list[Finding]:
    """Probe every endpoint of ``config`` (tiers, then embedding models) at once."""
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


def details(finding: Finding, first_of_server: Finding | None) -> list[str]:
    """The lines under an endpoint's: what it serves, whether its name is there, what it told.

    ``first_of_server`` is an endpoint listed earlier on the same server, whose model list is
    not repeated."""
    lines: list[str] = []
    served = finding.served
    name = finding.endpoint.name
    if finding.suggestion is None:
        return lines
    if finding.not_api is not None:
        lines.append(
            f"      NOT AN OPENAI API: {MODELS_SOURCE} answered {finding.not_api}, not JSON; "
            "does base_url name the model server's API (its port, then /v1)?"
        )
    elif served is None:
        lines.append(f"      lists no models ({MODELS_SOURCE} answered something else)")
    elif first_of_server is not None and first_of_server.served == served:
        lines.append(f"      serves the models listed for {first_of_server.endpoint.key_path}")
    else:
        shown = ", ".join(served.names[:SHOWN_MODELS]) or "nothing"
        more = len(served.names) - SHOWN_MODELS
        count = len(served.names)
        lines.append(
            f"      serves {count} model{'' if count == 1 else 's'} ({served.source}): {shown}"
            + (f" and {more} more" if more > 0 else "")
        )
    if served is not None and finding.missing:
        close = did_you_mean(name, served.names)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        lines.append(f"      MISSING: {name!r} is not among the models it serves{hint}")
    lines += _facts(finding)
    return lines


def _facts(finding: Finding) -> list[str]:
    facts = finding.facts
    configured = finding.endpoint.context_window
    notes = []
    if facts.context_window is not None:
        notes.append(f"context window {facts.context_window} tokens (the server's own)")
    elif configured is not None:
        notes.append(f"context window {configured} tokens (configured; the server tells none)")
    if facts.loaded is not None:
        notes.append(
            "model loaded" if facts.loaded else "model not loaded (the first request loads it)"
        )
    if facts.slots_total is not None:
        notes.append(f"{facts.slots_total} slots")
    return [f"      {', '.join(notes)}"] if notes else []


def report(findings: list[Finding]) -> str:
    """The block ``check --probe`` prints after the summary, ending with a one-line verdict."""
    lines = ["Endpoints (probed; kind suggested from each server's own status paths):"]
    first_by_server: dict[str, Finding] = {}
    for finding in findings:
        lines.append(describe(finding))
        lines += details(finding, first_by_server.get(finding.root))
        if finding.suggestion is not None:
            first_by_server.setdefault(finding.root, finding)
    unreachable = sum(finding.problem is not None for finding in findings)
    missing = sum(finding.missing for finding in findings)
    not_api = sum(finding.not_api is not None for finding in findings)
    ready = len(findings) - unreachable - missing - not_api
    verdict = [f"{ready} ready"]
    if unreachable:
        verdict.append(f"{unreachable} unreachable")
    if missing:
        verdict.append(f"{missing} not serving the configured model name")
    if not_api:
        verdict.append(f"{not_api} not answering as an OpenAI-compatible API")
    count = len(findings)
    lines += ["", f"{count} endpoint{'' if count == 1 else 's'} probed: {', '.join(verdict)}."]
    return "\n".join(lines)


async def check_probe(config: Config, *, timeout: float | None = None) -> tuple[str, bool]:
    """The printed report, and whether every endpoint answered and serves its name.

    ``timeout`` defaults to the config's ``[health] probe_timeout_seconds``."""
    if timeout is None:
        timeout = config.health.probe_timeout_seconds
    findings = await probe_endpoints(config, timeout=timeout)
    ready = all(
        finding.problem is None and not finding.missing and finding.not_api is None
        for finding in findings
    )
    return report(findings), ready
