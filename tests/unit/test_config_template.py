"""The ``octoroute config`` template: valid, complete and explained."""

from __future__ import annotations

import re
import tomllib
from urllib.parse import urlsplit

import pytest

from octoroute.config import TEMPLATE, parse_config
from octoroute.config.placeholders import TEMPLATE_HOSTS, is_placeholder
from octoroute.config.schema import UiConfig
from octoroute.enums import Importance, LogFormat, Strategy, Tier

HEADERS = [
    "[server]",
    "[[models.fast]]",
    "[[models.balanced]]",
    "[[models.deep]]",
    "[routing]",
    "[routing.router_timeouts]",
    "[observability]",
    "[timeouts]",
    "[health]",
    "[limits]",
    "[ui]",
]


def test_template_is_a_valid_config_without_any_environment() -> None:
    config = parse_config(TEMPLATE, source="config.toml", environ={})

    assert config.source == "config.toml"


def test_template_keeps_v1_values() -> None:
    config = parse_config(TEMPLATE, environ={})

    assert config.server.port == 3000
    assert config.server.request_timeout_seconds == 30
    assert [e.max_tokens for e in config.models.all()] == [4096, 8192, 16384]
    assert [e.name for e in config.models.all()] == [
        "your-8b-model",
        "your-30b-model",
        "your-120b-model",
    ]
    # #19: learned beat rule on the frozen test split, so it replaced v1's hybrid default.
    assert config.routing.strategy is Strategy.LEARNED
    assert config.routing.default_importance is Importance.NORMAL
    assert config.routing.router_tier is Tier.BALANCED
    assert config.observability.log_level == "info"
    assert (config.timeouts.fast, config.timeouts.balanced, config.timeouts.deep) == (15, 30, 60)


def test_template_listens_on_loopback_and_points_at_the_security_doc() -> None:
    config = parse_config(TEMPLATE, environ={})

    assert config.server.host == "127.0.0.1"
    assert "docs/security.md" in TEMPLATE.split("[[models.fast]]")[0]


def test_every_host_the_template_names_is_a_placeholder_check_reports() -> None:
    urls = re.findall(r'"(https?://[^"]+)"', TEMPLATE)
    hosts = {urlsplit(url).hostname for url in urls}

    assert hosts >= TEMPLATE_HOSTS
    assert all(host is not None and is_placeholder(host) for host in hosts), hosts


def test_commented_allowed_hosts_example_becomes_valid_when_uncommented() -> None:
    config = parse_config(TEMPLATE.replace("# allowed_hosts =", "allowed_hosts ="), environ={})

    assert config.server.allowed_hosts == ("router.lan", "*.lan")


def test_template_shows_the_new_settings_at_their_defaults() -> None:
    config = parse_config(TEMPLATE, environ={})

    assert config.routing.default_tier is Tier.BALANCED
    assert config.observability.log_format is LogFormat.TEXT
    assert config.server.max_request_bytes == 8 * 1024 * 1024
    assert config.health.interval_seconds == 30
    assert config.health.failure_threshold == 3
    assert config.health.probe_timeout_seconds == 5
    assert config.limits.max_messages == 2048
    assert config.limits.max_content_chars == 2_000_000


@pytest.mark.parametrize("header", HEADERS)
def test_template_has_every_section_header_on_its_own_line(header: str) -> None:
    assert header in TEMPLATE.splitlines() or any(
        line.startswith(f"{header} ") for line in TEMPLATE.splitlines()
    )


def test_template_is_documented_with_comments() -> None:
    comments = [line for line in TEMPLATE.splitlines() if line.lstrip().startswith("#")]

    assert len(comments) > 30
    for word in ("rule", "llm", "hybrid", "fast", "balanced", "deep", "api_key_env", "/metrics"):
        assert word in "\n".join(comments), word


def test_template_explains_every_endpoint_key_inline() -> None:
    fast_block = TEMPLATE.split("[[models.fast]]")[1]
    for key in ("name", "base_url", "max_tokens", "temperature", "weight", "priority"):
        line = next(line for line in fast_block.splitlines() if line.startswith(f"{key} ="))
        assert "#" in line, key


def test_commented_replica_embeddings_and_api_key_examples_become_valid_when_uncommented() -> None:
    text = TEMPLATE.replace("# [[models.fast]]", "[[models.fast]]")
    text = text.replace("# [[embeddings]]", "[[embeddings]]")
    for key in ("name", "base_url", "max_tokens", "temperature", "weight", "priority"):
        text = text.replace(f"# {key} =", f"{key} =")
    text = text.replace('# api_key_env = "DEEP_API_KEY"', 'api_key_env = "DEEP_API_KEY"')

    config = parse_config(text, environ={"DEEP_API_KEY": "secret"})

    assert [e.base_url for e in config.models.fast] == [
        "http://your-server:8000/v1",
        "http://another-server:8000/v1",
    ]
    assert config.models.deep[0].api_key_env == "DEEP_API_KEY"
    assert [(e.name, e.key_path) for e in config.embeddings] == [
        ("nomic-embed-text", "embeddings[0]")
    ]


def test_template_lines_fit_a_terminal() -> None:
    assert max(len(line) for line in TEMPLATE.splitlines()) <= 100


def test_template_is_plain_toml_for_other_tools() -> None:
    assert set(tomllib.loads(TEMPLATE)) == {
        "server",
        "models",
        "routing",
        "observability",
        "timeouts",
        "health",
        "limits",
        "ui",
    }


def test_commented_cors_and_aliases_examples_become_valid_when_uncommented() -> None:
    text = TEMPLATE.replace("# cors_origins =", "cors_origins =").replace(
        "# [aliases]", "[aliases]"
    )
    for line in ('"gpt-4o-mini" = "fast"', '"gpt-4o*" = "deep"', '"claude-*" = "auto"'):
        text = text.replace(f"# {line}", line)

    config = parse_config(text, environ={})

    assert config.server.cors_origins == ("https://app.example.com",)
    assert [(a.name, a.target, a.pattern) for a in config.aliases] == [
        ("gpt-4o-mini", "fast", False),
        ("gpt-4o*", "deep", True),
        ("claude-*", "auto", True),
    ]


def test_template_shows_the_dashboard_section_at_its_defaults() -> None:
    config = parse_config(TEMPLATE, environ={})

    assert config.ui == UiConfig()
    assert (config.ui.enabled, config.ui.show_prompts) == (True, False)
    assert (config.ui.decisions, config.ui.prompt_preview_chars) == (100, 200)
