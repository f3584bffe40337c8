"""The script a simulated model follows and the record of what it received.

``Behaviour`` is a plain mutable dataclass on purpose: a test edits a field mid-test
(``sim.behaviour.fault = HttpError(503)``) and the very next request obeys it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from octoroute.enums import Kind

if TYPE_CHECKING:
    from collections.abc import Mapping

    from multidict import CIMultiDictProxy

    from octoroute.simulator.replies import ReplyFn


def error_body(
    message: str, *, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """An OpenAI error envelope, the shape every OpenAI-compatible server answers errors in."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


@dataclass(frozen=True, slots=True)
class HttpError:
    """Answer with this HTTP status before any stream starts (what real servers do).

    ``body`` ``None`` means a generic OpenAI error envelope for the status; a ``str`` or
    ``bytes`` body is sent verbatim as ``text/plain`` (e.g. a reverse proxy's HTML 502 page);
    anything else is sent as JSON.
    """

    status: int = 500
    body: object = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def context_length(cls, limit: int = 8192) -> HttpError:
        """The 400 a server answers when the conversation does not fit the model's window."""
        message = (
            f"This model's maximum context length is {limit} tokens. However, your messages "
            f"resulted in {limit + 808} tokens. Please reduce the length of the messages."
        )
        body = error_body(
            message, type_="invalid_request_error", code="context_length_exceeded", param="messages"
        )
        return cls(400, body)

    @classmethod
    def rate_limited(cls, retry_after: int = 1) -> HttpError:
        """The 429 of an overloaded server, with ``Retry-After``."""
        body = error_body(
            "Rate limit reached, retry later.", type_="requests", code="rate_limit_exceeded"
        )
        return cls(429, body, {"Retry-After": str(retry_after)})


@dataclass(frozen=True, slots=True)
class Drop:
    """Abort the TCP connection instead of finishing the response.

    ``after_chunks`` ``None``: before any response byte (the client sees the server vanish).
    Streaming, ``k``: after ``k`` SSE events were written (the role chunk, each content chunk,
    the finish and usage chunks and ``[DONE]`` all count), so ``0`` means right after the
    headers; ``k`` at or past the number of events drops just before the chunked terminator.
    Non-streaming, any ``k``: after the headers and the first half of the JSON body.
    """

    after_chunks: int | None = None


@dataclass(frozen=True, slots=True)
class Hang:
    """Never answer: hold the request until the client gives up or the server stops."""


Fault = HttpError | Drop | Hang
"""Something that goes wrong with a chat request instead of a normal answer."""


