"""Which instance of a scope serves an attempt: pure functions over the instances' state.

Fleet-aware placement (``routing.placement = "fleet"``, the default), in order:

1. **Eligible**: healthy, ready (not ejected, on trial or told busy) and not yet tried by this
   request.
2. **Fits**: the request's estimated prompt tokens plus the output it asks for fit the
   instance's context window (:func:`needed`); an unknown window fits.
3. **Has a slot**: fewer attempts in flight than its ``max_concurrent``. If every eligible
   instance that fits is full, the answer is :data:`Shortfall.FULL` and the caller queues.
4. **Best priority** among the rest: an operator's ranking still comes first.
5. **Warm first**: instances whose model is known cold (not loaded, or loading) are dropped
   while a warm or unknown one is left; unknown counts as warm (no information is not bad news).
6. **Conversation affinity** (a request with an affinity key): weighted rendezvous hashing
   ranks the instances for the key; the first in that order takes it unless it has more than
   ``affinity_imbalance`` requests in flight per unit of weight above the least-loaded one.
   Over many conversations each instance's share follows its weight.
7. Otherwise **least outstanding**: the fewest attempts in flight per unit of weight, ties drawn
   at random by weight.

Static placement (``"static"``) is v1's: healthy, ready and untried instances of the best
priority, drawn by weight; no slot limits, windows, warmth, load or affinity.

Everything here is synchronous and allocation-light: one pass over the candidates gathers what
every step needs; a second walk happens only to draw among ties by weight, or to order the group
when a conversation's replica is too busy (``bench/selection.py`` measures it).
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import TYPE_CHECKING, Final, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from octoroute.fleet.endpoint import Endpoint

_KEY_SHIFT: Final = 38
"""A 64-bit key keeps its top 26 bits for the rendezvous product: exact in a float."""
_TINY: Final = 2.0**-60
"""Keeps ``log`` off zero."""
DEFAULT_SHARE_DIVISOR: Final = 4
"""A request that sets no output limit reserves the endpoint's ``max_tokens`` default, but at
most a quarter of the window: the default is a cap, and servers stop at the window."""


class Demand(NamedTuple):
    """What one request asks of an instance."""

    prompt_tokens: int = 0
    """Estimated tokens of the conversation (``routing.metadata.estimate_tokens``)."""
    output_tokens: int | None = None
    """The client's own limit on generated tokens; ``None`` when it set none."""
    fills_default: bool = False
    """With no client limit, the router sends the endpoint's ``max_tokens``: count it."""
    key: int | None = None
    """The conversation's affinity key (``wire.hints.affinity_key``); ``None``: no affinity."""

    @property
    def sized(self) -> bool:
        """Whether the context check applies at all (an embedding or probe-like demand is not)."""
        return self.prompt_tokens > 0 or self.output_tokens is not None or self.fills_default


NO_DEMAND: Final = Demand()
"""A request placement knows nothing about: no context check, no affinity."""


class Shortfall(StrEnum):
    """Why no instance could be chosen."""

    FULL = "full"
    """Some eligible instances fit, but every one of them is at ``max_concurrent``: wait."""
    UNFIT = "unfit"
    """Every eligible instance's window is too small for the request."""
    UNAVAILABLE = "unavailable"
    """Nothing eligible: unhealthy, ejected, busy or already tried."""


class Affinity(StrEnum):
    """What conversation affinity did for one placement (``octoroute_affinity_total``)."""

    HIT = "hit"
    """The conversation's first replica in hash order took it."""
    MOVED = "moved"
    """That replica was down, full, too small, cold or too busy: the next in order took it."""
    NONE = "none"
    """The request had no affinity key (or affinity is off)."""


class Policy(NamedTuple):
    """The placement settings of ``[routing]``."""

    static: bool = False
    affinity: bool = True
    imbalance: float = 2.0


Pick = tuple["Endpoint", Affinity]
"""The chosen instance and what affinity did. A plain tuple: a ``NamedTuple`` costs a Python-level
``__new__`` per request."""

_HIT: Final = Affinity.HIT
_MOVED: Final = Affinity.MOVED
_NONE: Final = Affinity.NONE
"""Enum members as module constants: a global read is cheaper than a class attribute lookup."""


