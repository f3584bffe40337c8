"""What a simulated model's status paths answer, per kind, in the shapes the real servers use
(Ollama's ``api/types.go``, llama-server's README, vLLM's Prometheus gauges), plus how each
kind treats a prompt longer than its context window.

Pure functions of the model's name, its ``Behaviour`` and an ``engine.Snapshot``; the server
decides which paths exist for which kind (``STATUS_PATHS``).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from octoroute.enums import Kind

if TYPE_CHECKING:
    from octoroute.simulator.behaviour import Behaviour
    from octoroute.simulator.engine import Snapshot

OLLAMA_VERSION = "0.12.6"
LLAMACPP_BUILD = "b7120-5f1c8a3e"
DEFAULT_KEEP_ALIVE = 300.0

STATUS_PATHS: dict[Kind, frozenset[tuple[str, str]]] = {
    Kind.OPENAI: frozenset(),
    Kind.OLLAMA: frozenset(
        {("GET", "/api/ps"), ("POST", "/api/show"), ("GET", "/api/version"), ("GET", "/api/tags")}
    ),
    Kind.LLAMACPP: frozenset({("GET", "/health"), ("GET", "/props"), ("GET", "/slots")}),
    Kind.VLLM: frozenset({("GET", "/metrics")}),
}
"""The status paths each kind serves (``/v1/models`` is everyone's)."""

Answer = tuple[int, bytes, str]
"""Status, body and content type."""

_JSON = "application/json"


def _json(status: int, value: object) -> Answer:
    return status, orjson.dumps(value), _JSON


def ollama_name(name: str) -> str:
    """How Ollama lists a model: lower case, ``:latest`` when it has no tag."""
    name = name.lower()
    return name if ":" in name.rpartition("/")[2] else name + ":latest"


def _details() -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "8.0B",
        "quantization_level": "Q4_K_M",
    }


def ollama_digest(name: str) -> str:
    """A manifest digest of the model's own: two simulated models never share one, so the
    router's "another tag of the same model" check (``/api/tags``) tells them apart."""
    return hashlib.sha256(ollama_name(name).encode()).hexdigest()


def ollama_tag(name: str) -> dict[str, Any]:
    """One model as ``GET /api/tags`` lists it: pulled, whether loaded or not."""
    return {
        "name": ollama_name(name),
        "model": ollama_name(name),
        "modified_at": "2026-12-01T00:00:00Z",
        "size": 5_000_000_000,
        "digest": ollama_digest(name),
        "details": _details(),
    }


def ollama_ps(name: str, behaviour: Behaviour, state: Snapshot) -> Answer:
    """``GET /api/ps``: the model with its ``context_length`` while loaded, else nothing."""
    return _json(200, {"models": ollama_ps_entries(name, behaviour, state)})


def ollama_ps_entries(name: str, behaviour: Behaviour, state: Snapshot) -> list[dict[str, Any]]:
    """The model's entry of ``GET /api/ps`` while it is loaded (none while it is not)."""
    if not state.loaded:
        return []
    keep = behaviour.unload_after if behaviour.unload_after is not None else DEFAULT_KEEP_ALIVE
    entry: dict[str, Any] = {
        "name": ollama_name(name),
        "model": ollama_name(name),
        "size": 5_000_000_000,
        "digest": ollama_digest(name),
        "details": _details(),
        "expires_at": (datetime.now(UTC) + timedelta(seconds=keep)).isoformat(),
        "size_vram": 5_000_000_000,
    }
    if behaviour.context_window is not None:
        entry["context_length"] = behaviour.context_window
    return [entry]


def ollama_show(name: str, behaviour: Behaviour, body: bytes) -> Answer:
    """``POST /api/show``: the trained context length in ``model_info`` (no ``num_ctx``
    parameter, as for most library models); 404 for another model's name."""
    try:
        asked = orjson.loads(body).get("model")
    except (orjson.JSONDecodeError, AttributeError):
        asked = None
    if not isinstance(asked, str) or ollama_name(asked) != ollama_name(name):
        return _json(404, {"error": f"model '{asked}' not found"})
    info: dict[str, Any] = {"general.architecture": "llama", "general.parameter_count": 8e9}
    trained = behaviour.trained_context or behaviour.context_window
    if trained is not None:
        info["llama.context_length"] = trained
    return _json(
        200,
        {
            "parameters": 'stop                           "<|eot_id|>"',
            "template": "{{ .Prompt }}",
            "details": _details(),
            "model_info": info,
            "capabilities": ["completion", "tools"],
            "modified_at": "2026-12-01T00:00:00Z",
        },
    )


