"""The bytes every part of the benchmark sends and answers with, built once and shared.

The sizes follow the earlier study (``research/stack.md`` §A1): a ~1 KB chat request and a
947-byte ``chat.completion`` answer, so that results stay comparable with it. Everything here is
plain data: the nginx upstream, the SSE upstream, the generator and the wrk script all draw on it.
"""

from __future__ import annotations

from typing import Final

import orjson

COMPLETION_BYTES: Final = 947
"""Size of the fixed non-streaming answer, as in the earlier study."""

CHAT_PATH: Final = "/v1/chat/completions"
MODELS_PATH: Final = "/v1/models"

_SYSTEM = "You are a concise assistant. Answer in plain English and keep it short."
_USER = (
    "Please summarise the following meeting notes in three bullet points for the team. "
    "We reviewed the release plan for the next sprint, agreed to move the database migration "
    "to Tuesday so the on-call engineer can watch it, and asked the design group to send the "
    "final icons by Thursday. Marketing wants the announcement draft two days before launch, "
    "and support asked for a short FAQ covering the new export button and the changed "
    "keyboard shortcuts. The budget for the load-testing cluster was approved for one month. "
    "Finally, we noted that the flaky integration test on the payments service must be fixed "
    "before the freeze, and that two people will be on holiday in the second week. "
)


def chat_body(
    model: str,
    *,
    stream: bool = False,
    pad_to: int = 1000,
    extra: dict[str, object] | None = None,
) -> bytes:
    """A realistic ~1 KB chat-completions request for ``model``, padded to ``pad_to`` bytes.

    ``extra`` adds top-level fields, which a router must forward untouched (the SSE upstream reads
    its stream shape from ``bench_events`` and ``bench_gap_ms``).
    """

    def encode(user: str) -> bytes:
        return orjson.dumps(
            {
                "model": model,
                "messages": [
                    {"role": "system", "content": _SYSTEM},
                    {"role": "user", "content": user},
                ],
                "max_tokens": 128,
                "temperature": 0.2,
                "stream": stream,
                **(extra or {}),
            }
        )

    body = encode(_USER)
    if len(body) < pad_to:
        body = encode(_USER + "." * (pad_to - len(body)))
    return body


def stream_body(model: str, events: int, gap_ms: float) -> bytes:
    """A streaming request whose answer is ``events`` SSE events ``gap_ms`` apart (0: bulk)."""
    return chat_body(model, stream=True, extra={"bench_events": events, "bench_gap_ms": gap_ms})


def _completion(size: int) -> bytes:
    def encode(text: str) -> bytes:
        return orjson.dumps(
            {
                "id": "chatcmpl-bench0000000000000000000000",
                "object": "chat.completion",
                "created": 1700000000,
                "model": "bench-model",
                "system_fingerprint": "fp_bench",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 212, "completion_tokens": 96, "total_tokens": 308},
            }
        )

    filler = "The team agreed on the release plan, moved the migration and approved budget. "
    base = encode("")
    text = (filler * (size // len(filler) + 1))[: max(0, size - len(base))]
    body = encode(text)
    if len(body) != size:  # pragma: no cover - the filler is plain ASCII, so this is exact
        raise AssertionError(f"completion is {len(body)} bytes, wanted {size}")
    return body


COMPLETION: Final = _completion(COMPLETION_BYTES)
"""The fixed answer of every fake upstream: no quote, dollar or backslash, so nginx can embed it."""

MODELS: Final = orjson.dumps(
    {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "bench"}
            for name in ("bench-model", "bench-balanced", "bench-deep", "bench-stream")
        ],
    }
)
"""The ``GET /v1/models`` answer: the router probes it for health."""


def sse_event(index: int, text: str = "tok ") -> bytes:
    """One ``chat.completion.chunk`` SSE event, about 200 bytes like a real token event."""
    chunk = {
        "id": "chatcmpl-bench0000000000000000000000",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "bench-stream",
        "choices": [{"index": 0, "delta": {"content": f"{text}{index}"}, "finish_reason": None}],
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


SSE_DONE: Final = b"data: [DONE]\n\n"


def wrk_script(body: bytes) -> str:
    """The 3-line wrk Lua script that makes every request a JSON POST of ``body``."""
    literal = body.decode("ascii").replace("\\", "\\\\").replace('"', '\\"')
    return (
        'wrk.method = "POST"\n'
        f'wrk.body = "{literal}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
