"""``load_config`` and TOML syntax: files that cannot be read or parsed fail with one clear line."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from octoroute.config import TEMPLATE, ConfigError, load_config, parse_config

NOBODY = 65534
"""The unprivileged uid the permission test drops to when run as root."""


def load_error(path: str | Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    return caught.value


def syntax_error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="config.toml")
    return str(caught.value)


def test_load_config_reads_the_file_and_records_its_path(tmp_path: Path) -> None:
    path = tmp_path / "octoroute.toml"
    path.write_text(TEMPLATE, encoding="utf-8")

    config = load_config(path, environ={})

    assert config.source == str(path)
    assert config.server.port == 3000


def test_load_config_accepts_a_plain_string_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.toml").write_text(TEMPLATE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    assert load_config("config.toml", environ={}).source == "config.toml"


def test_missing_relative_file_names_the_working_directory_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    error = load_error("config.toml")

    assert error.source == "config.toml"
    assert str(error) == (
        f"config.toml: file not found (relative to the working directory {os.getcwd()}); "
        "check the path, or create the file with: octoroute config -o config.toml"
    )


def test_missing_absolute_file_does_not_mention_the_working_directory(tmp_path: Path) -> None:
    path = tmp_path / "my config.toml"

    message = str(load_error(path))

    assert message == (
        f"{path}: file not found; check the path, or create the file with: "
        f"octoroute config -o '{path}'"
    )


def test_directory_given_as_config_says_so(tmp_path: Path) -> None:
    assert str(load_error(tmp_path)) == (
        f"{tmp_path}: is a directory; give the path of a TOML file, "
        f"e.g. --config {tmp_path}/config.toml"
    )


def _load_message_as(uid: int, path: Path) -> str:
    """``str(ConfigError)`` of loading ``path`` in a forked child running as ``uid``.

    Root reads any file, so the permission case is made real by dropping privileges in a child
    process instead of faking the error.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(read_end)
            os.setgid(uid)
            os.setuid(uid)
            try:
                load_config(path, environ={})
            except ConfigError as error:
                os.write(write_end, str(error).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, encoding="utf-8") as pipe:
        message = pipe.read()
    os.waitpid(pid, 0)
    return message


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs POSIX permissions")
def test_unreadable_file_says_which_permissions_to_check(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(TEMPLATE, encoding="utf-8")
    path.chmod(0)

    as_root = os.geteuid() == 0
    message = _load_message_as(NOBODY, path) if as_root else str(load_error(path))

    assert message == (
        f"{path}: permission denied; check that the user running octoroute can read the file "
        "(chmod +r) and enter each parent directory (chmod +x)"
    )


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_other_read_errors_are_reported_with_the_system_reason() -> None:
    # Reading /proc/self/mem from offset 0 fails with EIO: a real, non-permission OS error.
    assert str(load_error("/proc/self/mem")) == (
        "/proc/self/mem: cannot read the file: Input/output error"
    )


def test_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[server]\nhost = "caf\xe9"\n')

    assert str(load_error(path)) == (
        f"{path}: is not UTF-8 text (invalid byte at line 2); TOML files must be UTF-8"
    )


def test_a_byte_order_mark_is_skipped_and_the_digest_still_matches_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xef\xbb\xbf" + TEMPLATE.encode("utf-8"))

    config = load_config(path, environ={})

    assert config.server.port == parse_config(TEMPLATE, environ={}).server.port
    # The file watcher compares the file's bytes with this digest: equal means unchanged.
    assert config.digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_syntax_error_after_a_byte_order_mark_counts_columns_as_an_editor_does() -> None:
    assert syntax_error("\ufeff= 1\n") == (
        "config.toml: invalid TOML at line 1, column 1: invalid statement"
    )
    assert syntax_error("\ufeffa = \n") == (
        "config.toml: invalid TOML at line 1, column 5: invalid value (is a string missing its "
        "double quotes?)"
    )


def test_invalid_file_content_is_validated_like_a_string(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(TEMPLATE.replace("port = 3000", 'port = "3000"'), encoding="utf-8")

    error = load_error(path)

    assert error.source == str(path)
    assert error.problems == ('server.port: must be an integer, got string "3000"',)


def test_toml_syntax_error_gives_line_and_column() -> None:
    assert syntax_error('[server]\nhost = "0.0.0.0"\nport = \n') == (
        "config.toml: invalid TOML at line 3, column 8: invalid value "
        "(is a string missing its double quotes?)"
    )


def test_unquoted_string_gets_a_hint() -> None:
    assert syntax_error("[routing]\nstrategy = hybrid\n") == (
        "config.toml: invalid TOML at line 2, column 12: invalid value "
        "(is a string missing its double quotes?)"
    )


def test_key_set_twice_is_a_syntax_error_at_the_second_one() -> None:
    assert syntax_error("[server]\nport = 1\nport = 2\nhost = 'x'\n") == (
        "config.toml: invalid TOML at line 3, column 9: cannot overwrite a value "
        "(is a key set twice?)"
    )


def test_table_declared_twice_names_the_table() -> None:
    assert syntax_error("[server]\nport = 1\n\n[server]\n") == (
        "config.toml: invalid TOML at line 4, column 8: table [server] is declared twice"
    )


def test_error_at_the_end_of_the_file_names_the_last_line() -> None:
    assert syntax_error('[server]\nhost = "0.0.0.0') == (
        "config.toml: invalid TOML at the end of the file (line 2): unterminated string"
    )


def test_absurdly_long_integer_is_a_syntax_problem_not_a_traceback() -> None:
    assert syntax_error("[server]\nport = " + "9" * 5000 + "\n") == (
        "config.toml: invalid TOML: an integer has more digits than any setting could need"
    )


def test_arrays_nested_past_the_parsers_recursion_limit_are_a_syntax_problem() -> None:
    deep = "[" * 5000 + "]" * 5000
    assert syntax_error(f"[server]\nhosts = {deep}\n") == (
        "config.toml: invalid TOML: arrays or inline tables nested too deeply to read"
    )


def test_syntax_error_problem_is_one_line_without_a_key_path() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("= 1\n")

    error = caught.value
    assert error.source == "<string>"
    assert error.file_level is True
    assert len(error.problems) == 1
    assert str(error).startswith("<string>: invalid TOML at line 1, column 1: ")
