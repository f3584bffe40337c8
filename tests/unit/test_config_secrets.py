"""``api_key_env``: keys come from the environment, are kept as ``Secret`` and are never shown."""

from __future__ import annotations

import pytest

from octoroute.config import ConfigError, Secret, parse_config
from octoroute.config.summary import summarize

KEY = "sk-test-0123456789abcdef"

CONFIG = """
[server]
host = "127.0.0.1"
port = 3000

[[models.fast]]
name = "small"
base_url = "http://fast:8000/v1"
max_tokens = 1024

[[models.balanced]]
name = "medium"
base_url = "http://balanced:8000/v1"
max_tokens = 1024

[[models.deep]]
name = "large"
base_url = "https://deep.example.com/v1"
max_tokens = 1024
api_key_env = "{env}"

[routing]
strategy = "rule"
"""


def config_text(env: str = "VLLM_KEY") -> str:
    return CONFIG.replace("{env}", env)


def rejection(text: str, environ: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="config.toml", environ=environ)
    return caught.value


def test_api_key_is_resolved_from_the_given_environment() -> None:
    config = parse_config(config_text(), environ={"VLLM_KEY": KEY})

    deep = config.models.deep[0]
    assert deep.api_key_env == "VLLM_KEY"
    assert deep.api_key == Secret(KEY)
    assert deep.api_key is not None
    assert deep.api_key.reveal() == KEY
    assert config.models.fast[0].api_key is None


def test_surrounding_whitespace_of_the_key_is_dropped() -> None:
    config = parse_config(config_text(), environ={"VLLM_KEY": f"  {KEY}\n"})

    assert config.models.deep[0].api_key == Secret(KEY)


def test_process_environment_is_used_when_none_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCTOROUTE_TEST_DEEP_KEY", KEY)

    config = parse_config(config_text("OCTOROUTE_TEST_DEEP_KEY"))

    assert config.models.deep[0].api_key == Secret(KEY)


def test_unset_variable_is_a_problem_naming_the_variable() -> None:
    error = rejection(config_text(), environ={})

    assert error.problems == (
        "models.deep[0].api_key_env: environment variable VLLM_KEY is not set",
    )


def test_empty_variable_is_a_problem() -> None:
    error = rejection(config_text(), environ={"VLLM_KEY": " "})

    assert error.problems == ("models.deep[0].api_key_env: environment variable VLLM_KEY is empty",)


@pytest.mark.parametrize("name", ["vllm-key", "1KEY", "", "A" * 65])
def test_invalid_variable_name_is_rejected_without_echoing_it(name: str) -> None:
    error = rejection(config_text(name), environ={})

    assert error.problems == (
        "models.deep[0].api_key_env: must be the name of an environment variable (letters, "
        "digits and _, not starting with a digit), not the key itself; the value is not shown",
    )


def test_key_pasted_into_api_key_env_is_never_echoed() -> None:
    error = rejection(config_text(KEY), environ={})

    assert KEY not in str(error)


def test_token_like_variable_name_is_not_quoted_when_unset() -> None:
    token = "a9f3c2e81b7d4f60"

    error = rejection(config_text(token), environ={})

    assert error.problems == (
        "models.deep[0].api_key_env: the environment variable it names is not set",
    )


def test_api_key_env_must_be_a_string() -> None:
    error = rejection(CONFIG.replace('"{env}"', "1"), environ={})

    assert error.problems == ("models.deep[0].api_key_env: must be a string, got integer 1",)


def test_key_never_appears_in_repr_or_str_of_the_config() -> None:
    config = parse_config(config_text(), environ={"VLLM_KEY": KEY})

    assert KEY not in repr(config)
    assert KEY not in str(config)
    assert KEY not in repr(config.models.deep[0])
    assert "Secret('***')" in repr(config.models.deep[0])


def test_key_never_appears_in_an_error_about_other_problems() -> None:
    text = config_text().replace("port = 3000", "port = -1")

    error = rejection(text, environ={"VLLM_KEY": KEY})

    assert error.problems == ("server.port: must be an integer from 0 to 65535, got -1",)
    assert KEY not in str(error)
    assert KEY not in repr(error)


def test_key_never_appears_in_the_summary() -> None:
    config = parse_config(config_text(), environ={"VLLM_KEY": KEY})

    text = summarize(config)

    assert KEY not in text
    assert "api key from $VLLM_KEY" in text
