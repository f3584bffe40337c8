"""``[[embeddings]]`` and ``[timeouts] embeddings``: checked like tier endpoints, every message in
full; and the embedding endpoints in the fleet, its selection and its catalog."""

from __future__ import annotations

import random

import pytest

from octoroute.catalog import Catalog
from octoroute.config import ConfigError, parse_config
from octoroute.config.summary import summarize
from octoroute.enums import Pool
from octoroute.errors import InvalidRequest, ModelNotFound
from octoroute.fleet.selector import Fleet

BASE = """\
[server]
host = "127.0.0.1"
port = 3000
request_timeout_seconds = 20

[[models.fast]]
name = "llama3.1:8b"
base_url = "http://localhost:11434/v1"
max_tokens = 4096

[[models.balanced]]
name = "qwen2.5-coder:32b"
base_url = "http://localhost:11434/v1"
max_tokens = 8192

[[models.deep]]
name = "gpt-oss:120b"
base_url = "http://localhost:11434/v1"
max_tokens = 16384

[routing]
strategy = "rule"
"""

EMBEDDINGS = """
[[embeddings]]
name = "nomic-embed-text"
base_url = "http://gpu1:11434/v1/"
priority = 2

[[embeddings]]
name = "nomic-embed-text"
base_url = "http://gpu2:11434/v1"
weight = 3
api_key_env = "EMBED_KEY"

[[embeddings]]
name = "bge-m3"
base_url = "http://gpu3:8080/v1"
"""


def problems(extra: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + extra, environ={})
    return caught.value.problems


def test_no_embeddings_means_none_and_the_server_timeout() -> None:
    config = parse_config(BASE, environ={})

    assert config.embeddings == ()
    assert config.embedding_names() == ()
    assert config.timeout_for(Pool.EMBEDDINGS) == 20
    assert "embeddings" not in summarize(config)


def test_embedding_endpoints_are_read_in_file_order_with_tier_endpoint_defaults() -> None:
    config = parse_config(
        BASE + EMBEDDINGS + "\n[timeouts]\nembeddings = 45\n", environ={"EMBED_KEY": " k "}
    )

    first, second, third = config.embeddings
    assert (first.pool, first.index, first.key_path) == (Pool.EMBEDDINGS, 0, "embeddings[0]")
    assert (first.base_url, first.priority, first.weight) == ("http://gpu1:11434/v1", 2, 1.0)
    assert first.max_tokens is None
    assert (second.weight, second.api_key_env) == (3.0, "EMBED_KEY")
    assert second.api_key is not None
    assert second.api_key.reveal() == "k"
    assert third.name == "bge-m3"
    assert config.embedding_names() == ("nomic-embed-text", "bge-m3")
    assert config.all_endpoints()[-3:] == config.embeddings
    assert config.timeout_for(Pool.EMBEDDINGS) == 45


def test_every_problem_of_an_embedding_endpoint_is_reported_with_its_key_path() -> None:
    found = problems(
        """
[[embeddings]]
name = "auto"
base_url = "ftp://x"
max_tokens = 10
temperature = 0.5
wieght = 2
priority = -1
api_key_env = "NOT_SET_ANYWHERE"
"""
    )

    assert found == (
        "embeddings[0].name: \"auto\" is reserved: clients send 'auto', 'fast', 'balanced' or "
        "'deep' to ask for routing, so an endpoint with that name could not be chosen by name",
        'embeddings[0].base_url: must start with http:// or https://, got "ftp://x"',
        "embeddings[0].priority: must be an integer from 0 to 255, got -1",
        "embeddings[0].api_key_env: environment variable NOT_SET_ANYWHERE is not set",
        "embeddings[0].max_tokens: unknown key; an embedding model generates no tokens; remove it",
        "embeddings[0].temperature: unknown key; an embedding model does not sample; remove it",
        "embeddings[0].wieght: unknown key; did you mean 'weight'?",
    )


def test_an_embedding_model_may_not_share_a_chat_endpoint_name() -> None:
    found = problems('\n[[embeddings]]\nname = "gpt-oss:120b"\nbase_url = "http://h:1/v1"\n')

    assert found == (
        'embeddings[0].name: "gpt-oss:120b" is already a chat endpoint\'s name in [models]; an '
        "embedding model needs a name of its own, since requests choose a model by name",
    )


