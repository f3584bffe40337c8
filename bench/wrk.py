"""Closed-loop saturation with wrk: the most requests a proxy can answer, and its CPU per request.

wrk keeps 64 connections busy, each sending its next request as soon as the last one is
answered, so the proxy's core runs flat out. Its latency percentiles suffer from coordinated
omission and are not used; throughput and the proxy's CPU-µs per request (from
``/proc/<pid>/stat`` before and after) are.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench.procs import cpu_seconds
from bench.servers import NGINX_HINT, Missing

CONNECTIONS: Final = 64
_REQUESTS = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_UNIT = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclass
class Saturation:
    """One wrk run."""

    requests: int
    seconds: float
    errors: int
    cpu_seconds: float | None
    """CPU used by the measured process tree during the run; None when no pid was given."""

    @property
    def rps(self) -> float:
        """Answered requests per second (errors excluded)."""
        return (self.requests - self.errors) / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_request(self) -> float | None:
        """CPU-µs of the measured process per answered request."""
        good = self.requests - self.errors
        if self.cpu_seconds is None or good <= 0:
            return None
        return self.cpu_seconds / good * 1e6

    def summary(self) -> dict[str, float | int | None]:
        """For the JSON results."""
        cpu = self.cpu_us_per_request
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "errors": self.errors,
            "rps": round(self.rps, 1),
            "cpu_us_per_request": None if cpu is None else round(cpu, 1),
        }


def binary() -> str:
    """The wrk executable; ``Missing`` with the install command if there is none."""
    found = shutil.which("wrk")
    if found is None:
        raise Missing(f"wrk is not installed; install it with: {NGINX_HINT}")
    return found


def write_script(directory: Path, name: str, lua: str) -> Path:
    """Write a wrk Lua script and return its path."""
    path = directory / f"{name}.lua"
    path.write_text(lua)
    return path


def run(url: str, script: Path, seconds: float, pid: int | None = None) -> Saturation:
    """One wrk run of ``seconds`` (rounded up: wrk takes whole seconds) against ``url``.

    wrk inherits the harness's load core.
    """
    before = cpu_seconds(pid) if pid is not None else 0.0
    completed = subprocess.run(
        [
            binary(),
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{max(1, math.ceil(seconds))}s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=False,
    )
    used = cpu_seconds(pid) - before if pid is not None else None
    match = _REQUESTS.search(completed.stdout)
    if completed.returncode != 0 or match is None:
        raise RuntimeError(
            f"wrk failed ({completed.returncode}): {completed.stdout}{completed.stderr}"
        )
    errors = sum(int(n) for n in _NON_2XX.findall(completed.stdout))
    sockets = _SOCKET_ERRORS.search(completed.stdout)
    if sockets is not None:
        errors += sum(int(n) for n in sockets.groups())
    return Saturation(
        requests=int(match.group(1)),
        seconds=float(match.group(2)) * _UNIT[match.group(3)],
        errors=errors,
        cpu_seconds=used,
    )
