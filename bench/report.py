"""From raw runs to one markdown table: paired medians, ratios against the floor, targets.

"Added" latency is the proxy's percentile minus ``direct``'s percentile *in the same repeat*
(same rate, same minute), and the median of those differences over repeats is reported. Ratios
compare the router with the floor measured in the same run; targets are judged on those ratios
(and on absolute memory and start-up numbers), for both ``model: "fast"`` (no routing) and
``model: "auto"`` (rule strategy).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

ROUTERS: Final = ("router-fast", "router-auto")
COLUMNS: Final = ("direct", "floor", "router-fast", "router-auto", "litellm")
Number = float | None


def _median(values: list[Number]) -> Number:
    known = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(known) if known else None


def _runs(results: dict[str, Any], part: str, **match: object) -> list[dict[str, Any]]:
    return [r for r in results.get(part, []) if all(r.get(k) == v for k, v in match.items())]


def added(results: dict[str, Any], part: str, key: str, variant: str, **match: object) -> Number:
    """Median over repeats of (variant's ``key`` - direct's ``key``), paired by repeat."""
    diffs: list[Number] = []
    for run in _runs(results, part, variant=variant, **match):
        base = _runs(results, part, variant="direct", repeat=run["repeat"], **match)
        if base and run.get(key) is not None and base[0].get(key) is not None:
            diffs.append(run[key] - base[0][key])
    return _median(diffs)


def absolute(results: dict[str, Any], part: str, key: str, variant: str, **match: object) -> Number:
    """Median over repeats of a variant's ``key``."""
    return _median([r.get(key) for r in _runs(results, part, variant=variant, **match)])


def ratio(value: Number, floor: Number) -> Number:
    """``value / floor`` when both are known and the floor is positive."""
    if value is None or floor is None or floor <= 0:
        return None
    return value / floor


@dataclass
class Row:
    """One line of the table: a value per column, then the router's ratio and target."""

    metric: str
    values: dict[str, Number]
    ratios: tuple[Number, Number] | None = None
    target: str = ""
    verdicts: tuple[bool | None, bool | None] | None = None
    digits: int = 0


def _verdict(value: Number, check: Callable[[float], bool]) -> bool | None:
    return None if value is None else check(value)


def build_rows(results: dict[str, Any]) -> list[Row]:
    """Every measured row, with targets where the issue sets one."""
    rows: list[Row] = []
    present = {
        r["variant"]
        for part in ("latency", "throughput", "streaming")
        for r in results.get(part, [])
    }
    proxies = [c for c in COLUMNS if c != "direct" and c in present]

    rates = sorted({r["rate"] for r in results.get("latency", [])})
    for rate in rates:
        for q, target_rate, limit in (("p50", 30, 1.2), ("p99", 250, 1.5)):
            key = f"latency_{q}_us"
            values: dict[str, Number] = {
                "direct": absolute(results, "latency", key, "direct", rate=rate)
            }
            for name in proxies:
                values[name] = added(results, "latency", key, name, rate=rate)
            row = Row(f"added latency {q} @ {rate:g} req/s (µs; direct: absolute)", values)
            _with_ratio(row, values, limit if rate == target_rate else None, "≤", "× floor")
            rows.append(row)
        values = {
            n: absolute(results, "latency", "cpu_us_per_request", n, rate=rate) for n in proxies
        }
        rows.append(_plain(f"CPU-µs per request @ {rate:g} req/s", values))

    if results.get("throughput"):
        values = {n: absolute(results, "throughput", "rps", n) for n in ("direct", *proxies)}
        row = Row("saturation throughput, wrk c=64 (req/s)", values)
        _with_ratio(row, values, 0.7, "≥", "× floor")
        rows.append(row)
        values = {n: absolute(results, "throughput", "cpu_us_per_request", n) for n in proxies}
        rows.append(_plain("CPU-µs per request at saturation", values, ratios=True))

    streamers = [n for n in proxies if _runs(results, "streaming", variant=n)]
    for shape, label in (("spaced", "16 events × 2 ms"), ("bulk", "32 events at once")):
        if not _runs(results, "streaming", shape=shape):
            continue
        values = {"direct": absolute(results, "streaming", "ttfb_p50_us", "direct", shape=shape)}
        for name in streamers:
            values[name] = added(results, "streaming", "ttfb_p50_us", name, shape=shape)
        row = Row(f"stream {label}: added TTFB p50 (µs; direct: absolute)", values)
        _with_ratio(row, values, 1.2 if shape == "spaced" else None, "≤", "× floor")
        rows.append(row)
        values = {
            n: absolute(results, "streaming", "cpu_us_per_stream", n, shape=shape)
            for n in streamers
        }
        rows.append(_plain(f"stream {label}: CPU-µs per stream", values, ratios=True))
    if _runs(results, "streaming", shape="spaced-long"):
        values = {}
        for name in streamers:
            long = absolute(results, "streaming", "cpu_us_per_stream", name, shape="spaced-long")
            short = absolute(results, "streaming", "cpu_us_per_stream", name, shape="spaced")
            values[name] = None if long is None or short is None else (long - short) / 32
        rows.append(
            _plain(
                "stream: CPU-µs per relayed event (48 vs 16 events, marginal)",
                values,
                ratios=True,
                digits=1,
            )
        )

    rows.extend(_process_rows(results))
    return rows


