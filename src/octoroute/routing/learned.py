"""The learned router: a multinomial logistic regression over the tiers, in pure Python.

A model (:class:`LearnedModel`, built from a checked :class:`~octoroute.routing.model_file.
ModelData`) turns the features of :mod:`~octoroute.routing.features` into three scores, one per
tier: the bias plus, per namespace, the sum of the weights of the keys that occur (a key that
occurs twice counts twice), scaled by ``1/sqrt(n)`` for the namespace's ``n`` keys (so a long
turn's many words do not drown its few signals). The scores divided by the fitted temperature go through a softmax: calibrated
probabilities that each tier is the right one.

The decision is not the most probable tier but the one with the least expected cost under
``cost[expected][chosen]`` (in the file): sending a request to a tier cheaper than the right one
costs more than sending it to a pricier one, so when the model hesitates between balanced and
deep, deep wins unless balanced is clearly more likely. ``confidence`` is the probability of the
chosen tier.

Every step is a dictionary lookup or a ``sum`` over ``map`` (both run in C), so a decision costs a
few microseconds on top of the feature extraction; no numpy, no per-process randomness.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Final, NamedTuple

from octoroute.enums import TIERS, Tier
from octoroute.routing.features import (
    NAMESPACES,
    PAIR_NAMESPACES,
    PAIR_SEPARATORS,
    Features,
    FeatureSpec,
    extract,
)
from octoroute.routing.metadata import RouteMetadata
from octoroute.routing.model_file import ModelData, read_model_file, shipped_model_path
from octoroute.wire.messages import Message

_ROOTS: Final = 4096
_INVERSE_ROOT: Final = (0.0, *(1.0 / math.sqrt(n) for n in range(1, _ROOTS)))
"""``1/sqrt(n)``, the scale of a namespace with ``n`` keys, looked up instead of computed."""


class Prediction(NamedTuple):
    """The learned decision for one request."""

    tier: Tier
    confidence: float
    """The calibrated probability that ``tier`` is the right tier."""
    probabilities: tuple[float, float, float]
    """Per tier, cheapest first."""


class LearnedModel:
    """A model file turned into lookup tables; immutable and shared by every request.

    Only differences of scores matter to a softmax, so each key's three weights are stored as
    one complex number, ``(w_balanced - w_fast) + 1j * (w_deep - w_fast)``: a namespace's score
    is then a single ``sum`` over ``map(table.get, keys)``, all of it in C.
    """

    __slots__ = ("_bias", "_cost", "_tables", "_temperature", "data", "spec")

    def __init__(self, data: ModelData) -> None:
        """Index the weights of ``data`` (already checked by the reader)."""
        self.data = data
        self.spec: FeatureSpec = data.feature_spec()
        tables: list[dict[object, complex]] = []
        for namespace in NAMESPACES:
            table: dict[object, complex] = {}
            separator = PAIR_SEPARATORS.get(namespace)
            for key, (fast, balanced, deep) in data.weights.get(namespace, {}).items():
                lookup: object = key
                if namespace in PAIR_NAMESPACES and separator is not None:
                    first, _, second = key.partition(separator)
                    lookup = (first, second)
                table[lookup] = complex(balanced - fast, deep - fast)
            tables.append(table)
        self._tables = tuple(tables)
        fast, balanced, deep = data.bias
        self._bias = complex(balanced - fast, deep - fast)
        self._temperature = data.temperature
        self._cost = data.cost

    def features(self, messages: Sequence[Message], meta: RouteMetadata) -> Features:
        """The features of a conversation, with this model's extraction bounds."""
        return extract(messages, meta, self.spec)

    def scores(self, features: Features) -> tuple[float, float, float]:
        """The score of each tier relative to fast's (before temperature and softmax)."""
        total = self._bias
        for table, keys in zip(self._tables, features, strict=True):
            if keys and table:
                # filter(None): a key the model does not know gives None (and 0j adds nothing)
                found = sum(filter(None, map(table.get, keys)))
                if found:
                    n = len(keys)
                    total += found * (_INVERSE_ROOT[n] if n < _ROOTS else 1.0 / math.sqrt(n))
        return 0.0, total.real, total.imag

    def probabilities(self, scores: Sequence[float]) -> tuple[float, float, float]:
        """Calibrated tier probabilities from raw scores."""
        return softmax(scores, self._temperature)

    def decide(self, probabilities: Sequence[float]) -> Prediction:
        """The tier with the least expected cost, and its probability."""
        tier_index = least_cost(probabilities, self._cost)
        p0, p1, p2 = probabilities
        return Prediction(TIERS[tier_index], probabilities[tier_index], (p0, p1, p2))

    def predict(self, messages: Sequence[Message], meta: RouteMetadata) -> Prediction:
        """The learned decision for a conversation whose inferred metadata is ``meta``."""
        return self.decide(self.probabilities(self.scores(self.features(messages, meta))))


def softmax(scores: Sequence[float], temperature: float = 1.0) -> tuple[float, float, float]:
    """Probabilities from three scores divided by ``temperature``."""
    s0, s1, s2 = scores
    top = max(s0, s1, s2)
    e0 = math.exp((s0 - top) / temperature)
    e1 = math.exp((s1 - top) / temperature)
    e2 = math.exp((s2 - top) / temperature)
    total = e0 + e1 + e2
    return e0 / total, e1 / total, e2 / total


def least_cost(probabilities: Sequence[float], cost: Sequence[Sequence[float]]) -> int:
    """The index of the tier with the least expected cost (the cheaper tier on a tie)."""
    p0, p1, p2 = probabilities
    (c00, c01, c02), (c10, c11, c12), (c20, c21, c22) = cost
    fast = p0 * c00 + p1 * c10 + p2 * c20
    balanced = p0 * c01 + p1 * c11 + p2 * c21
    deep = p0 * c02 + p1 * c12 + p2 * c22
    best, best_cost = 0, fast
    if balanced < best_cost - 1e-12:
        best, best_cost = 1, balanced
    if deep < best_cost - 1e-12:
        best = 2
    return best


def load_model(path: str | os.PathLike[str] | None = None) -> LearnedModel:
    """The model in ``path`` (the shipped one for ``None``), indexed once per file version.

    Raises :class:`~octoroute.routing.model_file.ModelFileError` for a file that cannot be used.
    """
    data = read_model_file(shipped_model_path() if path is None else path)
    found = _INDEXED.get(id(data))
    if found is not None and found[0] is data:
        return found[1]
    model = LearnedModel(data)
    if len(_INDEXED) >= _INDEXED_MAX:
        del _INDEXED[next(iter(_INDEXED))]
    _INDEXED[id(data)] = (data, model)
    return model


_INDEXED_MAX: Final = 8
_INDEXED: dict[int, tuple[ModelData, LearnedModel]] = {}
"""The models indexed so far, by the identity of the (cached) file data they came from."""
