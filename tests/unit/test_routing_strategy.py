"""The strategies: who decides, when the model is asked, and how failures fall back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from octoroute.config.schema import RoutingConfig
from octoroute.enums import DecisionSource, Importance, Strategy, TaskType, Tier
from octoroute.errors import RoutingError
from octoroute.routing.llm import ROUTER_PROMPT_SIGNATURE
from octoroute.routing.strategy import (
    DECISION_REASONS,
    FALLBACK_REASONS,
    Decision,
    Router,
    direct,
)
from octoroute.wire.messages import Message
from tests.learned_models import SURE_DEEP, SURE_FAST, UNSURE, tiny_model

N = Importance.NORMAL
RULE_MATCH = [Message("user", "What is the capital of Australia?")]
"""The refined rules send this to fast."""
NO_RULE = [
    Message(
        "user",
        "I have been thinking about what to make of the printing press and its long effects"
        " on European society, culture and the church over the centuries",
    )
]
"""Medium-length, no task signal: the refined rules have no opinion."""


class FakeModel:
    """A RouterModel that replays scripted answers (or raises) and records its prompts."""

    def __init__(self, *answers: str | Exception) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []

    async def ask(self, prompt: str) -> str:
        self.prompts.append(prompt)
        answer = self.answers.pop(0) if self.answers else "BALANCED"
        if isinstance(answer, Exception):
            raise answer
        return answer


def router(
    strategy: Strategy,
    model: FakeModel | None = None,
    *,
    default_tier: Tier = Tier.BALANCED,
    fallbacks: list[str] | None = None,
) -> Router:
    config = RoutingConfig(strategy=strategy, default_tier=default_tier)
    hook = None if fallbacks is None else fallbacks.append
    return Router(config, model, on_fallback=hook)


# --- rule ---------------------------------------------------------------------------------


async def test_rule_strategy_never_calls_the_model() -> None:
    model = FakeModel("DEEP")
    r = router(Strategy.RULE, model)
    await r.route(RULE_MATCH, N)
    await r.route(NO_RULE, N)
    assert model.prompts == []


async def test_rule_strategy_uses_the_rule_decision() -> None:
    decision = await router(Strategy.RULE).route(RULE_MATCH, N)
    assert decision.tier is Tier.FAST
    assert decision.source is DecisionSource.RULE
    assert decision.reason == "signal:lookup"
    assert decision.fallback is None


@pytest.mark.parametrize("default", list(Tier))
async def test_rule_strategy_honours_default_tier(default: Tier) -> None:
    decision = await router(Strategy.RULE, default_tier=default).route(NO_RULE, N)
    assert decision.tier is default
    assert decision.reason == "default_tier"
    assert decision.source is DecisionSource.RULE


async def test_stated_metadata_decides_with_v1_table_exactly() -> None:
    r = router(Strategy.RULE)
    hard = [Message("user", "prove there are infinitely many primes p ≡ 1 mod 4")]
    decision = await r.route(hard, N, stated_task=TaskType.CASUAL_CHAT)
    assert decision.tier is Tier.FAST
    assert decision.reason == "rule:casual_short"
    assert decision.metadata.task_type is TaskType.CASUAL_CHAT
    assert decision.metadata.signals == ()
    long_code = [Message("user", "x" * 4100)]
    decision = await r.route(long_code, N, stated_task=TaskType.CODE)
    assert (decision.tier, decision.reason) == (Tier.DEEP, "rule:code_long")
    decision = await r.route([Message("user", "hi")], N, stated_task=TaskType.QUESTION_ANSWER)
    assert decision.reason == "default_tier"


async def test_importance_reaches_the_metadata() -> None:
    decision = await router(Strategy.RULE).route(RULE_MATCH, Importance.HIGH)
    assert decision.metadata.importance is Importance.HIGH
    assert decision.tier is Tier.BALANCED


# --- learned and hybrid -------------------------------------------------------------------

SURE_TURN = [Message("user", "hello")]
"""The tiny model below is sure this is fast."""
UNSURE_TURN = [Message("user", "printing")]
"""The tiny model below hesitates on this (confidence about 0.3)."""


def learned_router(
    strategy: Strategy,
    model: FakeModel | None = None,
    *,
    threshold: float = 0.6,
    fallbacks: list[str] | None = None,
) -> Router:
    config = RoutingConfig(strategy=strategy, confidence_threshold=threshold)
    learned = tiny_model(words={"hello": SURE_FAST, "printing": UNSURE, "prove": SURE_DEEP})
    hook = None if fallbacks is None else fallbacks.append
    return Router(config, model, learned=learned, on_fallback=hook)


async def test_learned_strategy_decides_with_a_confidence_and_never_asks() -> None:
    model = FakeModel("DEEP")
    r = learned_router(Strategy.LEARNED, model)
    sure = await r.route(SURE_TURN, N)
    unsure = await r.route(UNSURE_TURN, N)
    assert model.prompts == []
    assert (sure.tier, sure.source, sure.reason) == (Tier.FAST, DecisionSource.LEARNED, "learned")
    assert sure.confidence is not None
    assert sure.confidence > 0.99
    assert unsure.source is DecisionSource.LEARNED
    assert unsure.confidence is not None
    assert unsure.confidence < 0.4
    assert sure.reason in DECISION_REASONS


async def test_learned_decisions_move_with_importance_except_small_talk() -> None:
    r = learned_router(Strategy.LEARNED)
    raised = await r.route([Message("user", "hello there printing press")], Importance.HIGH)
    assert (raised.tier, raised.reason) == (Tier.BALANCED, "learned:high_importance")
    assert raised.confidence is not None
    assert raised.confidence < 0.05
    lowered = await r.route([Message("user", "prove it")], Importance.LOW)
    assert (lowered.tier, lowered.reason) == (Tier.BALANCED, "learned:low_importance")
    assert lowered.confidence is not None
    assert lowered.confidence < 0.01
    greeting = await r.route([Message("user", "hello")], Importance.HIGH)
    assert "smalltalk" in greeting.metadata.signals
    assert (greeting.tier, greeting.reason) == (Tier.FAST, "learned")
    assert {raised.reason, lowered.reason} <= DECISION_REASONS


async def test_learned_strategy_keeps_v1s_table_for_stated_metadata() -> None:
    r = learned_router(Strategy.LEARNED)
    ruled = await r.route(SURE_TURN, N, stated_task=TaskType.CODE)
    assert (ruled.tier, ruled.source, ruled.reason) == (
        Tier.BALANCED,
        DecisionSource.RULE,
        "rule:code_short",
    )
    assert ruled.confidence is None
    unmatched = await r.route(SURE_TURN, N, stated_task=TaskType.QUESTION_ANSWER)
    assert (unmatched.source, unmatched.tier) == (DecisionSource.LEARNED, Tier.FAST)
    assert unmatched.metadata.task_type is TaskType.QUESTION_ANSWER


async def test_hybrid_skips_the_model_when_the_learned_model_is_sure() -> None:
    model = FakeModel("DEEP")
    decision = await learned_router(Strategy.HYBRID, model).route(SURE_TURN, N)
    assert model.prompts == []
    assert decision.source is DecisionSource.LEARNED
    assert decision.tier is Tier.FAST


async def test_hybrid_asks_the_model_exactly_when_the_learned_model_is_unsure() -> None:
    model = FakeModel("DEEP")
    decision = await learned_router(Strategy.HYBRID, model).route(UNSURE_TURN, N)
    assert len(model.prompts) == 1
    assert model.prompts[0].endswith(ROUTER_PROMPT_SIGNATURE)
    assert "printing" in model.prompts[0]
    assert decision == Decision(
        Tier.DEEP, DecisionSource.LLM, "llm", decision.metadata, None, decision.routing_ms
    )
    assert decision.confidence is None


@pytest.mark.parametrize(("threshold", "asks"), [(0.0, 0), (0.5, 1), (1.0, 2)])
async def test_hybrid_threshold_decides_how_often_the_model_is_asked(
    threshold: float, asks: int
) -> None:
    model = FakeModel()
    r = learned_router(Strategy.HYBRID, model, threshold=threshold)
    await r.route(SURE_TURN, N)
    await r.route(UNSURE_TURN, N)
    assert len(model.prompts) == asks


async def test_hybrid_falls_back_to_the_learned_decision_when_the_model_fails() -> None:
    fallbacks: list[str] = []
    model = FakeModel(RoutingError("slow", reason="timeout"))
    r = learned_router(Strategy.HYBRID, model, fallbacks=fallbacks)
    alone = await learned_router(Strategy.LEARNED).route(UNSURE_TURN, N)
    decision = await r.route(UNSURE_TURN, N)
    assert (decision.tier, decision.source, decision.reason, decision.confidence) == (
        alone.tier,
        DecisionSource.LEARNED,
        "learned",
        alone.confidence,
    )
    assert decision.fallback == "timeout"
    assert fallbacks == ["timeout"]


async def test_hybrid_keeps_v1s_table_then_the_model_for_stated_metadata() -> None:
    model = FakeModel("DEEP")
    r = learned_router(Strategy.HYBRID, model)
    ruled = await r.route(SURE_TURN, N, stated_task=TaskType.CODE)
    assert (ruled.source, ruled.reason, model.prompts) == (
        DecisionSource.RULE,
        "rule:code_short",
        [],
    )
    asked = await r.route(SURE_TURN, Importance.HIGH, stated_task=TaskType.CASUAL_CHAT)
    assert (asked.source, asked.tier, len(model.prompts)) == (DecisionSource.LLM, Tier.DEEP, 1)


async def test_the_strategies_that_need_it_load_the_shipped_model() -> None:
    for strategy in (Strategy.LEARNED, Strategy.HYBRID):
        decision = await router(strategy, FakeModel("DEEP")).route(
            [Message("user", "thanks, that's all!")], N
        )
        assert decision.source is DecisionSource.LEARNED
        assert decision.tier is Tier.FAST


# --- llm ----------------------------------------------------------------------------------


async def test_llm_strategy_asks_every_time() -> None:
    model = FakeModel("DEEP", "FAST")
    r = router(Strategy.LLM, model)
    first = await r.route(RULE_MATCH, N)
    second = await r.route(NO_RULE, N)
    assert len(model.prompts) == 2
    assert (first.tier, first.source, first.reason) == (Tier.DEEP, DecisionSource.LLM, "llm")
    assert second.tier is Tier.FAST


FAILURES = [
    (RoutingError("t", reason="timeout"), "timeout"),
    (RoutingError("t", reason="transport"), "transport"),
    (RoutingError("t", reason="unavailable"), "unavailable"),
    ("", "empty"),
    ("FAST " * 300, "oversize"),
    ("Sorry, I cannot help with that.", "refusal"),
    ("medium, probably", "unparseable"),
    (ValueError("bug in the adapter"), "internal"),
]


@pytest.mark.parametrize(("answer", "reason"), FAILURES)
async def test_llm_strategy_falls_back_to_rules_on_each_failure(
    answer: str | Exception, reason: str
) -> None:
    fallbacks: list[str] = []
    r = router(Strategy.LLM, FakeModel(answer), fallbacks=fallbacks)
    decision = await r.route(RULE_MATCH, N)
    assert decision.tier is Tier.FAST
    assert decision.source is DecisionSource.RULE
    assert decision.reason == "signal:lookup"
    assert decision.fallback == reason
    assert fallbacks == [reason]
    assert reason in FALLBACK_REASONS
    assert decision.reason in DECISION_REASONS


@pytest.mark.parametrize(("answer", "reason"), FAILURES)
async def test_llm_strategy_falls_back_to_default_tier_without_a_rule(
    answer: str | Exception, reason: str
) -> None:
    r = router(Strategy.LLM, FakeModel(answer), default_tier=Tier.FAST)
    decision = await r.route(NO_RULE, N)
    assert (decision.tier, decision.reason, decision.fallback) == (
        Tier.FAST,
        "default_tier",
        reason,
    )


async def test_llm_strategy_without_a_model_falls_back_as_unavailable() -> None:
    fallbacks: list[str] = []
    decision = await router(Strategy.LLM, None, fallbacks=fallbacks).route(RULE_MATCH, N)
    assert decision.fallback == "unavailable"
    assert fallbacks == ["unavailable"]


async def test_a_broken_fallback_hook_does_not_fail_routing() -> None:
    def hook(reason: str) -> None:
        raise RuntimeError(reason)

    config = RoutingConfig(strategy=Strategy.LLM)
    r = Router(config, FakeModel(RoutingError("x", reason="timeout")), on_fallback=hook)
    assert (await r.route(RULE_MATCH, N)).fallback == "timeout"


async def test_cancellation_is_not_swallowed() -> None:
    class Hanging:
        async def ask(self, prompt: str) -> str:
            await asyncio.Event().wait()
            return "FAST"

    r = Router(RoutingConfig(strategy=Strategy.LLM), Hanging())
    task = asyncio.ensure_future(r.route(RULE_MATCH, N))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- timing and direct decisions ----------------------------------------------------------


async def test_routing_ms_is_measured_with_the_clock() -> None:
    ticks: Iterator[float] = iter([10.0, 10.25])
    r = Router(RoutingConfig(strategy=Strategy.RULE), clock=lambda: next(ticks))
    assert (await r.route(RULE_MATCH, N)).routing_ms == pytest.approx(250.0)


async def test_routing_ms_is_real_and_small_by_default() -> None:
    decision = await router(Strategy.RULE).route(RULE_MATCH, N)
    assert 0.0 < decision.routing_ms < 1000.0


def test_direct_decisions_name_how_the_tier_was_chosen() -> None:
    by_tier = direct(Tier.DEEP)
    assert (by_tier.tier, by_tier.source, by_tier.reason) == (
        Tier.DEEP,
        DecisionSource.DIRECT,
        "explicit_tier",
    )
    assert direct(Tier.FAST, endpoint=True).reason == "explicit_endpoint"
    assert by_tier.routing_ms == 0.0
    assert by_tier.fallback is None


def test_router_reports_its_strategy() -> None:
    assert router(Strategy.HYBRID).strategy is Strategy.HYBRID
