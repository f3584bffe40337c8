"""Chat-completions answers (and legacy completions, for ``raw``/``suffix``) as Ollama's.

``answer_from_chat`` turns a buffered answer into one Ollama object; ``OllamaStream`` turns a
chat stream, chunk by chunk, into Ollama's NDJSON lines: a line per piece of text (``message``
for ``/api/chat``, ``response`` for ``/api/generate``, ``thinking`` from the upstream's
``reasoning_content``/``reasoning``), the tool calls in one line once their arguments are whole
(Ollama sends them whole, arguments as objects), then the ``done: true`` line with
``done_reason`` and the counts and durations; a stream that breaks ends with an
``{"error": ...}`` line, which the ``ollama`` clients raise. ``NativeStream`` relays a native
Ollama server's lines as they come. ``load_answer`` and the embedding answers complete the set.

Pure: the clocks come in through ``Timing``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import orjson

from octoroute.wire import ndjson, sse
from octoroute.wire.native import NativeRelay

if TYPE_CHECKING:
    from octoroute.errors import UpstreamError
    from octoroute.wire.ollama import OllamaRequest

__all__ = [
    "DONE_REASONS",
    "NativeStream",
    "OllamaStream",
    "Timing",
    "answer_from_chat",
    "embed_answer",
    "embedding_answer",
    "error_line",
    "load_answer",
    "shortened",
]

Json = dict[str, Any]

DONE_REASONS: Final = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "stop",
    "function_call": "stop",
    "content_filter": "stop",
}
"""Chat's ``finish_reason`` to Ollama's ``done_reason``: Ollama says ``stop`` after tool calls
too (the calls are in the message); anything else, or none, is ``stop``."""


class Timing:
    """When a request started and how to read the clocks: nanoseconds for Ollama's durations,
    the wall clock for ``created_at``. Injected so the translation stays testable."""

    __slots__ = ("_prefix", "_second", "monotonic_ns", "started_ns", "wall")

    def __init__(
        self, started_ns: int, monotonic_ns: Callable[[], int], wall: Callable[[], float]
    ) -> None:
        self.started_ns = started_ns
        self.monotonic_ns = monotonic_ns
        self.wall = wall
        self._second = -1
        self._prefix = ""

    def elapsed(self) -> int:
        """Nanoseconds since the request started (at least 1: clients divide by durations)."""
        return max(1, self.monotonic_ns() - self.started_ns)

    def created_at(self) -> str:
        """Now, as Ollama writes ``created_at`` (RFC 3339, UTC, microseconds). A stream asks for
        every batch of lines: the date and time are formatted once a second."""
        now = self.wall()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((now - second) * 1_000_000):06d}Z"


def error_line(message: str) -> bytes:
    """Ollama's error object as one NDJSON line: what its clients raise on in a stream."""
    return orjson.dumps({"error": message}) + b"\n"


def _broken(error: UpstreamError) -> bytes:
    """The error line that ends a stream broken after it started (translated or native)."""
    return error_line(
        f"the upstream stream failed after it had started: {error.message}; "
        "the answer above is incomplete"
    )


def _done_reason(finish_reason: Any) -> str:
    return DONE_REASONS.get(finish_reason, "stop") if isinstance(finish_reason, str) else "stop"


def _tool_call(index: int, call_id: Any, name: Any, arguments: str) -> Json:
    call: Json = {
        "function": {"index": index, "name": name or "", "arguments": sse.tool_input(arguments)}
    }
    if isinstance(call_id, str) and call_id:
        call["id"] = call_id
    return call


def _head(request: OllamaRequest, created_at: str) -> Json:
    return {"model": request.model, "created_at": created_at}


def _piece(request: OllamaRequest, created_at: str, text: str, thinking: str | None) -> Json:
    """One answer object carrying ``text`` (and ``thinking``), not yet done."""
    line = _head(request, created_at)
    if request.generate:
        line["response"] = text
        if thinking:
            line["thinking"] = thinking
    else:
        message: Json = {"role": "assistant", "content": text}
        if thinking:
            message["thinking"] = thinking
        line["message"] = message
    line["done"] = False
    return line


def load_answer(request: OllamaRequest, timing: Timing) -> bytes:
    """What Ollama answers a request that only loads or unloads the model (``done_reason``
    ``load``/``unload``, nothing generated)."""
    line = _piece(request, timing.created_at(), "", None)
    line["done"] = True
    line["done_reason"] = request.load or "load"
    return orjson.dumps(line)


