"""``summarize``: what ``octoroute check`` prints about a valid config."""

from __future__ import annotations

from pathlib import Path

import pytest

from octoroute.config import TEMPLATE, parse_config
from octoroute.config.redact import redact_url, strip_userinfo, userinfo
from octoroute.config.summary import summarize

FLEET = """
[server]
host = "localhost"
port = 8080
max_request_bytes = 1048576

[[models.fast]]
name = "llama3.2:3b"
base_url = "http://gpu-1:11434/v1"
max_tokens = 2048
priority = 2

[[models.fast]]
name = "llama3.2:3b"
base_url = "http://gpu-2:11434/v1/"
max_tokens = 2048
weight = 0.5

[[models.balanced]]
name = "qwen2.5-coder:32b"
base_url = "http://gpu-3:8080/v1"
max_tokens = 8192

[[models.deep]]
name = "gpt-oss-120b"
base_url = "https://vllm.example.com/v1"
max_tokens = 16384
api_key_env = "VLLM_API_KEY"

[routing]
strategy = "rule"
default_tier = "fast"

[timeouts]
deep = 120
"""

KEY = "tok-a1b2c3d4e5f6"


def summary() -> str:
    config = parse_config(FLEET, source="fleet.toml", environ={"VLLM_API_KEY": KEY})
    return summarize(config)


def test_summary_starts_with_the_file() -> None:
    assert summary().splitlines()[0] == "fleet.toml"


def test_summary_lists_every_endpoint_with_its_normalised_url() -> None:
    text = summary()

    for url in (
        "http://gpu-1:11434/v1",
        "http://gpu-2:11434/v1",
        "http://gpu-3:8080/v1",
        "https://vllm.example.com/v1",
    ):
        assert url in text
    assert "http://gpu-2:11434/v1/" not in text
    assert text.count("llama3.2:3b") == 2
    assert "qwen2.5-coder:32b" in text
    assert "gpt-oss-120b" in text


def test_summary_shows_selection_settings_and_key_status_per_endpoint() -> None:
    lines = summary().splitlines()

    gpu1 = next(line for line in lines if "gpu-1" in line)
    gpu2 = next(line for line in lines if "gpu-2" in line)
    deep = next(line for line in lines if "vllm.example.com" in line)
    assert gpu1.endswith("priority 2, weight 1, no api key")
    assert gpu2.endswith("priority 1, weight 0.5, no api key")
    assert deep.endswith("api key from $VLLM_API_KEY")


def test_summary_shows_the_strategy_tiers_and_timeouts() -> None:
    text = summary()

    assert "localhost:8080" in text
    assert "max request body 1 MiB" in text
    assert "strategy rule" in text
    assert "router tier" not in text  # the rule strategy never asks a router model
    assert "default tier fast" in text
    assert "fast (timeout 30 s, 2 endpoints)" in text
    assert "deep (timeout 120 s, 1 endpoint)" in text


def test_summary_shows_the_allowed_hosts_only_when_set() -> None:
    guarded = FLEET.replace(
        "port = 8080\n", 'port = 8080\nallowed_hosts = ["router.lan", "*.lan"]\n'
    )
    config = parse_config(guarded, environ={"VLLM_API_KEY": KEY})

    assert "answers only Host router.lan, *.lan (and loopback)" in summarize(config)
    assert "answers only Host" not in summary()


def test_summary_never_contains_the_key() -> None:
    assert KEY not in summary()


def test_summary_fits_one_screen() -> None:
    lines = summarize(parse_config(TEMPLATE, environ={})).splitlines()

    assert len(lines) <= 24
    assert max(len(line) for line in lines) <= 100


def test_summary_names_the_router_tier_for_model_based_strategies() -> None:
    hybrid = TEMPLATE.replace('strategy = "learned"', 'strategy = "hybrid"')
    text = summarize(parse_config(hybrid, environ={}))

    assert "strategy hybrid, router tier balanced (timeout 10 s)" in text


CREDENTIALED = FLEET.replace("http://gpu-1:11434/v1", "http://alice:pa%40ss-w0rd@gpu-1:11434/v1")


def test_summary_masks_the_password_of_a_base_url_and_says_basic_auth_is_sent() -> None:
    text = summarize(parse_config(CREDENTIALED, source="fleet.toml", environ={"VLLM_API_KEY": KEY}))

    assert "pa%40ss-w0rd" not in text
    assert "w0rd" not in text
    gpu1 = next(line for line in text.splitlines() if "gpu-1" in line)
    assert "http://alice:***@gpu-1:11434/v1" in gpu1
    assert gpu1.endswith("priority 2, weight 1, basic auth from base_url")


# -- the redaction helper the summary and GET /models share --------------------------------------


@pytest.mark.parametrize(
    ("url", "shown", "stripped"),
    [
        ("http://gpu-1:11434/v1", "http://gpu-1:11434/v1", "http://gpu-1:11434/v1"),
        ("http://u:p@h:1/v1", "http://u:***@h:1/v1", "http://h:1/v1"),
        ("https://u:p@ss@h/v1", "https://u:***@h/v1", "https://h/v1"),  # a raw @ in the password
        ("http://tok-123@h/v1", "http://***@h/v1", "http://h/v1"),  # a bare user may be a token
        ("http://:p@h/v1", "http://***@h/v1", "http://h/v1"),
        (
            "http://h/v1/a@b",
            "http://h/v1/a@b",
            "http://h/v1/a@b",
        ),  # an @ in the path is no userinfo
        ("http://u:p@[::1]:8/v1", "http://u:***@[::1]:8/v1", "http://[::1]:8/v1"),
        ("not a url", "not a url", "not a url"),
    ],
)
def test_redact_url_masks_only_credentials(url: str, shown: str, stripped: str) -> None:
    assert redact_url(url) == shown
    assert strip_userinfo(url) == stripped


@pytest.mark.parametrize(
    ("url", "credentials"),
    [
        ("http://gpu-1:11434/v1", ""),
        ("http://u:p%40ss@h:1/v1", "u:p%40ss"),  # as written: the client percent-decodes it
        ("https://u:p@ss@h/v1", "u:p@ss"),
        ("http://h/v1/a@b", ""),
    ],
)
def test_userinfo_is_the_credentials_as_written(url: str, credentials: str) -> None:
    assert userinfo(url) == credentials


def test_summary_shows_resilience_settings_and_tls_notes(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    text = summarize(
        parse_config(
            TEMPLATE.replace(
                'base_url = "http://your-server:8000/v1"  # API root, must end with /v1',
                f'base_url = "https://your-server:8000/v1"\ntls_ca_file = "{ca}"',
            )
            .replace("max_connections = 100 ", "max_connections = 8 ")
            .replace("# stream_total_seconds = 600", "stream_total_seconds = 600"),
            environ={},
        )
    )

    assert "at most 1,024 requests at once, request head within 10 s" in text
    assert "ejected after 3 failed requests in a row for 30 s x n (at most 300 s)" in text
    assert "upstream answers up to 64 MiB, stream events up to 4 MiB" in text
    assert "streams cut after 600 s" in text
    assert f"max 8 connections, CA {ca}" in text
