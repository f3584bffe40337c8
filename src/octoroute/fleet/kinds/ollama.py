"""Ollama: ``GET /api/ps`` (which models are loaded, and their context length) and
``POST /api/show`` (the context length of a model that is not loaded).

Ollama loads a model on its first request and unloads it after ``keep_alive`` (five minutes by
default), so "loaded" is the fact that matters most here: a cold request waits for the load.

The context window is the one Ollama actually runs the model with, and the sources differ in how
sure they are:

1. ``/api/ps``'s ``context_length`` (Ollama 0.6 and later) while the model is loaded: exact.
2. ``/api/show``'s ``parameters`` ``num_ctx`` (set in the Modelfile): exact for the next load.
3. ``/api/show``'s ``model_info["<arch>.context_length"]``: the length the model was trained
   with, an upper bound. Ollama's own default is smaller (4k to 256k by VRAM, or
   ``OLLAMA_CONTEXT_LENGTH``) and it truncates longer prompts silently, so once the window was
   seen while loaded, a cold model is assumed to come back with that window, not the bound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import orjson

from octoroute.fleet.facts import UNKNOWN, InstanceFacts
from octoroute.fleet.kinds.values import field, json_object, window

if TYPE_CHECKING:
    from octoroute.fleet.kinds import Fetch

PS_PATH = "/api/ps"
SHOW_PATH = "/api/show"
VERSION_PATH = "/api/version"


class Residency(NamedTuple):
    """What ``/api/ps`` says about one model."""

    loaded: bool
    context_window: int | None


class ShowWindow(NamedTuple):
    """The two context lengths ``/api/show`` may give."""

    num_ctx: int | None
    """From the model's ``parameters`` (its Modelfile): what Ollama loads it with."""
    trained: int | None
    """From ``model_info``: the architecture's context length, an upper bound."""


def canonical_name(name: str) -> str:
    """A model name as Ollama lists it: lower case, with the implicit ``:latest`` tag spelled.

    ``llama3.1`` and ``llama3.1:latest`` are one model; ``hf.co/org/repo:Q4_K_M`` keeps its tag.
    """
    name = name.strip().lower()
    last = name.rpartition("/")[2]
    return name if ":" in last else name + ":latest"


def parse_ps(body: bytes, model: str) -> Residency | None:
    """Whether ``model`` is among the loaded models of a ``/api/ps`` answer; ``None`` when the
    body is not a ``/api/ps`` answer at all."""
    models = field(json_object(body), "models")
    if not isinstance(models, list):
        return None
    wanted = canonical_name(model)
    for entry in models:
        names = (field(entry, "name"), field(entry, "model"))
        if any(isinstance(name, str) and canonical_name(name) == wanted for name in names):
            return Residency(True, window(field(entry, "context_length")))
    return Residency(False, None)


def parse_show(body: bytes) -> ShowWindow:
    """The context lengths of a ``/api/show`` answer (``None`` where it gives none)."""
    show = json_object(body)
    if show is None:
        return ShowWindow(None, None)
    return ShowWindow(_num_ctx(field(show, "parameters")), _trained(field(show, "model_info")))


def _num_ctx(parameters: object) -> int | None:
    # One "name value" per line, aligned with spaces: "num_ctx                        8192".
    if not isinstance(parameters, str):
        return None
    found = None
    for line in parameters.splitlines():
        name, _, value = line.strip().partition(" ")
        if name == "num_ctx":
            try:
                found = window(int(value.strip()))
            except ValueError:
                found = None
    return found


def _trained(info: object) -> int | None:
    if not isinstance(info, dict):
        return None
    architecture = info.get("general.architecture")
    if isinstance(architecture, str):
        exact = window(info.get(f"{architecture}.context_length"))
        if exact is not None:
            return exact
    # A model_info without the architecture key still names its length "<arch>.context_length".
    lengths = [window(v) for k, v in info.items() if k.endswith(".context_length")]
    known = [length for length in lengths if length is not None]
    return max(known) if known else None


def cold_window(show: ShowWindow, previous: int | None) -> int | None:
    """The window a model that is not loaded will run with, as well as can be told."""
    if show.num_ctx is not None:
        return show.num_ctx
    if show.trained is not None and previous is not None:
        return min(show.trained, previous)
    return show.trained if show.trained is not None else previous


async def read(fetch: Fetch, model: str, previous: InstanceFacts) -> InstanceFacts:
    """Ask ``/api/ps`` whether ``model`` is loaded; ``/api/show`` for its window only when ps
    did not give one (a cold model, or an Ollama older than 0.6)."""
    status, body = await fetch("GET", PS_PATH)
    residency = parse_ps(body, model) if status == 200 else None
    if residency is None:
        return UNKNOWN
    if residency.context_window is not None:
        return InstanceFacts(loaded=residency.loaded, context_window=residency.context_window)
    status, body = await fetch("POST", SHOW_PATH, orjson.dumps({"model": model}))
    show = parse_show(body) if status == 200 else ShowWindow(None, None)
    return InstanceFacts(
        loaded=residency.loaded, context_window=cold_window(show, previous.context_window)
    )


def parse_version(body: bytes) -> str | None:
    """The version string of a ``GET /api/version`` answer: how ``check --probe`` knows an
    Ollama server."""
    version = field(json_object(body), "version")
    return version if isinstance(version, str) and version else None
