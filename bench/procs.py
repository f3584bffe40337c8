"""Processes under test: spawn pinned to a core, wait until they answer, read their CPU and memory.

Why ``/proc`` and not ``psutil``: the numbers we need are two fields of ``/proc/<pid>/stat``
(utime, stime) and two lines of ``/proc/<pid>/status`` (VmRSS, VmHWM), and the harness must not
add a dependency to the project. CPU is summed over the process *tree*, so a ``--workers N`` server
is measured whole.

Every child gets ``PR_SET_PDEATHSIG``: if the harness dies, the kernel ends its children, so a
crashed run never leaves a server holding a port or a core.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

REPO: Final = Path(__file__).resolve().parent.parent
"""The repository root: helpers run as ``python -m bench.<module>`` from there."""
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")
PAGE_KB: Final = os.sysconf("SC_PAGE_SIZE") // 1024
_PR_SET_PDEATHSIG: Final = 1
ROUTER_CORE: Final = 0
"""The core of the proxy under test (router, floor or peer)."""
LOAD_CORE: Final = 1
"""The core of the generator, wrk and the fake upstreams."""


def cores_available() -> bool:
    """True when cores 0 and 1 both exist, so the pinned topology is possible."""
    return {ROUTER_CORE, LOAD_CORE} <= os.sched_getaffinity(0)


def pin_self(core: int = LOAD_CORE) -> None:
    """Pin the calling process (the generator) to ``core``."""
    os.sched_setaffinity(0, {core})


def free_port() -> int:
    """A loopback TCP port that is free now (other engineers run servers on this box too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _child_setup(cores: frozenset[int]) -> None:  # runs between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    os.sched_setaffinity(0, cores)


@dataclass
class Proc:
    """A spawned child process with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    started: float
    """``time.perf_counter()`` just before the spawn."""

    @property
    def pid(self) -> int:
        """The child's pid."""
        return self.popen.pid

    def alive(self) -> bool:
        """True while the process runs."""
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        """The end of the child's combined stdout/stderr, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; a no-op if it already exited."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    cores: set[int],
    log_dir: Path,
    env: dict[str, str] | None = None,
) -> Proc:
    """Start ``argv`` pinned to ``cores``, its output in ``log_dir/<name>.log``."""
    log_path = log_dir / f"{name}.log"
    log: IO[bytes] = log_path.open("wb")
    frozen = frozenset(cores)
    started = time.perf_counter()
    popen = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=REPO,
        preexec_fn=lambda: _child_setup(frozen),
    )
    log.close()
    return Proc(name, popen, log_path, started)


def wait_for_port(proc: Proc, port: int, timeout: float = 10.0) -> None:
    """Return once ``127.0.0.1:port`` accepts connections; raise with the log if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(
                f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}"
            )
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.2)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.01)
    raise RuntimeError(
        f"{proc.name} did not listen on {port} within {timeout} s:\n{proc.log_tail()}"
    )


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
                found.extend(int(child) for child in text.split())
    except OSError:
        pass
    return found


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (bounded by the process table)."""
    seen = [pid]
    index = 0
    while index < len(seen) and len(seen) < 4096:
        seen.extend(c for c in _children(seen[index]) if c not in seen)
        index += 1
    return seen


def stat_cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """utime + stime of ``pid`` and its live descendants, from ``/proc/<pid>/stat``, in seconds.

    Tick-sampled (1/CLK_TCK = 10 ms here). ``reaped`` adds the root's cutime + cstime: the CPU of
    children it already waited for (wrk runs), which ``ForeignLoad`` must count as ours.
    """
    ticks = 0
    for member in tree(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        if reaped and member == pid:
            ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid``'s process tree, all threads, in seconds, to the nanosecond.

    The same quantity as utime + stime, but read from ``/proc/<pid>/task/<tid>/schedstat`` (time
    on CPU in ns): a 2-second run of 80 streams uses ~0.1 s of CPU, which 10 ms ticks would
    round by 10 %. Falls back to ``/proc/<pid>/stat`` where schedstat is missing.
    """
    total_ns = 0
    for member in tree(pid):
        try:
            tasks = os.listdir(f"/proc/{member}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                total_ns += int(
                    Path(f"/proc/{member}/task/{task}/schedstat").read_text().split()[0]
                )
            except FileNotFoundError:
                continue
            except (OSError, ValueError, IndexError):
                return stat_cpu_seconds(pid)
    return total_ns / 1e9


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def rss_mb(pid: int) -> float:
    """Resident set size now (VmRSS), in MB (10^6 bytes), summed over the process tree."""
    return sum(_status_kb(p, "VmRSS:") for p in tree(pid)) * 1024 / 1e6


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM), in MB, summed over the process tree."""
    return sum(_status_kb(p, "VmHWM:") for p in tree(pid)) * 1024 / 1e6


def host_busy_seconds() -> float:
    """CPU seconds the host spent in processes (user, nice, system) or lost to steal, so far.

    irq and softirq time are left out: loopback networking of the benchmark itself runs there
    and is charged to no process, so counting it would report our own traffic as foreign load.
    """
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + steal) / CLK_TCK


class ForeignLoad:
    """How busy the host was with processes outside the benchmark during a measurement.

    The rest of the host (other engineers' test runs, CI) shares these two cores; a run that saw
    a lot of foreign CPU is flagged rather than trusted.
    """

    def __init__(self) -> None:
        self._host = host_busy_seconds()
        self._mine = self._our_cpu()
        self._started = time.monotonic()

    @staticmethod
    def _our_cpu() -> float:
        # The harness spawns everything it measures, so its own tree is all of "ours".
        return stat_cpu_seconds(os.getpid(), reaped=True)

    def cores(self) -> float:
        """Average number of cores used by foreign processes since construction."""
        elapsed = max(1e-6, time.monotonic() - self._started)
        foreign = (host_busy_seconds() - self._host) - (self._our_cpu() - self._mine)
        return max(0.0, foreign / elapsed)
