"""One error tree for everything a client can be told.

Each class knows the HTTP status it answers with, the OpenAI error ``type`` and ``code``, and
whether another endpoint may be tried after it. Foreign exceptions (aiohttp, msgspec, OS errors)
are mapped into this tree at the boundary that sees them and never escape to a client::

    OctorouteError                    500 server_error
    ├── RequestError                  400 invalid_request_error  (the client must change the request)
    │   ├── InvalidRequest            400  param names the field
    │   ├── OriginNotAllowed          403  a CORS preflight from an origin not in server.cors_origins
    │   ├── HostNotAllowed            421  a Host header not in server.allowed_hosts (DNS rebinding)
    │   ├── ModelNotFound             404  code model_not_found
    │   ├── RouteNotFound             404  unknown path
    │   ├── MethodNotAllowed          405
    │   ├── RequestTimeout            408  the body stopped arriving (client_header_timeout_seconds)
    │   ├── PayloadTooLarge           413
    │   ├── ContextLengthExceeded     400  code context_length_exceeded: no instance's window fits
    │   ├── UnsupportedMediaType      415
    │   ├── InvalidApiKey             401  code invalid_api_key: [auth] is on and no valid key came
    │   ├── ModelNotAllowed           403  code model_not_allowed: outside the key's tiers or models
    │   ├── AdminKeyRequired          403  code admin_key_required: an operator path, not an admin key
    │   └── KeyRateLimited            429  code rate_limit_exceeded: the key's rpm, tpm or
    │                                      max_concurrent; Retry-After and x-ratelimit-* headers
    ├── UpstreamError                 502 api_error  (an attempt on one endpoint failed)
    │   ├── UpstreamConnectError      502  refused, reset, DNS      retryable
    │   ├── UpstreamTimeout           504  connect or read timeout  retryable
    │   │   └── StreamTooLong         504  over timeouts.stream_total_seconds; not a health failure
    │   ├── UpstreamProtocolError     502  malformed HTTP or SSE    retryable
    │   │   └── EventTooLarge         502  one SSE event over limits.max_event_bytes
    │   ├── ResponseTooLarge          502  answer over limits.max_response_bytes
    │   ├── BadUpstreamResponse       502  a 2xx chat answer that is not a JSON object
    │   ├── UpstreamAuthFailed        502  401/403: the router's own key was refused; body dropped
    │   ├── UpstreamThrottled         429/503 with Retry-After: busy, not broken; not a health failure
    │   ├── EndpointSaturated         503  every connection slot (max_connections) stayed busy; local
    │   └── UpstreamStatusError       the upstream's own status: 5xx retryable, other 4xx relayed
    ├── ServerOverloaded              503  max_in_flight reached, or out of file descriptors; local
    ├── FleetBusy                     503  every slot (max_concurrent) taken and the queue full or
    │                                      waited out; local, with Retry-After
    └── NoHealthyEndpoint             503  every endpoint of a tier is down or already tried

``RoutingError`` sits outside the tree on purpose: a routing failure never fails a request, it
falls back to the rules.
"""

from __future__ import annotations

import orjson


