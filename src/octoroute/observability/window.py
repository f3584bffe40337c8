"""The dashboard's traffic windows: the last hour of requests in ten-second buckets, in memory.

``GET /admin/state`` shows the last 5 minutes or the last hour without Prometheus. Every request
that ends adds itself to the current bucket (:meth:`TrafficWindow.record`: a handful of
dictionary increments, no allocation but on a bucket's first request); everything else, totals,
rates, one-minute buckets for the hour view and the percentiles, is worked out when someone
reads (:meth:`TrafficWindow.view`), so a router nobody watches pays only for the counting.

Bounded: :data:`HISTORY_SECONDS` / :data:`BUCKET_SECONDS` buckets, reused in a ring; each holds
counters keyed by values the configuration bounds (tiers, strategies, decision reasons,
instances) and two latency histograms. Latencies go into log-scaled bins
(:data:`BINS_PER_OCTAVE` per doubling, so a percentile read back is within about 4.5 % of the
true one) rather than a list of samples, so memory does not grow with the request rate.

Pure: the caller passes the wall-clock time of each request and of each read.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from typing import Final, NamedTuple

BUCKET_SECONDS: Final = 10
"""The granularity everything is counted at."""
HISTORY_SECONDS: Final = 3600
"""How far back the windows reach: the longest window a reader may ask for."""
WINDOWS: Final = {300: 10, 3600: 60}
"""The windows a reader may ask for (seconds) and the bucket size each is shown with."""
BINS_PER_OCTAVE: Final = 8
_SLOTS: Final = HISTORY_SECONDS // BUCKET_SECONDS
_MICROS_PER_MS: Final = 1000.0
_log2 = math.log2


def latency_bin(ms: float) -> int:
    """The histogram bin of a latency in milliseconds (bin 0 holds everything up to 1 µs)."""
    micros = ms * _MICROS_PER_MS
    return int(_log2(micros) * BINS_PER_OCTAVE) if micros > 1.0 else 0


def bin_value(index: int) -> float:
    """The latency (ms) a bin stands for: its geometric middle."""
    return float(2.0 ** ((index + 0.5) / BINS_PER_OCTAVE) / _MICROS_PER_MS)


def percentiles(
    histogram: Mapping[int, int], wanted: Iterable[float] = (0.5, 0.95)
) -> tuple[float, ...] | None:
    """The ``wanted`` quantiles (0..1) of a bin histogram, in ms rounded to 0.01; ``None`` when
    it is empty. The nearest-rank quantile: the bin holding the ``ceil(q * n)``-th sample."""
    total = sum(histogram.values())
    if total == 0:
        return None
    ordered = sorted(histogram.items())
    found: list[float] = []
    for quantile in wanted:
        rank = max(1, math.ceil(quantile * total))
        seen = 0
        for index, count in ordered:
            seen += count
            if seen >= rank:
                found.append(round(bin_value(index), 2))
                break
    return tuple(found)


def merge_into(target: dict[int, int], source: Mapping[int, int]) -> None:
    """Add histogram ``source`` to ``target``."""
    for index, count in source.items():
        target[index] = target.get(index, 0) + count


class _Instance:
    """One instance's requests in one bucket: how many, how many failed, their latencies."""

    __slots__ = ("errors", "latency", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.latency: dict[int, int] = {}


class _Bucket:
    """The requests that ended within one :data:`BUCKET_SECONDS` span."""

    __slots__ = (
        "end",
        "errors",
        "failovers",
        "fallbacks",
        "instances",
        "reasons",
        "requests",
        "retries",
        "start",
        "strategies",
        "tokens",
        "ttft",
    )

    def __init__(self, start: int) -> None:
        self.start = start
        self.end = start + BUCKET_SECONDS
        self.requests: dict[str, int] = {}
        """By pool (tier, or ``embeddings``)."""
        self.strategies: dict[str, int] = {}
        self.reasons: dict[str, int] = {}
        self.errors = 0
        self.retries = 0
        self.failovers = 0
        self.fallbacks = 0
        self.ttft: dict[int, int] = {}
        self.tokens: dict[str, list[int]] = {}
        """By pool: ``[prompt, completion]``."""
        self.instances: dict[Hashable, _Instance] = {}


class InstanceStats(NamedTuple):
    """One instance over a window: requests it answered last, the share that failed, and the
    p50 and p95 of their durations (``None`` without requests)."""

    requests: int
    error_rate: float
    latency_ms: tuple[float, float] | None


class BucketView(NamedTuple):
    """One shown bucket of a window."""

    start: int
    """Epoch seconds of its beginning."""
    requests: dict[str, int]
    strategies: dict[str, int]
    errors: int
    retries: int
    failovers: int
    fallbacks: int


class WindowView(NamedTuple):
    """Everything a reader sees of one window, aggregated at read time."""

    seconds: int
    bucket_seconds: int
    buckets: list[BucketView]
    """Oldest first, one per ``bucket_seconds``, empty ones included."""
    requests: dict[str, int]
    strategies: dict[str, int]
    reasons: dict[str, int]
    errors: int
    retries: int
    failovers: int
    fallbacks: int
    ttft_ms: tuple[float, float] | None
    tokens: dict[str, tuple[int, int]]
    instances: dict[Hashable, InstanceStats]
    covered_seconds: float
    """How much of the window the router has been recording (the rate's denominator)."""

    @property
    def total(self) -> int:
        """Requests in the window."""
        return sum(self.requests.values())


class TrafficWindow:
    """The last :data:`HISTORY_SECONDS` of requests, per process (each worker has its own)."""

    __slots__ = ("_current", "_ring", "started")

    def __init__(self, now: float) -> None:
        self.started = now
        """When recording began (a reload keeps it: the windows survive reloads)."""
        self._ring: list[_Bucket | None] = [None] * _SLOTS
        self._current = self._bucket_at(now)

    def _bucket_at(self, now: float) -> _Bucket:
        start = int(now) - int(now) % BUCKET_SECONDS
        slot = (start // BUCKET_SECONDS) % _SLOTS
        bucket = self._ring[slot]
        if bucket is None or bucket.start != start:
            bucket = self._ring[slot] = _Bucket(start)
        return bucket

    def record(
        self,
        now: float,
        pool: str,
        strategy: str | None,
        reason: str | None,
        error: bool,
        duration_ms: float,
        ttfb_ms: float | None,
        attempts: int,
        fallback: bool,
        instance: Hashable | None,
        usage: tuple[int, int] | None,
    ) -> None:
        """Count one finished request at wall-clock time ``now``.

        ``error``: the router answered it 5xx; ``attempts`` beyond the first are retries, and
        one that still got an answer was a failover; ``fallback``: the router model failed and
        something else decided; ``instance`` is whatever identifies the instance of its last
        attempt (``None`` when none was tried).
        """
        bucket = self._current
        if now >= bucket.end:
            bucket = self._current = self._bucket_at(now)
        counts = bucket.requests
        counts[pool] = counts.get(pool, 0) + 1
        if strategy is not None:
            counts = bucket.strategies
            counts[strategy] = counts.get(strategy, 0) + 1
        if reason is not None:
            counts = bucket.reasons
            counts[reason] = counts.get(reason, 0) + 1
        if error:
            bucket.errors += 1
        if attempts > 1:
            bucket.retries += attempts - 1
            if not error:
                bucket.failovers += 1
        if fallback:
            bucket.fallbacks += 1
        if ttfb_ms is not None:
            micros = ttfb_ms * _MICROS_PER_MS
            index = int(_log2(micros) * BINS_PER_OCTAVE) if micros > 1.0 else 0
            bins = bucket.ttft
            bins[index] = bins.get(index, 0) + 1
        if usage is not None:
            tokens = bucket.tokens.get(pool)
            if tokens is None:
                tokens = bucket.tokens[pool] = [0, 0]
            tokens[0] += usage[0]
            tokens[1] += usage[1]
        if instance is not None:
            stats = bucket.instances.get(instance)
            if stats is None:
                stats = bucket.instances[instance] = _Instance()
            stats.requests += 1
            if error:
                stats.errors += 1
            micros = duration_ms * _MICROS_PER_MS
            index = int(_log2(micros) * BINS_PER_OCTAVE) if micros > 1.0 else 0
            bins = stats.latency
            bins[index] = bins.get(index, 0) + 1

    def _buckets(self, seconds: int, now: float) -> tuple[int, int, list[_Bucket]]:
        """The first and newest bucket starts of the last ``seconds`` up to ``now``, and the
        buckets of that span that hold anything."""
        newest = int(now) - int(now) % BUCKET_SECONDS
        first = newest - seconds + BUCKET_SECONDS
        buckets: list[_Bucket] = []
        for start in range(first, newest + 1, BUCKET_SECONDS):
            bucket = self._ring[(start // BUCKET_SECONDS) % _SLOTS]
            if bucket is not None and bucket.start == start:
                buckets.append(bucket)
        return first, newest, buckets

    def instance_stats(self, seconds: int, now: float) -> dict[Hashable, InstanceStats]:
        """Only the per-instance numbers of the last ``seconds`` (what a ``fleet`` event shows),
        without the rest of :meth:`view`."""
        instances: dict[Hashable, _Instance] = {}
        for bucket in self._buckets(seconds, now)[2]:
            _add_instances(instances, bucket)
        return _instance_stats(instances)

    def view(self, seconds: int, now: float) -> WindowView:
        """The last ``seconds`` (a key of :data:`WINDOWS`) up to ``now``, aggregated."""
        shown = WINDOWS[seconds]
        first, newest, buckets = self._buckets(seconds, now)
        requests: dict[str, int] = {}
        strategies: dict[str, int] = {}
        reasons: dict[str, int] = {}
        ttft: dict[int, int] = {}
        tokens: dict[str, list[int]] = {}
        instances: dict[Hashable, _Instance] = {}
        groups: dict[int, BucketView] = {}
        errors = retries = failovers = fallbacks = 0
        for bucket in buckets:
            _add(requests, bucket.requests)
            _add(strategies, bucket.strategies)
            _add(reasons, bucket.reasons)
            merge_into(ttft, bucket.ttft)
            errors += bucket.errors
            retries += bucket.retries
            failovers += bucket.failovers
            fallbacks += bucket.fallbacks
            for pool, (prompt, completion) in bucket.tokens.items():
                total = tokens.setdefault(pool, [0, 0])
                total[0] += prompt
                total[1] += completion
            _add_instances(instances, bucket)
            group = bucket.start - (bucket.start - first) % shown
            groups[group] = _grouped(groups.get(group), group, bucket)
        shown_buckets = [
            groups.get(start) or BucketView(start, {}, {}, 0, 0, 0, 0)
            for start in range(first, newest + 1, shown)
        ]
        return WindowView(
            seconds=seconds,
            bucket_seconds=shown,
            buckets=shown_buckets,
            requests=requests,
            strategies=strategies,
            reasons=reasons,
            errors=errors,
            retries=retries,
            failovers=failovers,
            fallbacks=fallbacks,
            ttft_ms=_p50_p95(ttft),
            tokens={pool: (pair[0], pair[1]) for pool, pair in tokens.items()},
            instances=_instance_stats(instances),
            covered_seconds=max(0.0, min(float(seconds), now - self.started)),
        )


def _add_instances(instances: dict[Hashable, _Instance], bucket: _Bucket) -> None:
    for key, stats in bucket.instances.items():
        summed = instances.get(key)
        if summed is None:
            summed = instances[key] = _Instance()
        summed.requests += stats.requests
        summed.errors += stats.errors
        merge_into(summed.latency, stats.latency)


def _instance_stats(instances: Mapping[Hashable, _Instance]) -> dict[Hashable, InstanceStats]:
    return {
        key: InstanceStats(
            stats.requests,
            stats.errors / stats.requests if stats.requests else 0.0,
            _p50_p95(stats.latency),
        )
        for key, stats in instances.items()
    }


def _p50_p95(histogram: Mapping[int, int]) -> tuple[float, float] | None:
    found = percentiles(histogram)
    return None if found is None else (found[0], found[1])


def _add(target: dict[str, int], source: Mapping[str, int]) -> None:
    for key, count in source.items():
        target[key] = target.get(key, 0) + count


def _grouped(view: BucketView | None, start: int, bucket: _Bucket) -> BucketView:
    """``bucket`` added to the shown bucket ``view`` (a new one at ``start`` when ``None``)."""
    if view is None:
        view = BucketView(start, {}, {}, 0, 0, 0, 0)
    _add(view.requests, bucket.requests)
    _add(view.strategies, bucket.strategies)
    return view._replace(
        errors=view.errors + bucket.errors,
        retries=view.retries + bucket.retries,
        failovers=view.failovers + bucket.failovers,
        fallbacks=view.fallbacks + bucket.fallbacks,
    )
