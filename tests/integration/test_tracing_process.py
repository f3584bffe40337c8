"""Tracing as ``octoroute serve`` runs it: switched on and off by the OTEL_* variables alone.

Each test runs the real command in a child process (``python -c`` around ``cli.main``, which on
its way out writes the names of the OpenTelemetry modules it had loaded), in front of the
simulated fleet, and, where spans are exported, a fake OTLP/HTTP collector on 127.0.0.1 that
decodes what it receives with OpenTelemetry's own protobuf classes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from octoroute.simulator import SimulatedFleet, fleet_config_toml
from tests.harness import served, wait_until

CHILD: str = """
import atexit, json, sys

if sys.argv[1] == "without-otel":  # as if the otel extra were not installed
    class WithoutTheExtra:
        def find_spec(self, name, path=None, target=None):
            if name.startswith(("opentelemetry.sdk", "opentelemetry.exporter")):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, WithoutTheExtra())


def loaded() -> None:
    names = sorted(name for name in sys.modules if name.split(".")[0] == "opentelemetry")
    print(json.dumps({"event": "exit", "opentelemetry_modules": names}), file=sys.stderr)


atexit.register(loaded)
from octoroute.cli import main

sys.exit(main(sys.argv[2:]))
"""
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"
UNREACHABLE_CONFIG = "".join(
    [
        '[server]\nhost = "127.0.0.1"\nport = 0\n[routing]\nstrategy = "rule"\n',
        *(
            f'[[models.{tier}]]\nname = "{tier}-model"\nbase_url = "http://127.0.0.1:9/v1"\n'
            "max_tokens = 64\n"
            for tier in ("fast", "balanced", "deep")
        ),
    ]
)
"""A valid configuration; the router it describes is refused before it would listen."""
CHAT = {"model": "deep", "messages": [{"role": "user", "content": "hello"}]}


class Collector:
    """A fake OTLP/HTTP collector: ``POST /v1/traces`` with protobuf, every span kept."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.services: set[str] = set()
        self.url = ""

    async def receive(self, request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    self.services.add(attribute.value.string_value)
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(scope_spans.spans)
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    def named(self, name: str) -> list[Span]:
        return [span for span in self.spans if span.name == name]


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    found = Collector()
    app = web.Application()
    app.router.add_post("/v1/traces", found.receive)
    async with served(app) as url:
        found.url = url
        yield found


class Child:
    """The child router: its URL, its JSON log lines, and (once it exited) its stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []
        self.url = ""
        self.stdout = ""

    async def read_until(self, event: str) -> dict[str, Any]:
        assert self.process.stderr is not None
        async with asyncio.timeout(20):
            while True:
                raw = await self.process.stderr.readline()
                if not raw:
                    raise AssertionError(f"the router exited before {event!r}: {self.lines}")
                with contextlib.suppress(json.JSONDecodeError):
                    self.lines.append(json.loads(raw))
                    if self.lines[-1].get("event") == event:
                        return self.lines[-1]

    def logged(self, event: str) -> dict[str, Any]:
        (line,) = [line for line in self.lines if line.get("event") == event]
        return line


def config_file(fleet: SimulatedFleet, directory: Path) -> Path:
    path = directory / "config.toml"
    extra = '[observability]\nlog_format = "json"\n'
    path.write_text(fleet_config_toml(fleet, strategy="rule", extra=extra))
    return path


def environment(**variables: str) -> dict[str, str]:
    """The test's environment without any OTEL_* variable of its own, plus ``variables``."""
    kept = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    # The exporter speaks to the collector on 127.0.0.1: never through a proxy.
    return kept | {"NO_PROXY": "127.0.0.1,localhost", **variables}


@asynccontextmanager
async def child_router(
    config: Path, env: dict[str, str], *args: str, mode: str = "installed"
) -> AsyncIterator[Child]:
    """``octoroute serve`` on ``config``; on the way out SIGTERM, then all of its output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        mode,
        "serve",
        "--config",
        str(config),
        "--port",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    child = Child(process)
    try:
        child.url = str((await child.read_until("listening"))["url"])
        yield child
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 30)
        child.stdout = out.decode()
        for raw in err.splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                child.lines.append(json.loads(raw))
    assert process.returncode == 0, child.lines[-5:]


async def chat(session: aiohttp.ClientSession, child: Child) -> None:
    headers = {"traceparent": TRACEPARENT, "tracestate": "vendor=1"}
    async with session.post(child.url + "/v1/chat/completions", json=CHAT, headers=headers) as a:
        assert a.status == 200, await a.text()


@pytest.mark.parametrize(
    "variables",
    [
        pytest.param({}, id="no OTEL variable"),
        pytest.param(
            {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "collector"},
            id="OTEL_SDK_DISABLED",
        ),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "collector"},
            id="OTEL_TRACES_EXPORTER=none",
        ),
    ],
)
async def test_tracing_off_loads_no_opentelemetry_and_passes_the_client_trace_through(
    variables: dict[str, str],
    tmp_path: Path,
    fleet: SimulatedFleet,
    session: aiohttp.ClientSession,
    collector: Collector,
) -> None:
    env = environment(**{k: collector.url if v == "collector" else v for k, v in variables.items()})
    async with child_router(config_file(fleet, tmp_path), env) as child:
        await chat(session, child)
        await chat(session, child)

    assert child.logged("exit")["opentelemetry_modules"] == []
    assert not any(line.get("event") == "tracing on" for line in child.lines)
    assert [r.headers["traceparent"] for r in fleet.deep[0].chat_requests] == [TRACEPARENT] * 2
    assert fleet.deep[0].chat_requests[0].headers["tracestate"] == "vendor=1"
    assert collector.spans == []


async def test_an_otlp_endpoint_exports_every_span_to_the_collector_while_serving(
    tmp_path: Path, fleet: SimulatedFleet, session: aiohttp.ClientSession, collector: Collector
) -> None:
    env = environment(
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
        OTEL_TRACES_EXPORTER="otlp,console",
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    async with child_router(config_file(fleet, tmp_path), env) as child:
        await chat(session, child)
        # Exported in the background while the router keeps serving, not only at exit.
        await wait_until(
            lambda: bool(collector.named("POST /v1/chat/completions")),
            timeout=10,
            what="the request span at the collector",
        )
        on = child.logged("tracing on")

    assert on["exporters"] == ["otlp", "console"]
    assert collector.services == {"octoroute"}
    (request,) = collector.named("POST /v1/chat/completions")
    (routing,) = collector.named("routing")
    (attempt,) = collector.named("upstream attempt")
    assert request.trace_id.hex() == TRACE_ID
    assert request.parent_span_id.hex() == TRACEPARENT.split("-")[2]
    assert routing.parent_span_id == attempt.parent_span_id == request.span_id
    (upstream,) = fleet.deep[0].chat_requests
    _, trace, parent, _ = upstream.headers["traceparent"].split("-")
    assert (trace, parent) == (TRACE_ID, attempt.span_id.hex())
    assert upstream.headers["tracestate"] == "vendor=1"
    assert child.logged("exit")["opentelemetry_modules"] != []
    # The console exporter wrote the same spans on stdout, one JSON document each.
    assert '"name": "POST /v1/chat/completions"' in child.stdout
    assert TRACE_ID in child.stdout


async def test_with_workers_the_serving_processes_export_their_spans(
    tmp_path: Path, fleet: SimulatedFleet, session: aiohttp.ClientSession, collector: Collector
) -> None:
    env = environment(OTEL_EXPORTER_OTLP_ENDPOINT=collector.url, OTEL_BSP_SCHEDULE_DELAY="50")
    async with child_router(config_file(fleet, tmp_path), env, "--workers", "2") as child:
        await wait_until_healthy(session, child)
        for _ in range(6):
            await chat(session, child)
        await wait_until(
            lambda: len(collector.named("POST /v1/chat/completions")) == 6,
            timeout=10,
            what="six request spans at the collector",
        )
    assert collector.services == {"octoroute"}
    assert len(collector.named("upstream attempt")) == 6


async def wait_until_healthy(session: aiohttp.ClientSession, child: Child) -> None:
    """With ``--workers`` the parent logs ``listening`` before its workers bind the port."""
    for _ in range(200):
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(child.url + "/health") as answer:
                if answer.status == 200:
                    return
        await asyncio.sleep(0.05)
    raise AssertionError("the workers never answered /health")


async def test_without_the_extra_the_router_warns_and_serves_untraced(
    tmp_path: Path, fleet: SimulatedFleet, session: aiohttp.ClientSession, collector: Collector
) -> None:
    env = environment(OTEL_EXPORTER_OTLP_ENDPOINT=collector.url, OTEL_BSP_SCHEDULE_DELAY="50")
    async with child_router(config_file(fleet, tmp_path), env, mode="without-otel") as child:
        await chat(session, child)

    (warning,) = [line for line in child.lines if "otel extra" in str(line.get("event"))]
    assert warning["level"] == "warning"
    assert "pip install 'octoroute[otel]'" in warning["event"]
    assert "opentelemetry.exporter" in warning["missing"]
    assert fleet.deep[0].chat_requests[0].headers["traceparent"] == TRACEPARENT
    assert collector.spans == []


@pytest.mark.parametrize(
    ("variables", "words"),
    [
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            },
            ("OTEL_EXPORTER_OTLP_PROTOCOL='grpc'", "http/protobuf"),
        ),
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, ("'jaeger'", "'otlp'")),
    ],
)
@pytest.mark.parametrize("workers", ["1", "2"])
def test_what_tracing_cannot_do_stops_the_start_with_what_to_set(
    variables: dict[str, str], words: tuple[str, ...], workers: str, tmp_path: Path
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(UNREACHABLE_CONFIG)
    result = subprocess.run(
        [sys.executable, "-m", "octoroute", "serve", "--config", str(path), "--workers", workers],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment(**variables),
    )
    assert result.returncode == 2
    for word in words:
        assert word in result.stderr
