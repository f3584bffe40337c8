"""Server-sent events: split an upstream byte stream into events, and frame our own.

The relay forwards upstream events byte for byte; it only needs to know where each one ends (so
that it never writes half an event before an error event) and to peek at a few of them
(``[DONE]``, ``usage``). Framing follows the WHATWG SSE rules: a line ends at CRLF, LF or CR,
and an event ends at an empty line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any, Final

import msgspec
import orjson

from octoroute.errors import BadUpstreamResponse, UpstreamProtocolError, error_body

__all__ = [
    "DONE_EVENT",
    "KEEPALIVE_EVENT",
    "SSESplitter",
    "ToolCalls",
    "answer_usage",
    "chat_chunks",
    "chunk_delta",
    "chunk_error",
    "cut_short",
    "data_event",
    "describe_body",
    "error_event",
    "event_payload",
    "first_choice",
    "first_message",
    "is_done",
    "reasoning_of",
    "token_counts",
    "tool_input",
    "usage_from_body",
    "usage_from_event",
    "whole_chunk",
]

DONE_EVENT: Final = b"data: [DONE]\n\n"
"""The OpenAI end-of-stream marker."""

KEEPALIVE_EVENT: Final = b": keep-alive\n\n"
"""A comment event: keeps idle connections (and proxies in between) from timing out."""

_LF: Final = 0x0A
_CR: Final = 0x0D
_LINE_END: Final = re.compile(rb"[\r\n]")
_LINE_SPLIT: Final = re.compile(rb"\r\n|\r|\n")


class SSESplitter:
    """Cuts a byte stream into complete SSE events, whatever the read boundaries.

    Each event is returned exactly as received, its terminating empty line included, so the
    events joined back together plus ``pending`` always equal the bytes fed. An empty line that
    does not end any field lines is an event of its own (``b"\\n"``), as the SSE rules say.

    A complete event whose last byte is a CR is held back until the next byte arrives: the CR may
    be the first half of a CRLF whose LF belongs to the same event.
    """

    __slots__ = ("_buffer", "_line_empty", "_scan")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._scan = 0
        """How far into ``_buffer`` the bytes have been examined."""
        self._line_empty = True
        """Whether the line that ``_scan`` is in has no bytes before ``_scan``."""

    @property
    def pending(self) -> bytes:
        """The bytes of the event still incomplete (empty between events)."""
        return bytes(self._buffer)

    @property
    def pending_size(self) -> int:
        """How many bytes of an incomplete event are held: what a caller bounds, since an event
        that never ends would otherwise grow without limit."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Take the next bytes of the stream; return the events they complete, in order."""
        held = self._buffer
        buffer: bytes | bytearray
        if held:
            held += data
            buffer = held
        elif data:
            # The common case: nothing held, so events are sliced straight out of ``data``.
            buffer = data
        else:
            return []
        events: list[bytes] = []
        start = 0
        position = self._scan
        empty = self._line_empty
        end = len(buffer)
        if buffer.find(b"\r", position) < 0:
            # LF-only framing (every mainstream server): an event ends at the first "\n\n", or
            # at a "\n" that opens a line.
            while position < end:
                if empty and buffer[position] == _LF:
                    position += 1
                else:
                    found = buffer.find(b"\n\n", position)
                    if found < 0:
                        empty = buffer[end - 1] == _LF
                        position = end
                        break
                    position = found + 2
                    empty = True
                events.append(buffer[start:position])  # type: ignore[arg-type]
                start = position
        else:
            while True:
                match = _LINE_END.search(buffer, position)
                if match is None:
                    if position < end:
                        empty = False
                    position = end
                    break
                found = match.start()
                if found > position:
                    empty = False
                if buffer[found] == _CR:
                    if found + 1 == end:
                        position = found
                        break
                    position = found + 2 if buffer[found + 1] == _LF else found + 1
                else:
                    position = found + 1
                if empty:
                    events.append(buffer[start:position])  # type: ignore[arg-type]
                    start = position
                empty = True
        if held:
            if events:
                events = [bytes(event) for event in events]
                del held[:start]
        elif start < end:
            with memoryview(buffer) as view:
                held += view[start:]
        self._scan = position - start
        self._line_empty = empty
        return events


