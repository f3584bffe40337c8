"""``octoroute train`` and the learned side of ``octoroute eval`` as a user runs them: real
processes, files on disk, the model used by ``check``, ``eval`` and ``serve``, clean failures."""

from __future__ import annotations

import json
import re
from pathlib import Path

from octoroute.config.template import TEMPLATE
from octoroute.routing.model_file import read_model_file
from tests.integration.test_eval_cli import octoroute
from tests.learned_models import FUNCTIONS, GREETINGS, PROOFS


def write_rows(path: Path, lang: str) -> Path:
    """A small labelled set whose rows carry fields the replay does not read."""
    rows = []
    for texts, tier, acceptable, category in (
        (GREETINGS, "fast", ["fast"], "smalltalk"),
        (FUNCTIONS, "balanced", ["fast", "balanced"], "code"),
        (PROOFS, "deep", ["deep"], "proof"),
    ):
        for number, text in enumerate(texts):
            rows.append(
                {
                    "id": f"{lang}-{category}-{number}",
                    "messages": [{"role": "user", "content": text}],
                    "expected_tier": tier,
                    "acceptable": acceptable,
                    "lang": lang,
                    "category": category,
                    "note": "test row",
                    "rationale": "a field octoroute does not know",
                    "difficulty": number,
                }
            )
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def value(report: str, label: str) -> float:
    line = next(line for line in report.splitlines() if line.startswith(label))
    return float(line[len(label) :].split()[0])


async def test_train_writes_a_model_the_router_uses_and_reports_cross_validation(
    tmp_path: Path,
) -> None:
    first = write_rows(tmp_path / "a.jsonl", "en")
    second = write_rows(tmp_path / "b.jsonl", "de")
    model = tmp_path / "model.json.gz"

    code, out, err = await octoroute(
        "train", str(first), str(second), "-o", str(model), "--folds", "3", "--group-by", "file"
    )

    assert code == 0, err
    assert "trained on 36 rows from 2 file(s); seed 0" in out
    assert "3-fold cross-validation (stratified by expected tier)" in out
    assert value(out, "acceptable accuracy") >= 0.8
    assert "by expected tier" in out
    assert re.search(r"^fast\s+12\s", out, re.MULTILINE)
    assert "grouped cross-validation: each file held out in turn (2 groups)" in out
    assert "confidence (hybrid asks the router model below the threshold)" in out
    assert f"wrote {model}:" in out
    assert "fold 1/3" in err  # progress goes to stderr
    data = read_model_file(model)
    assert data.training["files"] == ["a.jsonl", "b.jsonl"]
    assert data.training["rows"] == 36

    config = tmp_path / "config.toml"
    learned = TEMPLATE.replace(
        'strategy = "learned"', 'strategy = "learned"\nmodel_file = "model.json.gz"'
    )
    config.write_text(learned.replace("your-server", "127.0.0.1"), encoding="utf-8")
    code, out, err = await octoroute("check", "--config", str(config))
    assert code == 0, err
    assert f"learned model: {model}" in out
    code, out, err = await octoroute(
        "eval", "--config", str(config), str(first), "--by", "category"
    )
    assert code == 0, err
    assert "strategy learned" in out.splitlines()[0]
    assert value(out, "acceptable accuracy") >= 0.9  # rows it was trained on
    assert re.search(r"^proof\s+6\s", out, re.MULTILINE)


async def test_train_writes_the_under_costs_it_is_given_into_the_cost_matrix(
    tmp_path: Path,
) -> None:
    rows = write_rows(tmp_path / "a.jsonl", "en")
    model = tmp_path / "model.json"
    code, _, err = await octoroute("train", str(rows), "-o", str(model), "--folds", "3")
    assert code == 0, err
    assert read_model_file(model).cost == ((0.0, 1.0, 2.0), (1.5, 0.0, 1.0), (4.5, 3.0, 0.0))

    code, _, err = await octoroute(
        "train", str(rows), "-o", str(model), "--folds", "3",
        "--under-cost", "4", "--fast-under-cost", "2.5",
    )  # fmt: skip
    assert code == 0, err
    data = read_model_file(model)
    assert data.cost == ((0.0, 1.0, 2.0), (2.5, 0.0, 1.0), (6.5, 4.0, 0.0))
    assert data.training["options"]["fast_under_cost"] == 2.5
    assert data.training["options"]["under_cost"] == 4


