"""llama.cpp's ``llama-server``: ``GET /health`` (503 "Loading model" while it loads),
``GET /props`` (the per-slot context size, the slot count, whether it sleeps) and ``GET /slots``
(which slots are busy).

A single-model server holds its model from start-up, except while it loads it and while it
sleeps on idle (``--sleep-idle-seconds``; ``/props`` says ``is_sleeping``). In router mode
(``llama-server`` started without a model) the ``model`` query parameter picks the instance, and
``autoload=false`` keeps a status read from loading a model nobody asked for; when ``/props``
cannot answer for an unloaded model, ``GET /models`` says its status.

``n_ctx`` in ``/props`` and ``/slots`` is per slot, which is what one request can use: with
``--parallel 4`` and ``-c 32768`` each request has 8192 tokens (unless the KV cache is unified).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlencode

from octoroute.fleet.facts import UNKNOWN, InstanceFacts
from octoroute.fleet.kinds.values import count, field, json_object, json_value, window

if TYPE_CHECKING:
    from octoroute.fleet.kinds import Fetch

HEALTH_PATH = "/health"
PROPS_PATH = "/props"
SLOTS_PATH = "/slots"
MODELS_PATH = "/models"
_LOADING_STATES = frozenset({"loading", "downloading"})
_COLD_STATES = frozenset({"unloaded", "sleeping"})


class Props(NamedTuple):
    """What ``/props`` says."""

    context_window: int | None
    slots_total: int | None
    sleeping: bool | None


class Slots(NamedTuple):
    """What ``/slots`` says."""

    total: int
    idle: int
    context_window: int | None


def is_loading(status: int, body: bytes) -> bool:
    """Whether an answer is llama-server's 503 "Loading model" (it answers every path so while
    the model loads)."""
    if status != 503:
        return False
    message = field(json_object(body), "error", "message")
    return isinstance(message, str) and "loading" in message.lower()


def parse_props(body: bytes) -> Props | None:
    """The context size per slot, the slot count and the sleep state; ``None`` for a body that
    is not a ``/props`` answer."""
    props = json_object(body)
    if props is None:
        return None
    context = window(field(props, "default_generation_settings", "n_ctx"))
    if context is None:
        context = window(props.get("n_ctx"))  # some builds put it at the top level
    slots = count(props.get("total_slots"))
    sleeping = props.get("is_sleeping")
    if context is None and slots is None and not isinstance(sleeping, bool):
        return None
    return Props(
        context, slots if slots else None, sleeping if isinstance(sleeping, bool) else None
    )


def parse_slots(body: bytes) -> Slots | None:
    """How many slots there are and how many are idle; ``None`` unless the body is a list of
    slot objects."""
    slots = json_value(body)
    if not isinstance(slots, list) or not slots:
        return None
    if not all(isinstance(slot, dict) for slot in slots):
        return None
    busy = [_busy(slot) for slot in slots]
    if any(state is None for state in busy):
        return None
    contexts = [window(slot.get("n_ctx")) for slot in slots]
    known = [context for context in contexts if context is not None]
    return Slots(len(slots), busy.count(False), min(known) if known else None)


def _busy(slot: dict[str, Any]) -> bool | None:
    processing = slot.get("is_processing")
    if isinstance(processing, bool):
        return processing
    state = count(slot.get("state"))  # older builds: 0 idle, 1 processing
    return None if state is None else state != 0


def parse_router_status(body: bytes, model: str) -> str | None:
    """In router mode, ``GET /models`` gives each model's ``status.value`` (``loaded``,
    ``loading``, ``unloaded``, ``sleeping``, ``downloading``); ``None`` when ``model`` is not
    listed or the server is not a router."""
    data = field(json_object(body), "data")
    if not isinstance(data, list):
        return None
    for entry in data:
        if field(entry, "id") == model:
            value = field(entry, "status", "value")
            return value if isinstance(value, str) else None
    return None


def _instance_query(model: str) -> str:
    return "?" + urlencode({"model": model, "autoload": "false"})


async def read(fetch: Fetch, model: str) -> InstanceFacts:
    """Health first (a loading server says so on every path), then ``/props`` and ``/slots``."""
    status, body = await fetch("GET", HEALTH_PATH)
    if is_loading(status, body):
        return InstanceFacts(loaded=False, loading=True)
    if status != 200:
        return UNKNOWN
    query = _instance_query(model)
    status, body = await fetch("GET", PROPS_PATH + query)
    if is_loading(status, body):
        return InstanceFacts(loaded=False, loading=True)
    props = parse_props(body) if status == 200 else None
    if props is None:
        return await _router_status(fetch, model)
    status, body = await fetch("GET", SLOTS_PATH + query)
    slots = parse_slots(body) if status == 200 else None  # --no-slots answers 501
    context = props.context_window
    total = props.slots_total
    idle = None
    if slots is not None:
        context = context if context is not None else slots.context_window
        total = total if total is not None else slots.total
        idle = slots.idle
    return InstanceFacts(
        loaded=not props.sleeping,  # a server that answers /props holds its model unless asleep
        context_window=context,
        slots_total=total,
        slots_idle=idle,
    )


async def _router_status(fetch: Fetch, model: str) -> InstanceFacts:
    status, body = await fetch("GET", MODELS_PATH)
    state = parse_router_status(body, model) if status == 200 else None
    if state in _LOADING_STATES:
        return InstanceFacts(loaded=False, loading=True)
    if state in _COLD_STATES:
        return InstanceFacts(loaded=False)
    if state == "loaded":
        return InstanceFacts(loaded=True)
    return UNKNOWN


def looks_like_props(status: int, body: bytes) -> bool:
    """Whether a ``GET /props`` answer is llama-server's (for ``check --probe``)."""
    return status == 200 and parse_props(body) is not None