def error_body(
    message: str, error_type: str, param: str | None = None, code: str | None = None
) -> bytes:
    """The OpenAI error envelope, ``{"error": {"message", "type", "param", "code"}}``, as JSON bytes."""
    return orjson.dumps(
        {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    )


class OctorouteError(Exception):
    """Anything we answer a client with an error for. Subclasses set the class attributes."""

    status: int = 500
    error_type: str = "server_error"
    code: str | None = "internal_error"
    retryable: bool = False
    """Whether another endpoint of the same tier may be tried after this failure."""
    retry_after: float | None = None
    """Seconds the client should wait before retrying, sent as ``Retry-After``; ``None``: no header."""
    headers: tuple[tuple[str, str], ...] = ()
    """Extra response headers the error is answered with (``WWW-Authenticate``, rate limits)."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def to_body(self) -> bytes:
        """This error as the OpenAI envelope."""
        return error_body(self.message, self.error_type, self.param, self.code)


class RequestError(OctorouteError):
    """The request itself is wrong; retrying it unchanged cannot help."""

    status = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class InvalidRequest(RequestError):
    """A field is missing, of the wrong type or out of range; ``param`` names it."""


class OriginNotAllowed(RequestError):
    """A browser preflight came from an origin missing from ``server.cors_origins``."""

    status = 403
    code = "origin_not_allowed"


class HostNotAllowed(RequestError):
    """The request's ``Host`` is not one of ``server.allowed_hosts``: 421 Misdirected Request,
    "this server does not answer to that name", as HTTP defines it for a request that reached
    the wrong server."""

    status = 421
    code = "host_not_allowed"


class ModelNotFound(RequestError):
    """``model`` is neither ``auto``, a tier name, a configured endpoint name nor an alias."""

    status = 404
    code = "model_not_found"


class RouteNotFound(RequestError):
    """No such path."""

    status = 404
    code = "not_found"


class MethodNotAllowed(RequestError):
    """The path exists but not with this method."""

    status = 405
    code = "method_not_allowed"

    def __init__(self, message: str, *, allowed: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.allowed = allowed


class UnreadableBody(InvalidRequest):
    """The body does not decode from its ``Content-Encoding``: the rest of it is not read (the
    connection is closed), since reading on would only fail again."""


class RequestTimeout(RequestError):
    """The client stopped sending its body: no byte for ``server.client_header_timeout_seconds``.

    A slow-body client (a slowloris that completes its head, then trickles or stalls) would
    otherwise hold a connection and a handler until the body limit is reached.
    """

    status = 408
    code = "request_timeout"


class PayloadTooLarge(RequestError):
    """The body is larger than ``server.max_request_bytes``."""

    status = 413
    code = "request_too_large"


class ContextLengthExceeded(RequestError):
    """The conversation plus the output it asks for is larger than the context window of every
    instance that could serve it: refused before anything is sent (OpenAI's code)."""

    code = "context_length_exceeded"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="messages")


class UnsupportedMediaType(RequestError):
    """The body is not declared as JSON."""

    status = 415
    code = "unsupported_media_type"


class InvalidApiKey(RequestError):
    """``[auth]`` is on and the request carried no key, or none the router knows. The message
    never quotes what was sent."""

    status = 401
    code = "invalid_api_key"
    headers = (("WWW-Authenticate", 'Bearer realm="octoroute"'),)


class ModelNotAllowed(RequestError):
    """The client key may not use what ``model`` names: a tier, endpoint or embedding model
    outside its ``tiers`` or ``models``."""

    status = 403
    code = "model_not_allowed"

    def __init__(self, message: str) -> None:
        super().__init__(message, param="model")


class AdminKeyRequired(RequestError):
    """An operator path (``/metrics``, ``/models``, ``/route``, ``/admin/*``, ``/ui*``) asked
    with a key that is not ``admin = true``."""

    status = 403
    code = "admin_key_required"


class KeyRateLimited(RequestError):
    """The client key is over one of its limits. ``error_type`` says which, as OpenAI does:
    ``requests`` (``requests_per_minute``), ``tokens`` (``tokens_per_minute``) or
    ``concurrent_requests`` (``max_concurrent``); ``headers`` carry ``x-ratelimit-*``."""

    status = 429
    code = "rate_limit_exceeded"

    def __init__(
        self,
        message: str,
        *,
        limit: str,
        retry_after: float | None,
        headers: tuple[tuple[str, str], ...],
    ) -> None:
        super().__init__(message)
        self.error_type = limit
        self.retry_after = retry_after
        self.headers = headers


class UpstreamError(OctorouteError):
    """One attempt on one endpoint failed. ``endpoint`` names it for messages and metrics."""

    status = 502
    error_type = "api_error"
    code = "upstream_error"
    retryable = True
    reason = "error"
    """A short fixed label for metrics and logs (``connect``, ``timeout``, ``protocol``, ``status``)."""
    counts_against_health = True
    """Whether this failure is held against the endpoint (health threshold, ejection). False for
    an upstream that is alive but busy, and for limits of our own making."""

    def __init__(self, message: str, *, endpoint: str = "", code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.endpoint = endpoint


class UpstreamConnectError(UpstreamError):
    """The connection could not be opened or was reset before a response arrived."""

    code = "upstream_unreachable"
    reason = "connect"


class UpstreamTimeout(UpstreamError):
    """Connecting, or waiting for the next bytes of the response, took longer than allowed."""

    status = 504
    code = "upstream_timeout"
    reason = "timeout"


class UpstreamProtocolError(UpstreamError):
    """The upstream answered with something that is not valid HTTP, JSON or SSE."""

    code = "upstream_protocol_error"
    reason = "protocol"


class StreamTooLong(UpstreamTimeout):
    """A stream ran past ``timeouts.stream_total_seconds``: a limit of ours, not a fault."""

    code = "upstream_stream_too_long"
    reason = "stream_total"
    counts_against_health = False


class EventTooLarge(UpstreamProtocolError):
    """One SSE event grew past ``limits.max_event_bytes`` without its terminating blank line."""

    code = "upstream_event_too_large"
    reason = "event_too_large"


class ResponseTooLarge(UpstreamError):
    """A non-streaming answer grew past ``limits.max_response_bytes``; reading stopped there."""

    code = "upstream_response_too_large"
    reason = "too_large"


class BadUpstreamResponse(UpstreamError):
    """A 2xx answer to a non-streaming chat request whose body is not a JSON object."""

    code = "bad_upstream_response"
    reason = "bad_response"


class UpstreamAuthFailed(UpstreamError):
    """The upstream answered 401 or 403: the router's credentials for it are wrong.

    The client's own key is not involved, so its body (which may echo our key) is never relayed.
    """

    code = "upstream_auth_failed"
    reason = "auth"


class UpstreamThrottled(UpstreamError):
    """The upstream is alive but busy: 429, or 503 with ``Retry-After``.

    Retryable on another instance and never held against health; the instance is left alone for
    ``retry_after`` seconds (``None`` when the upstream gave no usable value). When no instance is
    left the client is told the same status with a ``Retry-After`` of its own.
    """

    code = "upstream_throttled"
    reason = "throttled"
    counts_against_health = False

    def __init__(
        self, message: str, *, endpoint: str = "", upstream_status: int, retry_after: float | None
    ) -> None:
        super().__init__(message, endpoint=endpoint)
        self.upstream_status = upstream_status
        self.status = upstream_status
        self.error_type = "rate_limit_error" if upstream_status == 429 else "api_error"
        self.retry_after = retry_after


class EndpointSaturated(UpstreamError):
    """All ``max_connections`` connections to the instance stayed busy for the whole wait.

    A limit of ours, not the upstream's fault: another instance may be tried, health is untouched.
    """

    status = 503
    code = "endpoint_saturated"
    reason = "saturated"
    counts_against_health = False
    retry_after = 1.0


class UpstreamStatusError(UpstreamError):
    """The upstream answered with a non-2xx status.

    A 5xx or 429 is the endpoint's trouble: retryable and a health failure; so is a 3xx, since
    the router does not follow redirects and a ``base_url`` that redirects (http to https, a
    missing ``/v1``) is the endpoint's misconfiguration, not the client's. Any other 4xx is the
    client's (a context-length error, say): relayed as it came, not retried, not held against
    the endpoint.
    """

    reason = "status"

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        upstream_status: int,
        body: bytes,
        content_type: str,
    ) -> None:
        super().__init__(message, endpoint=endpoint, code="upstream_status")
        self.upstream_status = upstream_status
        self.body = body
        self.content_type = content_type
        self.retryable = (
            upstream_status >= 500 or upstream_status == 429 or 300 <= upstream_status < 400
        )
        self.status = upstream_status if not self.retryable else 502

    @property
    def is_client_error(self) -> bool:
        """True for a 4xx other than 429: the client's request was refused on its merits."""
        return not self.retryable


class ServerOverloaded(OctorouteError):
    """The router itself is full: ``server.max_in_flight`` requests at once, or no file
    descriptor left to open a connection with. Said at once, with ``Retry-After``; never blamed on
    an upstream. ``reason`` is the metric label (``max_in_flight``, ``file_descriptors``)."""

    status = 503
    error_type = "api_error"
    code = "server_overloaded"

    def __init__(self, message: str, *, reason: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after


class FleetBusy(OctorouteError):
    """Every instance that could serve the request is at its ``max_concurrent`` and the request
    could not wait for one: its tier's queue was full (``limits.max_queue``) or it waited
    ``limits.queue_timeout_seconds``. Said with ``Retry-After``; never blamed on an upstream."""

    status = 503
    error_type = "api_error"
    code = "fleet_busy"

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NoHealthyEndpoint(OctorouteError):
    """No endpoint of the tier can be tried: all unhealthy, or all already tried."""

    status = 503
    error_type = "api_error"
    code = "no_healthy_endpoint"


class RoutingError(Exception):
    """The LLM router could not decide (transport failure, refusal, unparseable answer).

    Never shown to a client: the strategy falls back to the rule decision and counts it.
    ``reason`` is a fixed label such as ``timeout``, ``refusal``, ``unparseable``, ``empty``,
    ``oversize``, ``transport`` or ``unavailable``.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
