"""``[models]`` and ``[[embeddings]]``: the three tiers, the embedding models and their endpoints,
including the API keys they name.

Split from ``load`` because endpoints carry most of the rules (URL, bounds, reserved and
duplicate names, key resolution) while the other sections are a few bounded numbers each. An
embedding endpoint is checked by the same code as a tier endpoint, without the generation
defaults (``max_tokens``, ``temperature``) it has no use for.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Final

from octoroute.config import rules
from octoroute.config.reader import Table, quoted_list, show, suggest
from octoroute.config.schema import (
    DEFAULT_MAX_CONNECTIONS,
    EndpointConfig,
    ModelsConfig,
    Secret,
)
from octoroute.config.tls import check_tls
from octoroute.enums import TIER_POOLS, TIERS, Compat, Kind, Native, Pool, Tier

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

MAX_TOKENS_LIMIT: Final = 4_294_967_295
"""v1 sent ``max_tokens`` as a u32; a larger value is a typo, not a wish."""

MAX_CONNECTIONS_LIMIT: Final = 10_000
"""More connections than this to one server is a typo: no model server has that many slots."""

RESERVED_NAMES: Final = frozenset({"auto", *(tier.value for tier in TIERS)})
"""``model`` values clients use for routing; an endpoint with such a name could not be addressed."""

_ENDPOINT_HINTS: Final = {
    "api_key": "keys do not belong in the file; put the key in an environment variable and "
    "give that variable's name in api_key_env",
    "timeout": "per-tier request timeouts go in [timeouts] (fast, balanced, deep)",
    "model": "the model id sent upstream is 'name'",
    "url": "did you mean 'base_url'?",
}
_EMBEDDING_HINTS: Final = {
    **_ENDPOINT_HINTS,
    "timeout": "the embeddings timeout goes in [timeouts] embeddings",
    "max_tokens": "an embedding model generates no tokens; remove it",
    "temperature": "an embedding model does not sample; remove it",
    "context_window": "embedding requests are not placed by context window; remove it",
}

MAX_CONCURRENT_LIMIT: Final = 100_000
"""More parallel slots than this on one server is a typo."""


def check_models(root: Table, environ: Mapping[str, str]) -> ModelsConfig | None:
    """``[[models.<tier>]]``: every tier present with at least one valid endpoint."""
    table = root.table("models")
    if table is None:
        return None
    tiers: dict[Tier, tuple[EndpointConfig, ...]] = {}
    names: list[tuple[Pool, str, str]] = []
    for tier in TIERS:
        endpoints = _tier(table, tier, environ, names)
        if endpoints is not None:
            tiers[tier] = endpoints
    table.close()
    _check_names_across_tiers(table, names)
    if len(tiers) != len(TIERS):
        return None
    return ModelsConfig(fast=tiers[Tier.FAST], balanced=tiers[Tier.BALANCED], deep=tiers[Tier.DEEP])


def check_embeddings(
    root: Table, environ: Mapping[str, str], chat_names: Collection[str]
) -> tuple[EndpointConfig, ...] | None:
    """``[[embeddings]]``: optional; every endpoint valid and no name shared with a tier's.

    ``chat_names`` are the tier endpoints' names, so a model name means one thing.
    """
    if "embeddings" not in root.data:
        root.raw("embeddings", None)
        return ()
    tables = root.array_of_tables("embeddings", missing="", hints=_EMBEDDING_HINTS)
    if tables is None:
        return None
    endpoints: list[EndpointConfig] = []
    names: list[tuple[Pool, str, str]] = []
    for index, table in enumerate(tables):
        endpoint = _endpoint(table, Pool.EMBEDDINGS, index, environ, names)
        if endpoint is not None:
            endpoints.append(endpoint)
    ok = len(endpoints) == len(tables)
    for _, name, path in names:
        if name in chat_names:
            root.problems.add(
                f"{path}.name",
                f"{show(name)} is already a chat endpoint's name in [models]; an embedding model "
                "needs a name of its own, since requests choose a model by name",
            )
            ok = False
    return tuple(endpoints) if ok else None


def _tier(
    models: Table, tier: Tier, environ: Mapping[str, str], names: list[tuple[Pool, str, str]]
) -> tuple[EndpointConfig, ...] | None:
    """The endpoints of one tier; each valid name goes into ``names`` for the cross-tier check."""
    missing = f"required tier is missing; add at least one [[models.{tier}]] endpoint"
    tables = models.array_of_tables(tier.value, missing=missing, hints=_ENDPOINT_HINTS)
    if tables is None:
        return None
    if not tables:
        models.fail(tier.value, "needs at least one endpoint; the router may choose any tier")
        return None
    endpoints: list[EndpointConfig] = []
    for index, table in enumerate(tables):
        endpoint = _endpoint(table, TIER_POOLS[tier], index, environ, names)
        if endpoint is not None:
            endpoints.append(endpoint)
    return tuple(endpoints) if len(endpoints) == len(tables) else None


def _endpoint(
    table: Table,
    pool: Pool,
    index: int,
    environ: Mapping[str, str],
    names: list[tuple[Pool, str, str]],
) -> EndpointConfig | None:
    """One ``[[models.<tier>]]`` or ``[[embeddings]]`` table: an upstream serving one model."""
    name = _endpoint_name(table)
    if name is not None:
        names.append((pool, name, table.path))
    base_url = table.string("base_url")
    if base_url is not None and (problem := rules.base_url_problem(base_url)):
        table.fail("base_url", problem)
        base_url = None
    generates = pool is not Pool.EMBEDDINGS
    max_tokens = table.integer("max_tokens", low=1, high=MAX_TOKENS_LIMIT) if generates else None
    temperature = (
        table.number("temperature", 0.7, bounds="a number from 0 to 2", low=0, high=2)
        if generates
        else 0.7
    )
    weight = table.number("weight", 1.0, bounds="a positive number", low=0, low_open=True)
    priority = table.integer("priority", 1, low=0, high=255)
    key = _api_key(table, environ)
    max_connections = table.integer(
        "max_connections", DEFAULT_MAX_CONNECTIONS, low=1, high=MAX_CONNECTIONS_LIMIT
    )
    tls = check_tls(table, base_url)
    native = _words(table, "native", Native, "protocol")
    compat = _words(table, "compat", Compat, "compatibility rewrite")
    kind = table.choice("kind", Kind, Kind.OPENAI)
    max_concurrent = table.integer("max_concurrent", None, low=1, high=MAX_CONCURRENT_LIMIT)
    window = (
        table.integer("context_window", None, low=1, high=MAX_TOKENS_LIMIT) if generates else None
    )
    if window is not None and max_tokens is not None and max_tokens >= window:
        table.fail(
            "max_tokens",
            f"must be less than context_window ({window}), got {max_tokens}: a request that sets "
            "no limit of its own could never fit this server; lower max_tokens",
        )
        max_tokens = None
    table.close()
    optional_failed = ("max_concurrent" in table.data and max_concurrent is None) or (
        generates and "context_window" in table.data and window is None
    )
    if (
        name is None
        or base_url is None
        or (generates and max_tokens is None)
        or temperature is None
        or weight is None
        or priority is None
        or key is None
        or max_connections is None
        or tls is None
        or native is None
        or compat is None
        or kind is None
        or optional_failed
    ):
        return None
    return EndpointConfig(
        pool=pool,
        index=index,
        name=name,
        base_url=rules.normalize_base_url(base_url),
        max_tokens=max_tokens,
        temperature=temperature,
        weight=weight,
        priority=priority,
        api_key_env=key[0],
        api_key=key[1],
        max_connections=max_connections,
        tls_ca_file=tls.ca_file,
        tls_verify=tls.verify,
        tls_client_cert=tls.client_cert,
        tls_client_key=tls.client_key,
        native=native,
        compat=compat,
        kind=kind,
        max_concurrent=max_concurrent,
        context_window=window,
    )


def _words(table: Table, key: str, vocabulary: type[StrEnum], what: str) -> frozenset[str] | None:
    """A list of names from ``vocabulary`` (``native``, ``compat``): each known, none twice."""
    value = table.raw(key, [])
    allowed = quoted_list(member.value for member in vocabulary)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        table.fail(key, f"must be a list of {what} names ({allowed}), got {show(value)}")
        return None
    known = [member.value for member in vocabulary]
    for item in value:
        if item not in known:
            guess = suggest(item, known)
            hint = f"did you mean '{guess}'?" if guess else f"use {allowed}"
            table.fail(key, f"{show(item)} is not a {what} octoroute knows; {hint}")
            return None
    if len(set(value)) != len(value):
        table.fail(key, f"names a {what} twice: {show(value)}")
        return None
    return frozenset(value)


def _endpoint_name(table: Table) -> str | None:
    """The model id: non-empty, free of control characters, and not a word clients use to ask
    for routing."""
    name = table.string("name")
    if name is None:
        return None
    if not name.strip():
        table.fail("name", "must not be empty; it is the model id sent upstream")
        return None
    if problem := rules.control_character_problem(name):
        # The name is sent upstream, logged and used as a metric label value.
        table.fail("name", f"{problem}, got {show(name)}; it is the model id sent upstream")
        return None
    if name.casefold() in RESERVED_NAMES:
        table.fail(
            "name",
            f"{show(name)} is reserved: clients send 'auto', 'fast', 'balanced' or 'deep' to ask "
            "for routing, so an endpoint with that name could not be chosen by name",
        )
        return None
    return name


def _api_key(table: Table, environ: Mapping[str, str]) -> tuple[str | None, Secret | None] | None:
    """``api_key_env`` and the key it names, or ``None`` after a problem. The key is never shown."""
    found = rules.env_value(table, "api_key_env", environ)
    if found is None:
        return None if "api_key_env" in table.data else (None, None)
    return found[0], Secret(found[1])


def _check_names_across_tiers(models: Table, names: list[tuple[Pool, str, str]]) -> None:
    """Report a name used in a second tier, once per tier: a name must identify one tier."""
    owner: dict[str, tuple[Pool, str]] = {}
    reported: set[tuple[Pool, str]] = set()
    for tier, name, path in names:
        first_tier, first_path = owner.setdefault(name, (tier, path))
        if first_tier == tier or (tier, name) in reported:
            continue
        reported.add((tier, name))
        models.problems.add(
            f"{path}.name",
            f"{show(name)} is already used by {first_path}; a name may repeat within one tier "
            "(replicas) but not across tiers",
        )
