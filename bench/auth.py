"""``python -m bench.auth``: what ``[auth]`` adds to a request, without Redis.

Times the router's own code for one request, in CPU time per request, over batches of many:
the key check (``api.auth.KeyCheck``, in ``app.py``'s guard middleware: key headers, SHA-256, table lookup, public and
operator paths, the key's name bound to the log context) and the pipeline's key step
(``api.access``: model permission, the ``auto`` cap, the token estimate, the limit check in the
process's counters with its ``x-ratelimit-*`` headers, the release), around a handler that does
nothing else. Four cases:

* ``no auth``: no ``[auth]``, the middleware and the key step as every request pays them;
* ``key, no limits``: a valid key, tiers restricted (so ``auto`` is capped), no limits;
* ``key, rpm + tpm + max_concurrent``: the same key with all three limits (never reached);
* ``key, explicit model``: as above, but ``model`` names a tier, so the prompt is estimated here
  (``auto`` has routing's estimate already).

With ``--redis-url`` the limits case is timed once more with ``[state] redis_url`` set, in wall
time (what it costs is mostly waiting for Redis, which CPU time does not show).

Each is reported minus a bare run (the same calls into a handler without the middleware and
the key step), so the numbers are what auth costs. aiohttp's ``make_mocked_request`` makes the
request (headers as a client sends them, a ~1 KB prompt); nothing touches a socket. Run it on a
quiet core (``taskset -c 1``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from octoroute.api.access import (
    add_limit_headers,
    capped,
    charge,
    charge_shared,
    check_model,
    generation_cost,
    give_back,
    needs_cost,
)
from octoroute.api.auth import KeyCheck, client_key
from octoroute.api.common import RUNTIME
from octoroute.catalog import ModelChoice
from octoroute.config import Config, parse_config
from octoroute.enums import DecisionSource, Importance, TaskType, Tier
from octoroute.routing.metadata import RouteMetadata
from octoroute.routing.strategy import Decision
from octoroute.runtime import Runtime
from octoroute.wire.hints import RequestHints
from octoroute.wire.messages import Message

KEY: Final = "sk-octo-bench-key-0123456789abcdefghijklmnopqrstuvw"
PROMPT: Final = "Explain how a hash table handles collisions, with an example. " * 16
"""~1 KB of text, a typical chat turn."""
CASES: Final = (
    "no auth",
    "key, no limits",
    "key, rpm + tpm + max_concurrent",
    "key, explicit model",
)
FLEET: Final = """
[server]
host = "127.0.0.1"
port = 0

[[models.fast]]
name = "small"
base_url = "http://127.0.0.1:1/v1"
max_tokens = 2048

[[models.balanced]]
name = "medium"
base_url = "http://127.0.0.1:1/v1"
max_tokens = 4096

[[models.deep]]
name = "large"
base_url = "http://127.0.0.1:1/v1"
max_tokens = 8192

[routing]
strategy = "rule"
"""

Step = Callable[[web.Request], Awaitable[web.StreamResponse]]


def authentication(
    runtime: Runtime,
) -> Callable[[web.Request, Step], Awaitable[web.StreamResponse]]:
    """The key check as the router's guard middleware runs it, then ``handler``."""
    keys = KeyCheck(runtime)

    async def middleware(request: web.Request, handler: Step) -> web.StreamResponse:
        refusal = keys.refusal(request)
        if refusal is not None:
            return refusal
        return await handler(request)

    return middleware


def routing_headers(decision: Decision) -> dict[str, str]:
    """The answer's header dict as ``api.common.decision_headers`` starts it (part of it)."""
    return {"x-octoroute-tier": decision.tier.value}


def config(case: str, redis_url: str | None = None) -> Config:
    """The configuration of one case: three one-endpoint tiers, and the case's key (its
    counters in the Redis at ``redis_url`` when given)."""
    if case == "no auth":
        return parse_config(FLEET, environ={})
    state = "" if redis_url is None else f'[state]\nredis_url = "{redis_url}"\n'
    if state:
        return parse_config(FLEET + state + _auth(case), environ={})
    return parse_config(FLEET + _auth(case), environ={})


def _auth(case: str) -> str:
    """The ``[auth]`` section of a case with a key."""
    limits = ""
    if case != "key, no limits":
        limits = (
            "requests_per_minute = 1000000000\ntokens_per_minute = 1000000000\n"
            "max_concurrent = 1000000000\n"
        )
    return (
        '[auth]\n[[auth.keys]]\nname = "bench"\n'
        f'key_sha256 = "{hashlib.sha256(KEY.encode()).hexdigest()}"\n'
        f'tiers = ["fast", "balanced"]\n{limits}'
    )


