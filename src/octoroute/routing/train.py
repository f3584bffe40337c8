"""Training the learned router: labelled rows in, a model file out, with cross-validation.

Pure Python, deterministic and fast enough for a few thousand rows (``octoroute train``):

* **Features** are those of :mod:`~octoroute.routing.features`. A key enters the model's
  vocabulary when it occurs in at least ``min_count`` training rows; the others are ignored, in
  training as at run time.
* **Targets** use ``acceptable``: the expected tier gets ``1 - soft`` of the target probability
  and the other acceptable tiers share ``soft``. A row whose acceptable set is ``{fast,
  balanced}`` teaches the model that fast is fine there, without teaching it that fast is right.
* **Fit**: softmax regression with L2, by stochastic gradient descent in a seeded order, the L2
  decay kept as one scale factor (so a step costs the row's keys, not the whole vocabulary).
  The weights written are the mean of those at the end of the last ``average`` epochs, which
  damps the noise of the step order (+0.006 acceptable accuracy in grouped cross-validation,
  docs/routing.md). Weights are rounded to 5 decimals and keys whose weights all stay under
  ``prune`` are dropped: the file holds only what matters and is the same bytes for the same
  data and seed.
* **Calibration**: the temperature that best fits the out-of-fold scores of a k-fold
  cross-validation (log-likelihood of the expected tiers), so the probabilities, and so
  ``confidence``, mean what they say on rows the model did not see.
* **Decision**: the least expected cost under ``cost[expected][chosen]``: one per tier of
  over-routing; ``fast_under_cost`` for fast when balanced was right, ``under_cost`` for
  balanced when deep was right, their sum for fast when deep was right.

The same functions give the cross-validated report of ``octoroute train`` and ``octoroute eval
--cv``, and grouped cross-validation (hold out whole files, or every value of a field).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Final, NamedTuple

import msgspec

from octoroute.enums import TIERS, DecisionSource, Importance
from octoroute.routing.evaluate import EvalRow
from octoroute.routing.features import (
    DEFAULT_SPEC,
    NAMESPACES,
    PAIR_SEPARATORS,
    SCHEME,
    Features,
    FeatureSpec,
    extract,
)
from octoroute.routing.learned import LearnedModel, least_cost, softmax
from octoroute.routing.metadata import RouteMetadata, infer_metadata
from octoroute.routing.model_file import FORMAT, VERSION, ModelData
from octoroute.routing.strategy import LEARNED_REASON, Decision

Vector = tuple[float, float, float]
_RANK: Final = {tier: index for index, tier in enumerate(TIERS)}
_DECIMALS: Final = 5


class TrainOptions(NamedTuple):
    """Everything that decides a trained model besides the data (recorded in the file)."""

    seed: int = 0
    epochs: int = 12
    learning_rate: float = 0.2
    l2: float = 3e-4
    """L2 strength per row (the objective is the mean loss plus ``l2 / 2 * |w|^2``)."""
    soft: float = 0.3
    """Share of a row's target spread over its other acceptable tiers."""
    min_count: int = 2
    """A key is learned only if it occurs in at least this many training rows."""
    under_cost: float = 3.0
    """Cost of choosing balanced when deep was right, against 1 for one tier too pricey."""
    fast_under_cost: float = 1.5
    """Cost of choosing fast when balanced was right. Lower than ``under_cost``: a routine task
    done by the small model is a weaker answer, a hard one done by the mid-size model is often
    a wrong one; chosen by grouped cross-validation (docs/routing.md)."""
    prune: float = 2e-3
    """Keys whose three weights are all smaller than this are left out of the file."""
    spec: FeatureSpec = DEFAULT_SPEC
    average: int = 6
    """The written weights are the mean of those after each of the last this many epochs
    (0: the last epoch's)."""
    emphasis: tuple[tuple[str, float], ...] = ()
    """Per namespace, a factor on its feature values while fitting (default 1). A factor above
    1 lets that namespace's weights grow with less L2 penalty (a looser prior); it is folded
    into the written weights, so the model file and the decision do not change shape."""


def _emphasis(options: TrainOptions) -> list[float]:
    factors = dict(options.emphasis)
    unknown = set(factors) - set(NAMESPACES)
    if unknown:
        raise ValueError(f"emphasis names unknown namespaces {sorted(unknown)}")
    return [factors.get(namespace, 1.0) for namespace in NAMESPACES]


