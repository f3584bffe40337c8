"""``python -m bench.fastpath``: instructions per ``model: "fast"`` request of the whole router.

The throughput part's CPU-µs per request moves with the host's load; this counts what the
router process executes instead (valgrind's cachegrind ``Ir``), which a busy host does not move.
``octoroute serve`` with the benchmark's configuration (``servers.router_config``, every tier on
nginx) runs under cachegrind twice, answering ``--few`` and then ``--many`` non-streaming
``model: "fast"`` chat requests sent one after another on one keep-alive connection; the
difference divided by the difference in requests is the cost of one request, start-up and
shutdown cancelled out. Sequential requests are not the saturation of ``wrk -c64`` (there the
event loop batches several requests per wake-up), so compare counts with counts, not with the
throughput part's µs.

Run it on the code to compare (a worktree, or ``PYTHONPATH=<other>/src`` in front of this
one's): ``.venv/bin/python -m bench.fastpath``. Needs valgrind and nginx.

``--model auto`` sends the same body with ``model: "auto"``, decided by ``--strategy`` (by
default ``learned``, the strategy ``octoroute config`` writes, as the throughput part's ``router-auto``): the
difference from ``fast`` is what the routing decision costs inside the server, a count the
paired benchmark's noisy saturation ratios cannot give.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

from bench import payloads
from bench.procs import free_port
from bench.servers import (
    DEFAULT_STRATEGY,
    add_strategy_option,
    router_command,
    router_config,
    start_nginx,
)

DEFAULT_FEW: Final = 300
DEFAULT_MANY: Final = 1300


def wait_answering(port: int, timeout: float) -> None:
    """Wait until the router on ``port`` answers ``GET /health``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", "/health")
            connection.getresponse().read()
            connection.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the router on port {port} never answered")


def send(port: int, body: bytes, requests: int) -> None:
    """POST ``body`` to the chat path ``requests`` times, one after another on one connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    for _ in range(requests):
        connection.request("POST", payloads.CHAT_PATH, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"the router answered {response.status}")
    connection.close()


def serve_under_valgrind(
    tool: list[str],
    requests: int,
    upstream_url: str,
    folder: Path,
    body: bytes,
    *,
    env: dict[str, str],
    stop_timeout: float,
    strategy: str = DEFAULT_STRATEGY,
) -> int:
    """Run ``octoroute serve`` (the benchmark's configuration, every tier on ``upstream_url``)
    under ``valgrind`` with the ``tool`` options, send it ``requests`` POSTs of ``body`` on one
    connection once it answers, then stop it with SIGTERM; its process id. Its output goes to
    ``folder/router-<requests>.log``."""
    port = free_port()
    config = folder / f"router-{requests}.toml"
    config.write_text(router_config(port, upstream_url, upstream_url, strategy=strategy))
    argv = [
        "valgrind",
        *tool,
        *router_command(),
        "serve",
        "--config",
        str(config),
        "--log-level",
        "warning",
    ]
    with (folder / f"router-{requests}.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_answering(port, timeout=300)
            send(port, body, requests)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(stop_timeout)
    return proc.pid


def instructions(
    requests: int,
    upstream_url: str,
    folder: Path,
    model: str = "fast",
    strategy: str = DEFAULT_STRATEGY,
) -> int:
    """``Ir`` of one ``octoroute serve`` under cachegrind answering ``requests`` naming ``model``."""
    out = folder / f"router-{requests}.cachegrind"
    serve_under_valgrind(
        ["--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}"],
        requests,
        upstream_url,
        folder,
        payloads.chat_body(model),
        env=os.environ | {"PYTHONHASHSEED": "0"},  # dict layouts follow the hash seed
        stop_timeout=120,
        strategy=strategy,
    )
    for line in out.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"no summary in {out}")


def main(argv: list[str] | None = None) -> None:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.fastpath", description=__doc__)
    parser.add_argument("--few", type=int, default=DEFAULT_FEW)
    parser.add_argument("--many", type=int, default=DEFAULT_MANY)
    parser.add_argument(
        "--model", choices=("fast", "auto"), default="fast", help="the body's model (default fast)"
    )
    add_strategy_option(parser)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        nginx = start_nginx(folder)
        try:
            low = instructions(args.few, nginx.url, folder, args.model, args.strategy)
            high = instructions(args.many, nginx.url, folder, args.model, args.strategy)
        finally:
            nginx.stop()
    per = (high - low) / (args.many - args.few)
    print(f"{args.few} requests: {low:,} Ir; {args.many} requests: {high:,} Ir")
    label = f"auto ({args.strategy})" if args.model == "auto" else args.model
    print(f"instructions per {label} request: {per:,.0f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
