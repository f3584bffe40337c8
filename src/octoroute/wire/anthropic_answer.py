"""Chat-completions answers as Anthropic's Messages API: a ``message`` object, or its events.

``message_from_chat`` turns a buffered ``chat.completion`` into a ``message``; ``MessagesStream``
turns a chat stream, chunk by chunk, into the events Anthropic sends (``message_start``, per
content block ``content_block_start`` / ``content_block_delta`` (``text_delta``,
``input_json_delta``, or ``thinking_delta`` for the server's reasoning when the client turned
thinking on) / ``content_block_stop``, then ``message_delta`` with the stop reason and
usage and ``message_stop``; an ``error`` event after a mid-stream failure).
``NativeMessagesStream`` relays a native server's events and speaks Anthropic only for what the
relay adds (``ping``, ``error``). ``error_body`` is Anthropic's error envelope. Pure: ids come
from ``secrets``.

Chat does not say which stop sequence matched; vLLM's ``stop_reason`` does, and when it names one
of the request's ``stop_sequences`` the answer's ``stop_reason`` is ``stop_sequence``.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any, Final

import orjson

from octoroute.errors import BadUpstreamResponse
from octoroute.wire import sse
from octoroute.wire.native import NativeRelay

if TYPE_CHECKING:
    from octoroute.errors import UpstreamError
    from octoroute.wire.anthropic import MessagesRequest

__all__ = ["MessagesStream", "NativeMessagesStream", "error_body", "message_from_chat"]

Block = dict[str, Any]

_STOP_REASONS: Final = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def error_body(error_type: str, message: str) -> bytes:
    """Anthropic's error envelope: ``{"type": "error", "error": {"type", "message"}}``."""
    return orjson.dumps({"type": "error", "error": {"type": error_type, "message": message}})


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _stop(finish_reason: Any, matched: Any, request: MessagesRequest) -> tuple[str, str | None]:
    if finish_reason == "stop" and isinstance(matched, str) and matched in request.stop_sequences:
        return "stop_sequence", matched
    if isinstance(finish_reason, str):
        return _STOP_REASONS.get(finish_reason, "end_turn"), None
    return "end_turn", None


REFUSAL: Final = "refusal"
"""The stop reason of an answer the model declined to give (Anthropic's own name for it); a
chat ``refusal`` becomes text with this stop reason, as Messages has no refusal field."""


def _usage(usage: Any) -> dict[str, int]:
    prompt, completion = sse.token_counts(usage)
    return {"input_tokens": prompt, "output_tokens": completion}


def message_from_chat(answer: Any, request: MessagesRequest) -> dict[str, Any]:
    """The ``message`` object for a decoded ``chat.completion`` (its first choice).

    Raises ``ValueError`` when ``answer`` is not a chat completion with a choice.
    """
    choice, message = sse.first_message(answer)
    content: list[Block] = []
    reasoning = sse.reasoning_of(message)
    if reasoning is not None and request.thinking:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    refusal = sse.refusal_of(message)
    if refusal:
        content.append({"type": "text", "text": refusal})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {} if isinstance(call, dict) else {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or _id("toolu"),
                "name": function.get("name") or "",
                "input": sse.tool_input(function.get("arguments") or ""),
            }
        )
    stop_reason, stop_sequence = _stop(
        choice.get("finish_reason"), choice.get("stop_reason"), request
    )
    if refusal:
        stop_reason, stop_sequence = REFUSAL, None
    return {
        "id": _id("msg"),
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": _usage(answer.get("usage")),
    }


def _event(kind: str, fields: dict[str, Any]) -> bytes:
    data = orjson.dumps({"type": kind, **fields})
    return b"event: " + kind.encode("ascii") + b"\ndata: " + data + b"\n\n"


_PING_EVENT: Final = _event("ping", {})