def llamacpp_loading() -> Answer:
    """llama-server's answer to every path while it loads its model."""
    return _json(
        503, {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
    )


def _slot(index: int, behaviour: Behaviour, busy: bool) -> dict[str, Any]:
    slot: dict[str, Any] = {
        "id": index,
        "id_task": index + 1 if busy else -1,
        "speculative": False,
        "is_processing": busy,
        "params": {"n_predict": -1, "temperature": 0.8},
    }
    if behaviour.context_window is not None:
        slot["n_ctx"] = behaviour.context_window
    return slot


def llamacpp_props(name: str, behaviour: Behaviour, state: Snapshot) -> Answer:
    """``GET /props``: the per-slot context, the slot count, and ``is_sleeping`` while cold."""
    if state.loading:
        return llamacpp_loading()
    return _json(
        200,
        {
            "default_generation_settings": _slot(0, behaviour, False),
            "total_slots": state.slots or 1,
            "model_path": f"/models/{name}.gguf",
            "chat_template": "{{ messages }}",
            "modalities": {"vision": False},
            "build_info": LLAMACPP_BUILD,
            "is_sleeping": not state.loaded,
        },
    )


def llamacpp_slots(behaviour: Behaviour, state: Snapshot) -> Answer:
    """``GET /slots``: one entry per slot, the first ``running`` busy."""
    if state.loading:
        return llamacpp_loading()
    total = state.slots or 1
    return _json(200, [_slot(i, behaviour, i < state.running) for i in range(total)])


def llamacpp_health(state: Snapshot) -> Answer:
    """``GET /health``: 503 "Loading model" during a load, else ok."""
    return llamacpp_loading() if state.loading else _json(200, {"status": "ok"})


def vllm_metrics(name: str, state: Snapshot) -> Answer:
    """``GET /metrics``: vLLM's placement gauges among other families; a cold model is an
    engine put to sleep (``awake`` 0, weights offloaded)."""
    usage = min(1.0, state.running / state.slots) if state.slots else 0.0
    labels = f'engine="0",model_name="{name}"'
    asleep = not state.loaded
    lines = [
        "# HELP python_gc_objects_collected_total Objects collected during gc",
        "# TYPE python_gc_objects_collected_total counter",
        'python_gc_objects_collected_total{generation="0"} 1024.0',
        "# HELP vllm:num_requests_running Number of requests in model execution batches.",
        "# TYPE vllm:num_requests_running gauge",
        f"vllm:num_requests_running{{{labels}}} {float(state.running)}",
        "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
        "# TYPE vllm:num_requests_waiting gauge",
        f"vllm:num_requests_waiting{{{labels}}} {float(state.waiting)}",
        "# HELP vllm:engine_sleep_state Engine sleep state; awake = 0 means engine is sleeping",
        "# TYPE vllm:engine_sleep_state gauge",
        f'vllm:engine_sleep_state{{{labels},sleep_state="awake"}} {0.0 if asleep else 1.0}',
        f'vllm:engine_sleep_state{{{labels},sleep_state="weights_offloaded"}} '
        f"{1.0 if asleep else 0.0}",
        f'vllm:engine_sleep_state{{{labels},sleep_state="discard_all"}} 0.0',
        "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.",
        "# TYPE vllm:kv_cache_usage_perc gauge",
        f"vllm:kv_cache_usage_perc{{{labels}}} {usage}",
    ]
    return 200, ("\n".join(lines) + "\n").encode(), "text/plain; version=0.0.4; charset=utf-8"


def model_entry(name: str, created: int, behaviour: Behaviour) -> dict[str, Any]:
    """One ``/v1/models`` entry; vLLM adds ``root``, ``parent`` and ``max_model_len``."""
    if behaviour.kind is not Kind.VLLM:
        return {"id": name, "object": "model", "created": created, "owned_by": "sim"}
    entry: dict[str, Any] = {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "vllm",
        "root": f"/models/{name}",
        "parent": None,
    }
    if behaviour.context_window is not None:
        entry["max_model_len"] = behaviour.context_window
    return entry


def status_answer(
    method: str, path: str, body: bytes, name: str, behaviour: Behaviour, state: Snapshot
) -> Answer | None:
    """The answer to a status path of this model's kind; ``None`` when the kind has no such
    path (the server answers 404 as for any unknown URL)."""
    if (method, path) not in STATUS_PATHS[behaviour.kind]:
        return None
    if path == "/api/ps":
        return ollama_ps(name, behaviour, state)
    if path == "/api/show":
        return ollama_show(name, behaviour, body)
    if path == "/api/version":
        return _json(200, {"version": OLLAMA_VERSION})
    if path == "/api/tags":
        return _json(200, {"models": [ollama_tag(name)]})
    if path == "/health":
        return llamacpp_health(state)
    if path == "/props":
        return llamacpp_props(name, behaviour, state)
    if path == "/slots":
        return llamacpp_slots(behaviour, state)
    return vllm_metrics(name, state)


def context_overflow(
    behaviour: Behaviour, prompt_tokens: int, max_tokens: int
) -> tuple[int, dict[str, Any]] | None:
    """The error a server of this kind answers to a prompt that does not fit its window;
    ``None`` when it fits, or when the kind cuts the prompt instead (Ollama)."""
    window = behaviour.context_window
    if window is None or behaviour.kind is Kind.OLLAMA:
        return None
    if behaviour.kind is Kind.LLAMACPP:
        if prompt_tokens <= window:
            return None
        return 400, {
            "error": {
                "code": 400,
                "message": "the request exceeds the available context size, try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": prompt_tokens,
                "n_ctx": window,
            }
        }
    requested = prompt_tokens + max_tokens
    if requested <= window:
        return None
    message = (
        f"This model's maximum context length is {window} tokens. However, you requested "
        f"{requested} tokens ({prompt_tokens} in the messages, {max_tokens} in the completion). "
        "Please reduce the length of the messages or completion."
    )
    return 400, {
        "error": {
            "message": message,
            "type": "invalid_request_error" if behaviour.kind is Kind.OPENAI else "BadRequestError",
            "param": "messages",
            "code": "context_length_exceeded" if behaviour.kind is Kind.OPENAI else 400,
        }
    }
