"""Benchmark of the rule decision, and its quality next to octoroute v1's keyword rules.

Run: ``python bench/bench_rules.py [DATASET.jsonl] [--repeat N] [--long N] [--best-of] [--no-eval]
[--untimed PASSES]``

It reports, over every row of the dataset (default ``tests/data/routing_eval.jsonl``):

* the latency of the rule decision for a ``model: auto`` request, i.e. ``infer_metadata`` plus
  ``decide_by_rules``, of ``infer_metadata`` alone and of ``decide_by_rules`` alone, as p50/p99
  in microseconds over ``rows x repeat`` timed calls (``time.perf_counter_ns``, one process,
  warm); with ``--long N``, the same over N synthetic long and multi-turn rows of up to 12,000
  characters (``bench/long_rows.py``), the inputs where the scan's bounds matter; with
  ``--best-of``, the percentiles are over each row's fastest of its ``repeat`` calls (a quiet
  core: on a shared machine the slowest calls measure the neighbours);
* the eval report of ``Router(strategy=rule)`` and of :class:`V1Reference`, a re-implementation
  of v1.0.0's inference (English substrings in the last user message, then v1's table, then v1's
  default tier, which is fast when priorities tie). The reference exists only for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.long_rows import MAX_CHARS, synthetic_rows
from octoroute.config.schema import RoutingConfig
from octoroute.enums import DecisionSource, Importance, Strategy, TaskType, Tier
from octoroute.routing.evaluate import EvalReport, evaluate, format_report, load_dataset
from octoroute.routing.metadata import RouteMetadata, estimate_tokens, infer_metadata
from octoroute.routing.rules import decide_by_rules
from octoroute.routing.strategy import Decision, Router
from octoroute.wire.messages import Message

DEFAULT_DATASET = Path(__file__).resolve().parent.parent / "tests" / "data" / "routing_eval.jsonl"


def v1_task_type(messages: Sequence[Message]) -> TaskType:
    """v1.0.0's task inference (``src/handlers/openai/types.rs``): first substring hit wins."""
    users = [m for m in messages if m.role == "user"]
    text = users[-1].text().lower() if users else ""
    if any(k in text for k in ("code", "function", "implement", "```", "programming", "debug")):
        return TaskType.CODE
    if any(k in text for k in ("analyze", "analysis", "compare", "evaluate")):
        return TaskType.DEEP_ANALYSIS
    if any(k in text for k in ("write a story", "creative", "poem", "fiction")):
        return TaskType.CREATIVE_WRITING
    if any(k in text for k in ("summarize", "summary", "tldr")):
        return TaskType.DOCUMENT_SUMMARY
    if "hello" in text or "hi " in text or "hey " in text or text.startswith("how are"):
        return TaskType.CASUAL_CHAT
    return TaskType.QUESTION_ANSWER


class V1Reference:
    """v1's whole ``rule`` strategy for ``model: auto``: substring task, v1 table, default fast."""

    async def route(
        self,
        messages: Sequence[Message],
        importance: Importance,
        *,
        stated_task: TaskType | None = None,
    ) -> Decision:
        """Decide as v1 did (importance was always normal on its OpenAI path)."""
        started = time.perf_counter()
        task = v1_task_type(messages) if stated_task is None else stated_task
        meta = RouteMetadata(estimate_tokens(messages), Importance.NORMAL, task, ())
        rule = decide_by_rules(meta, refine=False)
        tier, reason = (Tier.FAST, "default_tier") if rule is None else (rule.tier, rule.reason)
        elapsed = (time.perf_counter() - started) * 1000.0
        return Decision(tier, DecisionSource.RULE, reason, meta, None, elapsed)


def _percentiles(samples_ns: list[int]) -> tuple[float, float]:
    samples_ns.sort()

    def at(fraction: float) -> float:
        return samples_ns[max(1, math.ceil(fraction * len(samples_ns))) - 1] / 1000.0

    return at(0.50), at(0.99)


