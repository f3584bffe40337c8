"""The ``octoroute`` command as a user runs it: real processes, exit codes, stderr, signals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from octoroute import __version__
from octoroute.config.template import TEMPLATE
from octoroute.enums import Kind
from octoroute.simulator import Behaviour, SimulatedFleet, SimulatedModel, fleet_config_toml
from tests.misbehaving import RawServer, raw_server, read_request, response

OCTOROUTE = [sys.executable, "-m", "octoroute"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion with a deadline."""
    return subprocess.run(
        [*OCTOROUTE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_version_prints_the_package_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"octoroute {__version__}"


def test_config_without_output_prints_the_template() -> None:
    result = run_cli("config")
    assert result.returncode == 0
    assert result.stdout == TEMPLATE


def test_config_output_writes_once_and_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    first = run_cli("config", "-o", str(target))
    assert first.returncode == 0, first.stderr
    assert target.read_text() == TEMPLATE
    assert "octoroute --config" in first.stderr

    target.write_text("# mine\n")
    second = run_cli("config", "-o", str(target))
    assert second.returncode == 2
    assert "already exists" in second.stderr
    assert target.read_text() == "# mine\n"


def test_config_output_into_a_missing_directory_fails_cleanly(tmp_path: Path) -> None:
    result = run_cli("config", "-o", str(tmp_path / "nope" / "config.toml"))
    assert result.returncode == 2
    assert "cannot write" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_summarises_the_template_and_exits_1_naming_each_placeholder(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(TEMPLATE)
    result = run_cli("check", "--config", str(path))
    assert result.returncode == 1, result.stderr
    for name in ("your-8b-model", "your-30b-model", "your-120b-model", "learned"):
        assert name in result.stdout
    problems = [line.strip() for line in result.stderr.splitlines() if line.startswith("  models.")]
    assert [problem.split(":")[0] for problem in problems] == [
        "models.fast[0].base_url",
        "models.balanced[0].base_url",
        "models.deep[0].base_url",
    ]
    assert f"{path}: 3 placeholders left" in result.stderr
    assert f"octoroute simulate --config {path}" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_passes_the_template_once_it_names_real_hosts(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(TEMPLATE.replace("your-server", "192.168.1.20"))
    result = run_cli("check", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_check_lists_every_problem_with_exit_code_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        TEMPLATE.replace("weight = 1.0", "weight = 0", 1).replace("priority = 1", "prority = 1", 1)
    )
    result = run_cli("check", "--config", str(path))
    assert result.returncode == 2
    assert "models.fast[0].weight" in result.stderr
    assert "prority" in result.stderr
    assert "priority" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_serving_a_missing_config_exits_2_without_traceback(tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "absent.toml"))
    assert result.returncode == 2
    assert "absent.toml" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_rejects_an_unknown_log_level(tmp_path: Path, fleet: SimulatedFleet) -> None:
    path = tmp_path / "config.toml"
    path.write_text(fleet_config_toml(fleet, strategy="rule"))
    result = run_cli("serve", "--config", str(path), "--log-level", "loud")
    assert result.returncode == 2
    assert "log level" in result.stderr


class ServerProcess:
    """An ``octoroute serve`` child process and the JSON log lines it wrote."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, object]] = []
        self.url = ""

    async def read_until(self, event: str, timeout: float = 20.0) -> dict[str, object]:
        """Read stderr log lines until one whose event is ``event``."""
        assert self.process.stderr is not None
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.process.stderr.readline()
                if not raw:
                    raise AssertionError(f"process exited before logging {event!r}: {self.lines}")
                try:
                    line: dict[str, object] = json.loads(raw)
                except json.JSONDecodeError:
                    raise AssertionError(f"not a JSON log line: {raw!r}") from None
                self.lines.append(line)
                if line.get("event") == event:
                    return line


@asynccontextmanager
async def serve_process(config_path: Path, *extra: str) -> AsyncIterator[ServerProcess]:
    """Start ``octoroute serve`` on an ephemeral port and wait until it listens."""
    process = await asyncio.create_subprocess_exec(
        *OCTOROUTE,
        "serve",
        "--config",
        str(config_path),
        "--port",
        "0",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    server = ServerProcess(process)
    try:
        listening = await server.read_until("listening")
        server.url = str(listening["url"])
        yield server
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


def _json_config(fleet: SimulatedFleet, tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        fleet_config_toml(fleet, strategy="rule", extra='[observability]\nlog_format = "json"\n')
    )
    return path


async def test_sigterm_lets_an_in_flight_request_finish(
    tmp_path: Path, fleet: SimulatedFleet
) -> None:
    deep = fleet.deep[0]
    deep.behaviour.latency = 1.0
    async with serve_process(_json_config(fleet, tmp_path)) as server:
        async with aiohttp.ClientSession() as session:
            pending = asyncio.ensure_future(
                session.post(
                    server.url + "/v1/chat/completions",
                    json={"model": "deep", "messages": [{"role": "user", "content": "slow"}]},
                )
            )
            await deep.wait_for_in_flight(1, timeout=10)
            server.process.send_signal(signal.SIGTERM)
            response = await asyncio.wait_for(pending, 10)
            async with response:
                assert response.status == 200
                body = await response.json()
            assert body["choices"][0]["message"]["content"]
        assert await asyncio.wait_for(server.process.wait(), 15) == 0
        await server.read_until("stopped")
        assert any(line.get("event") == "shutting down" for line in server.lines)


async def test_serve_logs_one_json_line_per_request_without_the_prompt(
    tmp_path: Path, fleet: SimulatedFleet
) -> None:
    secret_prompt = "my bank password is hunter2"
    async with serve_process(_json_config(fleet, tmp_path)) as server:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                server.url + "/v1/chat/completions",
                json={"model": "fast", "messages": [{"role": "user", "content": secret_prompt}]},
                headers={"x-request-id": "req-cli-1"},
            ) as response,
        ):
            assert response.status == 200
        line = await server.read_until("request")
        server.process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(server.process.wait(), 15) == 0
    assert line["request_id"] == "req-cli-1"
    assert line["status"] == 200
    assert line["tier"] == "fast"
    assert line["strategy"] == "direct"
    assert line["endpoint"] in ("sim-fast-a", "sim-fast-b")
    assert line["level"] == "info"
    assert all(secret_prompt not in json.dumps(logged) for logged in server.lines)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _serve_quietly_and_collect_levels(
    path: Path, env: dict[str, str], *extra: str
) -> set[str]:
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        *OCTOROUTE,
        "serve",
        "--config",
        str(path),
        "--port",
        str(port),
        *extra,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )
    try:
        async with aiohttp.ClientSession() as session:
            async with asyncio.timeout(20):
                while True:
                    try:
                        async with session.get(f"http://127.0.0.1:{port}/health") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        await asyncio.sleep(0.05)
            async with session.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                json={"model": "auto", "messages": [{"role": "user", "content": "hello"}]},
            ) as response:
                assert response.status == 200
        process.send_signal(signal.SIGTERM)
        assert process.stderr is not None
        output = await asyncio.wait_for(process.stderr.read(), 15)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return {json.loads(raw)["level"] for raw in output.splitlines() if raw.strip()}


async def test_log_level_from_the_environment_applies(
    tmp_path: Path, fleet: SimulatedFleet
) -> None:
    levels = await _serve_quietly_and_collect_levels(
        _json_config(fleet, tmp_path), {"OCTOROUTE_LOG": "warning"}
    )
    assert "info" not in levels


async def test_log_level_flag_beats_the_environment(tmp_path: Path, fleet: SimulatedFleet) -> None:
    levels = await _serve_quietly_and_collect_levels(
        _json_config(fleet, tmp_path), {"OCTOROUTE_LOG": "warning"}, "--log-level", "debug"
    )
    assert {"info", "debug"} <= levels


async def _check_probe(config: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *OCTOROUTE,
        "check",
        "--config",
        str(config),
        "--probe",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode()


async def test_check_probe_suggests_each_endpoints_kind(tmp_path: Path) -> None:
    fleet = SimulatedFleet(
        fast=[
            SimulatedModel("o", behaviour=Behaviour(kind=Kind.OLLAMA)),
            SimulatedModel("p"),
        ],
        balanced=[SimulatedModel("l", behaviour=Behaviour(kind=Kind.LLAMACPP))],
        deep=[SimulatedModel("v", behaviour=Behaviour(kind=Kind.VLLM))],
    )
    path = tmp_path / "fleet.toml"
    async with fleet:
        path.write_text(fleet_config_toml(fleet))
        code, out = await _check_probe(path)

    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  models.")}
    assert code == 0, out
    assert "looks like ollama (GET /api/version answered version" in lines["models.fast[0]"]
    assert lines["models.fast[0]"].endswith('set kind = "ollama"')
    assert 'kind = "openai" fits' in lines["models.fast[1]"]
    assert lines["models.balanced[0]"].endswith('set kind = "llamacpp"')
    assert lines["models.deep[0]"].endswith('set kind = "vllm"')


async def test_check_probe_exits_1_and_says_which_endpoint_is_unreachable(tmp_path: Path) -> None:
    fleet = SimulatedFleet(
        fast=[SimulatedModel("f")], balanced=[SimulatedModel("b")], deep=[SimulatedModel("d")]
    )
    path = tmp_path / "fleet.toml"
    async with fleet:
        path.write_text(fleet_config_toml(fleet))
        await fleet.deep[0].stop()
        code, out = await _check_probe(path)

    assert code == 1
    deep = next(line for line in out.splitlines() if line.startswith("  models.deep[0]"))
    assert "unreachable (" in deep
    assert "cannot connect" in deep


async def test_check_probe_lists_models_flags_a_missing_name_and_an_unreachable_endpoint(
    tmp_path: Path,
) -> None:
    vllm = Behaviour(kind=Kind.VLLM, context_window=32768)
    fleet = SimulatedFleet(
        fast=[SimulatedModel("sim-ok")],
        balanced=[SimulatedModel("qwen3-235b-a22b-instruct", behaviour=vllm)],
        deep=[SimulatedModel("sim-gone")],
    )
    path = tmp_path / "fleet.toml"
    async with fleet:
        text = fleet_config_toml(fleet).replace(
            'name = "qwen3-235b-a22b-instruct"', 'name = "qwen3-235b-instruct"'
        )
        path.write_text(text)
        await fleet.deep[0].stop()
        code, out = await _check_probe(path)

    assert code == 1, out
    blocks = _endpoint_blocks(out)
    assert blocks["models.fast[0]"][1:] == ["serves 1 model (GET /v1/models): sim-ok"]
    balanced = blocks["models.balanced[0]"]
    assert balanced[0].endswith('kind = "vllm"')
    assert balanced[1] == "serves 1 model (GET /v1/models): qwen3-235b-a22b-instruct"
    assert balanced[2] == (
        "MISSING: 'qwen3-235b-instruct' is not among the models it serves; "
        "did you mean 'qwen3-235b-a22b-instruct'?"
    )
    assert balanced[3] == "context window 32768 tokens (the server's own), model loaded"
    deep = blocks["models.deep[0]"]
    assert "unreachable (" in deep[0]
    assert len(deep) == 1
    assert out.rstrip().endswith(
        "3 endpoints probed: 1 ready, 1 unreachable, 1 not serving the configured model name."
    )


async def test_check_probe_reads_ollamas_tags_and_matches_names_as_ollama_does(
    tmp_path: Path,
) -> None:
    ollama = Behaviour(kind=Kind.OLLAMA, context_window=8192)
    fleet = SimulatedFleet(
        fast=[SimulatedModel("Llama3.1", behaviour=ollama)],
        balanced=[SimulatedModel("b")],
        deep=[SimulatedModel("d")],
    )
    path = tmp_path / "fleet.toml"
    async with fleet:
        path.write_text(fleet_config_toml(fleet).replace('name = "Llama3.1"', 'name = "llama3.1"'))
        code, out = await _check_probe(path)

    assert code == 0, out
    fast = _endpoint_blocks(out)["models.fast[0]"]
    assert fast[1] == "serves 1 model (GET /api/tags): llama3.1:latest"
    assert fast[2] == "context window 8192 tokens (the server's own), model loaded"
    assert out.rstrip().endswith("3 endpoints probed: 3 ready.")


async def test_check_probe_shows_a_servers_models_once_for_endpoints_sharing_it(
    tmp_path: Path,
) -> None:
    fleet = SimulatedFleet(fast=[SimulatedModel("shared")], balanced=[SimulatedModel("b")], deep=[])
    path = tmp_path / "fleet.toml"
    async with fleet:
        text = fleet_config_toml(fleet)
        shared = fleet.fast[0].base_url
        path.write_text(
            text + f'\n[[models.deep]]\nname = "other"\nbase_url = "{shared}"\nmax_tokens = 64\n'
        )
        code, out = await _check_probe(path)

    assert code == 1, out  # the simulator answers any name, but lists only its own
    deep = _endpoint_blocks(out)["models.deep[0]"]
    assert deep[1:] == [
        "serves the models listed for models.fast[0]",
        "MISSING: 'other' is not among the models it serves",
    ]


async def test_check_probe_exits_1_for_a_web_page_where_the_api_should_be(tmp_path: Path) -> None:
    # A first-run mistake: base_url names the port of a web app (a chat UI, a login page) that
    # answers every path with its HTML page and status 200.
    page = b"<!doctype html><html><head><title>Open WebUI</title></head><body></body></html>"

    async def web_app(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        while await read_request(reader, server) is not None:
            writer.write(response(page, content_type="text/html; charset=utf-8"))
            await writer.drain()

    fleet = SimulatedFleet(fast=[SimulatedModel("f")], balanced=[SimulatedModel("b")], deep=[])
    path = tmp_path / "fleet.toml"
    async with fleet, raw_server(web_app) as ui:
        path.write_text(
            fleet_config_toml(fleet)
            + f'\n[[models.deep]]\nname = "d"\nbase_url = "{ui.base_url}"\nmax_tokens = 64\n'
        )
        code, out = await _check_probe(path)

    assert code == 1, out
    deep = _endpoint_blocks(out)["models.deep[0]"]
    assert deep[1] == (
        "NOT AN OPENAI API: GET /v1/models answered 79 bytes starting '<!doctype html><html>"
        "<head><title>Open W'..., not JSON; does base_url name the model server's API (its "
        "port, then /v1)?"
    )
    assert out.rstrip().endswith(
        "3 endpoints probed: 2 ready, 1 not answering as an OpenAI-compatible API."
    )


def _endpoint_blocks(out: str) -> dict[str, list[str]]:
    """The probe report by endpoint: its line, then its indented detail lines (stripped)."""
    blocks: dict[str, list[str]] = {}
    current: list[str] = []
    for line in out.splitlines():
        if line.startswith(("  models.", "  embeddings[")):
            current = blocks.setdefault(line.split()[0], [])
            current.append(line.strip())
        elif line.startswith("      "):
            current.append(line.strip())
    return blocks
