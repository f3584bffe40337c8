"""``octoroute key new NAME``: a fresh key shown once, and the entry that accepts it."""

from __future__ import annotations

import hashlib
import re

import pytest

from octoroute.cli import main
from octoroute.config import parse_config
from octoroute.key_command import PREFIX, new_key
from tests.unit.test_config_auth import FLEET

_KEY = re.compile(r"^  (sk-octo-\S+)$", re.MULTILINE)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["key", "new", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def entry_of(out: str) -> str:
    return out[out.index("[[auth.keys]]") :]


def test_key_new_prints_a_key_once_and_an_entry_whose_hash_is_the_keys(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "alice")

    assert code == 0
    (key,) = _KEY.findall(out)
    assert out.count(key) == 1
    config = parse_config(FLEET + entry_of(out), environ={})
    assert config.auth is not None
    (entry,) = config.auth.keys
    assert entry.name == "alice"
    assert entry.key_sha256 == hashlib.sha256(key.encode()).hexdigest()
    assert not entry.admin


def test_key_new_admin_makes_an_admin_entry(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ops", "--admin")

    config = parse_config(FLEET + entry_of(out), environ={})
    assert code == 0
    assert config.auth is not None
    assert config.auth.keys[0].admin


def test_its_commented_options_are_valid_when_uncommented(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out, _ = run(capsys, "laptop")
    entry = re.sub(r"^# ", "", entry_of(out), flags=re.MULTILINE)

    config = parse_config(FLEET + entry, environ={})

    assert config.auth is not None
    key = config.auth.keys[0]
    assert (key.requests_per_minute, key.tokens_per_minute, key.max_concurrent) == (60, 200000, 4)


def test_every_key_is_new_and_long(capsys: pytest.CaptureFixture[str]) -> None:
    keys = {new_key() for _ in range(100)}

    assert len(keys) == 100
    assert all(k.startswith(PREFIX) and len(k) == len(PREFIX) + 43 for k in keys)
    assert all(re.fullmatch(r"sk-octo-[A-Za-z0-9_-]{43}", k) for k in keys)


def test_a_name_the_config_would_refuse_is_refused_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "two words")

    assert code == 2
    assert out == ""
    assert "must be 1 to 64 letters, digits" in err
