"""Benchmark of the whole ``model: auto`` decision, per strategy, over a dataset's requests.

Run: ``python bench/decision.py [DATASET.jsonl ...] [--repeat N] [--model FILE]``

For every row of the datasets (default: ``data/routing/train/*.jsonl``, rows up to 12,000
characters, many multi-turn) it times, warm and in one process, ``rows x repeat`` decisions of:

* ``rule``: ``Router.route`` with ``strategy = "rule"``: ``infer_metadata`` and the rule table;
* ``learned``: ``Router.route`` with ``strategy = "learned"``: ``infer_metadata``, the
  features, the model's scores and the least-cost tier (the shipped model, or ``--model``);

and, to show where the learned decision's time goes, its parts alone: ``infer_metadata``,
``features`` (``extract``) and ``model`` (scores, softmax and decision on ready features).

``Router.route`` is driven without an event loop (neither strategy awaits anything), so the
numbers are the decision's own CPU time, as ``routing_ms`` reports it. Latencies are p50 and
p99 in microseconds (``time.perf_counter_ns``) over every timed call, and over each row's best
of its passes (the estimate of a quiet core on a busy host), plus the p99 of the long rows
(latest turn of 4,000 characters or more). Pin it to a core for stable numbers:
``taskset -c 0 .venv/bin/python bench/decision.py``.

``--snapshot FILE`` times nothing: it writes, per row and importance, what both strategies
decide (tier, reason, metadata, confidence), the learned view ``POST /route`` explains and the
features, plus every message's text and code scans, as JSON Lines. A change meant to make the
decision cheaper must leave that file byte for byte the same: run it before and after (or with
another tree's ``src`` first on ``PYTHONPATH``) and ``cmp`` the two files.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from octoroute.config.schema import RoutingConfig
from octoroute.enums import Importance, Strategy
from octoroute.routing.evaluate import EvalRow, load_dataset
from octoroute.routing.features import extract
from octoroute.routing.learned import LearnedModel, load_model
from octoroute.routing.metadata import infer_metadata
from octoroute.routing.signals import scan_code, scan_text
from octoroute.routing.strategy import Decision, Router

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASETS = sorted((ROOT / "data" / "routing" / "train").glob("*.jsonl"))
LONG_CHARS = 4000
N = Importance.NORMAL


def run_sync(coroutine: Coroutine[Any, Any, Decision]) -> Decision:
    """Run a coroutine that never suspends (a rule or learned decision) to its result."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        result: Decision = stop.value
        return result
    coroutine.close()
    raise RuntimeError("the decision awaited something: it is not a pure decision")


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1] if ordered else 0.0


def latest_chars(row: EvalRow) -> int:
    users = [message for message in row.messages if message.role == "user"]
    return len(users[-1].text()) if users else 0


def time_each(
    rows: Sequence[EvalRow], work: Callable[[EvalRow], object], repeat: int
) -> list[list[float]]:
    """``timings[pass][row]`` in microseconds: one warm-up pass, then ``repeat`` passes."""
    for row in rows:
        work(row)
    timings: list[list[float]] = []
    clock = time.perf_counter_ns
    for _ in range(repeat):
        one_pass = []
        for row in rows:
            started = clock()
            work(row)
            one_pass.append((clock() - started) / 1000.0)
        timings.append(one_pass)
    return timings


def _decision(decision: Decision) -> dict[str, Any]:
    meta = decision.metadata
    return {
        "tier": str(decision.tier),
        "source": str(decision.source),
        "reason": decision.reason,
        "confidence": decision.confidence,
        "task": str(meta.task_type),
        "signals": list(meta.signals),
        "tokens": meta.token_estimate,
    }


def _scan(scan: tuple[Any, ...]) -> list[Any]:
    """A scan's fields, its keyword counts and positions sorted (a set's order varies with the
    process's string hashing)."""
    evidence, *fields = scan
    counts, first, *sizes = evidence
    return [sorted(counts.items()), sorted(first.items()), *sizes, *fields]


