"""``octoroute eval`` as a user runs it: a real process, the shipped dataset, the router model
asked over HTTP for ``llm``, and clear failures for a bad dataset."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Final

from octoroute.config.template import TEMPLATE
from octoroute.simulator import HttpError, SimulatedFleet, fleet_config_toml

DATASET: Final = Path(__file__).resolve().parents[1] / "data" / "routing_eval.jsonl"
DEADLINE: Final = 60.0


async def octoroute(*args: str) -> tuple[int, str, str]:
    """Run ``python -m octoroute ARGS`` without blocking the loop the simulated fleet serves on."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "octoroute",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), DEADLINE)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def small_dataset(tmp_path: Path) -> Path:
    rows = [
        {"messages": [{"role": "user", "content": "hi!"}], "expected_tier": "fast"},
        {
            "messages": [{"role": "user", "content": "Prove that sqrt(2) is irrational."}],
            "expected_tier": "deep",
        },
        {
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "expected_tier": "fast",
            "acceptable": ["fast", "balanced"],
        },
    ]
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def report_value(report: str, label: str) -> str:
    """The value printed after ``label`` on its report line."""
    line = next(line for line in report.splitlines() if line.startswith(label))
    return line[len(label) :].strip()


async def test_rule_report_on_the_shipped_dataset_meets_the_documented_quality(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(TEMPLATE, encoding="utf-8")

    code, out, err = await octoroute(
        "eval", "--config", str(config), str(DATASET), "--strategy", "rule"
    )

    assert code == 0, err
    assert "strategy rule" in out.splitlines()[0]
    rows = sum(1 for line in DATASET.read_text(encoding="utf-8").splitlines() if line.strip())
    assert report_value(out, "requests") == str(rows)
    assert float(report_value(out, "acceptable accuracy")) >= 0.98
    assert float(report_value(out, "under-routing")) <= 0.01
    assert "p50" in report_value(out, "decision latency")
    shares = report_value(out, "share per tier").split()
    assert shares[0::2] == ["fast", "balanced", "deep"]
    assert abs(sum(float(share) for share in shares[1::2]) - 1.0) < 0.02
    assert "expected \\ chosen" in out
    assert "decisions by reason" in out


async def test_llm_report_asks_the_router_model_once_per_row(
    tmp_path: Path, fleet: SimulatedFleet
) -> None:
    router_model = fleet.balanced[0]
    router_model.behaviour.router_answer = "DEEP"
    config = tmp_path / "config.toml"
    config.write_text(fleet_config_toml(fleet, strategy="llm"), encoding="utf-8")

    code, out, err = await octoroute("eval", "--config", str(config), str(small_dataset(tmp_path)))

    assert code == 0, err
    assert "strategy llm" in out.splitlines()[0]
    shares = report_value(out, "share per tier").split()
    assert shares == ["fast", "0.00", "balanced", "0.00", "deep", "1.00"]
    assert len(router_model.chat_requests) == 3  # one routing prompt per row, no generation
    assert all(len(model.chat_requests) == 0 for model in (*fleet.fast, *fleet.deep))


async def test_a_failing_router_model_is_reported_and_the_rules_decide(
    tmp_path: Path, fleet: SimulatedFleet
) -> None:
    for model in fleet.balanced:
        model.behaviour.fault = HttpError(500)
    config = tmp_path / "config.toml"
    config.write_text(fleet_config_toml(fleet, strategy="llm"), encoding="utf-8")

    code, out, err = await octoroute("eval", "--config", str(config), str(small_dataset(tmp_path)))

    assert code == 0, err
    assert "llm fallbacks" in out
    assert report_value(out, "acceptable accuracy") == "1.000"  # the rules decided every row
    assert sum(len(m.chat_requests) for m in fleet.balanced) >= 3  # it was asked, and failed


async def test_a_bad_dataset_line_names_the_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(TEMPLATE, encoding="utf-8")
    dataset = tmp_path / "bad.jsonl"
    good = json.dumps({"messages": [{"role": "user", "content": "hi"}], "expected_tier": "fast"})
    dataset.write_text(good + "\n" + '{"messages": [], "expected_tier": "huge"}\n')

    code, out, err = await octoroute("eval", "--config", str(config), str(dataset))

    assert code == 2
    assert out == ""
    assert "bad.jsonl:2:" in err  # file:line, as compilers print it
    assert "expected_tier" in err
    assert "Traceback" not in err


async def test_a_missing_dataset_is_a_clean_error(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(TEMPLATE, encoding="utf-8")

    code, _, err = await octoroute("eval", "--config", str(config), str(tmp_path / "none.jsonl"))

    assert code == 2
    assert "none.jsonl" in err
    assert "Traceback" not in err


async def test_an_empty_acceptable_list_and_an_empty_dataset_are_clean_errors(
    tmp_path: Path,
) -> None:
    """Neither may pass as a measurement: ``acceptable: []`` lists no tier at all, and a
    file of no rows would print a report of zero requests."""
    config = tmp_path / "config.toml"
    config.write_text(TEMPLATE, encoding="utf-8")
    empty_list = tmp_path / "empty_list.jsonl"
    row = {"messages": [{"role": "user", "content": "hi"}], "expected_tier": "fast"}
    empty_list.write_text(json.dumps({**row, "acceptable": []}) + "\n")
    no_rows = tmp_path / "no_rows.jsonl"
    no_rows.write_text("\n")

    code, out, err = await octoroute("eval", "--config", str(config), str(empty_list))
    assert (code, out) == (2, "")
    assert "empty_list.jsonl:1:" in err
    assert "`acceptable` is empty" in err
    for args in (("eval", "--config", str(config)), ("eval", "--cv", "2")):
        code, out, err = await octoroute(*args, str(no_rows))
        assert (code, out) == (2, ""), args
        assert "no labelled rows" in err
        assert "Traceback" not in err


async def test_a_report_piped_into_a_reader_that_stops_early_is_not_a_traceback(
    tmp_path: Path,
) -> None:
    """``octoroute eval ... | head -1``: the reader closes the pipe after one line."""
    config = tmp_path / "config.toml"
    config.write_text(TEMPLATE, encoding="utf-8")
    read, write = os.pipe()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "octoroute",
        "eval",
        "--config",
        str(config),
        str(DATASET),
        stdout=write,
        stderr=asyncio.subprocess.PIPE,
    )
    os.close(write)
    os.close(read)  # before the report is written: every write of it meets a closed pipe
    _, stderr = await asyncio.wait_for(process.communicate(), DEADLINE)
    assert "Traceback" not in stderr.decode()
    assert "BrokenPipeError" not in stderr.decode()
