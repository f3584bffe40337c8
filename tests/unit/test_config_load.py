"""``parse_config``: the schema, its defaults and every validation rule with its message.

Configs are written as Python dicts and turned into TOML by a tiny emitter, so each test states
only the value it changes. Messages are compared in full: their wording is part of the contract.
"""

from __future__ import annotations

import copy
import json
import math
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from octoroute.config import Config, ConfigError, parse_config
from octoroute.enums import TIERS, Importance, LogFormat, Pool, Strategy, Tier

# --- a minimal TOML emitter (tomllib only reads) -----------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else json.dumps(name)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(value)


def _is_tables(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _emit(lines: list[str], table: dict[str, Any], path: list[str]) -> None:
    for name, value in table.items():
        if not isinstance(value, dict) and not _is_tables(value):
            lines.append(f"{_key(name)} = {_value(value)}")
    for name, value in table.items():
        header = ".".join(_key(part) for part in [*path, name])
        if isinstance(value, dict):
            lines.extend(["", f"[{header}]"])
            _emit(lines, value, [*path, name])
        elif _is_tables(value):
            for item in value:
                lines.extend(["", f"[[{header}]]"])
                _emit(lines, item, [*path, name])


def dump(data: dict[str, Any]) -> str:
    """``data`` as a TOML document."""
    lines: list[str] = []
    _emit(lines, data, [])
    return "\n".join(lines) + "\n"


# --- helpers -------------------------------------------------------------------------------------


def base() -> dict[str, Any]:
    """The smallest valid config: only required keys."""
    return {
        "server": {"host": "127.0.0.1", "port": 3000},
        "models": {
            tier.value: [
                {"name": f"{tier}-model", "base_url": f"http://{tier}:8000/v1", "max_tokens": 1024}
            ]
            for tier in TIERS
        },
        "routing": {"strategy": "hybrid"},
    }


def with_value(path: str, value: object, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of ``data`` (default ``base()``) with ``path`` (``models.fast.0.weight``) set."""
    result = copy.deepcopy(base() if data is None else data)
    node: Any = result
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    node[last] = value
    return result


def without(path: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of ``data`` (default ``base()``) with ``path`` removed."""
    result = copy.deepcopy(base() if data is None else data)
    node: Any = result
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    del node[last]
    return result


def parse(data: dict[str, Any]) -> Config:
    return parse_config(dump(data), environ={})


def problems(data: dict[str, Any]) -> list[str]:
    """The problems ``data`` is rejected with (fails the test if it is accepted)."""
    with pytest.raises(ConfigError) as caught:
        parse(data)
    return list(caught.value.problems)


def problem(path: str, value: object) -> str:
    """The single problem reported after setting ``path`` to ``value``."""
    found = problems(with_value(path, value))
    assert len(found) == 1, found
    return found[0]


# --- accepted configs and defaults --------------------------------------------------------------


def test_minimal_config_gets_every_default() -> None:
    config = parse(base())

    assert config.source == "<string>"
    assert config.server.request_timeout_seconds == 30
    assert config.server.max_request_bytes == 8 * 1024 * 1024
    endpoint = config.models.fast[0]
    assert (endpoint.temperature, endpoint.weight, endpoint.priority) == (0.7, 1.0, 1)
    assert endpoint.api_key_env is None
    assert endpoint.api_key is None
    assert config.routing.default_importance is Importance.NORMAL
    assert config.routing.router_tier is Tier.BALANCED
    assert config.routing.default_tier is Tier.BALANCED
    assert (config.routing.router_timeouts.fast, config.routing.router_timeouts.deep) == (10, 10)
    assert config.observability.log_level == "info"
    assert config.observability.log_format is LogFormat.TEXT
    assert (config.timeouts.fast, config.timeouts.balanced, config.timeouts.deep) == (None,) * 3
    assert config.health.interval_seconds == 30
    assert config.health.failure_threshold == 3
    assert config.health.probe_timeout_seconds == 5
    assert config.limits.max_messages == 2048
    assert config.limits.max_content_chars == 2_000_000


def test_every_key_set_explicitly_is_kept() -> None:
    data = base()
    data["server"].update(request_timeout_seconds=45, max_request_bytes=1024)
    data["models"]["deep"][0].update(temperature=0.2, weight=2.5, priority=7)
    data["routing"].update(
        strategy="llm",
        default_importance="high",
        router_tier="fast",
        default_tier="deep",
        router_timeouts={"fast": 3, "balanced": 4.5, "deep": 6},
    )
    data["observability"] = {"log_level": "debug", "log_format": "json"}
    data["timeouts"] = {"fast": 15, "balanced": 30, "deep": 60}
    data["health"] = {"interval_seconds": 0.1, "failure_threshold": 1, "probe_timeout_seconds": 2}
    data["limits"] = {"max_messages": 10, "max_content_chars": 1000}

    config = parse(data)

    assert config.server.request_timeout_seconds == 45
    assert config.server.max_request_bytes == 1024
    deep = config.models.deep[0]
    assert (deep.temperature, deep.weight, deep.priority) == (0.2, 2.5, 7)
    assert config.routing.strategy is Strategy.LLM
    assert config.routing.default_importance is Importance.HIGH
    assert config.routing.router_tier is Tier.FAST
    assert config.routing.default_tier is Tier.DEEP
    assert config.routing.router_timeouts.for_tier(Tier.BALANCED) == 4.5
    assert config.observability.log_format is LogFormat.JSON
    assert config.timeout_for(Tier.DEEP) == 60
    assert config.health.interval_seconds == 0.1
    assert config.limits.max_content_chars == 1000


def test_endpoints_keep_their_tier_and_file_position() -> None:
    data = base()
    data["models"]["fast"].append(
        {"name": "second", "base_url": "http://other:8000/v1", "max_tokens": 1}
    )

    config = parse(data)

    second = config.models.fast[1]
    assert (second.pool, second.index, second.name) == (Pool.FAST, 1, "second")
    assert second.key_path == "models.fast[1]"
    assert config.models.deep[0].pool is Pool.DEEP


def test_toml_integers_are_accepted_where_numbers_are_expected() -> None:
    data = with_value("models.fast.0.weight", 2)
    data = with_value("models.fast.0.temperature", 1, data)

    endpoint = parse(data).models.fast[0]

    assert isinstance(endpoint.weight, float)
    assert isinstance(endpoint.temperature, float)
    assert endpoint.weight == 2.0


def test_trailing_slash_after_v1_is_tolerated_and_stripped() -> None:
    config = parse(with_value("models.fast.0.base_url", "http://fast:8000/v1/"))

    assert config.models.fast[0].base_url == "http://fast:8000/v1"


@pytest.mark.parametrize(
    "url", ["https://api.example.com/v1", "http://10.0.0.5/v1", "http://[::1]:8000/openai/v1"]
)
def test_base_urls_with_or_without_port_and_prefix_are_accepted(url: str) -> None:
    assert parse(with_value("models.fast.0.base_url", url)).models.fast[0].base_url == url


@pytest.mark.parametrize(
    "host", ["localhost", "0.0.0.0", "127.0.0.1", "::", "::1", "router.internal", "my_host-1"]
)
def test_host_may_be_an_ip_address_or_a_host_name(host: str) -> None:
    assert parse(with_value("server.host", host)).server.host == host


@pytest.mark.parametrize("port", [0, 1, 65535])
def test_port_bounds_are_inclusive_and_zero_means_ephemeral(port: int) -> None:
    assert parse(with_value("server.port", port)).server.port == port


def test_router_timeouts_may_name_only_some_tiers() -> None:
    config = parse(with_value("routing.router_timeouts", {"balanced": 2.5}))

    timeouts = config.routing.router_timeouts
    assert (timeouts.fast, timeouts.balanced, timeouts.deep) == (10, 2.5, 10)


def test_timeouts_may_override_only_some_tiers() -> None:
    config = parse(with_value("timeouts", {"deep": 120}))

    assert config.timeout_for(Tier.DEEP) == 120
    assert config.timeout_for(Tier.FAST) == 30


def test_same_name_twice_in_one_tier_is_two_replicas() -> None:
    data = base()
    replica = {"name": "fast-model", "base_url": "http://fast-2:8000/v1", "max_tokens": 1024}
    data["models"]["fast"].append(replica)

    config = parse(data)

    assert [e.base_url for e in config.models.fast] == [
        "http://fast:8000/v1",
        "http://fast-2:8000/v1",
    ]


@pytest.mark.parametrize(
    ("written", "stored"),
    [("info", "info"), ("DEBUG", "debug"), ("warn", "warning"), ("trace", "debug")],
)
def test_log_level_accepts_any_case_and_v1_spellings(written: str, stored: str) -> None:
    config = parse(with_value("observability.log_level", written))

    assert config.observability.log_level == stored


@pytest.mark.parametrize(("value", "low_or_high"), [(0, 0.0), (2, 2.0)])
def test_temperature_bounds_are_inclusive(value: int, low_or_high: float) -> None:
    config = parse(with_value("models.fast.0.temperature", value))

    assert config.models.fast[0].temperature == low_or_high


def test_max_tokens_accepts_the_largest_u32() -> None:
    config = parse(with_value("models.fast.0.max_tokens", 4_294_967_295))

    assert config.models.fast[0].max_tokens == 4_294_967_295


# --- one rule, one message -----------------------------------------------------------------------

REJECTED = [
    # endpoint numbers
    ("models.fast.0.weight", 0, "models.fast[0].weight: must be a positive number, got 0"),
    ("models.fast.0.weight", 0.0, "models.fast[0].weight: must be a positive number, got 0.0"),
    ("models.fast.0.weight", -1, "models.fast[0].weight: must be a positive number, got -1"),
    ("models.fast.0.weight", math.nan, "models.fast[0].weight: must be a positive number, got nan"),
    ("models.fast.0.weight", math.inf, "models.fast[0].weight: must be a positive number, got inf"),
    (
        "models.balanced.0.max_tokens",
        0,
        "models.balanced[0].max_tokens: must be an integer from 1 to 4294967295, got 0",
    ),
    (
        "models.balanced.0.max_tokens",
        4_294_967_296,
        "models.balanced[0].max_tokens: must be an integer from 1 to 4294967295, got 4294967296",
    ),
    (
        "models.deep.0.temperature",
        2.5,
        "models.deep[0].temperature: must be a number from 0 to 2, got 2.5",
    ),
    (
        "models.deep.0.temperature",
        -0.1,
        "models.deep[0].temperature: must be a number from 0 to 2, got -0.1",
    ),
    (
        "models.deep.0.temperature",
        math.inf,
        "models.deep[0].temperature: must be a number from 0 to 2, got inf",
    ),
    (
        "models.fast.0.priority",
        256,
        "models.fast[0].priority: must be an integer from 0 to 255, got 256",
    ),
    (
        "models.fast.0.priority",
        -1,
        "models.fast[0].priority: must be an integer from 0 to 255, got -1",
    ),
    # base_url
    (
        "models.fast.0.base_url",
        "ftp://fast/v1",
        'models.fast[0].base_url: must start with http:// or https://, got "ftp://fast/v1"',
    ),
    (
        "models.fast.0.base_url",
        "fast:8000/v1",
        'models.fast[0].base_url: must start with http:// or https://, got "fast:8000/v1"',
    ),
    (
        "models.fast.0.base_url",
        "http://fast:11434",
        "models.fast[0].base_url: must end with /v1 (the root of the OpenAI-compatible API), "
        'got "http://fast:11434"; did you mean "http://fast:11434/v1"?',
    ),
    (
        "models.fast.0.base_url",
        "http://fast:8000/v1/chat/completions",
        "models.fast[0].base_url: must end with /v1 (the root of the OpenAI-compatible API), "
        'got "http://fast:8000/v1/chat/completions"; did you mean "http://fast:8000/v1"?',
    ),
    (  # a rejected URL is echoed with its password masked
        "models.fast.0.base_url",
        "http://alice:hunter2@fast:11434",
        "models.fast[0].base_url: must end with /v1 (the root of the OpenAI-compatible API), "
        'got "http://alice:***@fast:11434"; did you mean "http://alice:***@fast:11434/v1"?',
    ),
    (
        "models.fast.0.base_url",
        "http://alice:hunter2@fast:port/v1",
        "models.fast[0].base_url: has an invalid port (must be a number from 1 to 65535), "
        'got "http://alice:***@fast:port/v1"',
    ),
    (
        "models.fast.0.base_url",
        "http://your-server:port/v1",
        "models.fast[0].base_url: has an invalid port (must be a number from 1 to 65535), "
        'got "http://your-server:port/v1"',
    ),
    (
        "models.fast.0.base_url",
        "http://:8000/v1",
        'models.fast[0].base_url: has no host name, got "http://:8000/v1"',
    ),
    (
        "models.fast.0.base_url",
        "http://fast host/v1",
        'models.fast[0].base_url: must not contain spaces, got "http://fast host/v1"',
    ),
    (
        "models.fast.0.base_url",
        "http://fast/v1?key=1",
        'models.fast[0].base_url: must not have a query string or fragment, got "http://fast/v1?key=1"',
    ),
    (
        "models.fast.0.base_url",
        "http://127.0.0.1:0/v1",
        "models.fast[0].base_url: has an invalid port (must be a number from 1 to 65535), "
        'got "http://127.0.0.1:0/v1"',
    ),
    (
        "models.fast.0.base_url",
        "http://fast\x00:8000/v1",
        "models.fast[0].base_url: must not contain control characters (found U+0000 at "
        'position 12), got "http://fast\\u0000:8000/v1"',
    ),
    # names
    (
        "models.fast.0.name",
        "fast\x00model",
        "models.fast[0].name: must not contain control characters (found U+0000 at position 5), "
        'got "fast\\u0000model"; it is the model id sent upstream',
    ),
    (
        "models.fast.0.name",
        "",
        "models.fast[0].name: must not be empty; it is the model id sent upstream",
    ),
    (
        "models.fast.0.name",
        "  ",
        "models.fast[0].name: must not be empty; it is the model id sent upstream",
    ),
    (
        "models.fast.0.name",
        "Auto",
        "models.fast[0].name: \"Auto\" is reserved: clients send 'auto', 'fast', 'balanced' or "
        "'deep' to ask for routing, so an endpoint with that name could not be chosen by name",
    ),
    # server
    (
        "server.request_timeout_seconds",
        0,
        "server.request_timeout_seconds: must be a number of seconds from 1 to 300, got 0",
    ),
    (
        "server.request_timeout_seconds",
        301,
        "server.request_timeout_seconds: must be a number of seconds from 1 to 300, got 301",
    ),
    ("server.port", 65536, "server.port: must be an integer from 0 to 65535, got 65536"),
    ("server.port", -1, "server.port: must be an integer from 0 to 65535, got -1"),
    (
        "server.max_request_bytes",
        1023,
        "server.max_request_bytes: must be an integer from 1024 to 1073741824, got 1023",
    ),
    (
        "server.max_request_bytes",
        2**30 + 1,
        "server.max_request_bytes: must be an integer from 1024 to 1073741824, got 1073741825",
    ),
    (
        "server.host",
        "",
        'server.host: must not be empty; use "0.0.0.0" for every interface or "127.0.0.1" for '
        "this machine",
    ),
    (
        "server.host",
        "http://0.0.0.0",
        'server.host: must be a host name or IP address, not a URL, got "http://0.0.0.0"',
    ),
    ("server.host", "my host", 'server.host: must not contain spaces, got "my host"'),
    (
        "server.host",
        "0.0.0.0:3000",
        'server.host: must not include a port (set server.port instead), got "0.0.0.0:3000"',
    ),
    (
        "server.host",
        "[::1]",
        'server.host: must be written without brackets, got "[::1]"; did you mean "::1"?',
    ),
    ("server.host", "300.1.1.1", 'server.host: is not a valid IPv4 address, got "300.1.1.1"'),
    (
        "server.host",
        "bad!host",
        'server.host: is not a valid host name or IP address, got "bad!host"',
    ),
    # routing
    (
        "routing.strategy",
        "tool",
        "routing.strategy: 'tool' routing is not implemented; use 'rule', 'learned', 'llm' or 'hybrid'",
    ),
    (
        "routing.strategy",
        "Hybrid",
        "routing.strategy: must be one of 'rule', 'llm', 'hybrid' or 'learned', got \"Hybrid\"; "
        "did you mean 'hybrid'?",
    ),
    (
        "routing.strategy",
        "random",
        "routing.strategy: must be one of 'rule', 'llm', 'hybrid' or 'learned', got \"random\"",
    ),
    (
        "routing.default_importance",
        "critical",
        "routing.default_importance: 'critical' is not an importance level (v1's template listed "
        "it, but v1 rejected it too); use 'low', 'normal' or 'high'",
    ),
    (
        "routing.router_tier",
        "Fast",
        "routing.router_tier: must be one of 'fast', 'balanced' or 'deep', got \"Fast\"; "
        "did you mean 'fast'?",
    ),
    (
        "routing.router_tier",
        "balance",
        "routing.router_tier: must be one of 'fast', 'balanced' or 'deep', got \"balance\"; "
        "did you mean 'balanced'?",
    ),
    (
        "routing.router_tier",
        "BALANCED",
        "routing.router_tier: must be one of 'fast', 'balanced' or 'deep', got \"BALANCED\"; "
        "did you mean 'balanced'?",
    ),
    (
        "routing.default_tier",
        "medium",
        "routing.default_tier: must be one of 'fast', 'balanced' or 'deep', got \"medium\"",
    ),
    (
        "routing.router_timeouts.deep",
        0,
        "routing.router_timeouts.deep: must be a positive number of seconds, got 0",
    ),
    (
        "routing.router_timeouts.fast",
        -2.5,
        "routing.router_timeouts.fast: must be a positive number of seconds, got -2.5",
    ),
    # observability
    (
        "observability.log_format",
        "yaml",
        "observability.log_format: must be one of 'text' or 'json', got \"yaml\"",
    ),
    (
        "observability.log_level",
        "verbose",
        "observability.log_level: must be one of 'debug', 'info', 'warning', 'error' or "
        "'critical', got \"verbose\"",
    ),
    (
        "observability.log_level",
        "octoroute=debug",
        "observability.log_level: must be one of 'debug', 'info', 'warning', 'error' or "
        "'critical', got \"octoroute=debug\"; give one level, not a RUST_LOG-style filter",
    ),
    # timeouts
    ("timeouts.fast", 0, "timeouts.fast: must be a number of seconds from 1 to 300, got 0"),
    ("timeouts.deep", 301, "timeouts.deep: must be a number of seconds from 1 to 300, got 301"),
    # health
    (
        "health.interval_seconds",
        0.05,
        "health.interval_seconds: must be a number of seconds of at least 0.1, got 0.05",
    ),
    ("health.failure_threshold", 0, "health.failure_threshold: must be a positive integer, got 0"),
    (
        "health.probe_timeout_seconds",
        0,
        "health.probe_timeout_seconds: must be a positive number of seconds, got 0",
    ),
    # limits
    ("limits.max_messages", 0, "limits.max_messages: must be a positive integer, got 0"),
    (
        "limits.max_content_chars",
        -5,
        "limits.max_content_chars: must be a positive integer, got -5",
    ),
]


@pytest.mark.parametrize(("path", "value", "expected"), REJECTED)
def test_out_of_range_or_malformed_value_is_reported_with_its_path(
    path: str, value: object, expected: str
) -> None:
    assert problem(path, value) == expected


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://[zz::1]:80/v1", "http://[zz::1]:80/v1"),
        ("http://[::1/v1", "http://[::1/v1"),
        ("http://a:b@[zz]:1/v1", "http://a:***@[zz]:1/v1"),
    ],
)
def test_a_malformed_ipv6_host_in_base_url_is_a_problem_not_a_crash(url: str, shown: str) -> None:
    assert problem("models.fast.0.base_url", url) == (
        "models.fast[0].base_url: has an invalid host: an IPv6 address must be complete and in "
        f'brackets, e.g. http://[::1]:8000/v1, got "{shown}"'
    )