def event_payload(event: bytes) -> bytes | None:
    """The event's data: its ``data`` lines joined with LF, each without the one optional space
    after the colon. ``None`` when the event has no data line (a comment or keep-alive)."""
    if (
        event.startswith(b"data: ")
        and event.endswith(b"\n\n")
        and event.find(b"\n", 6) == len(event) - 2
        and event.find(b"\r") < 0
    ):
        # One "data: ...\n\n" line, as nearly every server frames its events.
        return event[6:-2]
    data: list[bytes] = []
    for line in _LINE_SPLIT.split(event):
        if line.startswith(b"data"):
            field, _, value = line.partition(b":")
            if field == b"data":
                data.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(data) if data else None


def is_done(event: bytes) -> bool:
    """Whether the event is the ``data: [DONE]`` end-of-stream marker."""
    if event == DONE_EVENT:
        return True
    if b"[DONE]" not in event:
        return False
    payload = event_payload(event)
    return payload is not None and payload.strip() == b"[DONE]"


def data_event(payload: bytes) -> bytes:
    """An event carrying ``payload``; a multi-line payload becomes one ``data:`` line per line."""
    if b"\n" in payload or b"\r" in payload:
        lines = _LINE_SPLIT.split(payload)
        return b"".join([b"data: " + line + b"\n" for line in lines]) + b"\n"
    return b"".join((b"data: ", payload, b"\n\n"))


def error_event(message: str, error_type: str, code: str | None) -> bytes:
    """An OpenAI error envelope as an event, for failures after the stream has started.

    ``{"error": {"message", "type", "param": null, "code"}}``, which the OpenAI SDKs raise as an
    ``APIError`` when they meet it in a stream.
    """
    return data_event(error_body(message, error_type, None, code))


_Count = Annotated[int, msgspec.Meta(ge=0)]


class _Usage(msgspec.Struct):
    """A ``usage`` object in the names any dialect's server uses: chat's ``prompt_tokens`` and
    ``completion_tokens``, or the ``input_tokens`` and ``output_tokens`` of Anthropic's Messages
    and the Responses API (Anthropic counts prompt-cache writes and reads apart from
    ``input_tokens``; they are part of the prompt)."""

    prompt_tokens: _Count | None = None
    completion_tokens: _Count | None = None
    input_tokens: _Count | None = None
    output_tokens: _Count | None = None
    cache_creation_input_tokens: _Count | None = None
    cache_read_input_tokens: _Count | None = None

    def counts(self, previous: tuple[int, int] | None) -> tuple[int, int] | None:
        """``(prompt, completion)``, or ``None`` without a count; a count the object lacks is
        ``previous``'s (0 without one), since Anthropic's ``message_delta`` says only
        ``output_tokens`` (the prompt's count came in ``message_start``). Chat's names count
        only as a pair."""
        if self.prompt_tokens is not None and self.completion_tokens is not None:
            return self.prompt_tokens, self.completion_tokens
        if self.input_tokens is None and self.output_tokens is None:
            return None
        prompt, completion = previous or (0, 0)
        if self.input_tokens is not None:
            prompt = (
                self.input_tokens
                + (self.cache_creation_input_tokens or 0)
                + (self.cache_read_input_tokens or 0)
            )
        if self.output_tokens is not None:
            completion = self.output_tokens
        return prompt, completion


class _Carrier(msgspec.Struct):
    usage: _Usage | None = None


class _WithUsage(msgspec.Struct):
    """An answer or event with its ``usage`` at the top (chat, a ``message``, a ``response``,
    ``message_delta``) or one level down: Anthropic's ``message_start`` carries it in
    ``message``, the Responses API's ``response.completed`` in ``response``."""

    usage: _Usage | None = None
    message: msgspec.Raw = msgspec.Raw()
    response: msgspec.Raw = msgspec.Raw()

    def found(self) -> _Usage | None:
        """The ``usage`` object, wherever it is."""
        if self.usage is not None:
            return self.usage
        for nested in (self.message, self.response):
            # Only an object can carry usage; chat answers have no top-level ``message``.
            if nested and memoryview(nested)[0] == 0x7B:  # "{"
                try:
                    return _CARRIER.decode(nested).usage
                except (msgspec.DecodeError, RecursionError):
                    return None
        return None


_USAGE: Final = msgspec.json.Decoder(_WithUsage)
_CARRIER: Final = msgspec.json.Decoder(_Carrier)


