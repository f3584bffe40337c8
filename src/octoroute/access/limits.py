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


class Verdict:
    """The outcome of one check: ``refused`` names the limit hit (``requests``, ``tokens``,
    ``concurrent_requests``) or is ``None``; ``retry_after`` is when a retry would fit (``None``
    when it never would). The buckets are kept as the raw levels left (after the request took
    its share, or as they were when it was refused); :attr:`requests` and :attr:`tokens` say
    them as the headers do. A plain class: one is made per limited request."""

    __slots__ = ("cost", "limits", "refused", "requests_left", "retry_after", "tokens_left")

    def __init__(
        self,
        refused: str | None,
        limits: Limits,
        requests_left: float,
        tokens_left: float,
        retry_after: float | None,
        cost: int,
    ) -> None:
        self.refused = refused
        self.limits = limits
        self.requests_left = requests_left
        self.tokens_left = tokens_left
        self.retry_after = retry_after
        self.cost = cost

    @property
    def requests(self) -> Usage | None:
        """The requests bucket, when the key has ``requests_per_minute``."""
        limit = self.limits.requests_per_minute
        return None if limit is None else _usage(self.requests_left, limit)

    @property
    def tokens(self) -> Usage | None:
        """The tokens bucket, when the key has ``tokens_per_minute``."""
        limit = self.limits.tokens_per_minute
        return None if limit is None else _usage(self.tokens_left, limit)


ALLOWED: Final = Verdict(None, Limits(), 0.0, 0.0, None, 0)
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
    if level < 0:  # only a refused request over its whole allowance reads below zero
        level = 0.0
    # int() is floor here (level >= 0); the arithmetic runs on every limited request.
    return Usage(limit, int(level), (limit - level) * WINDOW_SECONDS / limit)


def verdict(
    limits: Limits, cost: int, requests: float, tokens: float, refused: str | None
) -> Verdict:
    """The verdict for levels read *before* the request took anything (``refused`` as decided):
    the buckets as they are after it, and when a refused request would fit."""
    if refused is None:
        return Verdict(None, limits, requests - 1, tokens - cost, None, cost)
    rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
    retry: float | None = None
    if refused == CONCURRENT:
        retry = CONCURRENCY_RETRY_SECONDS
    elif tpm is None or cost <= tpm:  # a cost over the whole allowance never fits: no retry
        retry = max(
            0.0 if rpm is None else _wait(requests, 1, rpm),
            0.0 if tpm is None else _wait(tokens, cost, tpm),
        )
    return Verdict(refused, limits, requests, tokens, retry, cost)


def _go_duration(whole_seconds: int) -> str:
    return (
        f"{whole_seconds}s"
        if whole_seconds < 60
        else f"{whole_seconds // 60}m{whole_seconds % 60}s"
    )


_MILLISECONDS: Final = tuple(f"{milliseconds}ms" for milliseconds in range(1000))
_SECONDS: Final = tuple(_go_duration(whole) for whole in range(int(WINDOW_SECONDS) + 1))
"""Every reset a bucket can show, written once: a bucket refills within a minute."""


def format_reset(seconds: float) -> str:
    """A duration as OpenAI writes ``x-ratelimit-reset-*`` (a Go duration): ``20ms`` under a
    second, else whole seconds rounded up, ``9s``, ``6m0s``. Read from tables written at import
    for the durations a bucket can show (up to a minute): this runs twice on every limited
    request, and formatting costs several times a tuple index. ``int`` rounds up by hand
    (for ``seconds >= 0``) to spare ``math.ceil``'s lookups."""
    milliseconds = int(seconds * 1000)
    if milliseconds < seconds * 1000:
        milliseconds += 1
    if milliseconds < 1000:
        return _MILLISECONDS[milliseconds] if milliseconds >= 0 else "0ms"
    whole = int(seconds)
    if whole < seconds:
        whole += 1
    return _SECONDS[whole] if whole < len(_SECONDS) else _go_duration(whole)


