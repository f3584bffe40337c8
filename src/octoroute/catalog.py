"""What a client may put in ``model``, resolved once per request against a table built at start-up.

``auto`` lets routing decide; ``fast``/``balanced``/``deep`` (any case) pick a tier directly; an
exact endpoint name selects that endpoint or its replicas sharing the name. ``[aliases]`` adds
names that stand for one of those: an exact alias costs the same single dict lookup as an
endpoint name (the loader keeps the two sets apart); glob patterns are tried only after every
exact name missed, first match in file order, and their answer is cached per model string.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from fnmatch import translate
from typing import Final

import orjson

from octoroute.enums import TIERS, Tier
from octoroute.errors import InvalidRequest, ModelNotFound
from octoroute.fleet.endpoint import Endpoint
from octoroute.fleet.selector import Fleet

AUTO: Final = "auto"
MAX_NAMES_IN_MESSAGE: Final = 20
MAX_SHOWN_MODEL_CHARS: Final = 100
PATTERN_CACHE_SIZE: Final = 1024
"""Model strings whose pattern lookup is remembered; clients send the same few names, and the
bound keeps a client that sends endless distinct names from growing memory."""
OWNED_BY_ROUTER: Final = "octoroute"
OWNED_BY_ENDPOINT: Final = "user"
OWNED_BY_ALIAS: Final = "alias"


class ModelChoice:
    """The resolved ``model``: routing (``auto``), a tier, or one named model's endpoints;
    ``alias`` is the ``[aliases]`` key (exact name or pattern) that led here, if any.
    ``embedding`` marks an embedding model (then ``tier`` is ``None`` and ``name`` is set)."""

    __slots__ = ("alias", "embedding", "endpoints", "is_auto", "name", "owned_by", "tier")

    def __init__(
        self,
        *,
        tier: Tier | None,
        name: str | None,
        endpoints: tuple[Endpoint, ...],
        alias: str | None = None,
        embedding: bool = False,
    ) -> None:
        self.is_auto = tier is None and name is None
        self.tier = tier
        self.name = name
        self.endpoints = endpoints
        self.alias = alias
        self.embedding = embedding
        self.owned_by: Final = (
            OWNED_BY_ALIAS
            if alias is not None
            else OWNED_BY_ENDPOINT
            if name is not None
            else OWNED_BY_ROUTER
        )

    def aliased(self, alias: str) -> ModelChoice:
        """The same target, reached through ``alias``."""
        return ModelChoice(
            tier=self.tier,
            name=self.name,
            endpoints=self.endpoints,
            alias=alias,
            embedding=self.embedding,
        )


class Catalog:
    """The models this router offers, and the ``GET /v1/models`` body, built once."""

    def __init__(
        self,
        fleet: Fleet,
        names: tuple[str, ...],
        aliases: Sequence[tuple[str, str, bool]] = (),
        *,
        embedding_names: tuple[str, ...] = (),
    ) -> None:
        """``aliases`` are ``(name, target, is_pattern)`` in file order, already validated;
        ``embedding_names`` are the embedding models in file order (the first is their
        ``auto``)."""
        self._auto = ModelChoice(tier=None, name=None, endpoints=())
        self._tiers = {
            tier.value: ModelChoice(tier=tier, name=None, endpoints=fleet.tiers[tier])
            for tier in TIERS
        }
        self._names: dict[str, ModelChoice] = {}
        for name in names:
            endpoints = fleet.by_name(name)
            self._names[name] = ModelChoice(
                tier=Tier(endpoints[0].pool.value), name=name, endpoints=endpoints
            )
        embeddings = {
            name: ModelChoice(tier=None, name=name, endpoints=fleet.by_name(name), embedding=True)
            for name in embedding_names
        }
        self._first_embedding = next(iter(embeddings.values()), None)
        targets = {AUTO: self._auto, **self._tiers, **self._names, **embeddings}
        self._names.update(embeddings)
        exact = [name for name, _, is_pattern in aliases if not is_pattern]
        # fnmatch.translate compiled once: fnmatchcase's answers without its per-call cache lookup.
        self._patterns = [
            (re.compile(translate(name)).match, targets[target].aliased(name))
            for name, target, is_pattern in aliases
            if is_pattern
        ]
        self._matched: dict[str, ModelChoice | None] = {}
        for name, target, is_pattern in aliases:
            if not is_pattern:
                self._names[name] = targets[target].aliased(name)
        entries = [_model_object(model_id, OWNED_BY_ROUTER) for model_id in (AUTO, *self._tiers)]
        entries += [_model_object(name, OWNED_BY_ENDPOINT) for name in names]
        entries += [_model_object(name, OWNED_BY_ENDPOINT) for name in embedding_names]
        entries += [_model_object(name, OWNED_BY_ALIAS) for name in exact]
        self._entries = entries
        self.models_body: Final = orjson.dumps({"object": "list", "data": entries})
        self.model_ids: Final = tuple(str(entry["id"]) for entry in entries)
        """Every name ``GET /v1/models`` lists, in its order (other dialects list the same)."""
        listed = (*names, *embedding_names, *exact)
        shown = list(listed[:MAX_NAMES_IN_MESSAGE])
        if len(listed) > MAX_NAMES_IN_MESSAGE:
            shown.append(f"... ({len(listed) - MAX_NAMES_IN_MESSAGE} more, see GET /v1/models)")
        self._available = ", ".join(f"'{n}'" for n in (AUTO, *self._tiers, *shown))
        self._embedding_models = ", ".join(f"'{n}'" for n in embedding_names)

    @property
    def auto(self) -> ModelChoice:
        """The choice of ``model: auto``: let routing decide."""
        return self._auto

    def resolve(self, model: str) -> ModelChoice:
        """The chat choice for ``model``; ``ModelNotFound`` (404) lists what is available, and
        an embedding model is a 400 pointing at ``POST /v1/embeddings``."""
        choice = self.lookup(model)
        if choice.embedding:
            raise InvalidRequest(
                f"The model '{_shown(model)}' is an embedding model; send it to "
                "POST /v1/embeddings, or name a chat model here.",
                param="model",
            )
        return choice

    def resolve_embedding(self, model: str) -> ModelChoice:
        """The embedding model for ``model``: its name, an alias of it, or ``auto`` (the first
        configured). 404 ``model_not_found`` when none are configured or the name is unknown;
        400 when ``model`` names a tier or chat model."""
        if self._first_embedding is None:
            raise ModelNotFound(
                "No embedding models are configured on this router; add [[embeddings]] "
                "endpoints to its configuration.",
                param="model",
            )
        if model.lower() == AUTO:
            return self._first_embedding
        try:
            choice = self.lookup(model)
        except ModelNotFound:
            raise ModelNotFound(
                f"The embedding model '{_shown(model)}' does not exist on this router. "
                f"Embedding models: {self._embedding_models} (or 'auto').",
                param="model",
            ) from None
        if choice.is_auto:
            return self._first_embedding  # an alias of "auto": the first embedding model
        if not choice.embedding:
            raise InvalidRequest(
                f"The model '{_shown(model)}' is not an embedding model; embeddings need one of "
                f"{self._embedding_models} (or 'auto').",
                param="model",
            )
        return choice

    @property
    def available(self) -> str:
        """The names a client may send, quoted, for messages (the first 20 endpoint names and
        aliases)."""
        return self._available

    @property
    def embedding_models(self) -> str:
        """The embedding models' names, quoted, for messages (empty without any)."""
        return self._embedding_models

    def lookup(self, model: str) -> ModelChoice:
        """Whatever ``model`` names, of either kind; ``ModelNotFound`` otherwise."""
        choice = self._names.get(model)
        if choice is not None and model.lower() not in self._tiers and model.lower() != AUTO:
            return choice
        lowered = model.lower()
        if lowered == AUTO:
            return self._auto
        tier_choice = self._tiers.get(lowered)
        if tier_choice is not None:
            return tier_choice
        if self._patterns:
            matched = self._match(model)
            if matched is not None:
                return matched
        raise ModelNotFound(
            f"The model '{_shown(model)}' does not exist on this router. Available models: "
            f"{self._available}.",
            param="model",
        )

    def _match(self, model: str) -> ModelChoice | None:
        """The first pattern alias ``model`` matches, remembered (misses too) per model string."""
        try:
            return self._matched[model]
        except KeyError:
            pass
        found = next((choice for match, choice in self._patterns if match(model)), None)
        if len(self._matched) >= PATTERN_CACHE_SIZE:
            # Oldest first: dicts keep insertion order, so this is FIFO eviction.
            del self._matched[next(iter(self._matched))]
        self._matched[model] = found
        return found

    def models_body_of(self, may_use: Callable[[ModelChoice], bool]) -> bytes:
        """The ``GET /v1/models`` body listing only what ``may_use`` allows (a client key's
        permissions), in the same order."""
        data = [entry for entry in self._entries if may_use(self.lookup(str(entry["id"])))]
        return orjson.dumps({"object": "list", "data": data})

    def model_object(self, model_id: str) -> bytes:
        """The ``GET /v1/models/{id}`` body for ``model_id`` as the client sent it; raises
        ``ModelNotFound`` as ``resolve`` does."""
        return orjson.dumps(_model_object(model_id, self.lookup(model_id).owned_by))


def _shown(model: str) -> str:
    """At most MAX_SHOWN_MODEL_CHARS of what was sent: a client bug can send megabytes."""
    return model if len(model) <= MAX_SHOWN_MODEL_CHARS else model[:MAX_SHOWN_MODEL_CHARS] + "..."


def _model_object(model_id: str, owned_by: str) -> dict[str, object]:
    """One OpenAI model object; ``created`` is 0 because the router cannot know it."""
    return {"id": model_id, "object": "model", "created": 0, "owned_by": owned_by}
