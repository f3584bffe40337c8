"""Replay a labelled dataset through a router and measure the quality of its decisions.

A dataset is JSON Lines, one request per line::

    {"messages": [{"role": "user", "content": "hi"}], "expected_tier": "fast",
     "acceptable": ["fast"], "note": "small talk"}

``acceptable`` lists every tier that would answer well (it must include ``expected_tier``;
it defaults to just that tier). Besides exact accuracy the report gives the two errors that
matter to an operator, in the tier order fast < balanced < deep: **under-routing** (cheaper than
every acceptable tier: the answer will be poor) and **over-routing** (pricier than every
acceptable tier: money and latency wasted). Only decisions are replayed; nothing is generated.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final, Protocol

import msgspec

from octoroute.enums import TIERS, Importance, TaskType, Tier
from octoroute.routing.strategy import Decision
from octoroute.wire.messages import Message

_RANK: Final = {tier: index for index, tier in enumerate(TIERS)}


class SupportsRoute(Protocol):
    """What :func:`evaluate` needs: :class:`~octoroute.routing.strategy.Router` provides it."""

    async def route(
        self,
        messages: Sequence[Message],
        importance: Importance,
        *,
        stated_task: TaskType | None = None,
    ) -> Decision:
        """Decide a tier for ``messages``."""
        ...


class DatasetError(ValueError):
    """A dataset line is not a valid row; the message names the file and line."""


class EvalRow(msgspec.Struct, frozen=True):
    """One labelled request."""

    messages: tuple[Message, ...]
    expected_tier: Tier
    acceptable: tuple[Tier, ...]
    note: str | None = None
    line: int = 0


class _RawRow(msgspec.Struct, forbid_unknown_fields=True):
    messages: list[Message]
    expected_tier: Tier
    acceptable: list[Tier] | None = None
    note: str | None = None


class Miss(msgspec.Struct, frozen=True):
    """A row whose chosen tier differs from the expected one."""

    line: int
    expected: Tier
    chosen: Tier
    acceptable: bool
    """Whether the chosen tier was still in the acceptable set."""
    reason: str
    preview: str
    note: str | None = None


class EvalReport(msgspec.Struct, frozen=True):
    """The quality of a router's decisions on a dataset."""

    count: int
    accuracy: float
    acceptable_accuracy: float
    under_routing: float
    over_routing: float
    confusion: dict[str, dict[str, int]]
    """``confusion[expected][chosen]``: how many rows."""
    share: dict[str, float]
    """Fraction of decisions per chosen tier."""
    p50_us: float
    p99_us: float
    reasons: dict[str, int]
    fallbacks: dict[str, int]
    misses: tuple[Miss, ...]


def parse_rows(lines: Iterable[str], source: str = "<memory>") -> list[EvalRow]:
    """Parse dataset lines (blank lines are skipped); :class:`DatasetError` names the bad one."""
    rows: list[EvalRow] = []
    decoder = msgspec.json.Decoder(_RawRow)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = decoder.decode(line)
        except msgspec.DecodeError as error:
            raise DatasetError(f"{source}:{number}: {error}") from None
        if not raw.messages:
            raise DatasetError(f"{source}:{number}: `messages` is empty")
        acceptable = tuple(raw.acceptable or (raw.expected_tier,))
        if raw.expected_tier not in acceptable:
            raise DatasetError(
                f"{source}:{number}: `acceptable` {[str(t) for t in acceptable]} does not "
                f"include expected_tier {str(raw.expected_tier)!r}"
            )
        rows.append(
            EvalRow(tuple(raw.messages), raw.expected_tier, acceptable, raw.note, line=number)
        )
    return rows


