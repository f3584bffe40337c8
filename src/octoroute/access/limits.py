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
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Final, NamedTuple

WINDOW_SECONDS: Final = 60.0
INFINITE: Final = float("inf")
"""The level of a bucket without a limit."""
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


class Limits:
    """A key's limits (``None``: unlimited), and what the request path needs of them worked
    out once, when the key table is built: each bucket's size as a float (CPython's mixed
    int-float arithmetic costs twice the float one), its refill rate a second, and its limit
    as the header text."""

    __slots__ = (
        "any",
        "max_concurrent",
        "requests",
        "requests_per_minute",
        "requests_rate",
        "requests_size",
        "requests_text",
        "tokens",
        "tokens_per_minute",
        "tokens_rate",
        "tokens_size",
        "tokens_text",
    )

    def __init__(
        self,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        max_concurrent: int | None = None,
    ) -> None:
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.max_concurrent = max_concurrent
        self.any = (
            requests_per_minute is not None
            or tokens_per_minute is not None
            or max_concurrent is not None
        )
        """Whether there is anything to count."""
        self.requests = None if requests_per_minute is None else float(requests_per_minute)
        """The requests bucket's size; ``None``: no such limit."""
        self.requests_size = INFINITE if self.requests is None else self.requests
        """The requests bucket's size, infinite without a limit."""
        self.requests_rate = (requests_per_minute or 0) / WINDOW_SECONDS
        """What the requests bucket refills a second."""
        self.requests_text = str(requests_per_minute)
        self.tokens = None if tokens_per_minute is None else float(tokens_per_minute)
        """The tokens bucket's size; ``None``: no such limit."""
        self.tokens_size = INFINITE if self.tokens is None else self.tokens
        """The tokens bucket's size, infinite without a limit."""
        self.tokens_rate = (tokens_per_minute or 0) / WINDOW_SECONDS
        """What the tokens bucket refills a second."""
        self.tokens_text = str(tokens_per_minute)

    def __repr__(self) -> str:
        return (
            f"Limits(requests_per_minute={self.requests_per_minute}, "
            f"tokens_per_minute={self.tokens_per_minute}, max_concurrent={self.max_concurrent})"
        )


class Usage(NamedTuple):
    """One bucket after the check, as the ``x-ratelimit-*`` headers say it."""

    limit: int
    remaining: int
    reset_seconds: float
    """Until the bucket is full again."""


class Verdict:
    """The outcome of one check, and the request's hold on what it took: one object per limited
    request, so the hot path allocates one thing.

    ``refused`` names the limit hit (``requests``, ``tokens``, ``concurrent_requests``) or is
    ``None``; ``retry_after`` is when a retry would fit (``None`` when it never would). The
    buckets are kept as the raw levels left (after the request took its share, or as they were
    when it was refused); :attr:`requests` and :attr:`tokens` say them as the headers do.

    A granted verdict is also the request's lease on a concurrency slot of key ``name``: in this
    process (``counters``, whose count it gives back) or in Redis (``shared_id``), until
    ``state.Limiter.release``."""

    __slots__ = (
        "cost",
        "counters",
        "limits",
        "name",
        "refused",
        "requests_left",
        "retry_after",
        "shared_id",
        "tokens_left",
    )

    def __init__(
        self,
        refused: str | None,
        limits: Limits,
        requests_left: float,
        tokens_left: float,
        retry_after: float | None,
        cost: int,
        name: str = "",
        counters: Counters | None = None,
    ) -> None:
        self.refused = refused
        self.limits = limits
        self.requests_left = requests_left
        self.tokens_left = tokens_left
        self.retry_after = retry_after
        self.cost = cost
        self.name = name
        self.counters = counters
        """The local counters whose concurrency slot this holds; ``None``: none (any more)."""
        self.shared_id = ""
        """The lease in Redis this holds; ``""``: none (any more)."""

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
"""The verdict for a key without limits: no headers, nothing to give back."""


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


_RESETS: Final = {float(milliseconds): text for milliseconds, text in enumerate(_MILLISECONDS)}
"""Every sub-second reset by its whole milliseconds, as floats (``-(-x // 1)``, the ceiling
of ``x``, costs less than ``int``, and a float finds the same entry as its int)."""


