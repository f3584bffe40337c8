"""Where the router's CPU goes under load: py-spy samples summarised by function and by area.

Multiply an area's share by the ``cpu_us_per_request`` measured in the same run to get its
CPU-µs per request; compare with the floor's profile to see what the router adds.

py-spy attaches from outside (no code change in the router, ``--nonblocking`` so the process is
never paused) while wrk saturates the floor, then the router with ``fast`` and with ``auto``. It is not a project dependency: install it in
a throwaway venv (``python3 -m venv /tmp/pyspy-venv && /tmp/pyspy-venv/bin/pip install py-spy``);
the part is skipped with that hint when it is missing. Idle samples (the loop waiting in epoll)
are not recorded, so the percentages are shares of the router's busy time.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any, Final

from bench import payloads, wrk
from bench.context import Bench
from bench.servers import Missing, Server

SAMPLE_RATE: Final = 250
TOP: Final = 15
_AREAS: Final = (
    ("octoroute/routing", "octoroute.routing"),
    ("octoroute/wire", "octoroute.wire"),
    ("octoroute/upstream", "octoroute.upstream"),
    ("octoroute/api", "octoroute.api"),
    ("octoroute/observability", "octoroute.observability"),
    ("octoroute/fleet", "octoroute.fleet"),
    ("octoroute/", "octoroute (other)"),
    ("aiohttp/", "aiohttp"),
    ("multidict/", "multidict/yarl"),
    ("yarl/", "multidict/yarl"),
    ("structlog/", "structlog"),
    ("prometheus_client/", "prometheus_client"),
    ("asyncio/", "asyncio"),
    ("uuid", "uuid"),
)


_ENTRY: Final = frozenset({"<module>", "main", "_run", "run", "Runner.run", "_cmd_serve"})
"""Entry frames present in every synchronous stack: left out of the inclusive ranking.

Note that a coroutine resumed by the event loop is sampled without its callers (uvloop and
``_asyncio`` step tasks from C), so inclusive shares of handler frames are lower bounds."""


def binary() -> str:
    """The py-spy executable; ``Missing`` with the install hint when there is none."""
    for candidate in ("/tmp/pyspy-venv/bin/py-spy", shutil.which("py-spy")):
        if candidate and Path(candidate).exists():
            return candidate
    raise Missing(
        "py-spy is not installed (profile part); install it outside the project: python3 -m venv "
        "/tmp/pyspy-venv && /tmp/pyspy-venv/bin/pip install py-spy"
    )


def area(frame: str) -> str:
    """The package a frame ``function (path:line)`` belongs to."""
    where = frame[frame.rfind("(") + 1 :]
    for needle, name in _AREAS:
        if needle in where:
            return name
    return "other"


def summarise(raw: str) -> dict[str, Any]:
    """Self time (leaf frames), inclusive time and per-area self time, in % of samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        areas[area(frames[-1])] += count
        for frame in set(frames):
            if frame.split(" ", 1)[0] not in _ENTRY:
                inclusive[frame] += count

    def top(counter: Counter[str], n: int = TOP) -> list[tuple[str, float]]:
        return [(frame, round(100 * c / total, 1)) for frame, c in counter.most_common(n)]

    if total == 0:
        return {"samples": 0}
    return {
        "samples": total,
        "self_top": top(own),
        "inclusive_top": top(inclusive, 25),
        "areas": top(areas, len(areas)),
    }


def profile(bench: Bench, out_dir: Path) -> None:
    """Sample the floor, then the router with ``model: "fast"`` and with ``"auto"``, under wrk.

    The floor's profile is the baseline: what aiohttp itself costs on both sides of a proxy.
    """
    if bench.router is None:
        bench.note("profile skipped: the router is not running")
        return
    spy = binary()
    out: dict[str, Any] = {}
    bench.results["profile"] = out
    targets = (
        ("floor", bench.floor, payloads.chat_body("bench-model")),
        ("router-fast", bench.router, payloads.chat_body("fast")),
        ("router-auto", bench.router, payloads.chat_body("auto")),
    )
    for name, server, body in targets:
        summary = _sample(bench, spy, server, body, out_dir / f"profile-{name}.txt")
        if summary is None:
            return
        out[name] = summary
        areas = ", ".join(f"{area} {share:g}%" for area, share in summary.get("areas", [])[:6])
        print(
            f"  profile {name}: {summary.get('samples', 0)} samples, "
            f"{summary['cpu_us_per_request']:.0f} CPU-µs/req; {areas}",
            flush=True,
        )


def _sample(
    bench: Bench, spy: str, server: Server, body: bytes, raw_path: Path
) -> dict[str, Any] | None:
    seconds = bench.plan.profile_seconds
    script = wrk.write_script(bench.log_dir, f"post-{raw_path.stem}", payloads.wrk_script(body))
    url = server.chat_url
    wrk.run(url, script, 1.0)
    sampler = subprocess.Popen(
        [
            spy, "record", "--pid", str(server.proc.pid), "--duration", f"{seconds:g}",
            "--rate", str(SAMPLE_RATE), "--format", "raw", "--function", "--nonblocking",
            "--output", str(raw_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    err = b""
    try:
        load = wrk.run(url, script, seconds + 2, pid=server.proc.pid)
        _, err = sampler.communicate(timeout=seconds + 30)
    finally:
        if sampler.poll() is None:
            sampler.kill()
            sampler.wait()
    if sampler.returncode != 0 or not raw_path.exists():
        bench.note(f"profile failed: py-spy exited {sampler.returncode}: {err.decode()[-300:]}")
        return None
    summary = summarise(raw_path.read_text())
    summary["rps_while_sampled"] = round(load.rps, 1)
    summary["cpu_us_per_request"] = round(load.cpu_us_per_request or 0.0, 1)
    summary["raw_file"] = str(raw_path)
    return summary
