"""vLLM: ``GET /metrics`` (requests running and waiting, KV-cache use) and ``GET /v1/models``
(``max_model_len``, the context window).

vLLM holds its model for as long as it serves, so an answering server is warm. Its gauges carry
a ``model_name`` label (and ``engine`` with data parallelism): the samples of this endpoint's
model are summed (running, waiting) or averaged (KV-cache use, a fraction per engine); a server
whose label names another model (``--served-model-name`` with several names) counts as a whole.
``vllm:kv_cache_usage_perc`` replaced ``vllm:gpu_cache_usage_perc`` in vLLM 0.10; either is read.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, NamedTuple

from octoroute.fleet.facts import UNKNOWN, InstanceFacts
from octoroute.fleet.kinds.values import count, field, json_object, window

if TYPE_CHECKING:
    from octoroute.fleet.kinds import Fetch

METRICS_PATH = "/metrics"
MODELS_PATH = "/v1/models"
RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV_CACHE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
"""The current name first, then the one vLLM deprecated."""

_SAMPLE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_MODEL_LABEL = re.compile(r'(?:^|,)\s*model_name="(?P<value>(?:[^"\\]|\\.)*)"')


class Load(NamedTuple):
    """What ``/metrics`` says about the model's load."""

    running: int | None
    waiting: int | None
    kv_cache_usage: float | None


def samples(text: str, names: frozenset[str]) -> dict[str, list[tuple[str | None, float]]]:
    """The finite samples of the metrics ``names`` in a Prometheus text exposition, each with
    its ``model_name`` label (``None`` when it has none)."""
    found: dict[str, list[tuple[str | None, float]]] = {}
    for line in text.splitlines():
        if not line.startswith("vllm:"):
            continue  # comments, and the process and Python metrics
        match = _SAMPLE.match(line)
        if match is None or match["name"] not in names:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        if not math.isfinite(value):
            continue
        label = _MODEL_LABEL.search(match["labels"] or "")
        found.setdefault(match["name"], []).append((label["value"] if label else None, value))
    return found


def _for_model(found: list[tuple[str | None, float]] | None, model: str) -> list[float] | None:
    if not found:
        return None
    own = [value for name, value in found if name == model]
    return own or [value for _, value in found]


def parse_metrics(body: bytes, model: str) -> Load | None:
    """Running and waiting requests and KV-cache use for ``model``; ``None`` when the body has
    none of vLLM's gauges (not a vLLM server, or metrics turned off)."""
    text = body.decode("utf-8", "replace")
    found = samples(text, frozenset({RUNNING, WAITING, *KV_CACHE}))
    if not found:
        return None
    running = _for_model(found.get(RUNNING), model)
    waiting = _for_model(found.get(WAITING), model)
    kv = next((values for name in KV_CACHE if (values := _for_model(found.get(name), model))), None)
    usage = sum(kv) / len(kv) if kv else None
    return Load(
        count(sum(running)) if running else None,
        count(sum(waiting)) if waiting else None,
        usage if usage is not None and 0.0 <= usage <= 1.0 else None,
    )


def parse_models(body: bytes, model: str) -> int | None:
    """``max_model_len`` of ``model`` in a ``/v1/models`` answer (of the only model listed when
    none has that id); ``None`` when absent."""
    data = field(json_object(body), "data")
    if not isinstance(data, list):
        return None
    entries = [entry for entry in data if isinstance(entry, dict)]
    mine = [entry for entry in entries if entry.get("id") == model]
    if not mine:
        bases = [entry for entry in entries if entry.get("parent") is None]  # not LoRA adapters
        mine = bases if len(bases) == 1 else []
    return window(mine[0].get("max_model_len")) if mine else None


async def read(fetch: Fetch, model: str) -> InstanceFacts:
    """``/metrics`` for the load, ``/v1/models`` for the window; either may fail alone."""
    status, body = await fetch("GET", METRICS_PATH)
    load = parse_metrics(body, model) if status == 200 else None
    status, body = await fetch("GET", MODELS_PATH)
    context = parse_models(body, model) if status == 200 else None
    if load is None and context is None:
        return UNKNOWN
    load = load or Load(None, None, None)
    return InstanceFacts(
        loaded=True,
        context_window=context,
        running=load.running,
        waiting=load.waiting,
        kv_cache_usage=load.kv_cache_usage,
    )


def looks_like_metrics(status: int, body: bytes) -> bool:
    """Whether a ``GET /metrics`` answer is vLLM's (for ``check --probe``)."""
    return status == 200 and b"\nvllm:" in b"\n" + body
