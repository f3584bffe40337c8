"""``octoroute eval``: replay a labelled set through the real routing decision, print a report.

Decisions only, no generation. For ``llm`` and ``hybrid`` the router model is asked over HTTP
exactly as in production (the config's router tier), so the report measures the real thing,
latency included.

``--cv K`` measures the ``learned`` strategy on data it was not trained on: the rows are split
into K folds, and each fold is decided by a model trained on the others (no config, no model
file). ``--by FIELD`` adds a table per value of a row field (``lang``, ``category``, ``file``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec

from octoroute.config.schema import Config
from octoroute.enums import Strategy
from octoroute.routing.evaluate import (
    EvalRow,
    breakdown,
    confidence_bands,
    format_breakdown,
    format_confidence,
    format_report,
    load_dataset,
    report,
    route_rows,
)
from octoroute.routing.strategy import Decision
from octoroute.routing.train import TrainOptions, cross_validated, kfold, prepare
from octoroute.runtime import Runtime


def load_datasets(paths: Sequence[Path]) -> list[EvalRow]:
    """Every row of every file, in order; ``ValueError`` when they hold none (a report of
    zero requests would read as a measurement)."""
    rows: list[EvalRow] = []
    for path in paths:
        rows.extend(load_dataset(path))
    if not rows:
        names = ", ".join(str(path) for path in paths)
        raise ValueError(f"no labelled rows in {names}: each line must be a JSON object")
    return rows


async def run_eval(
    config: Config,
    datasets: Sequence[Path],
    *,
    strategy: str | None = None,
    by: Sequence[str] = (),
) -> str:
    """The formatted report for ``datasets`` routed with ``config`` (strategy optionally
    replaced), with a table per field of ``by``."""
    rows = load_datasets(datasets)
    if strategy is not None:
        config = msgspec.structs.replace(
            config, routing=msgspec.structs.replace(config.routing, strategy=Strategy(strategy))
        )
    runtime = Runtime(config)
    await runtime.client.open()
    try:
        decisions = await route_rows(runtime.router, rows, config.routing.default_importance)
    finally:
        await runtime.client.close()
    header = f"dataset {_names(datasets)} · strategy {config.routing.strategy.value}\n"
    return header + _body(rows, decisions, by, latency=True)


def run_cv(datasets: Sequence[Path], folds: int, *, seed: int = 0, by: Sequence[str] = ()) -> str:
    """The cross-validated report of the ``learned`` strategy on ``datasets``."""
    if folds < 2:
        raise ValueError(f"--cv needs at least 2 folds, got {folds}")
    rows = load_datasets(datasets)
    if len(rows) < folds:
        raise ValueError(f"--cv {folds} needs at least {folds} rows, the datasets have {len(rows)}")
    examples = prepare(rows)
    decisions = cross_validated(examples, kfold(examples, folds, seed), TrainOptions(seed=seed))
    header = (
        f"dataset {_names(datasets)} · strategy learned, {folds}-fold cross-validation "
        f"(each fold decided by a model trained on the others, seed {seed})\n"
    )
    return header + _body(rows, decisions, by, latency=False)


def _names(datasets: Sequence[Path]) -> str:
    return ", ".join(str(path) for path in datasets)


def _body(
    rows: Sequence[EvalRow], decisions: Sequence[Decision], by: Sequence[str], *, latency: bool
) -> str:
    parts = [format_report(report(rows, decisions), latency=latency)]
    for field in by:
        parts.append(f"by {field}\n" + format_breakdown(field, breakdown(rows, decisions, field)))
    if any(decision.confidence is not None for decision in decisions):
        parts.append(
            "confidence (hybrid asks the router model below the threshold)\n"
            + format_confidence(confidence_bands(rows, decisions))
        )
    return "\n\n".join(parts)
