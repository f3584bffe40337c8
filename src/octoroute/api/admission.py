"""Between the routing decision and the first attempt: placement's part of the pipeline.

1. **Demand**: what the request asks of an instance (estimated prompt tokens, the output it asks
   for, its conversation's affinity key), read through the dialect's ``hints``.
2. **Context fit**: a routed request whose tier has no instance with a large enough window goes
   to the nearest tier up that has one (reason ``context_overflow``); when none has, and for a
   request that named its tier or model, it is refused with 400 ``context_length_exceeded``
   before anything is sent.
3. **Pre-warm** (``routing.prewarm``): a request for the deep tier whose preferred instance is
   known cold, and which goes elsewhere, loads the model there in the background.
4. **Admission**: the first attempt's slot, waiting in the tier's queue when the tier is full;
   with ``routing.overflow = "up"`` a routed request that waited ``overflow_after_ms`` may take a
   slot of the tier above (reason ``queue_overflow``). When the scope has a known cold instance,
   the demand is stamped with the time it began waiting, so placement keeps it waiting for a
   warm slot for up to ``cold_after_ms`` before it takes the cold one; a timer wakes its lines
   then (no slot freeing may come to do it).

Static placement (``routing.placement = "static"``) skips 2-4 apart from taking the slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Final, NamedTuple

import msgspec

from octoroute.api.common import record_decision
from octoroute.enums import TIERS, Importance, Overflow, Tier
from octoroute.errors import ContextLengthExceeded, FleetBusy, OctorouteError
from octoroute.fleet.placement import NO_DEMAND, Demand, Shortfall, any_fits, needed, prefer
from octoroute.routing.metadata import estimate_tokens
from octoroute.routing.strategy import CONTEXT_OVERFLOW, QUEUE_OVERFLOW, Decision
from octoroute.upstream.attempts import Scope
from octoroute.wire.hints import DEFAULT_HINTS, RequestHints, affinity_key

if TYPE_CHECKING:
    from octoroute.catalog import ModelChoice
    from octoroute.enums import Pool
    from octoroute.fleet.dispatch import Dispatcher, Ticket
    from octoroute.fleet.endpoint import Endpoint
    from octoroute.runtime import Runtime
    from octoroute.wire.messages import Message

ScopeCheck = Callable[[Sequence["Endpoint"]], None]
"""Raises the client's error when the request cannot go to some endpoint of a scope (a
translation's ``check_scope``)."""


class Placed(NamedTuple):
    """A request admitted to a scope: the final decision, the scope, and its ticket (whose
    reserved slot the forwarder's first attempt uses)."""

    decision: Decision
    scope: Scope
    endpoints: tuple[Endpoint, ...]
    ticket: Ticket


def hints_of(parsed: object) -> RequestHints:
    """The request's ``hints`` member, or :data:`~octoroute.wire.hints.DEFAULT_HINTS` for a
    dialect that supplies none (see ``api.generation.Routable``)."""
    hints = getattr(parsed, "hints", DEFAULT_HINTS)
    return hints if isinstance(hints, RequestHints) else DEFAULT_HINTS


def demand_of(
    runtime: Runtime,
    headers: Mapping[str, str],
    messages: Sequence[Message],
    hints: RequestHints,
    decision: Decision | None = None,
) -> Demand:
    """What the request asks of an instance; :data:`NO_DEMAND` under static placement.

    The token estimate is the one routing already made when ``decision`` carries it.
    """
    policy = runtime.fleet.policy
    if policy.static:
        return NO_DEMAND
    key = affinity_key(headers, hints, messages) if policy.affinity else None
    tokens = 0 if decision is None else decision.metadata.token_estimate
    if not tokens:
        tokens = estimate_tokens(messages)
    return Demand(tokens, hints.output_tokens, hints.fills_default, key)


_TIER_SCOPES: Final = {tier: f"tier '{tier.value}'" for tier in TIERS}
"""How messages name a tier's scope, written once."""


def endpoints_for(choice: ModelChoice, tier: Tier, runtime: Runtime) -> tuple[Endpoint, ...]:
    """The endpoints that may serve ``choice`` routed to ``tier``."""
    return choice.endpoints if choice.name is not None else runtime.fleet.tiers[tier]


