"""The fleet: every configured endpoint instance, indexed by tier and by name, and selection.

The embedding models' endpoints (``[[embeddings]]``) are instances like the tiers' and are
health-checked, selected and ejected the same way; they sit beside the tiers in ``embeddings``,
so code that walks ``tiers`` never meets one.

Selection is ``fleet.placement``'s, with this fleet's clock, random draw and ``[routing]``
policy: health, exclusion, outlier ejection, ``Retry-After``, priority, slot limits, context
windows, warm models first, conversation affinity, then the fewest attempts in flight per unit of
``weight``, ties drawn by weight. The least-loaded step is what keeps a hung replica from soaking
up traffic before its timeouts have been counted: requests pile up on it, so new ones go
elsewhere. With nothing in flight every endpoint ties and the draw is v1's weighted random.

It never falls back to an unhealthy or ejected endpoint: ``None`` means nothing is eligible and
the caller answers 503 (or 429 when the only ones left are busy).
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, NamedTuple

from octoroute.enums import TIER_POOLS, TIERS, Placement, Pool, Tier
from octoroute.fleet.endpoint import Endpoint, HealthListener, NullListener, OutlierSettings
from octoroute.fleet.placement import (
    NO_DEMAND,
    Affinity,
    Demand,
    Pick,
    Policy,
    Shortfall,
    choose,
    rank_table,
)

RANKS_KEPT: Final = 4096
"""Conversations per pool whose rendezvous ranks are kept (a list of floats each)."""

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from octoroute.config.schema import Config, EndpointConfig
    from octoroute.fleet.endpoint import Clock


class Unavailability(NamedTuple):
    """Why no endpoint of a scope could be chosen: the counts a message and a status need."""

    unhealthy: int
    ejected: int
    """Healthy, but ejected or on a half-open trial."""
    busy: int
    """Healthy and admitted, but told busy by ``Retry-After``."""
    busy_for: float | None
    """Seconds until the first busy endpoint may be tried again; ``None`` when none is busy."""
    busy_status: int
    """The status the soonest-free busy endpoint answered (429 or 503)."""
    ejected_for: float | None
    """Seconds until the first ejected endpoint goes half-open; ``None`` when none is ejected."""


class Fleet:
    """Every endpoint of a :class:`~octoroute.config.schema.Config`, one record per instance.

    Built at start-up and again by each reload; a fleet's set of endpoints never changes, only
    their state. ``listener`` hears every health and admission transition; ``clock`` stamps
    ``last_check`` and times ejections; ``rng`` makes weighted selection reproducible in tests (a
    fresh ``random.Random()`` by default). ``carried`` holds the instances a reload keeps, by
    ``(pool, index)`` of their new configuration (already reconfigured with it): they are used
    as they are, with their state; every other instance is new.
    """

    __slots__ = (
        "_all",
        "_by_name",
        "_clock",
        "_own",
        "_phases",
        "_pools",
        "_random",
        "_ranks",
        "embeddings",
        "policy",
        "tiers",
    )

    tiers: Mapping[Tier, tuple[Endpoint, ...]]
    """Each tier's endpoints in file order (read-only)."""
    embeddings: tuple[Endpoint, ...]
    """The embedding models' endpoints in file order; empty when none are configured."""
    policy: Policy

    def __init__(
        self,
        config: Config,
        *,
        listener: HealthListener | None = None,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        carried: Mapping[tuple[Pool, int], Endpoint] | None = None,
    ) -> None:
        tracker = NullListener() if listener is None else listener
        kept = {} if carried is None else carried
        threshold = config.health.failure_threshold
        health = config.health
        outlier = OutlierSettings(
            health.eject_after_failures, health.eject_base_seconds, health.eject_max_seconds
        )

        def build(configs: tuple[EndpointConfig, ...]) -> tuple[Endpoint, ...]:
            return tuple(
                kept.get((cfg.pool, cfg.index))
                or Endpoint(
                    cfg, failure_threshold=threshold, clock=clock, listener=tracker, outlier=outlier
                )
                for cfg in configs
            )

        tiers = {tier: build(config.models.for_tier(tier)) for tier in TIERS}
        self.tiers = MappingProxyType(tiers)
        self.embeddings = build(config.embeddings)
        self._all = (*(ep for tier in TIERS for ep in tiers[tier]), *self.embeddings)
        # Chat and embedding names are disjoint (the loader refuses a shared one).
        by_name: dict[str, list[Endpoint]] = {}
        for ep in self._all:
            by_name.setdefault(ep.name, []).append(ep)
        self._by_name = {name: tuple(eps) for name, eps in by_name.items()}
        self._clock = clock
        self._random = (random.Random() if rng is None else rng).random
        self._pools: dict[Pool, tuple[Endpoint, ...]] = {
            TIER_POOLS[tier]: endpoints for tier, endpoints in tiers.items()
        }
        self._pools[Pool.EMBEDDINGS] = self.embeddings
        self._phases = {
            pool: [(ep.phase, -ep.inverse_weight) for ep in endpoints]
            for pool, endpoints in self._pools.items()
        }
        self._ranks: dict[Pool, OrderedDict[int, list[float]]] = {
            pool: OrderedDict() for pool in self._pools
        }
        self._own = frozenset(
            id(scope) for scope in (*self._pools.values(), *self._by_name.values())
        )
        """This fleet's own scopes (a pool, one name's replicas): their instances' positions are
        the ones its rank tables are indexed by. A scope an older fleet made (a request that
        began before a reload) gets its ranks computed afresh."""
        routing = config.routing
        self.policy = Policy(
            static=routing.placement is Placement.STATIC,
            affinity=routing.affinity,
            imbalance=routing.affinity_imbalance,
            cold_after=routing.cold_after_ms / 1000,
        )
        """The placement settings every selection uses."""

    def all(self) -> tuple[Endpoint, ...]:
        """Every endpoint: fast, then balanced, then deep, then the embedding models, each in
        file order."""
        return self._all

    def by_name(self, name: str) -> tuple[Endpoint, ...]:
        """Every instance serving model ``name``, in config order; empty if the name is unknown."""
        return self._by_name.get(name, ())

    def now(self) -> float:
        """This fleet's clock reading, the one ``Endpoint.ready_at`` is compared with."""
        return self._clock()

    def healthy_count(self, tier: Tier) -> int:
        """How many endpoints of ``tier`` are healthy right now."""
        return sum(ep.healthy for ep in self.tiers[tier])

    def mark_success(self, endpoint: Endpoint) -> None:
        """Record a passed probe on ``endpoint`` (see :meth:`Endpoint.probe_succeeded`)."""
        endpoint.probe_succeeded()

    def mark_failure(self, endpoint: Endpoint, reason: str) -> None:
        """Record a failed probe on ``endpoint`` (see :meth:`Endpoint.mark_failure`)."""
        endpoint.mark_failure(reason)

    def place(
        self,
        candidates: Sequence[Endpoint],
        exclude: Collection[Endpoint] = (),
        demand: Demand = NO_DEMAND,
    ) -> Pick | Shortfall:
        """:func:`~octoroute.fleet.placement.choose` with this fleet's clock, random draw and
        policy: the instance for an attempt of ``demand``, or why there is none.

        A conversation's rendezvous ranks depend only on its key and the configured instances,
        so they are computed on its first turn and reused (at most :data:`RANKS_KEPT`
        conversations per pool, the oldest forgotten first)."""
        key = demand.key
        ranks = None
        if key is not None and candidates and self.policy.affinity and id(candidates) in self._own:
            pool = candidates[0].pool
            cache = self._ranks[pool]
            ranks = cache.get(key)
            if ranks is None:
                if len(cache) >= RANKS_KEPT:
                    cache.popitem(last=False)  # O(1); a dict's next(iter()) is not after deletes
                ranks = cache[key] = rank_table(self._phases[pool], key)
        return choose(
            candidates, exclude, demand, self._clock(), self._random, self.policy, ranks=ranks
        )

    def take(
        self,
        candidates: Sequence[Endpoint],
        exclude: Collection[Endpoint] = (),
        demand: Demand = NO_DEMAND,
    ) -> tuple[Endpoint, bool] | None:
        """Select an endpoint and start an attempt on it (:meth:`Endpoint.begin`) in one step.

        Returns the endpoint and whether the attempt is its half-open trial, or ``None`` when
        nothing can be chosen now (full instances included: this never waits). One synchronous
        step, so no other request can take the same half-open trial or slot in between.
        """
        picked = self.place(candidates, exclude, demand)
        if isinstance(picked, Shortfall):
            return None
        return self.start(picked)

    @staticmethod
    def start(picked: Pick) -> tuple[Endpoint, bool]:
        """Start the attempt ``picked`` chose: :meth:`Endpoint.begin`, counted for ``/models``."""
        endpoint, affinity = picked
        endpoint.placed += 1
        if affinity is not Affinity.NONE:
            endpoint.affinity_placed += 1
        return endpoint, endpoint.begin()

    def select_tier(self, tier: Tier, exclude: Collection[Endpoint] = ()) -> Endpoint | None:
        """:meth:`select` over the endpoints of ``tier``."""
        return self.select(self.tiers[tier], exclude)

    def select(
        self, candidates: Sequence[Endpoint], exclude: Collection[Endpoint] = ()
    ) -> Endpoint | None:
        """An eligible endpoint of ``candidates`` not in ``exclude``, or ``None`` if there is none.

        Eligible: healthy, ready (not ejected, on trial or busy) and with a free slot. Among the
        eligible, the highest priority, warm before cold, then the least loaded (in-flight
        attempts per unit of weight), ties drawn by weight (see ``fleet.placement``).
        """
        picked = self.place(candidates, exclude)
        return None if isinstance(picked, Shortfall) else picked[0]

    def tier_above(self, tier: Tier) -> Tier | None:
        """The next tier up in cost (``fast`` -> ``balanced`` -> ``deep``), or ``None``."""
        index = TIERS.index(tier)
        return TIERS[index + 1] if index + 1 < len(TIERS) else None

    def unavailability(self, candidates: Sequence[Endpoint]) -> Unavailability:
        """Why ``candidates`` have nobody to offer right now, for the client's error."""
        now = self._clock()
        unhealthy = ejected = busy = 0
        busy_for: float | None = None
        busy_status = 429
        ejected_for: float | None = None
        for ep in candidates:
            if not ep.healthy:
                unhealthy += 1
            elif ep.ejected and ep.ejected_until > now:
                ejected += 1
                wait = ep.ejected_until - now
                ejected_for = wait if ejected_for is None else min(ejected_for, wait)
            elif ep.busy_until > now:
                busy += 1
                wait = ep.busy_until - now
                if busy_for is None or wait < busy_for:
                    busy_for, busy_status = wait, ep.busy_status
            elif ep.ejected:
                ejected += 1  # on its half-open trial right now
        return Unavailability(unhealthy, ejected, busy, busy_for, busy_status, ejected_for)
