"""``observability.metrics.adder`` and ``observer``: the request path's increments and
observations leave every series exactly as ``Counter.inc`` and ``Histogram.observe`` would."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from octoroute.observability.metrics import adder, observer

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
AMOUNTS = (
    0.0,
    0.005,  # exactly on a bound: counted in that bucket (le is inclusive)
    0.0050001,
    0.01,
    0.3,
    1.0,
    4.99,
    5.0,
    5.01,  # above every finite bound: only +Inf
    1e9,
    math.inf,
    -1.0,  # below every bound: the first bucket, as observe counts it
    math.nan,
)


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def _histograms() -> tuple[CollectorRegistry, Histogram, CollectorRegistry, Histogram]:
    expected_registry = CollectorRegistry()
    shortcut_registry = CollectorRegistry()
    expected = Histogram("h", "h", ["x"], buckets=BOUNDS, registry=expected_registry)
    shortcut = Histogram("h", "h", ["x"], buckets=BOUNDS, registry=shortcut_registry)
    return expected_registry, expected, shortcut_registry, shortcut


def test_an_observer_counts_every_amount_in_the_bucket_observe_does() -> None:
    expected_registry, expected, shortcut_registry, shortcut = _histograms()
    observe = observer(shortcut.labels("a"))
    assert observe != shortcut.labels("a").observe  # the shortcut, not the fallback
    for amount in AMOUNTS:
        expected.labels("a").observe(amount)
        observe(amount)
        assert _samples(shortcut_registry).keys() == _samples(expected_registry).keys()
        for key, value in _samples(expected_registry).items():
            found = _samples(shortcut_registry)[key]
            assert found == value or (math.isnan(found) and math.isnan(value)), (amount, key)


def test_an_adder_counts_as_inc_does() -> None:
    expected_registry = CollectorRegistry()
    shortcut_registry = CollectorRegistry()
    expected = Counter("c", "c", ["x"], registry=expected_registry)
    shortcut = Counter("c", "c", ["x"], registry=shortcut_registry)
    add = adder(shortcut.labels("a"))
    for amount in (1, 1, 250, 0, 3.5):
        expected.labels("a").inc(amount)
        add(amount)
    assert _samples(shortcut_registry) == _samples(expected_registry)


def test_an_adder_moves_a_gauge_as_inc_and_dec_do() -> None:
    expected_registry = CollectorRegistry()
    shortcut_registry = CollectorRegistry()
    expected = Gauge("g", "g", ["x"], registry=expected_registry)
    shortcut = Gauge("g", "g", ["x"], registry=shortcut_registry)
    move = adder(shortcut.labels("a"))
    for up in (True, True, False, True, False, False, False):
        if up:
            expected.labels("a").inc()
            move(1)
        else:
            expected.labels("a").dec()
            move(-1)
        assert _samples(shortcut_registry) == _samples(expected_registry)
