"""Per-key rate limits: the arithmetic, and the counters of one process.

**Requests and tokens a minute** are token buckets, the way OpenAI's limits behave: a key starts
with its whole minute's allowance, each request takes 1 from the requests bucket and its
estimated tokens from the tokens bucket, and both refill continuously at ``limit / 60`` a second
up to the limit. So a key can send its whole minute at once after a quiet spell, and never more
than the limit a minute sustained; ``x-ratelimit-reset-*`` is the time until its bucket is full
again and ``Retry-After`` the time until the refused request would fit. (A fixed window lets
twice the limit through around each minute's boundary and releases every waiting client at the
same instant; an exact sliding log keeps one timestamp per request. A bucket is two numbers a
key, here and in Redis.)

**Concurrency** is a count of the key's requests being answered; one over ``max_concurrent`` is
refused at once, never queued (the fleet's own queue is for slots, not for keys).

A request that costs more tokens than the key's whole ``tokens_per_minute`` could never fit: it
is refused without ``Retry-After``, and the message says to ask for fewer output tokens.

:class:`LocalLimiter` keeps the counters in this process (clock injected, so tests step time);
``access.redis_store`` keeps the same buckets in Redis with the same arithmetic in Lua. Both
answer with a :class:`Verdict` built here by :func:`verdict`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Final, NamedTuple

WINDOW_SECONDS: Final = 60.0
CONCURRENCY_RETRY_SECONDS: Final = 1.0
"""``Retry-After`` of a request refused for ``max_concurrent``: when a slot frees is unknown."""
REQUESTS: Final = "requests"
TOKENS: Final = "tokens"
CONCURRENT: Final = "concurrent_requests"
LIMIT_NAMES: Final = {
    REQUESTS: "requests_per_minute",
    TOKENS: "tokens_per_minute",
    CONCURRENT: "max_concurrent",
}
"""Each refusal's limit as the config names it (``KeyRateLimited.error_type`` -> key)."""


class Limits(NamedTuple):
    """A key's limits; ``None``: unlimited."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent: int | None = None

    @property
    def any(self) -> bool:
        """Whether there is anything to count."""
        return (
            self.requests_per_minute is not None
            or self.tokens_per_minute is not None
            or self.max_concurrent is not None
        )


class Usage(NamedTuple):
    """One bucket after the check, as the ``x-ratelimit-*`` headers say it."""

    limit: int
    remaining: int
    reset_seconds: float
    """Until the bucket is full again."""


class Verdict(NamedTuple):
    """The outcome of one check: ``refused`` names the limit hit (``requests``, ``tokens``,
    ``concurrent_requests``) or is ``None``; ``retry_after`` is when a retry would fit (``None``
    when it never would)."""

    refused: str | None
    requests: Usage | None
    tokens: Usage | None
    retry_after: float | None
    cost: int


ALLOWED: Final = Verdict(None, None, None, None, 0)
"""The verdict for a key without limits."""


def refill(level: float, stamp: float, now: float, limit: int) -> float:
    """A bucket's level at ``now``, last ``level`` at ``stamp`` (seconds), refilled at
    ``limit`` a minute and capped at ``limit`` (a limit lowered by a reload caps it too)."""
    return min(float(limit), level + max(0.0, now - stamp) * limit / WINDOW_SECONDS)


def decide(limits: Limits, cost: int, requests: float, tokens: float, busy: int) -> str | None:
    """Which limit refuses a request costing ``cost`` tokens, given the buckets' levels and the
    key's requests in flight; ``None`` when it may go. The Lua script makes the same test."""
    if limits.max_concurrent is not None and busy >= limits.max_concurrent:
        return CONCURRENT
    if limits.requests_per_minute is not None and requests < 1:
        return REQUESTS
    if limits.tokens_per_minute is not None and tokens < cost:
        return TOKENS
    return None


def _wait(level: float, need: float, limit: int) -> float:
    return max(0.0, need - level) * WINDOW_SECONDS / limit


def _usage(level: float, limit: int) -> Usage:
    level = max(0.0, level)
    return Usage(limit, math.floor(level), (limit - level) * WINDOW_SECONDS / limit)


def verdict(
    limits: Limits, cost: int, requests: float, tokens: float, refused: str | None
) -> Verdict:
    """The verdict for levels read *before* the request took anything (``refused`` as decided):
    the buckets as they are after it, and when a refused request would fit."""
    rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
    taken = refused is None
    requests_usage = None if rpm is None else _usage(requests - (1 if taken else 0), rpm)
    tokens_usage = None if tpm is None else _usage(tokens - (cost if taken else 0), tpm)
    retry: float | None = None
    if refused == CONCURRENT:
        retry = CONCURRENCY_RETRY_SECONDS
    elif refused is not None:
        if tpm is not None and cost > tpm:
            retry = None  # never fits: the message says so
        else:
            waits = [0.0]
            if rpm is not None:
                waits.append(_wait(requests, 1, rpm))
            if tpm is not None:
                waits.append(_wait(tokens, cost, tpm))
            retry = max(waits)
    return Verdict(refused, requests_usage, tokens_usage, retry, cost)


def format_reset(seconds: float) -> str:
    """A duration as OpenAI writes ``x-ratelimit-reset-*``: ``20ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


def rate_headers(outcome: Verdict) -> tuple[tuple[str, str], ...]:
    """The ``x-ratelimit-*`` headers of a verdict (only for the limits the key has)."""
    headers: list[tuple[str, str]] = []
    for kind, usage in (("requests", outcome.requests), ("tokens", outcome.tokens)):
        if usage is not None:
            headers += [
                (f"x-ratelimit-limit-{kind}", str(usage.limit)),
                (f"x-ratelimit-remaining-{kind}", str(usage.remaining)),
                (f"x-ratelimit-reset-{kind}", format_reset(usage.reset_seconds)),
            ]
    return tuple(headers)


class LocalLimiter:
    """The counters of every key in this process, by key name (so they survive a reload that
    keeps the name). One event loop runs every request, so no lock is needed."""

    __slots__ = ("_busy", "_clock", "_requests", "_tokens")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._requests: dict[str, tuple[float, float]] = {}
        self._tokens: dict[str, tuple[float, float]] = {}
        self._busy: dict[str, int] = {}

    def acquire(self, name: str, limits: Limits, cost: int) -> Verdict:
        """Check a request of key ``name`` costing ``cost`` tokens and, when allowed, take it
        from the buckets (and a concurrency slot, given back by :meth:`release`)."""
        now = self._clock()
        rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
        requests = tokens = 0.0
        if rpm is not None:
            level, stamp = self._requests.get(name, (rpm, now))
            requests = refill(level, stamp, now, rpm)
        if tpm is not None:
            level, stamp = self._tokens.get(name, (tpm, now))
            tokens = refill(level, stamp, now, tpm)
        busy = self._busy.get(name, 0)
        refused = decide(limits, cost, requests, tokens, busy)
        if refused is None:
            if rpm is not None:
                self._requests[name] = (requests - 1, now)
            if tpm is not None:
                self._tokens[name] = (tokens - cost, now)
            if limits.max_concurrent is not None:
                self._busy[name] = busy + 1
        return verdict(limits, cost, requests, tokens, refused)

    def release(self, name: str) -> None:
        """Give back the concurrency slot a granted request of ``name`` held."""
        busy = self._busy.get(name, 0)
        if busy > 1:
            self._busy[name] = busy - 1
        else:
            self._busy.pop(name, None)

    def busy(self, name: str) -> int:
        """The key's requests holding a slot now."""
        return self._busy.get(name, 0)