PROCESS_COLUMNS: Final = {"floor": "floor", "router": "router-fast", "litellm": "litellm"}
"""Process-level rows (memory, start-up) describe one router process, shown under router-fast."""


def _process_rows(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    startup = results.get("startup", {})
    if any(startup.get(k) for k in PROCESS_COLUMNS):
        idle = {
            column: _median([s["idle_rss_mb"] for s in startup.get(key, [])])
            for key, column in PROCESS_COLUMNS.items()
            if startup.get(key)
        }
        rows.append(
            _absolute_target("idle RSS after start-up (MB)", idle, 60.0, "≤ 60 MB", digits=1)
        )
        worst = {
            column: max(s["seconds"] for s in startup[key])
            for key, column in PROCESS_COLUMNS.items()
            if startup.get(key)
        }
        rows.append(
            _absolute_target(
                "start-up to first answered request, worst (s)", worst, 1.5, "≤ 1.5 s", digits=2
            )
        )
    memory = results.get("memory", {})
    for key, label in (
        ("after_load_idle_rss_mb", "idle RSS after the load parts (MB)"),
        ("peak_rss_mb", "peak RSS, VmHWM (MB)"),
    ):
        values = {
            column: memory[name][key] for name, column in PROCESS_COLUMNS.items() if name in memory
        }
        if values:
            rows.append(_plain(label, values, digits=1))
    soak = results.get("soak")
    if soak:
        first = soak["marks"][0]
        label = f"soak: RSS growth {first:,} → {soak['requests']:,} requests (%)"
        rows.append(
            _absolute_target(
                label,
                {"router-auto": soak["growth_percent"]},
                10.0,
                "≤ 10 %",
                digits=1,
                column="router-auto",
            )
        )
    scaling = results.get("scaling", {})
    if scaling.get("1") and len([k for k in scaling if k.isdigit()]) > 1:
        many = max(k for k in scaling if k.isdigit())
        values = {"router-auto": scaling[many]["rps"] / scaling["1"]["rps"]}
        rows.append(_plain(f"--workers {many} / --workers 1 saturation (×)", values, digits=2))
    return rows


def _with_ratio(
    row: Row, values: dict[str, Number], limit: float | None, sense: str, unit: str
) -> None:
    fast, auto = (ratio(values.get(n), values.get("floor")) for n in ROUTERS)
    row.ratios = (fast, auto)
    if limit is None:
        return
    row.target = f"{sense} {limit:g}{unit}"

    def check(value: float) -> bool:
        return value <= limit if sense == "≤" else value >= limit

    row.verdicts = (_verdict(fast, check), _verdict(auto, check))


def _plain(metric: str, values: dict[str, Number], *, ratios: bool = False, digits: int = 0) -> Row:
    row = Row(metric, values, digits=digits)
    if ratios:
        row.ratios = (
            ratio(values.get("router-fast"), values.get("floor")),
            ratio(values.get("router-auto"), values.get("floor")),
        )
    return row


def _absolute_target(
    metric: str,
    values: dict[str, Number],
    limit: float,
    target: str,
    *,
    digits: int,
    column: str = "router-fast",
) -> Row:
    row = Row(metric, values, target=target, digits=digits)
    row.verdicts = (_verdict(values.get(column), lambda v: v <= limit), None)
    return row


def _cell(value: Number, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def _verdict_cell(row: Row) -> str:
    if row.verdicts is None or all(v is None for v in row.verdicts):
        return "" if row.verdicts is None else "n/a"
    words = ["—" if v is None else ("PASS" if v else "FAIL") for v in row.verdicts]
    if row.verdicts[1] is None and row.ratios is None:
        return f"**{words[0]}**"
    return f"**{words[0]}** / **{words[1]}**"


def render(rows: list[Row]) -> str:
    """The one markdown table."""
    used = [c for c in COLUMNS if any(c in r.values for r in rows)]
    header = ["metric", *used, "router/floor (fast / auto)", "target", "result (fast / auto)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        ratios = ""
        if row.ratios is not None:
            ratios = " / ".join("—" if r is None else f"{r:.2f}" for r in row.ratios)
        cells = [
            row.metric,
            *(_cell(row.values.get(c), row.digits) for c in used),
            ratios,
            row.target,
            _verdict_cell(row),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(rows: list[Row]) -> list[dict[str, Any]]:
    """The judged rows, for the JSON results and the summary line."""
    return [
        {
            "metric": r.metric,
            "target": r.target,
            "ratios": r.ratios,
            "values": r.values,
            "pass": r.verdicts,
        }
        for r in rows
        if r.verdicts is not None
    ]


def foreign_load(results: dict[str, Any]) -> str | None:
    """A one-line account of how busy the rest of the host was during the measurements."""
    runs = [r for part in ("latency", "throughput", "streaming") for r in results.get(part, [])]
    loads = [float(r["foreign_cores"]) for r in runs if "foreign_cores" in r]
    if not loads:
        return None
    retried = sum(1 for r in runs if r.get("retried"))
    disturbed = sum(1 for value in loads if value > 0.3)
    return (
        f"foreign CPU load during the {len(loads)} load runs: median "
        f"{statistics.median(loads):.2f}, max {max(loads):.2f} cores; {retried} retried, "
        f"{disturbed} kept above 0.3 cores"
    )
