"""Dataset rows with fields the replay does not read, per-row importance, and the per-field and
per-confidence breakdowns of ``octoroute eval``."""

from __future__ import annotations

import json

import pytest

from octoroute.config.schema import RoutingConfig
from octoroute.enums import DecisionSource, Importance, Strategy, TaskType, Tier
from octoroute.routing.evaluate import (
    DatasetError,
    breakdown,
    confidence_bands,
    format_breakdown,
    format_confidence,
    format_report,
    parse_rows,
    report,
    route_rows,
)
from octoroute.routing.metadata import RouteMetadata
from octoroute.routing.strategy import Decision, Router

META = RouteMetadata(0, Importance.NORMAL, TaskType.QUESTION_ANSWER)


def line(**fields: object) -> str:
    row: dict[str, object] = {
        "messages": [{"role": "user", "content": "What is the capital of Peru?"}],
        "expected_tier": "fast",
    }
    row.update(fields)
    return json.dumps(row)


def decided(tier: Tier, confidence: float | None = None) -> Decision:
    return Decision(tier, DecisionSource.LEARNED, "learned", META, None, 0.0, confidence)


def test_fields_the_replay_does_not_read_are_kept_as_labels() -> None:
    (row,) = parse_rows(
        [
            line(
                id="en-0007",
                lang="en",
                category="fact",
                rationale="one fact",
                n=3,
                ok=True,
                tags=["a", "b"],
                note="capital",
            )
        ],
        source="data/en.jsonl",
    )
    assert row.id == "en-0007"
    assert row.note == "capital"
    assert dict(row.fields) == {
        "id": "en-0007",
        "expected_tier": "fast",
        "lang": "en",
        "category": "fact",
        "rationale": "one fact",
        "n": "3",
        "ok": "true",
    }
    assert row.label("lang") == "en"
    assert row.label("ok") == "true"
    assert row.label("tags") == "(none)"  # not a scalar: no label
    assert row.label("missing") == "(none)"
    assert row.label("file") == "data/en.jsonl"


def test_an_id_may_be_a_number() -> None:
    (row,) = parse_rows([line(id=42)])
    assert row.id == "42"


@pytest.mark.parametrize(
    ("field", "suggestion"),
    [
        ("acceptible", "acceptable"),
        ("expected_teir", "expected_tier"),
        ("importanse", "importance"),
    ],
)
def test_a_misspelt_known_field_is_refused_not_ignored(field: str, suggestion: str) -> None:
    with pytest.raises(DatasetError) as caught:
        parse_rows([line(**{field: "fast"})], source="set.jsonl")
    assert str(caught.value) == (
        f"set.jsonl:1: unknown field {field!r}; did you mean {suggestion!r}?"
    )


def test_a_bad_importance_names_the_line() -> None:
    with pytest.raises(DatasetError, match=r"^set.jsonl:1: .*importance"):
        parse_rows([line(importance="urgent")], source="set.jsonl")


async def test_each_row_is_replayed_at_its_own_importance() -> None:
    rows = parse_rows([line(), line(importance="high"), line(importance="low")])
    decisions = await route_rows(Router(RoutingConfig(strategy=Strategy.RULE)), rows)
    assert [d.metadata.importance for d in decisions] == [
        Importance.NORMAL,
        Importance.HIGH,
        Importance.LOW,
    ]
    assert [d.tier for d in decisions] == [Tier.FAST, Tier.BALANCED, Tier.FAST]


def test_breakdown_per_field_value() -> None:
    rows = parse_rows(
        [
            line(lang="en", acceptable=["fast", "balanced"]),
            line(lang="en"),
            line(lang="de", expected_tier="deep"),
        ]
    )
    decisions = [decided(Tier.BALANCED), decided(Tier.FAST), decided(Tier.BALANCED)]
    stats = breakdown(rows, decisions, "lang")
    assert [(g.value, g.rows) for g in stats] == [("en", 2), ("de", 1)]
    en, de = stats
    assert (en.accuracy, en.acceptable_accuracy, en.under_routing, en.over_routing) == (
        0.5,
        1.0,
        0.0,
        0.0,
    )
    assert (de.acceptable_accuracy, de.under_routing) == (0.0, 1.0)
    table = format_breakdown("lang", stats)
    assert table.splitlines()[0].split() == ["lang", "rows", "accept", "exact", "under", "over"]
    assert table.splitlines()[1].split() == ["en", "2", "1.000", "0.500", "0.000", "0.000"]
    by_tier = breakdown(rows, decisions, "expected_tier")
    assert {g.value for g in by_tier} == {"fast", "deep"}


def test_confidence_bands_split_the_decisions_at_each_threshold() -> None:
    rows = parse_rows([line(), line(), line(), line(expected_tier="deep")])
    decisions = [
        decided(Tier.FAST, 0.95),
        decided(Tier.FAST, 0.55),
        decided(Tier.DEEP, 0.45),  # over-routed
        decided(Tier.BALANCED, 0.9),  # under-routed
    ]
    low, middle, high = confidence_bands(rows, decisions, (0.5, 0.6, 0.92))
    assert (low.unsure, low.unsure_acceptable) == (0.25, 0.0)
    assert (middle.unsure, middle.unsure_acceptable) == (0.5, 0.5)
    assert (middle.sure_acceptable, middle.sure_under) == (0.5, 0.5)
    assert (high.unsure, high.sure_acceptable, high.sure_under) == (0.75, 1.0, 0.0)
    assert "threshold" in format_confidence([low])
    (none,) = confidence_bands(rows, [decided(Tier.FAST)] * 4, (0.5,))  # no confidences
    assert none == (0.5, 0.0, 0.0, 0.0, 0.0)


def test_a_report_without_timing_leaves_the_latency_line_out() -> None:
    rows = parse_rows([line(id="x-1"), line()], source="a.jsonl")
    text = format_report(report(rows, [decided(Tier.DEEP), decided(Tier.FAST)]), latency=False)
    assert "decision latency" not in text
    assert "line 1 [x-1]" in text  # a miss shows the row's id