def scope_for(
    choice: ModelChoice, tier: Tier, runtime: Runtime
) -> tuple[Scope, tuple[Endpoint, ...]]:
    """:func:`endpoints_for`, and how messages name them."""
    endpoints = endpoints_for(choice, tier, runtime)
    named = _TIER_SCOPES[tier] if choice.name is None else f"model '{choice.name}'"
    return Scope(tier, named, len(endpoints)), endpoints


def fit_context(
    runtime: Runtime,
    choice: ModelChoice,
    decision: Decision,
    demand: Demand,
    *,
    count: bool = True,
    tiers: Collection[Tier] = TIERS,
) -> Decision:
    """``decision``, or its escalation to the nearest tier up whose windows hold the request
    (routed requests only, among ``tiers``: the client key's); ``ContextLengthExceeded`` when
    nothing it may go to holds it. ``count=False`` (the ``/route`` dry run) leaves the
    escalation metric alone."""
    if not demand.sized:
        return decision
    fleet = runtime.fleet
    endpoints = endpoints_for(choice, decision.tier, runtime)
    if any_fits(endpoints, demand):
        return decision
    looked = list(endpoints)
    if choice.is_auto:
        tier: Tier | None = fleet.tier_above(decision.tier)
        while tier is not None:
            above = fleet.tiers[tier]
            if tier not in tiers:
                tier = fleet.tier_above(tier)
                continue
            if any_fits(above, demand):
                if count:
                    runtime.metrics.escalations[(decision.tier.value, tier.value)].inc()
                return msgspec.structs.replace(decision, tier=tier, reason=CONTEXT_OVERFLOW)
            looked += above
            tier = fleet.tier_above(tier)
    raise _too_long(choice, decision.tier, looked, demand, fleet.tier_above(decision.tier))


def _too_long(
    choice: ModelChoice,
    tier: Tier,
    looked: Sequence[Endpoint],
    demand: Demand,
    above: Tier | None,
) -> ContextLengthExceeded:
    """The 400, with the numbers of the largest window that was checked."""
    largest = max(looked, key=lambda ep: ep.context_window or 0)
    window = largest.context_window or 0
    total = needed(largest, demand)
    output = total - demand.prompt_tokens
    where = f"model '{choice.name}'" if choice.name is not None else f"tier '{tier.value}'"
    if choice.is_auto and above is not None:
        where += " or any tier above it"
    return ContextLengthExceeded(
        f"This request needs about {total} tokens of context ({demand.prompt_tokens} estimated "
        f"for the messages, {output} for the answer), more than any instance of {where} holds "
        f"(the largest context window is {window} tokens, on {largest.name}). Shorten the "
        "conversation or ask for fewer output tokens (max_tokens)."
    )


async def admit(
    runtime: Runtime,
    choice: ModelChoice,
    decision: Decision,
    demand: Demand,
    importance: Importance,
    check: ScopeCheck | None = None,
    tiers: Collection[Tier] = TIERS,
) -> Placed:
    """Place a request whose decision is made: context fit, pre-warm, the first slot.

    ``check`` refuses scopes the request cannot be sent to (run on the scope, and on the tier
    above before overflowing there); ``tiers`` are those a routed request may escalate or
    overflow to (the client key's). Raises ``ContextLengthExceeded``, ``FleetBusy`` or the
    check's error; a slot taken here is released again (``release``) if anything fails before
    forwarding. The request is counted (``octoroute_requests_total``) once its tier is final,
    or under the tier it waited for when it gets ``FleetBusy``.
    """
    decision = fit_context(runtime, choice, decision, demand, tiers=tiers)
    scope, endpoints = scope_for(choice, decision.tier, runtime)
    if check is not None:
        check(endpoints)
    try:
        placed = await _first_slot(
            runtime, choice, decision, scope, endpoints, demand, importance, check, tiers
        )
    except FleetBusy:
        record_decision(runtime, decision)
        raise
    record_decision(runtime, placed.decision)
    return placed


