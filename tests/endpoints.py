"""Endpoint configs for the pure translation tests: one chat endpoint or one that speaks a
dialect natively, without a config file."""

from __future__ import annotations

from collections.abc import Iterable

from octoroute.config.schema import EndpointConfig
from octoroute.enums import Pool


def endpoint_config(
    name: str = "chat-model",
    *,
    native: Iterable[str] = (),
    compat: Iterable[str] = (),
    index: int = 0,
    max_tokens: int = 256,
) -> EndpointConfig:
    """A fast-tier endpoint called ``name`` with these ``native`` and ``compat`` entries."""
    return EndpointConfig(
        pool=Pool.FAST,
        index=index,
        name=name,
        base_url=f"http://{name}:1/v1",
        max_tokens=max_tokens,
        native=frozenset(native),
        compat=frozenset(compat),
    )