def reserve(default_output: int, window: int | None) -> int:
    """What the router's own ``max_tokens`` default takes of ``window``: the default, at most
    :data:`DEFAULT_SHARE_DIVISOR` th of a known window (``Endpoint.reserve``)."""
    return (
        default_output if window is None else min(default_output, window // DEFAULT_SHARE_DIVISOR)
    )


def needed(endpoint: Endpoint, demand: Demand) -> int:
    """Tokens ``demand`` needs in ``endpoint``'s window: prompt plus output (the client's limit,
    else the default the router fills in, at most a quarter of a known window)."""
    output = demand.output_tokens
    if output is None:
        output = endpoint.reserve if demand.fills_default else 0
    return demand.prompt_tokens + output


def fits(endpoint: Endpoint, demand: Demand) -> bool:
    """Whether ``demand`` fits ``endpoint``'s context window (an unknown window fits)."""
    window = endpoint.context_window
    return window is None or not demand.sized or needed(endpoint, demand) <= window


def any_fits(endpoints: Sequence[Endpoint], demand: Demand) -> bool:
    """Whether some instance of ``endpoints`` has a window ``demand`` fits (health aside)."""
    return any(fits(endpoint, demand) for endpoint in endpoints)


def has_room(endpoint: Endpoint, now: float) -> bool:
    """Whether ``endpoint`` could take an attempt now as far as slots, health and readiness go."""
    limit = endpoint.max_concurrent
    return (
        endpoint.healthy and endpoint.ready_at <= now and (not limit or endpoint.in_flight < limit)
    )


def choose(
    candidates: Sequence[Endpoint],
    exclude: Collection[Endpoint],
    demand: Demand,
    now: float,
    draw: Callable[[], float],
    policy: Policy,
    *,
    ranks: Sequence[float] | None = None,
    warm_first: bool = True,
) -> Pick | Shortfall:
    """The instance of ``candidates`` for an attempt of ``demand``, or why there is none.

    ``exclude`` holds the instances this request already tried; ``now`` is the clock reading
    ``Endpoint.ready_at`` is compared with; ``draw`` returns a uniform number in [0, 1) for
    weighted ties. ``ranks`` are the demand key's rendezvous ranks by ``Endpoint.position``
    (:func:`rank_pool`; ``Fleet`` caches them per conversation), computed here when not given.
    ``warm_first=False`` skips step 5 (what the pre-warm asks: which instance would be
    preferred if every model were loaded). Does not start the attempt (see ``Fleet.take``).
    """
    if policy.static:
        return _static(candidates, exclude, now, draw)
    prompt, asked, fills, key = demand  # one unpack: NamedTuple fields are properties
    sized = prompt > 0 or asked is not None or fills
    fixed = -1 if asked is None else prompt + asked
    if key is not None and policy.affinity:
        if ranks is None:
            ranks = rank_pool(candidates, key)
    else:
        ranks = None
    inf = math.inf
    first: Endpoint | None = None
    first_rank = inf
    rank = 0.0
    full = unfit = 0
    # The best priority's group, and what steps 5-7 need of it, gathered in this one pass: its
    # least loaded and its first in rendezvous order, over all of it and over its warm members.
    best = -1
    group: list[Endpoint] = []
    warm_count = 0
    low_all = low_warm = inf
    tied_all: list[Endpoint] = []
    tied_warm: list[Endpoint] = []
    top_all: Endpoint | None = None
    top_warm: Endpoint | None = None
    rank_all = rank_warm = inf
    for ep in candidates:
        if ranks is not None:
            # The first in rendezvous order over every candidate is the conversation's own.
            rank = ranks[ep.position]
            if rank < first_rank:
                first_rank = rank
                first = ep
        if not ep.healthy or ep.ready_at > now or (exclude and ep in exclude):
            continue
        if sized:
            window = ep.context_window
            if window is not None:
                need = fixed if fixed >= 0 else prompt + ep.reserve if fills else prompt
                if need > window:
                    unfit += 1
                    continue
        limit = ep.max_concurrent
        if limit and ep.in_flight >= limit:
            full += 1
            continue
        priority = ep.priority
        if priority != best:
            if priority < best:
                continue
            best = priority
            group = []
            warm_count = 0
            low_all = low_warm = rank_all = rank_warm = inf
            top_all = top_warm = None
        group.append(ep)
        load = ep.in_flight * ep.inverse_weight
        if load < low_all:
            low_all = load
            tied_all = [ep]
        elif load == low_all:
            tied_all.append(ep)
        cold = ep.cold
        if not cold:
            warm_count += 1
            if load < low_warm:
                low_warm = load
                tied_warm = [ep]
            elif load == low_warm:
                tied_warm.append(ep)
        if ranks is not None:
            if rank < rank_all:
                rank_all = rank
                top_all = ep
            if not cold and rank < rank_warm:
                rank_warm = rank
                top_warm = ep
    if not group:
        if full:
            return Shortfall.FULL
        return Shortfall.UNFIT if unfit else Shortfall.UNAVAILABLE
    warm_only = warm_first and 0 < warm_count < len(group)
    if ranks is not None:
        top = top_warm if warm_only else top_all
        assert top is not None
        ceiling = (low_warm if warm_only else low_all) + policy.imbalance
        if top.in_flight * top.inverse_weight <= ceiling:
            return top, _HIT if top is first else _MOVED
        members = [ep for ep in group if not (warm_only and ep.cold)]
        members.sort(key=lambda ep: ranks[ep.position])
        return next(ep for ep in members if ep.in_flight * ep.inverse_weight <= ceiling), _MOVED
    tied = tied_warm if warm_only else tied_all
    if len(tied) == 1:
        return tied[0], _NONE
    return _weighted(tied, draw), _NONE


def prefer(
    candidates: Sequence[Endpoint], demand: Demand, now: float, policy: Policy
) -> Endpoint | None:
    """The instance placement would choose for ``demand`` if every model were loaded (ties go
    to the first in config order), or ``None``."""
    picked = choose(candidates, (), demand, now, _first, policy, warm_first=False)
    return None if isinstance(picked, Shortfall) else picked[0]


def _first() -> float:
    return 0.0


def rank_pool(endpoints: Sequence[Endpoint], key: int) -> list[float]:
    """:func:`rendezvous_rank` of every instance of ``endpoints`` for ``key``, indexed by
    ``Endpoint.position`` (``inf`` where no instance of ``endpoints`` has that position)."""
    ranks = [math.inf] * (max(ep.position for ep in endpoints) + 1)
    for ep in endpoints:
        ranks[ep.position] = rendezvous_rank(key, ep)
    return ranks


def rank_table(phases: Sequence[tuple[float, float]], key: int) -> list[float]:
    """:func:`rank_pool` for a whole pool, from its instances' ``(phase, -inverse_weight)`` in
    position order (``Fleet`` prepares them): the cost of a conversation's first turn."""
    log = math.log
    turns = float(key >> _KEY_SHIFT)
    return [log((turns * phase) % 1.0 + _TINY) * negative for phase, negative in phases]


def rendezvous_rank(key: int, endpoint: Endpoint) -> float:
    """``endpoint``'s rank for ``key``: lowest first. An exponential variate with rate
    ``weight`` (``-ln(u) / weight``), so the first in order falls on each instance with
    probability proportional to its weight.

    ``u`` is the fractional part of ``k × phase``: ``k`` the key's top 26 bits, ``phase`` the
    instance's own number in [0, 1) from its blake2b seed. For distinct phases these are
    equidistributed and independent over keys (Weyl), measured as exact as a 64-bit mixing
    hash (``hash((key, seed))`` was not: 20 % of draws for an instance of weight 1 in 8) at half
    its cost, and nothing depends on Python's per-process salted hashing.
    """
    turns = float(key >> _KEY_SHIFT)
    return -math.log((turns * endpoint.phase) % 1.0 + _TINY) * endpoint.inverse_weight


def _weighted(
    group: list[Endpoint], draw: Callable[[], float], total: float | None = None
) -> Endpoint:
    """One of ``group`` with probability ``weight / total`` (``total``: the sum of their weights,
    when the caller has it), walking it in config order."""
    if total is None:
        total = 0.0
        for ep in group:
            total += ep.weight
    target = draw() * total
    running = 0.0
    for ep in group:
        running += ep.weight
        if target < running:
            return ep
    return group[-1]  # float rounding left the draw at or above the final sum


def _static(
    candidates: Sequence[Endpoint],
    exclude: Collection[Endpoint],
    now: float,
    draw: Callable[[], float],
) -> Pick | Shortfall:
    """v1's selection: eligible instances of the best priority, drawn by weight."""
    group: list[Endpoint] = []
    best = -1
    total = 0.0
    for ep in candidates:
        if not ep.healthy or ep.ready_at > now or ep in exclude:
            continue
        priority = ep.priority
        if priority > best:
            best = priority
            group = [ep]
            total = ep.weight
        elif priority == best:
            group.append(ep)
            total += ep.weight
    if not group:
        return Shortfall.UNAVAILABLE
    if len(group) == 1:
        return group[0], _NONE
    return _weighted(group, draw, total), _NONE
