"""What the prober has learned about one instance from its server's own status endpoints.

One immutable record per probe, replaced whole, so a reader on the request path never sees half
of one probe and half of another. Every field is optional: an ``openai`` endpoint, or a server
whose status endpoint failed, tells nothing, and selection must then behave as if it knew
nothing (never as if the instance were cold or full).
"""

from __future__ import annotations

from typing import NamedTuple


class InstanceFacts(NamedTuple):
    """A snapshot of one instance's server state, as its kind-specific reader parsed it."""

    loaded: bool | None = None
    """The endpoint's model is resident in memory (warm); ``None``: unknown."""
    loading: bool = False
    """The server says it is loading a model right now (llama.cpp's 503 "Loading model")."""
    context_window: int | None = None
    """The context length the server runs the model with, in tokens; ``None``: unknown."""
    slots_total: int | None = None
    """Requests the server decodes in parallel (llama.cpp slots); ``None``: unknown."""
    slots_idle: int | None = None
    """Of those, how many are idle right now."""
    running: int | None = None
    """Requests being decoded right now (vLLM ``num_requests_running``)."""
    waiting: int | None = None
    """Requests queued in the server (vLLM ``num_requests_waiting``)."""
    kv_cache_usage: float | None = None
    """Fraction of the KV cache in use, 0..1 (vLLM)."""


UNKNOWN = InstanceFacts()
"""Nothing learned: every instance starts so, and ``openai`` endpoints stay so."""
