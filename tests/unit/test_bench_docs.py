"""The benchmark commands shown in the docs are ones the harness accepts.

The harness is run on demand, never in the suite, so a renamed flag or part would otherwise only
be found by the next person who copies the command from ``docs/performance.md``.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Final

import pytest
from bench.__main__ import PARTS, parse_args

ROOT: Final = Path(__file__).resolve().parents[2]
DOCS: Final = ("docs/performance.md", "bench/README.md", "docs/development.md", "README.md")
_FENCE: Final = re.compile(r"^```(?:sh|shell|bash|console)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_INLINE: Final = re.compile(r"`((?:\.venv/bin/)?python -m bench[^`]*)`")


def _bench_commands() -> list[tuple[str, list[str]]]:
    """``(doc, argv after 'python -m bench')`` for every documented harness command."""
    found: list[tuple[str, list[str]]] = []
    for doc in DOCS:
        text = (ROOT / doc).read_text(encoding="utf-8")
        lines = [line for block in _FENCE.findall(text) for line in block.splitlines()]
        lines += _INLINE.findall(text)
        for line in lines:
            if "-m bench" not in line:
                continue
            words = shlex.split(line.removeprefix("$ "), comments=True)
            for at in range(len(words) - 2):
                if words[at].endswith("python") and words[at + 1 : at + 3] == ["-m", "bench"]:
                    found.append((doc, words[at + 3 :]))
    return found


COMMANDS: Final = _bench_commands()


def test_the_docs_show_harness_commands() -> None:
    assert len(COMMANDS) >= 8
    assert {doc for doc, _ in COMMANDS} >= {"docs/performance.md", "bench/README.md"}


@pytest.mark.parametrize(("doc", "argv"), COMMANDS, ids=[f"{d}: {a}" for d, a in COMMANDS])
def test_every_documented_harness_command_parses(doc: str, argv: list[str]) -> None:
    args = parse_args(argv)
    assert set(args.parts) <= set(PARTS)


def test_a_wrong_part_is_refused() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--only", "latncy"])


def test_the_rule_benchmark_named_in_the_docs_exists() -> None:
    text = (ROOT / "docs/performance.md").read_text(encoding="utf-8")
    assert "bench/bench_rules.py" in text
    assert (ROOT / "bench/bench_rules.py").is_file()


def test_the_decision_benchmark_named_in_the_docs_exists_and_runs() -> None:
    from bench.decision import main

    text = (ROOT / "docs/performance.md").read_text(encoding="utf-8")
    assert "bench/decision.py" in text
    assert main([str(ROOT / "tests/data/routing_eval.jsonl"), "--repeat", "1"]) == 0


def _rule_bench_commands() -> list[list[str]]:
    """The arguments of every ``bench/bench_rules.py`` command in docs/performance.md."""
    text = (ROOT / "docs/performance.md").read_text(encoding="utf-8")
    blocks = [block.replace("\\\n", " ") for block in _FENCE.findall(text)]
    lines = [line for block in blocks for line in block.splitlines()]
    lines += re.findall(r"`([^`\n]*bench/bench_rules\.py[^`\n]*)`", text)
    found = []
    for line in lines:
        if "bench/bench_rules.py" not in line:
            continue
        words = shlex.split(line.removeprefix("$ "), comments=True)
        for at, word in enumerate(words):
            if word.endswith("bench/bench_rules.py"):
                found.append(words[at + 1 :])
    return found


def test_every_documented_rule_benchmark_command_parses() -> None:
    from bench.bench_rules import parse_args

    commands = _rule_bench_commands()
    assert any("--long" in argv for argv in commands)
    for argv in commands:
        parse_args(argv)  # exits (fails the test) on an unknown flag
