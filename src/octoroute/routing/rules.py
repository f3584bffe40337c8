"""The rule decision: metadata in, a tier (or no opinion) out, with a short machine-readable reason.

Two tables live here:

* **v1's table** (``refine=False``), used when the client *states* the metadata (legacy
  ``/chat`` with ``task_type``): reproduced exactly, boundaries included, so old clients get the
  tier they always got;
* **the refined table** (``refine=True``), used for inferred metadata (``model: auto``): it reads
  the signals of :mod:`octoroute.routing.metadata` and adds rules v1 could not express (a trivial
  lookup goes to fast, a one-line proof to deep, a stack trace to balanced). It returns ``None``
  when the evidence is weak, which is exactly when a hybrid router should ask its LLM.

``reason`` values form a closed set (:data:`REASONS`), so they are safe as a metric label.
"""

from __future__ import annotations

from typing import Final

import msgspec

from octoroute.enums import Importance, TaskType, Tier
from octoroute.routing import metadata as m
from octoroute.routing.metadata import RouteMetadata

CODE_LONG_TOKENS: Final = 1024
"""v1: code above this many tokens goes deep."""
CASUAL_MAX_TOKENS: Final = 256
MEDIUM_MIN_TOKENS: Final = 200
MEDIUM_MAX_TOKENS: Final = 2048
LONG_CONTEXT_TOKENS: Final = 8192
"""Refined: a coding conversation this long needs the large model's context handling."""

REASONS: Final = frozenset(
    {
        # v1's table
        "rule:casual_short", "rule:high_importance", "rule:deep_analysis", "rule:creative",
        "rule:code_long", "rule:code_short", "rule:question_medium",
        # refined table
        "signal:smalltalk", "signal:proof", "signal:code_hard", "signal:stack_trace",
        "signal:code", "signal:math_hard", "signal:concept", "signal:design", "signal:security",
        "signal:concurrency", "signal:creative_long", "signal:creative_short", "signal:creative",
        "signal:analysis_deep", "signal:analysis", "signal:brief", "signal:math_deep",
        "signal:math", "signal:summary", "signal:summary_short", "signal:translation",
        "signal:translation_short", "signal:explain", "signal:howto", "signal:technical", "signal:arithmetic", "signal:lookup",
        "rule:question_short", "rule:low_importance",
    }
)  # fmt: skip
"""Every ``reason`` :func:`decide_by_rules` can return."""

_UP: Final = {Tier.FAST: Tier.BALANCED, Tier.BALANCED: Tier.DEEP, Tier.DEEP: Tier.DEEP}
_DOWN: Final = {Tier.DEEP: Tier.BALANCED, Tier.BALANCED: Tier.FAST, Tier.FAST: Tier.FAST}


class RuleDecision(msgspec.Struct, frozen=True):
    """A tier chosen by a rule, and which rule (one of :data:`REASONS`)."""

    tier: Tier
    reason: str


def decide_by_rules(meta: RouteMetadata, *, refine: bool) -> RuleDecision | None:
    """The tier the rules choose for ``meta``, or ``None`` when no rule matches.

    ``refine=False`` applies v1's table to stated metadata, exactly; ``refine=True`` applies the
    signal-aware table to inferred metadata and then the importance adjustment.
    """
    if not refine:
        return _v1(meta)
    decision = _refined(meta)
    if meta.importance is Importance.NORMAL or m.SMALLTALK in meta.signals:
        return decision
    if meta.importance is Importance.HIGH:
        if decision is None:
            return RuleDecision(Tier.DEEP, "rule:high_importance")
        raised = _UP[decision.tier]
        return decision if raised is decision.tier else RuleDecision(raised, "rule:high_importance")
    if decision is None:
        return None
    lowered = _DOWN[decision.tier]
    return decision if lowered is decision.tier else RuleDecision(lowered, "rule:low_importance")