def test_a_bracketed_ipv6_base_url_is_accepted() -> None:
    url = "http://[fd00::1]:8000/v1"

    assert parse(with_value("models.fast.0.base_url", url)).models.fast[0].base_url == url


TYPE_ERRORS = [
    ("server.port", "80", 'server.port: must be an integer, got string "80"'),
    ("server.port", True, "server.port: must be an integer, got boolean true"),
    ("server.port", 3000.0, "server.port: must be an integer, got float 3000.0"),
    ("server.host", 127, "server.host: must be a string, got integer 127"),
    ("models.fast.0.weight", True, "models.fast[0].weight: must be a number, got boolean true"),
    ("models.fast.0.weight", "2", 'models.fast[0].weight: must be a number, got string "2"'),
    (
        "models.fast.0.max_tokens",
        False,
        "models.fast[0].max_tokens: must be an integer, got boolean false",
    ),
    ("models.fast.0.priority", 1.5, "models.fast[0].priority: must be an integer, got float 1.5"),
    ("models.fast.0.name", ["a"], "models.fast[0].name: must be a string, got an array"),
    ("timeouts.fast", True, "timeouts.fast: must be a number, got boolean true"),
    (
        "health.failure_threshold",
        2.0,
        "health.failure_threshold: must be an integer, got float 2.0",
    ),
    ("routing.strategy", 1, "routing.strategy: must be a string, got integer 1"),
    (
        "routing.router_timeouts",
        5,
        "routing.router_timeouts: must be a table ([routing.router_timeouts]), got integer 5",
    ),
    ("limits", "big", 'limits: must be a table ([limits]), got string "big"'),
]


