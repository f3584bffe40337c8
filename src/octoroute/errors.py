"""One error tree for everything a client can be told.

Each class knows the HTTP status it answers with, the OpenAI error ``type`` and ``code``, and
whether another endpoint may be tried after it. Foreign exceptions (aiohttp, msgspec, OS errors)
are mapped into this tree at the boundary that sees them and never escape to a client::

    OctorouteError                    500 server_error
    ├── RequestError                  400 invalid_request_error  (the client must change the request)
    │   ├── InvalidRequest            400  param names the field
    │   ├── ModelNotFound             404  code model_not_found
    │   ├── RouteNotFound             404  unknown path
    │   ├── MethodNotAllowed          405
    │   ├── PayloadTooLarge           413
    │   └── UnsupportedMediaType      415
    ├── UpstreamError                 502 api_error  (an attempt on one endpoint failed)
    │   ├── UpstreamConnectError      502  refused, reset, DNS      retryable
    │   ├── UpstreamTimeout           504  connect or read timeout  retryable
    │   ├── UpstreamProtocolError     502  malformed HTTP or SSE    retryable
    │   └── UpstreamStatusError       the upstream's own status: 5xx and 429 retryable, other 4xx relayed
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


class ModelNotFound(RequestError):
    """``model`` is neither ``auto``, a tier name, nor a configured endpoint name."""

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


class PayloadTooLarge(RequestError):
    """The body is larger than ``server.max_request_bytes``."""

    status = 413
    code = "request_too_large"


class UnsupportedMediaType(RequestError):
    """The body is not declared as JSON."""

    status = 415
    code = "unsupported_media_type"


class UpstreamError(OctorouteError):
    """One attempt on one endpoint failed. ``endpoint`` names it for messages and metrics."""

    status = 502
    error_type = "api_error"
    code = "upstream_error"
    retryable = True
    reason = "error"
    """A short fixed label for metrics and logs (``connect``, ``timeout``, ``protocol``, ``status``)."""

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


class UpstreamStatusError(UpstreamError):
    """The upstream answered with a non-2xx status.

    A 5xx or 429 is the endpoint's trouble: retryable and a health failure. Any other 4xx is the
    client's (a context-length error, say): relayed as it came, not retried, not held against the
    endpoint.
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
        self.retryable = upstream_status >= 500 or upstream_status == 429
        self.status = upstream_status if not self.retryable else 502

    @property
    def is_client_error(self) -> bool:
        """True for a 4xx other than 429: the client's request was refused on its merits."""
        return not self.retryable


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
