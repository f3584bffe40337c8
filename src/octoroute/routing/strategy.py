"""The routing strategies behind one ``Router.route`` call, and explicit-tier decisions.

* ``rule``: the rule table, else ``default_tier``. No model call, ever.
* ``learned``: the learned model (:mod:`~octoroute.routing.learned`) decides every request, with
  a calibrated confidence. No model call, ever.
* ``llm``: the router model decides every request; the rules are only its fallback.
* ``hybrid``: the learned model decides when it is sure (confidence at least
  ``confidence_threshold``, the common case, microseconds); the router model is asked only when
  it is not, and the learned decision stands if the router model cannot answer.

Metadata a client *stated* (legacy ``/chat`` with ``task_type``) keeps v1's behaviour in every
strategy: v1's table decides; when it has no rule, ``llm`` and ``hybrid`` ask the router model,
``learned`` asks the learned model, ``rule`` uses ``default_tier``.

A routing failure never fails a request: when the model cannot answer (timeout, transport,
refusal, nonsense) the decision falls back to the learned model or the rules, or to
``default_tier``, with ``fallback`` set to the :class:`~octoroute.errors.RoutingError` reason
and the ``on_fallback`` hook called so the I/O layer can count and log it. The only thing
``route`` lets through is cancellation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Final

import msgspec

from octoroute.config.schema import RoutingConfig
from octoroute.enums import TIERS, DecisionSource, Importance, Strategy, TaskType, Tier
from octoroute.errors import RoutingError
from octoroute.routing.learned import LearnedModel, Prediction, load_model
from octoroute.routing.llm import RouterModel, build_router_prompt, parse_router_answer
from octoroute.routing.metadata import (
    ACCEPTS_OFFER,
    SMALLTALK,
    RouteMetadata,
    infer_metadata,
    stated_metadata,
)
from octoroute.routing.rules import REASONS, decide_by_rules
from octoroute.wire.messages import Message

DEFAULT_REASON: Final = "default_tier"
LLM_REASON: Final = "llm"
LEARNED_REASON: Final = "learned"
LEARNED_HIGH: Final = "learned:high_importance"
"""The learned model chose a tier and ``high`` importance moved it up one."""
LEARNED_LOW: Final = "learned:low_importance"
"""The learned model chose a tier and ``low`` importance moved it down one."""
EXPLICIT_TIER: Final = "explicit_tier"
EXPLICIT_ENDPOINT: Final = "explicit_endpoint"
CONTEXT_OVERFLOW: Final = "context_overflow"
"""Placement sent a routed request up a tier: no instance of its own could hold its context."""
QUEUE_OVERFLOW: Final = "queue_overflow"
"""Placement sent a routed request up a tier: its own was full for ``overflow_after_ms``."""
CAPPED_BY_KEY: Final = "capped_by_key"
"""Routing chose a tier the client key may not use; the nearest it may (the cheaper of two as
near) serves it instead."""
DECISION_REASONS: Final = REASONS | {
    DEFAULT_REASON,
    LLM_REASON,
    LEARNED_REASON,
    LEARNED_HIGH,
    LEARNED_LOW,
    EXPLICIT_TIER,
    EXPLICIT_ENDPOINT,
    CONTEXT_OVERFLOW,
    QUEUE_OVERFLOW,
    CAPPED_BY_KEY,
}
"""Every :attr:`Decision.reason`: a closed set, safe to bind as metric label children."""
FALLBACK_REASONS: Final = frozenset(
    {
        "timeout",
        "transport",
        "unavailable",
        "empty",
        "oversize",
        "refusal",
        "unparseable",
        "internal",
    }
)
"""Every :attr:`Decision.fallback` (``RoutingError`` reasons, plus ``internal`` for adapter bugs)."""
_EMPTY_METADATA: Final = RouteMetadata(0, Importance.NORMAL, TaskType.QUESTION_ANSWER, ())
_UP: Final = {Tier.FAST: Tier.BALANCED, Tier.BALANCED: Tier.DEEP, Tier.DEEP: Tier.DEEP}
_DOWN: Final = {Tier.DEEP: Tier.BALANCED, Tier.BALANCED: Tier.FAST, Tier.FAST: Tier.FAST}
_INDEX: Final = {tier: index for index, tier in enumerate(TIERS)}


class Decision(msgspec.Struct, frozen=True):
    """Where a request goes and why; what ``POST /route`` and the response headers report."""

    tier: Tier
    source: DecisionSource
    reason: str
    """A rule reason (``rules.REASONS``), ``learned*``, ``llm``, ``default_tier`` or
    ``explicit_*``."""
    metadata: RouteMetadata
    fallback: str | None = None
    """The ``RoutingError`` reason when the router model failed and something else decided."""
    routing_ms: float = 0.0
    confidence: float | None = None
    """The learned model's calibrated probability that ``tier`` is the right tier; ``None``
    when no learned model decided."""


def direct(
    tier: Tier, *, endpoint: bool = False, metadata: RouteMetadata | None = None
) -> Decision:
    """The decision for a request that named its tier (or an endpoint of it) explicitly."""
    return Decision(
        tier=tier,
        source=DecisionSource.DIRECT,
        reason=EXPLICIT_ENDPOINT if endpoint else EXPLICIT_TIER,
        metadata=_EMPTY_METADATA if metadata is None else metadata,
    )


class _Learned(msgspec.Struct, frozen=True):
    """The learned model's decision before it becomes a :class:`Decision`."""

    tier: Tier
    reason: str
    confidence: float
    sure: float
    """The probability of the tier the model itself chose (before importance moved it)."""