@pytest.mark.parametrize(("path", "value", "expected"), TYPE_ERRORS)
def test_wrong_type_names_the_expected_type_and_what_was_found(
    path: str, value: object, expected: str
) -> None:
    assert problem(path, value) == expected


def test_booleans_are_not_accepted_as_numbers_anywhere() -> None:
    data = with_value("models.fast.0.temperature", False)
    data = with_value("health.interval_seconds", True, data)
    data = with_value("limits.max_messages", True, data)

    assert problems(data) == [
        "models.fast[0].temperature: must be a number, got boolean false",
        "health.interval_seconds: must be a number, got boolean true",
        "limits.max_messages: must be an integer, got boolean true",
    ]


MISSING = [
    ("server.host", "server.host: required key is missing"),
    ("server.port", "server.port: required key is missing"),
    ("server", "server: required table [server] is missing"),
    ("routing.strategy", "routing.strategy: required key is missing"),
    ("routing", "routing: required table [routing] is missing"),
    ("models.fast.0.name", "models.fast[0].name: required key is missing"),
    ("models.balanced.0.base_url", "models.balanced[0].base_url: required key is missing"),
    ("models.deep.0.max_tokens", "models.deep[0].max_tokens: required key is missing"),
    (
        "models.deep",
        "models.deep: required tier is missing; add at least one [[models.deep]] endpoint",
    ),
]


