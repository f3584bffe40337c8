"""Starting what the benchmark measures: fake upstreams, the floor, the router and optional peers.

Topology (the method of ``research/stack.md`` §A1): the proxy under test on core 0; the
generator, wrk and the fake upstreams on core 1. Ports are picked free at start, since other
engineers run servers on this machine too. Each ``start_*`` returns a ready ``Server``: its port
accepts connections and it has answered one real request.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from bench import payloads
from bench.procs import LOAD_CORE, ROUTER_CORE, Proc, free_port, spawn, wait_for_port

NGINX_HINT: Final = "apt-get update && apt-get install -y nginx wrk"
HELPER_LIFETIME_SECONDS: Final = 1200.0
"""Python helpers exit by themselves after this long even if the harness forgot them."""
STRATEGIES: Final = ("learned", "rule")
DEFAULT_STRATEGY: Final = "learned"
"""The strategy ``octoroute config`` writes and the demo runs (``[routing] strategy`` has no
default: every configuration names one), so ``router-auto`` measures what a user starts
with; ``--strategy rule`` measures the rule table, as every run before 2026-12-07 (5) did."""


def add_strategy_option(parser: argparse.ArgumentParser) -> None:
    """``--strategy``, the same for every benchmark that starts a router for ``model: auto``."""
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default=DEFAULT_STRATEGY,
        help="how model: auto is decided (default learned, as octoroute config writes it)",
    )


class Missing(Exception):
    """A tool a part needs is not installed; the message says how to install it."""


@dataclass
class Server:
    """A running process that serves HTTP on ``127.0.0.1:port``."""

    name: str
    proc: Proc
    port: int
    ready_seconds: float = 0.0
    """From spawn to the first answered chat request."""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:port``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def chat_url(self) -> str:
        """The chat-completions URL."""
        return self.url + payloads.CHAT_PATH

    def stop(self) -> None:
        """Stop the process."""
        self.proc.stop()


def post_once(url: str, body: bytes, timeout: float = 2.0) -> tuple[int, dict[str, str]]:
    """One blocking POST (readiness checks only): the status and response headers."""
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return int(response.status), dict(response.headers)
    except urllib.error.HTTPError as error:
        return int(error.code), dict(error.headers)


def wait_answering(server: Server, body: bytes, timeout: float = 15.0) -> float:
    """Poll with a real chat request until it gets a 200; seconds since the spawn."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not server.proc.alive():
            raise RuntimeError(
                f"{server.name} exited with {server.proc.popen.returncode}:\n{server.proc.log_tail()}"
            )
        try:
            status, _ = post_once(server.chat_url, body, timeout=1.0)
        except OSError as error:
            last = str(error)
        else:
            if status == 200:
                return time.perf_counter() - server.proc.started
            last = f"status {status}"
        time.sleep(0.005)
    raise RuntimeError(f"{server.name} never answered 200 ({last}):\n{server.proc.log_tail()}")


def _python() -> list[str]:
    return [sys.executable, "-m"]


def _ready(name: str, proc: Proc, port: int, body: bytes) -> Server:
    server = Server(name, proc, port)
    try:
        wait_for_port(proc, port)
        server.ready_seconds = wait_answering(server, body)
    except BaseException:
        proc.stop()
        raise
    return server