def test_embeddings_must_be_an_array_of_tables() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('embeddings = "nomic"\n' + BASE, environ={})
    assert caught.value.problems == (
        'embeddings: must be an array of tables ([[embeddings]]), got string "nomic"',
    )


def test_the_embeddings_timeout_is_bounded_like_the_tiers() -> None:
    assert problems("\n[timeouts]\nembeddings = 0\n") == (
        "timeouts.embeddings: must be a number of seconds from 1 to 300, got 0",
    )


def test_aliases_may_target_embedding_models_and_messages_name_them() -> None:
    config = parse_config(
        BASE + EMBEDDINGS + '\n[aliases]\n"text-embedding-3-*" = "bge-m3"\n',
        environ={"EMBED_KEY": "k"},
    )
    assert config.aliases[0].target == "bge-m3"

    with pytest.raises(ConfigError) as caught:
        parse_config(
            BASE + EMBEDDINGS + '\n[aliases]\n"text-embedding-3-*" = "bge-m4"\n',
            environ={"EMBED_KEY": "k"},
        )
    assert caught.value.problems == (
        "aliases.\"text-embedding-3-*\": \"bge-m4\" is not a tier ('fast', 'balanced', 'deep'), "
        "'auto', an endpoint name or an embedding model name; did you mean 'bge-m3'?",
    )


def test_check_summarises_the_embedding_models() -> None:
    config = parse_config(BASE + EMBEDDINGS, environ={"EMBED_KEY": "k"})

    lines = summarize(config).splitlines()
    start = lines.index("  embeddings (timeout 20 s, 2 models, 3 endpoints)")
    assert [line.split()[:2] for line in lines[start + 1 :]] == [
        ["[0]", "nomic-embed-text"],
        ["[1]", "nomic-embed-text"],
        ["[2]", "bge-m3"],
    ]


def test_the_fleet_selects_embedding_replicas_by_priority_and_skips_unhealthy_ones() -> None:
    config = parse_config(BASE + EMBEDDINGS, environ={"EMBED_KEY": "k"})
    fleet = Fleet(config, rng=random.Random(0))

    preferred, other, bge = fleet.embeddings
    assert [ep.id for ep in fleet.embeddings] == ["embeddings[0]", "embeddings[1]", "embeddings[2]"]
    assert fleet.all()[-3:] == fleet.embeddings
    assert fleet.by_name("nomic-embed-text") == (preferred, other)
    assert fleet.select(fleet.by_name("nomic-embed-text")) is preferred
    for _ in range(config.health.failure_threshold):
        fleet.mark_failure(preferred, "probe failed")
    assert not preferred.healthy
    assert fleet.select(fleet.by_name("nomic-embed-text")) is other
    assert all(bge not in fleet.tiers[tier] for tier in fleet.tiers)


def test_the_catalog_keeps_chat_and_embedding_models_apart() -> None:
    config = parse_config(
        BASE + EMBEDDINGS + '\n[aliases]\n"text-embedding-3-*" = "bge-m3"\n',
        environ={"EMBED_KEY": "k"},
    )
    fleet = Fleet(config)
    catalog = Catalog(
        fleet,
        config.endpoint_names(),
        [(a.name, a.target, a.pattern) for a in config.aliases],
        embedding_names=config.embedding_names(),
    )

    assert catalog.resolve_embedding("auto").name == "nomic-embed-text"
    aliased = catalog.resolve_embedding("text-embedding-3-small")
    assert (aliased.name, aliased.alias, aliased.embedding) == (
        "bge-m3",
        "text-embedding-3-*",
        True,
    )
    assert len(catalog.resolve_embedding("nomic-embed-text").endpoints) == 2
    with pytest.raises(InvalidRequest, match="'deep' is not an embedding model"):
        catalog.resolve_embedding("deep")
    with pytest.raises(ModelNotFound):
        catalog.resolve_embedding("nope")
    with pytest.raises(InvalidRequest, match="'bge-m3' is an embedding model"):
        catalog.resolve("bge-m3")
    assert catalog.resolve("gpt-oss:120b").name == "gpt-oss:120b"


def test_a_malformed_ipv6_host_in_an_embedding_base_url_is_a_problem_not_a_crash() -> None:
    assert problems('\n[[embeddings]]\nname = "e"\nbase_url = "http://[zz::1]:80/v1"\n') == (
        "embeddings[0].base_url: has an invalid host: an IPv6 address must be complete and in "
        'brackets, e.g. http://[::1]:8000/v1, got "http://[zz::1]:80/v1"',
    )