@pytest.mark.parametrize(("path", "expected"), MISSING)
def test_missing_required_key_is_reported(path: str, expected: str) -> None:
    assert problems(without(path)) == [expected]


def test_missing_models_reports_each_tier() -> None:
    assert problems(without("models")) == [
        f"models.{tier}: required tier is missing; add at least one [[models.{tier}]] endpoint"
        for tier in TIERS
    ]


def test_tier_without_endpoints_is_rejected() -> None:
    data = with_value("models.balanced", [])

    assert problems(data) == [
        "models.balanced: needs at least one endpoint; the router may choose any tier"
    ]


def test_tier_written_as_a_single_table_is_rejected_with_the_right_header() -> None:
    data = with_value("models.fast", {"name": "x", "base_url": "http://x/v1", "max_tokens": 1})

    assert problems(data) == [
        "models.fast: must be an array of tables ([[models.fast]]), got a table"
    ]


def test_same_name_in_two_tiers_is_rejected_at_the_later_one() -> None:
    data = with_value("models.deep.0.name", "fast-model")

    assert problems(data) == [
        'models.deep[0].name: "fast-model" is already used by models.fast[0]; a name may repeat '
        "within one tier (replicas) but not across tiers"
    ]


def test_cross_tier_duplicate_is_reported_once_per_tier_even_with_replicas() -> None:
    data = with_value("models.deep.0.name", "fast-model")
    data["models"]["deep"].append(dict(data["models"]["deep"][0]))

    assert len(problems(data)) == 1