def put_rate_headers(headers: dict[str, str], outcome: Verdict) -> None:
    """Add the ``x-ratelimit-*`` headers of a verdict to ``headers`` (only for the limits the
    key has). Straight into the answer's dict, :func:`format_reset` inlined: this runs on every
    limited request."""
    rpm, tpm, _ = outcome.limits
    if rpm is not None:
        left = outcome.requests_left
        if left < 0:
            left = 0.0
        headers["x-ratelimit-limit-requests"] = str(rpm)
        headers["x-ratelimit-remaining-requests"] = str(int(left))
        headers["x-ratelimit-reset-requests"] = format_reset((rpm - left) * WINDOW_SECONDS / rpm)
    if tpm is not None:
        left = outcome.tokens_left
        if left < 0:
            left = 0.0
        headers["x-ratelimit-limit-tokens"] = str(tpm)
        headers["x-ratelimit-remaining-tokens"] = str(int(left))
        headers["x-ratelimit-reset-tokens"] = format_reset((tpm - left) * WINDOW_SECONDS / tpm)


def rate_headers(outcome: Verdict) -> tuple[tuple[str, str], ...]:
    """The ``x-ratelimit-*`` headers of a verdict, as pairs (a 429's)."""
    headers: dict[str, str] = {}
    put_rate_headers(headers, outcome)
    return tuple(headers.items())


class _Counters:
    """One key's buckets (level, and when it was last worked out) and requests in flight."""

    __slots__ = ("busy", "requests", "requests_at", "tokens", "tokens_at")

    def __init__(self, limits: Limits, now: float) -> None:
        self.requests = float(limits.requests_per_minute or 0)
        self.requests_at = now
        self.tokens = float(limits.tokens_per_minute or 0)
        self.tokens_at = now
        self.busy = 0


class LocalLimiter:
    """The counters of every key in this process, by key name (so they survive a reload that
    keeps the name). One event loop runs every request, so no lock is needed."""

    __slots__ = ("_clock", "_keys")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._keys: dict[str, _Counters] = {}

    def acquire(self, name: str, limits: Limits, cost: int) -> Verdict:
        """Check a request of key ``name`` costing ``cost`` tokens and, when allowed, take it
        from the buckets (and a concurrency slot, given back by :meth:`release`)."""
        now = self._clock()
        counters = self._keys.get(name)
        if counters is None:
            counters = self._keys[name] = _Counters(limits, now)
        rpm, tpm, most = limits
        # refill(), inlined: this runs on every request of a limited key.
        requests = tokens = 0.0
        if rpm is not None:
            elapsed = now - counters.requests_at
            requests = counters.requests + (elapsed * rpm / WINDOW_SECONDS if elapsed > 0 else 0)
            if requests > rpm:
                requests = float(rpm)
        if tpm is not None:
            elapsed = now - counters.tokens_at
            tokens = counters.tokens + (elapsed * tpm / WINDOW_SECONDS if elapsed > 0 else 0)
            if tokens > tpm:
                tokens = float(tpm)
        # decide(), inlined likewise.
        if most is not None and counters.busy >= most:
            refused: str | None = CONCURRENT
        elif rpm is not None and requests < 1:
            refused = REQUESTS
        elif tpm is not None and tokens < cost:
            refused = TOKENS
        else:
            if rpm is not None:
                counters.requests, counters.requests_at = requests - 1, now
            if tpm is not None:
                counters.tokens, counters.tokens_at = tokens - cost, now
            if most is not None:
                counters.busy += 1
            return Verdict(None, limits, requests - 1, tokens - cost, None, cost)
        return verdict(limits, cost, requests, tokens, refused)

    def release(self, name: str) -> None:
        """Give back the concurrency slot a granted request of ``name`` held."""
        counters = self._keys.get(name)
        if counters is not None and counters.busy > 0:
            counters.busy -= 1

    def busy(self, name: str) -> int:
        """The key's requests holding a slot now."""
        counters = self._keys.get(name)
        return 0 if counters is None else counters.busy
