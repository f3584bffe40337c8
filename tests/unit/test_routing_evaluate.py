"""The eval harness, and the quality gate on the shipped dataset."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from bench.bench_rules import V1Reference

from octoroute.config.schema import RoutingConfig
from octoroute.enums import DecisionSource, Importance, Strategy, TaskType, Tier
from octoroute.routing.evaluate import (
    DatasetError,
    EvalRow,
    evaluate,
    format_report,
    load_dataset,
    parse_rows,
)
from octoroute.routing.metadata import RouteMetadata
from octoroute.routing.strategy import Decision, Router
from octoroute.wire.messages import Message

DATASET = Path(__file__).resolve().parents[1] / "data" / "routing_eval.jsonl"

# Measured with `python bench/bench_rules.py` (acceptable 1.000, under-routing 0.000 on 483
# rows); the gate leaves a small margin so that a deliberate trade-off is a visible edit here.
MIN_ACCEPTABLE_ACCURACY = 0.98
MAX_UNDER_ROUTING = 0.01


def row_line(content: str, expected: str, acceptable: str) -> str:
    return (
        f'{{"messages": [{{"role": "user", "content": "{content}"}}], '
        f'"expected_tier": "{expected}", "acceptable": {acceptable}}}'
    )


class Scripted:
    """Routes each row to a fixed tier, in order."""

    def __init__(self, *tiers: Tier) -> None:
        self.tiers = list(tiers)

    async def route(
        self,
        messages: Sequence[Message],
        importance: Importance,
        *,
        stated_task: TaskType | None = None,
    ) -> Decision:
        meta = RouteMetadata(0, importance, TaskType.QUESTION_ANSWER)
        tier = self.tiers.pop(0)
        return Decision(
            tier, DecisionSource.RULE, f"rule:{tier}", meta, None, 0.001 * len(self.tiers)
        )


# --- loading ------------------------------------------------------------------------------


def test_rows_parse_with_defaults_and_line_numbers() -> None:
    rows = parse_rows(
        [
            "",
            row_line("hi", "fast", '["fast"]'),
            '{"messages": [{"role": "user", "content": "x"}], "expected_tier": "deep"}',
        ]
    )
    assert [row.line for row in rows] == [2, 3]
    assert rows[0].acceptable == (Tier.FAST,)
    assert rows[1].acceptable == (Tier.DEEP,)


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("{not json", "malformed"),
        (row_line("hi", "medium", '["fast"]'), "expected_tier"),
        (row_line("hi", "fast", '["balanced"]'), "does not include"),
        ('{"messages": [], "expected_tier": "fast"}', "empty"),
        (
            '{"messages": [{"role": "user", "content": "x"}], "expected_tier": "fast", "acceptible": ["fast"]}',
            "acceptible",
        ),
        ('{"expected_tier": "fast"}', "messages"),
    ],
)
def test_bad_lines_are_reported_with_their_line_number(line: str, fragment: str) -> None:
    good = row_line("ok", "fast", '["fast"]')
    with pytest.raises(DatasetError) as caught:
        parse_rows([good, good, line], source="set.jsonl")
    assert str(caught.value).startswith("set.jsonl:3: ")
    assert fragment in str(caught.value)


def test_missing_file_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset(tmp_path / "nope.jsonl")


# --- metrics ------------------------------------------------------------------------------


async def test_report_metrics_on_scripted_decisions() -> None:
    rows = [
        EvalRow((Message("user", "a"),), Tier.FAST, (Tier.FAST, Tier.BALANCED), line=1),
        EvalRow((Message("user", "b"),), Tier.BALANCED, (Tier.BALANCED,), line=2),
        EvalRow((Message("user", "c"),), Tier.DEEP, (Tier.BALANCED, Tier.DEEP), line=3),
        EvalRow((Message("user", "d"),), Tier.BALANCED, (Tier.BALANCED, Tier.DEEP), line=4),
    ]
    report = await evaluate(Scripted(Tier.BALANCED, Tier.DEEP, Tier.FAST, Tier.BALANCED), rows)
    assert report.count == 4
    assert report.accuracy == 0.25
    assert report.acceptable_accuracy == 0.5
    assert report.under_routing == 0.25  # fast for {balanced, deep}
    assert report.over_routing == 0.25  # deep for {balanced}
    assert report.confusion["deep"]["fast"] == 1
    assert report.confusion["balanced"]["balanced"] == 1
    assert report.share == {"fast": 0.25, "balanced": 0.5, "deep": 0.25}
    assert [(miss.line, miss.acceptable) for miss in report.misses] == [
        (1, True),
        (2, False),
        (3, False),
    ]
    assert report.p50_us <= report.p99_us


async def test_empty_dataset_reports_zeroes() -> None:
    report = await evaluate(Scripted(), [])
    assert (report.count, report.acceptable_accuracy, report.p99_us) == (0, 0.0, 0.0)


async def test_format_report_is_a_readable_table() -> None:
    rows = [EvalRow((Message("user", "hello world"),), Tier.FAST, (Tier.FAST,), line=7)]
    text = format_report(await evaluate(Scripted(Tier.DEEP), rows))
    for fragment in (
        "acceptable accuracy",
        "under-routing",
        "p99",
        "expected \\ chosen",
        "line 7",
        "hello world",
    ):
        assert fragment in text


# --- the shipped dataset --------------------------------------------------------------------


def test_shipped_dataset_is_valid_and_large_enough() -> None:
    rows = load_dataset(DATASET)
    assert len(rows) >= 220
    assert {row.expected_tier for row in rows} == set(Tier)
    assert sum(len(row.messages) > 1 for row in rows) >= 20


async def test_rule_strategy_meets_the_quality_gate_on_the_dataset() -> None:
    report = await evaluate(Router(RoutingConfig(strategy=Strategy.RULE)), load_dataset(DATASET))
    assert report.acceptable_accuracy >= MIN_ACCEPTABLE_ACCURACY, format_report(report)
    assert report.under_routing <= MAX_UNDER_ROUTING, format_report(report)


async def test_v1_reference_is_far_behind_on_the_same_dataset() -> None:
    rows = load_dataset(DATASET)
    ours = await evaluate(Router(RoutingConfig(strategy=Strategy.RULE)), rows)
    v1 = await evaluate(V1Reference(), rows)
    assert v1.acceptable_accuracy < 0.75
    assert v1.under_routing > 0.25
    assert ours.acceptable_accuracy - v1.acceptable_accuracy > 0.2
