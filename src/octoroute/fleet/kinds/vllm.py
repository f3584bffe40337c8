"""vLLM: ``GET /metrics`` (requests running and waiting, KV-cache use, sleep) and
``GET /v1/models`` (``max_model_len``, the context window).

vLLM holds its model for as long as it serves, unless put to sleep (``--enable-sleep-mode``,
``POST /sleep``): ``vllm:engine_sleep_state{sleep_state="awake"}`` is then 0 and the instance is
cold until woken. Its gauges carry a ``model_name`` label (and ``engine`` with data
parallelism): the samples of this endpoint's model are summed (running, waiting) or averaged
(KV-cache use, a fraction per engine); a server whose label names another model
(``--served-model-name`` with several names) counts as a whole.
``vllm:kv_cache_usage_perc`` replaced ``vllm:gpu_cache_usage_perc`` in vLLM 0.10; either is read.

A big server's ``/metrics`` has thousands of lines (histograms per engine), read after every
probe on the event loop, so the parser never walks them all: it looks for the few gauges it
needs with ``bytes.find`` and parses only their lines (well under a millisecond for 4000 lines).
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
SLEEP_STATE = "vllm:engine_sleep_state"
"""One sample per engine and ``sleep_state`` (``awake``, ``weights_offloaded``, ``discard_all``)."""

_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="([^"\\]*(?:\\.[^"\\]*)*)"')
"""One ``name="value"`` pair; the value may hold escaped quotes (written unrolled: no
alternation per character)."""
_ESCAPE = re.compile(r"\\(.)")

Sample = tuple[dict[str, str], float]


class Load(NamedTuple):
    """What ``/metrics`` says about the model's load."""

    running: int | None
    waiting: int | None
    kv_cache_usage: float | None
    sleeping: bool | None = None
    """Every engine of the model is asleep; ``None`` for a vLLM without sleep gauges."""


def samples(body: bytes, name: str) -> list[Sample]:
    """The finite samples of metric ``name`` in a Prometheus text exposition, with their labels.

    The exposition format keeps a metric's samples together, one group per metric: the group is
    found with ``bytes.find`` and read line by line until the next metric's samples, so the cost
    follows the few samples asked for, not the thousands of lines around them. (Samples strewn
    after the first group, which the format forbids, are not looked for.)
    """
    key = name.encode()
    needle = b"\n" + key
    found: list[Sample] = []
    at = 0 if body.startswith(key) else _after(body.find(needle))
    while at != -1:
        end = body.find(b"\n", at)
        line = body[at : end if end != -1 else len(body)]
        next_line = -1 if end == -1 else end + 1
        rest = line[len(key) :] if line.startswith(key) else b""
        if rest[:1] in (b"{", b" ", b"\t"):
            sample = _sample(rest)
            if sample is not None:
                found.append(sample)
            at = next_line
        elif line.startswith(b"#") or not line.strip():
            at = next_line  # comments and blank lines between groups
        elif found:
            break  # the next metric's samples: the group is over
        else:  # a metric whose name only starts with ``name``: look further
            at = _after(body.find(needle, at))
    return found


def _after(newline: int) -> int:
    return -1 if newline == -1 else newline + 1


def _sample(rest: bytes) -> Sample | None:
    """What follows a sample's name: ``{labels} value [timestamp]``; ``None`` for a broken line
    or a non-finite value."""
    labels = b""
    if rest.startswith(b"{"):
        close = rest.rfind(b"}")  # label values may hold "}", the value and timestamp never do
        if close == -1:
            return None
        labels, rest = rest[1:close], rest[close + 1 :]
    parts = rest.split()
    if not parts:
        return None
    try:
        value = float(parts[0])
    except ValueError:
        return None
    return (_labels(labels), value) if math.isfinite(value) else None


def _labels(raw: bytes) -> dict[str, str]:
    if not raw:
        return {}
    text = raw.decode("utf-8", "replace")
    return {
        name: _ESCAPE.sub(_unescape, value) if "\\" in value else value
        for name, value in _LABEL.findall(text)
    }


def _unescape(match: re.Match[str]) -> str:
    return "\n" if match[1] == "n" else match[1]


def _for_model(found: list[Sample], model: str) -> list[Sample]:
    own = [sample for sample in found if sample[0].get("model_name") == model]
    return own or found


def parse_metrics(body: bytes, model: str) -> Load | None:
    """Running and waiting requests, KV-cache use and sleep for ``model``; ``None`` when the
    body has none of vLLM's gauges (not a vLLM server, or metrics turned off)."""
    running = [value for _, value in _for_model(samples(body, RUNNING), model)]
    waiting = [value for _, value in _for_model(samples(body, WAITING), model)]
    kv: list[float] = []
    for name in KV_CACHE:
        kv = [value for _, value in _for_model(samples(body, name), model)]
        if kv:
            break
    awake = [
        value
        for labels, value in _for_model(samples(body, SLEEP_STATE), model)
        if labels.get("sleep_state") == "awake"
    ]
    if not (running or waiting or kv or awake):
        return None
    usage = sum(kv) / len(kv) if kv else None
    return Load(
        count(sum(running)) if running else None,
        count(sum(waiting)) if waiting else None,
        usage if usage is not None and 0.0 <= usage <= 1.0 else None,
        all(value == 0 for value in awake) if awake else None,
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
        loaded=not load.sleeping,
        context_window=context,
        running=load.running,
        waiting=load.waiting,
        kv_cache_usage=load.kv_cache_usage,
    )


def looks_like_metrics(status: int, body: bytes) -> bool:
    """Whether a ``GET /metrics`` answer is vLLM's (for ``check --probe``)."""
    return status == 200 and b"\nvllm:" in b"\n" + body
