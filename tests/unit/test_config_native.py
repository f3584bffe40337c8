"""The keys of the Responses API (issue #16): per-endpoint ``native`` and ``[limits]
responses_store``."""

from __future__ import annotations

import pytest

from tests.unit.test_config_load import parse, problems, with_value


def test_defaults_are_no_native_protocol_and_a_store_of_1000() -> None:
    config = parse(with_value("server.port", 3000))
    assert config.models.fast[0].native == frozenset()
    assert config.limits.responses_store == 1000


def test_native_protocols_and_the_store_size_are_kept() -> None:
    data = with_value("models.fast.0.native", ["responses", "ollama"])
    data = with_value("limits.responses_store", 0, data)
    config = parse(data)
    assert config.models.fast[0].native == frozenset({"responses", "ollama"})
    assert config.models.balanced[0].native == frozenset()
    assert config.limits.responses_store == 0


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("responses", "must be a list of protocol names"),
        ([1], "must be a list of protocol names"),
        (["chat"], '"chat" is not a protocol octoroute knows'),
        (["responses", "responses"], "names a protocol twice"),
    ],
)
def test_a_bad_native_list_is_reported_with_its_path(value: object, fragment: str) -> None:
    (found,) = problems(with_value("models.fast.0.native", value))
    assert found.startswith("models.fast[0].native: ")
    assert fragment in found


def test_the_store_size_is_bounded() -> None:
    (found,) = problems(with_value("limits.responses_store", -1))
    assert found.startswith("limits.responses_store: must be")
