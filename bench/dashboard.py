"""``python -m bench.dashboard``: what the dashboard's recording adds to a request (issue #21).

Times the end of a request as the handlers run it, ``api.common.request_log`` and the
``RequestLog`` block exiting (``log_request``: the log fields, the log call, and with
``[ui] enabled`` the traffic window's counting and the decision ring), in CPU time per request
over batches of many, with the log level at ``warning`` so the log line itself is not written
(it costs the same with the dashboard on or off, and would drown the difference). Cases:

* ``ui off``: ``[ui] enabled = false``, the path every request pays when the dashboard is off;
* ``ui on``: the default, recording into the windows and the last-decisions ring;
* ``ui on, show_prompts``: the same, plus the preview of a ~1 KB latest user turn;
* ``ui on, one event stream``: the default with one ``GET /admin/events`` stream open (each
  decision is also appended to the stream's backlog).

Requests cycle through the tiers, four instances, statuses (one in ten a 502 after a retry),
streamed and not, so the window's counters see the mix a router sees. The wall clock is read
as in production, so ten-second buckets roll over during a run. Each case is reported as the
best of ``--repeats`` batches, and the recording's cost as a case minus ``ui off``. Run it on a
quiet core: ``taskset -c 1 .venv/bin/python -m bench.dashboard``.

With ``--instructions`` each case runs under valgrind's cachegrind instead, twice (few and many
requests, so start-up cancels out), and the measure is instructions per request, which a busy
host does not move.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

import msgspec
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from octoroute.api.common import REQUEST_ID, RUNTIME, request_log
from octoroute.api.dashboard_events import _Stream
from octoroute.config import Config, parse_config
from octoroute.enums import DecisionSource, Importance, LogFormat, TaskType, Tier
from octoroute.fleet.endpoint import Endpoint
from octoroute.observability.logging import configure_logging
from octoroute.routing.metadata import RouteMetadata
from octoroute.routing.strategy import Decision
from octoroute.runtime import Runtime
from octoroute.upstream.forward import Outcome
from octoroute.wire.messages import Message

CASES: Final = ("ui off", "ui on", "ui on, show_prompts", "ui on, one event stream")
PROMPT: Final = "Explain how a hash table handles collisions, with an example. " * 16
"""~1 KB of text, a typical chat turn."""
FLEET: Final = """
[server]
host = "127.0.0.1"
port = 0

[[models.fast]]
name = "small"
base_url = "http://127.0.0.1:1/v1"
max_tokens = 2048

[[models.fast]]
name = "small"
base_url = "http://127.0.0.1:2/v1"
max_tokens = 2048

[[models.balanced]]
name = "medium"
base_url = "http://127.0.0.1:3/v1"
max_tokens = 4096

[[models.deep]]
name = "large"
base_url = "http://127.0.0.1:4/v1"
max_tokens = 8192

[routing]
strategy = "learned"
"""
_META: Final = RouteMetadata(256, Importance.NORMAL, TaskType.QUESTION_ANSWER, ())


def config(case: str) -> Config:
    """The case's configuration: four instances in three tiers, its ``[ui]``."""
    loaded = parse_config(FLEET, environ={})
    ui = msgspec.structs.replace(
        loaded.ui, enabled=case != "ui off", show_prompts=case == "ui on, show_prompts"
    )
    return msgspec.structs.replace(loaded, ui=ui)


def finished_requests(endpoints: tuple[Endpoint, ...]) -> list[tuple[Decision, Outcome, int]]:
    """Twenty requests as they end: decision, outcome, status."""
    mix: list[tuple[Decision, Outcome, int]] = []
    for number in range(20):
        endpoint = endpoints[number % len(endpoints)]
        tier = Tier(endpoint.pool.value)
        decision = Decision(
            tier, DecisionSource.LEARNED, "learned", _META, None, 0.2, 0.5 + number / 50
        )
        outcome = Outcome()
        outcome.endpoint = endpoint
        outcome.attempts = 2 if number % 10 == 9 else 1
        outcome.ttfb = 0.004 + number / 1000
        outcome.status = 502 if number % 10 == 9 else 200
        outcome.usage = None if number % 10 == 9 else (200 + number, 50 + number)
        mix.append((decision, outcome, outcome.status))
    return mix


