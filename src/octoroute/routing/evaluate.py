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

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final, NamedTuple, Protocol

import msgspec

from octoroute.enums import TIERS, Importance, TaskType, Tier
from octoroute.routing.strategy import Decision
from octoroute.wire.messages import Message

_RANK: Final = {tier: index for index, tier in enumerate(TIERS)}
_OBJECT: Final = msgspec.json.Decoder(dict[str, object])


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


KNOWN_FIELDS: Final = ("messages", "expected_tier", "acceptable", "importance", "id", "note")
"""The fields a replay reads; any other field (``lang``, ``category``, ``rationale``...) is kept
as a label for ``--by`` and otherwise ignored."""
FILE_FIELD: Final = "file"
"""The pseudo-field ``--by file`` groups by: the dataset file a row came from."""


class EvalRow(msgspec.Struct, frozen=True):
    """One labelled request."""

    messages: tuple[Message, ...]
    expected_tier: Tier
    acceptable: tuple[Tier, ...]
    note: str | None = None
    line: int = 0
    importance: Importance | None = None
    """The row's own importance; ``None``: the router's default."""
    id: str | None = None
    source: str = "<memory>"
    """The file the row came from."""
    fields: Mapping[str, str] = msgspec.field(default_factory=dict)
    """Every scalar field of the row as text (``lang``, ``category``...), for ``--by``."""

    def label(self, field: str) -> str:
        """The row's value of ``field`` for a breakdown (``file``: its source file)."""
        if field == FILE_FIELD and FILE_FIELD not in self.fields:
            return self.source
        return self.fields.get(field, "(none)")


