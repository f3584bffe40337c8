"""The three routing strategies behind one ``Router.route`` call, and explicit-tier decisions.

* ``rule``: the rule table, else ``default_tier``. No model call, ever.
* ``llm``: the router model decides every request; the rules are only its fallback.
* ``hybrid``: the rules decide when one matches (the common case, microseconds); the router model
  is asked only when none does.

A routing failure never fails a request: when the model cannot answer (timeout, transport,
refusal, nonsense) the decision falls back to the rules, or to ``default_tier``, with
``fallback`` set to the :class:`~octoroute.errors.RoutingError` reason and the ``on_fallback``
hook called so the I/O layer can count and log it. The only thing ``route`` lets through is
cancellation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Final

import msgspec

from octoroute.config.schema import RoutingConfig
from octoroute.enums import DecisionSource, Importance, Strategy, TaskType, Tier
from octoroute.errors import RoutingError
from octoroute.routing.llm import RouterModel, build_router_prompt, parse_router_answer
from octoroute.routing.metadata import RouteMetadata, infer_metadata, stated_metadata
from octoroute.routing.rules import REASONS, decide_by_rules
from octoroute.wire.messages import Message

DEFAULT_REASON: Final = "default_tier"
LLM_REASON: Final = "llm"
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


class Decision(msgspec.Struct, frozen=True):
    """Where a request goes and why; what ``POST /route`` and the response headers report."""

    tier: Tier
    source: DecisionSource
    reason: str
    """A rule reason (``rules.REASONS``), ``llm``, ``default_tier`` or ``explicit_*``."""
    metadata: RouteMetadata
    fallback: str | None = None
    """The ``RoutingError`` reason when the router model failed and the rules decided."""
    routing_ms: float = 0.0


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


class Router:
    """Routes ``model: auto`` (and legacy ``/chat``) requests with the configured strategy."""

    def __init__(
        self,
        config: RoutingConfig,
        model: RouterModel | None = None,
        *,
        on_fallback: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._config = config
        self._model = model
        self._on_fallback = on_fallback
        self._clock = clock

    @property
    def strategy(self) -> Strategy:
        """The configured strategy."""
        return self._config.strategy

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
        if stated_task is not None:
            meta = stated_metadata(messages, importance, stated_task)
        else:
            meta = infer_metadata(messages, importance)
        rule = decide_by_rules(meta, refine=stated_task is None)
        strategy = self._config.strategy
        fallback: str | None = None
        if strategy is Strategy.LLM or (strategy is Strategy.HYBRID and rule is None):
            try:
                tier = await self._ask(messages, meta)
            except RoutingError as error:
                fallback = error.reason
                self._report(error.reason)
            else:
                return self._decision(tier, DecisionSource.LLM, LLM_REASON, meta, None, started)
        if rule is not None:
            return self._decision(
                rule.tier, DecisionSource.RULE, rule.reason, meta, fallback, started
            )
        return self._decision(
            self._config.default_tier, DecisionSource.RULE, DEFAULT_REASON, meta, fallback, started
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