def cost_per_request(case: str, requests: int) -> float:
    """CPU nanoseconds per request of one batch of ``requests``."""
    app = web.Application()
    runtime = Runtime(config(case))
    app[RUNTIME] = runtime
    if case == "ui on, one event stream":
        runtime.dashboard.listeners.append(_Stream().push)
    request = make_mocked_request("POST", "/v1/chat/completions", app=app)
    request[REQUEST_ID] = "4c0c4bd3-2a3b-4f7e-9a51-1d9b1d1f9f3e"
    messages = [Message(role="system", content="Be brief."), Message(role="user", content=PROMPT)]
    mix = finished_requests(runtime.fleet.all())

    def one(number: int) -> None:
        decision, outcome, status = mix[number % len(mix)]
        with request_log(request, "chat_completions", None, None) as entry:
            entry.model = "auto"
            entry.stream = number % 2 == 0
            if entry.previewing:
                entry.keep_preview(messages)
            entry.decision = decision
            entry.outcome = outcome
            entry.status = status

    for number in range(2000):  # warm up: the buckets, the ring, the caches
        one(number)
    started = time.thread_time_ns()
    for number in range(requests):
        one(number)
    return (time.thread_time_ns() - started) / requests


def measure(requests: int, repeats: int) -> dict[str, float]:
    """The best of ``repeats`` batches per case, in µs per request, the cases interleaved."""
    runs: dict[str, list[float]] = {case: [] for case in CASES}
    for _ in range(repeats):
        for case in CASES:
            runs[case].append(cost_per_request(case, requests))
    return {case: min(found) / 1000 for case, found in runs.items()}


INSTRUCTION_RUNS: Final = (2_000, 22_000)


def instructions(case: str, requests: int, folder: Path) -> int:
    """Instructions (cachegrind's ``Ir``) of this program running ``case`` over ``requests``."""
    out = folder / f"{case.replace(' ', '_').replace(',', '')}-{requests}.cachegrind"
    subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            f"--cachegrind-out-file={out}",
            sys.executable,
            "-m",
            "bench.dashboard",
            "--one",
            case,
            "--requests",
            str(requests),
        ],
        check=True,
        capture_output=True,
        env=os.environ | {"PYTHONHASHSEED": "0"},  # dict layouts follow the hash seed
    )
    for line in out.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"no summary in {out}")


def count_instructions() -> None:
    """Each case's instructions per request, and the recording's (a case minus ``ui off``)."""
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed; install it with: apt-get install -y valgrind")
    few, many = INSTRUCTION_RUNS
    per: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for case in CASES:
            low = instructions(case, few, Path(folder))
            high = instructions(case, many, Path(folder))
            per[case] = (high - low) / (many - few)
    print("| case | instructions per request | recording alone |")
    print("|---|---|---|")
    for case in CASES:
        alone = "–" if case == "ui off" else f"{per[case] - per['ui off']:,.0f}"
        print(f"| {case} | {per[case]:,.0f} | {alone} |")


def main(argv: list[str] | None = None) -> None:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per request under cachegrind instead (needs valgrind)",
    )
    parser.add_argument("--one", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    configure_logging("warning", LogFormat.TEXT)
    asyncio.set_event_loop(asyncio.new_event_loop())  # the streams' asyncio.Event needs none
    if args.one is not None:  # one run under cachegrind
        cost_per_request(args.one, args.requests)
        return
    if args.instructions:
        count_instructions()
        return
    best = measure(args.requests, args.repeats)
    print(f"{args.repeats} batches of {args.requests} requests; best batch, CPU time")
    print("| case | end of a request (log fields, log call, recording) | recording alone |")
    print("|---|---|---|")
    off = best["ui off"]
    for case in CASES:
        alone = "–" if case == "ui off" else f"{best[case] - off:.2f} µs"
        print(f"| {case} | {best[case]:.2f} µs | {alone} |")


if __name__ == "__main__":
    main()