class Router:
    """Routes ``model: auto`` (and legacy ``/chat``) requests with the configured strategy."""

    def __init__(
        self,
        config: RoutingConfig,
        model: RouterModel | None = None,
        *,
        learned: LearnedModel | None = None,
        on_fallback: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """``learned`` defaults to ``config.model_file`` (or the shipped model) for the
        strategies that use one; it raises
        :class:`~octoroute.routing.model_file.ModelFileError` if that file cannot be used."""
        self._config = config
        self._model = model
        if learned is None and config.strategy in (Strategy.LEARNED, Strategy.HYBRID):
            learned = load_model(config.model_file)
        self._learned = learned
        self._on_fallback = on_fallback
        self._clock = clock

    @property
    def strategy(self) -> Strategy:
        """The configured strategy."""
        return self._config.strategy

    @property
    def confidence_threshold(self) -> float:
        """Below this confidence ``hybrid`` asks the router model."""
        return self._config.confidence_threshold

    def learned_view(self, messages: Sequence[Message], meta: RouteMetadata) -> Prediction | None:
        """What the learned model makes of ``messages`` (its tier, confidence and per-tier
        probabilities), for ``POST /route``'s explanation; ``None`` for a strategy that loads no
        learned model (``rule``, ``llm``)."""
        if self._learned is None:
            return None
        return self._learned.predict(messages, meta)

    async def route(
        self,
        messages: Sequence[Message],
        importance: Importance,
        *,
        stated_task: TaskType | None = None,
    ) -> Decision:
        """Decide the tier for ``messages``; never raises (except on cancellation).

        With ``stated_task`` (legacy ``/chat``) the stated metadata is used as given and v1's
        rule table decides exactly; otherwise the metadata is inferred and refined.
        """
        started = self._clock()
        strategy = self._config.strategy
        if stated_task is not None:
            return await self._stated(messages, importance, stated_task, started)
        meta = infer_metadata(messages, importance)
        if strategy is Strategy.RULE:
            return self._by_rules(meta, None, started)
        if strategy is Strategy.LLM:
            return await self._by_model(messages, meta, started, otherwise=None)
        learned = self._decide_learned(messages, meta)
        if strategy is Strategy.HYBRID and learned.sure < self._config.confidence_threshold:
            return await self._by_model(messages, meta, started, otherwise=learned)
        return self._from_learned(learned, meta, None, started)

    async def _stated(
        self,
        messages: Sequence[Message],
        importance: Importance,
        stated_task: TaskType,
        started: float,
    ) -> Decision:
        """v1's table on stated metadata; without a rule, the strategy's own decider."""
        meta = stated_metadata(messages, importance, stated_task)
        rule = decide_by_rules(meta, refine=False)
        if rule is not None and self._config.strategy is not Strategy.LLM:
            return self._decision(rule.tier, DecisionSource.RULE, rule.reason, meta, None, started)
        if self._config.strategy in (Strategy.LLM, Strategy.HYBRID):
            return await self._by_model(messages, meta, started, otherwise=None, refine=False)
        if self._config.strategy is Strategy.LEARNED:
            learned = self._decide_learned(messages, infer_metadata(messages, importance))
            return self._from_learned(learned, meta, None, started)
        return self._by_rules(meta, None, started, refine=False)

    async def _by_model(
        self,
        messages: Sequence[Message],
        meta: RouteMetadata,
        started: float,
        *,
        otherwise: _Learned | None,
        refine: bool = True,
    ) -> Decision:
        """The router model's decision; if it cannot answer, ``otherwise`` or the rules."""
        try:
            tier = await self._ask(messages, meta)
        except RoutingError as error:
            self._report(error.reason)
            if otherwise is not None:
                return self._from_learned(otherwise, meta, error.reason, started)
            return self._by_rules(meta, error.reason, started, refine=refine)
        return self._decision(tier, DecisionSource.LLM, LLM_REASON, meta, None, started)

    def _by_rules(
        self, meta: RouteMetadata, fallback: str | None, started: float, *, refine: bool = True
    ) -> Decision:
        """The rule table's decision (v1's for stated metadata), else ``default_tier``."""
        rule = decide_by_rules(meta, refine=refine)
        if rule is not None:
            return self._decision(
                rule.tier, DecisionSource.RULE, rule.reason, meta, fallback, started
            )
        return self._decision(
            self._config.default_tier, DecisionSource.RULE, DEFAULT_REASON, meta, fallback, started
        )

    def _decide_learned(self, messages: Sequence[Message], meta: RouteMetadata) -> _Learned:
        """The learned model's tier, then the importance adjustment the rules also make; unlike
        the rules, it also moves a turn that accepts an offer while reading as small talk
        ("sure, cool"), since its tier is the offered work's."""
        assert self._learned is not None  # loaded in __init__ for the strategies that use it
        prediction = self._learned.predict(messages, meta)
        tier, reason = prediction.tier, LEARNED_REASON
        if meta.importance is not Importance.NORMAL and (
            SMALLTALK not in meta.signals or ACCEPTS_OFFER in meta.signals
        ):
            moved = (_UP if meta.importance is Importance.HIGH else _DOWN)[tier]
            if moved is not tier:
                tier = moved
                reason = LEARNED_HIGH if meta.importance is Importance.HIGH else LEARNED_LOW
        return _Learned(tier, reason, prediction.probabilities[_INDEX[tier]], prediction.confidence)

    def _from_learned(
        self, learned: _Learned, meta: RouteMetadata, fallback: str | None, started: float
    ) -> Decision:
        elapsed = (self._clock() - started) * 1000.0
        return Decision(
            learned.tier,
            DecisionSource.LEARNED,
            learned.reason,
            meta,
            fallback,
            max(0.0, elapsed),
            learned.confidence,
        )

    async def _ask(self, messages: Sequence[Message], meta: RouteMetadata) -> Tier:
        if self._model is None:
            raise RoutingError("no router model is configured", reason="unavailable")
        prompt = build_router_prompt(messages, meta)
        try:
            answer = await self._model.ask(prompt)
        except RoutingError:
            raise
        except Exception as error:  # a bug in the model adapter must not fail the request
            raise RoutingError(f"router model failed: {error!r}", reason="internal") from error
        return parse_router_answer(answer)

    def _report(self, reason: str) -> None:
        if self._on_fallback is None:
            return
        try:
            self._on_fallback(reason)
        except Exception:  # a broken metrics hook must not fail routing
            return

    def _decision(
        self,
        tier: Tier,
        source: DecisionSource,
        reason: str,
        meta: RouteMetadata,
        fallback: str | None,
        started: float,
    ) -> Decision:
        elapsed = (self._clock() - started) * 1000.0
        return Decision(tier, source, reason, meta, fallback, max(0.0, elapsed))
