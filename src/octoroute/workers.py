"""``octoroute serve --workers N``: N server processes sharing one port through SO_REUSEPORT.

Each worker is a full router (its own upstream pool and health prober); the kernel spreads new
connections across them. Metrics go through prometheus_client's multiprocess mode so that
``/metrics``, answered by whichever worker, reports the whole server. The directory must be known
before ``prometheus_client`` is imported, so workers are *spawned* (fresh interpreters) with
``PROMETHEUS_MULTIPROC_DIR`` in their environment.

The parent supervises: a worker that dies is restarted after a short backoff; SIGINT/SIGTERM are
passed on, and every worker drains its in-flight requests before exiting. A worker restarted on a
file that has problems now (edited, its reload rejected) cannot start (exit code 2): while other
workers serve, it is tried again with the same backoff until the file is fixed; only when none
serves does the server stop with exit code 2, for a person to act. SIGHUP is passed on
too, and every worker reloads the configuration file (``octoroute.reload``); a worker that got
``POST /admin/reload`` sends its parent a SIGHUP for that. Workers start with SIGHUP blocked
(the signal mask survives the spawn), so one sent before a worker's handler exists waits for it
instead of killing the worker.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from types import FrameType
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event

    from octoroute.config.overrides import Overrides

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
RESTART_BACKOFF_SECONDS: Final = (0.5, 1.0, 2.0, 5.0)
STOP_WAIT_SECONDS: Final = 40.0


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to rebuild the same server: the config file, the CLI overrides
    (applied again on every reload) and the address every worker binds."""

    config_path: str
    host: str
    port: int
    overrides: Overrides
    multiprocess_dir: str
    serving: Event | None = None
    """Set by the worker once it listens: the parent tells a worker that cannot start among
    others that serve from a server that cannot start at all."""

    def listening(self, _url: str) -> None:
        """The worker listens (``serve``'s ``on_ready``): tell the parent."""
        if self.serving is not None:
            self.serving.set()


def hold_reload_signal() -> None:
    """Keep a ``SIGHUP`` that arrives while the router starts pending until its reload handler
    exists (``server.serve`` and :func:`run_workers` let it through then). Its default action
    would end the process, and ``systemctl reload`` right after ``start`` sends one: systemd
    counts that end as a clean exit, so ``Restart=on-failure`` would not bring the router back.

    Here rather than in ``server.py`` because ``serve`` calls it first thing, and this module
    imports nothing heavy (``server.py`` imports aiohttp, which takes a while)."""
    if hasattr(signal, "pthread_sigmask"):  # not on Windows, which has no SIGHUP either
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})


def _worker_main(spec: WorkerSpec) -> None:  # runs in a spawned interpreter
    from octoroute.cli import serve_worker

    raise SystemExit(serve_worker(spec))


def free_port(host: str) -> int:
    """A port that is free now, so that every worker can bind the same one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _spawn(
    context: multiprocessing.context.SpawnContext, spec: WorkerSpec
) -> tuple[multiprocessing.process.BaseProcess, Event]:
    """A started worker, its SIGHUP blocked until its reload handler is installed, and the
    event it sets once it listens."""
    serving = context.Event()
    worker_spec = replace(spec, serving=serving)
    process = context.Process(target=_worker_main, args=(worker_spec,), daemon=False)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        process.start()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    return process, serving


def run_workers(count: int, *, config_path: str, host: str, port: int, overrides: Overrides) -> int:
    """Run ``count`` workers until SIGINT/SIGTERM, passing SIGHUP on; returns the exit code."""
    if port == 0:
        port = free_port(host)
    directory = tempfile.mkdtemp(prefix="octoroute-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    spec = WorkerSpec(config_path, host, port, overrides, directory)
    context = multiprocessing.get_context("spawn")
    stopping = False
    workers: list[multiprocessing.process.BaseProcess] = []
    serving: list[Event] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    def on_hangup(signum: int, _frame: FrameType | None) -> None:
        alive = [worker.pid for worker in workers if worker.exitcode is None and worker.pid]
        print(f"octoroute: reloading the configuration in {len(alive)} workers", file=sys.stderr)
        for pid in alive:
            os.kill(pid, signal.SIGHUP)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hangup)
    # A SIGHUP sent while the command started was held back (hold_reload_signal): take it now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    restarts: list[int] = [0] * count
    try:
        for _ in range(count):
            worker, listens = _spawn(context, spec)
            workers.append(worker)
            serving.append(listens)
        print(f"octoroute: {count} workers serving on http://{host}:{port}", file=sys.stderr)
        while not stopping:
            multiprocessing.connection.wait([w.sentinel for w in workers], timeout=0.5)
            for index, worker in enumerate(workers):
                if worker.exitcode is None or stopping:
                    continue
                _mark_dead(worker.pid)
                delay = RESTART_BACKOFF_SECONDS[
                    min(restarts[index], len(RESTART_BACKOFF_SECONDS) - 1)
                ]
                if worker.exitcode == 2:  # the configuration file cannot be loaded as it is now
                    if not _others_serve(index, workers, serving):
                        stopping = True  # nothing serves: restarting cannot help, a person must
                        break
                    print(
                        f"octoroute: worker {worker.pid} cannot start with the configuration "
                        "file as it is now (its problems are above); the other workers keep "
                        "serving with the configuration they loaded. Fix the file; trying "
                        f"again in {delay:g} s",
                        file=sys.stderr,
                    )
                else:
                    print(
                        f"octoroute: worker {worker.pid} exited with {worker.exitcode}; "
                        f"restarting in {delay:g} s",
                        file=sys.stderr,
                    )
                restarts[index] += 1
                time.sleep(delay)
                workers[index], serving[index] = _spawn(context, spec)
        for worker in workers:
            if worker.exitcode is None and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.exitcode is None:
                worker.kill()
                worker.join()
        codes = [worker.exitcode or 0 for worker in workers]
        return max(codes, default=0)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(directory, ignore_errors=True)


def _others_serve(
    index: int, workers: list[multiprocessing.process.BaseProcess], serving: list[Event]
) -> bool:
    """Whether a worker other than the ``index``-th is alive and has listened."""
    return any(
        other != index and worker.exitcode is None and serving[other].is_set()
        for other, worker in enumerate(workers)
    )


def _mark_dead(pid: int | None) -> None:
    if pid is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
