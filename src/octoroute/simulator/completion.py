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
    requested_tool,
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
    tool_call: JsonObject | None
    """``{"id", "type": "function", "function": {"name", "arguments"}}`` when a tool is called."""
    finish_reason: str
    usage: dict[str, int]

    @property
    def generated(self) -> str:
        """The generated text: the content, or the tool call's JSON arguments."""
        if self.tool_call is not None:
            arguments: str = self.tool_call["function"]["arguments"]
            return arguments
        return self.content or ""


def complete(body: JsonObject, behaviour: Behaviour, *, name: str, label: str) -> Completion:
    """Answer ``body``: a router tier word, a tool call, or the scripted or demo reply.

    Router prompts come first because a router model asked to classify must never call tools.
    """
    tool_call: JsonObject | None = None
    content: str | None = None
    generated = ""
    tool = requested_tool(body) if behaviour.echo_tool_calls else None
    if is_router_prompt(body):
        default = route_heuristic(routed_request_text(last_user_text(body)))
        content = generated = resolve_reply(behaviour.router_answer, default, body)
    elif tool is not None:
        generated = tool_arguments(tool)
        function = {"name": tool.get("name", ""), "arguments": generated}
        tool_call = {
            "id": f"call_{secrets.token_hex(12)}",
            "type": "function",
            "function": function,
        }
    elif behaviour.reply is None and (structured := structured_reply(body)) is not None:
        content = generated = structured
    else:
        content = generated = resolve_reply(behaviour.reply, demo_reply(name, label, body), body)
    model = body.get("model")
    prompt = prompt_tokens(body)
    tokens = len(tokenize(generated))
    return Completion(
        id=f"chatcmpl-{secrets.token_hex(12)}",
        created=int(time.time()),
        model=model if isinstance(model, str) else name,
        content=content,
        tool_call=tool_call,
        finish_reason="stop" if tool_call is None else "tool_calls",
        usage={
            "prompt_tokens": prompt,
            "completion_tokens": tokens,
            "total_tokens": prompt + tokens,
        },
    )


def json_body(completion: Completion) -> bytes:
    """The non-streaming ``chat.completion`` object."""
    message: JsonObject = {"role": "assistant", "content": completion.content}
    if completion.tool_call is not None:
        message["tool_calls"] = [completion.tool_call]
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": completion.finish_reason,
    }
    return orjson.dumps(
        {
            "id": completion.id,
            "object": "chat.completion",
            "created": completion.created,
            "model": completion.model,
            "choices": [choice],
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
    token (``token_gap`` apart) or the tool-call deltas (the call's id and name first, then
    argument fragments), the finish chunk with an empty delta, the usage chunk when asked for
    (``stream_options.include_usage`` or ``always_usage``), then ``[DONE]``.
    """
    head = {
        "id": completion.id,
        "object": "chat.completion.chunk",
        "created": completion.created,
        "model": completion.model,
    }

    def chunk(delta: JsonObject, finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return _sse({**head, "choices": [choice]})

    deltas: list[JsonObject]
    call = completion.tool_call
    if call is not None:
        function = call["function"]
        opening = {
            "index": 0,
            "id": call["id"],
            "type": "function",
            "function": {"name": function["name"], "arguments": ""},
        }
        deltas = [{"tool_calls": [opening]}]
        deltas += [
            {"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}
            for fragment in split_arguments(function["arguments"])
        ]
    else:
        deltas = [{"content": token} for token in tokenize(completion.content or "")]
    events = [(behaviour.first_token_delay, chunk({"role": "assistant"}))]
    events += [
        (0.0 if i == 0 else behaviour.token_gap, chunk(delta)) for i, delta in enumerate(deltas)
    ]
    events.append((0.0, chunk({}, completion.finish_reason)))
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
    """The non-streaming ``text_completion`` object of ``/v1/completions``."""
    choice = {
        "text": completion.generated,
        "index": 0,
        "logprobs": None,
        "finish_reason": completion.finish_reason,
    }
    return orjson.dumps(
        {
            "id": "cmpl-" + completion.id.removeprefix("chatcmpl-"),
            "object": "text_completion",
            "created": completion.created,
            "model": completion.model,
            "choices": [choice],
            "usage": completion.usage,
        }
    )


def text_sse_events(
    body: JsonObject, completion: Completion, behaviour: Behaviour
) -> list[tuple[float, bytes]]:
    """The streamed ``text_completion`` chunks, timed like ``sse_events``: one per token, a
    last chunk with ``finish_reason``, the usage chunk when asked for, then ``[DONE]``."""
    head = {
        "id": "cmpl-" + completion.id.removeprefix("chatcmpl-"),
        "object": "text_completion",
        "created": completion.created,
        "model": completion.model,
    }

    def chunk(text: str, finish_reason: str | None = None) -> bytes:
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}
        return _sse({**head, "choices": [choice]})

    tokens = tokenize(completion.generated)
    events = [
        (behaviour.first_token_delay if i == 0 else behaviour.token_gap, chunk(token))
        for i, token in enumerate(tokens)
    ]
    events.append((0.0, chunk("", completion.finish_reason)))
    options = body.get("stream_options")
    wants_usage = isinstance(options, dict) and options.get("include_usage") is True
    if wants_usage or behaviour.always_usage:
        events.append((0.0, _sse({**head, "choices": [], "usage": completion.usage})))
    events.append((0.0, DONE))
    return events
