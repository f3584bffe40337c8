"""The client key's step in the pipeline, once the request's model is known: may it use that
model (403 ``model_not_allowed``), where ``auto`` may send it (``capped_by_key``), and is it
within its limits (429 ``rate_limit_exceeded``, with ``Retry-After`` and ``x-ratelimit-*``).

Every function takes the request's key (``api.auth.client_key``, looked up once per request)
and is a no-op without one (auth off, or a public path).

**Tokens a minute** are charged when the request is admitted, from the router's own estimate,
never corrected afterwards: the prompt as routing counts it (characters // 4 of the messages'
text, the count ``POST /route`` shows as ``token_estimate``) plus the most the answer may take,
which is the client's own limit when it set one (``max_tokens``, ``max_completion_tokens``,
``max_output_tokens``, Anthropic's ``max_tokens``, Ollama's ``options.num_predict``) and
otherwise the largest ``max_tokens`` configured for the endpoints that may serve it (the default
the router sends). An embeddings request is charged its body's size // 4 (it generates nothing).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

import msgspec

from octoroute.access.keys import ClientKey
from octoroute.access.limits import (
    ALLOWED,
    CONCURRENT,
    REQUESTS,
    TOKENS,
    Verdict,
    put_rate_headers,
    rate_headers,
)
from octoroute.access.permissions import allows, describe
from octoroute.enums import TIER_POOLS, TIERS, Pool, Tier
from octoroute.errors import KeyRateLimited, ModelNotAllowed
from octoroute.routing.metadata import estimate_tokens
from octoroute.routing.strategy import CAPPED_BY_KEY, Decision

if TYPE_CHECKING:
    from octoroute.catalog import ModelChoice
    from octoroute.fleet.endpoint import Endpoint
    from octoroute.runtime import Runtime
    from octoroute.wire.hints import RequestHints
    from octoroute.wire.messages import Message

MAX_SHOWN_MODEL_CHARS: Final = 100


def check_model(runtime: Runtime, key: ClientKey | None, choice: ModelChoice, model: str) -> None:
    """403 ``model_not_allowed`` when ``key`` may not use what ``model`` resolved to
    (``choice``)."""
    if key is None or key.unrestricted or (choice.is_auto and key.may_route and not choice.alias):
        return
    target, pool = _reached(choice)
    if allows(key, target, choice.alias, pool):
        return
    key.metrics.rejections["model_not_allowed"].inc()
    shown = model if len(model) <= MAX_SHOWN_MODEL_CHARS else model[:MAX_SHOWN_MODEL_CHARS] + "..."
    raise ModelNotAllowed(
        f"The key {key.name!r} may not use the model '{shown}'"
        + ("" if target == model else f" ({target})")
        + f"; it may use {describe(key)}."
    )


def listed_for(key: ClientKey | None) -> Callable[[ModelChoice], bool] | None:
    """What a model list shows ``key``: only the choices it may use (``None``: everything,
    auth off or a key that may use it all). A list of models a client may not send is a list
    of 403s."""
    if key is None or key.unrestricted:
        return None

    def may_use(choice: ModelChoice) -> bool:
        target, pool = _reached(choice)
        return allows(key, target, choice.alias, pool)

    return may_use


def _reached(choice: ModelChoice) -> tuple[str, Pool | None]:
    """What a choice reached, as a key's ``models`` names it, and the pool serving it
    (``None`` for ``auto``: routing picks, within the key's tiers)."""
    if choice.name is not None:
        pool = Pool.EMBEDDINGS if choice.embedding else choice.endpoints[0].pool
        return choice.name, pool
    if choice.tier is not None:
        return choice.tier.value, TIER_POOLS[choice.tier]
    return "auto", None


def tiers_for(key: ClientKey | None) -> Sequence[Tier]:
    """The tiers a routed request of this key may end up in (context and queue overflows
    included): the key's, else all."""
    return TIERS if key is None else key.tiers


def capped(key: ClientKey | None, choice: ModelChoice, decision: Decision) -> Decision:
    """``decision`` for ``auto``, moved to the nearest tier the key allows (reason
    ``capped_by_key``) when routing chose one it does not."""
    if key is None or not choice.is_auto:
        return decision
    tier = key.caps[decision.tier]
    if tier is None or tier is decision.tier:
        return decision  # no tier at all is refused by check_model before routing
    return msgspec.structs.replace(decision, tier=tier, reason=CAPPED_BY_KEY)


def needs_cost(key: ClientKey | None) -> bool:
    """Whether the key counts tokens (so the request's cost must be estimated)."""
    return key is not None and key.limits.tokens_per_minute is not None


def generation_cost(
    runtime: Runtime,
    choice: ModelChoice,
    decision: Decision,
    messages: Sequence[Message],
    hints: RequestHints,
) -> int:
    """The tokens charged to ``tokens_per_minute`` for a generation (see the module's doc)."""
    prompt = decision.metadata.token_estimate or estimate_tokens(messages)
    output = hints.output_tokens
    if output is None:
        if choice.name is None:
            output = runtime.output_ceiling[decision.tier]
        else:
            output = most_output(choice.endpoints)
    return prompt + output


def most_output(endpoints: Sequence[Endpoint]) -> int:
    """The largest ``max_tokens`` configured among ``endpoints`` (0: none)."""
    output = 0
    for endpoint in endpoints:  # a loop, not max() over a generator: this is per request
        most = endpoint.config.max_tokens
        if most is not None and most > output:
            output = most
    return output


FREE: Final = ALLOWED
"""What a request whose key counts nothing holds: no headers, nothing to give back."""


def charge(runtime: Runtime, key: ClientKey | None, cost: int) -> Verdict | None:
    """Admit the request within its key's limits, or raise 429 ``rate_limit_exceeded``.
    ``cost`` is its tokens (estimated only when :func:`needs_cost`; 0 otherwise). The granted
    verdict is the request's lease, given back by :func:`give_back` when it is over.

    ``None``: the key's counters are in the shared store, which takes a wait: call
    :func:`charge_shared` (so a check answered here costs no coroutine)."""
    if key is None:
        return FREE
    if not key.limited:
        key.metrics.count_request(1)
        return FREE
    limiter = runtime.limiter
    limits = key.limits
    lease: Verdict | None
    if limiter.local_only:
        lease = limiter.local.acquire(key.name, limits, cost)
        if lease.refused is None:  # _admitted, inlined for the usual case
            metrics = key.metrics
            metrics.count_request(1)
            if limits.tokens is not None:
                metrics.add_estimated_tokens(cost)
            return lease
    else:
        lease = limiter.acquire_now(key.name, limits, cost)
        if lease is None:
            return None
    return _admitted(key, lease, cost)


async def charge_shared(runtime: Runtime, key: ClientKey | None, cost: int) -> Verdict:
    """:func:`charge`, in the shared store (answered here when it cannot be reached)."""
    if key is None:
        return FREE
    return _admitted(key, await runtime.limiter.acquire_shared(key.name, key.limits, cost), cost)


def _admitted(key: ClientKey, lease: Verdict, cost: int) -> Verdict:
    """Count a checked request: admitted (its lease returned), or refused (429 raised)."""
    metrics = key.metrics
    if lease.refused is not None:
        metrics.rejections[lease.refused].inc()
        raise _limited(key, lease)
    metrics.count_request(1)
    if key.limits.tokens is not None:
        metrics.add_estimated_tokens(cost)
    return lease


add_limit_headers: Final = put_rate_headers
"""Add the ``x-ratelimit-*`` headers an admitted request's answer carries (none for
:data:`FREE`): the function itself, not a wrapper, as this runs on every limited request."""


def give_back(runtime: Runtime, lease: Verdict) -> None:
    """The request is over: its concurrency slot, if it holds one, is free again (once)."""
    if lease is not FREE:
        runtime.limiter.release(lease)


def _limited(key: ClientKey, outcome: Verdict) -> KeyRateLimited:
    """The 429 for a refused verdict, its message saying which limit and when to retry."""
    limits = key.limits
    retry = outcome.retry_after
    # Whole seconds, as Retry-After says it: retry-after-ms has the precise wait.
    after = "" if retry is None else f" Try again in {max(1, math.ceil(retry))} s."
    if outcome.refused == CONCURRENT:
        message = (
            f"Too many requests at once for the key {key.name!r}: {limits.max_concurrent} are "
            f"being answered (max_concurrent).{after}"
        )
    elif outcome.refused == REQUESTS:
        message = (
            f"Rate limit reached for the key {key.name!r} on requests per minute: limit "
            f"{limits.requests_per_minute}.{after}"
        )
    elif retry is None:
        message = (
            f"Request too large for the key {key.name!r}: it needs about {outcome.cost} tokens "
            f"(estimated prompt plus the most the answer may take), more than the key's "
            f"tokens_per_minute of {limits.tokens_per_minute}. Ask for fewer output tokens "
            "(max_tokens) or send a shorter prompt."
        )
    else:
        remaining = 0 if outcome.tokens is None else outcome.tokens.remaining
        message = (
            f"Rate limit reached for the key {key.name!r} on tokens per minute: limit "
            f"{limits.tokens_per_minute}, remaining {remaining}, this request needs about "
            f"{outcome.cost} (estimated prompt plus the most the answer may take).{after}"
        )
    headers = rate_headers(outcome)
    if retry is not None:
        headers += (("retry-after-ms", str(max(1, round(retry * 1000)))),)
    return KeyRateLimited(
        message,
        limit=outcome.refused or TOKENS,
        retry_after=retry,
        headers=headers,
    )