def put_rate_headers(headers: dict[str, str], outcome: Verdict) -> None:
    """Add the ``x-ratelimit-*`` headers of a verdict to ``headers`` (only for the limits the
    key has; none for :data:`ALLOWED`). Straight into the answer's dict, with
    :func:`format_reset`'s sub-second case (the usual one: a granted request leaves its
    buckets nearly full) inlined, in float arithmetic: this runs on every limited request."""
    limits = outcome.limits
    rpm = limits.requests
    if rpm is not None:
        left = outcome.requests_left
        if left < 0:
            left = 0.0
        headers["x-ratelimit-limit-requests"] = limits.requests_text
        headers["x-ratelimit-remaining-requests"] = "%d" % left  # noqa: UP031 (floor, fast)
        reset = (rpm - left) * WINDOW_SECONDS / rpm
        headers["x-ratelimit-reset-requests"] = _RESETS.get(-(-reset * 1000 // 1)) or format_reset(
            reset
        )
    tpm = limits.tokens
    if tpm is not None:
        left = outcome.tokens_left
        if left < 0:
            left = 0.0
        headers["x-ratelimit-limit-tokens"] = limits.tokens_text
        headers["x-ratelimit-remaining-tokens"] = "%d" % left  # noqa: UP031
        reset = (tpm - left) * WINDOW_SECONDS / tpm
        headers["x-ratelimit-reset-tokens"] = _RESETS.get(-(-reset * 1000 // 1)) or format_reset(
            reset
        )


def rate_headers(outcome: Verdict) -> tuple[tuple[str, str], ...]:
    """The ``x-ratelimit-*`` headers of a verdict, as pairs (a 429's)."""
    headers: dict[str, str] = {}
    put_rate_headers(headers, outcome)
    return tuple(headers.items())


_RESET_FORM: Final = re.compile(r"(?:(\d+)ms|(?:(\d+)m)?(?:(\d+)s)?)")
ANTHROPIC_PREFIX: Final = "anthropic-ratelimit-"


def parse_reset(text: str) -> float | None:
    """The seconds of a duration :func:`format_reset` wrote (``20ms``, ``9s``, ``6m0s``);
    ``None`` for anything else."""
    match = _RESET_FORM.fullmatch(text)
    if match is None or not text:
        return None
    milliseconds, minutes, seconds = match.groups()
    if milliseconds is not None:
        return int(milliseconds) / 1000
    return int(minutes or 0) * 60 + int(seconds or 0)


def anthropic_rate_headers(headers: Mapping[str, str], now: float) -> dict[str, str]:
    """The ``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`` headers Anthropic
    sends, from the ``x-ratelimit-*`` ones in ``headers`` (for the limits the key has): the
    same limit and remaining, and the reset as the RFC 3339 time (UTC, whole seconds, rounded
    up) the bucket is full again, ``now`` being the wall-clock time in seconds."""
    found: dict[str, str] = {}
    for bucket in (REQUESTS, TOKENS):
        limit = headers.get(f"x-ratelimit-limit-{bucket}")
        remaining = headers.get(f"x-ratelimit-remaining-{bucket}")
        reset = parse_reset(headers.get(f"x-ratelimit-reset-{bucket}", ""))
        if limit is None or remaining is None or reset is None:
            continue
        at = datetime.fromtimestamp(math.ceil(now + reset), UTC)
        found[f"{ANTHROPIC_PREFIX}{bucket}-limit"] = limit
        found[f"{ANTHROPIC_PREFIX}{bucket}-remaining"] = remaining
        found[f"{ANTHROPIC_PREFIX}{bucket}-reset"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return found


class Counters:
    """One key's buckets (their levels, and when they were last worked out: both at once) and
    its requests in flight, for the :class:`Limits` last applied to them. A bucket without a
    limit is held infinite: it never refuses, and a limit a reload adds starts full."""

    __slots__ = ("at", "busy", "limits", "requests", "tokens")

    def __init__(self, limits: Limits, now: float) -> None:
        self.limits = limits
        self.requests = limits.requests_size
        self.tokens = limits.tokens_size
        self.at = now
        self.busy = 0

    def adopt(self, limits: Limits) -> None:
        """Count for ``limits`` from now on (a reload changed the key's): a lowered limit caps
        what its bucket holds, a removed one is infinite, an added one starts full."""
        self.limits = limits
        self.requests = min(self.requests, limits.requests_size)
        if limits.requests is None:
            self.requests = INFINITE
        self.tokens = min(self.tokens, limits.tokens_size)
        if limits.tokens is None:
            self.tokens = INFINITE


class LocalLimiter:
    """The counters of every key in this process, by key name (so they survive a reload that
    keeps the name). One event loop runs every request, so no lock is needed."""

    __slots__ = ("_clock", "_keys")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._keys: dict[str, Counters] = {}

    def acquire(self, name: str, limits: Limits, cost: int) -> Verdict:
        """Check a request of key ``name`` costing ``cost`` tokens and, when allowed, take it
        from the buckets (and a concurrency slot, given back by :meth:`release`).

        :func:`refill` and :func:`decide`, inlined, without a branch per limit (a bucket
        without one is infinite and refills at 0): this runs on every request of a limited
        key."""
        now = self._clock()
        counters = self._keys.get(name)
        if counters is None:
            counters = self._keys[name] = Counters(limits, now)
        elif counters.limits is not limits:
            counters.adopt(limits)
        requests = counters.requests
        tokens = counters.tokens
        elapsed = now - counters.at
        if elapsed > 0.0:  # a clock gone backwards refills nothing
            requests += elapsed * limits.requests_rate
            if requests > limits.requests_size:
                requests = limits.requests_size
            tokens += elapsed * limits.tokens_rate
            if tokens > limits.tokens_size:
                tokens = limits.tokens_size
        most = limits.max_concurrent
        if most is not None and counters.busy >= most:
            return verdict(limits, cost, requests, tokens, CONCURRENT)
        if requests < 1.0:
            return verdict(limits, cost, requests, tokens, REQUESTS)
        if tokens < cost:
            return verdict(limits, cost, requests, tokens, TOKENS)
        requests -= 1.0
        tokens -= cost
        counters.requests = requests
        counters.tokens = tokens
        counters.at = now
        if most is None:
            return Verdict(None, limits, requests, tokens, None, cost, name)
        counters.busy += 1
        return Verdict(None, limits, requests, tokens, None, cost, name, counters)

    def release(self, name: str) -> None:
        """Give back a concurrency slot of key ``name`` (``state.Limiter.release`` gives back
        a verdict's own, through the counters it holds)."""
        counters = self._keys.get(name)
        if counters is not None and counters.busy > 0:
            counters.busy -= 1

    def busy(self, name: str) -> int:
        """The key's requests holding a slot now."""
        counters = self._keys.get(name)
        return 0 if counters is None else counters.busy
