"""``server.cors_origins``: exact origins as browsers send them, or ``"*"``; messages in full."""

from __future__ import annotations

import pytest

from octoroute.config import ConfigError, parse_config
from octoroute.config.cors import canonical_origin
from tests.unit.test_config_aliases import BASE

FORM = 'must be "*" or an origin: http(s)://host[:port], no path, lower-case'


def with_origins(value: str) -> str:
    return BASE.replace("port = 3000", f"port = 3000\ncors_origins = {value}")


def problems(value: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        parse_config(with_origins(value), environ={})
    return caught.value.problems


def test_default_is_no_origins() -> None:
    assert parse_config(BASE, environ={}).server.cors_origins == ()


def test_exact_origins_and_the_wildcard_are_kept() -> None:
    origins = '["https://app.example.com", "http://localhost:5173", "http://[::1]:8080"]'

    assert parse_config(with_origins(origins), environ={}).server.cors_origins == (
        "https://app.example.com",
        "http://localhost:5173",
        "http://[::1]:8080",
    )
    assert parse_config(with_origins('["*"]'), environ={}).server.cors_origins == ("*",)


def test_a_string_instead_of_an_array_is_refused() -> None:
    assert problems('"*"') == ('server.cors_origins: must be an array of strings, got string "*"',)


@pytest.mark.parametrize(
    ("entry", "suggestion"),
    [
        ("https://app.example.com/", "https://app.example.com"),
        ("https://App.Example.com", "https://app.example.com"),
        ("https://app.example.com/chat?x=1", "https://app.example.com"),
        ("https://app.example.com:443", "https://app.example.com"),
        ("http://localhost:5173/", "http://localhost:5173"),
    ],
)
def test_a_near_miss_gets_the_form_a_browser_sends(entry: str, suggestion: str) -> None:
    assert problems(f'["{entry}"]') == (
        f'server.cors_origins[0]: {FORM}, got "{entry}"; did you mean "{suggestion}"?',
    )


@pytest.mark.parametrize("entry", ["app.example.com", "ftp://files.example.com", "https://", ""])
def test_something_that_is_no_origin_is_refused(entry: str) -> None:
    assert problems(f'["{entry}"]') == (f'server.cors_origins[0]: {FORM}, got "{entry}"',)


def test_every_bad_entry_is_reported_with_its_index() -> None:
    assert problems('["https://a.example", 3, "https://a.example", "https://b.example/"]') == (
        "server.cors_origins[1]: must be a string, got integer 3",
        'server.cors_origins[2]: "https://a.example" is listed twice',
        f'server.cors_origins[3]: {FORM}, got "https://b.example/"; did you mean '
        '"https://b.example"?',
    )


def test_the_wildcard_with_other_entries_is_refused() -> None:
    assert problems('["*", "https://app.example.com"]') == (
        'server.cors_origins: "*" allows every origin; remove the other entries or the "*"',
    )


def test_the_wildcard_with_other_entries_is_reported_along_with_bad_entries() -> None:
    assert problems('["*", "https://a.com", "HTTP://B.COM"]') == (
        f'server.cors_origins[2]: {FORM}, got "HTTP://B.COM"; did you mean "http://b.com"?',
        'server.cors_origins: "*" allows every origin; remove the other entries or the "*"',
    )


def test_the_wildcard_twice_is_only_a_duplicate() -> None:
    assert problems('["*", "*"]') == ('server.cors_origins[1]: "*" is listed twice',)


@pytest.mark.parametrize("entry", ["https://a.com:0", "http://[::1]:0", "http://a.com:00/"])
def test_port_zero_is_refused_like_in_base_url(entry: str) -> None:
    assert problems(f'["{entry}"]') == (
        "server.cors_origins[0]: has an invalid port (must be a number from 1 to 65535), "
        f'got "{entry}"',
    )


def test_a_control_character_in_an_origin_is_refused() -> None:
    assert problems('["https://a\\u0000b.com"]') == (
        "server.cors_origins[0]: must not contain control characters (found U+0000 at position "
        '10), got "https://a\\u0000b.com"',
    )


def test_canonical_origin_keeps_non_default_ports_and_brackets_ipv6() -> None:
    assert canonical_origin("HTTP://[::1]:8080/") == "http://[::1]:8080"
    assert canonical_origin("https://h:99999") is None
    assert canonical_origin("https://h:0") is None
