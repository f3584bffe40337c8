"""``[aliases]``: names and patterns checked against the targets they name, every message in full."""

from __future__ import annotations

import pytest

from octoroute.config import ConfigError, parse_config
from octoroute.config.aliases import Targets
from octoroute.config.schema import Alias

BASE = """\
[server]
host = "127.0.0.1"
port = 3000

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

TARGETS = "a tier ('fast', 'balanced', 'deep'), 'auto' or an endpoint name"


def problems(aliases: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + "\n[aliases]\n" + aliases, environ={})
    return caught.value.problems


def test_no_aliases_table_means_no_aliases() -> None:
    assert parse_config(BASE, environ={}).aliases == ()


def test_aliases_keep_file_order_and_know_which_are_patterns() -> None:
    config = parse_config(
        BASE
        + '\n[aliases]\n"gpt-4o*" = "deep"\n"gpt-4o-mini" = "fast"\n"claude-*" = "auto"\n'
        + '"local" = "qwen2.5-coder:32b"\n"o[13]-?" = "balanced"\n',
        environ={},
    )

    assert config.aliases == (
        Alias(name="gpt-4o*", target="deep", pattern=True),
        Alias(name="gpt-4o-mini", target="fast", pattern=False),
        Alias(name="claude-*", target="auto", pattern=True),
        Alias(name="local", target="qwen2.5-coder:32b", pattern=False),
        Alias(name="o[13]-?", target="balanced", pattern=True),
    )


def test_an_unknown_target_gets_a_did_you_mean() -> None:
    assert problems('"gpt-4o*" = "deeep"\n"x" = "llama3.1:8" \n') == (
        f'aliases."gpt-4o*": "deeep" is not {TARGETS}; did you mean \'deep\'?',
        f'aliases."x": "llama3.1:8" is not {TARGETS}; did you mean \'llama3.1:8b\'?',
    )


def test_a_target_in_the_wrong_case_is_refused_with_its_spelling() -> None:
    assert problems('"gpt-4o" = "Fast"\n') == (
        f'aliases."gpt-4o": "Fast" is not {TARGETS}; did you mean \'fast\'?',
    )


def test_a_target_far_from_anything_is_refused_without_a_guess() -> None:
    assert problems('"gpt-4o" = "zzzzzzzz"\n') == (
        f'aliases."gpt-4o": "zzzzzzzz" is not {TARGETS}',
    )


def test_an_alias_of_an_alias_is_refused() -> None:
    assert problems('"gpt-4o-mini" = "fast"\n"mini" = "gpt-4o-mini"\n') == (
        f'aliases."mini": "gpt-4o-mini" is not {TARGETS}; an alias must name its target, '
        "not another alias",
    )


def test_a_target_that_is_not_a_string_is_refused() -> None:
    assert problems('"gpt-4o" = 3\n"o1" = ["deep"]\n') == (
        f'aliases."gpt-4o": must be a string naming {TARGETS}, got integer 3',
        f'aliases."o1": must be a string naming {TARGETS}, got an array',
    )


def test_an_empty_name_is_refused() -> None:
    assert problems('"" = "fast"\n') == ('aliases."": an alias name must not be empty',)


@pytest.mark.parametrize(
    ("name", "meaning"),
    [("fast", "the fast tier"), ("Deep", "the deep tier"), ("AUTO", "routing")],
)
def test_a_routing_word_cannot_be_an_alias(name: str, meaning: str) -> None:
    word = name.casefold()
    assert problems(f'"{name}" = "balanced"\n') == (
        f'aliases."{name}": "{name}" is a routing name; an alias cannot redefine it (requests '
        f"for '{word}' always mean {meaning})",
    )


def test_an_endpoint_name_cannot_be_an_alias() -> None:
    assert problems('"llama3.1:8b" = "deep"\n') == (
        'aliases."llama3.1:8b": "llama3.1:8b" is already an endpoint name; requests for it '
        "reach it directly, so this alias would never be used",
    )


def test_every_problem_is_reported_at_once_with_other_sections() -> None:
    text = BASE.replace("port = 3000", "port = -1") + '\n[aliases]\n"a" = "x"\n"fast" = "deep"\n'

    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ={})

    assert caught.value.problems == (
        "server.port: must be an integer from 0 to 65535, got -1",
        f'aliases."a": "x" is not {TARGETS}',
        'aliases."fast": "fast" is a routing name; an alias cannot redefine it (requests for '
        "'fast' always mean the fast tier)",
    )


def test_a_problem_in_the_fleet_leaves_aliases_read_and_checked_as_far_as_they_can_be() -> None:
    broken = BASE.replace("max_tokens = 16384", "max_tokens = 0")
    aliases = (
        '"gpt-4o" = "deep"\n"mine" = "gpt-oss:120b"\n"maybe" = "not-yet-known"\n'
        '"fast" = "deep"\n"again" = "gpt-4o"\n"" = "deep"\n"n" = 3\n'
    )

    with pytest.raises(ConfigError) as caught:
        parse_config(broken + "\n[aliases]\n" + aliases, environ={})

    # An alias naming anything but a tier or "auto" is left unjudged: the endpoint names are
    # not known while [models] has a problem.
    assert caught.value.problems == (
        "models.deep[0].max_tokens: must be an integer from 1 to 4294967295, got 0",
        'aliases."fast": "fast" is a routing name; an alias cannot redefine it (requests for '
        "'fast' always mean the fast tier)",
        f'aliases."again": "gpt-4o" is not {TARGETS}; an alias must name its target, not '
        "another alias",
        'aliases."": an alias name must not be empty',
        f'aliases."n": must be a string naming {TARGETS}, got integer 3',
    )


def test_a_problem_in_the_embeddings_leaves_valid_aliases_alone() -> None:
    embeddings = '\n[[embeddings]]\nname = "e"\nbase_url = "http://e:1/v1"\nweight = 0\n'

    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + embeddings + '\n[aliases]\n"gpt-4o" = "deep"\n', environ={})

    assert caught.value.problems == ("embeddings[0].weight: must be a positive number, got 0",)


def test_an_alias_name_with_a_control_character_is_refused() -> None:
    assert problems('"gpt\\u0000" = "deep"\n') == (
        'aliases."gpt\\u0000": an alias name must not contain control characters (found U+0000 '
        'at position 4), got "gpt\\u0000"',
    )


def test_aliases_must_be_a_table() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('aliases = "fast"\n' + BASE, environ={})

    assert caught.value.problems == ('aliases: must be a table ([aliases]), got string "fast"',)


def test_a_new_kind_of_target_is_one_keyword() -> None:
    targets = Targets(endpoints=["llama3.1:8b"], embedding_models=["nomic-embed-text"])

    assert targets.wording() == (
        "a tier ('fast', 'balanced', 'deep'), 'auto', an endpoint name or an embedding model name"
    )
    assert targets.kind_of("nomic-embed-text") == "embedding_models"
    assert targets.kind_of("llama3.1:8b") == "endpoints"
    assert "nomic-embed-text" in targets.names