async def _first_slot(
    runtime: Runtime,
    choice: ModelChoice,
    decision: Decision,
    scope: Scope,
    endpoints: tuple[Endpoint, ...],
    demand: Demand,
    importance: Importance,
    check: ScopeCheck | None,
    tiers: Collection[Tier],
) -> Placed:
    fleet = runtime.fleet
    routing = runtime.config.routing
    static = fleet.policy.static
    if routing.prewarm and not static and decision.tier is Tier.DEEP:
        _prewarm(runtime, endpoints, demand)
    overflow = None
    if choice.is_auto and not static and routing.overflow is Overflow.UP:
        up = fleet.tier_above(decision.tier)
        if up is not None and up in tiers and _accepts(check, fleet.tiers[up]):
            overflow = (fleet.tiers[up], routing.overflow_after_ms / 1000)
    wake: _ColdWake | None = None
    policy = fleet.policy
    if policy.cold_after > 0 and not static and any(ep.cold for ep in endpoints):
        demand = demand._replace(since=fleet.now())
        pools = (scope.pool,) if overflow is None else (scope.pool, overflow[0][0].pool)
        wake = _ColdWake(fleet.now, runtime.dispatcher, pools, demand.since, policy.cold_after)
    ticket = runtime.dispatcher.ticket(demand, importance)
    try:
        granted = await runtime.dispatcher.acquire(
            endpoints, (), ticket, scope.description, overflow=overflow
        )
    finally:
        if wake is not None:
            wake.cancel()
    if granted is not None:
        ticket.reserved = granted
        pool = granted[0].pool
        if pool is not scope.pool:
            decision = msgspec.structs.replace(
                decision, tier=Tier(pool.value), reason=QUEUE_OVERFLOW
            )
            scope, endpoints = scope_for(choice, decision.tier, runtime)
    return Placed(decision, scope, endpoints, ticket)


class _ColdWake:
    """Wakes the lines a request waits in once its ``cold_after_ms`` has passed: from then on
    it may take a cold instance's free slot, and no slot freeing need come to say so.
    ``clock`` is the fleet's, the one placement measures the wait with."""

    __slots__ = ("_after", "_clock", "_dispatcher", "_handle", "_pools", "_since")

    def __init__(
        self,
        clock: Callable[[], float],
        dispatcher: Dispatcher,
        pools: tuple[Pool, ...],
        since: float,
        after: float,
    ) -> None:
        self._clock = clock
        self._dispatcher = dispatcher
        self._pools = pools
        self._since = since
        self._after = after
        self._handle = asyncio.get_running_loop().call_later(after, self._fire)

    def _fire(self) -> None:
        waited = self._clock() - self._since
        if waited < self._after:  # placement's own test, on the fleet's clock, not the loop's
            self._handle = asyncio.get_running_loop().call_later(self._after - waited, self._fire)
            return
        for pool in self._pools:
            self._dispatcher.kick(pool)

    def cancel(self) -> None:
        """The request has its slot, or stopped waiting."""
        self._handle.cancel()


def release(placed: Placed | None) -> None:
    """Give back a slot reserved at admission that no attempt used (the request failed or was
    cancelled between admission and forwarding)."""
    if placed is None:
        return
    reserved = placed.ticket.take_reserved()
    if reserved is not None:
        endpoint, trial = reserved
        endpoint.end(trial)


def _accepts(check: ScopeCheck | None, endpoints: Sequence[Endpoint]) -> bool:
    if check is None:
        return True
    try:
        check(endpoints)
    except OctorouteError:
        return False
    return True


def _prewarm(runtime: Runtime, endpoints: Sequence[Endpoint], demand: Demand) -> None:
    """Load the model on the instance placement would prefer, warmth aside, when it is known
    cold and the request is about to go elsewhere."""
    fleet = runtime.fleet
    preferred = prefer(endpoints, demand, fleet.now(), fleet.policy)
    if preferred is None or not preferred.cold or runtime.prewarmer.running(preferred):
        return
    going = fleet.place(endpoints, (), demand)
    if not isinstance(going, Shortfall) and going[0] is preferred:
        return  # the request itself loads it
    runtime.prewarmer.warm(preferred)
