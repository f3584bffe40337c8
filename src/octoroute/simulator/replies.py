"""What a simulated model says: pure functions over the request JSON, no I/O.

Kept apart from the server so the reply logic (demo text, the router-model heuristic, tool-call
echo, token counting) can be read and unit-tested without sockets.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

JsonObject = dict[str, Any]
"""A decoded JSON object, as received from a client."""

ReplyFn = Callable[[JsonObject], str]
"""A scripted reply: called with the parsed request body, returns the assistant's text."""

ROUTER_PROMPT_SIGNATURE = "Answer with one word: FAST, BALANCED or DEEP."
"""The sentence the LLM router's prompt always contains; its presence switches on router mode."""

_TOKEN = re.compile(r"\s*\S+|\s+")
_REQUEST_LINE = re.compile(
    r"^\s*(?:user(?:'s)?\s+)?(?:request|query|message|prompt|task|question|input)\s*:\s*(.*)$",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)
_NEXT_BLOCK = re.compile(r"\n\s*(?:metadata|context|instructions?)\s*:", re.IGNORECASE)
_DELIMITED = re.compile(r'"""(.*?)"""|```(.*?)```|<request>(.*?)</request>', re.DOTALL)
_DEEP_WORDS = re.compile(
    r"\b(?:prove|proof|theorem|lemma|derive|derivation|formally|rigorous\w*|architect\w*|"
    r"system design|design (?:a|an|the)|distributed|consensus|scalab\w*|trade-?offs?|"
    r"in depth|in-depth|step by step|complexity|concurren\w*|threat model|security audit|"
    r"research|optimi[sz]e|benchmark\w*)\b",
    re.IGNORECASE,
)
_BALANCED_WORDS = re.compile(
    r"\b(?:code|function|class|method|python|rust|javascript|typescript|java|golang|sql|regex|"
    r"bug|debug|refactor|implement|compile|script|explain|summari[sz]e|summary|compare|"
    r"translate|write|essay|story|poem|analy[sz]e|review|why|how does|how do)\b",
    re.IGNORECASE,
)
_LONG_REQUEST_CHARS = 1500
_VERY_LONG_REQUEST_CHARS = 6000
_SNIPPET_CHARS = 80
_TIER_FLAVOUR = {
    "fast": "Here is a quick answer.",
    "balanced": "Here is a considered answer, with a little more detail on the main points.",
    "deep": (
        "Here is a thorough answer, reasoned step by step: first the assumptions, then the "
        "options and their trade-offs, and finally a recommendation you can act on."
    ),
}


def tokenize(text: str) -> list[str]:
    """Split ``text`` into word-ish tokens that keep their leading spaces.

    ``"".join(tokenize(t)) == t`` always holds, so streaming the tokens reproduces the reply
    byte for byte; an empty text has no tokens.
    """
    return _TOKEN.findall(text)


def message_text(message: object) -> str:
    """The text of one chat message: string content, or its text parts joined by newlines."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def _messages(body: JsonObject) -> list[object]:
    messages = body.get("messages")
    return messages if isinstance(messages, list) else []


def last_message_role(body: JsonObject) -> str:
    """The role of the conversation's last message, ``""`` when there is none."""
    messages = _messages(body)
    if not messages or not isinstance(messages[-1], dict):
        return ""
    role = messages[-1].get("role")
    return role if isinstance(role, str) else ""


def last_user_text(body: JsonObject) -> str:
    """The text of the last ``user`` message, ``""`` when there is none."""
    for message in reversed(_messages(body)):
        if isinstance(message, dict) and message.get("role") == "user":
            return message_text(message)
    return ""


def prompt_tokens(body: JsonObject) -> int:
    """A deterministic stand-in for the prompt's token count: tokens of every message plus 3.

    The +3 per message mimics chat templates' framing, so an empty message still costs tokens.
    """
    return sum(len(tokenize(message_text(m))) + 3 for m in _messages(body))


def is_router_prompt(body: JsonObject) -> bool:
    """Whether this request is the LLM router asking which tier should serve a request."""
    return ROUTER_PROMPT_SIGNATURE in last_user_text(body)


def routed_request_text(prompt: str) -> str:
    """The request the router prompt asks about, isolated from the prompt's own instructions.

    The prompt wording belongs to the routing module, so this only guesses: a delimited block
    (triple quotes, a code fence, ``<request>``) wins, then whatever follows a ``User request:``
    style label up to a ``Metadata:`` block (v1's layout), else the whole prompt. The signature
    sentence is always removed, because its tier names would otherwise bias the heuristic.
    """
    text = prompt.replace(ROUTER_PROMPT_SIGNATURE, " ")
    delimited = _DELIMITED.search(text)
    if delimited is not None:
        return next(group for group in delimited.groups() if group is not None).strip()
    labelled = _REQUEST_LINE.search(text)
    if labelled is not None:
        return _NEXT_BLOCK.split(labelled.group(1), maxsplit=1)[0].strip()
    return text.strip()


def route_heuristic(request_text: str) -> str:
    """The tier word a sensible router model would answer for ``request_text``.

    Proofs, system design and very long inputs go DEEP; code, writing and explanations go
    BALANCED; greetings and short questions go FAST.
    """
    if _DEEP_WORDS.search(request_text) or len(request_text) > _VERY_LONG_REQUEST_CHARS:
        return "DEEP"
    if _BALANCED_WORDS.search(request_text) or len(request_text) > _LONG_REQUEST_CHARS:
        return "BALANCED"
    return "FAST"


