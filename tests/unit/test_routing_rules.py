"""The rule tables: v1's exactly (stated metadata) and the refined one (inferred metadata)."""

from __future__ import annotations

import pytest

from octoroute.enums import Importance, TaskType, Tier
from octoroute.routing import metadata as m
from octoroute.routing.metadata import RouteMetadata, infer_metadata
from octoroute.routing.rules import REASONS, RuleDecision, decide_by_rules
from octoroute.wire.messages import Message

N, H, L = Importance.NORMAL, Importance.HIGH, Importance.LOW


def stated(task: TaskType, tokens: int, importance: Importance = N) -> RuleDecision | None:
    return decide_by_rules(RouteMetadata(tokens, importance, task), refine=False)


def tier_of(decision: RuleDecision | None) -> Tier | None:
    return None if decision is None else decision.tier


@pytest.mark.parametrize(
    ("task", "tokens", "expected"),
    [
        (TaskType.CASUAL_CHAT, 0, Tier.FAST),
        (TaskType.CASUAL_CHAT, 255, Tier.FAST),
        (TaskType.CASUAL_CHAT, 256, None),
        (TaskType.CODE, 0, Tier.BALANCED),
        (TaskType.CODE, 1024, Tier.BALANCED),
        (TaskType.CODE, 1025, Tier.DEEP),
        (TaskType.QUESTION_ANSWER, 199, None),
        (TaskType.QUESTION_ANSWER, 200, Tier.BALANCED),
        (TaskType.QUESTION_ANSWER, 2047, Tier.BALANCED),
        (TaskType.QUESTION_ANSWER, 2048, None),
        (TaskType.DOCUMENT_SUMMARY, 199, None),
        (TaskType.DOCUMENT_SUMMARY, 200, Tier.BALANCED),
        (TaskType.DOCUMENT_SUMMARY, 2048, None),
        (TaskType.DEEP_ANALYSIS, 1, Tier.DEEP),
        (TaskType.CREATIVE_WRITING, 1, Tier.DEEP),
    ],
)
def test_v1_table_boundaries_are_exact(task: TaskType, tokens: int, expected: Tier | None) -> None:
    assert tier_of(stated(task, tokens)) is expected


def test_v1_high_importance_sends_everything_but_casual_deep() -> None:
    assert tier_of(stated(TaskType.QUESTION_ANSWER, 10, H)) is Tier.DEEP
    assert tier_of(stated(TaskType.CODE, 10, H)) is Tier.DEEP
    assert stated(TaskType.CASUAL_CHAT, 10, H) is None
    assert stated(TaskType.CASUAL_CHAT, 10, H) is None


def test_v1_low_importance_is_treated_like_normal() -> None:
    for task in TaskType:
        for tokens in (0, 199, 200, 255, 256, 1024, 1025, 2047, 2048):
            assert stated(task, tokens, L) == stated(task, tokens, N)


def test_v1_reasons_name_the_rule() -> None:
    assert stated(TaskType.CASUAL_CHAT, 1) == RuleDecision(Tier.FAST, "rule:casual_short")
    assert stated(TaskType.CODE, 2000) == RuleDecision(Tier.DEEP, "rule:code_long")
    assert stated(TaskType.CODE, 20) == RuleDecision(Tier.BALANCED, "rule:code_short")
    assert stated(TaskType.QUESTION_ANSWER, 500) == RuleDecision(
        Tier.BALANCED, "rule:question_medium"
    )


def refined(*signals: str, tokens: int = 10, importance: Importance = N) -> RuleDecision | None:
    meta = RouteMetadata(tokens, importance, TaskType.QUESTION_ANSWER, signals)
    return decide_by_rules(meta, refine=True)