# --- unknown keys --------------------------------------------------------------------------------

TYPOS = [
    ("sever", "sever: unknown key; did you mean 'server'?"),
    ("server.prot", "server.prot: unknown key; did you mean 'port'?"),
    ("models.fats", "models.fats: unknown key; did you mean 'fast'?"),
    ("models.fast.0.prority", "models.fast[0].prority: unknown key; did you mean 'priority'?"),
    ("models.deep.0.Weight", "models.deep[0].Weight: unknown key; did you mean 'weight'?"),
    ("models.deep.0.url", "models.deep[0].url: unknown key; did you mean 'base_url'?"),
    ("routing.stratgy", "routing.stratgy: unknown key; did you mean 'strategy'?"),
    (
        "routing.router_timeouts.fats",
        "routing.router_timeouts.fats: unknown key; did you mean 'fast'?",
    ),
    ("observability.log_levle", "observability.log_levle: unknown key; did you mean 'log_level'?"),
    ("timeouts.balnced", "timeouts.balnced: unknown key; did you mean 'balanced'?"),
    ("health.interval", "health.interval: unknown key; did you mean 'interval_seconds'?"),
    ("limits.max_message", "limits.max_message: unknown key; did you mean 'max_messages'?"),
]


@pytest.mark.parametrize(("path", "expected"), TYPOS)
def test_typo_in_a_key_is_reported_with_a_suggestion(path: str, expected: str) -> None:
    assert problem(path, 1) == expected


