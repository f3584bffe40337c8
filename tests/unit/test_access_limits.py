"""Per-key limits counted in one process: token buckets over an injected clock, concurrency,
and the headers OpenAI clients read."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from octoroute.access.limits import (
    CONCURRENT,
    REQUESTS,
    TOKENS,
    Limits,
    LocalLimiter,
    Usage,
    anthropic_rate_headers,
    format_reset,
    parse_reset,
    rate_headers,
    refill,
)


def shown(usage: Usage | None) -> tuple[int, int, float] | None:
    """A bucket's numbers, the reset time to the millisecond."""
    return None if usage is None else (usage.limit, usage.remaining, round(usage.reset_seconds, 3))


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_key_gets_its_whole_minute_at_once_then_is_refused(clock: Clock) -> None:
    limiter = LocalLimiter(clock)
    limits = Limits(requests_per_minute=3)

    verdicts = [limiter.acquire("alice", limits, 0) for _ in range(4)]

    assert [v.refused for v in verdicts] == [None, None, None, REQUESTS]
    assert [v.requests.remaining for v in verdicts if v.requests] == [2, 1, 0, 0]
    assert verdicts[3].retry_after == pytest.approx(20.0)


def test_the_allowance_refills_at_the_limit_a_minute(clock: Clock) -> None:
    limiter = LocalLimiter(clock)
    limits = Limits(requests_per_minute=60)
    for _ in range(60):
        assert limiter.acquire("alice", limits, 0).refused is None
    assert limiter.acquire("alice", limits, 0).refused == REQUESTS

    clock.now += 0.999
    assert limiter.acquire("alice", limits, 0).refused == REQUESTS
    clock.now += 0.002
    assert limiter.acquire("alice", limits, 0).refused is None
    assert limiter.acquire("alice", limits, 0).refused == REQUESTS
    clock.now += 60
    full = limiter.acquire("alice", limits, 0)
    assert shown(full.requests) == (60, 59, 1.0)


def test_keys_are_counted_apart(clock: Clock) -> None:
    limiter = LocalLimiter(clock)
    limits = Limits(requests_per_minute=1)

    assert limiter.acquire("alice", limits, 0).refused is None
    assert limiter.acquire("bob", limits, 0).refused is None
    assert limiter.acquire("alice", limits, 0).refused == REQUESTS


def test_tokens_are_taken_by_the_estimate_and_refused_until_the_request_fits(
    clock: Clock,
) -> None:
    limiter = LocalLimiter(clock)
    limits = Limits(tokens_per_minute=600)

    first = limiter.acquire("alice", limits, 500)
    refused = limiter.acquire("alice", limits, 200)
    clock.now += 10  # +100 tokens: 200 now
    fits = limiter.acquire("alice", limits, 200)

    assert first.refused is None
    assert shown(first.tokens) == (600, 100, 50.0)
    assert refused.refused == TOKENS
    assert refused.retry_after == pytest.approx(10.0)
    assert refused.tokens is not None
    assert refused.tokens.remaining == 100
    assert fits.refused is None
    assert fits.tokens is not None
    assert fits.tokens.remaining == 0


def test_a_request_larger_than_the_whole_minute_is_refused_without_a_retry_time(
    clock: Clock,
) -> None:
    limiter = LocalLimiter(clock)
    limits = Limits(tokens_per_minute=1000)

    verdict = limiter.acquire("alice", limits, 1001)

    assert verdict.refused == TOKENS
    assert verdict.retry_after is None
    assert limiter.acquire("alice", limits, 1000).refused is None


def test_a_refused_request_takes_nothing(clock: Clock) -> None:
    limiter = LocalLimiter(clock)
    limits = Limits(requests_per_minute=10, tokens_per_minute=100)

    assert limiter.acquire("alice", limits, 90).refused is None
    assert limiter.acquire("alice", limits, 50).refused == TOKENS
    after = limiter.acquire("alice", limits, 10)

    assert after.refused is None
    assert after.requests is not None
    assert after.requests.remaining == 8
    assert after.tokens is not None
    assert after.tokens.remaining == 0


def test_concurrency_slots_are_held_until_released(clock: Clock) -> None:
    limiter = LocalLimiter(clock)
    limits = Limits(max_concurrent=2)

    assert limiter.acquire("alice", limits, 0).refused is None
    assert limiter.acquire("alice", limits, 0).refused is None
    busy = limiter.acquire("alice", limits, 0)
    limiter.release("alice")
    again = limiter.acquire("alice", limits, 0)

    assert busy.refused == CONCURRENT
    assert busy.retry_after == 1.0
    assert again.refused is None
    assert limiter.busy("alice") == 2


def test_concurrency_is_checked_first_and_a_busy_key_spends_no_requests(clock: Clock) -> None:
    limiter = LocalLimiter(clock)
    limits = Limits(requests_per_minute=2, max_concurrent=1)

    assert limiter.acquire("alice", limits, 0).refused is None
    assert limiter.acquire("alice", limits, 0).refused == CONCURRENT
    limiter.release("alice")
    last = limiter.acquire("alice", limits, 0)

    assert last.refused is None
    assert last.requests is not None
    assert last.requests.remaining == 0


