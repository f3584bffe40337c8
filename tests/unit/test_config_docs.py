"""docs/configuration.md stays true: its TOML examples load, its quoted messages are real."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from octoroute.config import ConfigError, parse_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
ENVIRON = {"VLLM_API_KEY": "doc-key-1", "DEEP_API_KEY": "doc-key-2"}
"""The variables the vLLM example names in api_key_env."""

_FENCE = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(lang: str) -> list[str]:
    """The bodies of the fenced blocks tagged ``lang``, in document order."""
    text = DOC.read_text(encoding="utf-8")
    return [m["body"] for m in _FENCE.finditer(text) if m["lang"] == lang]


def section(title: str) -> str:
    """The text of the ``## title`` section."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_doc_has_an_example_for_every_server_it_names() -> None:
    toml = blocks("toml")

    assert len(toml) >= 6
    for port in (":11434/v1", ":1234/v1", ":8080/v1", ":8000/v1"):
        assert any(port in block for block in toml), port
    assert any("api_key_env" in block for block in toml)


@pytest.mark.parametrize("index", range(len(blocks("toml"))))
def test_every_toml_block_is_a_complete_valid_config(index: int) -> None:
    text = blocks("toml")[index]

    config = parse_config(text, source=f"{DOC.name} toml block {index + 1}", environ=ENVIRON)

    assert config.models.all()


def test_vllm_example_resolves_its_keys_from_the_environment() -> None:
    vllm = next(block for block in blocks("toml") if "vllm-deep" in block)

    config = parse_config(vllm, environ=ENVIRON)

    assert [e.api_key_env for e in config.models.all()] == [
        "VLLM_API_KEY",
        "VLLM_API_KEY",
        "DEEP_API_KEY",
    ]


def test_broken_example_prints_exactly_the_documented_messages() -> None:
    errors = section("Error messages")
    broken = blocks("text")[0]
    assert broken in errors
    documented = next(b for b in blocks("console") if b.startswith("broken.toml:"))

    with pytest.raises(ConfigError) as caught:
        parse_config(broken, source="broken.toml", environ={})

    assert str(caught.value) + "\n" == documented


MINIMAL = blocks("toml")[0]
"""The doc's minimal config: the documented messages are produced by changing one thing in it."""

OTHER_MESSAGES = {
    "server.port: required key is missing": ("port = 3000\n", ""),
    'server.host: must not include a port (set server.port instead), got "0.0.0.0:3000"': (
        'host = "127.0.0.1"',
        'host = "0.0.0.0:3000"',
    ),
    "models.deep: required tier is missing; add at least one [[models.deep]] endpoint": (
        '[[models.deep]]\nname = "gpt-oss:120b"\nbase_url = "http://localhost:11434/v1"\n'
        "max_tokens = 16384\n",
        "",
    ),
    "models.balanced: needs at least one endpoint; the router may choose any tier": (
        '[[models.balanced]]\nname = "qwen2.5-coder:32b"\nbase_url = "http://localhost:11434/v1"\n'
        "max_tokens = 8192\n",
        "",
    ),
    'models.deep[0].name: "llama3.1:8b" is already used by models.fast[0]; a name may repeat '
    "within one tier (replicas) but not across tiers": (
        'name = "gpt-oss:120b"',
        'name = "llama3.1:8b"',
    ),
    "models.fast[0].base_url: has an invalid port (must be a number from 1 to 65535), "
    'got "http://your-server:port/v1"': (
        'base_url = "http://localhost:11434/v1"\nmax_tokens = 4096',
        'base_url = "http://your-server:port/v1"\nmax_tokens = 4096',
    ),
    "models.fast[0].base_url: has an invalid host: an IPv6 address must be complete and in "
    'brackets, e.g. http://[::1]:8000/v1, got "http://[zz::1]:80/v1"': (
        'base_url = "http://localhost:11434/v1"\nmax_tokens = 4096',
        'base_url = "http://[zz::1]:80/v1"\nmax_tokens = 4096',
    ),
    "models.fast[0].name: must not contain control characters (found U+0000 at position 6), "
    'got "llama\\u0000"; it is the model id sent upstream': (
        'name = "llama3.1:8b"',
        'name = "llama\\u0000"',
    ),
    "models.fast[0].max_tokens: must be an integer from 1 to 4294967295, got 0": (
        "max_tokens = 4096",
        "max_tokens = 0",
    ),
    "models.fast[0].temperature: must be a number, got boolean true": (
        "max_tokens = 4096",
        "max_tokens = 4096\ntemperature = true",
    ),
    "routing.strategy: 'tool' routing is not implemented; use 'rule', 'learned', 'llm' or 'hybrid'": (
        'strategy = "learned"',
        'strategy = "tool"',
    ),
    "timeouts.deep: must be a number of seconds from 1 to 300, got 600": (
        "[routing]",
        "[timeouts]\ndeep = 600\n\n[routing]",
    ),
    "observability.metrics_enabled: unknown key; metrics are always served at GET /metrics; "
    "remove this key": ("[routing]", "[observability]\nmetrics_enabled = true\n\n[routing]"),
}


def _fix_empty_tier(text: str) -> str:
    """Removing the only balanced block leaves no key at all; an empty array is what we mean."""
    return text.replace("\n[[models.deep]]", "\n[models]\nbalanced = []\n\n[[models.deep]]", 1)


@pytest.mark.parametrize("message", list(OTHER_MESSAGES))
def test_every_other_documented_message_is_real(message: str) -> None:
    assert message in section("Error messages")
    old, new = OTHER_MESSAGES[message]
    assert old in MINIMAL
    text = MINIMAL.replace(old, new, 1)
    if message.startswith("models.balanced: needs"):
        text = _fix_empty_tier(text)

    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ={})

    assert caught.value.problems == (message,)
