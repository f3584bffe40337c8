"""``[auth]``: client keys, what each may use, its limits, and the paths left open.

A key is given as its SHA-256 (``key_sha256``, what ``octoroute key new`` prints) or as the name
of an environment variable holding it (``key_env``, hashed here and never kept), so the file
never holds a key. Everything a key's ``models`` names is checked against what the router serves,
and against the key's own ``tiers``, so a permission that could never allow anything is a
problem at load time, not a puzzling 403 later.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Final, Literal

from octoroute.config import rules
from octoroute.config.reader import Table, describe, quoted_list, show, suggest
from octoroute.config.schema import (
    DEFAULT_PUBLIC_PATHS,
    Alias,
    AuthConfig,
    ClientKeyConfig,
    EndpointConfig,
    ModelsConfig,
)
from octoroute.enums import POOLS, TIER_POOLS, TIERS, Pool

if TYPE_CHECKING:
    from collections.abc import Mapping

KEY_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A key's ``name``: it is a log field and a metric label value, so short and plain."""
KEY_NAME_RULE: Final = (
    "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
)
SHA256_HEX: Final = re.compile(r"[0-9a-fA-F]{64}")
MIN_KEY_CHARS: Final = 16
"""A key read from ``key_env`` shorter than this could be guessed; ``octoroute key new`` makes
51-character keys."""
LIMIT_MAX: Final = 1_000_000_000
"""Larger limits are typos (and would not fit the headers' integers comfortably)."""
AUTO: Final = "auto"
_LIMITS: Final = ("requests_per_minute", "tokens_per_minute", "max_concurrent")
_KEY_HINTS: Final = {
    "key": "the key itself does not belong in the file: give its SHA-256 in key_sha256 "
    "(octoroute key new prints it), or the name of an environment variable in key_env; the value "
    "is not shown",
    "api_key": "give the key's SHA-256 in key_sha256, or an environment variable in key_env",
    "rpm": "did you mean 'requests_per_minute'?",
    "tpm": "did you mean 'tokens_per_minute'?",
}


def key_name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a key's name, or ``None``."""
    return None if KEY_NAME.fullmatch(name) else KEY_NAME_RULE