class MessagesStream:
    """A ``StreamTranslator`` from a chat-completions stream to Messages events (one per
    attempt: it holds the state of the message being built).

    Blocks are written one after another, as Anthropic does. Text and thinking are written as
    they come. A tool call's ``input`` must accumulate to a JSON object (the SDKs parse the
    ``input_json_delta`` fragments as they arrive and raise on anything else), and only the
    whole arguments tell whether they are one: so the calls are held, their fragments gathered
    by call whatever order they come in, and written when the answer ends, each as its own
    block with one ``input_json_delta`` carrying the object (``{"_raw": text}`` for arguments
    that are not one, as in a buffered answer). While they are held the relay sees nothing
    written and sends its ``ping`` events.

    A stream that ends without a ``finish_reason`` or ``[DONE]`` is cut short, not finished:
    ``closing`` raises ``UpstreamProtocolError`` and the relay ends it with the ``error`` event.
    """

    def __init__(self, request: MessagesRequest) -> None:
        self._request = request
        self._out: list[bytes] = []
        self._opened = False
        self._blocks = 0
        self._open_block: int | None = None
        self._open_kind: str | None = None
        """``text`` or ``thinking`` while such a block is open (deltas go on in it)."""
        self._calls: dict[object, _HeldCall] = {}
        """The answer's tool calls by ``sse.ToolCalls`` key, in the order they began."""
        self._keys = sse.ToolCalls()
        self._ended = False
        """A ``finish_reason`` or ``[DONE]`` came: the stream may close as finished."""
        self._finish_reason: Any = None
        self._matched: Any = None
        self._usage: dict[str, int] = {"input_tokens": 0, "output_tokens": 0}
        self._error: str | None = None
        self._refused = False
        """A ``refusal`` delta came: the answer ends with ``stop_reason: "refusal"``."""

    def _emit(self, kind: str, **fields: Any) -> None:
        self._out.append(_event(kind, fields))

    def _take(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def _open(self) -> None:
        if not self._opened:
            self._opened = True
            message: dict[str, Any] = {
                "id": _id("msg"),
                "type": "message",
                "role": "assistant",
                "model": self._request.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }
            self._emit("message_start", message=message)

    # --- the StreamTranslator protocol --------------------------------------------------------

    media_type = "text/event-stream"

    def keepalive(self) -> bytes:
        """A ``ping`` event, as Anthropic's own streams send while the model is quiet."""
        return _PING_EVENT

    def opening(self) -> bytes:
        """``message_start``, unless the first translated events already began with it."""
        self._open()
        return self._take()

    def translate(self, events: list[bytes]) -> bytes:
        """The Messages events for these chat chunks (comments and ``[DONE]`` give none)."""
        self._open()
        for chunk in sse.chat_chunks(events):
            self._chunk(chunk)
        if events and sse.is_done(events[-1]):
            self._ended = True
        return self._take()

    def closing(self) -> bytes:
        """The open block stopped, the tool calls written, ``message_delta`` with the stop
        reason, ``message_stop``.

        Raises ``UpstreamProtocolError`` (``sse.cut_short``) when the upstream's stream ended
        without saying the answer was complete.
        """
        if self._error is not None:
            return self._fail(self._error)
        if not self._ended:
            raise sse.cut_short()
        self._open()
        self._close_block()
        self._write_calls()
        stop_reason, stop_sequence = _stop(self._finish_reason, self._matched, self._request)
        if self._refused:
            stop_reason, stop_sequence = REFUSAL, None
        self._emit(
            "message_delta",
            delta={"stop_reason": stop_reason, "stop_sequence": stop_sequence},
            usage=self._usage,
        )
        self._emit("message_stop")
        return self._take()

    def failed(self, error: UpstreamError) -> bytes:
        """An ``error`` event (``api_error``), as Anthropic ends a stream that broke."""
        return self._fail(error.message)

    def whole(self, answer: bytes) -> bytes:
        """The whole event stream for a chat answer that came as one JSON body."""
        opening = self.opening()
        self._chunk(sse.whole_chunk(answer))
        self._ended = True  # a whole body is a whole answer, finish_reason or not
        return opening + self._take() + self.closing()

    # --- the state machine ----------------------------------------------------------------------

    def _fail(self, message: str) -> bytes:
        self._emit("error", error={"type": "api_error", "message": message})
        return self._take()

    def _chunk(self, chunk: dict[str, Any]) -> None:
        error = sse.chunk_error(chunk)
        if error is not None:
            self._error = error
            return
        if isinstance(chunk.get("usage"), dict):
            self._usage = _usage(chunk["usage"])
        parts = sse.chunk_delta(chunk)
        if parts is None:
            return
        choice, text, calls = parts
        delta = choice.get("delta")
        if self._request.thinking and isinstance(delta, dict):
            reasoning = sse.reasoning_of(delta)
            if reasoning is not None:
                self._thinking_delta(reasoning)
        if text:
            self._text_delta(text)
        refusal = sse.refusal_of(delta)
        if refusal:
            self._refused = True
            self._text_delta(refusal)
        for call in calls:
            self._call_delta(call)
        if choice.get("finish_reason") is not None:
            self._finish_reason = choice["finish_reason"]
            self._matched = choice.get("stop_reason")
            self._ended = True

    def _close_block(self) -> None:
        if self._open_block is not None:
            self._emit("content_block_stop", index=self._open_block)
            self._open_block = None
            self._open_kind = None

    def _start_block(self, block: Block) -> int:
        self._close_block()
        index = self._blocks
        self._blocks += 1
        self._open_block = index
        self._emit("content_block_start", index=index, content_block=block)
        return index

    def _text_delta(self, text: str) -> None:
        if self._open_kind != "text":
            self._start_block({"type": "text", "text": ""})
            self._open_kind = "text"
        self._emit(
            "content_block_delta",
            index=self._open_block,
            delta={"type": "text_delta", "text": text},
        )

    def _thinking_delta(self, thinking: str) -> None:
        if self._open_kind != "thinking":
            self._start_block({"type": "thinking", "thinking": "", "signature": ""})
            self._open_kind = "thinking"
        self._emit(
            "content_block_delta",
            index=self._open_block,
            delta={"type": "thinking_delta", "thinking": thinking},
        )

    def _call_delta(self, delta: dict[str, Any]) -> None:
        function = delta.get("function") or {}
        key = self._keys.key(delta)
        call = self._calls.get(key)
        if call is None:
            call = self._calls[key] = _HeldCall()
        if not call.id and isinstance(delta.get("id"), str):
            call.id = delta["id"]
        if not call.name and isinstance(function.get("name"), str):
            call.name = function["name"]
        fragment = function.get("arguments")
        if isinstance(fragment, str) and fragment:
            call.arguments.append(fragment)

    def _write_calls(self) -> None:
        """Each held call as its block: started, its input as one JSON object, stopped."""
        for call in self._calls.values():
            index = self._start_block(
                {"type": "tool_use", "id": call.id or _id("toolu"), "name": call.name, "input": {}}
            )
            arguments = orjson.dumps(sse.tool_input("".join(call.arguments))).decode()
            self._emit(
                "content_block_delta",
                index=index,
                delta={"type": "input_json_delta", "partial_json": arguments},
            )
            self._close_block()
        self._calls.clear()


class _HeldCall:
    """A tool call being gathered: its id and name once sent, its argument fragments."""

    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []


class NativeMessagesStream(NativeRelay):
    """A ``StreamTranslator`` for an endpoint that speaks Messages itself: its events are relayed
    as they came; only what the relay adds is said in Anthropic's way (``ping`` while quiet, an
    ``error`` event when the stream breaks) so the SDKs read it."""

    __slots__ = ()
    media_type = "text/event-stream"

    def keepalive(self) -> bytes:
        """A ``ping`` event, as the server's own stream would send."""
        return _PING_EVENT

    def failed(self, error: UpstreamError) -> bytes:
        """An ``error`` event (``api_error``)."""
        return _event("error", {"error": {"type": "api_error", "message": error.message}})

    def whole(self, answer: bytes) -> bytes:
        """The event stream of a ``message`` object (a server that ignored ``stream``): each
        block started, its text, thinking or input as one delta, stopped; then the end."""
        try:
            message = orjson.loads(answer)
        except orjson.JSONDecodeError:
            message = None
        content = message.get("content") if isinstance(message, dict) else None
        if (
            not isinstance(message, dict)
            or message.get("type") != "message"
            or not isinstance(content, list)
        ):
            raise BadUpstreamResponse(
                f"answered 200 with a body that is not a message ({sse.describe_body(answer)})"
            )
        usage = message.get("usage") if isinstance(message.get("usage"), dict) else {}
        start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
        out = [_event("message_start", {"message": start})]
        for index, block in enumerate(content):
            out.extend(_block_events(index, block))
        delta = {
            "stop_reason": message.get("stop_reason"),
            "stop_sequence": message.get("stop_sequence"),
        }
        out.append(_event("message_delta", {"delta": delta, "usage": usage}))
        out.append(_event("message_stop", {}))
        return b"".join(out)


def _block_events(index: int, block: Any) -> list[bytes]:
    """One content block of a whole ``message`` as its start, delta and stop events."""
    if not isinstance(block, dict):
        return []
    kind = block.get("type")
    delta: Block | None = None
    start = block
    if kind == "text" and isinstance(block.get("text"), str):
        start, delta = {**block, "text": ""}, {"type": "text_delta", "text": block["text"]}
    elif kind in ("tool_use", "server_tool_use"):
        arguments = orjson.dumps(block.get("input") or {}).decode()
        start, delta = (
            {**block, "input": {}},
            {"type": "input_json_delta", "partial_json": arguments},
        )
    elif kind == "thinking" and isinstance(block.get("thinking"), str):
        start = {**block, "thinking": "", "signature": ""}
        delta = {"type": "thinking_delta", "thinking": block["thinking"]}
    out = [_event("content_block_start", {"index": index, "content_block": start})]
    if delta is not None:
        out.append(_event("content_block_delta", {"index": index, "delta": delta}))
    if kind == "thinking" and isinstance(block.get("signature"), str):
        signature = {"type": "signature_delta", "signature": block["signature"]}
        out.append(_event("content_block_delta", {"index": index, "delta": signature}))
    out.append(_event("content_block_stop", {"index": index}))
    return out
