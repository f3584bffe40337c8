"""An open-loop load generator: requests leave on a fixed schedule, whatever the answers do.

Why not wrk for latency: a closed-loop tool waits for each answer before sending the next
request on that connection, so a slow answer delays the requests queued behind it and their wait
is never measured (coordinated omission, Gil Tene; the reason wrk2 exists). Here:

- request *i* is due at ``t0 + i / rate`` (a uniform schedule, the same for every variant);
- the sender never waits for answers: each request is its own task, on a pool with no connection
  cap, so a slow reply cannot delay the next send (in-flight requests are capped only as a
  safety bound, and any request over the cap counts as an error);
- latency runs from the *scheduled* time when the sender is late, so the wait of a request
  delayed by a busy process counts. uvloop's timers have millisecond resolution, so the sender
  asks to wake 1 ms early and then measures from its actual (earlier) send time: timer jitter of
  the generator itself does not enter the numbers, lateness of the sender does (and is reported
  as ``late_p99_us``, a validity check on the generator).

Percentiles come from plain sorted lists (a few thousand samples per run): exact, no dependency.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp

EARLY_WAKE_SECONDS: Final = 0.001
MAX_IN_FLIGHT: Final = 4000
REQUEST_TIMEOUT_SECONDS: Final = 15.0
_HEADERS: Final = {"Content-Type": "application/json"}


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0-100) of an already sorted list; NaN when empty."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Run:
    """The result of one open-loop run against one URL."""

    url: str
    rate: float
    seconds: float
    sent: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latency: list[float] = field(default_factory=list)
    """Seconds from due (or actual, if earlier) send time to the last byte, sorted after the run."""
    ttfb: list[float] = field(default_factory=list)
    """Streams only: seconds to the first body bytes, sorted."""
    chunks: int = 0
    """Streams only: body reads that returned data, summed over streams."""
    lateness: list[float] = field(default_factory=list)
    """Seconds the sender was behind schedule at each send (negative: early), sorted."""
    elapsed: float = 0.0
    """Seconds the send schedule took (``sent / elapsed`` is the achieved offered rate)."""

    def summary(self) -> dict[str, Any]:
        """Percentiles in microseconds, counts, and the error kinds."""
        out: dict[str, Any] = {
            "rate": self.rate,
            "seconds": self.seconds,
            "sent": self.sent,
            "ok": self.ok,
            "errors": dict(self.errors),
            "achieved_rate": round(self.sent / self.elapsed, 1) if self.elapsed else 0.0,
        }
        for name, values in (("latency", self.latency), ("ttfb", self.ttfb)):
            if values:
                for q in (50, 90, 99, 99.9):
                    out[f"{name}_p{q:g}_us"] = round(percentile(values, q) * 1e6, 1)
                out[f"{name}_max_us"] = round(values[-1] * 1e6, 1)
                out[f"{name}_mean_us"] = round(sum(values) / len(values) * 1e6, 1)
        if self.lateness:
            out["late_p99_us"] = round(percentile(self.lateness, 99) * 1e6, 1)
        if self.chunks:
            out["chunks"] = self.chunks
        return out


def new_session() -> aiohttp.ClientSession:
    """A client session with no connection cap, keep-alive, and nothing the benchmark doesn't need."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=120),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
    )


async def _one(
    session: aiohttp.ClientSession, run: Run, body: bytes, due: float, stream: bool
) -> None:
    actual = time.perf_counter()
    origin = min(actual, due)
    run.lateness.append(actual - due)
    try:
        async with session.post(run.url, data=body, headers=_HEADERS) as response:
            if stream:
                first = await response.content.readany()
                run.ttfb.append(time.perf_counter() - origin)
                chunks = 1 if first else 0
                async for _ in response.content.iter_any():
                    chunks += 1
                run.chunks += chunks
            else:
                await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as error:
        run.errors[type(error).__name__] += 1
        return
    if status != 200:
        run.errors[f"http {status}"] += 1
        return
    run.latency.append(time.perf_counter() - origin)
    run.ok += 1


async def open_loop(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    *,
    rate: float,
    seconds: float,
    stream: bool = False,
) -> Run:
    """Send ``rate * seconds`` requests on a uniform schedule; wait for all answers (bounded)."""
    run = Run(url, rate, seconds)
    total = max(1, round(rate * seconds))
    pending: set[asyncio.Task[None]] = set()
    start = time.perf_counter() + 0.01
    for index in range(total):
        due = start + index / rate
        delay = due - time.perf_counter() - EARLY_WAKE_SECONDS
        if delay > 0:
            await asyncio.sleep(delay)
        run.sent += 1
        if len(pending) >= MAX_IN_FLIGHT:
            run.errors["over in-flight cap"] += 1
            continue
        task = asyncio.create_task(_one(session, run, body, due, stream))
        pending.add(task)
        task.add_done_callback(pending.discard)
    run.elapsed = time.perf_counter() - start
    if pending:
        await asyncio.wait(pending, timeout=REQUEST_TIMEOUT_SECONDS + 1)
    for task in pending:  # only if something outlived its own timeout
        task.cancel()
        run.errors["unfinished"] += 1
    run.latency.sort()
    run.ttfb.sort()
    run.lateness.sort()
    return run
