"""What a simulated embedding model answers: deterministic unit vectors, pure functions.

Each input's vector is derived from a hash of the input (its text, or its token ids), so the
same input always gets the same vector, on every replica and every run, and different inputs
get different ones: enough for a client's round trip and for tests that compare vectors. They
carry no meaning (similar texts are not close).
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Final

DEFAULT_DIMENSIONS: Final = 16
"""Vector length unless the request's ``dimensions`` or ``Behaviour.embedding_dimensions`` says
otherwise; small, so test bodies stay short."""
MAX_DIMENSIONS: Final = 8192


def inputs_of(body: dict[str, object]) -> list[str | list[int]] | None:
    """The request's inputs as a list, ``None`` when ``input`` has none of the OpenAI shapes."""
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(item, int) and not isinstance(item, bool) for item in value):
        return [list(value)]
    if all(isinstance(item, str) for item in value):
        return list(value)
    if all(
        isinstance(item, list) and item and all(isinstance(t, int) for t in item) for item in value
    ):
        return [list(item) for item in value]
    return None


def vector(item: str | list[int], dimensions: int) -> list[float]:
    """The unit vector of one input: SHA-256 in counter mode, mapped to [-1, 1], normalised."""
    seed = item.encode() if isinstance(item, str) else b",".join(b"%d" % t for t in item)
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(b"%d:" % counter + seed).digest()
        values.extend(word / 2**31 - 1.0 for (word,) in struct.iter_unpack("<I", digest))
        counter += 1
    del values[dimensions:]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def tokens_of(item: str | list[int]) -> int:
    """A rough token count: words for text (at least 1), the ids for a token array."""
    return len(item) if isinstance(item, list) else max(1, len(item.split()))


def embeddings_answer(
    body: dict[str, object], *, name: str, dimensions: int
) -> dict[str, object] | str:
    """The ``list`` of ``embedding`` objects for ``body``, or the problem with it in words.

    Honours ``dimensions`` (a positive integer) and ``encoding_format`` (``float``, the default,
    or ``base64``: little-endian float32, as OpenAI sends it).
    """
    inputs = inputs_of(body)
    if inputs is None:
        return "input must be a string, an array of strings, or token ids"
    asked = body.get("dimensions", dimensions)
    if not isinstance(asked, int) or isinstance(asked, bool) or not 1 <= asked <= MAX_DIMENSIONS:
        return f"dimensions must be an integer from 1 to {MAX_DIMENSIONS}"
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        return "encoding_format must be 'float' or 'base64'"
    data: list[dict[str, object]] = []
    for index, item in enumerate(inputs):
        values = vector(item, asked)
        embedding: object = (
            base64.b64encode(struct.pack(f"<{asked}f", *values)).decode("ascii")
            if encoding == "base64"
            else values
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(tokens_of(item) for item in inputs)
    return {
        "object": "list",
        "data": data,
        "model": name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
