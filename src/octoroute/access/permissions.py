"""What a client key may use: the models it may name, and the tier ``auto`` may send it to.

A request is allowed when both hold:

* **models**: the key lists nothing (any model), or it lists what the request reached: the
  target the catalog resolved (``auto``, a tier, an endpoint or embedding model name) or the
  ``[aliases]`` name that led there;
* **tiers**: the pool that serves the request is among the key's ``tiers`` (the three tiers and
  ``embeddings``).

``auto`` is never refused for its tier: routing decides, then :func:`cap` moves the decision to
the nearest tier the key allows (the cheaper one when two are as near), and the decision's
reason becomes ``capped_by_key``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Final

from octoroute.enums import POOLS, TIER_POOLS, TIERS, Pool, Tier

if TYPE_CHECKING:
    from octoroute.access.keys import ClientKey

AUTO: Final = "auto"


def allows(key: ClientKey, target: str, alias: str | None, pool: Pool | None) -> bool:
    """Whether ``key`` may send a request that reached ``target`` (through ``alias``) and is
    served by ``pool`` (``None`` for ``auto``, which :func:`cap` keeps within the key's tiers)."""
    if key.unrestricted:
        return True
    models = key.models
    if models is not None and target not in models and (alias is None or alias not in models):
        return False
    if pool is None:
        return bool(key.tiers)
    return pool in key.pools


def allowed_tiers(pools: Collection[Pool]) -> tuple[Tier, ...]:
    """The tiers among ``pools``, cheapest first."""
    return tuple(tier for tier in TIERS if TIER_POOLS[tier] in pools)


def cap(tier: Tier, allowed: Collection[Tier]) -> Tier | None:
    """``tier`` if allowed, else the nearest allowed tier, the cheaper of two as near; ``None``
    when no tier is allowed."""
    if tier in allowed:
        return tier
    position = TIERS.index(tier)
    nearest = sorted(allowed, key=lambda t: (abs(TIERS.index(t) - position), TIERS.index(t)))
    return nearest[0] if nearest else None


def caps(allowed: Collection[Tier]) -> dict[Tier, Tier | None]:
    """:func:`cap` of every tier, for a table built once per key."""
    return {tier: cap(tier, allowed) for tier in TIERS}


def unrestricted(pools: Collection[Pool], models: Collection[str] | None) -> bool:
    """Whether a key with these ``tiers`` and ``models`` may use everything."""
    return models is None and set(POOLS) <= set(pools)


def describe(key: ClientKey) -> str:
    """What ``key`` may use, for a 403's message."""
    tiers = ", ".join(pool.value for pool in POOLS if pool in key.pools)
    if key.models is None:
        return f"tiers {tiers}"
    return f"tiers {tiers}; models {', '.join(sorted(key.models))}"
