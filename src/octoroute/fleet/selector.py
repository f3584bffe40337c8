"""The fleet: every configured endpoint instance, indexed by tier and by name, and selection.

Selection (v1's algorithm, §3.1 of the v1 spec, with per-instance health and exclusion):

1. drop unhealthy endpoints and the ones this request already tried (``exclude``);
2. keep the highest remaining ``priority`` (higher number = preferred), so lower priorities serve
   automatically once the higher ones are down or excluded;
3. weighted random among those, walking config order with cumulative weights.

It never falls back to an unhealthy endpoint: ``None`` means nothing is eligible and the caller
answers 503.

``select_tier`` is on every request's path, and health changes are rare, so the work is moved to
the transitions: whenever an endpoint of a tier goes down or comes back (the fleet hears it
through the endpoints' listener), the tier's healthy endpoints, their top-priority group and its
cumulative-weight table are rebuilt. A request with nothing excluded then costs one ``bisect``
(or nothing, with a single top endpoint) and allocates nothing; a retry with exclusions walks
only the healthy endpoints, twice, and allocates nothing either.
"""

from __future__ import annotations

import math
import random
import time
from bisect import bisect_right
from types import MappingProxyType
from typing import TYPE_CHECKING

from octoroute.enums import TIERS, Tier
from octoroute.fleet.endpoint import Endpoint, HealthListener, NullListener

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from octoroute.config.schema import Config
    from octoroute.fleet.endpoint import Clock


class _TierTable:
    """One tier's endpoints and the selection structures derived from their current health."""

    __slots__ = ("cumulative", "draw", "endpoints", "healthy", "only", "top", "total")

    def __init__(self, endpoints: tuple[Endpoint, ...]) -> None:
        self.endpoints = endpoints
        self.refresh()

    def refresh(self) -> None:
        """Rebuild from the endpoints' health; called at build time and on every transition."""
        healthy = tuple(ep for ep in self.endpoints if ep.healthy)
        best = max((ep.priority for ep in healthy), default=0)
        top = tuple(ep for ep in healthy if ep.priority == best)
        running = 0.0
        cumulative = []
        # Accumulated in config order exactly as Fleet.select does, so both paths pick the same
        # endpoint for the same random draw.
        for ep in top:
            running += ep.weight
            cumulative.append(running)
        if cumulative:
            # ``random() * total`` may round up to ``total``; an infinite last bound sends that
            # draw to the last endpoint (v1's rounding fallback) without a branch per request.
            cumulative[-1] = math.inf
        self.healthy = healthy
        """Healthy endpoints in file order: the only candidates worth a look."""
        self.top = top
        self.cumulative = tuple(cumulative)
        self.total = running
        self.draw = len(top) > 1
        """Whether a random draw is needed; without one the answer is ``only``."""
        self.only = top[0] if len(top) == 1 else None
        """The single top-priority healthy endpoint, or ``None`` when the tier is all down."""


class _Tracker:
    """The listener the fleet installs on its endpoints: it rebuilds the tier's table, then
    forwards the transition to the caller's listener (logging, gauges)."""

    __slots__ = ("_listener", "_tables")

    def __init__(self, tables: dict[Tier, _TierTable], listener: HealthListener) -> None:
        self._tables = tables
        self._listener = listener

    def on_unhealthy(self, endpoint: Endpoint, reason: str) -> None:
        self._tables[endpoint.tier].refresh()
        self._listener.on_unhealthy(endpoint, reason)

    def on_recovered(self, endpoint: Endpoint) -> None:
        self._tables[endpoint.tier].refresh()
        self._listener.on_recovered(endpoint)