@pytest.mark.parametrize(
    ("signals", "tier", "reason"),
    [
        ((m.SMALLTALK,), Tier.FAST, "signal:smalltalk"),
        ((m.PROOF, m.SHORT_TURN), Tier.DEEP, "signal:proof"),
        ((m.CODE,), Tier.BALANCED, "signal:code"),
        ((m.CODE, m.STACK_TRACE), Tier.BALANCED, "signal:stack_trace"),
        ((m.CODE, m.LONG_TURN), Tier.DEEP, "rule:code_long"),
        ((m.CODE, m.CODE_HARD), Tier.DEEP, "signal:code_hard"),
        ((m.MATH_HARD,), Tier.DEEP, "signal:math_hard"),
        ((m.DESIGN,), Tier.DEEP, "signal:design"),
        ((m.SECURITY,), Tier.DEEP, "signal:security"),
        ((m.CONCURRENCY, m.CONCEPT), Tier.BALANCED, "signal:concept"),
        ((m.CREATIVE_SHORT,), Tier.FAST, "signal:creative_short"),
        ((m.CREATIVE,), Tier.BALANCED, "signal:creative"),
        ((m.CREATIVE_LONG,), Tier.DEEP, "signal:creative_long"),
        ((m.ANALYSIS, m.DEPTH), Tier.DEEP, "signal:analysis_deep"),
        ((m.SUMMARY,), Tier.FAST, "signal:summary_short"),
        ((m.SUMMARY, m.PASTED_TEXT), Tier.BALANCED, "signal:summary"),
        ((m.LOOKUP, m.QUESTION, m.SHORT_TURN), Tier.FAST, "signal:lookup"),
        ((m.QUESTION, m.SHORT_TURN), Tier.FAST, "rule:question_short"),
        ((m.QUESTION, m.SHORT_TURN, m.TECHNICAL), Tier.BALANCED, "signal:technical"),
    ],
)
def test_refined_table(signals: tuple[str, ...], tier: Tier, reason: str) -> None:
    assert refined(*signals) == RuleDecision(tier, reason)


def test_refined_table_has_no_opinion_on_weak_evidence() -> None:
    assert refined() is None
    assert refined(m.LOOKUP) is None  # a long question with no task signal: ask the LLM
    assert refined(m.SHORT_TURN) is None  # a 12-word imperative is a task, not a lookup


def test_short_turn_asking_for_depth_is_not_sent_to_fast_on_length() -> None:
    assert refined(m.QUESTION, m.SHORT_TURN, m.DEPTH) is None


def test_high_importance_raises_one_tier_and_fills_gaps_with_deep() -> None:
    assert refined(m.LOOKUP, m.QUESTION, m.SHORT_TURN, importance=H) == RuleDecision(
        Tier.BALANCED, "rule:high_importance"
    )
    assert refined(m.CODE, importance=H) == RuleDecision(Tier.DEEP, "rule:high_importance")
    assert refined(m.PROOF, importance=H) == RuleDecision(Tier.DEEP, "signal:proof")
    assert refined(importance=H) == RuleDecision(Tier.DEEP, "rule:high_importance")


def test_low_importance_lowers_one_tier() -> None:
    assert refined(m.PROOF, importance=L) == RuleDecision(Tier.BALANCED, "rule:low_importance")
    assert refined(m.CODE, importance=L) == RuleDecision(Tier.FAST, "rule:low_importance")
    assert refined(importance=L) is None


def test_importance_never_moves_small_talk() -> None:
    for importance in Importance:
        assert refined(m.SMALLTALK, importance=importance) == RuleDecision(
            Tier.FAST, "signal:smalltalk"
        )


def test_every_reason_is_in_the_closed_vocabulary() -> None:
    texts = [
        "hi",
        "prove there are infinitely many primes p ≡ 1 mod 4",
        "Write a Python function that reverses a string.",
        "Design a globally distributed key-value store with tunable consistency.",
        "Write a haiku about rain",
        "What is the capital of Peru?",
        "Explain how vaccines work.",
        "Compare the New Deal and the Great Society in depth.",
    ]
    for text in texts:
        for importance in Importance:
            meta = infer_metadata([Message("user", text)], importance)
            for refine in (True, False):
                decision = decide_by_rules(meta, refine=refine)
                assert decision is None or decision.reason in REASONS