class Example(NamedTuple):
    """One training row, featurised."""

    features: Features
    expected: int
    acceptable: tuple[int, ...]
    target: Vector
    metadata: RouteMetadata


def cost_matrix(
    under_cost: float, fast_under_cost: float | None = None
) -> tuple[Vector, Vector, Vector]:
    """``cost[expected][chosen]``: 1 per tier of over-routing; ``fast_under_cost`` (default
    ``under_cost``) for fast instead of balanced, ``under_cost`` for balanced instead of deep,
    their sum for fast instead of deep."""
    low = under_cost if fast_under_cost is None else fast_under_cost
    return (0.0, 1.0, 2.0), (low, 0.0, 1.0), (low + under_cost, under_cost, 0.0)


def prepare(rows: Sequence[EvalRow], spec: FeatureSpec = DEFAULT_SPEC) -> list[Example]:
    """Featurise labelled rows (the metadata is inferred as for ``model: auto``)."""
    return [example(row, spec) for row in rows]


def example(row: EvalRow, spec: FeatureSpec = DEFAULT_SPEC, soft: float = 0.3) -> Example:
    """One row as a training example; ``soft`` is set again by :func:`with_targets`."""
    meta = infer_metadata(row.messages, Importance.NORMAL)
    expected = _RANK[row.expected_tier]
    acceptable = tuple(sorted(_RANK[tier] for tier in row.acceptable))
    return Example(
        extract(row.messages, meta, spec),
        expected,
        acceptable,
        _target(expected, acceptable, soft),
        meta,
    )


def with_targets(examples: Sequence[Example], soft: float) -> list[Example]:
    """``examples`` with their targets recomputed for another ``soft``."""
    return [e._replace(target=_target(e.expected, e.acceptable, soft)) for e in examples]


def _target(expected: int, acceptable: Sequence[int], soft: float) -> Vector:
    others = [tier for tier in acceptable if tier != expected]
    target = [0.0, 0.0, 0.0]
    target[expected] = 1.0 - (soft if others else 0.0)
    for tier in others:
        target[tier] = soft / len(others)
    return target[0], target[1], target[2]


# --- fitting ---------------------------------------------------------------------------------


Block = tuple[float, list[int]]
"""One namespace of one row: its ``1/sqrt(n)`` scale and the ids of its known keys."""


def _vocabulary(examples: Sequence[Example], min_count: int) -> list[dict[Hashable, int]]:
    """Per namespace, key -> id (1-based, in a fixed order) for keys in enough rows."""
    tables: list[dict[Hashable, int]] = []
    next_id = 1
    for slot in range(len(NAMESPACES)):
        counts: Counter[Hashable] = Counter()
        for e in examples:
            counts.update(set(e.features[slot]))
        kept = sorted((key for key, count in counts.items() if count >= min_count), key=_order)
        table = {key: next_id + offset for offset, key in enumerate(kept)}
        next_id += len(kept)
        tables.append(table)
    return tables


def _order(key: Hashable) -> tuple[str, ...]:
    return key if isinstance(key, tuple) else (str(key),)


def _encode(
    features: Features, tables: Sequence[dict[Hashable, int]], emphasis: Sequence[float]
) -> list[Block]:
    blocks: list[Block] = []
    for table, keys, factor in zip(tables, features, emphasis, strict=True):
        if not keys:
            continue
        ids = [table[key] for key in keys if key in table]
        if ids:
            blocks.append((factor / math.sqrt(len(keys)), ids))
    return blocks