@dataclass(slots=True)
class Behaviour:
    """How one simulated model answers; every field may be changed while the server runs.

    Delays are in seconds and are zero by default so tests run at full speed. A JSON answer
    waits ``latency + first_token_delay + token_gap * (tokens - 1)``, like a real server that
    generates the whole answer before sending it; a stream sends headers after ``latency``,
    the role chunk after ``first_token_delay`` and each later token after ``token_gap``.
    """

    reply: str | ReplyFn | None = None
    """Fixed text, a callable of the request JSON, or ``None`` for the demo reply."""
    router_answer: str | ReplyFn | None = None
    """The answer to LLM-router prompts; ``None`` picks a tier word with a keyword heuristic."""
    latency: float = 0.0
    first_token_delay: float = 0.0
    token_gap: float = 0.0
    fault: Fault | None = None
    """What goes wrong with chat requests instead of answering; ``None``: nothing."""
    fault_times: int | None = None
    """How many chat requests ``fault`` applies to before it clears itself; ``None``: all."""
    echo_tool_calls: bool = True
    """Answer requests that carry ``tools`` with a call to the first (or the chosen) tool."""
    always_usage: bool = False
    """Send the usage chunk on every stream, as some servers do without ``stream_options``."""
    strict_model: bool = False
    """Answer 404 ``model_not_found`` when the request's ``model`` is not this server's name."""
    native_responses: bool = False
    """Serve ``POST /v1/responses`` natively (as Ollama and llama.cpp do); otherwise it is 404."""
    embedding_dimensions: int = 16
    """The length of ``POST /v1/embeddings`` vectors when the request sets no ``dimensions``."""
    health_status: int = 200
    """The status of ``GET /v1/models``, the router's health probe."""
    health_hang: bool = False
    """Make ``GET /v1/models`` and the kind's status paths never answer (probe timeouts)."""
    health_latency: float = 0.0
    """Delay before ``GET /v1/models`` and the status paths answer; ``health_hang`` applies to
    the status paths too, so a wholly hung server is ``fault=Hang(), health_hang=True``."""
    status_hang: bool = False
    """Make only the kind's status paths never answer while ``GET /v1/models`` does: Ollama's
    ``/api/ps`` while a model loads (0.32.4 and later), a proxy that stalls ``/metrics``."""

    # -- fleet placement: what the server does between arrival and first token ----------------
    # Each is off by default; see ``simulator.engine`` for the mechanics.

    kind: Kind = Kind.OPENAI
    """The server the model plays: its status paths (Ollama ``/api/ps``, ``/api/show``,
    ``/api/version``; llama.cpp ``/health``, ``/props``, ``/slots``; vLLM ``/metrics`` and
    ``max_model_len`` in ``/v1/models``) and how it treats a prompt over ``context_window``."""
    slots: int | None = None
    """Requests served at once; later ones wait inside the server in arrival order."""
    queue_limit: int | None = None
    """With ``slots``: requests allowed to wait; one more is answered 429 with ``Retry-After``."""
    context_window: int | None = None
    """Tokens of context. A longer prompt is cut silently by ``ollama`` (the request records
    ``truncated``), refused with 400 by the others (prompt plus ``max_tokens`` for ``vllm`` and
    ``openai``, the prompt alone for ``llamacpp``)."""
    trained_context: int | None = None
    """The context length the model was trained with, as Ollama's ``/api/show`` reports it;
    ``None``: the same as ``context_window``."""
    start_cold: bool = False
    """The model is not loaded when the server starts (read when the ``SimulatedModel`` is made)."""
    load_seconds: float = 0.0
    """How long a cold model takes to load; requests arriving meanwhile wait for it."""
    unload_after: float | None = None
    """Idle seconds (nothing in flight) after which the model unloads, like Ollama's
    ``keep_alive``; ``None``: never."""
    prefill_seconds_per_1k_tokens: float = 0.0
    """Time before the first token per 1000 prompt tokens not in the prefix cache."""
    prefix_cache_entries: int = 1024
    """Message prefixes the prefix cache remembers (least recently used dropped first)."""

    def take_fault(self) -> Fault | None:
        """The fault for the request being served, consuming one of ``fault_times``."""
        fault = self.fault
        if fault is None or self.fault_times is None:
            return fault
        self.fault_times -= 1
        if self.fault_times <= 0:
            self.fault = None
            self.fault_times = None
        return fault


@dataclass(slots=True, eq=False)
class RecordedRequest:
    """One request as the simulated model received it, and what became of it.

    Times are ``time.monotonic()`` values so a test can compare them with its own clock.
    """

    method: str
    path: str
    headers: CIMultiDictProxy[str]
    body: bytes
    json: Any
    """The parsed body; ``None`` when it was empty or not valid JSON."""
    received_at: float
    status: int | None = None
    """The status answered, once headers were sent; ``None`` before that or when dropped early."""
    stream: bool = False
    chunks_sent: int = 0
    chunk_times: list[float] = field(default_factory=list)
    """When each SSE event was handed to the transport."""
    completed: bool = False
    """The whole response was written."""
    client_disconnected: bool = False
    """The client went away before the response was complete."""
    dropped: bool = False
    """This server aborted the connection on purpose (a ``Drop`` fault)."""
    finished_at: float | None = None
    waited: float = 0.0
    """Seconds from arrival until prefill began: ``latency``, the wait for a slot, a cold load."""
    cold_load: bool = False
    """This request found the model cold and waited for it to load."""
    prompt_tokens: int = 0
    cached_tokens: int = 0
    """Of ``prompt_tokens``, those the prefix cache held (not prefilled again)."""
    truncated: bool = False
    """The prompt was longer than the context window and was cut (Ollama's silent truncation)."""
