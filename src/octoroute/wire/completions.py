"""Peek at a legacy ``/v1/completions`` body (text completion and fill-in-the-middle).

Same approach as ``wire.requests``: the top-level object is kept as raw values, only what the
router routes or validates on is decoded, and the upstream body is the client's object with
``model`` replaced and nothing else (no defaults are added: a completion's ``max_tokens``
default of 16 is the server's to apply, as OpenAI does).

For ``model: auto`` the ``prompt`` is routed as one user turn: a string, or the first string of
an array of prompts. Token-id prompts carry no text, so routing sees an empty turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

from octoroute.errors import InvalidRequest
from octoroute.wire.compat import apply_compat
from octoroute.wire.duplicates import check_duplicate_keys
from octoroute.wire.hints import RequestHints
from octoroute.wire.messages import Message
from octoroute.wire.requests import (
    chat_hints,
    check_sampling,
    decode_json_object,
    read_model,
    read_stream,
    rebuild_with_model,
    shown_value,
)

if TYPE_CHECKING:
    from octoroute.config.schema import EndpointConfig, LimitsConfig

__all__ = ["CompletionRequest", "parse_completion_request"]

# msgspec takes one array type per union: the items are a union instead, and mixed arrays
# (a string beside token ids) are refused after decoding.
_PROMPT: Final = msgspec.json.Decoder(str | list[str | int | list[int]])
_READ_KEYS: Final = frozenset(
    {
        "model",
        "prompt",
        "stream",
        "temperature",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "max_tokens",
    }
)
"""The top-level keys ``parse_completion_request`` reads: each must appear once."""


class CompletionRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A validated completions request: what routing needs, plus the body's raw fields."""

    model: str
    stream: bool
    prompt_text: str
    """The text routing reads: the prompt string, or the first string of an array of them."""
    fields: dict[str, msgspec.Raw]
    hints: RequestHints = RequestHints()
    """``max_tokens`` and ``user``; no default is filled in, so none is counted."""

    def path_for(self, endpoint: EndpointConfig) -> str:
        """Where under any endpoint's ``base_url`` this request goes."""
        return "completions"

    @property
    def messages(self) -> list[Message]:
        """The prompt as the one user turn routing reads."""
        return [Message(role="user", content=self.prompt_text)]

    def body_for(self, endpoint: EndpointConfig) -> bytes:
        """The client's body with ``model`` set to ``endpoint``'s name; nothing else changed
        unless the endpoint lists ``compat`` rewrites."""
        fields = apply_compat(self.fields, endpoint.compat) if endpoint.compat else self.fields
        return rebuild_with_model(fields, endpoint.name)


def parse_completion_request(body: bytes, limits: LimitsConfig) -> CompletionRequest:
    """Decode and validate a completions body; everything not validated is kept raw.

    Validated: ``model`` (a non-blank string), ``prompt`` (required: a string, an array of
    strings, an array of token ids, or an array of such arrays; at most
    ``limits.max_content_chars`` characters of text), ``stream``, and the sampling numbers as
    for chat. ``suffix``, ``echo``, ``logprobs``, ``best_of``, ``n`` and every other field are
    forwarded as sent. Raises ``InvalidRequest`` whose ``param`` names the field.
    """
    fields = decode_json_object(body)
    model = read_model(fields)
    raw = fields.get("prompt")
    if raw is None:
        raise InvalidRequest(
            "prompt is required: a string, an array of strings, or token ids", param="prompt"
        )
    try:
        prompt = _PROMPT.decode(raw)
    except (msgspec.ValidationError, RecursionError):
        prompt = None
    if prompt is None or (
        isinstance(prompt, list) and (not prompt or len({type(item) for item in prompt}) > 1)
    ):
        raise InvalidRequest(
            "prompt must be a string, an array of strings, an array of token ids or an array "
            f"of token-id arrays, got {shown_value(raw)}",
            param="prompt",
        )
    if isinstance(prompt, str):
        text, chars = prompt, len(prompt)
    else:
        strings = [item for item in prompt if isinstance(item, str)]
        text = strings[0] if strings else ""
        chars = sum(len(item) for item in strings)
    if chars > limits.max_content_chars:
        raise InvalidRequest(
            f"prompt has {chars} characters of text, more than the limit of "
            f"{limits.max_content_chars} (configurable as [limits].max_content_chars)",
            param="prompt",
        )
    stream = read_stream(fields)
    check_sampling(fields)
    check_duplicate_keys(body, fields, _READ_KEYS, messages_key=None)
    return CompletionRequest(
        model=model,
        stream=stream,
        prompt_text=text,
        fields=fields,
        hints=chat_hints(fields, fills_default=False),
    )
