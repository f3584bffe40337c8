"""``[server] allowed_hosts``: which entries load (and in what canonical form), which are refused
with what message, and which ``Host`` headers the parsed list lets through."""

from __future__ import annotations

import pytest

from octoroute.config import ConfigError, parse_config
from octoroute.config.hosts import REMEMBERED_HOSTS, HostAllowlist, is_loopback, split_host

BASE = """
[server]
host = "127.0.0.1"
port = 3000
{line}

[[models.fast]]
name = "f"
base_url = "http://127.0.0.1:9001/v1"
max_tokens = 64

[[models.balanced]]
name = "b"
base_url = "http://127.0.0.1:9002/v1"
max_tokens = 64

[[models.deep]]
name = "d"
base_url = "http://127.0.0.1:9003/v1"
max_tokens = 64

[routing]
strategy = "rule"
"""


def allowed_hosts(value: str) -> tuple[str, ...]:
    return parse_config(BASE.format(line=f"allowed_hosts = {value}")).server.allowed_hosts


def problems(value: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        allowed_hosts(value)
    return caught.value.problems


def test_absent_means_no_check() -> None:
    assert parse_config(BASE.format(line="")).server.allowed_hosts == ()


def test_entries_load_in_canonical_form() -> None:
    loaded = allowed_hosts(
        '["Router.LAN", "router.lan:3000", "*.lan", "*.Home.Arpa:8080", "192.168.1.10", '
        '"fd00::1", "[FD00::2]:3000", "gpu-1."]'
    )

    assert loaded == (
        "router.lan",
        "router.lan:3000",
        "*.lan",
        "*.home.arpa:8080",
        "192.168.1.10",
        "[fd00::1]",
        "[fd00::2]:3000",
        "gpu-1",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"router.lan"', "server.allowed_hosts: must be an array of strings, got string"),
        ('["*"]', "would allow every host; remove allowed_hosts instead"),
        ('["http://router.lan"]', 'not a URL, got "http://router.lan"'),
        ('["router.lan/v1"]', "not a URL"),
        ('["router.lan:0"]', 'got "router.lan:0"'),
        ('["router.lan:99999"]', 'got "router.lan:99999"'),
        ('["router.lan:"]', 'got "router.lan:"'),
        ('["a.*.lan"]', 'got "a.*.lan"'),
        ('["*.10.0.0.1"]', 'got "*.10.0.0.1"'),
        ('["router lan"]', 'got "router lan"'),
        ('[""]', 'got ""'),
        ("[3000]", "must be a string, got integer 3000"),
        ('["router.lan", "ROUTER.lan"]', '"ROUTER.lan" is listed twice'),
    ],
)
def test_a_bad_entry_is_refused_with_its_index_and_the_expected_form(
    value: str, expected: str
) -> None:
    (problem,) = problems(value)

    assert problem.startswith("server.allowed_hosts")
    assert expected in problem


def test_every_bad_entry_is_reported_at_once() -> None:
    found = problems('["ok.lan", "http://x", "*"]')

    assert [problem.split(":")[0] for problem in found] == [
        "server.allowed_hosts[1]",
        "server.allowed_hosts[2]",
    ]


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        ("router.lan", True),
        ("ROUTER.LAN", True),
        ("router.lan.", True),
        ("router.lan:3000", True),  # an entry without a port allows any port
        ("gpu.lan:8080", True),  # "*.lan:8080"
        ("a.b.lan:8080", True),
        ("gpu.lan:3000", False),  # the wildcard entry names port 8080 only
        ("gpu.lan", False),
        ("lan:8080", False),  # "*.lan" is the names under lan, not lan itself
        ("box.home:9000", True),  # "box.home:9000" exactly
        ("box.home", False),
        ("box.home:9001", False),
        ("[fd00::1]:3000", True),
        ("[fd00::2]", False),
        ("evil.example", False),
        ("router.lan.evil.example", False),
        ("evilrouter.lan", False),
        ("localhost:3000", True),  # loopback: always
        ("127.0.0.1:3000", True),
        ("127.8.9.10", True),
        ("[::1]:3000", True),
        ("[::ffff:127.0.0.1]:3000", True),  # IPv4-mapped IPv6 loopback
        ("[::ffff:127.9.0.1]", True),
        ("[::ffff:192.168.1.10]", False),
        ("localhost.evil.example", False),
        ("", False),
        ("router.lan:x", False),
        ("[fd00::1", False),
        ("router.lan:3000:1", False),
        (None, False),
    ],
)
def test_the_allowlist_matches_names_ports_wildcards_and_loopback(
    header: str | None, allowed: bool
) -> None:
    allowlist = HostAllowlist(("router.lan", "*.lan:8080", "box.home:9000", "[fd00::1]"))

    assert allowlist.allows(header) is allowed


def test_host_syntax_is_split_into_a_lower_case_name_and_a_port() -> None:
    assert split_host("Router.Lan:3000") == ("router.lan", 3000)
    assert split_host("[FD00::1]:80") == ("fd00::1", 80)
    assert split_host("[fd00::1]") == ("fd00::1", None)
    assert split_host("[router.lan]") is None
    assert split_host("router.lan:+80") is None


def test_loopback_is_localhost_and_loopback_addresses_only() -> None:
    assert is_loopback("localhost")
    assert is_loopback("::1")
    assert is_loopback("127.0.0.53")
    assert is_loopback("::ffff:127.0.0.1")
    assert is_loopback("::ffff:7f00:2")
    assert not is_loopback("::ffff:10.0.0.1")
    assert not is_loopback("0.0.0.0")
    assert not is_loopback("localhost.lan")


def test_verdicts_are_kept_for_a_bounded_number_of_hosts_and_stay_right() -> None:
    allowlist = HostAllowlist(("router.lan",))

    for number in range(3 * REMEMBERED_HOSTS):
        assert not allowlist.allows(f"attacker-{number}.example")
        assert allowlist.allows("router.lan:3000")

    assert len(allowlist._verdicts) <= REMEMBERED_HOSTS
