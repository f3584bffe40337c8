"""What each kind of model server says about itself beyond the OpenAI API, one module per kind.

``ollama``, ``llamacpp`` and ``vllm`` each have pure parse functions (bytes in, facts out,
tolerant of missing or odd fields: junk gives "unknown", never an exception) and an async
``read`` that asks the server through an injected :class:`Fetch`, so nothing here opens a
socket: ``upstream/status.py`` implements the fetch over the router's connection pool and shares
one answer between the endpoints of one server within a probe round.

Paths are from the server's root, which is the endpoint's ``base_url`` without its ``/v1``.
"""

from __future__ import annotations

from typing import Protocol

from octoroute.enums import Kind
from octoroute.fleet.facts import UNKNOWN, InstanceFacts
from octoroute.fleet.kinds import llamacpp, ollama, vllm


class Fetch(Protocol):
    """One HTTP exchange with the server: ``(status, body)``, whatever the status.

    ``path`` starts at the server's root (``/api/ps``, ``/props?model=x``); ``body`` is sent as
    JSON when not ``None``. Transport failures (refused, timed out) raise; the caller of ``read``
    decides what a failed read means.
    """

    async def __call__(
        self, method: str, path: str, body: bytes | None = None
    ) -> tuple[int, bytes]: ...


SLOW_READ_HINTS: dict[Kind, str] = {Kind.OLLAMA: ollama.SLOW_READ_HINT}
"""What a status read that runs out of time usually means for a kind, for the log line."""

STATIC_FIELDS = ("context_window", "slots_total")
"""What describes how a server runs the model (set when it starts the model), as opposed to what
it is doing at the moment; kept across failed reads (see :func:`merge`)."""


async def read(kind: Kind, fetch: Fetch, model: str, previous: InstanceFacts) -> InstanceFacts:
    """What a server of ``kind`` says about ``model`` now; ``UNKNOWN`` for ``openai``.

    ``previous`` is what the last read learned, for the readers that need history (Ollama keeps
    the window it saw while the model was loaded). Transport errors propagate.
    """
    if kind is Kind.OLLAMA:
        return await ollama.read(fetch, model, previous)
    if kind is Kind.LLAMACPP:
        return await llamacpp.read(fetch, model)
    if kind is Kind.VLLM:
        return await vllm.read(fetch, model)
    return UNKNOWN


def merge(previous: InstanceFacts, new: InstanceFacts) -> InstanceFacts:
    """The facts to keep after a read: ``new``, with the static fields it does not know taken
    from ``previous``.

    What a server says about the moment (loaded, loading, idle slots, running, waiting, KV-cache
    use) is replaced by every read and becomes unknown when a read fails (pass ``UNKNOWN``): a
    stale "warm, two slots idle" would mislead placement more than knowing nothing. The context
    window and the slot count describe how the server was started and change only when it
    restarts, which a later successful read reports; until then the last known value stands.
    """
    kept = {
        name: getattr(previous, name)
        for name in STATIC_FIELDS
        if getattr(new, name) is None and getattr(previous, name) is not None
    }
    return new._replace(**kept) if kept else new
