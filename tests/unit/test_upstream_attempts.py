"""The retry budget: backoff schedule and what the client is told once every attempt failed."""

from __future__ import annotations

import orjson
import pytest

from octoroute.enums import Tier
from octoroute.errors import (
    BadUpstreamResponse,
    EndpointSaturated,
    EventTooLarge,
    NoHealthyEndpoint,
    ResponseTooLarge,
    UpstreamAuthFailed,
    UpstreamConnectError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamThrottled,
    UpstreamTimeout,
)
from octoroute.fleet.selector import Unavailability
from octoroute.upstream.attempts import (
    BACKOFF_CAP_SECONDS,
    DEFAULT_BUSY_SECONDS,
    MAX_ATTEMPTS,
    MAX_BUSY_SECONDS,
    Scope,
    backoff_before,
    busy_seconds,
    exhausted,
)

ALL_DOWN = Unavailability(
    unhealthy=3, ejected=0, busy=0, busy_for=None, busy_status=429, ejected_for=None
)
"""Nothing busy or ejected: the failures are plain ones."""
FAST = Scope(Tier.FAST, "tier 'fast'", 2)
LABEL = "sim-fast-a at http://127.0.0.1:9/v1"


def test_three_attempts_at_most() -> None:
    assert MAX_ATTEMPTS == 3


@pytest.mark.parametrize(
    ("attempt", "seconds"),
    [(0, 0.0), (1, 0.0), (2, 0.1), (3, 0.2), (4, 0.4), (5, 0.8), (6, 1.6)],
)
def test_backoff_doubles_from_100_ms_after_an_immediate_first_attempt(
    attempt: int, seconds: float
) -> None:
    assert backoff_before(attempt) == pytest.approx(seconds)


@pytest.mark.parametrize("attempt", [7, 8, 20, 1000])
def test_backoff_is_capped(attempt: int) -> None:
    assert backoff_before(attempt) == BACKOFF_CAP_SECONDS == 2.0


def test_backoff_is_a_float() -> None:
    assert all(type(backoff_before(n)) is float for n in range(1, 30))


def test_nothing_tried_is_503_no_healthy_endpoint_naming_the_scope() -> None:
    error = exhausted(Scope(Tier.DEEP, "tier 'deep'", 3), 0, None, ALL_DOWN)
    assert isinstance(error, NoHealthyEndpoint)
    assert error.status == 503
    assert error.code == "no_healthy_endpoint"
    assert error.error_type == "api_error"
    assert "tier 'deep'" in error.message
    assert "all 3 configured endpoints" in error.message
    assert "GET /models" in error.message


def test_last_attempt_timed_out_is_504() -> None:
    last = UpstreamTimeout(f"{LABEL}: no complete answer within 1 s", endpoint=LABEL)
    error = exhausted(FAST, 2, last, ALL_DOWN)
    assert isinstance(error, UpstreamTimeout)
    assert error.status == 504
    assert error.code == "upstream_timeout"
    assert error.endpoint == LABEL
    assert error.message == (
        "Every attempt on tier 'fast' failed (2 endpoints tried); "
        f"last error: {LABEL}: no complete answer within 1 s"
    )


@pytest.mark.parametrize(
    "last",
    [
        UpstreamConnectError(f"{LABEL}: cannot connect (refused)", endpoint=LABEL),
        UpstreamProtocolError(f"{LABEL}: response body cut short", endpoint=LABEL),
        UpstreamStatusError(
            f"{LABEL}: answered HTTP 500",
            endpoint=LABEL,
            upstream_status=500,
            body=b"{}",
            content_type="application/json",
        ),
        UpstreamStatusError(
            f"{LABEL}: answered HTTP 429",
            endpoint=LABEL,
            upstream_status=429,
            body=b"{}",
            content_type="application/json",
        ),
    ],
    ids=["connect", "protocol", "status-500", "status-429"],
)
def test_any_other_last_failure_is_502_upstream_failed(last: UpstreamError) -> None:
    error = exhausted(FAST, 3, last, ALL_DOWN)
    assert type(error) is UpstreamError
    assert error.status == 502
    assert error.code == "upstream_failed"
    assert error.endpoint == LABEL
    assert error.message == (
        f"Every attempt on tier 'fast' failed (3 endpoints tried); last error: {last.message}"
    )


def test_one_endpoint_tried_is_singular() -> None:
    last = UpstreamConnectError(f"{LABEL}: closed the connection", endpoint=LABEL)
    message = exhausted(Scope(Tier.FAST, "model 'same'", 1), 1, last, ALL_DOWN).message
    assert "model 'same'" in message
    assert "(1 endpoint tried)" in message


