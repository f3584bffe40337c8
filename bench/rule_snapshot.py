"""Write every row's rule decision, signals and text scans as JSON Lines, to compare two trees.

Run: ``python bench/rule_snapshot.py [DATASET.jsonl] [--long N] -o FILE``

A change meant to make the rule signals cheaper (or to move their data) must decide exactly as
before. Run this once against the old source tree and once against the new, then ``diff`` the
two files: each line is one row's tier, reason, task type, signals and token estimate, followed by
the :func:`~octoroute.routing.signals.scan_text` result of each of its messages (whole, and as a
context message is scanned), with the keyword counts sorted. ``--long N`` adds the synthetic long
and multi-turn rows of ``bench/long_rows.py``. To run it against another tree, put that tree's
``src`` first on ``PYTHONPATH``::

    git archive BASE src | tar -x -C /tmp/base
    PYTHONPATH=/tmp/base/src .venv/bin/python bench/rule_snapshot.py --long 300 -o before.jsonl
    .venv/bin/python bench/rule_snapshot.py --long 300 -o after.jsonl
    diff before.jsonl after.jsonl && echo identical

``--skip FIELD`` leaves a scan field out (e.g. ``word_target`` when a change is meant to alter it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from octoroute.enums import Importance
from octoroute.routing.evaluate import load_dataset
from octoroute.routing.metadata import infer_metadata
from octoroute.routing.rules import decide_by_rules
from octoroute.routing.signals import scan_text
from octoroute.wire.messages import Message

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.long_rows import synthetic_rows

DEFAULT_DATASET = Path(__file__).resolve().parent.parent / "tests" / "data" / "routing_eval.jsonl"


def _scan(text: str, skip: frozenset[str], **kwargs: int) -> dict[str, Any]:
    scan = scan_text(text, **kwargs)
    out: dict[str, Any] = {}
    for field, value in scan._asdict().items():
        if field in skip:
            continue
        if field == "evidence":
            value = {
                "counts": dict(sorted((str(k), v) for k, v in value.counts.items())),
                "first": dict(sorted((str(k), v) for k, v in value.first.items())),
                "tokens": value.tokens,
                "unspaced_chars": value.unspaced_chars,
                "covered": value.covered,
            }
        out[field] = value
    return out


def snapshot(row: Sequence[Message], skip: frozenset[str]) -> dict[str, Any]:
    """One row's decision under every importance, and the scans of its messages."""
    out: dict[str, Any] = {}
    for importance in Importance:
        meta = infer_metadata(row, importance)
        decision = decide_by_rules(meta, refine=True)
        out[str(importance)] = {
            "tier": None if decision is None else str(decision.tier),
            "reason": None if decision is None else decision.reason,
            "task": str(meta.task_type),
            "signals": list(meta.signals),
            "tokens": meta.token_estimate,
        }
    out["scans"] = [
        {"whole": _scan(m.text(), skip), "context": _scan(m.text(), skip, keyword_full=0)}
        for m in row
    ]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dataset", nargs="?", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--long", type=int, default=0, help="add N synthetic long rows")
    parser.add_argument("--skip", action="append", default=[], help="a scan field to leave out")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    rows = [list(row.messages) for row in load_dataset(args.dataset)]
    if args.long:
        rows += synthetic_rows(rows, args.long)
    skip = frozenset(args.skip)
    with args.output.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(snapshot(row, skip), ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{len(rows)} rows -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
