"""``python -m bench.tracing``: what OpenTelemetry tracing costs the router per request, off and on.

Issue #20 asks that tracing cost nothing when it is off: no OpenTelemetry module loaded and, per
request, no work beyond an ``is None`` test where a span would start. This measures
``octoroute serve`` in front of the nginx upstream of ``python -m bench``: a closed loop of
``--concurrency`` clients sends ``--requests`` chat requests, and the router's CPU per answered
request is read from ``/proc`` (the whole process, so the SDK's export thread counts too). CPU
time, not throughput: it holds on a host shared with other work, where a saturating run times
out. The variants take turns for ``--repeats`` rounds, each in a fresh router:

* ``off``: no ``OTEL_*`` variable, the router as shipped;
* ``on``: ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` at nginx, which answers the exporter's POSTs with
  200: every request sampled, its three spans batched and exported over OTLP/HTTP;
* ``sampled``: the same, one trace in ten kept (``OTEL_TRACES_SAMPLER=parentbased_traceidratio``,
  ``OTEL_TRACES_SAMPLER_ARG=0.1``): what an operator who samples pays;
* ``baseline`` (with ``--baseline DIR``): the router of another checkout's ``src/`` (the code
  before tracing: ``git archive <commit> src | tar -x -C /tmp/before``), no ``OTEL_*``
  variable.

Each with ``model: "fast"`` (no routing) and ``model: "auto"`` (the rule decision, and its
span when on). With ``--instructions`` the routers run under valgrind's cachegrind instead and
the measure is instructions per ``fast`` request, which a busy host does not move (CPU time on
a shared VM varies by tens of percent between rounds). Then, in this process, the one call the
off path adds to a request (``api.tracing.request_trace``), timed alone.

Needs nginx (``apt-get install -y nginx``); pins like ``python -m bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import timeit
from pathlib import Path
from typing import Final

import aiohttp
from aiohttp.test_utils import make_mocked_request

from bench import payloads
from bench.procs import ROUTER_CORE, cpu_seconds, free_port, pin_self, spawn, wait_for_port
from bench.servers import (
    Server,
    router_config,
    start_nginx,
    start_router,
    start_sse,
    wait_answering,
)
from octoroute.api.tracing import request_trace
from octoroute.config import parse_config
from octoroute.runtime import Runtime

MODELS: Final = ("fast", "auto")
INSTRUCTION_RUNS: Final = (100, 1100)
"""Requests in the two runs per variant under cachegrind."""
VALGRIND_SECONDS: Final = 600.0
"""How long a router under valgrind (~50x slower) may take to start, or to stop."""


def _environment(variant: str, nginx: Server, baseline: Path | None) -> dict[str, str]:
    """The router's environment for ``variant``: never an ``OTEL_*`` variable of the caller's."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    if variant in ("on", "sampled"):
        env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = nginx.url + "/health"
    if variant == "sampled":
        env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
        env["OTEL_TRACES_SAMPLER_ARG"] = "0.1"
    if variant == "baseline" and baseline is not None:
        env["PYTHONPATH"] = str(baseline / "src")
    return env


def hook_ns(calls: int = 1_000_000) -> tuple[float, float]:
    """Nanoseconds per ``request_trace`` call on a request of a router with tracing off, and
    per call of an empty function of the same arguments (what calling anything costs)."""
    config = parse_config(router_config(8080, "http://127.0.0.1:1", "http://127.0.0.1:2"))
    runtime = Runtime(config)
    request = make_mocked_request("POST", "/v1/chat/completions")

    def nothing(request: object, runtime: object) -> None:
        return None

    hook = min(timeit.repeat(lambda: request_trace(request, runtime), number=calls, repeat=7))
    empty = min(timeit.repeat(lambda: nothing(request, runtime), number=calls, repeat=7))
    return hook / calls * 1e9, empty / calls * 1e9


async def _closed_loop(url: str, body: bytes, requests: int, concurrency: int) -> int:
    """Send ``requests`` POSTs of ``body``, ``concurrency`` at a time back to back; the count
    answered 200 (anything else ends the run: it is the router's failure, not noise)."""
    headers = {"Content-Type": "application/json"}
    left = requests

    async def send(session: aiohttp.ClientSession) -> None:
        for attempt in range(3):
            try:
                async with session.post(url, data=body, headers=headers) as answer:
                    await answer.read()
                    if answer.status != 200:
                        raise SystemExit(f"{url}: HTTP {answer.status}")
                    return
            except aiohttp.ClientConnectionError:
                # A kept-alive connection the router closed as it was reused (a slow router
                # under valgrind meets that race): sent again on a fresh one.
                if attempt == 2:
                    raise

    async def worker(session: aiohttp.ClientSession) -> int:
        nonlocal left
        done = 0
        while left > 0:
            left -= 1
            await send(session)
            done += 1
        return done

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        counts = await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return sum(counts)


def cpu_per_request(server: Server, model: str, requests: int, concurrency: int) -> float:
    """The router's CPU-µs per answered request over ``requests`` chat requests for ``model``,
    after a warm-up that fills its upstream pool."""
    url = server.url + payloads.CHAT_PATH
    body = payloads.chat_body(model)
    asyncio.run(_closed_loop(url, body, concurrency * 20, concurrency))
    before = cpu_seconds(server.proc.pid)
    answered = asyncio.run(_closed_loop(url, body, requests, concurrency))
    return (cpu_seconds(server.proc.pid) - before) / answered * 1e6


