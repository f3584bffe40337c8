"""``Catalog``: what ``model`` resolves to, aliases included, and the bodies built from it."""

from __future__ import annotations

import json

import pytest

from octoroute.catalog import PATTERN_CACHE_SIZE, Catalog
from octoroute.config import parse_config
from octoroute.enums import Tier
from octoroute.errors import ModelNotFound
from octoroute.fleet.selector import Fleet
from tests.unit.test_config_aliases import BASE

ALIASES = """
[aliases]
"gpt-4o*" = "deep"
"gpt-4o-mini" = "fast"
"gpt-*" = "balanced"
"claude-*" = "auto"
"local" = "qwen2.5-coder:32b"
"""


def catalog(aliases: str = ALIASES) -> Catalog:
    config = parse_config(BASE + aliases, environ={})
    return Catalog(
        Fleet(config),
        config.endpoint_names(),
        [(a.name, a.target, a.pattern) for a in config.aliases],
    )


def test_an_exact_alias_wins_over_a_pattern_that_also_matches() -> None:
    choice = catalog().resolve("gpt-4o-mini")

    assert (choice.tier, choice.name, choice.alias) == (Tier.FAST, None, "gpt-4o-mini")


def test_among_patterns_the_first_in_file_order_wins() -> None:
    first = catalog().resolve("gpt-4o-2024-08-06")
    later = catalog().resolve("gpt-3.5-turbo")

    assert (first.tier, first.alias) == (Tier.DEEP, "gpt-4o*")
    assert (later.tier, later.alias) == (Tier.BALANCED, "gpt-*")


def test_patterns_are_case_sensitive() -> None:
    with pytest.raises(ModelNotFound):
        catalog().resolve("GPT-4o")


def test_an_alias_to_auto_routes_and_one_to_an_endpoint_selects_it() -> None:
    routed = catalog().resolve("claude-3-5-sonnet")
    named = catalog().resolve("local")

    assert (routed.is_auto, routed.tier, routed.alias) == (True, None, "claude-*")
    assert (named.tier, named.name, named.alias) == (Tier.BALANCED, "qwen2.5-coder:32b", "local")
    assert [e.name for e in named.endpoints] == ["qwen2.5-coder:32b"]


def test_tiers_auto_and_endpoint_names_are_not_aliases() -> None:
    table = catalog('\n[aliases]\n"*" = "deep"\n')

    assert table.resolve("FAST").alias is None
    assert table.resolve("auto").is_auto
    assert table.resolve("llama3.1:8b").alias is None
    assert table.resolve("anything").alias == "*"


def test_the_pattern_cache_is_bounded_and_keeps_answering() -> None:
    table = catalog()
    for i in range(PATTERN_CACHE_SIZE + 50):
        assert table.resolve(f"gpt-{i}").alias == "gpt-*"
        with pytest.raises(ModelNotFound):
            table.resolve(f"unknown-{i}")

    assert len(table._matched) == PATTERN_CACHE_SIZE
    assert table.resolve("gpt-4o").alias == "gpt-4o*"
    assert "gpt-4o" in table._matched


def test_the_models_list_shows_exact_aliases_only() -> None:
    data = json.loads(catalog().models_body)["data"]

    assert [(m["id"], m["owned_by"]) for m in data] == [
        ("auto", "octoroute"),
        ("fast", "octoroute"),
        ("balanced", "octoroute"),
        ("deep", "octoroute"),
        ("llama3.1:8b", "user"),
        ("qwen2.5-coder:32b", "user"),
        ("gpt-oss:120b", "user"),
        ("gpt-4o-mini", "alias"),
        ("local", "alias"),
    ]


@pytest.mark.parametrize(
    ("model", "owned_by"),
    [
        ("auto", "octoroute"),
        ("Balanced", "octoroute"),
        ("gpt-oss:120b", "user"),
        ("local", "alias"),
        ("gpt-4o-2024-11-20", "alias"),
    ],
)
def test_a_model_object_keeps_the_id_as_sent(model: str, owned_by: str) -> None:
    assert json.loads(catalog().model_object(model)) == {
        "id": model,
        "object": "model",
        "created": 0,
        "owned_by": owned_by,
    }


def test_the_not_found_message_lists_exact_aliases() -> None:
    with pytest.raises(ModelNotFound) as caught:
        catalog().resolve("nope")

    assert caught.value.message == (
        "The model 'nope' does not exist on this router. Available models: 'auto', 'fast', "
        "'balanced', 'deep', 'llama3.1:8b', 'qwen2.5-coder:32b', 'gpt-oss:120b', 'gpt-4o-mini', "
        "'local'."
    )