def load_dataset(path: str | Path) -> list[EvalRow]:
    """Read a JSON Lines dataset from ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: cannot read dataset: {error}") from None
    return parse_rows(text.splitlines(), source=str(path))


def _percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def _preview(row: EvalRow) -> str:
    users = [m for m in row.messages if m.role == "user"]
    text = " ".join((users[-1] if users else row.messages[-1]).text().split())
    return text if len(text) <= 70 else text[:69] + "…"


async def evaluate(
    router: SupportsRoute, rows: Sequence[EvalRow], importance: Importance = Importance.NORMAL
) -> EvalReport:
    """Route every row (decision only) and compute the report."""
    confusion = {str(e): {str(c): 0 for c in TIERS} for e in TIERS}
    chosen_counts = dict.fromkeys(TIERS, 0)
    reasons: dict[str, int] = {}
    fallbacks: dict[str, int] = {}
    latencies: list[float] = []
    misses: list[Miss] = []
    exact = ok = under = over = 0
    for row in rows:
        decision = await router.route(row.messages, importance)
        tier = decision.tier
        latencies.append(decision.routing_ms * 1000.0)
        confusion[str(row.expected_tier)][str(tier)] += 1
        chosen_counts[tier] += 1
        reasons[decision.reason] = reasons.get(decision.reason, 0) + 1
        if decision.fallback is not None:
            fallbacks[decision.fallback] = fallbacks.get(decision.fallback, 0) + 1
        ranks = [_RANK[t] for t in row.acceptable]
        exact += tier is row.expected_tier
        ok += tier in row.acceptable
        under += _RANK[tier] < min(ranks)
        over += _RANK[tier] > max(ranks)
        if tier is not row.expected_tier:
            misses.append(
                Miss(
                    row.line,
                    row.expected_tier,
                    tier,
                    tier in row.acceptable,
                    decision.reason,
                    _preview(row),
                    row.note,
                )
            )
    total = len(rows)
    latencies.sort()

    def rate(n: int) -> float:
        return n / total if total else 0.0

    return EvalReport(
        count=total,
        accuracy=rate(exact),
        acceptable_accuracy=rate(ok),
        under_routing=rate(under),
        over_routing=rate(over),
        confusion=confusion,
        share={str(tier): rate(n) for tier, n in chosen_counts.items()},
        p50_us=_percentile(latencies, 0.50),
        p99_us=_percentile(latencies, 0.99),
        reasons=dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0]))),
        fallbacks=fallbacks,
        misses=tuple(misses),
    )


def format_report(report: EvalReport, *, max_misses: int = 40) -> str:
    """A plain-text table of the report, misses outside the acceptable set listed first."""
    lines = [
        f"requests             {report.count}",
        f"accuracy             {report.accuracy:.3f}",
        f"acceptable accuracy  {report.acceptable_accuracy:.3f}",
        f"under-routing        {report.under_routing:.3f}",
        f"over-routing         {report.over_routing:.3f}",
        f"decision latency     p50 {report.p50_us:.1f} µs   p99 {report.p99_us:.1f} µs",
        "share per tier       "
        + "   ".join(f"{tier} {share:.2f}" for tier, share in report.share.items()),
        "",
        "expected \\ chosen    " + "".join(f"{tier!s:>10}" for tier in TIERS),
    ]
    for expected, row in report.confusion.items():
        lines.append(f"{expected:<21}" + "".join(f"{row[str(tier)]:>10}" for tier in TIERS))
    if report.fallbacks:
        lines += [
            "",
            "llm fallbacks        " + ", ".join(f"{k} {v}" for k, v in report.fallbacks.items()),
        ]
    lines += ["", "decisions by reason"]
    lines += [f"  {count:>5}  {reason}" for reason, count in report.reasons.items()]
    bad = [m for m in report.misses if not m.acceptable]
    near = [m for m in report.misses if m.acceptable]
    for title, group in (
        ("outside the acceptable set", bad),
        ("acceptable but not expected", near),
    ):
        if not group:
            continue
        lines += ["", f"misses {title} ({len(group)})"]
        for miss in group[:max_misses]:
            lines.append(
                f"  line {miss.line:<4} expected {miss.expected!s:<8} chose "
                f"{miss.chosen!s:<8} {miss.reason:<24} {miss.preview}"
            )
        if len(group) > max_misses:
            lines.append(f"  … {len(group) - max_misses} more")
    return "\n".join(lines)