def instructions(
    log_dir: Path, upstream: Server, sse: Server, variant: str, env: dict[str, str], requests: int
) -> int:
    """Instructions (cachegrind's ``Ir``) the router executed from its start to its exit, with
    ``requests`` chat requests for ``model: "fast"`` answered in between."""
    port = free_port()
    config = log_dir / f"{variant}-cachegrind.toml"
    config.write_text(router_config(port, upstream.url, sse.url))
    out = log_dir / f"{variant}-{requests}.cachegrind"
    argv = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        f"--cachegrind-out-file={out}",
        sys.executable,
        "-m",
        "octoroute",
        "serve",
        "--config",
        str(config),
        "--log-level",
        "warning",
    ]
    proc = spawn(f"{variant}-cachegrind", argv, cores={ROUTER_CORE}, log_dir=log_dir, env=env)
    body = payloads.chat_body("fast")
    try:
        wait_for_port(proc, port, timeout=VALGRIND_SECONDS)
        wait_answering(Server(variant, proc, port), body, timeout=VALGRIND_SECONDS)
        asyncio.run(_closed_loop(f"http://127.0.0.1:{port}{payloads.CHAT_PATH}", body, requests, 4))
    finally:
        proc.stop(timeout=VALGRIND_SECONDS)
    for line in out.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"no summary in {out}")


def main(argv: list[str] | None = None) -> None:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.tracing", description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--baseline", type=Path, help="a checkout whose src/ is the baseline")
    parser.add_argument(
        "--variants",
        default="off,on,sampled,baseline",
        help="which of off, on, sampled, baseline to run (baseline needs --baseline)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per request under cachegrind instead (needs valgrind)",
    )
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v != "baseline" or args.baseline]
    if not {"off", "on"} <= set(variants) and not args.instructions:
        parser.error("the CPU-time table compares on with off: --variants needs both")
    pin_self()
    with tempfile.TemporaryDirectory(prefix="octoroute-tracing-") as directory:
        log_dir = Path(directory)
        upstream = start_nginx(log_dir)
        sse = start_sse(log_dir)
        try:
            if args.instructions:
                _count_instructions(log_dir, upstream, sse, variants, args.baseline)
            else:
                _time_cpu(log_dir, upstream, sse, variants, args)
        finally:
            sse.stop()
            upstream.stop()
    hook, empty = hook_ns()
    print(
        f"api.tracing.request_trace with tracing off: {hook:.0f} ns per call "
        f"(an empty function of the same arguments: {empty:.0f} ns)"
    )


def _time_cpu(
    log_dir: Path, upstream: Server, sse: Server, variants: list[str], args: argparse.Namespace
) -> None:
    """The variants' CPU-µs per request, ``args.repeats`` rounds in a rotating order."""
    cpu: dict[tuple[str, str], list[float]] = {}
    for repeat in range(args.repeats):
        # Rotate the order each round, so no variant always runs first or last.
        order = variants[repeat % len(variants) :] + variants[: repeat % len(variants)]
        for variant in order:
            env = _environment(variant, upstream, args.baseline)
            router = start_router(log_dir, upstream, sse, name=variant, env=env)
            try:
                for model in MODELS:
                    used = cpu_per_request(router, model, args.requests, args.concurrency)
                    cpu.setdefault((variant, model), []).append(used)
                    print(
                        f"  round {repeat + 1} {variant:<8} {model:<4} {used:7.1f} CPU-us/req",
                        flush=True,
                    )
            finally:
                router.stop()
    print()
    print("| model | " + " | ".join(variants) + " | on - off |")
    print("|---" * (len(variants) + 2) + "|")
    for model in MODELS:
        medians = {v: statistics.median(cpu[(v, model)]) for v in variants}
        cells = " | ".join(f"{medians[v]:.1f} µs" for v in variants)
        print(f"| `{model}` | {cells} | {medians['on'] - medians['off']:+.1f} µs |")
    print()


def _count_instructions(
    log_dir: Path, upstream: Server, sse: Server, variants: list[str], baseline: Path | None
) -> None:
    """Each variant's instructions per request: the difference between a run with
    ``INSTRUCTION_RUNS[1]`` requests and one with ``INSTRUCTION_RUNS[0]``, so start-up and
    shutdown cancel out. Deterministic to a fraction of a percent on a busy host."""
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed; install it with: apt-get install -y valgrind")
    few, many = INSTRUCTION_RUNS
    print("| variant | instructions per request |")
    print("|---|---|")
    for variant in variants:
        # Dict layouts follow the hash seed, and with them the instructions a run takes.
        env = _environment(variant, upstream, baseline) | {"PYTHONHASHSEED": "0"}
        low = instructions(log_dir, upstream, sse, variant, env, few)
        high = instructions(log_dir, upstream, sse, variant, env, many)
        print(f"| {variant} | {(high - low) / (many - few):,.0f} |", flush=True)
    print()


if __name__ == "__main__":
    main()
