"""``python -m bench``: run the benchmark parts, print one markdown table, save raw JSON.

Usage::

    python -m bench                       # everything, ~10 minutes
    python -m bench --quick               # shorter runs, one repeat, ~2 minutes
    python -m bench --only latency,throughput
    python -m bench --peer                # add LiteLLM if /tmp/litellm-venv has it
    python -m bench placement             # issue #18's placement scenario, 3 runs (~2.5 min)

Parts: startup, latency, throughput, streaming, memory, soak, scaling, profile. A part whose
tool is missing (nginx, wrk, py-spy) is skipped with the command that installs it. Raw results go
to ``bench/results/<UTC time>-<plan>.json`` (git-ignored). The harness pins itself, wrk and the
upstreams to core 1 and every proxy to core 0; see ``bench/README.md`` for the method.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import uvloop

from bench import lifecycle, parts, profile, report, servers, wrk
from bench.context import FULL, QUICK, Bench, Plan, make_variants, now_stamp
from bench.procs import cores_available, free_port, pin_self, rss_mb
from bench.servers import Missing, Server

PARTS: Final = (
    "startup",
    "latency",
    "throughput",
    "streaming",
    "memory",
    "soak",
    "scaling",
    "profile",
)
SCENARIOS: Final = {"placement": "bench.placement"}
"""Scenario benchmarks run by name instead of the parts (``python -m bench placement``)."""
NEEDS_WRK: Final = {"throughput", "soak", "scaling", "profile"}
NEEDS_ROUTER: Final = {"soak", "scaling", "profile"}
RESULTS_DIR: Final = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "scenario",
        nargs="?",
        choices=sorted(SCENARIOS),
        help="run one scenario benchmark instead of the parts (placement: issue #18)",
    )
    parser.add_argument("--quick", action="store_true", help="short runs, one repeat (~2 min)")
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated parts: {','.join(PARTS)}"
    )
    parser.add_argument(
        "--upstream",
        choices=("auto", "nginx", "sim"),
        default="auto",
        help="non-streaming fake upstream; auto: nginx if installed, else the simulator",
    )
    parser.add_argument(
        "--repeats", type=int, help="override the plan's repeat count (a scenario's runs)"
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="a scenario's first seed (run n uses seed + n)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="worker count compared with 1 in 'scaling'"
    )
    servers.add_strategy_option(parser)
    parser.add_argument(
        "--peer", action="store_true", help="include LiteLLM if installed in /tmp/litellm-venv"
    )
    parser.add_argument(
        "--no-router", action="store_true", help="measure only direct and the floor"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS_DIR, help="directory of the raw JSON"
    )
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(
            f"unknown part(s) {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}"
        )
    return args


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "missing"
    return (done.stdout + done.stderr).strip().splitlines()[0] if done.returncode == 0 else "error"


def host_info() -> dict[str, Any]:
    """The machine, for the report: cores, CPU model, Python, tool versions, load."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import aiohttp

    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "aiohttp": aiohttp.__version__,
        "uvloop": metadata.version("uvloop"),
        "nginx": _version(["nginx", "-v"]) if shutil.which("nginx") else "missing",
        "wrk": _version(["wrk", "-v"]) if shutil.which("wrk") else "missing",
        "router": _version([*servers.router_command(), "--version"]),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def router_usable(log_dir: Path) -> str | None:
    """None when ``octoroute`` runs and accepts a bench config; else why not."""
    version = _version([*servers.router_command(), "--version"])
    if version in {"missing", "error"}:
        return f"octoroute --version failed ({version})"
    config = log_dir / "check.toml"
    url = "http://127.0.0.1:9"  # never contacted: check only validates the file
    config.write_text(servers.router_config(free_port(), url, url))
    done = subprocess.run(
        [*servers.router_command(), "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        return f"octoroute check failed: {(done.stdout + done.stderr).strip()[:400]}"
    return None


@contextlib.contextmanager
def running(started: list[Server]) -> Iterator[list[Server]]:
    """Stop every server in ``started`` on the way out, last started first."""
    try:
        yield started
    finally:
        for server in reversed(started):
            server.stop()


def start_upstream(choice: str, log_dir: Path) -> Server:
    """nginx, or the simulator when asked or when nginx is missing (with a warning)."""
    if choice in {"auto", "nginx"}:
        try:
            return servers.start_nginx(log_dir)
        except Missing as missing:
            if choice == "nginx":
                raise
            print(f"  note: {missing}; falling back to the simulator (it may be the bottleneck)")
    return servers.start_simulator(log_dir)


async def run_parts(bench: Bench, chosen: list[str], out_dir: Path) -> None:
    """Run the chosen parts in a fixed order (quiet ones first)."""
    for part in PARTS:
        if part not in chosen:
            continue
        if part in NEEDS_ROUTER and bench.router is None:
            bench.note(f"{part} skipped: the router is not available")
            continue
        if part in NEEDS_WRK:
            try:
                wrk.binary()
            except Missing as missing:
                bench.note(f"{part} skipped: {missing}")
                continue
        print(f"== {part}", flush=True)
        started = time.monotonic()
        try:
            if part == "startup":
                lifecycle.startup(bench)
            elif part == "latency":
                await parts.latency(bench)
            elif part == "throughput":
                await parts.throughput(bench)
            elif part == "streaming":
                await parts.streaming(bench)
            elif part == "memory":
                lifecycle.memory(bench)
            elif part == "soak":
                await lifecycle.soak(bench)
            elif part == "scaling":
                await lifecycle.scaling(bench)
            elif part == "profile":
                profile.profile(bench, out_dir)
        except Missing as missing:
            bench.note(f"{part} skipped: {missing}")
        bench.results.setdefault("part_seconds", {})[part] = round(time.monotonic() - started, 1)


def main(argv: list[str] | None = None) -> int:
    """Set up the servers, run the parts, report."""
    args = parse_args(argv)
    if args.scenario is not None:
        scenario = importlib.import_module(SCENARIOS[args.scenario])
        result: int = scenario.main(quick=args.quick, repeats=args.repeats, seed=args.seed)
        return result
    plan: Plan = QUICK if args.quick else FULL
    if args.repeats:
        plan = Plan(**{**plan.__dict__, "repeats": args.repeats})
    if not cores_available():
        print(
            "bench: needs cores 0 and 1 (the proxy on 0, load and upstreams on 1)", file=sys.stderr
        )
        return 2
    pin_self()
    args.output.mkdir(parents=True, exist_ok=True)
    stamp = f"{now_stamp()}-{plan.name}"
    host = host_info()
    print(
        f"bench {stamp}: {host['nproc']} cores, {host['cpu_model']}, Python {host['python']}, "
        f"load {' '.join(host['loadavg_at_start'])}; router-auto: strategy {args.strategy}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="octoroute-bench-") as tmp, running([]) as started:
        log_dir = Path(tmp)
        try:
            upstream = start_upstream(args.upstream, log_dir)
        except Missing as missing:
            print(f"bench: {missing}", file=sys.stderr)
            return 2
        started.append(upstream)
        sse = servers.start_sse(log_dir)
        started.append(sse)
        floor = servers.start_floor(log_dir, upstream, sse)
        started.append(floor)
        notes: list[str] = []
        router: Server | None = None
        if not args.no_router:
            problem = router_usable(log_dir)
            if problem is None:
                try:
                    router = servers.start_router(log_dir, upstream, sse, strategy=args.strategy)
                except RuntimeError as error:
                    problem = f"the router did not start: {error}"
            if router is not None:
                started.append(router)
            else:
                notes.append(f"router not measured: {problem}")
                print(f"  note: {notes[-1]}", flush=True)
        peer: Server | None = None
        peer_start: dict[str, float] = {}
        if args.peer:
            try:
                peer = servers.start_litellm(log_dir, upstream, sse)
                started.append(peer)
                peer_start = {
                    "seconds": round(peer.ready_seconds, 3),
                    "idle_rss_mb": round(rss_mb(peer.proc.pid), 1),
                }
            except (Missing, RuntimeError) as error:
                notes.append(f"LiteLLM peer skipped: {str(error).splitlines()[0]}")
                print(f"  note: {notes[-1]}", flush=True)
        if upstream.name == "simulator":
            notes.append(
                "upstream is the simulator, not nginx: it may be the bottleneck at high rates"
            )
        bench = Bench(
            plan,
            log_dir,
            upstream,
            sse,
            floor,
            router,
            make_variants(upstream, sse, floor, router, peer),
            notes=notes,
            workers_flag=args.workers,
            strategy=args.strategy,
        )
        if peer is not None:
            bench.results["startup"] = {"litellm": [peer_start]}
        try:
            uvloop.run(run_parts(bench, args.parts, args.output))
        finally:
            load = report.foreign_load(bench.results)
            if load:
                bench.notes.append(load)
            rows = report.build_rows(bench.results)
            table = report.render(rows)
            path = args.output / f"{stamp}.json"
            record = {
                "stamp": stamp,
                "command": " ".join(
                    ["python -m bench", *(argv if argv is not None else sys.argv[1:])]
                ),
                "host": host,
                "plan": plan.__dict__,
                "upstream": upstream.name,
                "strategy": args.strategy,
                "variants": [v.name for v in bench.variants],
                "notes": bench.notes,
                "targets": report.targets(rows),
                "results": bench.results,
                "table": table,
            }
            path.write_text(json.dumps(record, indent=1, ensure_ascii=False))
    print()
    print(table)
    print()
    for note in bench.notes:
        print(f"- {note}")
    verdicts = [v for t in report.targets(rows) for v in t["pass"] if v is not None]
    print(f"\n{sum(verdicts)}/{len(verdicts)} target checks pass; raw results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