def test_unknown_key_without_a_close_match_lists_the_known_keys() -> None:
    assert problem("timeouts.slow", 5) == (
        "timeouts.slow: unknown key (expected 'fast', 'balanced', 'deep', 'embeddings' or 'stream_total_seconds')"
    )


HINTS = [
    (
        "models.fast.0.api_key",
        "models.fast[0].api_key: unknown key; keys do not belong in the file; put the key in an "
        "environment variable and give that variable's name in api_key_env",
    ),
    (
        "models.fast.0.timeout",
        "models.fast[0].timeout: unknown key; per-tier request timeouts go in [timeouts] "
        "(fast, balanced, deep)",
    ),
    (
        "observability.metrics_enabled",
        "observability.metrics_enabled: unknown key; metrics are always served at GET /metrics; "
        "remove this key",
    ),
    (
        "observability.metrics_port",
        "observability.metrics_port: unknown key; metrics are served on the server port at "
        "GET /metrics; remove this key",
    ),
]


@pytest.mark.parametrize(("path", "expected"), HINTS)
def test_keys_v1_tolerated_get_a_specific_explanation(path: str, expected: str) -> None:
    assert problem(path, "sk-live-123") == expected


def test_unknown_key_message_never_echoes_its_value() -> None:
    assert "sk-live-123" not in problem("models.fast.0.api_key", "sk-live-123")


