"""Per-endpoint rewrites of a chat body for servers that reject newer fields (``compat``).

Applied only for an endpoint that lists them, on the raw fields the rest of the wire layer keeps:
a value the rewrite does not touch keeps the client's bytes. Without ``compat`` nothing here
runs and the body stays byte-faithful.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec
import orjson

from octoroute.enums import Compat

if TYPE_CHECKING:
    from octoroute.config.schema import EndpointConfig

__all__ = ["apply_compat", "translated_chat_body"]

_MESSAGES: Final = msgspec.json.Decoder(list[dict[str, msgspec.Raw]])
_ROLE: Final = msgspec.json.Decoder(str)
_SYSTEM: Final = msgspec.Raw(b'"system"')


def apply_compat(fields: dict[str, msgspec.Raw], compat: frozenset[str]) -> dict[str, msgspec.Raw]:
    """``fields`` rewritten by each rewrite in ``compat`` (``enums.Compat`` values), in order."""
    out = fields
    if Compat.STRIP_STREAM_OPTIONS in compat and "stream_options" in out:
        out = {key: value for key, value in out.items() if key != "stream_options"}
    if Compat.MAX_COMPLETION_TOKENS_TO_MAX_TOKENS in compat and "max_completion_tokens" in out:
        out = _rename_max_completion_tokens(out)
    if Compat.DEVELOPER_TO_SYSTEM in compat:
        messages = out.get("messages")
        # A role spelled with \u escapes is still "developer": look closer whenever one may be.
        if messages is not None and (b"developer" in (raw := bytes(messages)) or b"\\u" in raw):
            out = {**out, "messages": _developer_to_system(messages)}
    return out


def _rename_max_completion_tokens(fields: dict[str, msgspec.Raw]) -> dict[str, msgspec.Raw]:
    """``max_completion_tokens`` becomes ``max_tokens`` where it stands; when the client sent
    both, its ``max_tokens`` wins and the newer name is left out."""
    has_max_tokens = "max_tokens" in fields
    out: dict[str, msgspec.Raw] = {}
    for key, value in fields.items():
        if key == "max_completion_tokens":
            if not has_max_tokens:
                out["max_tokens"] = value
        else:
            out[key] = value
    return out


def _developer_to_system(raw: msgspec.Raw) -> msgspec.Raw:
    """The ``messages`` array with every ``developer`` role sent as ``system``."""
    try:
        messages = _MESSAGES.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return raw  # validation already passed on it; an odd shape is forwarded as it came
    changed = False
    for message in messages:
        role = message.get("role")
        if role is not None and _ROLE.decode(role) == "developer":
            message["role"] = _SYSTEM
            changed = True
    if not changed:
        return raw
    return msgspec.Raw(msgspec.json.encode(messages))


def translated_chat_body(chat: dict[str, Any], endpoint: EndpointConfig) -> bytes:
    """A chat body translated from another dialect (Responses, Anthropic Messages), for
    ``endpoint``: its model name, its ``compat`` rewrites, and its ``max_tokens`` and
    ``temperature`` where the translation set none. One place, so every dialect treats a
    server that refuses a field the same way chat requests do."""
    body: dict[str, Any] = {"model": endpoint.name, **chat}
    compat = endpoint.compat
    if compat:
        if Compat.STRIP_STREAM_OPTIONS in compat:
            body.pop("stream_options", None)
        if Compat.MAX_COMPLETION_TOKENS_TO_MAX_TOKENS in compat and "max_completion_tokens" in body:
            limit = body.pop("max_completion_tokens")
            body.setdefault("max_tokens", limit)
        if Compat.DEVELOPER_TO_SYSTEM in compat:
            messages = body.get("messages")
            if isinstance(messages, list) and any(
                isinstance(m, dict) and m.get("role") == "developer" for m in messages
            ):
                body["messages"] = [
                    {**m, "role": "system"}
                    if isinstance(m, dict) and m.get("role") == "developer"
                    else m
                    for m in messages
                ]
    if (
        "max_tokens" not in body
        and "max_completion_tokens" not in body
        and endpoint.max_tokens is not None
    ):
        body["max_tokens"] = endpoint.max_tokens
    if "temperature" not in body:
        body["temperature"] = endpoint.temperature
    return orjson.dumps(body)
