"""The request line is written exactly when the configured level lets it through.

``log_request`` asks the bound logger whether ``info`` writes before it calls it (a call through
structlog's lazy proxy costs every request, docs/performance.md); these tests pin that the
answer follows ``configure_logging`` in both directions, and across a reconfiguration.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import structlog

from octoroute.api.common import log_request
from octoroute.enums import LogFormat, Tier
from octoroute.observability.logging import configure_logging
from octoroute.routing.strategy import direct
from octoroute.upstream.forward import Outcome


@contextmanager
def logs_at(level: str) -> Iterator[io.StringIO]:
    """JSON lines at ``level`` into the stream yielded; structlog's defaults come back after."""
    out = io.StringIO()
    configure_logging(level, LogFormat.JSON, stream=out, cache=False)
    try:
        yield out
    finally:
        structlog.reset_defaults()


def _log_one() -> None:
    outcome = Outcome()
    outcome.attempts, outcome.status, outcome.usage = 1, 200, (3, 4)
    log_request(
        route="chat_completions",
        model="fast",
        decision=direct(Tier.FAST),
        outcome=outcome,
        status=200,
        started=time.perf_counter(),
        stream=False,
    )


def test_the_request_line_is_written_at_info() -> None:
    with logs_at("info") as out:
        _log_one()
    (line,) = [orjson.loads(text) for text in out.getvalue().splitlines()]
    assert line["event"] == "request"
    assert line["level"] == "info"
    assert (line["route"], line["tier"], line["strategy"], line["status"]) == (
        "chat_completions",
        "fast",
        "direct",
        200,
    )
    assert (line["prompt_tokens"], line["completion_tokens"]) == (3, 4)


def test_the_request_line_is_not_written_at_warning() -> None:
    with logs_at("warning") as out:
        _log_one()
    assert out.getvalue() == ""


def test_the_level_follows_a_reconfiguration() -> None:
    with logs_at("warning") as quiet:
        _log_one()
    with logs_at("info") as loud:
        _log_one()
    assert quiet.getvalue() == ""
    assert len(loud.getvalue().splitlines()) == 1
