"""``octoroute eval``: replay a labelled set through the real routing decision, print a report.

Decisions only, no generation. For ``llm`` and ``hybrid`` the router model is asked over HTTP
exactly as in production (the config's router tier), so the report measures the real thing,
latency included.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from octoroute.config.schema import Config
from octoroute.enums import Strategy
from octoroute.routing.evaluate import evaluate as evaluate_rows
from octoroute.routing.evaluate import format_report, load_dataset
from octoroute.runtime import Runtime


async def run_eval(config: Config, dataset: Path, *, strategy: str | None = None) -> str:
    """The formatted report for ``dataset`` routed with ``config`` (strategy optionally replaced)."""
    rows = load_dataset(dataset)
    if strategy is not None:
        config = msgspec.structs.replace(
            config, routing=msgspec.structs.replace(config.routing, strategy=Strategy(strategy))
        )
    runtime = Runtime(config)
    await runtime.client.open()
    try:
        report = await evaluate_rows(runtime.router, rows, config.routing.default_importance)
    finally:
        await runtime.client.close()
    header = f"dataset {dataset} · strategy {config.routing.strategy.value}\n"
    return header + format_report(report)