class _RawRow(msgspec.Struct):
    messages: list[Message]
    expected_tier: Tier
    acceptable: list[Tier] | None = None
    importance: Importance | None = None
    id: str | int | None = None
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
    source: str = "<memory>"
    id: str | None = None
    confidence: float | None = None


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
    """Parse dataset lines (blank lines are skipped); :class:`DatasetError` names the bad one.

    Fields a replay does not read are ignored, except one that looks like a misspelt known
    field (``acceptible``): that is refused, since ignoring it would change the labels.
    """
    rows: list[EvalRow] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = _OBJECT.decode(line)
            raw = msgspec.convert(data, _RawRow)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            raise DatasetError(f"{source}:{number}: {error}") from None
        for field in data:
            if field not in KNOWN_FIELDS:
                close = difflib.get_close_matches(field, KNOWN_FIELDS, n=1, cutoff=0.8)
                if close:
                    raise DatasetError(
                        f"{source}:{number}: unknown field {field!r}; did you mean {close[0]!r}?"
                    )
        if not raw.messages:
            raise DatasetError(f"{source}:{number}: `messages` is empty")
        if raw.acceptable is not None and not raw.acceptable:
            raise DatasetError(
                f"{source}:{number}: `acceptable` is empty; list every tier that would answer "
                f"well, expected_tier {str(raw.expected_tier)!r} included (or leave it out to "
                "mean expected_tier alone)"
            )
        acceptable = tuple(raw.acceptable or (raw.expected_tier,))
        if raw.expected_tier not in acceptable:
            raise DatasetError(
                f"{source}:{number}: `acceptable` {[str(t) for t in acceptable]} does not "
                f"include expected_tier {str(raw.expected_tier)!r}"
            )
        scalars = {
            key: str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in data.items()
            if isinstance(value, str | int | float | bool) and key != "note"
        }
        rows.append(
            EvalRow(
                tuple(raw.messages),
                raw.expected_tier,
                acceptable,
                raw.note,
                line=number,
                importance=raw.importance,
                id=None if raw.id is None else str(raw.id),
                source=source,
                fields=scalars,
            )
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


async def route_rows(
    router: SupportsRoute, rows: Sequence[EvalRow], importance: Importance = Importance.NORMAL
) -> list[Decision]:
    """Route every row (decision only), each with its own importance or ``importance``."""
    return [await router.route(row.messages, row.importance or importance) for row in rows]


async def evaluate(
    router: SupportsRoute, rows: Sequence[EvalRow], importance: Importance = Importance.NORMAL
) -> EvalReport:
    """Route every row (decision only) and compute the report."""
    return report(rows, await route_rows(router, rows, importance))


class Outcome(NamedTuple):
    """Whether one decision was right, as the report counts it."""

    exact: bool
    acceptable: bool
    under: bool
    over: bool


def outcome(row: EvalRow, tier: Tier) -> Outcome:
    """How ``tier`` fares against the row's labels."""
    ranks = [_RANK[t] for t in row.acceptable]
    return Outcome(
        tier is row.expected_tier,
        tier in row.acceptable,
        _RANK[tier] < min(ranks),
        _RANK[tier] > max(ranks),
    )


def report(rows: Sequence[EvalRow], decisions: Sequence[Decision]) -> EvalReport:
    """The report of ``decisions`` (one per row, in order)."""
    confusion = {str(e): {str(c): 0 for c in TIERS} for e in TIERS}
    chosen_counts = dict.fromkeys(TIERS, 0)
    reasons: dict[str, int] = {}
    fallbacks: dict[str, int] = {}
    latencies: list[float] = []
    misses: list[Miss] = []
    exact = ok = under = over = 0
    for row, decision in zip(rows, decisions, strict=True):
        tier = decision.tier
        latencies.append(decision.routing_ms * 1000.0)
        confusion[str(row.expected_tier)][str(tier)] += 1
        chosen_counts[tier] += 1
        reasons[decision.reason] = reasons.get(decision.reason, 0) + 1
        if decision.fallback is not None:
            fallbacks[decision.fallback] = fallbacks.get(decision.fallback, 0) + 1
        result = outcome(row, tier)
        exact += result.exact
        ok += result.acceptable
        under += result.under
        over += result.over
        if not result.exact:
            misses.append(
                Miss(
                    row.line,
                    row.expected_tier,
                    tier,
                    result.acceptable,
                    decision.reason,
                    _preview(row),
                    row.note,
                    source=row.source,
                    id=row.id,
                    confidence=decision.confidence,
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


class GroupStats(NamedTuple):
    """The quality of the decisions on the rows sharing one value of a field."""

    value: str
    rows: int
    accuracy: float
    acceptable_accuracy: float
    under_routing: float
    over_routing: float


def breakdown(
    rows: Sequence[EvalRow], decisions: Sequence[Decision], field: str
) -> list[GroupStats]:
    """Per value of ``field`` (``lang``, ``category``, ``expected_tier``, ``file``...), the
    quality of the decisions; the largest groups first."""
    groups: dict[str, list[Outcome]] = {}
    for row, decision in zip(rows, decisions, strict=True):
        groups.setdefault(row.label(field), []).append(outcome(row, decision.tier))
    stats = [
        GroupStats(
            value,
            len(results),
            sum(r.exact for r in results) / len(results),
            sum(r.acceptable for r in results) / len(results),
            sum(r.under for r in results) / len(results),
            sum(r.over for r in results) / len(results),
        )
        for value, results in groups.items()
    ]
    return sorted(stats, key=lambda group: (-group.rows, group.value))


class ConfidenceBand(NamedTuple):
    """What a ``confidence_threshold`` would do to the decisions that carry a confidence."""

    threshold: float
    unsure: float
    """Share of the decisions below the threshold (``hybrid`` asks the router model)."""
    unsure_acceptable: float
    """Acceptable accuracy of those decisions as the learned model made them."""
    sure_acceptable: float
    """Acceptable accuracy of the decisions at or above the threshold."""
    sure_under: float
    """Under-routing among the decisions at or above the threshold."""


CONFIDENCE_THRESHOLDS: Final = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def confidence_bands(
    rows: Sequence[EvalRow],
    decisions: Sequence[Decision],
    thresholds: Sequence[float] = CONFIDENCE_THRESHOLDS,
) -> list[ConfidenceBand]:
    """For each threshold, how many decisions fall below it and how good each side is."""
    scored = [
        (decision.confidence, outcome(row, decision.tier))
        for row, decision in zip(rows, decisions, strict=True)
        if decision.confidence is not None
    ]
    bands = []
    for threshold in thresholds:
        unsure = [result for confidence, result in scored if confidence < threshold]
        sure = [result for confidence, result in scored if confidence >= threshold]
        bands.append(
            ConfidenceBand(
                threshold,
                len(unsure) / len(scored) if scored else 0.0,
                sum(r.acceptable for r in unsure) / len(unsure) if unsure else 0.0,
                sum(r.acceptable for r in sure) / len(sure) if sure else 0.0,
                sum(r.under for r in sure) / len(sure) if sure else 0.0,
            )
        )
    return bands


def format_confidence(bands: Sequence[ConfidenceBand]) -> str:
    """A table of :func:`confidence_bands`."""
    lines = ["threshold  below  accept(below)  accept(rest)  under(rest)"]
    lines += [
        f"{band.threshold:>9.2f}  {band.unsure:>5.2f}  {band.unsure_acceptable:>13.3f}"
        f"  {band.sure_acceptable:>12.3f}  {band.sure_under:>11.3f}"
        for band in bands
    ]
    return "\n".join(lines)


def format_breakdown(field: str, stats: Sequence[GroupStats]) -> str:
    """A table of :func:`breakdown`."""
    width = max([len(field), *(len(group.value) for group in stats)]) + 2
    lines = [
        f"{field:<{width}}{'rows':>6}{'accept':>9}{'exact':>8}{'under':>8}{'over':>8}",
    ]
    lines += [
        f"{group.value:<{width}}{group.rows:>6}{group.acceptable_accuracy:>9.3f}"
        f"{group.accuracy:>8.3f}{group.under_routing:>8.3f}{group.over_routing:>8.3f}"
        for group in stats
    ]
    return "\n".join(lines)


def format_report(report: EvalReport, *, max_misses: int = 40, latency: bool = True) -> str:
    """A plain-text table of the report, misses outside the acceptable set listed first
    (``latency=False``: no latency line, for decisions that were not timed)."""
    lines = [
        f"requests             {report.count}",
        f"accuracy             {report.accuracy:.3f}",
        f"acceptable accuracy  {report.acceptable_accuracy:.3f}",
        f"under-routing        {report.under_routing:.3f}",
        f"over-routing         {report.over_routing:.3f}",
    ]
    if latency:
        lines.append(
            f"decision latency     p50 {report.p50_us:.1f} µs   p99 {report.p99_us:.1f} µs"
        )
    lines += [
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
    several = len({miss.source for miss in report.misses}) > 1
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
                f"  {_where(miss, several):<9} expected {miss.expected!s:<8} chose "
                f"{miss.chosen!s:<8} {miss.reason:<24} {miss.preview}"
            )
        if len(group) > max_misses:
            lines.append(f"  … {len(group) - max_misses} more")
    return "\n".join(lines)


def _where(miss: Miss, several_files: bool) -> str:
    """How a miss is pointed at: ``line 7``, or ``file.jsonl:7`` when rows come from several
    files, followed by the row's ``id`` when it has one."""
    where = f"{Path(miss.source).name}:{miss.line}" if several_files else f"line {miss.line}"
    return where if miss.id is None else f"{where} [{miss.id}]"