def snapshot(rows: Sequence[EvalRow], model: LearnedModel, routers: dict[Strategy, Router]) -> str:
    """Every row's decisions, features and scans as JSON Lines (see the module's docstring)."""
    lines = []
    for row in rows:
        out: dict[str, Any] = {}
        for importance in Importance:
            meta = infer_metadata(row.messages, importance)
            view = routers[Strategy.LEARNED].learned_view(row.messages, meta)
            out[str(importance)] = {
                strategy.value: _decision(run_sync(router.route(row.messages, importance)))
                for strategy, router in routers.items()
            } | {
                "view": None
                if view is None
                else [str(view.tier), view.confidence, view.probabilities],
                "features": extract(row.messages, meta, model.spec)._asdict(),
            }
        out["scans"] = [
            [_scan(scan_text(message.text())), _scan(scan_text(message.text(), keyword_full=0)),
             _scan(scan_code(message.text(), keyword_full=0))]
            for message in row.messages
        ]  # fmt: skip
        lines.append(json.dumps(out, ensure_ascii=False, sort_keys=True, default=list))
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="*", type=Path, default=DEFAULT_DATASETS)
    parser.add_argument("--repeat", type=int, default=20, help="timed passes over the rows")
    parser.add_argument("--model", type=Path, help="a model file instead of the shipped one")
    parser.add_argument("--snapshot", type=Path, help="write the decisions here, time nothing")
    args = parser.parse_args(argv)
    rows = [row for path in args.datasets for row in load_dataset(path)]
    if not rows:
        print("no rows", file=sys.stderr)
        return 2
    model: LearnedModel = load_model(args.model)
    routers = {
        strategy: Router(RoutingConfig(strategy=strategy), learned=model)
        for strategy in (Strategy.RULE, Strategy.LEARNED)
    }
    if args.snapshot is not None:
        args.snapshot.write_text(snapshot(rows, model, routers), encoding="utf-8")
        print(f"{len(rows)} rows -> {args.snapshot}")
        return 0
    metadata = {id(row): infer_metadata(row.messages, N) for row in rows}
    features = {id(row): extract(row.messages, metadata[id(row)], model.spec) for row in rows}
    cases: dict[str, Callable[[EvalRow], object]] = {
        "rule (Router.route)": lambda row: run_sync(routers[Strategy.RULE].route(row.messages, N)),
        "learned (Router.route)": lambda row: run_sync(
            routers[Strategy.LEARNED].route(row.messages, N)
        ),
        "  infer_metadata": lambda row: infer_metadata(row.messages, N),
        "  features": lambda row: extract(row.messages, metadata[id(row)], model.spec),
        "  model": lambda row: model.decide(model.probabilities(model.scores(features[id(row)]))),
    }
    long_rows = [index for index, row in enumerate(rows) if latest_chars(row) >= LONG_CHARS]
    longest = max(latest_chars(row) for row in rows)
    turns = sum(len(row.messages) > 1 for row in rows)
    print(
        f"{len(rows)} rows ({turns} multi-turn, {len(long_rows)} with a latest turn of "
        f"{LONG_CHARS}+ characters, longest {longest}) x {args.repeat} passes, "
        f"Python {sys.version.split()[0]}\n"
    )
    print(
        "All calls: every timed call. Best per row: each row's fastest of its passes, whose\n"
        "percentiles over the rows estimate a quiet core's on a shared host (preemption and\n"
        "cache pollution only ever add time to a deterministic computation).\n"
    )
    print(
        f"| {'decision':<24} | all p50 | all p99 | best p50 | best p99 | best max | long best p99 |"
    )
    print(f"|{'-' * 26}|--------:|--------:|---------:|---------:|---------:|--------------:|")
    gc.collect()
    for name, work in cases.items():
        timings = time_each(rows, work, args.repeat)
        every = [value for one_pass in timings for value in one_pass]
        best = [min(column) for column in zip(*timings, strict=True)]
        long_best = [best[index] for index in long_rows]
        print(
            f"| {name:<24} | {percentile(every, 0.5):7.1f} | {percentile(every, 0.99):7.1f} "
            f"| {percentile(best, 0.5):8.1f} | {percentile(best, 0.99):8.1f} "
            f"| {max(best):8.1f} | {percentile(long_best, 0.99):13.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
