"""The dashboard's traffic windows: the last hour of requests in ten-second buckets, in memory.

``GET /admin/state`` shows the last 5 minutes or the last hour without Prometheus. Every request
that ends adds itself to the current bucket (:meth:`TrafficWindow.record`: one dictionary
increment and two appends in the common case); everything else, totals, rates, one-minute
buckets for the hour view and the percentiles, is worked out when someone reads
(:meth:`TrafficWindow.view`), so a router nobody watches pays only for the counting.

Bounded: :data:`HISTORY_SECONDS` / :data:`BUCKET_SECONDS` buckets, reused in a ring; each holds
counters keyed by values the configuration bounds (tiers, strategies, decision reasons,
instances) and at most :data:`SAMPLES` latencies per series (time to first token, and each
instance's durations). A bucket with more requests keeps its first :data:`SAMPLES` and counts
the rest, and its samples weigh as many requests as it had, so a busy bucket is not
under-represented in a window. Percentiles are read from log-scaled bins
(:data:`BINS_PER_OCTAVE` per doubling, so a value read back is within about 4.5 % of the true
one), worked out once per closed bucket and merged: a read of the last hour is a few hundred
small dictionaries, not every sample.

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
SAMPLES: Final = 256
"""Latencies kept per series per bucket; more requests are counted, not sampled."""
BINS_PER_OCTAVE: Final = 8.0
ZERO_BIN: Final = -1000.0
"""The bin of a latency of 0 ms (rounded away): below every other."""
_SLOTS: Final = HISTORY_SECONDS // BUCKET_SECONDS
_log2 = math.log2

Key = tuple[str, "str | None", "str | None"]
"""What a request is counted under: its pool (tier, ``embeddings``, or ``unrouted``), the
strategy that decided (``None`` when nothing did) and the decision's reason."""


def latency_bin(ms: float) -> float:
    """The histogram bin of a latency in milliseconds: ``floor(log2(ms) * BINS_PER_OCTAVE)``,
    :data:`ZERO_BIN` for 0."""
    try:
        return _log2(ms) * BINS_PER_OCTAVE // 1.0
    except ValueError:
        return ZERO_BIN


def bin_value(index: float) -> float:
    """The latency (ms) a bin stands for: its geometric middle (0 for :data:`ZERO_BIN`)."""
    if index <= ZERO_BIN:
        return 0.0
    return float(2.0 ** ((index + 0.5) / BINS_PER_OCTAVE))


def binned(samples: Iterable[float], weight: float = 1.0) -> dict[float, float]:
    """``samples`` (ms) as a bin histogram, each counting ``weight``."""
    bins: dict[float, float] = {}
    for ms in samples:
        index = latency_bin(ms)
        bins[index] = bins.get(index, 0.0) + weight
    return bins


