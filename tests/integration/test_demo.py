"""``octoroute demo --port N`` and ``make demo PORT=N`` as a newcomer runs them: every example the
demo prints is run as printed (by bash, with curl and the demo's own Python) against the running
demo, and must succeed with the answer it promises."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Final
from urllib.parse import urljoin

import httpx

from octoroute.cli import build_parser
from octoroute.demo import DEFAULT_PORT, example_list, examples, sdk_python

ROOT: Final = Path(__file__).resolve().parents[2]
READY_LINE: Final = "Press Ctrl-C to stop."
TIER_LABEL: Final = re.compile(r"^\[(fast|balanced|deep)( #\d)? · sim-")
DASHBOARD_LINE: Final = re.compile(r"^Dashboard \(.*\): (http://\S+/ui/)$", re.MULTILINE)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def printed_commands(text: str) -> list[str]:
    """The commands of the printed examples: each indented block after a blank line, continued
    lines kept (bash joins them as a user's shell would)."""
    commands: list[str] = []
    block: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("  "):
            block.append(line[2:])
        elif block:
            commands.append("\n".join(block))
            block = []
    return commands


async def run(command: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def check_answer(command: str, output: str) -> None:
    """The answer each example promises."""
    if command.startswith("curl -sN"):
        events = [line for line in output.splitlines() if line.startswith("data: ")]
        assert events[-1] == "data: [DONE]"
        chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-1]]
        text = "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
        )
        assert text.startswith("[deep · sim-gpt-oss-120b]"), text
    elif "/route" in command:
        assert json.loads(output)["tier"] in ("fast", "balanced", "deep")
    elif "/v1/embeddings" in command:
        assert len(json.loads(output)["data"]) == 2
    elif "/v1/chat/completions" in command:
        content = json.loads(output)["choices"][0]["message"]["content"]
        assert TIER_LABEL.match(content), content
    elif command.endswith("/models"):
        assert {entry["tier"] for entry in json.loads(output)["models"]} >= {"fast", "deep"}
    else:  # the openai SDK, printing the answer's text
        assert TIER_LABEL.match(output), output


async def fetch_dashboard(printed: str) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    """The printed dashboard page, and the state it reads: (status, content type, body) each."""
    found = DASHBOARD_LINE.search(printed)
    assert found, f"the demo printed no dashboard URL: {printed}"
    answers = []
    async with httpx.AsyncClient(timeout=10) as client:
        for url in (found[1], urljoin(found[1], "../admin/state")):
            response = await client.get(url)
            answers.append(
                (response.status_code, response.headers.get("content-type", ""), response.text)
            )
    return answers[0], answers[1]


async def test_every_example_the_demo_prints_runs_as_printed_on_the_port_asked_for() -> None:
    assert shutil.which("curl"), "the demo's examples use curl; install it (apt-get install curl)"
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "octoroute",
        "demo",
        "--port",
        str(port),
        "--log-level",
        "warning",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            while READY_LINE not in lines:
                raw = await process.stdout.readline()
                assert raw, f"the demo exited early: {lines}"
                lines.append(raw.decode().rstrip("\n"))
        printed = "\n".join(lines)
        commands = printed_commands(printed)
        results = [await run(command) for command in commands]
        dashboard = await fetch_dashboard(printed)
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), 40)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    url = f"http://127.0.0.1:{port}"
    assert f"octoroute demo is running at {url} " in printed
    assert len(commands) == len(example_list(url, sys.executable)) == 6
    assert any(command.startswith(sys.executable) for command in commands), "no SDK example"
    for command, (code, stdout, stderr) in zip(commands, results, strict=True):
        assert code == 0, f"{command}\nexit {code}: {stderr}"
        check_answer(command, stdout)
    assert (
        f"Dashboard (the fleet, the traffic, every routing decision, a playground): {url}/ui/\n"
        in printed
    )
    page, state = dashboard
    assert page[0] == 200, page
    assert page[1].startswith("text/html"), page
    assert "<title>octoroute dashboard</title>" in page[2]
    assert state[0] == 200, state
    served = [d for d in json.loads(state[2])["decisions"] if d["model"] == "auto" and d["tier"]]
    assert len(served) >= 3, "the examples' routed requests are not among the dashboard's decisions"
    assert process.returncode == 0


def test_without_the_openai_package_the_demo_says_how_to_get_it_instead_of_an_example() -> None:
    text = examples("http://127.0.0.1:8080", None)

    assert "openai import" not in text
    assert "pip install openai" in text
    assert len(printed_commands(text)) == 5
    assert sdk_python() == sys.executable  # the test venv has it, as make demo's does


def test_make_demo_passes_port_and_defaults_to_the_demos_own_port() -> None:
    assert shutil.which("make"), "make demo needs make"

    def demo_command(*variables: str) -> str:
        dry = subprocess.run(
            ["make", "--no-print-directory", "-n", "demo", *variables],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
            # Under `make test` the enclosing make's MAKEFLAGS/MAKELEVEL would add its own lines.
            env={
                k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")
            },
        )
        return dry.stdout.strip().splitlines()[-1]

    assert demo_command("PORT=9123") == ".venv/bin/octoroute demo --port 9123"
    assert demo_command() == f".venv/bin/octoroute demo --port {DEFAULT_PORT}"
    assert build_parser().parse_args(["demo"]).port == DEFAULT_PORT