# --- every problem at once -----------------------------------------------------------------------


def test_every_problem_in_the_file_is_reported_in_one_error() -> None:
    data = with_value("server.port", "80")
    data = with_value("models.fast.0.weight", 0, data)
    data = with_value("models.balanced.0.base_url", "http://b:1/api", data)
    data = with_value("routing.stratgy", "rule", data)
    data = with_value("limits.max_messages", 0, data)

    with pytest.raises(ConfigError) as caught:
        parse_config(dump(data), source="config.toml", environ={})

    error = caught.value
    assert error.source == "config.toml"
    assert error.problems == (
        'server.port: must be an integer, got string "80"',
        "models.fast[0].weight: must be a positive number, got 0",
        "models.balanced[0].base_url: must end with /v1 (the root of the OpenAI-compatible API), "
        'got "http://b:1/api"; did you mean "http://b:1/api/v1"?',
        "routing.stratgy: unknown key; did you mean 'strategy'?",
        "limits.max_messages: must be a positive integer, got 0",
    )
    assert str(error) == "\n".join(
        ["config.toml: 5 problems", *(f"  {line}" for line in error.problems)]
    )


def test_several_problems_in_one_endpoint_are_all_reported() -> None:
    data = with_value("models.fast.0.weight", -1)
    data = with_value("models.fast.0.max_tokens", 0, data)
    data = with_value("models.fast.0.temperature", 3, data)

    assert [p.split(":")[0] for p in problems(data)] == [
        "models.fast[0].max_tokens",
        "models.fast[0].temperature",
        "models.fast[0].weight",
    ]


def test_a_single_problem_is_counted_in_the_singular() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(dump(with_value("models.fast.0.weight", 0)), source="config.toml")

    assert str(caught.value) == (
        "config.toml: 1 problem\n  models.fast[0].weight: must be a positive number, got 0"
    )


def test_very_long_values_are_shortened_in_messages() -> None:
    message = problem("server.host", "x" * 500 + " y")

    assert message == (
        'server.host: must not contain spaces, got "' + "x" * 40 + '..." (502 characters)'
    )


