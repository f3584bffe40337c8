"""``[routing] model_file`` and ``confidence_threshold``: resolved, read and checked at load time."""

from __future__ import annotations

from pathlib import Path

import pytest

from octoroute.config import ConfigError, load_config, parse_config
from octoroute.config.summary import summarize
from octoroute.config.template import TEMPLATE
from octoroute.enums import Strategy
from octoroute.routing.model_file import shipped_model_path
from tests.learned_models import SURE_FAST, model_data, write_model

ROUTING = '[routing]\nstrategy = "learned"\n'


def with_routing(extra: str) -> str:
    """The template (without its ``confidence_threshold``) with ``extra`` keys added to its
    ``[routing]`` table."""
    assert ROUTING in TEMPLATE
    lines = TEMPLATE.replace(ROUTING, ROUTING + extra).splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("confidence_threshold = 0.6"))


def problems(text: str, source: Path | None = None) -> list[str]:
    if source is None:
        with pytest.raises(ConfigError) as caught:
            parse_config(text)
    else:
        source.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_config(source)
    return list(caught.value.problems)


def test_defaults_use_the_shipped_model_and_a_threshold() -> None:
    routing = parse_config(TEMPLATE).routing
    assert routing.model_file is None
    assert routing.confidence_threshold == 0.6


def test_model_file_is_resolved_against_the_config_files_folder(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    model = write_model(tmp_path / "models" / "mine.json.gz", model_data(words={"hi": SURE_FAST}))
    config_path = tmp_path / "config.toml"
    config_path.write_text(with_routing('model_file = "models/mine.json.gz"\n'), encoding="utf-8")
    assert load_config(config_path).routing.model_file == str(model)
    absolute = with_routing(f"model_file = {str(model)!r}\n".replace("'", '"'))
    assert parse_config(absolute).routing.model_file == str(model)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "file not found; check the path"),
        (b"\x1f\x8b garbage", "gzip data is truncated or corrupt"),
        (b'{"format": "octoroute-routing-model", "version": 1', "JSON is truncated or invalid"),
        (
            b'{"format": "octoroute-routing-model", "version": 1, "scheme": "other/9"}',
            "trained with feature scheme 'other/9'",
        ),
    ],
)
def test_a_bad_model_file_is_one_line_of_the_report(
    tmp_path: Path, content: bytes | None, fragment: str
) -> None:
    if content is not None:
        (tmp_path / "model.json").write_bytes(content)
    found = problems(with_routing('model_file = "model.json"\n'), tmp_path / "config.toml")
    assert len(found) == 1
    assert found[0].startswith(f"routing.model_file: {tmp_path / 'model.json'}: ")
    assert fragment in found[0]


def test_a_bad_model_file_is_reported_with_every_other_problem(tmp_path: Path) -> None:
    text = with_routing('model_file = "nope.json"\nconfidence_threshold = 1.5\n').replace(
        'default_importance = "normal"', 'default_importance = "urgent"'
    )
    found = problems(text, tmp_path / "config.toml")
    assert [line.split(":")[0] for line in found] == [
        "routing.default_importance",
        "routing.model_file",
        "routing.confidence_threshold",
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1.5", "routing.confidence_threshold: must be a probability from 0 to 1, got 1.5"),
        ("-0.1", "routing.confidence_threshold: must be a probability from 0 to 1, got -0.1"),
        ('"high"', 'routing.confidence_threshold: must be a number, got string "high"'),
        ('""', None),
    ],
)
def test_confidence_threshold_is_a_probability(value: str, message: str | None) -> None:
    key = "confidence_threshold" if message else "model_file"
    found = problems(with_routing(f"{key} = {value}\n"))
    assert found == [
        message
        or "routing.model_file: is empty; remove the key to use the model shipped with octoroute"
    ]


@pytest.mark.parametrize("threshold", [0, 0.75, 1])
def test_confidence_threshold_bounds_are_allowed(threshold: float) -> None:
    config = parse_config(with_routing(f"confidence_threshold = {threshold}\n"))
    assert config.routing.confidence_threshold == threshold


def test_the_learned_strategy_is_a_strategy() -> None:
    config = parse_config(TEMPLATE)
    assert config.routing.strategy is Strategy.LEARNED
    assert shipped_model_path().is_file()


def test_check_summarises_the_learned_model_and_the_threshold(tmp_path: Path) -> None:
    model = write_model(tmp_path / "mine.json.gz", model_data(words={"hi": SURE_FAST}))
    hybrid = summarize(
        parse_config(
            with_routing(f'model_file = "{model}"\nconfidence_threshold = 0.7\n').replace(
                'strategy = "learned"', 'strategy = "hybrid"'
            )
        )
    )
    assert f"learned model: {model}\n" in hybrid
    assert "the router model decides when the learned model's confidence is below 0.7" in hybrid
    learned = summarize(parse_config(TEMPLATE))
    assert "strategy learned\n" in learned  # never asks a router model
    assert "learned model: the model shipped with octoroute\n" in learned
    assert "learned model" not in summarize(parse_config(TEMPLATE.replace('"learned"', '"rule"')))
