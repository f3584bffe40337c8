"""Peek at Ollama's embedding bodies (``/api/embed``, ``/api/embeddings``) and translate them.

``/api/embed`` takes ``input`` (a string or an array of strings) and answers ``embeddings``;
the older ``/api/embeddings`` takes one ``prompt`` and answers one ``embedding``. Both become an
OpenAI ``/v1/embeddings`` body, unless the endpoint has ``native = ["ollama"]``: it then gets the
client's body with only ``model`` replaced, at its own path. ``dimensions`` is not sent to an
OpenAI server: the router cuts each vector to it and normalises it again, as Ollama does, which
is what a server that honours ``dimensions`` does too, and works with every model (vLLM refuses
``dimensions`` for a model not trained for it). ``truncate``, ``keep_alive`` and ``options`` are accepted (how the server runs the model);
an empty input is answered by the router itself with no vectors, as Ollama does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec
import orjson

from octoroute.enums import Native
from octoroute.errors import InvalidRequest
from octoroute.wire.duplicates import check_duplicate_keys
from octoroute.wire.ollama import check_keep_alive
from octoroute.wire.requests import (
    decode_json_object,
    decode_json_values,
    read_model,
    rebuild_with_model,
    shown,
)

if TYPE_CHECKING:
    from octoroute.config.schema import EndpointConfig, LimitsConfig

__all__ = ["OllamaEmbedRequest", "parse_embed_request", "parse_embeddings_request"]

_EMBED_KEYS: Final = frozenset({"model", "input", "dimensions"})
_EMBEDDINGS_KEYS: Final = frozenset({"model", "prompt"})


class OllamaEmbedRequest:
    """A validated ``/api/embed`` or ``/api/embeddings`` request and its bodies per endpoint."""

    __slots__ = ("dimensions", "empty", "fields", "legacy", "model", "translated")

    def __init__(
        self,
        *,
        model: str,
        fields: dict[str, msgspec.Raw],
        translated: dict[str, Any],
        legacy: bool,
        empty: bool,
        dimensions: int | None = None,
    ) -> None:
        self.model = model
        self.fields = fields
        self.translated = translated
        """The OpenAI embeddings body without ``model``."""
        self.legacy = legacy
        """``/api/embeddings`` (one ``prompt``, one ``embedding``) rather than ``/api/embed``."""
        self.empty = empty
        """Nothing to embed: answered without asking a server, as Ollama does."""
        self.dimensions = dimensions
        """The length ``/api/embed`` vectors are cut to, if the client asked for one."""

    def path_for(self, endpoint: EndpointConfig) -> str:
        """Ollama's own path for a native endpoint, else ``embeddings``."""
        if Native.OLLAMA in endpoint.native:
            return "/api/embeddings" if self.legacy else "/api/embed"
        return "embeddings"

    def body_for(self, endpoint: EndpointConfig) -> bytes:
        """The client's body (native endpoint) or the OpenAI body, for ``endpoint``."""
        if Native.OLLAMA in endpoint.native:
            return rebuild_with_model(self.fields, endpoint.name)
        return orjson.dumps({"model": endpoint.name, **self.translated})


def _check_size(chars: int, limits: LimitsConfig, param: str) -> None:
    if chars > limits.max_content_chars:
        raise InvalidRequest(
            f"{param} has {chars} characters of text, more than the limit of "
            f"{limits.max_content_chars} (configurable as [limits].max_content_chars)",
            param=param,
        )


def _check_common(values: dict[str, Any]) -> None:
    check_keep_alive(values)
    truncate = values.get("truncate")
    if truncate is not None and not isinstance(truncate, bool):
        raise InvalidRequest(
            f"truncate must be true or false, got {shown(truncate)}", param="truncate"
        )
    options = values.get("options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest(f"options must be an object, got {shown(options)}", param="options")


def parse_embed_request(body: bytes, limits: LimitsConfig) -> OllamaEmbedRequest:
    """Decode and validate an ``/api/embed`` body: ``input`` a string or an array of strings,
    ``dimensions`` a positive integer. Raises ``InvalidRequest`` naming the field."""
    fields = decode_json_object(body)
    model = read_model(fields)
    values: dict[str, Any] = decode_json_values(body)
    texts = values.get("input")
    if texts is None:
        texts = []
    if isinstance(texts, str):
        texts = [texts] if texts else []
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        raise InvalidRequest(
            f"input must be a string or an array of strings, got {shown(values.get('input'))}",
            param="input",
        )
    _check_size(sum(len(text) for text in texts), limits, "input")
    _check_common(values)
    translated: dict[str, Any] = {"input": values["input"]} if texts else {}
    dimensions = values.get("dimensions")
    if dimensions is not None and (
        isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1
    ):
        raise InvalidRequest(
            f"dimensions must be an integer >= 1, got {shown(dimensions)}", param="dimensions"
        )
    check_duplicate_keys(body, fields, _EMBED_KEYS, messages_key=None)
    return OllamaEmbedRequest(
        model=model,
        fields=fields,
        translated=translated,
        legacy=False,
        empty=not texts,
        dimensions=dimensions,
    )


def parse_embeddings_request(body: bytes, limits: LimitsConfig) -> OllamaEmbedRequest:
    """Decode and validate an ``/api/embeddings`` body: ``prompt`` a string. Raises
    ``InvalidRequest`` naming the field."""
    fields = decode_json_object(body)
    model = read_model(fields)
    values: dict[str, Any] = decode_json_values(body)
    prompt = values.get("prompt")
    if prompt is None:
        prompt = ""
    if not isinstance(prompt, str):
        raise InvalidRequest(f"prompt must be a string, got {shown(prompt)}", param="prompt")
    _check_size(len(prompt), limits, "prompt")
    _check_common(values)
    check_duplicate_keys(body, fields, _EMBEDDINGS_KEYS, messages_key=None)
    return OllamaEmbedRequest(
        model=model, fields=fields, translated={"input": prompt}, legacy=True, empty=not prompt
    )
