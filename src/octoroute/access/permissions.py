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
from typing import Final

from octoroute.access.keys import ClientKey
from octoroute.enums import TIER_POOLS, TIERS, Pool, Tier

AUTO: Final = "auto"


def allows(key: ClientKey, target: str, alias: str | None, pool: Pool | None) -> bool:
    """Whether ``key`` may send a request that reached ``target`` (through ``alias``) and is
    served by ``pool`` (``None`` for ``auto``, which :func:`cap` keeps within the key's tiers)."""
    models = key.models
    if models is not None and target not in models and (alias is None or alias not in models):
        return False
    if pool is None:
        return any(TIER_POOLS[tier] in key.pools for tier in TIERS)
    return pool in key.pools


def allowed_tiers(key: ClientKey) -> tuple[Tier, ...]:
    """The tiers ``key`` may be served by, cheapest first."""
    return tuple(tier for tier in TIERS if TIER_POOLS[tier] in key.pools)


def cap(tier: Tier, allowed: Collection[Tier]) -> Tier | None:
    """``tier`` if allowed, else the nearest allowed tier, the cheaper of two as near; ``None``
    when no tier is allowed."""
    if tier in allowed:
        return tier
    position = TIERS.index(tier)
    nearest = sorted(allowed, key=lambda t: (abs(TIERS.index(t) - position), TIERS.index(t)))
    return nearest[0] if nearest else None


def describe(key: ClientKey) -> str:
    """What ``key`` may use, for a 403's message."""
    tiers = ", ".join(
        pool.value for pool in (*TIER_POOLS.values(), Pool.EMBEDDINGS) if pool in key.pools
    )
    if key.models is None:
        return f"tiers {tiers}"
    return f"tiers {tiers}; models {', '.join(sorted(key.models))}"
