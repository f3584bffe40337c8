"""What a client may put in ``model``, resolved once per request against a table built at start-up.

``auto`` lets routing decide; ``fast``/``balanced``/``deep`` (any case) pick a tier directly; any
other value must be exactly a configured endpoint name, which selects that endpoint or its
replicas sharing the name.
"""

from __future__ import annotations

from typing import Final

import orjson

from octoroute.enums import TIERS, Tier
from octoroute.errors import ModelNotFound
from octoroute.fleet.endpoint import Endpoint
from octoroute.fleet.selector import Fleet

AUTO: Final = "auto"
MAX_NAMES_IN_MESSAGE: Final = 20
MAX_SHOWN_MODEL_CHARS: Final = 100


class ModelChoice:
    """The resolved ``model``: routing (``auto``), a tier, or one named model's endpoints."""

    __slots__ = ("endpoints", "is_auto", "name", "tier")

    def __init__(
        self, *, tier: Tier | None, name: str | None, endpoints: tuple[Endpoint, ...]
    ) -> None:
        self.is_auto = tier is None and name is None
        self.tier = tier
        self.name = name
        self.endpoints = endpoints


class Catalog:
    """The models this router offers, and the ``GET /v1/models`` body, built once."""

    def __init__(self, fleet: Fleet, names: tuple[str, ...]) -> None:
        self._auto = ModelChoice(tier=None, name=None, endpoints=())
        self._tiers = {
            tier.value: ModelChoice(tier=tier, name=None, endpoints=fleet.tiers[tier])
            for tier in TIERS
        }
        self._names: dict[str, ModelChoice] = {}
        for name in names:
            endpoints = fleet.by_name(name)
            self._names[name] = ModelChoice(tier=endpoints[0].tier, name=name, endpoints=endpoints)
        entries = [
            {"id": model_id, "object": "model", "created": 0, "owned_by": "octoroute"}
            for model_id in (AUTO, *self._tiers)
        ]
        entries += [
            {"id": name, "object": "model", "created": 0, "owned_by": "user"} for name in names
        ]
        self.models_body: Final = orjson.dumps({"object": "list", "data": entries})
        shown = list(names[:MAX_NAMES_IN_MESSAGE])
        if len(names) > MAX_NAMES_IN_MESSAGE:
            shown.append(f"... ({len(names) - MAX_NAMES_IN_MESSAGE} more, see GET /v1/models)")
        self._available = ", ".join(f"'{n}'" for n in (AUTO, *self._tiers, *shown))

    def resolve(self, model: str) -> ModelChoice:
        """The choice for ``model``; ``ModelNotFound`` (404) lists what is available."""
        choice = self._names.get(model)
        if choice is not None and model.lower() not in self._tiers and model.lower() != AUTO:
            return choice
        lowered = model.lower()
        if lowered == AUTO:
            return self._auto
        tier_choice = self._tiers.get(lowered)
        if tier_choice is not None:
            return tier_choice
        # Echo at most MAX_SHOWN_MODEL_CHARS of what was sent: a client bug can send megabytes.
        shown = (
            model if len(model) <= MAX_SHOWN_MODEL_CHARS else model[:MAX_SHOWN_MODEL_CHARS] + "..."
        )
        raise ModelNotFound(
            f"The model '{shown}' does not exist on this router. Available models: "
            f"{self._available}.",
            param="model",
        )
