"""What a reload changes, without sockets: key paths, endpoint identity and matching, the
settings only a restart changes, and the command line's overrides."""

from __future__ import annotations

from typing import Final

import pytest

from octoroute.config import Config, parse_config
from octoroute.config.diff import (
    RESTART_KEYS,
    changed_keys,
    endpoint_changes,
    endpoint_identity,
    keep_running,
    match_endpoints,
    restart_needed,
)
from octoroute.config.overrides import Overrides
from octoroute.enums import LogFormat

BASE: Final = """\
[server]
host = "127.0.0.1"
port = 8080

[[models.fast]]
name = "small"
base_url = "http://a:8000/v1"
max_tokens = 256

[[models.fast]]
name = "small"
base_url = "http://b:8000/v1"
max_tokens = 256

[[models.balanced]]
name = "mid"
base_url = "http://c:8000/v1"
max_tokens = 512
api_key_env = "MID_KEY"

[[models.deep]]
name = "big"
base_url = "http://d:8000/v1"
max_tokens = 1024

[routing]
strategy = "rule"
"""
ENVIRON: Final = {"MID_KEY": "k1", "OTHER_KEY": "k1"}


def config(text: str = BASE, **environ: str) -> Config:
    return parse_config(text, environ={**ENVIRON, **environ})


def edited(*replacements: tuple[str, str], append: str = "") -> Config:
    text = BASE
    for old, new in replacements:
        assert old in text
        text = text.replace(old, new, 1)
    return config(text + append)


# --- changed keys ---------------------------------------------------------------------------------


def test_nothing_changed_is_no_key() -> None:
    assert changed_keys(config(), config()) == ()


def test_changed_settings_are_named_by_their_key_paths_never_their_values() -> None:
    new = edited(
        ('strategy = "rule"', 'strategy = "rule"\ndefault_tier = "deep"'),
        append="[routing.router_timeouts]\nfast = 3\n[health]\ninterval_seconds = 5\n",
    )

    assert changed_keys(config(), new) == (
        "routing.default_tier",
        "routing.router_timeouts.fast",
        "health.interval_seconds",
    )


def test_aliases_added_removed_retargeted_and_reordered_patterns_are_each_named() -> None:
    old = config(BASE + '[aliases]\n"gpt-4o" = "deep"\n"a*" = "fast"\n"b*" = "mid"\nold = "fast"\n')
    new = config(BASE + '[aliases]\n"gpt-4o" = "mid"\n"b*" = "mid"\n"a*" = "fast"\nnew = "auto"\n')

    assert changed_keys(old, new) == (
        'aliases."gpt-4o"',
        'aliases."b*"',
        'aliases."a*"',
        'aliases."new"',
        'aliases."old"',
    )


def test_a_kept_endpoints_changed_settings_are_named_under_its_new_place() -> None:
    old = config().models.fast[1]
    new = edited(
        ('base_url = "http://b:8000/v1"\nmax_tokens = 256\n',
         'base_url = "http://b:8000/v1"\nmax_tokens = 300\nweight = 2\n'),
    )  # fmt: skip

    assert endpoint_changes(old, new.models.fast[1]) == (
        "models.fast[1].max_tokens",
        "models.fast[1].weight",
    )


# --- identity and matching -------------------------------------------------------------------------


def test_identity_is_the_connection_not_the_tunables() -> None:
    mid = config().models.balanced[0]
    tuned = edited(('api_key_env = "MID_KEY"', 'api_key_env = "MID_KEY"\npriority = 3\nweight = 5'))
    same_key_other_name = edited(('api_key_env = "MID_KEY"', 'api_key_env = "OTHER_KEY"'))
    rotated = config(MID_KEY="k2").models.balanced[0]

    assert endpoint_identity(tuned.models.balanced[0]) == endpoint_identity(mid)
    assert endpoint_identity(same_key_other_name.models.balanced[0]) == endpoint_identity(mid)
    assert endpoint_identity(rotated) != endpoint_identity(mid)
    assert endpoint_identity(mid, b"new cert") != endpoint_identity(mid)
    assert "k1" not in repr(endpoint_identity(mid))  # the key stays a Secret


def test_matching_keeps_same_identities_in_file_order_and_splits_the_rest() -> None:
    old = config()
    new = edited(
        ('base_url = "http://a:8000/v1"', 'base_url = "http://e:8000/v1"'),
        append='\n[[embeddings]]\nname = "vec"\nbase_url = "http://v:8000/v1"\n',
    )
    running = [(endpoint_identity(e), e.key_path) for e in old.all_endpoints()]
    wanted = [(endpoint_identity(e), e) for e in new.all_endpoints()]

    matching = match_endpoints(running, wanted)

    assert [(was, now.key_path) for was, now in matching.kept] == [
        ("models.fast[1]", "models.fast[1]"),
        ("models.balanced[0]", "models.balanced[0]"),
        ("models.deep[0]", "models.deep[0]"),
    ]
    assert [e.base_url for e in matching.added] == ["http://e:8000/v1", "http://v:8000/v1"]
    assert matching.removed == ["models.fast[0]"]


def test_two_identical_entries_pair_with_two_instances() -> None:
    twice = config().models.fast[0]
    running = [(endpoint_identity(twice), "first"), (endpoint_identity(twice), "second")]
    wanted = [(endpoint_identity(twice), twice)] * 3

    matching = match_endpoints(running, wanted)

    assert [was for was, _ in matching.kept] == ["first", "second"]
    assert len(matching.added) == 1
    assert matching.removed == []


# --- restart -------------------------------------------------------------------------------------


def test_settings_a_process_cannot_change_are_reported_and_kept_at_their_running_values() -> None:
    running = config()
    new = edited(
        ("port = 8080", "port = 9090\nworkers = 4\nmax_request_bytes = 4096\nmax_in_flight = 8"),
        append='[observability]\nlog_format = "json"\n',
    )

    applied = keep_running(new, running)

    assert restart_needed(running, new) == (
        "server.port",
        "server.workers",
        "server.max_request_bytes",
        "observability.log_format",
    )
    assert (applied.server.port, applied.server.workers) == (8080, 1)
    assert applied.server.max_request_bytes == running.server.max_request_bytes
    assert applied.observability.log_format is LogFormat.TEXT
    assert applied.server.max_in_flight == 8  # applies live
    assert restart_needed(running, applied) == ()


@pytest.mark.parametrize("key", RESTART_KEYS)
def test_every_restart_key_names_a_setting(key: str) -> None:
    section, name = key.split(".")
    assert name in getattr(config(), section).__struct_fields__


def test_keep_running_with_nothing_to_keep_is_the_new_config_itself() -> None:
    new = edited(('strategy = "rule"', 'strategy = "hybrid"'))
    assert keep_running(new, config()) is new


# --- overrides -----------------------------------------------------------------------------------


def test_overrides_win_over_the_file_and_none_leaves_it_alone() -> None:
    file = edited(("port = 8080", "port = 8080\nworkers = 3"))

    given = Overrides(host="0.0.0.0", port=0, workers=2, log_level="WARN").apply(file)

    assert (given.server.host, given.server.port, given.server.workers) == ("0.0.0.0", 0, 2)
    assert given.observability.log_level == "warning"
    assert Overrides().apply(file) is file
    assert Overrides(port=9000).apply(file).server.workers == 3


def test_a_file_change_hidden_by_an_override_needs_no_restart() -> None:
    cli = Overrides(port=9000)
    running = cli.apply(config())
    moved = cli.apply(edited(("port = 8080", "port = 8081")))

    assert restart_needed(running, moved) == ()