def _v1(meta: RouteMetadata) -> RuleDecision | None:
    """v1.0.0's four rules in order (``src/router/rule_based.rs``)."""
    task, tokens, importance = meta.task_type, meta.token_estimate, meta.importance
    if (
        task is TaskType.CASUAL_CHAT
        and tokens < CASUAL_MAX_TOKENS
        and importance is not Importance.HIGH
    ):
        return RuleDecision(Tier.FAST, "rule:casual_short")
    if importance is Importance.HIGH and task is not TaskType.CASUAL_CHAT:
        return RuleDecision(Tier.DEEP, "rule:high_importance")
    if task is TaskType.DEEP_ANALYSIS:
        return RuleDecision(Tier.DEEP, "rule:deep_analysis")
    if task is TaskType.CREATIVE_WRITING:
        return RuleDecision(Tier.DEEP, "rule:creative")
    if task is TaskType.CODE:
        if tokens > CODE_LONG_TOKENS:
            return RuleDecision(Tier.DEEP, "rule:code_long")
        return RuleDecision(Tier.BALANCED, "rule:code_short")
    if (
        task in (TaskType.QUESTION_ANSWER, TaskType.DOCUMENT_SUMMARY)
        and MEDIUM_MIN_TOKENS <= tokens < MEDIUM_MAX_TOKENS
    ):
        return RuleDecision(Tier.BALANCED, "rule:question_medium")
    return None


def _refined(meta: RouteMetadata) -> RuleDecision | None:
    """The signal table for inferred metadata; first match wins, ``None`` when unsure."""
    s = frozenset(meta.signals)
    short = m.SHORT_TURN in s
    if m.SMALLTALK in s:
        return _fast("signal:smalltalk")
    if m.PROOF in s:
        return _deep("signal:proof")
    if m.CODE in s:
        if m.CODE_HARD in s:
            return _deep("signal:code_hard")
        if m.LONG_TURN in s or meta.token_estimate > LONG_CONTEXT_TOKENS:
            return _deep("rule:code_long")
        if m.STACK_TRACE in s:
            return _balanced("signal:stack_trace")
        return _balanced("signal:code")
    if m.MATH_HARD in s:
        return _deep("signal:math_hard")
    for area in (m.DESIGN, m.SECURITY, m.CONCURRENCY):
        if area in s:
            return _balanced("signal:concept") if m.CONCEPT in s else _deep(f"signal:{area}")
    if m.CREATIVE_LONG in s:
        return _deep("signal:creative_long")
    if m.CREATIVE_SHORT in s:
        return _fast("signal:creative_short")
    if m.CREATIVE in s:
        return _balanced("signal:creative")
    brief = m.BRIEF in s and short
    if m.ANALYSIS in s:
        if m.DEPTH in s:
            return _deep("signal:analysis_deep")
        return _fast("signal:brief") if brief else _balanced("signal:analysis")
    if m.MATH in s:
        return _deep("signal:math_deep") if m.DEPTH in s else _balanced("signal:math")
    if m.SUMMARY in s:
        return _balanced("signal:summary") if m.PASTED_TEXT in s else _fast("signal:summary_short")
    if m.TRANSLATION in s:
        return _fast("signal:translation_short") if short else _balanced("signal:translation")
    if m.EXPLAIN in s:
        return _fast("signal:brief") if brief else _balanced("signal:explain")
    if m.HOWTO in s:
        return _balanced("signal:howto")
    if m.ARITHMETIC in s and short:
        return _fast("signal:arithmetic")
    # Length alone sends only plain questions and terse requests to fast: a 12-word imperative
    # ("Write a Go function that merges two sorted slices") is a task, and asking for depth or
    # research is a reason to stay off the small model.
    if short and m.TECHNICAL in s:
        return _balanced("signal:technical")
    if short and m.DEPTH not in s and (m.QUESTION in s or m.TERSE in s):
        return _fast("signal:lookup" if m.LOOKUP in s else "rule:question_short")
    return None


def _fast(reason: str) -> RuleDecision:
    return RuleDecision(Tier.FAST, reason)


def _balanced(reason: str) -> RuleDecision:
    return RuleDecision(Tier.BALANCED, reason)


def _deep(reason: str) -> RuleDecision:
    return RuleDecision(Tier.DEEP, reason)
