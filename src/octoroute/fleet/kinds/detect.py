"""Which kind of server an endpoint is, from the status paths only that kind answers: what
``octoroute check --probe`` suggests for ``kind``.

Each kind has one tell, asked in this order: Ollama's ``GET /api/version`` (a JSON object with a
``version``), llama-server's ``GET /props`` (``default_generation_settings`` or
``total_slots``), and vLLM's ``GET /metrics`` (gauges named ``vllm:``). A server with none of them
(LM Studio, a hosted API, a proxy) is ``openai``: the router then learns nothing beyond health.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from octoroute.enums import Kind
from octoroute.fleet.kinds import llamacpp, ollama, vllm

if TYPE_CHECKING:
    from collections.abc import Callable

    from octoroute.fleet.kinds import Fetch


class Suggestion(NamedTuple):
    """A kind and the evidence for it, in words a person can check with curl."""

    kind: Kind
    evidence: str


def _ollama(status: int, body: bytes) -> str | None:
    version = ollama.parse_version(body) if status == 200 else None
    return None if version is None else f"GET /api/version answered version {version}"


def _llamacpp(status: int, body: bytes) -> str | None:
    if not llamacpp.looks_like_props(status, body):
        return None
    return "GET /props answered llama-server's properties"


def _vllm(status: int, body: bytes) -> str | None:
    return "GET /metrics has vllm: gauges" if vllm.looks_like_metrics(status, body) else None


TELLS: tuple[tuple[Kind, str, Callable[[int, bytes], str | None]], ...] = (
    (Kind.OLLAMA, ollama.VERSION_PATH, _ollama),
    (Kind.LLAMACPP, llamacpp.PROPS_PATH, _llamacpp),
    (Kind.VLLM, vllm.METRICS_PATH, _vllm),
)
"""Each kind, the path that tells it, and the test of that path's answer."""

NONE_FOUND = Suggestion(
    Kind.OPENAI, "none of /api/version, /props or /metrics answered as Ollama, llama.cpp or vLLM"
)


async def detect(fetch: Fetch) -> Suggestion:
    """The first kind whose tell the server answers; ``openai`` when none does.

    Give it a fetch that answers a transport failure with status ``0`` rather than raising, so a
    path that hangs or resets on one server does not hide the next tell.
    """
    for kind, path, tell in TELLS:
        evidence = tell(*await fetch("GET", path))
        if evidence is not None:
            return Suggestion(kind, evidence)
    return NONE_FOUND