def time_decisions(
    rows: Sequence[Sequence[Message]], repeat: int, *, best_of: bool = False
) -> dict[str, tuple[float, float]]:
    """p50/p99 (µs) of the full rule decision, of the inference and of the table alone.

    Over every one of ``rows x repeat`` calls; with ``best_of``, over each row's fastest of its
    ``repeat`` calls instead: what a row costs when nothing else runs on the core (on a shared
    machine, a call the scheduler interrupts is a sample of the machine, not of the code).
    """
    metas = [infer_metadata(messages, Importance.NORMAL) for messages in rows]
    full: list[list[int]] = [[] for _ in rows]
    infer: list[list[int]] = [[] for _ in rows]
    table: list[list[int]] = [[] for _ in rows]
    clock = time.perf_counter_ns
    normal = Importance.NORMAL
    for _ in range(repeat):
        for index, (messages, meta) in enumerate(zip(rows, metas, strict=True)):
            start = clock()
            decide_by_rules(infer_metadata(messages, normal), refine=True)
            middle = clock()
            infer_metadata(messages, normal)
            inferred = clock()
            decide_by_rules(meta, refine=True)
            end = clock()
            full[index].append(middle - start)
            infer[index].append(inferred - middle)
            table[index].append(end - inferred)

    def samples(per_row: list[list[int]]) -> list[int]:
        if best_of:
            return [min(times) for times in per_row]
        return [time for times in per_row for time in times]

    return {
        "infer_metadata + decide_by_rules": _percentiles(samples(full)),
        "infer_metadata alone": _percentiles(samples(infer)),
        "decide_by_rules alone": _percentiles(samples(table)),
    }


def _print_latency(
    title: str, rows: Sequence[Sequence[Message]], repeat: int, *, best_of: bool
) -> None:
    chars = sorted(sum(len(m.text()) for m in messages) for messages in rows)
    turns = sum(len(messages) > 1 for messages in rows)
    how = f"best of {repeat} per row" if best_of else f"{repeat} passes"
    print(
        f"{title}: {len(rows)} rows x {how}, {turns} multi-message, "
        f"median {chars[len(chars) // 2]:,} / max {chars[-1]:,} chars"
    )
    for name, (p50, p99) in time_decisions(rows, repeat, best_of=best_of).items():
        print(f"  {name:<34} p50 {p50:8.1f} µs   p99 {p99:8.1f} µs")


async def _reports(dataset: Path) -> tuple[EvalReport, EvalReport]:
    rows = load_dataset(dataset)
    ours = await evaluate(Router(RoutingConfig(strategy=Strategy.RULE)), rows)
    v1 = await evaluate(V1Reference(), rows)
    return ours, v1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (the docs' commands are checked against it)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dataset", nargs="?", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--repeat", type=int, default=20, help="timed passes over the dataset")
    parser.add_argument(
        "--long",
        type=int,
        default=0,
        metavar="N",
        help=f"also time N synthetic long and multi-turn rows (up to {MAX_CHARS:,} characters)",
    )
    parser.add_argument(
        "--best-of",
        action="store_true",
        help="percentiles over each row's fastest pass (a quiet core), not over every call",
    )
    parser.add_argument("--no-eval", action="store_true", help="latency only, no eval reports")
    parser.add_argument(
        "--untimed",
        type=int,
        metavar="PASSES",
        help="only run infer_metadata over the rows (the --long ones if given) PASSES times, "
        "untimed: for valgrind, whose instruction count does not depend on the machine's load",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the latency table and both eval reports."""
    args = parse_args(argv)
    rows = [row.messages for row in load_dataset(args.dataset)]
    if args.untimed is not None:
        chosen = synthetic_rows(rows, args.long) if args.long else rows
        for messages in chosen:  # once to warm up, then the counted passes
            infer_metadata(messages, Importance.NORMAL)
        for _ in range(args.untimed):
            for messages in chosen:
                infer_metadata(messages, Importance.NORMAL)
        return 0
    print(f"rule decision latency, Python {sys.version.split()[0]}")
    _print_latency(str(args.dataset.name), rows, args.repeat, best_of=args.best_of)
    if args.long:
        long = synthetic_rows(rows, args.long)
        _print_latency(
            "synthetic long and multi-turn rows", long, args.repeat, best_of=args.best_of
        )
    if args.no_eval:
        return 0
    ours, v1 = asyncio.run(_reports(args.dataset))
    print("\n== octoroute rules (strategy rule) ==")
    print(format_report(ours, max_misses=10))
    print("\n== v1.0.0 keyword rules (reference) ==")
    print(format_report(v1, max_misses=0))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