async def test_training_twice_writes_the_same_bytes(tmp_path: Path) -> None:
    rows = write_rows(tmp_path / "a.jsonl", "en")
    outputs = []
    for name in ("one.json", "two.json"):
        code, _, err = await octoroute(
            "train", str(rows), "-o", str(tmp_path / name), "--folds", "3", "--seed", "3"
        )
        assert code == 0, err
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0].startswith(b"{")  # .json: plain JSON


async def test_eval_cv_reports_the_learned_strategy_per_field_without_a_config(
    tmp_path: Path,
) -> None:
    first = write_rows(tmp_path / "a.jsonl", "en")
    second = write_rows(tmp_path / "b.jsonl", "fr")

    code, out, err = await octoroute(
        "eval", str(first), str(second), "--cv", "3", "--by", "lang", "--by", "file"
    )

    assert code == 0, err
    assert "strategy learned, 3-fold cross-validation" in out.splitlines()[0]
    assert value(out, "requests") == 36
    assert "decision latency" not in out  # nothing was timed
    assert re.search(r"^by lang\nlang\s+rows", out, re.MULTILINE)
    assert re.search(r"^en\s+18\s", out, re.MULTILINE)
    assert re.search(r"^fr\s+18\s", out, re.MULTILINE)
    assert str(first) in out
    assert str(second) in out


async def test_train_and_eval_refuse_bad_input_cleanly(tmp_path: Path) -> None:
    rows = write_rows(tmp_path / "a.jsonl", "en")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "x"}], "acceptible": ["fast"], '
                   '"expected_tier": "fast"}\n', encoding="utf-8")  # fmt: skip
    cases = [
        (("train", str(bad), "-o", str(tmp_path / "m.json")), "bad.jsonl:1: unknown field 'acceptible'; did you mean 'acceptable'?"),
        (("train", str(rows), "-o", str(tmp_path / "m.json"), "--folds", "1"), "--folds must be at least 2"),
        (("train", str(rows), "-o", str(tmp_path / "no" / "m.json")), "cannot write"),
        (("train", str(rows), "-o", str(tmp_path / "m.json"), "--under-cost", "0.5"), "--under-cost must be between 1 and 100"),
        (("train", str(rows), "-o", str(tmp_path / "m.json"), "--fast-under-cost", "inf"), "--fast-under-cost must be between 1 and 100, got inf"),
        (("eval", str(rows), "--cv", "1"), "--cv needs at least 2 folds"),
        (("eval", str(rows), "--cv", "3", "--strategy", "rule"), "--cv measures the learned strategy"),
        (("eval", str(tmp_path / "none.jsonl"), "--cv", "3"), "none.jsonl: cannot read dataset"),
    ]  # fmt: skip
    for args, message in cases:
        code, _out, err = await octoroute(*args)
        assert code == 2, (args, err)
        assert message in err, (args, err)
        assert "Traceback" not in err
    assert not (tmp_path / "m.json").exists()


async def test_serve_and_check_refuse_a_corrupt_model_file_at_start_up(tmp_path: Path) -> None:
    (tmp_path / "model.json.gz").write_bytes(b"\x1f\x8b\x08\x00 truncated")
    config = tmp_path / "config.toml"
    config.write_text(
        TEMPLATE.replace(
            'strategy = "learned"', 'strategy = "hybrid"\nmodel_file = "model.json.gz"'
        ),
        encoding="utf-8",
    )
    for command in ("check", "serve"):
        code, _out, err = await octoroute(command, "--config", str(config))
        assert code == 2, err
        assert (
            f"routing.model_file: {tmp_path / 'model.json.gz'}: the gzip data is truncated" in err
        )
        assert "octoroute train" in err
        assert "Traceback" not in err