def fit(examples: Sequence[Example], options: TrainOptions) -> ModelData:
    """A model fitted to ``examples`` (temperature 1: calibrate with :func:`calibrate`)."""
    tables = _vocabulary(examples, options.min_count)
    size = 1 + sum(len(table) for table in tables)
    emphasis = _emphasis(options)
    encoded = [_encode(e.features, tables, emphasis) for e in examples]
    first_averaged = options.epochs - options.average
    sum0, sum1, sum2 = [0.0] * size, [0.0] * size, [0.0] * size
    bias_sum = [0.0, 0.0, 0.0]
    averaged = 0
    w0, w1, w2 = [0.0] * size, [0.0] * size, [0.0] * size
    b0 = b1 = b2 = 0.0
    scale = 1.0
    l2, rate0 = options.l2, options.learning_rate
    order = list(range(len(examples)))
    rng = random.Random(options.seed)
    step = 0
    for epoch in range(options.epochs):
        rng.shuffle(order)
        for i in order:
            blocks = encoded[i]
            q0, q1, q2 = examples[i].target
            s0 = s1 = s2 = 0.0
            for weight, ids in blocks:
                s0 += weight * sum(map(w0.__getitem__, ids))
                s1 += weight * sum(map(w1.__getitem__, ids))
                s2 += weight * sum(map(w2.__getitem__, ids))
            p0, p1, p2 = softmax((s0 * scale + b0, s1 * scale + b1, s2 * scale + b2))
            g0, g1, g2 = p0 - q0, p1 - q1, p2 - q2
            rate = rate0 / (1.0 + rate0 * l2 * step)
            scale *= 1.0 - rate * l2
            for weight, ids in blocks:
                c = rate * weight / scale
                c0, c1, c2 = c * g0, c * g1, c * g2
                for j in ids:
                    w0[j] -= c0
                    w1[j] -= c1
                    w2[j] -= c2
            b0 -= rate * g0
            b1 -= rate * g1
            b2 -= rate * g2
            step += 1
            if scale < 1e-6:  # fold the decay into the weights before it underflows
                w0 = [w * scale for w in w0]
                w1 = [w * scale for w in w1]
                w2 = [w * scale for w in w2]
                scale = 1.0
        if epoch >= first_averaged:
            sum0 = [total + w * scale for total, w in zip(sum0, w0, strict=True)]
            sum1 = [total + w * scale for total, w in zip(sum1, w1, strict=True)]
            sum2 = [total + w * scale for total, w in zip(sum2, w2, strict=True)]
            bias_sum = [bias_sum[0] + b0, bias_sum[1] + b1, bias_sum[2] + b2]
            averaged += 1
    if averaged:
        w0 = [total / averaged for total in sum0]
        w1 = [total / averaged for total in sum1]
        w2 = [total / averaged for total in sum2]
        b0, b1, b2 = (total / averaged for total in bias_sum)
        scale = 1.0
    weights: dict[str, dict[str, Vector]] = {}
    for namespace, table, factor in zip(NAMESPACES, tables, emphasis, strict=True):
        kept: dict[str, Vector] = {}
        k = scale * factor  # the emphasis folds into the weights: the model file never sees it
        for key, j in table.items():
            vector = (_round(w0[j] * k), _round(w1[j] * k), _round(w2[j] * k))
            if max(map(abs, vector)) >= options.prune:
                kept[_key_text(namespace, key)] = vector
        if kept:
            weights[namespace] = kept
    mean = (b0 + b1 + b2) / 3
    return ModelData(
        format=FORMAT,
        version=VERSION,
        scheme=SCHEME,
        spec=dict(options.spec._asdict()),
        tiers=tuple(tier.value for tier in TIERS),
        bias=(_round(b0 - mean), _round(b1 - mean), _round(b2 - mean)),
        weights=weights,
        temperature=1.0,
        cost=cost_matrix(options.under_cost, options.fast_under_cost),
        training={},
    )


def _round(value: float) -> float:
    return round(value, _DECIMALS) + 0.0  # + 0.0: no "-0.0" in the file


def _key_text(namespace: str, key: Hashable) -> str:
    if isinstance(key, tuple):
        return PAIR_SEPARATORS[namespace].join(key)
    return str(key)


# --- cross-validation and calibration -----------------------------------------------------------


def kfold(examples: Sequence[Example], folds: int, seed: int) -> list[list[int]]:
    """``folds`` held-out index lists, stratified by expected tier, in a seeded order."""
    rng = random.Random(seed)
    held: list[list[int]] = [[] for _ in range(folds)]
    position = 0
    for tier in range(3):
        members = [i for i, e in enumerate(examples) if e.expected == tier]
        rng.shuffle(members)
        for i in members:
            held[position % folds].append(i)
            position += 1
    return [sorted(fold) for fold in held if fold]


def grouped(labels: Sequence[str]) -> list[list[int]]:
    """One held-out index list per distinct label (a file, a language...), in label order."""
    groups: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    return [groups[label] for label in sorted(groups)]


