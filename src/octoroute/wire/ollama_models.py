"""What Ollama's model endpoints answer, for the models this router offers.

``/api/tags`` lists every name a client may send (``auto``, the tiers, the endpoint and
embedding model names, exact aliases) as Ollama model entries, each with a tag as Ollama writes
names (``auto:latest``; the router takes both spellings); ``/api/show`` describes one,
with its context length when the fleet knows it; ``/api/ps`` lists the models their servers
report loaded. A router has no weights, so what only weights have (size, digest, quantization)
is empty or derived from the name: ``digest`` is the SHA-256 of the name, stable across runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import orjson

__all__ = [
    "LATEST",
    "OLLAMA_API_VERSION",
    "ModelInfo",
    "ps_body",
    "show_body",
    "tagged",
    "tags_body",
    "version_body",
]

OLLAMA_API_VERSION: Final = "0.12.0"
"""The Ollama release whose API this facade speaks (tools with ids, ``think``, structured
``format``, ``/api/embed``), reported by ``/api/version``: clients gate features on it."""
ARCHITECTURE: Final = "octoroute"
"""``general.architecture`` in ``/api/show``: clients read ``<architecture>.context_length``."""
_DETAILS: Final = {
    "parent_model": "",
    "format": "",
    "family": "",
    "families": [],
    "parameter_size": "",
    "quantization_level": "",
}
LATEST: Final = ":latest"
"""The tag Ollama reads into a name that has none."""
_CHAT_CAPABILITIES: Final = ("completion", "tools")
_EMBEDDING_CAPABILITIES: Final = ("embedding",)


class ModelInfo(NamedTuple):
    """One name this router answers to, as the Ollama endpoints describe it."""

    name: str
    embedding: bool
    context_window: int | None = None
    """The smallest context length among the endpoints the name may reach, when every one of
    them reports it; ``None`` otherwise."""


def tagged(name: str) -> str:
    """``name`` as Ollama lists it: with ``:latest`` when it has no tag (``auto:latest``), so
    clients that add the tag before looking a name up in the list (Open WebUI) find it."""
    return name if ":" in name else name + LATEST


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _entry(model: ModelInfo, modified_at: str) -> dict[str, Any]:
    return {
        "name": model.name,
        "model": model.name,
        "modified_at": modified_at,
        "size": 0,
        "digest": _digest(model.name),
        "details": _DETAILS,
        "capabilities": _capabilities(model),
    }


def _capabilities(model: ModelInfo) -> list[str]:
    return list(_EMBEDDING_CAPABILITIES if model.embedding else _CHAT_CAPABILITIES)


def version_body() -> bytes:
    """``GET /api/version``."""
    return orjson.dumps({"version": OLLAMA_API_VERSION})


def tags_body(models: Sequence[ModelInfo], modified_at: str) -> bytes:
    """``GET /api/tags``: every model, in the order ``GET /v1/models`` lists them."""
    return orjson.dumps({"models": [_entry(model, modified_at) for model in models]})


def show_body(model: ModelInfo, modified_at: str) -> bytes:
    """``POST /api/show``: the model's details, capabilities and, when known, context length
    (``model_info["octoroute.context_length"]`` and ``num_ctx`` in ``parameters``)."""
    info: dict[str, Any] = {"general.architecture": ARCHITECTURE}
    parameters = ""
    if model.context_window is not None:
        info[f"{ARCHITECTURE}.context_length"] = model.context_window
        parameters = f"num_ctx {model.context_window}"
    kind = "embedding model" if model.embedding else "model"
    return orjson.dumps(
        {
            "license": "",
            "modelfile": f"# {model.name}: a {kind} served through octoroute\n",
            "parameters": parameters,
            "template": "{{ .Prompt }}",
            "details": _DETAILS,
            "model_info": info,
            "capabilities": _capabilities(model),
            "modified_at": modified_at,
        }
    )


def ps_body(loaded: Sequence[ModelInfo]) -> bytes:
    """``GET /api/ps``: the models some server reports loaded (sizes unknown: 0)."""
    models = [
        {
            "name": model.name,
            "model": model.name,
            "size": 0,
            "digest": _digest(model.name),
            "details": _DETAILS,
            "size_vram": 0,
            "context_length": model.context_window or 0,
        }
        for model in loaded
    ]
    return orjson.dumps({"models": models})