@pytest.mark.parametrize("last", [None, UpstreamTimeout("t"), UpstreamConnectError("c")])
def test_exhausted_renders_as_the_openai_error_envelope(last: UpstreamError | None) -> None:
    body = orjson.loads(exhausted(FAST, 0 if last is None else 1, last, ALL_DOWN).to_body())
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["param"] is None
    assert "Traceback" not in body["error"]["message"]


# --- busy and ejected endpoints ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [(None, DEFAULT_BUSY_SECONDS), (0.0, 0.0), (-5.0, 0.0), (7.5, 7.5), (3600.0, MAX_BUSY_SECONDS)],
)
def test_busy_time_follows_retry_after_capped_at_a_minute(
    retry_after: float | None, seconds: float
) -> None:
    assert busy_seconds(retry_after) == seconds
    assert MAX_BUSY_SECONDS == 60.0


def busy(status: int, seconds: float) -> Unavailability:
    return Unavailability(
        unhealthy=0, ejected=0, busy=2, busy_for=seconds, busy_status=status, ejected_for=None
    )


@pytest.mark.parametrize("status", [429, 503])
def test_only_busy_endpoints_left_relays_their_status_with_retry_after(status: int) -> None:
    last = UpstreamThrottled(
        f"{LABEL}: busy", endpoint=LABEL, upstream_status=status, retry_after=4.0
    )

    error = exhausted(FAST, 2, last, busy(status, 3.2))

    assert isinstance(error, UpstreamThrottled)
    assert error.status == status
    assert error.code == "upstream_throttled"
    assert error.retry_after == pytest.approx(3.2)
    assert "tier 'fast'" in error.message
    assert "Retry in 3 s" in error.message


def test_nothing_tried_because_every_endpoint_is_busy_is_a_429() -> None:
    error = exhausted(FAST, 0, None, busy(429, 12.0))
    assert isinstance(error, UpstreamThrottled)
    assert (error.status, error.retry_after) == (429, 12.0)
    assert error.error_type == "rate_limit_error"


def test_a_real_failure_last_wins_over_busy_endpoints() -> None:
    last = UpstreamConnectError(f"{LABEL}: refused", endpoint=LABEL)
    error = exhausted(FAST, 2, last, busy(429, 5.0))
    assert type(error) is UpstreamError
    assert error.status == 502


def test_nothing_tried_with_ejected_endpoints_says_so_and_when() -> None:
    why = Unavailability(
        unhealthy=1, ejected=1, busy=0, busy_for=None, busy_status=429, ejected_for=12.4
    )
    error = exhausted(FAST, 0, None, why)
    assert isinstance(error, NoHealthyEndpoint)
    assert error.status == 503
    assert "1 unhealthy and 1 ejected after failing real requests" in error.message
    assert "tried again in 12 s" in error.message


def test_saturated_last_is_a_503_with_retry_after_not_an_upstream_failure() -> None:
    last = EndpointSaturated(f"{LABEL}: all 2 connections stayed busy", endpoint=LABEL)
    error = exhausted(FAST, 2, last, ALL_DOWN)
    assert isinstance(error, EndpointSaturated)
    assert (error.status, error.code, error.retry_after) == (503, "endpoint_saturated", 1.0)
    assert "max_connections" in error.message


@pytest.mark.parametrize(
    ("last", "code"),
    [
        (ResponseTooLarge(f"{LABEL}: too large", endpoint=LABEL), "upstream_response_too_large"),
        (BadUpstreamResponse(f"{LABEL}: html", endpoint=LABEL), "bad_upstream_response"),
        (UpstreamAuthFailed(f"{LABEL}: 401", endpoint=LABEL), "upstream_auth_failed"),
        (EventTooLarge(f"{LABEL}: endless", endpoint=LABEL), "upstream_event_too_large"),
    ],
)
def test_named_faults_keep_their_code_when_they_were_last(last: UpstreamError, code: str) -> None:
    error = exhausted(FAST, 2, last, ALL_DOWN)
    assert (error.status, error.code) == (502, code)
    assert error.message.endswith(f"last error: {last.message}")


@pytest.mark.parametrize("status", [429, 503])
def test_a_busy_answer_with_retry_after_zero_is_still_relayed_as_busy(status: int) -> None:
    last = UpstreamThrottled(
        f"{LABEL}: busy", endpoint=LABEL, upstream_status=status, retry_after=0
    )

    error = exhausted(FAST, 1, last, ALL_DOWN)  # its busy spell is already over

    assert isinstance(error, UpstreamThrottled)
    assert (error.status, error.retry_after) == (status, 1.0)