def usage_from_body(body: bytes, previous: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """``(prompt, completion)`` tokens from a JSON answer's or event's ``usage`` (in any of the
    names ``_Usage`` reads), if it has one; a count it lacks is ``previous``'s.

    Never raises: a body that is not JSON, or whose ``usage`` lacks the counts or holds
    something other than non-negative integers, gives ``None``.
    """
    # Only the last chunk of a stream carries usage; skip decoding every other one.
    if b'"usage"' not in body:
        return None
    try:
        usage = _USAGE.decode(body).found()
    except (msgspec.DecodeError, RecursionError):
        return None
    return None if usage is None else usage.counts(previous)


_OBJECT: Final = msgspec.json.Decoder(dict[str, object])


def chat_chunks(events: list[bytes]) -> Iterator[dict[str, Any]]:
    """The JSON objects carried by chat-completions stream events, for dialect translators:
    comments, ``[DONE]`` and payloads that are not JSON objects are skipped."""
    for event in events:
        payload = event_payload(event)
        if payload is None or payload.strip() == b"[DONE]":
            continue
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            continue
        if isinstance(chunk, dict):
            yield chunk


def first_choice(answer: Any) -> dict[str, Any]:
    """The first choice of a decoded chat (or legacy) completion, for dialect translators.

    Raises ``ValueError`` when ``answer`` is not an object with a choice object.
    """
    if not isinstance(answer, dict):
        raise ValueError("not a JSON object")
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise ValueError("no choices")
    choice: dict[str, Any] = choices[0]
    return choice


def first_message(answer: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The first choice of a decoded chat completion and its ``message``, for the translators of
    whole answers.

    Raises ``ValueError`` when ``answer`` has no choice, or its choice no message object.
    """
    choice = first_choice(answer)
    message = choice.get("message")
    if not isinstance(message, dict):
        raise ValueError("no message")
    return choice, message


def whole_chunk(answer: bytes) -> dict[str, Any]:
    """A complete chat answer (from a server that ignored ``stream``) as the one stream chunk
    that would have carried it: its first choice with the ``message`` as the ``delta`` (tool
    calls numbered), and its ``usage``. For a stream translator's ``whole``, which feeds it to
    the same state machine as a stream; ``BadUpstreamResponse`` when it is not a chat
    completion."""
    try:
        decoded = orjson.loads(answer)
        choice = dict(first_choice(decoded))
    except (orjson.JSONDecodeError, ValueError):
        raise BadUpstreamResponse(
            f"answered 200 with a body that is not a chat completion ({describe_body(answer)})"
        ) from None
    message = choice.pop("message", None)
    if isinstance(message, dict):
        calls = message.get("tool_calls") or ()
        choice["delta"] = {
            **message,
            "tool_calls": [
                {**call, "index": index}
                for index, call in enumerate(calls)
                if isinstance(call, dict)
            ],
        }
    return {"choices": [choice], "usage": decoded.get("usage")}


def chunk_delta(chunk: dict[str, Any]) -> tuple[dict[str, Any], str, list[dict[str, Any]]] | None:
    """A chat stream chunk's first choice, the text of its ``delta`` (``""`` for none) and its
    tool-call fragments (objects only); ``None`` for a chunk without a choice (the usage chunk,
    or one that is not a chat chunk)."""
    try:
        choice = first_choice(chunk)
    except ValueError:
        return None
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return choice, "", []
    content = delta.get("content")
    calls = [call for call in delta.get("tool_calls") or () if isinstance(call, dict)]
    return choice, content if isinstance(content, str) else "", calls


def chunk_error(chunk: dict[str, Any]) -> str | None:
    """The message of an error a chat stream carried in a chunk of its own (``{"error": ...}``
    with no choices, as vLLM and llama.cpp report a failure mid-stream); ``None`` for any other
    chunk."""
    if "error" not in chunk or chunk.get("choices"):
        return None
    error = chunk["error"]
    message = error.get("message") if isinstance(error, dict) else error
    return message if isinstance(message, str) else "the upstream stream failed"


def token_counts(usage: Any) -> tuple[int, int]:
    """``(prompt_tokens, completion_tokens)`` of a decoded chat ``usage``, a missing or odd
    count 0: what a translated answer reports when the server said nothing."""
    if not isinstance(usage, dict):
        return 0, 0
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    return (
        prompt if isinstance(prompt, int) else 0,
        completion if isinstance(completion, int) else 0,
    )


def reasoning_of(fields: dict[str, Any]) -> str | None:
    """The reasoning text of a chat ``message`` or ``delta``: ``reasoning_content`` (vLLM's
    older name, DeepSeek's, llama.cpp's) or ``reasoning`` (vLLM's newer one, Ollama's, LM
    Studio's); ``None`` when there is none."""
    thinking = fields.get("reasoning_content") or fields.get("reasoning")
    return thinking if isinstance(thinking, str) and thinking else None


def refusal_of(fields: Any) -> str:
    """The ``refusal`` text of a chat ``message`` or ``delta`` (``""`` for none): what a server
    sends instead of content when the model declines (OpenAI's structured outputs). Dialects
    without a refusal field carry it as text, so it is never lost."""
    refusal = fields.get("refusal") if isinstance(fields, dict) else None
    return refusal if isinstance(refusal, str) else ""


def tool_input(arguments: str) -> dict[str, Any]:
    """A tool call's JSON ``arguments`` text as the object Messages' ``input`` and Ollama's
    ``arguments`` carry; text that is not a JSON object is kept whole under ``_raw`` rather than
    lost (small models do write broken JSON)."""
    try:
        decoded = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return decoded if isinstance(decoded, dict) else {"_raw": arguments}


class ToolCalls:
    """Which call of the answer each streamed tool-call fragment belongs to, for translators.

    A fragment names its call by ``index``; some servers leave ``index`` out and send each call
    with its own ``id`` instead (two calls in one chunk, or one after the other). Without an
    ``index``, a fragment with an ``id`` not seen before starts a new call, one with a known
    ``id`` continues that call, and one with neither continues the latest call: so parallel
    calls stay apart instead of merging into call 0. One per stream.
    """

    __slots__ = ("_by_id", "_latest")

    def __init__(self) -> None:
        self._by_id: dict[str, object] = {}
        self._latest: object = 0

    def key(self, fragment: dict[str, Any]) -> object:
        """The fragment's call: its ``index``, or for a fragment without one, the key of its
        ``id``'s call (a new key for a new ``id``). Keys are only compared, never written."""
        index = fragment.get("index")
        call_id = fragment.get("id")
        if not isinstance(call_id, str) or not call_id:
            call_id = None
        if index is not None:
            key: object = index
        elif call_id is not None:
            key = self._by_id.get(call_id, ("id", call_id))
        else:
            key = self._latest
        if call_id is not None:
            self._by_id.setdefault(call_id, key)
        self._latest = key
        return key


def cut_short() -> UpstreamProtocolError:
    """The failure of a translated stream whose body ended before the answer did: no chunk
    carried a ``finish_reason`` and no ``[DONE]`` came. Servers say one or the other (llama.cpp,
    vLLM and Ollama both); closing such a stream as finished would tell the client an
    incomplete answer is complete, so translators raise this from ``closing`` instead and the
    relay ends the stream as it ends one that broke."""
    return UpstreamProtocolError(
        "the upstream ended its stream before the answer was complete "
        "(no finish_reason and no [DONE])"
    )


def answer_usage(body: bytes) -> tuple[int, int] | None:
    """The usage of a complete answer (chat, a Messages ``message``, a Responses ``response``),
    after checking that the answer is a JSON object.

    Raises ``ValueError`` when ``body`` is not JSON or not an object: a 200 that carries an HTML
    page or a truncated body is an upstream fault, not an answer to relay. An object whose
    ``usage`` is missing or malformed is a fine answer without usage.
    """
    try:
        usage = _USAGE.decode(body).found()
    except msgspec.ValidationError:
        try:
            _OBJECT.decode(body)
        except (msgspec.DecodeError, RecursionError):
            raise ValueError("not a JSON object") from None
        return None
    except (msgspec.DecodeError, RecursionError):
        raise ValueError("not JSON") from None
    return None if usage is None else usage.counts(None)


def describe_body(body: bytes, limit: int = 60) -> str:
    """A short, printable account of an unexpected body for an error message: its size and how
    it starts, never the whole thing."""
    if not body:
        return "an empty body"
    start = body[:limit].decode("utf-8", "replace")
    shown = " ".join(start.split())
    more = "..." if len(body) > limit else ""
    return f"{len(body)} bytes starting {shown!r}{more}"


def usage_from_event(
    event: bytes, previous: tuple[int, int] | None = None
) -> tuple[int, int] | None:
    """``usage_from_body`` for an SSE event's payload; ``None`` for events without one."""
    if b'"usage"' not in event:
        return None
    payload = event_payload(event)
    if payload is None:
        return None
    return usage_from_body(payload, previous)
