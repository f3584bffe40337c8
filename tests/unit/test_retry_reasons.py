"""Every reason an attempt can fail for has its ``octoroute_upstream_retries_total`` series:
the series are bound at start-up, and a reason without one was a ``KeyError`` (a 500) on the
request path the first time it happened (``stream_total``)."""

from __future__ import annotations

from octoroute import errors
from octoroute.observability.metrics import RETRY_REASONS


def subclasses(cls: type[errors.UpstreamError]) -> set[type[errors.UpstreamError]]:
    found: set[type[errors.UpstreamError]] = set(cls.__subclasses__())
    for sub in list(found):
        found |= subclasses(sub)
    return found


def test_every_upstream_error_reason_has_a_retries_series() -> None:
    reasons = {cls.reason for cls in subclasses(errors.UpstreamError)}
    assert "stream_total" in reasons
    assert reasons <= set(RETRY_REASONS), reasons - set(RETRY_REASONS)
