"""Training the learned router: deterministic, cross-validated, calibrated, and it learns."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from octoroute.enums import Tier
from octoroute.routing.evaluate import EvalRow, load_dataset, parse_rows, report
from octoroute.routing.learned import LearnedModel, softmax
from octoroute.routing.model_file import ModelData, encode_model, parse_model
from octoroute.routing.train import (
    Example,
    TrainOptions,
    calibrate,
    cross_validated,
    fit,
    grouped,
    kfold,
    out_of_fold,
    prepare,
    train,
    with_targets,
)
from octoroute.wire.messages import Message
from tests.learned_models import FUNCTIONS, GREETINGS, PROOFS

DATASET = Path(__file__).resolve().parents[1] / "data" / "routing_eval.jsonl"
QUICK = TrainOptions(epochs=4)


def row(text: str, expected: Tier, *acceptable: Tier, lang: str = "en") -> EvalRow:
    return EvalRow(
        (Message("user", text),),
        expected,
        acceptable or (expected,),
        fields={"lang": lang},
    )


def toy_rows() -> list[EvalRow]:
    """Three kinds of request, each phrased a few ways, in two 'languages'."""
    rows = [row(t, Tier.FAST, lang="a" if i % 2 else "b") for i, t in enumerate(GREETINGS)]
    rows += [
        row(t, Tier.BALANCED, Tier.FAST, Tier.BALANCED, lang="a" if i % 2 else "b")
        for i, t in enumerate(FUNCTIONS)
    ]
    rows += [row(t, Tier.DEEP, lang="a" if i % 2 else "b") for i, t in enumerate(PROOFS)]
    return rows


def test_training_is_deterministic_to_the_byte() -> None:
    examples = prepare(load_dataset(DATASET)[:150])
    first = encode_model(train(examples, QUICK, folds=3).model)
    second = encode_model(train(prepare(load_dataset(DATASET)[:150]), QUICK, folds=3).model)
    other_seed = encode_model(train(examples, QUICK._replace(seed=7), folds=3).model)
    assert first == second
    assert first != other_seed


def test_a_trained_model_learns_the_tiers_and_writes_a_valid_file() -> None:
    rows = toy_rows()
    trained = train(prepare(rows), TrainOptions(min_count=1), folds=3)
    data = parse_model(encode_model(trained.model, compress=False))
    model = LearnedModel(data)
    assert data.training["rows"] == len(rows)
    assert data.training["options"]["seed"] == 0
    for text, tier in (
        ("thanks, bye", Tier.FAST),
        ("write a function that sorts a list of dates", Tier.BALANCED),
        ("prove that there are infinitely many twin primes", Tier.DEEP),
    ):
        messages = [Message("user", text)]
        assert model.predict(messages, prepare([row(text, tier)])[0].metadata).tier is tier
    assert len(trained.cv_decisions) == len(rows)
    assert report(rows, trained.cv_decisions).acceptable_accuracy >= 0.8


def test_soft_targets_spread_over_the_acceptable_tiers() -> None:
    (example,) = prepare([row("x", Tier.BALANCED, Tier.FAST, Tier.BALANCED)])
    assert with_targets([example], 0.3)[0].target == pytest.approx((0.3, 0.7, 0.0))
    assert with_targets([example], 0.0)[0].target == (0.0, 1.0, 0.0)
    (single,) = prepare([row("x", Tier.DEEP)])
    assert with_targets([single], 0.3)[0].target == (0.0, 0.0, 1.0)


def test_kfold_is_stratified_seeded_and_covers_every_row_once() -> None:
    examples = prepare(toy_rows())
    folds = kfold(examples, 3, seed=1)
    assert sorted(i for fold in folds for i in fold) == list(range(len(examples)))
    for fold in folds:
        assert sorted(examples[i].expected for i in fold) == [0, 0, 1, 1, 2, 2]
    assert kfold(examples, 3, seed=1) == folds
    assert kfold(examples, 3, seed=2) != folds


def test_grouped_folds_hold_out_each_value() -> None:
    assert grouped(["b", "a", "b", "c"]) == [[1], [0, 2], [3]]


def test_cross_validation_never_decides_a_row_with_a_model_that_saw_it() -> None:
    rows = toy_rows()
    rows.append(row("zzyzx", Tier.DEEP))  # a word only this row has, labelled deep
    rows.append(row("zzyzx", Tier.FAST))  # and the same text labelled fast
    examples = with_targets(prepare(rows), 0.3)
    last = len(rows) - 1
    folds = [list(range(last - 1)), [last - 1], [last]]
    scores = out_of_fold(examples, folds, TrainOptions(min_count=1))
    # each twin is scored by a model that saw only the other, so it leans the wrong way
    assert scores[last - 1][0] > scores[last - 1][2]
    assert scores[last][2] > scores[last][0]
    assert len(cross_validated(examples, folds, TrainOptions(min_count=1))) == len(rows)


def test_calibration_finds_the_temperature_of_overconfident_scores() -> None:
    examples: list[Example] = prepare([row("x", Tier.FAST)] * 4 + [row("x", Tier.DEEP)])
    overconfident = [(6.0, 0.0, 0.0)] * 5  # says fast at 0.995, right 4 times in 5
    temperature = calibrate(overconfident, examples)
    assert temperature > 1
    assert softmax(overconfident[0], temperature)[0] == pytest.approx(0.8, abs=0.03)


def keys(data: ModelData) -> int:
    return sum(len(table) for table in data.weights.values())


def test_pruning_keeps_only_weights_that_matter() -> None:
    examples = with_targets(prepare(toy_rows()), 0.3)
    everything = fit(examples, TrainOptions(min_count=1, prune=0.0))
    pruned = fit(examples, TrainOptions(min_count=1, prune=0.05))
    assert 0 < keys(pruned) < keys(everything)
    for table in pruned.weights.values():
        for vector in table.values():
            assert max(map(abs, vector)) >= 0.05
            assert all(math.isfinite(w) and w == round(w, 5) for w in vector)


def test_a_row_with_unknown_fields_trains_like_any_other() -> None:
    (parsed,) = parse_rows(
        [
            '{"id": "x-1", "messages": [{"role": "user", "content": "hi"}], '
            '"expected_tier": "fast", "lang": "en", "category": "smalltalk", "rationale": "r"}'
        ]
    )
    assert prepare([parsed])[0].expected == 0
