"""Per-endpoint rewrites of a chat body for servers that reject newer fields (``compat``).

Applied only for an endpoint that lists them, on the raw fields the rest of the wire layer keeps:
a value the rewrite does not touch keeps the client's bytes. Without ``compat`` nothing here
runs and the body stays byte-faithful.
"""

from __future__ import annotations

from typing import Final

import msgspec

from octoroute.enums import Compat

__all__ = ["apply_compat"]

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