def percentiles(
    histogram: Mapping[float, float], wanted: Iterable[float] = (0.5, 0.95)
) -> tuple[float, ...] | None:
    """The ``wanted`` quantiles (0..1) of a bin histogram, in ms rounded to 0.01; ``None`` when
    it is empty. The nearest-rank quantile: the bin holding the ``ceil(q * n)``-th sample
    (weights are counts of requests, so ``n`` is their sum)."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    ordered = sorted(histogram.items())
    found: list[float] = []
    for quantile in wanted:
        rank = max(1.0, math.ceil(quantile * total - 1e-9))
        seen = 0.0
        for index, count in ordered:
            seen += count
            if seen >= rank:
                found.append(round(bin_value(index), 2))
                break
    return tuple(found)


def merge_into(target: dict[float, float], source: Mapping[float, float]) -> None:
    """Add histogram ``source`` to ``target``."""
    for index, count in source.items():
        target[index] = target.get(index, 0.0) + count


class _Bucket:
    """The requests that ended within one :data:`BUCKET_SECONDS` span."""

    __slots__ = (
        "_bins",
        "decided",
        "end",
        "errors",
        "failed",
        "failovers",
        "fallbacks",
        "latency",
        "over",
        "retries",
        "start",
        "ttft",
        "ttft_over",
    )

    def __init__(self, start: int) -> None:
        self.start = start
        self.end = start + BUCKET_SECONDS
        self.decided: dict[Key, list[int]] = {}
        """Per key: ``[requests, prompt tokens, completion tokens]``."""
        self.errors = 0
        self.retries = 0
        self.failovers = 0
        self.fallbacks = 0
        self.ttft: list[float] = []
        """Time to first byte of the first :data:`SAMPLES` answers that had one, in ms."""
        self.ttft_over = 0
        """Answers with a first byte beyond those."""
        self.latency: dict[Hashable, list[float]] = {}
        """Per instance: the durations (ms) of the first :data:`SAMPLES` requests it answered
        last."""
        self.over: dict[Hashable, int] = {}
        """Per instance: its requests beyond those."""
        self.failed: dict[Hashable, int] = {}
        """Per instance: its requests answered 5xx."""
        self._bins: tuple[dict[float, float], dict[Hashable, dict[float, float]]] | None = None

    def count_rare(
        self, error: bool, attempts: int, fallback: bool, instance: Hashable | None
    ) -> None:
        """What few requests have: a 5xx, retries (and a failover when answered anyway), a
        routing fallback."""
        if error:
            self.errors += 1
            if instance is not None:
                self.failed[instance] = self.failed.get(instance, 0) + 1
        if attempts > 1:
            self.retries += attempts - 1
            if not error:
                self.failovers += 1
        if fallback:
            self.fallbacks += 1

    def requests_of(self, instance: Hashable) -> int:
        """The requests ``instance`` answered last in this bucket."""
        return len(self.latency.get(instance, ())) + self.over.get(instance, 0)

    def bins(self, now: float) -> tuple[dict[float, float], dict[Hashable, dict[float, float]]]:
        """The time-to-first-token histogram and each instance's, every sample weighing the
        requests it stands for; worked out once for a closed bucket (``now`` past its end)."""
        if self._bins is not None:
            return self._bins
        ttft = binned(self.ttft, _weight(len(self.ttft), self.ttft_over))
        instances = {
            key: binned(samples, _weight(len(samples), self.over.get(key, 0)))
            for key, samples in self.latency.items()
        }
        if now >= self.end:
            self._bins = (ttft, instances)
        return ttft, instances


def _weight(kept: int, over: int) -> float:
    return (kept + over) / kept if kept else 1.0


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
    """By pool."""
    strategies: dict[str, int]
    reasons: dict[str, int]
    errors: int
    retries: int
    failovers: int
    fallbacks: int
    ttft_ms: tuple[float, float] | None
    tokens: dict[str, tuple[int, int]]
    """By pool: prompt and completion tokens (only pools whose answers reported usage)."""
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
        key: Key,
        duration_ms: float,
        ttfb_ms: float | None,
        instance: Hashable | None,
        usage: tuple[int, int] | None,
        error: bool,
        attempts: int,
        fallback: bool,
    ) -> None:
        """Count one finished request at wall-clock time ``now``, under ``key``.

        ``instance`` is whatever identifies the instance of its last attempt (``None`` when
        none was tried); ``error``: the router answered it 5xx; ``attempts`` beyond the first
        are retries, and one that still got an answer was a failover; ``fallback``: the router
        model failed and something else decided. On every request's path: kept to a few
        dictionary operations, the rare cases in one call.
        """
        bucket = self._current
        if now >= bucket.end:
            bucket = self._current = self._bucket_at(now)
        counts = bucket.decided.get(key)
        if counts is None:
            counts = bucket.decided[key] = [0, 0, 0]
        counts[0] += 1
        if usage is not None:
            counts[1] += usage[0]
            counts[2] += usage[1]
        if error or fallback or attempts > 1:
            bucket.count_rare(error, attempts, fallback, instance)
        if ttfb_ms is not None:
            ttft = bucket.ttft
            if len(ttft) < SAMPLES:
                ttft.append(ttfb_ms)
            else:
                bucket.ttft_over += 1
        if instance is not None:
            samples = bucket.latency.get(instance)
            if samples is None:
                samples = bucket.latency[instance] = []
            if len(samples) < SAMPLES:
                samples.append(duration_ms)
            else:
                over = bucket.over
                over[instance] = over.get(instance, 0) + 1

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
        latency: dict[Hashable, dict[float, float]] = {}
        requests: dict[Hashable, int] = {}
        failed: dict[Hashable, int] = {}
        for bucket in self._buckets(seconds, now)[2]:
            _add_instances(latency, requests, failed, bucket, now)
        return _instance_stats(latency, requests, failed)

    def view(self, seconds: int, now: float) -> WindowView:
        """The last ``seconds`` (a key of :data:`WINDOWS`) up to ``now``, aggregated."""
        shown = WINDOWS[seconds]
        first, newest, buckets = self._buckets(seconds, now)
        requests: dict[str, int] = {}
        strategies: dict[str, int] = {}
        reasons: dict[str, int] = {}
        ttft: dict[float, float] = {}
        tokens: dict[str, list[int]] = {}
        latency: dict[Hashable, dict[float, float]] = {}
        instance_requests: dict[Hashable, int] = {}
        failed: dict[Hashable, int] = {}
        groups: dict[int, BucketView] = {}
        errors = retries = failovers = fallbacks = 0
        for bucket in buckets:
            for (pool, strategy, reason), (count, prompt, completion) in bucket.decided.items():
                requests[pool] = requests.get(pool, 0) + count
                if strategy is not None:
                    strategies[strategy] = strategies.get(strategy, 0) + count
                if reason is not None:
                    reasons[reason] = reasons.get(reason, 0) + count
                if prompt or completion:
                    total = tokens.setdefault(pool, [0, 0])
                    total[0] += prompt
                    total[1] += completion
            merge_into(ttft, bucket.bins(now)[0])
            errors += bucket.errors
            retries += bucket.retries
            failovers += bucket.failovers
            fallbacks += bucket.fallbacks
            _add_instances(latency, instance_requests, failed, bucket, now)
            group = bucket.start - (bucket.start - first) % shown
            groups[group] = _grouped(groups.get(group), group, bucket)
        return WindowView(
            seconds=seconds,
            bucket_seconds=shown,
            buckets=[
                groups.get(start) or BucketView(start, {}, {}, 0, 0, 0, 0)
                for start in range(first, newest + 1, shown)
            ],
            requests=requests,
            strategies=strategies,
            reasons=reasons,
            errors=errors,
            retries=retries,
            failovers=failovers,
            fallbacks=fallbacks,
            ttft_ms=_p50_p95(ttft),
            tokens={pool: (pair[0], pair[1]) for pool, pair in tokens.items()},
            instances=_instance_stats(latency, instance_requests, failed),
            covered_seconds=max(0.0, min(float(seconds), now - self.started)),
        )


def _add_instances(
    latency: dict[Hashable, dict[float, float]],
    requests: dict[Hashable, int],
    failed: dict[Hashable, int],
    bucket: _Bucket,
    now: float,
) -> None:
    for key, bins in bucket.bins(now)[1].items():
        merge_into(latency.setdefault(key, {}), bins)
        requests[key] = requests.get(key, 0) + bucket.requests_of(key)
    for key, count in bucket.failed.items():
        failed[key] = failed.get(key, 0) + count


def _instance_stats(
    latency: Mapping[Hashable, dict[float, float]],
    requests: Mapping[Hashable, int],
    failed: Mapping[Hashable, int],
) -> dict[Hashable, InstanceStats]:
    found: dict[Hashable, InstanceStats] = {}
    for key, bins in latency.items():
        count = requests.get(key, 0)
        errors = failed.get(key, 0)
        found[key] = InstanceStats(count, errors / count if count else 0.0, _p50_p95(bins))
    return found


def _p50_p95(histogram: Mapping[float, float]) -> tuple[float, float] | None:
    found = percentiles(histogram)
    return None if found is None else (found[0], found[1])


def _grouped(view: BucketView | None, start: int, bucket: _Bucket) -> BucketView:
    """``bucket`` added to the shown bucket ``view`` (a new one at ``start`` when ``None``)."""
    if view is None:
        view = BucketView(start, {}, {}, 0, 0, 0, 0)
    pools, strategies = view.requests, view.strategies
    for (pool, strategy, _reason), (count, _prompt, _completion) in bucket.decided.items():
        pools[pool] = pools.get(pool, 0) + count
        if strategy is not None:
            strategies[strategy] = strategies.get(strategy, 0) + count
    return view._replace(
        errors=view.errors + bucket.errors,
        retries=view.retries + bucket.retries,
        failovers=view.failovers + bucket.failovers,
        fallbacks=view.fallbacks + bucket.fallbacks,
    )