def sha256_hex(key: str) -> str:
    """The SHA-256 of ``key`` (its UTF-8 bytes) as 64 lower-case hex digits."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def servable(
    models: ModelsConfig, embeddings: tuple[EndpointConfig, ...], aliases: tuple[Alias, ...]
) -> dict[str, frozenset[Pool]]:
    """Every name a request may put in ``model`` (aliases by their key, patterns included), and
    the pools a request naming it can be served by."""
    tiers = frozenset(TIER_POOLS.values())
    pools: dict[str, frozenset[Pool]] = {AUTO: tiers}
    pools.update({tier.value: frozenset({TIER_POOLS[tier]}) for tier in TIERS})
    for endpoint in (*models.all(), *embeddings):
        pools[endpoint.name] = frozenset({endpoint.pool})
    for alias in aliases:
        pools[alias.name] = pools[alias.target]
    return pools


def check_auth(
    root: Table, environ: Mapping[str, str], names: Mapping[str, frozenset[Pool]] | None
) -> AuthConfig | bool | None:
    """``[auth]``: ``False`` when absent (auth off), the checked section, or ``None`` after a
    problem. ``names`` is what ``models`` entries may name (``servable``); ``None`` when the
    fleet itself had problems (entries are then not checked against it)."""
    if "auth" not in root.data:
        root.raw("auth", None)
        return False
    table = root.table("auth")
    if table is None:
        return None
    public = _public_paths(table)
    keys = _keys(table, environ, names)
    table.close()
    if public is None or keys is None:
        return None
    return AuthConfig(keys=keys, public_paths=public)


def _public_paths(table: Table) -> tuple[str, ...] | None:
    value = table.raw("public_paths", list(DEFAULT_PUBLIC_PATHS))
    if not isinstance(value, list):
        table.fail("public_paths", f"must be an array of paths, got {describe(value)}")
        return None
    paths: list[str] = []
    ok = True
    for index, entry in enumerate(value):
        where = f"{table.key('public_paths')}[{index}]"
        if not isinstance(entry, str):
            table.problems.add(where, f"must be a string, got {describe(entry)}")
            ok = False
        elif not entry.startswith("/") or "*" in entry[:-1] or "?" in entry or "#" in entry:
            table.problems.add(
                where,
                f'must be a path such as "/health", or a prefix ending in * such as "/ui*", '
                f"got {show(entry)}",
            )
            ok = False
        elif entry in paths:
            table.problems.add(where, f"{show(entry)} is listed twice")
            ok = False
        else:
            paths.append(entry)
    return tuple(paths) if ok else None


def _keys(
    table: Table, environ: Mapping[str, str], names: Mapping[str, frozenset[Pool]] | None
) -> tuple[ClientKeyConfig, ...] | None:
    if "keys" not in table.data:
        table.raw("keys", None)
        table.fail(
            "keys",
            "[auth] needs at least one [[auth.keys]] entry (octoroute key new NAME prints one); "
            "without [auth] the router serves every request",
        )
        return None
    tables = table.array_of_tables("keys", missing="", hints=_KEY_HINTS)
    if tables is None:
        return None
    if not tables:
        table.fail("keys", "must hold at least one key ([[auth.keys]])")
        return None
    keys: list[ClientKeyConfig] = []
    ok = True
    seen_names: dict[str, str] = {}
    seen_hashes: dict[str, str] = {}
    for entry in tables:
        key = _key(entry, environ, names)
        if key is None:
            ok = False
            continue
        if key.name in seen_names:
            entry.fail("name", f"{show(key.name)} is already used by {seen_names[key.name]}")
            ok = False
            continue
        if key.key_sha256 in seen_hashes:
            entry.fail(
                "key_env" if key.key_env is not None else "key_sha256",
                f"is the same key as {seen_hashes[key.key_sha256]}; each key must be its own "
                "(octoroute key new makes one)",
            )
            ok = False
            continue
        seen_names[key.name] = entry.path
        seen_hashes[key.key_sha256] = entry.path
        keys.append(key)
    return tuple(keys) if ok else None


def _key(
    table: Table, environ: Mapping[str, str], names: Mapping[str, frozenset[Pool]] | None
) -> ClientKeyConfig | None:
    name = table.string("name")
    if name is not None and (problem := key_name_problem(name)):
        table.fail("name", f"{problem}, got {show(name)}")
        name = None
    digest = _digest(table, environ)
    tiers = _tiers(table)
    models = _models(table, names, tiers)
    admin = table.boolean("admin", False)
    limits = {
        limit: table.integer(limit, None, low=1, high=LIMIT_MAX)
        for limit in _LIMITS  # absent: unlimited
    }
    table.close()
    if (
        name is None
        or digest is None
        or tiers is None
        or models is None
        or admin is None
        or any(limits[limit] is None and limit in table.data for limit in _LIMITS)
    ):
        return None
    return ClientKeyConfig(
        name=name,
        key_sha256=digest[0],
        key_env=digest[1],
        tiers=tiers,
        models=None if models is True else models,
        admin=admin,
        requests_per_minute=limits["requests_per_minute"],
        tokens_per_minute=limits["tokens_per_minute"],
        max_concurrent=limits["max_concurrent"],
    )


def _digest(table: Table, environ: Mapping[str, str]) -> tuple[str, str | None] | None:
    """``(sha256 hex, key_env)`` from exactly one of ``key_sha256`` and ``key_env``."""
    if "key_sha256" in table.data and "key_env" in table.data:
        table.raw("key_sha256", None)
        table.raw("key_env", None)
        table.fail("key_env", "give key_sha256 or key_env, not both")
        return None
    given = table.string("key_sha256", None)
    if given is not None:
        if not SHA256_HEX.fullmatch(given):
            # Never echoed: a key pasted here instead of its hash must not reach a log.
            table.fail(
                "key_sha256",
                "must be the key's SHA-256 as 64 hex digits (octoroute key new prints it; or "
                "sha256sum of the key without a newline), not the key itself; the value is not "
                "shown",
            )
            return None
        return given.lower(), None
    if "key_env" in table.data:
        return _from_environment(table, environ)
    table.raw("key_env", None)
    if "key_sha256" not in table.data:
        table.fail(
            "key_sha256",
            "required: the key's SHA-256 (octoroute key new NAME prints it), or key_env naming "
            "an environment variable that holds the key",
        )
    return None


def _from_environment(table: Table, environ: Mapping[str, str]) -> tuple[str, str | None] | None:
    found = rules.env_value(table, "key_env", environ)
    if found is None:
        return None
    env_name, key = found
    if len(key) < MIN_KEY_CHARS:
        table.fail(
            "key_env",
            f"{rules.variable_wording(env_name)} holds a key of {len(key)} characters; a client "
            f"key needs at least {MIN_KEY_CHARS} (octoroute key new makes one)",
        )
        return None
    return sha256_hex(key), env_name


def _tiers(table: Table) -> frozenset[Pool] | None:
    value = table.raw("tiers", None)
    if value is None:
        return frozenset(POOLS)
    allowed = [pool.value for pool in POOLS]
    form = f"must be an array of {quoted_list(allowed)}"
    if not isinstance(value, list) or not value:
        got = "an empty array" if value == [] else describe(value)
        table.fail("tiers", f"{form}, got {got}; remove the key to allow every tier")
        return None
    pools: set[Pool] = set()
    ok = True
    for index, entry in enumerate(value):
        where = f"{table.key('tiers')}[{index}]"
        if not isinstance(entry, str) or entry not in allowed:
            guess = suggest(entry, allowed) if isinstance(entry, str) else None
            hint = f"; did you mean '{guess}'?" if guess else ""
            table.problems.add(
                where, f"must be one of {quoted_list(allowed)}, got {describe(entry)}{hint}"
            )
            ok = False
        elif Pool(entry) in pools:
            table.problems.add(where, f"{show(entry)} is listed twice")
            ok = False
        else:
            pools.add(Pool(entry))
    return frozenset(pools) if ok else None


def _models(
    table: Table, names: Mapping[str, frozenset[Pool]] | None, tiers: frozenset[Pool] | None
) -> frozenset[str] | Literal[True] | None:
    """The checked ``models`` list; ``True`` when absent (every model)."""
    value = table.raw("models", None)
    if value is None:
        return True
    if not isinstance(value, list) or not value:
        got = "an empty array" if value == [] else describe(value)
        table.fail(
            "models",
            f"must be an array of model names, got {got}; remove the key to allow every model",
        )
        return None
    allowed: set[str] = set()
    ok = True
    for index, entry in enumerate(value):
        where = f"{table.key('models')}[{index}]"
        problem = _model_problem(entry, names, tiers, allowed)
        if problem is not None:
            table.problems.add(where, problem)
            ok = False
        elif isinstance(entry, str):
            allowed.add(entry)
    return frozenset(allowed) if ok else None


def _model_problem(
    entry: object,
    names: Mapping[str, frozenset[Pool]] | None,
    tiers: frozenset[Pool] | None,
    seen: set[str],
) -> str | None:
    if not isinstance(entry, str):
        return f"must be a string, got {describe(entry)}"
    if entry in seen:
        return f"{show(entry)} is listed twice"
    if names is None:
        return None
    pools = names.get(entry)
    if pools is None:
        guess = suggest(entry, names)
        message = (
            f"{show(entry)} is not a model this router serves ('auto', a tier, an endpoint or "
            "embedding model name, or an [aliases] name)"
        )
        return f"{message}; did you mean '{guess}'?" if guess else message
    if tiers is not None and not pools & tiers:
        served = quoted_list(sorted(pool.value for pool in pools))
        return (
            f"{show(entry)} is served by {served}, which this key's tiers do not allow; add the "
            "tier to tiers or remove the model"
        )
    return None