def test_integer_too_large_for_a_float_is_a_range_problem_not_a_crash() -> None:
    assert problem("models.fast.0.weight", 10**400) == (
        "models.fast[0].weight: must be a positive number, got "
        + "1"
        + "0" * 39
        + "... (401 digits)"
    )


# --- properties ----------------------------------------------------------------------------------

non_positive = st.one_of(
    st.integers(max_value=0),
    st.floats(max_value=0.0, allow_nan=False),
    st.just(math.nan),
    st.just(math.inf),
)


@given(weight=non_positive)
def test_any_weight_that_is_not_positive_and_finite_is_rejected(weight: float) -> None:
    assert problem("models.fast.0.weight", weight).startswith(
        "models.fast[0].weight: must be a positive number, got "
    )


@given(weight=st.floats(min_value=1e-300, max_value=1e300) | st.integers(1, 2**60))
def test_any_positive_finite_weight_is_accepted_as_a_float(weight: float) -> None:
    stored = parse(with_value("models.fast.0.weight", weight)).models.fast[0].weight

    assert stored == float(weight)


@given(port=st.integers().filter(lambda p: not 0 <= p <= 65535))
def test_any_port_outside_the_u16_range_is_rejected(port: int) -> None:
    assert problem("server.port", port) == (
        f"server.port: must be an integer from 0 to 65535, got {port}"
    )


_printable = st.characters(exclude_categories=("Cc", "Cs"))


@given(value=st.text(_printable, min_size=1, max_size=12).filter(lambda v: v not in TIERS))
def test_any_router_tier_other_than_the_three_names_is_rejected(value: str) -> None:
    assert problem("routing.router_tier", value).startswith(
        "routing.router_tier: must be one of 'fast', 'balanced' or 'deep', got "
    )


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._/:", min_size=1, max_size=20)
_hosts = st.sampled_from(["localhost", "10.0.0.7", "gpu-box.lan", "[::1]"])
_endpoints = st.fixed_dictionaries(
    {
        "name": _names,
        "base_url": st.builds(
            "http://{}:{}/v1".format, _hosts, st.integers(min_value=1, max_value=65535)
        ),
        "max_tokens": st.integers(min_value=1, max_value=4_294_967_295),
    },
    optional={
        "temperature": st.floats(min_value=0, max_value=2),
        "weight": st.floats(min_value=0.001, max_value=1000),
        "priority": st.integers(min_value=0, max_value=255),
    },
)


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Configs every field of which is in range; names are made unique per tier by a prefix."""
    models = {}
    for tier in TIERS:
        endpoints = draw(st.lists(_endpoints, min_size=1, max_size=3))
        for endpoint in endpoints:
            endpoint["name"] = f"{tier}-{endpoint['name']}"
        models[tier.value] = endpoints
    return {
        "server": {
            "host": draw(st.sampled_from(["0.0.0.0", "127.0.0.1", "localhost", "::"])),
            "port": draw(st.integers(min_value=0, max_value=65535)),
            "request_timeout_seconds": draw(st.integers(min_value=1, max_value=300)),
        },
        "models": models,
        "routing": {
            "strategy": draw(st.sampled_from([s.value for s in Strategy])),
            "router_tier": draw(st.sampled_from([t.value for t in TIERS])),
        },
        "timeouts": {"deep": draw(st.floats(min_value=1, max_value=300))},
    }


@given(data=valid_configs())
def test_any_valid_config_round_trips_into_the_structs(data: dict[str, Any]) -> None:
    config = parse(data)

    assert config.server.host == data["server"]["host"]
    assert config.server.port == data["server"]["port"]
    assert config.routing.strategy == data["routing"]["strategy"]
    assert config.timeouts.deep == data["timeouts"]["deep"]
    for tier in TIERS:
        written = data["models"][tier.value]
        loaded = config.models.for_tier(tier)
        assert [e.name for e in loaded] == [e["name"] for e in written]
        assert [e.base_url for e in loaded] == [e["base_url"] for e in written]
        assert [e.weight for e in loaded] == [e.get("weight", 1.0) for e in written]
        assert [e.priority for e in loaded] == [e.get("priority", 1) for e in written]
        assert [e.index for e in loaded] == list(range(len(written)))
