"""Peek at a ``POST /v1/embeddings`` body: ``model`` and the shape of ``input``.

Same approach as ``wire.requests``: the top-level object is kept as raw values and the upstream
body is the client's object with ``model`` replaced and nothing else, so ``encoding_format``,
``dimensions``, ``user`` and vendor fields reach the embedding server as sent. ``input`` is
decoded only to check its shape, because a server handed a malformed one answers with errors
that vary by server (or a 500 that would count against its health).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

from octoroute.errors import InvalidRequest
from octoroute.wire.duplicates import check_duplicate_keys
from octoroute.wire.requests import decode_json_object, read_model, rebuild_with_model, shown_value

if TYPE_CHECKING:
    from octoroute.config.schema import EndpointConfig, LimitsConfig

__all__ = ["EmbeddingsRequest", "parse_embeddings_request"]

# As for completions' prompt: msgspec takes one array type per union, so the items are a union
# and mixed arrays (a string beside token ids) are refused after decoding.
_INPUT: Final = msgspec.json.Decoder(str | list[str | int | list[int]])
_READ_KEYS: Final = frozenset({"model", "input"})
"""The top-level keys ``parse_embeddings_request`` reads: each must appear once."""
_SHAPES: Final = (
    "a string, an array of strings, an array of token ids or an array of token-id arrays"
)


class EmbeddingsRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A validated embeddings request: ``model`` as sent, how many inputs, and the raw body."""

    model: str
    inputs: int
    """How many vectors the client asked for (1 for a string or a single token array)."""
    fields: dict[str, msgspec.Raw]

    def path_for(self, endpoint: EndpointConfig) -> str:
        """Where under any endpoint's ``base_url`` this request goes."""
        return "embeddings"

    def body_for(self, endpoint: EndpointConfig) -> bytes:
        """The client's body with ``model`` set to ``endpoint``'s name, nothing else changed."""
        return rebuild_with_model(self.fields, endpoint.name)


def parse_embeddings_request(body: bytes, limits: LimitsConfig) -> EmbeddingsRequest:
    """Decode and validate an embeddings body; everything not validated is kept raw.

    Validated: ``model`` (a non-blank string) and ``input`` (required: a string, a non-empty
    array of strings, a non-empty array of token ids, or a non-empty array of non-empty token-id
    arrays; at most ``limits.max_content_chars`` characters of text). Raises ``InvalidRequest``
    whose ``param`` names the field.
    """
    fields = decode_json_object(body)
    model = read_model(fields)
    raw = fields.get("input")
    if raw is None:
        raise InvalidRequest(f"input is required: {_SHAPES}", param="input")
    try:
        value = _INPUT.decode(raw)
    except (msgspec.ValidationError, RecursionError):
        value = None
    if (
        value is None
        or (isinstance(value, list) and (not value or len({type(item) for item in value}) > 1))
        or (isinstance(value, list) and any(item == [] for item in value))
    ):
        raise InvalidRequest(
            f"input must be {_SHAPES}, none of them empty; got {shown_value(raw)}", param="input"
        )
    if isinstance(value, str):
        inputs, chars = 1, len(value)
    elif isinstance(value[0], int):
        inputs, chars = 1, 0
    else:
        inputs = len(value)
        chars = sum(len(item) for item in value if isinstance(item, str))
    if chars > limits.max_content_chars:
        raise InvalidRequest(
            f"input has {chars} characters of text, more than the limit of "
            f"{limits.max_content_chars} (configurable as [limits].max_content_chars)",
            param="input",
        )
    check_duplicate_keys(body, fields, _READ_KEYS, messages_key=None)
    return EmbeddingsRequest(model=model, inputs=inputs, fields=fields)
