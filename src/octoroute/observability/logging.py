"""Structured logging: one configuration for the whole process, text or JSON lines on stderr.

Every line of a request carries its ``request_id`` through structlog's contextvars, which aiohttp
keeps per request because each request runs in its own task. Third-party libraries (aiohttp) log
through the standard library; they are routed into the same stream and format.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import orjson
import structlog

from octoroute.enums import LogFormat

LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}


def parse_level(name: str) -> int:
    """The numeric level for ``name`` (case-insensitive); ValueError names the accepted ones."""
    try:
        return LEVELS[name.strip().lower()]
    except KeyError:
        accepted = ", ".join(sorted({"debug", "info", "warning", "error", "critical"}))
        raise ValueError(f"unknown log level {name!r}; use one of {accepted}") from None


def _orjson_dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


def configure_logging(
    level: str, log_format: LogFormat, *, stream: TextIO | None = None, cache: bool = True
) -> None:
    """Configure structlog and the stdlib root logger once, at start-up.

    ``cache`` lets long-lived processes bind loggers once (faster); tests pass ``False`` so they
    can reconfigure the output stream between cases.
    """
    numeric = parse_level(level)
    out = stream if stream is not None else sys.stderr
    renderer: structlog.typing.Processor
    if log_format is LogFormat.JSON:
        renderer = structlog.processors.JSONRenderer(serializer=_orjson_dumps)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0)
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # One write per line (print() writes the line and its newline apart): the workers of
        # ``serve --workers`` share stderr, and two lines must not interleave.
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=cache,
    )
    _route_stdlib(max(numeric, logging.WARNING))


class _StdlibBridge(logging.Handler):
    """Sends records of third-party libraries through structlog so every line has one format."""

    def emit(self, record: logging.LogRecord) -> None:
        log = structlog.get_logger(record.name)
        message = record.getMessage()
        if record.exc_info:
            log.log(record.levelno, message, exc_info=record.exc_info)
        else:
            log.log(record.levelno, message)


def _route_stdlib(level: int) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StdlibBridge):
            root.removeHandler(handler)
    root.addHandler(_StdlibBridge())
    root.setLevel(level)
    # Our own per-request line replaces aiohttp's access log.
    logging.getLogger("aiohttp.access").setLevel(logging.CRITICAL + 1)


def get_logger(name: str = "octoroute") -> Any:
    """A structlog logger; bound lazily so importing a module configures nothing."""
    return structlog.get_logger(name)


class RateLimitedWarning:
    """One kind of warning that a misbehaving client could otherwise repeat thousands of times a
    second: at most one line per ``interval`` seconds, each saying how many were suppressed.

    The first occurrence is logged at once; later ones within the interval are only counted, and
    the next line logged after it carries ``suppressed`` (how many were not logged since the last
    line). Owned by whoever owns the events (one per server), never module state.
    """

    __slots__ = ("_clock", "_event", "_interval", "_logger", "_next_at", "_suppressed")

    def __init__(
        self,
        logger: Any,
        event: str,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._event = event
        self._interval = interval
        self._clock = clock
        self._next_at = float("-inf")
        self._suppressed = 0

    def warn(self, **fields: object) -> bool:
        """Log the warning with ``fields`` unless one was logged within the interval; True if
        logged."""
        now = self._clock()
        if now < self._next_at:
            self._suppressed += 1
            return False
        self._next_at = now + self._interval
        suppressed, self._suppressed = self._suppressed, 0
        self._logger.warning(self._event, suppressed=suppressed, **fields)
        return True