def answer_from_chat(answer: Any, request: OllamaRequest, timing: Timing) -> Json:
    """The Ollama object for a decoded chat completion (or legacy completion), first choice.

    Raises ``ValueError`` when ``answer`` is not one with a choice.
    """
    choice = sse.first_choice(answer)
    message = choice.get("message")
    if isinstance(message, dict):
        text, thinking = message.get("content"), sse.reasoning_of(message)
        # Ollama has no refusal field: a model's refusal is its answer's text
        text = (text if isinstance(text, str) else "") + sse.refusal_of(message)
        calls = message.get("tool_calls") or []
    elif isinstance(choice.get("text"), str):
        text, thinking, calls = choice["text"], None, []
    else:
        raise ValueError("no message")
    line = _piece(request, timing.created_at(), text if isinstance(text, str) else "", thinking)
    if calls and not request.generate:
        line["message"]["tool_calls"] = [
            _tool_call(index, call.get("id"), function.get("name"), function.get("arguments") or "")
            for index, call in enumerate(calls)
            if isinstance(call, dict) and isinstance(function := call.get("function") or {}, dict)
        ]
    prompt, completion = sse.token_counts(answer.get("usage"))
    total = timing.elapsed()
    line.update(
        done=True,
        done_reason=_done_reason(choice.get("finish_reason")),
        total_duration=total,
        load_duration=0,
        prompt_eval_count=prompt,
        eval_count=completion,
        eval_duration=total,
    )
    return line


class OllamaStream:
    """A ``StreamTranslator`` from a chat-completions (or completions) stream to Ollama's NDJSON
    lines; one per attempt, holding the state of the answer being built."""

    media_type = ndjson.MEDIA_TYPE

    def __init__(self, request: OllamaRequest, timing: Timing) -> None:
        self._request = request
        self._timing = timing
        self._out: list[bytes] = []
        self._calls: dict[object, list[Any]] = {}
        """``[id, name, argument pieces]`` by ``sse.ToolCalls`` key, in the order they began."""
        self._keys = sse.ToolCalls()
        self._ended = False
        """A ``finish_reason`` or ``[DONE]`` came: the stream may close as finished."""
        self._finish: Any = None
        self._usage: Any = None
        self._error: str | None = None
        self._first_ns: int | None = None
        """When the first piece of the answer arrived: the end of prompt evaluation."""

    # --- the StreamTranslator protocol --------------------------------------------------------

    def keepalive(self) -> bytes:
        """Nothing: a blank line is not JSON, and the ``ollama`` clients decode every line."""
        return b""

    def opening(self) -> bytes:
        """Nothing: Ollama's stream starts with the first piece of the answer."""
        return b""

    def translate(self, events: list[bytes]) -> bytes:
        """The lines for these chat chunks (comments and ``[DONE]`` give none)."""
        created_at: str | None = None
        for chunk in sse.chat_chunks(events):
            created_at = created_at or self._timing.created_at()
            self._chunk(chunk, created_at)
        if events and sse.is_done(events[-1]):
            self._ended = True
        return self._take()

    def closing(self) -> bytes:
        """The tool calls not written yet, then the ``done`` line (or the error line when the
        upstream's stream carried an error).

        Raises ``UpstreamProtocolError`` (``sse.cut_short``) when the upstream's stream ended
        without saying the answer was complete: the relay then ends it with the error line.
        """
        if self._error is not None:
            return error_line(self._error)
        if not self._ended:
            raise sse.cut_short()
        created_at = self._timing.created_at()
        self._flush_calls(created_at)
        now = self._timing.monotonic_ns()
        started = self._timing.started_ns
        first = self._first_ns if self._first_ns is not None else now
        prompt, completion = sse.token_counts(self._usage)
        line = _piece(self._request, created_at, "", None)
        line.update(
            done=True,
            done_reason=_done_reason(self._finish),
            total_duration=max(1, now - started),
            load_duration=0,
            prompt_eval_count=prompt,
            prompt_eval_duration=max(1, first - started),
            eval_count=completion,
            eval_duration=max(1, now - first),
        )
        self._out.append(orjson.dumps(line) + b"\n")
        return self._take()

    def failed(self, error: UpstreamError) -> bytes:
        """The error line, as Ollama ends a stream that broke."""
        return _broken(error)

    def whole(self, answer: bytes) -> bytes:
        """Every line for a chat answer that came as one JSON body."""
        self._chunk(sse.whole_chunk(answer), self._timing.created_at())
        self._ended = True  # a whole body is a whole answer, finish_reason or not
        return self._take() + self.closing()

    # --- the state machine ----------------------------------------------------------------------

    def _take(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def _chunk(self, chunk: Json, created_at: str) -> None:
        error = sse.chunk_error(chunk)
        if error is not None:
            self._error = error
            return
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        parts = sse.chunk_delta(chunk)
        if parts is None:  # the usage chunk (no choices), or a chunk that is not one
            return
        choice, text, calls = parts
        delta = choice.get("delta")
        thinking = sse.reasoning_of(delta) if isinstance(delta, dict) else None
        if delta is None and isinstance(choice.get("text"), str):
            text = choice["text"]  # a legacy completions chunk (raw or suffix)
        text += sse.refusal_of(delta)  # Ollama has no refusal field: it is the answer's text
        for call in calls:
            self._call_delta(call)
        if text or thinking:
            if self._first_ns is None:
                self._first_ns = self._timing.monotonic_ns()
            self._out.append(
                orjson.dumps(_piece(self._request, created_at, text, thinking)) + b"\n"
            )
        if choice.get("finish_reason") is not None:
            self._finish = choice["finish_reason"]
            self._ended = True
            self._flush_calls(created_at)

    def _call_delta(self, delta: Json) -> None:
        function = delta.get("function") or {}
        if not isinstance(function, dict):
            return
        position = self._keys.key(delta)
        call = self._calls.get(position)
        if call is None:
            call = self._calls[position] = [None, None, []]
            if self._first_ns is None:
                self._first_ns = self._timing.monotonic_ns()
        if delta.get("id"):
            call[0] = delta["id"]
        if function.get("name"):
            call[1] = function["name"]
        fragment = function.get("arguments")
        if isinstance(fragment, str):
            call[2].append(fragment)

    def _flush_calls(self, created_at: str) -> None:
        """Write the calls gathered so far as one line (Ollama's calls arrive whole)."""
        if not self._calls or self._request.generate:
            self._calls.clear()
            return
        calls = [
            _tool_call(index, call_id, name, "".join(pieces))
            for index, (call_id, name, pieces) in enumerate(self._calls.values())
        ]
        self._calls.clear()
        line = _piece(self._request, created_at, "", None)
        line["message"]["tool_calls"] = calls
        self._out.append(orjson.dumps(line) + b"\n")


class NativeStream(NativeRelay):
    """A ``StreamTranslator`` that relays a native Ollama server's lines unchanged, and ends a
    stream that broke with Ollama's error line."""

    __slots__ = ()
    media_type = ndjson.MEDIA_TYPE

    def keepalive(self) -> bytes:
        """Nothing, as for a translated stream."""
        return b""

    def failed(self, error: UpstreamError) -> bytes:
        """The error line."""
        return _broken(error)

    def whole(self, answer: bytes) -> bytes:
        """A server that answered one JSON object although asked to stream: that object as the
        one line of the stream."""
        return answer.rstrip(b"\r\n") + b"\n"


# --- embeddings ---------------------------------------------------------------------------------


def _vectors(answer: Any) -> list[Any]:
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list) or not all(
        isinstance(item, dict) and isinstance(item.get("embedding"), list) for item in data
    ):
        raise ValueError("no data array of embeddings")
    ordered = sorted(data, key=lambda item: item.get("index", 0))
    return [item["embedding"] for item in ordered]


