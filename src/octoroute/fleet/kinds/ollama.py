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

Names are compared as Ollama compares them (``types/model/name.go``): case aside, with the
implicit ``:latest`` tag, and without the default ``registry.ollama.ai/library/`` prefix, which
``/api/ps`` never shows. ``llama3.1:8b`` is not ``llama3.1:8b-instruct-q4_K_M``. Ollama keeps one
runner per model file and lists it under the name that loaded it, so another tag of the same
model (``llama3.1:latest`` for ``llama3.1:8b``) is recognised by its manifest digest, from
``GET /api/tags``, asked only when ps lists models but none by this name.

Since Ollama 0.32.4 ``/api/ps`` does not answer while any model is loading (it waits for the
load): such a read runs out of time and the instance reads as unknown until the load ends.
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
TAGS_PATH = "/api/tags"
VERSION_PATH = "/api/version"
SLOW_READ_HINT = "Ollama 0.32.4 and later hold /api/ps while a model loads"
_DEFAULT_PREFIXES = ("registry.ollama.ai/", "library/")
"""The default host, then the default namespace: ``DisplayShortest`` leaves both out."""


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


class Loaded(NamedTuple):
    """One model ``/api/ps`` lists."""

    name: str
    """Its name, canonical (:func:`canonical_name`)."""
    digest: str | None
    """Its manifest digest, shared by every tag of the same model."""
    context_window: int | None


def canonical_name(name: str) -> str:
    """A model name as Ollama lists it: lower case, with the implicit ``:latest`` tag spelled and
    the default registry and namespace dropped.

    ``llama3.1``, ``llama3.1:latest`` and ``registry.ollama.ai/library/llama3.1`` are one model;
    ``hf.co/org/repo:Q4_K_M`` and ``user/model:tag`` keep their own parts.
    """
    name = name.strip().lower().removeprefix("https://").removeprefix("http://")
    for prefix in _DEFAULT_PREFIXES:
        name = name.removeprefix(prefix)
    last = name.rpartition("/")[2]
    return name if ":" in last else name + ":latest"


def loaded_models(body: bytes) -> list[Loaded] | None:
    """The models of a ``/api/ps`` answer; ``None`` when the body is not one."""
    models = field(json_object(body), "models")
    if not isinstance(models, list):
        return None
    found: list[Loaded] = []
    for entry in models:
        names = {
            canonical_name(name)
            for name in (field(entry, "name"), field(entry, "model"))
            if isinstance(name, str)
        }
        digest = field(entry, "digest")
        digest = digest.lower() if isinstance(digest, str) and digest else None
        context = window(field(entry, "context_length"))
        found.extend(Loaded(name, digest, context) for name in sorted(names))
    return found


def parse_ps(body: bytes, model: str, digest: str | None = None) -> Residency | None:
    """Whether ``model`` (or, given its ``digest``, another tag of it) is among the loaded
    models of a ``/api/ps`` answer; ``None`` when the body is not a ``/api/ps`` answer at all."""
    loaded = loaded_models(body)
    if loaded is None:
        return None
    entry = _find(loaded, model, digest)
    return Residency(True, entry.context_window) if entry else Residency(False, None)


def _find(loaded: list[Loaded], model: str, digest: str | None) -> Loaded | None:
    wanted = canonical_name(model)
    by_name = next((entry for entry in loaded if entry.name == wanted), None)
    if by_name is not None or digest is None:
        return by_name
    return next((entry for entry in loaded if entry.digest == digest), None)


def parse_tags(body: bytes, model: str) -> str | None:
    """The manifest digest of ``model`` in a ``/api/tags`` answer; ``None`` when not listed."""
    models = field(json_object(body), "models")
    if not isinstance(models, list):
        return None
    wanted = canonical_name(model)
    for entry in models:
        names = (field(entry, "name"), field(entry, "model"))
        if any(isinstance(name, str) and canonical_name(name) == wanted for name in names):
            digest = field(entry, "digest")
            return digest.lower() if isinstance(digest, str) and digest else None
    return None


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
    """Ask ``/api/ps`` whether ``model`` is loaded (``/api/tags`` for its digest when ps lists
    others); ``/api/show`` for its window only when ps did not give one (a cold model, or an
    Ollama older than 0.6)."""
    status, body = await fetch("GET", PS_PATH)
    loaded = loaded_models(body) if status == 200 else None
    if loaded is None:
        return UNKNOWN
    entry = _find(loaded, model, None)
    if entry is None and any(other.digest for other in loaded):
        status, tags = await fetch("GET", TAGS_PATH)
        entry = _find(loaded, model, parse_tags(tags, model) if status == 200 else None)
    if entry is not None and entry.context_window is not None:
        return InstanceFacts(loaded=True, context_window=entry.context_window)
    status, body = await fetch("POST", SHOW_PATH, orjson.dumps({"model": model}))
    show = parse_show(body) if status == 200 else ShowWindow(None, None)
    return InstanceFacts(
        loaded=entry is not None, context_window=cold_window(show, previous.context_window)
    )


def parse_version(body: bytes) -> str | None:
    """The version string of a ``GET /api/version`` answer: how ``check --probe`` knows an
    Ollama server."""
    version = field(json_object(body), "version")
    return version if isinstance(version, str) and version else None
