"""A generated answer and its two wire forms: one ``chat.completion`` JSON or SSE chunks.

Pure (no sockets) so the framing, which has to match what OpenAI clients parse, can be read in
one place; the server only decides when each piece is written.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from octoroute.simulator.replies import (
    JsonObject,
    demo_reply,
    is_router_prompt,
    last_user_text,
    prompt_tokens,
    requested_choices,
    requested_tools,
    resolve_reply,
    route_heuristic,
    routed_request_text,
    split_arguments,
    structured_reply,
    tokenize,
    tool_arguments,
)

if TYPE_CHECKING:
    from octoroute.simulator.behaviour import Behaviour

DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True, slots=True)
class Completion:
    """What the model generated for one request, before it is framed as JSON or SSE."""

    id: str
    created: int
    model: str
    content: str | None
    tool_calls: tuple[JsonObject, ...]
    """``{"id", "type": "function", "function": {"name", "arguments"}}`` per tool called, in
    order (several: parallel tool calls); empty for a text answer."""
    finish_reason: str
    usage: dict[str, int]
    choices: int = 1
    """How many choices (``n``) carry this answer, each with its own ``index``."""

    @property
    def generated(self) -> str:
        """The generated text of one choice: the content, or the tool calls' JSON arguments."""
        if self.tool_calls:
            return "".join(call["function"]["arguments"] for call in self.tool_calls)
        return self.content or ""


def complete(body: JsonObject, behaviour: Behaviour, *, name: str, label: str) -> Completion:
    """Answer ``body``: a router tier word, tool calls, or the scripted or demo reply, the same
    for each of the ``n`` choices asked for.

    Router prompts come first because a router model asked to classify must never call tools.
    """
    tool_calls: list[JsonObject] = []
    content: str | None = None
    generated = ""
    tools = requested_tools(body) if behaviour.echo_tool_calls else []
    if is_router_prompt(body):
        default = route_heuristic(routed_request_text(last_user_text(body)))
        content = generated = resolve_reply(behaviour.router_answer, default, body)
    elif tools:
        for tool in tools:
            arguments = tool_arguments(tool)
            generated += arguments
            tool_calls.append(
                {
                    "id": f"call_{secrets.token_hex(12)}",
                    "type": "function",
                    "function": {"name": tool.get("name", ""), "arguments": arguments},
                }
            )
    elif behaviour.reply is None and (structured := structured_reply(body)) is not None:
        content = generated = structured
    else:
        content = generated = resolve_reply(behaviour.reply, demo_reply(name, label, body), body)
    model = body.get("model")
    prompt = prompt_tokens(body)
    choices = requested_choices(body)
    tokens = len(tokenize(generated)) * choices
    return Completion(
        id=f"chatcmpl-{secrets.token_hex(12)}",
        created=int(time.time()),
        model=model if isinstance(model, str) else name,
        content=content,
        tool_calls=tuple(tool_calls),
        finish_reason="tool_calls" if tool_calls else "stop",
        choices=choices,
        usage={
            "prompt_tokens": prompt,
            "completion_tokens": tokens,
            "total_tokens": prompt + tokens,
        },
    )


def json_body(completion: Completion) -> bytes:
    """The non-streaming ``chat.completion`` object, with one choice per ``n``."""
    message: JsonObject = {"role": "assistant", "content": completion.content}
    if completion.tool_calls:
        message["tool_calls"] = list(completion.tool_calls)
    choices = [
        {
            "index": index,
            "message": message,
            "logprobs": None,
            "finish_reason": completion.finish_reason,
        }
        for index in range(completion.choices)
    ]
    return orjson.dumps(
        {
            "id": completion.id,
            "object": "chat.completion",
            "created": completion.created,
            "model": completion.model,
            "choices": choices,
            "usage": completion.usage,
        }
    )


def _sse(event: object) -> bytes:
    return b"data: " + orjson.dumps(event) + b"\n\n"