def shortened(vector: list[Any], dimensions: int | None) -> list[Any]:
    """``vector`` cut to its first ``dimensions`` values and scaled back to length 1, as Ollama
    answers ``dimensions`` (a vector no longer than that is kept as it is).

    Raises ``ValueError`` when the values are not numbers.
    """
    if dimensions is None or len(vector) <= dimensions:
        return vector
    cut = vector[:dimensions]
    try:
        norm = math.hypot(*cut)
        return cut if norm == 0 else [value / norm for value in cut]
    except TypeError:
        raise ValueError("an embedding holds something other than numbers") from None


def embed_answer(answer: Any, model: str, total_ns: int, dimensions: int | None = None) -> Json:
    """``POST /api/embed``'s answer for a decoded OpenAI embeddings answer, each vector
    ``shortened`` to ``dimensions`` when the client asked for it.

    Raises ``ValueError`` when ``answer`` holds no embeddings.
    """
    prompt, _ = sse.token_counts(answer.get("usage") if isinstance(answer, dict) else None)
    return {
        "model": model,
        "embeddings": [shortened(vector, dimensions) for vector in _vectors(answer)],
        "total_duration": total_ns,
        "load_duration": 0,
        "prompt_eval_count": prompt,
    }


def embedding_answer(answer: Any) -> Json:
    """``POST /api/embeddings``' answer (one vector) for a decoded OpenAI embeddings answer.

    Raises ``ValueError`` when ``answer`` holds no embedding.
    """
    vectors = _vectors(answer)
    if not vectors:
        raise ValueError("no embedding")
    return {"embedding": vectors[0]}
