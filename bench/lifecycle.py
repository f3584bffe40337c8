"""The process-level parts: start-up time, memory (idle, peak, soak growth), worker scaling.

These need fresh router processes (a start-up is only a start-up once, and a soak must count
requests from zero), so each part spawns its own router next to the shared upstreams and stops
it before returning.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Final

from bench import payloads, servers, wrk
from bench.context import Bench, measure
from bench.procs import peak_rss_mb, rss_mb, tree
from bench.servers import Server

IDLE_SETTLE_SECONDS: Final = 0.3
SOAK_CHUNK_MAX_SECONDS: Final = 8.0
SOAK_MAX_CHUNKS: Final = 200
_SOAK_LUA: Final = """\
-- Rotates through {n} request bodies so the soak exercises routing as well as relaying.
local bodies = {{{bodies}}}
local i = 0
local headers = {{["Content-Type"] = "application/json"}}
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", nil, headers, bodies[i])
end
"""


def _lua_string(body: bytes) -> str:
    return '"' + body.decode("ascii").replace("\\", "\\\\").replace('"', '\\"') + '"'


def soak_script(bodies: list[bytes]) -> str:
    """A wrk script that sends ``bodies`` in turn."""
    return _SOAK_LUA.format(n=len(bodies), bodies=", ".join(_lua_string(b) for b in bodies))


def _idle_rss(server: Server) -> float:
    time.sleep(IDLE_SETTLE_SECONDS)
    return round(rss_mb(server.proc.pid), 1)


def startup(bench: Bench) -> None:
    """Spawn the router (and the floor) ``plan.startups`` times: time to the first 200, idle RSS."""
    out: dict[str, Any] = bench.results.setdefault("startup", {})
    out.setdefault("router", [])
    out.setdefault("floor", [])
    for _ in range(bench.plan.startups):
        for name in ("floor", "router"):
            if name == "router" and bench.router is None:
                continue
            server = (
                servers.start_router(
                    bench.log_dir,
                    bench.upstream,
                    bench.sse,
                    name="router-start",
                    strategy=bench.strategy,
                )
                if name == "router"
                else servers.start_floor(bench.log_dir, bench.upstream, bench.sse)
            )
            try:
                sample = {
                    "seconds": round(server.ready_seconds, 3),
                    "idle_rss_mb": _idle_rss(server),
                }
            finally:
                server.stop()
            out[name].append(sample)
            print(
                f"  startup {name:<7} {sample['seconds']:.3f} s to first 200, idle RSS "
                f"{sample['idle_rss_mb']:.1f} MB",
                flush=True,
            )


def memory(bench: Bench) -> None:
    """RSS of the long-lived floor and router now (after the load parts) and at their peak."""
    out: dict[str, Any] = {}
    bench.results["memory"] = out
    seen: set[int] = set()
    for variant in bench.variants:
        server = variant.server
        if not variant.proxied or server.proc.pid in seen:
            continue
        seen.add(server.proc.pid)
        out[server.name] = {
            "after_load_idle_rss_mb": _idle_rss(server),
            "peak_rss_mb": round(peak_rss_mb(server.proc.pid), 1),
        }
        print(f"  memory {server.name:<7} {out[server.name]}", flush=True)


async def soak(bench: Bench) -> None:
    """A fresh router under wrk until ``soak_marks[1]`` requests; RSS at both marks."""
    first, last = bench.plan.soak_marks
    router = servers.start_router(
        bench.log_dir, bench.upstream, bench.sse, name="router-soak", strategy=bench.strategy
    )
    bodies = [
        payloads.chat_body("auto"),
        payloads.chat_body("fast"),
        payloads.chat_body("auto", extra={"user": "soak"}),
    ]
    script = wrk.write_script(bench.log_dir, "soak", soak_script(bodies))
    trace: list[tuple[int, float]] = [(1, rss_mb(router.proc.pid))]
    done = errors = 0
    at_first: float | None = None
    first_count = 0
    elapsed = 0.0
    cpu = 0.0
    foreign: list[float] = []
    try:
        for _ in range(SOAK_MAX_CHUNKS):
            # Aim each wrk run at the next mark from the rate so far, so both marks are hit
            # closely without running past the total.
            goal = first if done < first else last
            rate = done / elapsed if elapsed > 0 else 1000.0
            seconds = min(SOAK_CHUNK_MAX_SECONDS, max(1.0, (goal - done) / rate))

            def go(seconds: float = seconds) -> wrk.Saturation:
                return wrk.run(router.chat_url, script, seconds)

            measured = await measure(router.proc.pid, go)
            result: wrk.Saturation = measured.value
            elapsed += result.seconds
            done += result.requests
            errors += result.errors
            cpu += measured.cpu_seconds or 0.0
            foreign.append(measured.foreign_cores)
            rss = round(rss_mb(router.proc.pid), 1)
            trace.append((done, rss))
            if at_first is None and done >= first:
                at_first, first_count = rss, done
            if done >= last:
                break
    finally:
        peak = peak_rss_mb(router.proc.pid) if router.proc.alive() else None
        router.stop()
    assert at_first is not None
    final = trace[-1][1]
    growth = (final - at_first) / at_first * 100
    bench.results["soak"] = {
        "marks": [first, last],
        "first_mark_requests": first_count,
        "requests": done,
        "errors": errors,
        "rss_at_first_mark_mb": round(at_first, 1),
        "rss_at_end_mb": final,
        "growth_percent": round(growth, 2),
        "peak_rss_mb": None if peak is None else round(peak, 1),
        "cpu_us_per_request": round(cpu / max(1, done - errors) * 1e6, 1),
        "foreign_cores_max": max(foreign, default=0.0),
        "trace": trace,
    }
    print(
        f"  soak {done} requests ({errors} errors): RSS {at_first:.1f} MB at {first}, "
        f"{final:.1f} MB at the end ({growth:+.1f} %)",
        flush=True,
    )


async def scaling(bench: Bench) -> None:
    """Saturation of ``--workers 1`` against ``--workers N`` (skipped if the flag is rejected)."""
    out: dict[str, Any] = {}
    bench.results["scaling"] = out
    script = wrk.write_script(
        bench.log_dir, "post-scaling", payloads.wrk_script(payloads.chat_body("auto"))
    )
    for workers in (1, bench.workers_flag):
        try:
            router = servers.start_router(
                bench.log_dir,
                bench.upstream,
                bench.sse,
                workers=workers,
                name=f"router-w{workers}",
                strategy=bench.strategy,
            )
        except RuntimeError as error:
            bench.note(
                f"--workers {workers} did not start; scaling skipped ({str(error).splitlines()[0]})"
            )
            out["skipped"] = True
            return

        def go(url: str = router.chat_url) -> wrk.Saturation:
            return wrk.run(url, script, bench.plan.wrk_seconds)

        try:
            wrk.run(router.chat_url, script, 1.0)
            rates = []
            cpus = []
            for _ in range(bench.plan.repeats):
                measured = await measure(router.proc.pid, go, attempts=bench.plan.attempts)
                result: wrk.Saturation = measured.value
                rates.append(result.rps)
                cpus.append((measured.cpu_seconds or 0.0) / max(1, result.requests) * 1e6)
            out[str(workers)] = {
                "rps": round(statistics.median(rates), 1),
                "cpu_us_per_request": round(statistics.median(cpus), 1),
                "processes": len(tree(router.proc.pid)),
            }
        finally:
            router.stop()
        print(f"  scaling --workers {workers}: {out[str(workers)]}", flush=True)