def sse_events(
    body: JsonObject, completion: Completion, behaviour: Behaviour
) -> list[tuple[float, bytes]]:
    """Every SSE event of the streamed answer, each with the delay to wait before writing it.

    Order, as OpenAI sends it: the role chunk (after ``first_token_delay``), one chunk per
    token (``token_gap`` apart) or the tool-call deltas (per call, its ``index``, id and name
    first, then argument fragments), the finish chunk with an empty delta, the usage chunk when
    asked for (``stream_options.include_usage`` or ``always_usage``), then ``[DONE]``. With
    ``n`` choices every chunk is sent once per choice, in turn, each with its own ``index``.
    """
    head = {
        "id": completion.id,
        "object": "chat.completion.chunk",
        "created": completion.created,
        "model": completion.model,
    }

    def chunks(delta: JsonObject, finish_reason: str | None = None) -> list[bytes]:
        return [
            _sse(
                {
                    **head,
                    "choices": [
                        {
                            "index": index,
                            "delta": delta,
                            "logprobs": None,
                            "finish_reason": finish_reason,
                        }
                    ],
                }
            )
            for index in range(completion.choices)
        ]

    deltas: list[JsonObject] = []
    for position, call in enumerate(completion.tool_calls):
        function = call["function"]
        opening = {
            "index": position,
            "id": call["id"],
            "type": "function",
            "function": {"name": function["name"], "arguments": ""},
        }
        deltas.append({"tool_calls": [opening]})
        deltas += [
            {"tool_calls": [{"index": position, "function": {"arguments": fragment}}]}
            for fragment in split_arguments(function["arguments"])
        ]
    if not completion.tool_calls:
        deltas = [{"content": token} for token in tokenize(completion.content or "")]
    events: list[tuple[float, bytes]] = []

    def add(delay: float, group: list[bytes]) -> None:
        events.extend((delay if i == 0 else 0.0, event) for i, event in enumerate(group))

    add(behaviour.first_token_delay, chunks({"role": "assistant"}))
    for i, delta in enumerate(deltas):
        add(0.0 if i == 0 else behaviour.token_gap, chunks(delta))
    add(0.0, chunks({}, completion.finish_reason))
    options = body.get("stream_options")
    wants_usage = isinstance(options, dict) and options.get("include_usage") is True
    if wants_usage or behaviour.always_usage:
        events.append((0.0, _sse({**head, "choices": [], "usage": completion.usage})))
    events.append((0.0, DONE))
    return events


def chat_view_of_completion(body: JsonObject) -> JsonObject:
    """A ``/v1/completions`` body seen as a chat body, so one generator answers both: the prompt
    (a string, or the first string of an array) becomes one user turn; ``prompt``, ``suffix``
    and every other field stay, for scripted replies that read them."""
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        prompt = next((item for item in prompt if isinstance(item, str)), "")
    text = prompt if isinstance(prompt, str) else ""
    return {**body, "messages": [{"role": "user", "content": text}]}


def text_json_body(completion: Completion) -> bytes:
    """The non-streaming ``text_completion`` object of ``/v1/completions``, one choice per ``n``."""
    choices = [
        {
            "text": completion.generated,
            "index": index,
            "logprobs": None,
            "finish_reason": completion.finish_reason,
        }
        for index in range(completion.choices)
    ]
    return orjson.dumps(
        {
            "id": "cmpl-" + completion.id.removeprefix("chatcmpl-"),
            "object": "text_completion",
            "created": completion.created,
            "model": completion.model,
            "choices": choices,
            "usage": completion.usage,
        }
    )


def text_sse_events(
    body: JsonObject, completion: Completion, behaviour: Behaviour
) -> list[tuple[float, bytes]]:
    """The streamed ``text_completion`` chunks, timed like ``sse_events``: one per token, a
    last chunk with ``finish_reason``, the usage chunk when asked for, then ``[DONE]``; with
    ``n`` choices each chunk once per choice, in turn, with its own ``index``."""
    head = {
        "id": "cmpl-" + completion.id.removeprefix("chatcmpl-"),
        "object": "text_completion",
        "created": completion.created,
        "model": completion.model,
    }

    def chunk(index: int, text: str, finish_reason: str | None = None) -> bytes:
        choice = {"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}
        return _sse({**head, "choices": [choice]})

    indexes = range(completion.choices)
    tokens = tokenize(completion.generated)
    events = [
        (
            0.0 if index else behaviour.first_token_delay if i == 0 else behaviour.token_gap,
            chunk(index, token),
        )
        for i, token in enumerate(tokens)
        for index in indexes
    ]
    events += [(0.0, chunk(index, "", completion.finish_reason)) for index in indexes]
    options = body.get("stream_options")
    wants_usage = isinstance(options, dict) and options.get("include_usage") is True
    if wants_usage or behaviour.always_usage:
        events.append((0.0, _sse({**head, "choices": [], "usage": completion.usage})))
    events.append((0.0, DONE))
    return events