def out_of_fold(
    examples: Sequence[Example],
    held_out: Sequence[Sequence[int]],
    options: TrainOptions,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> list[Vector]:
    """Each example's raw scores from a model fitted without its fold."""
    scores: list[Vector | None] = [None] * len(examples)
    for number, fold in enumerate(held_out, start=1):
        if progress is not None:
            progress(number, len(held_out))
        out = set(fold)
        model = LearnedModel(fit([e for i, e in enumerate(examples) if i not in out], options))
        for i in fold:
            scores[i] = model.scores(examples[i].features)
    missing = [i for i, s in enumerate(scores) if s is None]
    if missing:
        raise ValueError(f"{len(missing)} rows are in no held-out fold")
    return [s for s in scores if s is not None]


def calibrate(scores: Sequence[Vector], examples: Sequence[Example]) -> float:
    """The temperature that maximises the likelihood of the expected tiers (golden section on
    its logarithm between 0.05 and 20)."""
    if not scores:
        return 1.0

    def loss(log_t: float) -> float:
        t = math.exp(log_t)
        total = 0.0
        for s, e in zip(scores, examples, strict=True):
            total -= math.log(max(softmax(s, t)[e.expected], 1e-300))
        return total

    low, high = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = loss(a), loss(b)
    for _ in range(48):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = loss(a)
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = loss(b)
    return round(math.exp((low + high) / 2), 4)


def decisions(
    scores: Sequence[Vector],
    examples: Sequence[Example],
    temperature: float,
    under_cost: float,
    fast_under_cost: float | None = None,
) -> list[Decision]:
    """The learned decisions for raw scores, as :class:`Decision` for the eval report."""
    cost = cost_matrix(under_cost, fast_under_cost)
    out = []
    for s, e in zip(scores, examples, strict=True):
        probabilities = softmax(s, temperature)
        chosen = least_cost(probabilities, cost)
        out.append(
            Decision(
                TIERS[chosen],
                DecisionSource.LEARNED,
                LEARNED_REASON,
                e.metadata,
                None,
                0.0,
                probabilities[chosen],
            )
        )
    return out


def features_digest(examples: Sequence[Example]) -> str:
    """A SHA-256 of the examples' labels and features, in order: recorded in the model file, so a
    test can tell when the shipped model no longer matches its data or the signals it reads
    (a lexicon change) and must be trained again."""
    digest = hashlib.sha256()
    for e in examples:
        keys = [
            [_key_text(namespace, key) for key in keys]
            for namespace, keys in zip(NAMESPACES, e.features, strict=True)
        ]
        digest.update(json.dumps([e.expected, e.acceptable, keys]).encode())
        digest.update(b"\n")
    return digest.hexdigest()


class Trained(NamedTuple):
    """A trained model and its cross-validated decisions."""

    model: ModelData
    cv_decisions: list[Decision]


def train(
    examples: Sequence[Example],
    options: TrainOptions,
    *,
    folds: int = 5,
    training: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Trained:
    """Cross-validate (``folds`` stratified folds), calibrate on the out-of-fold scores, fit on
    every example; ``training`` is recorded in the file with the options."""
    examples = with_targets(examples, options.soft)
    scores = out_of_fold(examples, kfold(examples, folds, options.seed), options, progress=progress)
    temperature = calibrate(scores, examples)
    cv = decisions(scores, examples, temperature, options.under_cost, options.fast_under_cost)
    model = fit(examples, options)
    record = {
        "rows": len(examples),
        "folds": folds,
        "features_digest": features_digest(examples),
        "options": {key: value for key, value in options._asdict().items() if key != "spec"},
        **(training or {}),
    }
    return Trained(msgspec.structs.replace(model, temperature=temperature, training=record), cv)


def cross_validated(
    examples: Sequence[Example],
    held_out: Sequence[Sequence[int]],
    options: TrainOptions,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> list[Decision]:
    """Out-of-fold decisions for ``held_out`` folds, calibrated on their own scores."""
    examples = with_targets(examples, options.soft)
    scores = out_of_fold(examples, held_out, options, progress=progress)
    temperature = calibrate(scores, examples)
    return decisions(scores, examples, temperature, options.under_cost, options.fast_under_cost)