def start_nginx(log_dir: Path) -> Server:
    """nginx with one worker answering the fixed completion, pinned to the load core."""
    binary = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if binary is None:
        raise Missing(f"nginx is not installed; install it with: {NGINX_HINT}")
    prefix = log_dir / "nginx"
    prefix.mkdir(exist_ok=True)
    port = free_port()
    template = (Path(__file__).parent / "nginx.conf").read_text()
    conf = (
        template.replace("@PORT@", str(port))
        .replace("@PREFIX@", str(prefix))
        .replace("@COMPLETION@", payloads.COMPLETION.decode())
        .replace("@MODELS@", payloads.MODELS.decode())
    )
    (prefix / "nginx.conf").write_text(conf)
    proc = spawn(
        "nginx",
        [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
        cores={LOAD_CORE},
        log_dir=log_dir,
    )
    return _ready("nginx", proc, port, payloads.chat_body("bench-model"))


def start_simulator(log_dir: Path) -> Server:
    """The project's ``SimulatedModel`` as the non-streaming upstream (slower than nginx)."""
    port = free_port()
    argv = [
        *_python(),
        "bench.sim_upstream",
        "--port",
        str(port),
        "--max-seconds",
        str(HELPER_LIFETIME_SECONDS),
    ]
    proc = spawn("simulator", argv, cores={LOAD_CORE}, log_dir=log_dir)
    return _ready("simulator", proc, port, payloads.chat_body("bench-model"))


def start_sse(log_dir: Path) -> Server:
    """The SSE upstream (``bench/sse_upstream.py``), pinned to the load core."""
    port = free_port()
    argv = [
        *_python(),
        "bench.sse_upstream",
        "--port",
        str(port),
        "--max-seconds",
        str(HELPER_LIFETIME_SECONDS),
    ]
    proc = spawn("sse-upstream", argv, cores={LOAD_CORE}, log_dir=log_dir)
    return _ready("sse-upstream", proc, port, payloads.chat_body("bench-stream"))


def start_floor(log_dir: Path, upstream: Server, sse: Server) -> Server:
    """The floor proxy on the router core: ``bench-stream`` to the SSE upstream, the rest to ``upstream``."""
    port = free_port()
    argv = [
        *_python(),
        "bench.floor",
        "--port",
        str(port),
        "--route",
        f"*={upstream.url}/v1",
        "--route",
        f"bench-stream={sse.url}/v1",
    ]
    proc = spawn("floor", argv, cores={ROUTER_CORE}, log_dir=log_dir)
    return _ready("floor", proc, port, payloads.chat_body("bench-model"))


def router_config(
    port: int, upstream_url: str, sse_url: str, *, strategy: str = DEFAULT_STRATEGY
) -> str:
    """The router's TOML: every tier served by ``upstream``; ``bench-stream`` by the SSE upstream;
    ``model: "auto"`` decided by ``strategy``.

    ``bench-stream`` is a lower-priority second endpoint of ``deep``: tier traffic (and ``auto``,
    whatever tier it picks) goes to ``upstream``, and streams name ``bench-stream`` directly, the
    same no-routing path as ``model: "fast"``.
    """
    return f"""\
[server]
host = "127.0.0.1"
port = {port}
[[models.fast]]
name = "bench-model"
base_url = "{upstream_url}/v1"
max_tokens = 256
[[models.balanced]]
name = "bench-balanced"
base_url = "{upstream_url}/v1"
max_tokens = 256
[[models.deep]]
name = "bench-deep"
base_url = "{upstream_url}/v1"
max_tokens = 256
priority = 2
[[models.deep]]
name = "bench-stream"
base_url = "{sse_url}/v1"
max_tokens = 256
priority = 1
[routing]
strategy = "{strategy}"
[health]
interval_seconds = 30
"""


def router_command() -> list[str]:
    """The installed ``octoroute`` console script next to this interpreter."""
    script = Path(sys.executable).parent / "octoroute"
    return [str(script)] if script.exists() else [*_python(), "octoroute"]


def start_router(
    log_dir: Path,
    upstream: Server,
    sse: Server,
    *,
    workers: int = 1,
    name: str = "router",
    env: dict[str, str] | None = None,
    strategy: str = DEFAULT_STRATEGY,
) -> Server:
    """``octoroute serve`` on the router core (both cores for ``workers`` > 1), answering;
    ``env`` replaces the environment it runs with."""
    port = free_port()
    config = log_dir / f"{name}.toml"
    config.write_text(router_config(port, upstream.url, sse.url, strategy=strategy))
    argv = [*router_command(), "serve", "--config", str(config), "--log-level", "warning"]
    if workers != 1:
        argv += ["--workers", str(workers)]
    cores = {ROUTER_CORE} if workers == 1 else {ROUTER_CORE, LOAD_CORE}
    proc = spawn(name, argv, cores=cores, log_dir=log_dir, env=env)
    return _ready(name, proc, port, payloads.chat_body("fast"))


def litellm_binary() -> Path | None:
    """A LiteLLM proxy installed in its own venv (``/tmp/litellm-venv``), if there is one."""
    for candidate in (Path("/tmp/litellm-venv/bin/litellm"), shutil.which("litellm")):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None


def start_litellm(log_dir: Path, upstream: Server, sse: Server) -> Server:
    """LiteLLM's proxy as an optional peer, configured with the same two upstreams."""
    binary = litellm_binary()
    if binary is None:
        raise Missing(
            "LiteLLM is not installed (optional peer); to include it: python3 -m venv "
            "/tmp/litellm-venv && /tmp/litellm-venv/bin/pip install 'litellm[proxy]'"
        )
    port = free_port()
    config = log_dir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: bench-model\n    litellm_params:\n      model: openai/bench-model\n"
        f"      api_base: {upstream.url}/v1\n      api_key: none\n"
        f"  - model_name: bench-stream\n    litellm_params:\n      model: openai/bench-stream\n"
        f"      api_base: {sse.url}/v1\n      api_key: none\n"
        "litellm_settings:\n  telemetry: false\n  drop_params: true\n"
    )
    argv = [
        str(binary),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    # No network at start-up (the cost map ships with the package), no telemetry.
    # Loopback only, so no master key (LiteLLM refuses to start without one otherwise).
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
    }
    proc = spawn("litellm", argv, cores={ROUTER_CORE}, log_dir=log_dir, env=env)
    server = Server("litellm", proc, port)
    try:
        wait_for_port(proc, port, timeout=90.0)
        server.ready_seconds = wait_answering(server, payloads.chat_body("bench-model"), 60.0)
    except BaseException:
        proc.stop()
        raise
    return server
