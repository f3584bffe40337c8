"""``octoroute simulate --config FILE`` as a user runs it: a real process serving a real config's
local endpoints on their own ports, queried over sockets by the openai SDK, httpx and the router
itself; the endpoints elsewhere are listed, not served; Ctrl-C stops it cleanly."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from openai import AsyncOpenAI

from octoroute.config import load_config
from tests.harness import running_router

OCTOROUTE = [sys.executable, "-m", "octoroute"]
READY_LINE = "Press Ctrl-C to stop the simulated servers."


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def two_servers_config(ollama_port: int, vllm_port: int) -> str:
    """Three tiers and an embedding model on two local servers, and one deep replica on a host
    elsewhere; the deep model needs a key that is not set."""
    return f"""
[server]
host = "127.0.0.1"
port = 0

[[models.fast]]
name = "llama3.1:8b"
base_url = "http://localhost:{ollama_port}/v1"
max_tokens = 512
kind = "ollama"

[[models.balanced]]
name = "qwen3:32b"
base_url = "http://127.0.0.1:{ollama_port}/v1"
max_tokens = 512
kind = "ollama"
context_window = 8192

[[models.deep]]
name = "openai/gpt-oss-120b"
base_url = "http://127.0.0.1:{vllm_port}/v1"
max_tokens = 512
kind = "vllm"
api_key_env = "SIMULATE_TEST_UNSET_KEY"

[[models.deep]]
name = "openai/gpt-oss-120b"
base_url = "http://gpu-far-away:8000/v1"
max_tokens = 512

[[embeddings]]
name = "nomic-embed-text"
base_url = "http://127.0.0.1:{ollama_port}/v1"