def pipeline(runtime: Runtime, choice: ModelChoice, key_step: bool) -> Step:
    """A handler doing what ``api.generation`` does with the key, then answering at once."""
    messages = [Message(role="user", content=PROMPT)]
    routed = Decision(
        Tier.DEEP,
        DecisionSource.RULE,
        "signal:analysis_deep",
        RouteMetadata(len(PROMPT) // 4, Importance.NORMAL, TaskType.DEEP_ANALYSIS, ()),
    )
    decision = (
        routed
        if choice.is_auto
        else Decision(
            Tier.FAST,
            DecisionSource.DIRECT,
            "explicit_tier",
            RouteMetadata(0, Importance.NORMAL, TaskType.QUESTION_ANSWER, ()),
        )
    )
    hints = RequestHints(fills_default=True)
    answer = web.Response()

    async def handle(request: web.Request) -> web.StreamResponse:
        if not key_step:
            # Every request builds its routing headers, with or without a key: not auth's cost.
            routing_headers(decision)
            return answer
        key = client_key(request)
        check_model(runtime, key, choice, "auto")
        final = capped(key, choice, decision)
        cost = generation_cost(runtime, choice, final, messages, hints) if needs_cost(key) else 0
        charged = charge(runtime, key, cost) or await charge_shared(runtime, key, cost)
        add_limit_headers(routing_headers(final), charged)
        give_back(runtime, charged)
        return answer

    return handle


async def cost_per_request(case: str, requests: int, *, bare: bool) -> float:
    """CPU nanoseconds per request of one batch of ``requests``."""
    app = web.Application()
    runtime = Runtime(config(case))
    app[RUNTIME] = runtime
    choice = runtime.catalog.resolve("fast" if case == "key, explicit model" else "auto")
    handler = pipeline(runtime, choice, key_step=not bare)
    middleware = authentication(runtime)
    request = make_mocked_request(
        "POST",
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        app=app,
    )
    call: Step = handler if bare else (lambda r: middleware(r, handler))
    for _ in range(1000):  # warm up: bind metric children, fill caches
        await call(request)
    started = time.thread_time_ns()
    for _ in range(requests):
        await call(request)
    return (time.thread_time_ns() - started) / requests


async def shared_wall_time(redis_url: str, requests: int) -> float:
    """Wall-clock microseconds per request of the limits case with its counters in Redis,
    one request after another: mostly the round trip to Redis (the lease removals run in the
    background, as in the router)."""
    app = web.Application()
    runtime = Runtime(config("key, rpm + tpm + max_concurrent", redis_url))
    app[RUNTIME] = runtime
    await runtime.limiter.start()
    try:
        handler = pipeline(runtime, runtime.catalog.resolve("auto"), key_step=True)
        middleware = authentication(runtime)
        request = make_mocked_request(
            "POST", "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"}, app=app
        )
        for _ in range(200):
            await middleware(request, handler)
        started = time.perf_counter()
        for _ in range(requests):
            await middleware(request, handler)
        elapsed = time.perf_counter() - started
        assert runtime.limiter.shared, "Redis was not reachable: the run counted locally"
        return elapsed / requests * 1e6
    finally:
        await runtime.limiter.stop()


def measure(case: str, requests: int, repeats: int) -> tuple[float, float]:
    """The best of ``repeats`` batches of the case, and of the bare run, in µs per request:
    on a shared machine the best batch is the one the least disturbed by other work."""
    with_auth = [asyncio.run(cost_per_request(case, requests, bare=False)) for _ in range(repeats)]
    bare = [asyncio.run(cost_per_request(case, requests, bare=True)) for _ in range(repeats)]
    return min(with_auth) / 1000, min(bare) / 1000


def main(argv: list[str] | None = None) -> None:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.auth", description=__doc__)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--redis-url", help="also time the limits case with its counters in this Redis"
    )
    args = parser.parse_args(argv)
    print(f"{args.repeats} batches of {args.requests} requests; best batch, CPU time")
    print("| case | auth + limit checks per request | handler alone |")
    print("|---|---|---|")
    for case in CASES:
        total, bare = measure(case, args.requests, args.repeats)
        print(f"| {case} | {total - bare:.2f} µs | {bare:.2f} µs |")
    if args.redis_url:
        runs = [
            asyncio.run(shared_wall_time(args.redis_url, args.requests // 10))
            for _ in range(args.repeats)
        ]
        print(f"\nWith [state] redis_url, one request after another: {min(runs):.0f} µs a request")
        print("(wall clock, best batch: the Redis round trip included).")


if __name__ == "__main__":
    main()
