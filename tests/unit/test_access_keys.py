"""Who sent a request: the key table, each header form, and the paths it guards."""

from __future__ import annotations

import hashlib

import pytest
from multidict import CIMultiDict

from octoroute.access.keys import ADMIN, ClientKey, KeyTable, Paths, digest
from octoroute.access.permissions import allowed_tiers, allows, cap, describe
from octoroute.config.schema import AuthConfig, ClientKeyConfig
from octoroute.enums import POOLS, Pool, Tier

ALICE = "sk-octo-alice-0123456789abcdef"
BOB = "sk-octo-bob-0123456789abcdef"


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def table(**auth: object) -> KeyTable:
    keys = (
        ClientKeyConfig(name="alice", key_sha256=sha(ALICE)),
        ClientKeyConfig(name="bob", key_sha256=sha(BOB), admin=True),
    )
    return KeyTable(AuthConfig(keys=keys, **auth))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {ALICE}"},
        {"authorization": f"bearer {ALICE}"},
        {"Authorization": f"BEARER   {ALICE}  "},
        {"x-api-key": ALICE},
        {"api-key": ALICE},
        {"Authorization": "Bearer sk-unknown-0123456789", "x-api-key": ALICE},
        {"Authorization": f"Basic {ALICE}", "api-key": ALICE},
    ],
)
def test_every_header_form_identifies_the_key(headers: dict[str, str]) -> None:
    key = table().identify(CIMultiDict(headers))

    assert isinstance(key, ClientKey)
    assert key.name == "alice"


def test_the_first_header_holding_a_known_key_wins() -> None:
    key = table().identify(CIMultiDict({"Authorization": f"Bearer {BOB}", "x-api-key": ALICE}))

    assert isinstance(key, ClientKey)
    assert key.name == "bob"


@pytest.mark.parametrize(
    ("headers", "refusal"),
    [
        ({}, "missing"),
        ({"Authorization": "Bearer "}, "missing"),
        ({"Authorization": f"Basic {ALICE}"}, "missing"),
        ({"x-api-key": "  "}, "missing"),
        ({"Authorization": "Bearer wrong"}, "invalid"),
        ({"x-api-key": ALICE + " "}, "alice"),
        ({"x-api-key": ALICE[:-1]}, "invalid"),
        ({"x-api-key": sha(ALICE)}, "invalid"),
    ],
)
def test_missing_and_unknown_keys_are_told_apart(headers: dict[str, str], refusal: str) -> None:
    found = table().identify(CIMultiDict(headers))

    assert (found.name if isinstance(found, ClientKey) else found) == refusal


def test_a_key_is_looked_up_by_its_sha256() -> None:
    assert digest(ALICE) == hashlib.sha256(ALICE.encode()).digest()
    assert digest("k\udcff") == hashlib.sha256(b"k\xff").digest()  # undecodable header bytes


def test_public_paths_are_exact_or_prefixes() -> None:
    public = table(public_paths=("/health", "/metrics", "/ui*")).public

    assert "/health" in public
    assert "/metrics" in public
    assert "/ui" in public
    assert "/ui/assets/app.js" in public
    assert "/health/" not in public
    assert "/v1/models" not in public


def test_the_default_public_path_is_health() -> None:
    public = table().public

    assert "/health" in public
    assert "/metrics" not in public


@pytest.mark.parametrize(
    "path", ["/metrics", "/models", "/route", "/admin", "/admin/reload", "/ui", "/ui/index.html"]
)
def test_operator_paths_are_admin_only(path: str) -> None:
    assert path in ADMIN


@pytest.mark.parametrize(
    "path", ["/health", "/v1/models", "/v1/chat/completions", "/api/tags", "/administrator"]
)
def test_client_paths_are_not(path: str) -> None:
    assert path not in ADMIN


def test_an_empty_path_set_holds_nothing() -> None:
    assert "/" not in Paths(())


def key(
    tiers: frozenset[Pool] = frozenset(POOLS), models: frozenset[str] | None = None
) -> ClientKey:
    return ClientKey(ClientKeyConfig(name="k", key_sha256="0" * 64, tiers=tiers, models=models))


def test_a_key_without_lists_may_use_everything() -> None:
    everything = key()

    assert allows(everything, "auto", None, None)
    assert allows(everything, "sim-deep", None, Pool.DEEP)
    assert allows(everything, "nomic", None, Pool.EMBEDDINGS)


def test_tiers_bound_the_pool_that_serves_a_request() -> None:
    small = key(tiers=frozenset({Pool.FAST, Pool.BALANCED}))

    assert allows(small, "fast", None, Pool.FAST)
    assert allows(small, "auto", None, None)
    assert not allows(small, "deep", None, Pool.DEEP)
    assert not allows(small, "sim-deep", None, Pool.DEEP)
    assert not allows(small, "nomic", None, Pool.EMBEDDINGS)


def test_models_bound_what_a_request_names_target_or_alias() -> None:
    named = key(models=frozenset({"sim-fast", "gpt-4o"}))

    assert allows(named, "sim-fast", None, Pool.FAST)
    assert allows(named, "deep", "gpt-4o", Pool.DEEP)
    assert not allows(named, "auto", None, None)
    assert not allows(named, "deep", None, Pool.DEEP)
    assert not allows(named, "auto", "claude-*", None)


def test_auto_needs_some_tier() -> None:
    assert not allows(key(tiers=frozenset({Pool.EMBEDDINGS})), "auto", None, None)


@pytest.mark.parametrize(
    ("decided", "allowed", "capped"),
    [
        (Tier.DEEP, (Tier.FAST, Tier.BALANCED), Tier.BALANCED),
        (Tier.DEEP, (Tier.FAST,), Tier.FAST),
        (Tier.FAST, (Tier.BALANCED, Tier.DEEP), Tier.BALANCED),
        (Tier.BALANCED, (Tier.FAST, Tier.DEEP), Tier.FAST),
        (Tier.BALANCED, (Tier.DEEP,), Tier.DEEP),
        (Tier.BALANCED, (Tier.FAST, Tier.BALANCED, Tier.DEEP), Tier.BALANCED),
        (Tier.DEEP, (), None),
    ],
)
def test_auto_is_capped_to_the_nearest_allowed_tier_the_cheaper_on_a_tie(
    decided: Tier, allowed: tuple[Tier, ...], capped: Tier | None
) -> None:
    assert cap(decided, allowed) is capped


def test_allowed_tiers_are_cheapest_first_and_say_what_a_403_says() -> None:
    small = key(tiers=frozenset({Pool.DEEP, Pool.FAST}), models=frozenset({"auto", "deep"}))

    assert allowed_tiers(small.pools) == small.tiers == (Tier.FAST, Tier.DEEP)
    assert describe(small) == "tiers fast, deep; models auto, deep"
    assert describe(key()) == "tiers fast, balanced, deep, embeddings"
