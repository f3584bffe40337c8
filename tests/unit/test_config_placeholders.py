"""Placeholder hosts: what ``octoroute check`` reports in a file that is valid but cannot serve."""

from __future__ import annotations

import pytest

from octoroute.config import TEMPLATE, parse_config
from octoroute.config.placeholders import is_placeholder, placeholder_problems


def test_the_untouched_template_names_a_placeholder_for_every_endpoint() -> None:
    problems = placeholder_problems(parse_config(TEMPLATE, environ={}))

    assert [problem.split(":")[0] for problem in problems] == [
        "models.fast[0].base_url",
        "models.balanced[0].base_url",
        "models.deep[0].base_url",
    ]
    assert '"your-server" is a placeholder, not a server' in problems[0]
    assert '"your-8b-model"' in problems[0]


def test_the_templates_example_cors_origin_is_reported_once_uncommented() -> None:
    text = TEMPLATE.replace("# cors_origins =", "cors_origins =")

    problems = placeholder_problems(parse_config(text, environ={}))

    assert problems[-1].startswith(
        'server.cors_origins[0]: "https://app.example.com" is an example origin'
    )


def test_a_template_pointed_at_real_hosts_has_none() -> None:
    text = TEMPLATE.replace("your-server", "192.168.1.20")

    assert placeholder_problems(parse_config(text, environ={})) == []


@pytest.mark.parametrize(
    ("host", "placeholder"),
    [
        ("your-server", True),
        ("YOUR-SERVER.", True),
        ("another-server", True),
        ("example.com", True),
        ("gpu.example.org", True),
        ("api.example", True),
        ("box.invalid", True),
        ("myexample.com", False),
        ("example.com.lan", False),
        ("gpu-1", False),
        ("localhost", False),
        ("192.168.1.20", False),
    ],
)
def test_placeholders_are_the_template_names_and_the_reserved_example_domains(
    host: str, placeholder: bool
) -> None:
    assert is_placeholder(host) is placeholder
