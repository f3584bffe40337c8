"""The resilience keys of issue #15: defaults, bounds, cross-checks and the TLS file checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_config_load import parse, problem, problems, with_value

PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49\n-----END PRIVATE KEY-----\n"


def https(**keys: Any) -> dict[str, Any]:
    """The base config with the first fast endpoint on https and ``keys`` set on it."""
    data = with_value("models.fast.0.base_url", "https://fast:8443/v1")
    for name, value in keys.items():
        data = with_value(f"models.fast.0.{name}", value, data)
    return data


def test_defaults_are_the_documented_ones() -> None:
    config = parse(with_value("server.port", 3000))

    assert config.server.max_in_flight == 1024
    assert config.server.client_header_timeout_seconds == 10
    assert config.server.keepalive_idle_seconds == 75
    assert config.limits.max_response_bytes == 64 * 1024 * 1024
    assert config.limits.max_event_bytes == 4 * 1024 * 1024
    assert config.timeouts.stream_total_seconds is None
    assert config.health.eject_after_failures == 3
    assert config.health.eject_base_seconds == 30
    assert config.health.eject_max_seconds == 300
    fast = config.models.fast[0]
    assert fast.max_connections == 100
    assert (fast.tls_ca_file, fast.tls_verify, fast.tls_client_cert, fast.tls_client_key) == (
        None,
        True,
        None,
        None,
    )


def test_every_new_key_is_kept() -> None:
    data = with_value("server.max_in_flight", 8)
    data = with_value("server.client_header_timeout_seconds", 0.5, data)
    data = with_value("server.keepalive_idle_seconds", 5, data)
    data = with_value("limits.max_response_bytes", 2048, data)
    data = with_value("limits.max_event_bytes", 1024, data)
    data = with_value("timeouts.stream_total_seconds", 90, data)
    data = with_value("health.eject_after_failures", 1, data)
    data = with_value("health.eject_base_seconds", 0.5, data)
    data = with_value("health.eject_max_seconds", 0.5, data)
    data = with_value("models.deep.0.max_connections", 4, data)

    config = parse(data)

    assert (config.server.max_in_flight, config.server.client_header_timeout_seconds) == (8, 0.5)
    assert config.server.keepalive_idle_seconds == 5
    assert (config.limits.max_response_bytes, config.limits.max_event_bytes) == (2048, 1024)
    assert config.timeouts.stream_total_seconds == 90
    assert config.timeout_for(config.models.fast[0].pool) == 30  # tiers unaffected
    health = config.health
    assert (health.eject_after_failures, health.eject_base_seconds) == (1, 0.5)
    assert health.eject_max_seconds == 0.5
    assert config.models.deep[0].max_connections == 4


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "server.max_in_flight",
            0,
            "server.max_in_flight: must be an integer from 1 to 1000000, got 0",
        ),
        (
            "server.client_header_timeout_seconds",
            0,
            "server.client_header_timeout_seconds: must be a number of seconds from 0.1 to 3600, got 0",
        ),
        (
            "server.keepalive_idle_seconds",
            "75",
            'server.keepalive_idle_seconds: must be a number, got string "75"',
        ),
        (
            "limits.max_response_bytes",
            100,
            "limits.max_response_bytes: must be an integer from 1024 to 4294967296, got 100",
        ),
        (
            "limits.max_event_bytes",
            1.5,
            "limits.max_event_bytes: must be an integer, got float 1.5",
        ),
        (
            "timeouts.stream_total_seconds",
            0,
            "timeouts.stream_total_seconds: must be a positive number of seconds, got 0",
        ),
        (
            "health.eject_after_failures",
            0,
            "health.eject_after_failures: must be a positive integer, got 0",
        ),
        (
            "health.eject_base_seconds",
            0,
            "health.eject_base_seconds: must be a positive number of seconds, got 0",
        ),
        (
            "health.eject_max_seconds",
            10,
            "health.eject_max_seconds: must be at least eject_base_seconds (30), got 10",
        ),
        (
            "models.fast.0.max_connections",
            0,
            "models.fast[0].max_connections: must be an integer from 1 to 10000, got 0",
        ),
        (
            "models.fast.0.tls_verify",
            "false",
            'models.fast[0].tls_verify: must be true or false, got string "false"',
        ),
    ],
)
def test_out_of_bounds_values_are_reported_with_their_key(
    path: str, value: object, expected: str
) -> None:
    assert problem(path, value) == expected


def test_a_typo_in_a_new_key_gets_a_suggestion() -> None:
    assert problem("health.eject_after_failure", 3) == (
        "health.eject_after_failure: unknown key; did you mean 'eject_after_failures'?"
    )
    assert problem("models.fast.0.max_connection", 3) == (
        "models.fast[0].max_connection: unknown key; did you mean 'max_connections'?"
    )


# --- TLS -----------------------------------------------------------------------------------------


def test_tls_files_that_hold_pem_are_accepted(tmp_path: Path) -> None:
    ca, cert, key = tmp_path / "ca.pem", tmp_path / "client.pem", tmp_path / "client.key"
    ca.write_text(PEM_CERT)
    cert.write_text(PEM_CERT)
    key.write_text(PEM_KEY)

    config = parse(https(tls_ca_file=str(ca), tls_client_cert=str(cert), tls_client_key=str(key)))

    fast = config.models.fast[0]
    assert (fast.tls_ca_file, fast.tls_client_cert, fast.tls_client_key) == (
        str(ca),
        str(cert),
        str(key),
    )


def test_a_client_certificate_may_carry_its_own_key(tmp_path: Path) -> None:
    both = tmp_path / "both.pem"
    both.write_text(PEM_CERT + PEM_KEY)
    assert parse(https(tls_client_cert=str(both))).models.fast[0].tls_client_key is None


def test_tls_verify_false_is_accepted_on_https() -> None:
    assert parse(https(tls_verify=False)).models.fast[0].tls_verify is False


def test_tls_keys_on_plain_http_are_refused() -> None:
    assert problem("models.fast.0.tls_verify", False) == (
        "models.fast[0].tls_verify: only applies to https:// base_url values; this one is plain "
        "http"
    )


def test_a_missing_ca_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    assert problems(https(tls_ca_file=str(missing))) == [
        f"models.fast[0].tls_ca_file: file not found: {missing}"
    ]


def test_a_ca_file_without_a_certificate_is_refused(tmp_path: Path) -> None:
    wrong = tmp_path / "key-only.pem"
    wrong.write_text(PEM_KEY)
    assert problems(https(tls_ca_file=str(wrong))) == [
        f"models.fast[0].tls_ca_file: {wrong} holds no PEM certificate "
        "(a -----BEGIN ...CERTIFICATE----- block)"
    ]


def test_a_client_key_without_a_certificate_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    key.write_text(PEM_KEY)
    assert problems(https(tls_client_key=str(key))) == [
        "models.fast[0].tls_client_key: needs tls_client_cert: the certificate this key belongs to"
    ]


def test_a_client_certificate_without_any_key_is_refused(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text(PEM_CERT)
    assert problems(https(tls_client_cert=str(cert))) == [
        f"models.fast[0].tls_client_cert: {cert} holds no PEM private key "
        "(a -----BEGIN ...PRIVATE KEY----- block)"
    ]


def test_a_private_ca_with_verification_off_is_contradictory(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text(PEM_CERT)
    assert problems(https(tls_ca_file=str(ca), tls_verify=False)) == [
        "models.fast[0].tls_verify: false turns certificate checks off, so tls_ca_file would be "
        "ignored; keep one of them"
    ]


def test_a_directory_is_not_a_pem_file(tmp_path: Path) -> None:
    assert problems(https(tls_ca_file=str(tmp_path))) == [
        f"models.fast[0].tls_ca_file: is a directory, not a PEM file: {tmp_path}"
    ]


def test_compat_rewrites_are_kept_and_misspellings_get_a_suggestion() -> None:
    config = parse(with_value("models.fast.0.compat", ["developer_to_system"]))
    assert config.models.fast[0].compat == frozenset({"developer_to_system"})
    assert config.models.deep[0].compat == frozenset()
    assert problem("models.fast.0.compat", ["strip_stream_option"]) == (
        'models.fast[0].compat: "strip_stream_option" is not a compatibility rewrite octoroute '
        "knows; did you mean 'strip_stream_options'?"
    )
    assert problem("models.fast.0.compat", "developer_to_system") == (
        "models.fast[0].compat: must be a list of compatibility rewrite names "
        "('developer_to_system', 'max_completion_tokens_to_max_tokens' or "
        "'strip_stream_options'), got \"developer_to_system\""
    )


def test_stream_keepalive_seconds_defaults_to_15_and_takes_fractions() -> None:
    assert parse(with_value("server.port", 3000)).server.stream_keepalive_seconds == 15
    kept = parse(with_value("server.stream_keepalive_seconds", 0.05))
    assert kept.server.stream_keepalive_seconds == 0.05


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "must be a positive number of seconds, at most 3600, got 0"),
        (-1, "must be a positive number of seconds, at most 3600, got -1"),
        (3601, "must be a positive number of seconds, at most 3600, got 3601"),
        ("15", 'must be a number, got string "15"'),
    ],
)
def test_stream_keepalive_seconds_must_be_positive(value: object, expected: str) -> None:
    assert problem("server.stream_keepalive_seconds", value) == (
        f"server.stream_keepalive_seconds: {expected}"
    )