class Fleet:
    """Every endpoint of a :class:`~octoroute.config.schema.Config`, one record per instance.

    Built once at start-up; the set of endpoints never changes afterwards, only their health.
    ``listener`` hears every health transition; ``clock`` stamps ``last_check``; ``rng`` makes
    weighted selection reproducible in tests (a fresh ``random.Random()`` by default).
    """

    __slots__ = ("_all", "_by_name", "_random", "_tables", "tiers")

    tiers: Mapping[Tier, tuple[Endpoint, ...]]
    """Each tier's endpoints in file order (read-only)."""

    def __init__(
        self,
        config: Config,
        *,
        listener: HealthListener | None = None,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        tables: dict[Tier, _TierTable] = {}
        tracker = _Tracker(tables, NullListener() if listener is None else listener)
        threshold = config.health.failure_threshold
        by_name: dict[str, list[Endpoint]] = {}
        for tier in TIERS:
            endpoints = tuple(
                Endpoint(cfg, failure_threshold=threshold, clock=clock, listener=tracker)
                for cfg in config.models.for_tier(tier)
            )
            tables[tier] = _TierTable(endpoints)
            for ep in endpoints:
                by_name.setdefault(ep.name, []).append(ep)
        self._tables = tables
        self.tiers = MappingProxyType({tier: tables[tier].endpoints for tier in TIERS})
        self._all = tuple(ep for tier in TIERS for ep in tables[tier].endpoints)
        self._by_name = {name: tuple(eps) for name, eps in by_name.items()}
        self._random = (random.Random() if rng is None else rng).random

    def all(self) -> tuple[Endpoint, ...]:
        """Every endpoint: fast, then balanced, then deep, each tier in file order."""
        return self._all

    def by_name(self, name: str) -> tuple[Endpoint, ...]:
        """Every instance serving model ``name``, in config order; empty if the name is unknown."""
        return self._by_name.get(name, ())

    def healthy_count(self, tier: Tier) -> int:
        """How many endpoints of ``tier`` are healthy right now."""
        return len(self._tables[tier].healthy)

    def mark_success(self, endpoint: Endpoint) -> None:
        """Record a passed request or probe on ``endpoint`` (see :meth:`Endpoint.mark_success`)."""
        endpoint.mark_success()

    def mark_failure(self, endpoint: Endpoint, reason: str) -> None:
        """Record a failed request or probe on ``endpoint`` (see :meth:`Endpoint.mark_failure`)."""
        endpoint.mark_failure(reason)

    def select_tier(self, tier: Tier, exclude: Collection[Endpoint] = ()) -> Endpoint | None:
        """An endpoint of ``tier`` for one attempt, or ``None`` if none is eligible.

        Same contract and same choices as :meth:`select` over the tier's endpoints, served from
        the tier's precomputed table when ``exclude`` is empty.
        """
        table = self._tables[tier]
        if exclude:
            return self.select(table.healthy, exclude)
        if table.draw:
            return table.top[bisect_right(table.cumulative, self._random() * table.total)]
        return table.only

    def select(
        self, candidates: Sequence[Endpoint], exclude: Collection[Endpoint] = ()
    ) -> Endpoint | None:
        """A healthy endpoint of ``candidates`` not in ``exclude``, or ``None`` if there is none.

        Among the eligible endpoints only the highest priority is considered; within it each is
        chosen with probability ``weight / sum(weights)``. ``exclude`` holds the endpoints this
        request already tried (by identity, so a replica with the same name stays eligible). With a
        single eligible top-priority endpoint no random number is drawn.
        """
        # Pass 1: the best eligible priority, its total weight and its last endpoint.
        best = 0
        total = 0.0
        count = 0
        last: Endpoint | None = None
        for ep in candidates:
            if not ep.healthy or ep in exclude:
                continue
            priority = ep.priority
            if last is None or priority > best:
                best = priority
                total = ep.weight
                count = 1
                last = ep
            elif priority == best:
                total += ep.weight
                count += 1
                last = ep
        if count <= 1:
            return last
        # Pass 2: walk the same group in config order until the cumulative weight passes the draw.
        draw = self._random() * total
        running = 0.0
        for ep in candidates:
            if ep.priority != best or not ep.healthy or ep in exclude:
                continue
            running += ep.weight
            if draw < running:
                return ep
        return last  # float rounding left the draw at or above the final sum