def demo_reply(name: str, label: str, body: JsonObject) -> str:
    """The default answer: says which model and tier served it, then echoes the prompt.

    The ``[tier · model]`` prefix lets a demo user (and an end-to-end test) see where a request
    was routed without reading router logs.
    """
    prefix = f"[{label} · {name}]" if label else f"[{name}]"
    role = last_message_role(body)
    if role == "tool":
        return f"{prefix} The tool returned: {message_text(_messages(body)[-1])[:_SNIPPET_CHARS]}"
    asked = " ".join(last_user_text(body).split())
    if len(asked) > _SNIPPET_CHARS:
        asked = asked[: _SNIPPET_CHARS - 1] + "…"
    flavour = _TIER_FLAVOUR.get(label.split(" ")[0].lower(), _TIER_FLAVOUR["balanced"])
    return f"{prefix} You asked: “{asked}”. {flavour} (This answer comes from a simulated model.)"


PARALLEL_CALLS = 2
"""How many tools a simulated model calls at once when several are offered and
``parallel_tool_calls`` is not ``false``."""


def requested_tools(body: JsonObject) -> list[JsonObject]:
    """The function tools a model should call for this request; empty to answer in text.

    Tools are called when ``tools`` is a non-empty list, ``tool_choice`` is not ``"none"`` and
    the last message is not a tool result (a real model answers a tool result in text; echoing
    another call would loop an agent forever). ``tool_choice`` naming a function picks it alone;
    otherwise the first tool is called, and with several tools the first ``PARALLEL_CALLS`` of
    them at once (parallel tool calls) unless the request sets ``parallel_tool_calls: false``.
    """
    tools = body.get("tools")
    if not isinstance(tools, list) or not tools or last_message_role(body) == "tool":
        return []
    choice = body.get("tool_choice")
    if choice == "none":
        return []
    functions = [
        t["function"] for t in tools if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]
    if not functions:
        return []
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        wanted = choice["function"].get("name")
        for function in functions:
            if function.get("name") == wanted:
                return [dict(function)]
    calls = 1 if body.get("parallel_tool_calls") is False else PARALLEL_CALLS
    return [dict(function) for function in functions[:calls]]


def requested_choices(body: JsonObject) -> int:
    """How many choices to generate: the request's ``n`` when it is an integer from 1 to 128
    (OpenAI's bounds), else 1."""
    n = body.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 128:
        return n
    return 1


_PLACEHOLDERS: dict[str, object] = {
    "string": "sim",
    "integer": 1,
    "number": 1.0,
    "boolean": True,
    "array": [],
    "object": {},
}


def tool_arguments(function: JsonObject) -> str:
    """JSON arguments for a call to ``function``: a placeholder for each declared property.

    Values follow the JSON-schema ``type`` so that SDKs and agents that validate arguments
    against the schema accept them.
    """
    parameters = function.get("parameters")
    properties = parameters.get("properties") if isinstance(parameters, dict) else None
    arguments: dict[str, object] = {}
    if isinstance(properties, dict):
        for key, schema in properties.items():
            kind = schema.get("type") if isinstance(schema, dict) else None
            arguments[str(key)] = _PLACEHOLDERS.get(kind, "sim") if isinstance(kind, str) else "sim"
    return orjson.dumps(arguments).decode()


def split_arguments(arguments: str, size: int = 8) -> list[str]:
    """Cut a tool call's arguments into the small fragments OpenAI streams them in."""
    return [arguments[i : i + size] for i in range(0, len(arguments), size)] or [""]


def resolve_reply(reply: str | ReplyFn | None, default: str, body: JsonObject) -> str:
    """The text of a scripted reply: fixed text, a callable's result, or ``default``."""
    if reply is None:
        return default
    if isinstance(reply, str):
        return reply
    return reply(body)


def schema_instance(schema: object, defs: JsonObject | None = None, depth: int = 0) -> object:
    """A deterministic value that validates against the JSON schema ``schema``: every property
    of an object, one item per array, the first ``enum`` value or ``anyOf`` branch, and a fixed
    placeholder per type (what a model under structured output must produce)."""
    if not isinstance(schema, dict) or depth > 32:
        return "sim"
    defs = schema.get("$defs", defs) if isinstance(schema.get("$defs"), dict) else defs
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and defs is not None:
        return schema_instance(defs.get(ref.removeprefix("#/$defs/")), defs, depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        branches = schema.get(key)
        if isinstance(branches, list) and branches:
            return schema_instance(branches[0], defs, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return {}
        return {
            str(key): schema_instance(value, defs, depth + 1) for key, value in properties.items()
        }
    if kind == "array":
        return [schema_instance(schema.get("items"), defs, depth + 1)]
    if kind == "null":
        return None
    return _PLACEHOLDERS.get(kind, "sim") if isinstance(kind, str) else "sim"


def structured_reply(body: JsonObject) -> str | None:
    """The JSON text ``response_format`` asks for (``json_schema``: a schema instance;
    ``json_object``: a small object), or ``None`` when free text is fine."""
    form = body.get("response_format")
    if not isinstance(form, dict):
        return None
    if form.get("type") == "json_schema":
        spec = form.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return orjson.dumps(schema_instance(schema)).decode()
    if form.get("type") == "json_object":
        return orjson.dumps({"reply": "sim"}).decode()
    return None
