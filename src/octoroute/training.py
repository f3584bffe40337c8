"""``octoroute train``: fit the learned router on labelled rows, report its cross-validated
quality, and write the model file ``[routing] model_file`` reads.

The report is what the model does on rows it was not trained on: K stratified folds, each
decided by a model fitted on the others, calibrated on those out-of-fold scores. With
``--group-by FIELD`` it also holds out every value of a field in turn (``file``: each input
file), the better estimate when each file comes from a different source or writer.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from octoroute.evaluation import load_datasets
from octoroute.routing.evaluate import (
    breakdown,
    confidence_bands,
    format_breakdown,
    format_confidence,
    format_report,
    report,
)
from octoroute.routing.model_file import encode_model, read_model_file
from octoroute.routing.train import TrainOptions, cross_validated, grouped, prepare, train


def _progress(what: str) -> Callable[[int, int], None]:
    """Progress on stderr: the report on stdout stays clean for a file or a diff."""

    def show(number: int, total: int) -> None:
        print(f"  {what}: fold {number}/{total}", file=sys.stderr, flush=True)

    return show


def run_train(
    datasets: Sequence[Path],
    output: Path,
    *,
    folds: int = 5,
    seed: int = 0,
    under_cost: float | None = None,
    fast_under_cost: float | None = None,
    group_by: str | None = None,
) -> str:
    """Train on ``datasets``, write the model to ``output`` and return the report.

    ``output`` ending in ``.gz`` is written gzip-compressed, anything else as plain JSON.
    Raises ``ValueError`` (a dataset problem, too few rows) or ``OSError`` (cannot write).
    """
    if folds < 2:
        raise ValueError(f"--folds must be at least 2, got {folds}")
    rows = load_datasets(datasets)
    if len(rows) < folds:
        raise ValueError(f"{folds} folds need at least {folds} rows, the datasets have {len(rows)}")
    options = TrainOptions(seed=seed)
    if under_cost is not None:
        options = options._replace(under_cost=_cost("--under-cost", under_cost))
    if fast_under_cost is not None:
        options = options._replace(fast_under_cost=_cost("--fast-under-cost", fast_under_cost))
    examples = prepare(rows, options.spec)
    files = sorted({Path(row.source).name for row in rows})
    trained = train(
        examples,
        options,
        folds=folds,
        training={"files": files},
        progress=_progress("k-fold"),
    )
    data = encode_model(trained.model, compress=output.name.endswith(".gz"))
    _write(output, data)
    read_model_file(output)  # what the router will do with it: fails loudly if it cannot

    cv = trained.cv_decisions
    parts = [
        f"trained on {len(rows)} rows from {len(files)} file(s); seed {seed}",
        f"{folds}-fold cross-validation (stratified by expected tier)",
        format_report(report(rows, cv), latency=False, max_misses=20),
        "by expected tier\n"
        + format_breakdown("expected_tier", breakdown(rows, cv, "expected_tier")),
        "confidence (hybrid asks the router model below the threshold)\n"
        + format_confidence(confidence_bands(rows, cv)),
    ]
    if group_by is not None:
        labels = [row.label(group_by) for row in rows]
        if len(set(labels)) < 2:
            parts.append(f"grouped cross-validation by {group_by}: needs at least 2 values")
        else:
            held = grouped(labels)
            decisions = cross_validated(
                examples,
                held,
                options,
                progress=_progress(f"by {group_by}"),
            )
            summary = report(rows, decisions)
            parts.append(
                f"grouped cross-validation: each {group_by} held out in turn ({len(held)} groups)\n"
                f"acceptable accuracy  {summary.acceptable_accuracy:.3f}\n"
                f"accuracy             {summary.accuracy:.3f}\n"
                f"under-routing        {summary.under_routing:.3f}\n"
                f"over-routing         {summary.over_routing:.3f}\n\n"
                + format_breakdown(group_by, breakdown(rows, decisions, group_by))
            )
    model = trained.model
    keys = sum(len(table) for table in model.weights.values())
    parts.append(
        f"wrote {output}: {keys} weighted keys, temperature {model.temperature:g}, "
        f"{len(data)} bytes"
    )
    return "\n\n".join(parts)


def _cost(flag: str, value: float) -> float:
    """``value`` if it is a sensible under-routing cost (at least an over-routing's 1)."""
    if not 1.0 <= value <= 100.0:
        raise ValueError(f"{flag} must be between 1 and 100, got {value:g}")
    return value


def _write(output: Path, data: bytes) -> None:
    """Write ``data`` to ``output`` through a temporary file, so a reader never sees half."""
    temporary = output.with_name(output.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, output)