def test_a_lowered_limit_caps_what_the_bucket_held(clock: Clock) -> None:
    limiter = LocalLimiter(clock)
    limiter.acquire("alice", Limits(requests_per_minute=100), 0)

    lowered = limiter.acquire("alice", Limits(requests_per_minute=2), 0)

    assert shown(lowered.requests) == (2, 1, 30.0)


def test_the_clock_going_backwards_refills_nothing() -> None:
    assert refill(0.0, 10.0, 5.0, 60) == 0.0
    assert refill(0.0, 10.0, 11.0, 60) == 1.0


@settings(max_examples=100)
@given(
    limit=st.integers(1, 50),
    gaps=st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=200),
)
def test_no_minute_ever_sees_more_than_the_limit_plus_what_refilled_in_it(
    limit: int, gaps: list[float]
) -> None:
    clock = Clock()
    limiter = LocalLimiter(clock)
    limits = Limits(requests_per_minute=limit)
    admitted: list[float] = []
    for gap in gaps:
        clock.now += gap
        if limiter.acquire("k", limits, 0).refused is None:
            admitted.append(clock.now)
    for start in admitted:
        inside = [t for t in admitted if start <= t < start + 60]
        span = inside[-1] - start
        assert len(inside) <= limit + span * limit / 60 + 1e-9


def test_headers_are_openais_for_the_limits_the_key_has(clock: Clock) -> None:
    limiter = LocalLimiter(clock)

    verdict = limiter.acquire("alice", Limits(requests_per_minute=60, tokens_per_minute=1200), 30)

    assert rate_headers(verdict) == (
        ("x-ratelimit-limit-requests", "60"),
        ("x-ratelimit-remaining-requests", "59"),
        ("x-ratelimit-reset-requests", "1s"),
        ("x-ratelimit-limit-tokens", "1200"),
        ("x-ratelimit-remaining-tokens", "1170"),
        ("x-ratelimit-reset-tokens", "2s"),
    )
    assert rate_headers(limiter.acquire("bob", Limits(max_concurrent=1), 0)) == ()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, "0ms"), (0.0201, "21ms"), (0.9996, "1s"), (1.0, "1s"), (1.5, "2s"),
     (59.0001, "1m0s"), (60.0, "1m0s"), (360.0, "6m0s"), (90.25, "1m31s"), (3599.5, "60m0s")],
)  # fmt: skip
def test_reset_durations_are_written_as_openai_writes_them(seconds: float, text: str) -> None:
    assert format_reset(seconds) == text


def test_the_reset_tables_agree_with_rounding_up_everywhere_a_bucket_can_be() -> None:
    """The tables behind format_reset give what rounding up with math.ceil gives, at every
    millisecond of a minute and on both sides of each boundary."""
    for step in range(60_001):
        for seconds in (step / 1000, step / 1000 + 1e-7, step / 1000 - 1e-7):
            if seconds < 0:
                continue
            milliseconds = math.ceil(seconds * 1000)
            if milliseconds < 1000:
                expected = f"{milliseconds}ms"
            else:
                whole = math.ceil(seconds)
                expected = f"{whole}s" if whole < 60 else f"{whole // 60}m{whole % 60}s"
            assert format_reset(seconds) == expected, seconds


def test_a_limit_a_reload_adds_starts_full_and_one_it_removes_never_refuses(clock: Clock) -> None:
    limiter = LocalLimiter(clock)
    for _ in range(5):
        assert limiter.acquire("alice", Limits(tokens_per_minute=100), 10).refused is None

    added = limiter.acquire("alice", Limits(requests_per_minute=2, tokens_per_minute=100), 10)
    removed = [limiter.acquire("alice", Limits(tokens_per_minute=100), 10) for _ in range(5)]

    assert shown(added.requests) == (2, 1, 30.0)  # the new bucket started with its whole minute
    assert shown(added.tokens) == (100, 40, 36.0)  # the old one kept what it held
    assert [v.refused for v in removed] == [None, None, None, None, TOKENS]


def test_the_anthropic_headers_say_the_reset_as_an_rfc_3339_time() -> None:
    headers = {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1m0s",
        "x-ratelimit-limit-tokens": "1200",
        "x-ratelimit-remaining-tokens": "1170",
        "x-ratelimit-reset-tokens": "20ms",
    }

    found = anthropic_rate_headers(headers, 1_700_000_000.2)

    assert found == {
        "anthropic-ratelimit-requests-limit": "60",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2023-11-14T22:14:21Z",
        "anthropic-ratelimit-tokens-limit": "1200",
        "anthropic-ratelimit-tokens-remaining": "1170",
        "anthropic-ratelimit-tokens-reset": "2023-11-14T22:13:21Z",
    }
    assert anthropic_rate_headers({"x-ratelimit-limit-requests": "60"}, 0.0) == {}
    assert [parse_reset(t) for t in ("20ms", "9s", "6m0s", "", "soon")] == [
        0.02,
        9,
        360,
        None,
        None,
    ]