[routing]
strategy = "rule"
"""


@dataclass
class Simulation:
    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)

    async def read_until(self, text: str, timeout: float = 20.0) -> None:
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            while not any(text in line for line in self.lines):
                raw = await self.process.stdout.readline()
                if not raw:
                    raise AssertionError(f"simulate exited before {text!r}: {self.lines}")
                self.lines.append(raw.decode().rstrip("\n"))

    async def interrupt(self) -> int:
        """Ctrl-C, then the exit code, read to the end of its output."""
        self.process.send_signal(signal.SIGINT)
        stdout, _ = await asyncio.wait_for(self.process.communicate(), 20)
        self.lines += stdout.decode().splitlines()
        assert self.process.returncode is not None
        return self.process.returncode


@asynccontextmanager
async def simulate(path: Path) -> AsyncIterator[Simulation]:
    process = await asyncio.create_subprocess_exec(
        *OCTOROUTE,
        "simulate",
        "--config",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield Simulation(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_simulate_serves_each_local_address_for_every_name_the_config_gives_it(
    tmp_path: Path,
) -> None:
    ollama_port, vllm_port = free_port(), free_port()
    path = tmp_path / "config.toml"
    path.write_text(two_servers_config(ollama_port, vllm_port))
    ollama_url, vllm_url = f"http://127.0.0.1:{ollama_port}", f"http://127.0.0.1:{vllm_port}"

    async with simulate(path) as simulation:
        await simulation.read_until(READY_LINE)
        printed = "\n".join(simulation.lines)
        async with httpx.AsyncClient(timeout=10) as http:
            tags = (await http.get(f"{ollama_url}/api/tags")).json()
            listed = (await http.get(f"{vllm_url}/v1/models")).json()
            unknown = await http.post(
                f"{ollama_url}/v1/chat/completions",
                json={"model": "mistral", "messages": [{"role": "user", "content": "hi"}]},
            )
        async with AsyncOpenAI(base_url=f"{ollama_url}/v1", api_key="x", max_retries=0) as sdk:
            answer = await sdk.chat.completions.create(
                model="qwen3:32b", messages=[{"role": "user", "content": "hi"}]
            )
            vectors = await sdk.embeddings.create(model="nomic-embed-text", input=["a", "b"])
        # The router, on the very same file, reaches the simulated servers.
        config = load_config(path, environ={"SIMULATE_TEST_UNSET_KEY": "k"})
        async with (
            running_router(config) as router,
            AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client,
        ):
            routed = {
                tier: await client.chat.completions.create(
                    model=tier, messages=[{"role": "user", "content": "hello"}]
                )
                for tier in ("fast", "balanced")
            }
            streamed = await client.chat.completions.create(
                model="deep", messages=[{"role": "user", "content": "hello"}], stream=True
            )
            deep_text = "".join(
                [chunk.choices[0].delta.content or "" async for chunk in streamed if chunk.choices]
            )
        code = await simulation.interrupt()

    assert f"Simulated model servers for {path}:" in printed
    assert (
        f"  http://127.0.0.1:{ollama_port}  ollama  llama3.1:8b (models.fast[0]), "
        "qwen3:32b (models.balanced[0]), nomic-embed-text (embeddings[0])"
    ) in printed
    assert f"  {vllm_url}  vllm  openai/gpt-oss-120b (models.deep[0])" in printed
    assert (
        "  models.deep[1]  http://gpu-far-away:8000/v1: gpu-far-away is not this machine"
    ) in printed
    assert f"octoroute --config {path}" in printed

    assert [model["name"] for model in tags["models"]] == [
        "llama3.1:8b",
        "qwen3:32b",
        "nomic-embed-text:latest",
    ]
    assert [model["id"] for model in listed["data"]] == ["openai/gpt-oss-120b"]
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "model_not_found"
    assert "'llama3.1:8b'" in unknown.json()["error"]["message"]
    assert (answer.choices[0].message.content or "").startswith("[balanced · qwen3:32b]")
    assert len(vectors.data) == 2

    assert (routed["fast"].choices[0].message.content or "").startswith("[fast · llama3.1:8b]")
    assert routed["balanced"].model == "qwen3:32b"
    assert deep_text.startswith("[deep · openai/gpt-oss-120b]")

    assert code == 0
    assert simulation.lines[-1] == "Stopped."


async def test_simulate_reports_an_address_in_use_and_serves_the_others(tmp_path: Path) -> None:
    taken, free = free_port(), free_port()
    path = tmp_path / "config.toml"
    path.write_text(two_servers_config(taken, free))
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", taken))
        occupant.listen()
        async with simulate(path) as simulation:
            await simulation.read_until(READY_LINE)
            async with httpx.AsyncClient(timeout=10) as http:
                served = await http.get(f"http://127.0.0.1:{free}/v1/models")
            code = await simulation.interrupt()

    printed = "\n".join(simulation.lines)
    assert f"  http://127.0.0.1:{taken}  not simulated: cannot listen (" in printed
    assert "if a real server runs there, it answers instead" in printed
    assert served.status_code == 200
    assert code == 0


async def test_simulate_exits_1_when_no_endpoint_is_on_this_machine(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    text = two_servers_config(1, 2).replace("127.0.0.1:", "gpu-1:").replace("localhost:", "gpu-2:")
    path.write_text(text)
    async with simulate(path) as simulation:
        stdout, _ = await asyncio.wait_for(simulation.process.communicate(), 20)

    assert simulation.process.returncode == 1
    assert "Nothing to simulate: no endpoint of this file is on this machine." in stdout.decode()
    assert "models.fast[0]  http://gpu-2:1/v1: gpu-2 is not this machine" in stdout.decode()


async def test_simulate_refuses_an_invalid_file_with_exit_code_2(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[server]\nhost = 1\n")
    async with simulate(path) as simulation:
        _, stderr = await asyncio.wait_for(simulation.process.communicate(), 20)

    assert simulation.process.returncode == 2
    assert "server.host" in stderr.decode()
    assert "Traceback" not in stderr.decode()


async def test_sigterm_stops_the_simulated_servers_too(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "config.toml"
    path.write_text(two_servers_config(port, free_port()))
    async with simulate(path) as simulation:
        await simulation.read_until(READY_LINE)
        async with AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0
        ) as sdk:
            listed = [model.id async for model in sdk.models.list()]
        simulation.process.terminate()
        stdout, _ = await asyncio.wait_for(simulation.process.communicate(), 20)

    assert "llama3.1:8b" in listed
    assert simulation.process.returncode == 0
    assert stdout.decode().rstrip().endswith("Stopped.")
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(timeout=5) as http:
            await http.get(f"http://127.0.0.1:{port}/v1/models")
