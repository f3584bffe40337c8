"""``octoroute demo``: the router in front of a simulated fleet, with examples to paste.

Everything runs in one process on loopback: five simulated model servers (two fast replicas, one
balanced that also plays the router model, one deep, one embedding model) and the router. Ctrl-C stops it all.
It also prints the dashboard's address (``/ui/``), where each example's request shows up.

Every printed example runs as printed on the machine the demo runs on (a test runs each against
a running demo): the ``curl`` ones need only curl, and the openai SDK one is printed with the
interpreter running the demo, and only when that interpreter has the ``openai`` package
(``make demo`` installs it: the ``demo`` extra); otherwise the demo says how to get it.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
from typing import NamedTuple

from octoroute.config import parse_config
from octoroute.observability.logging import configure_logging
from octoroute.server import serve
from octoroute.simulator import demo_fleet, fleet_config_toml

DEFAULT_PORT = 8080
"""Where ``octoroute demo`` and ``make demo`` listen unless told ``--port`` / ``PORT=``."""


class Example(NamedTuple):
    """One runnable example: what it shows, and the shell command (continued lines and all)."""

    title: str
    command: str


def _curl(url: str, path: str, body: str, *, stream: bool = False) -> str:
    flags = "-sN" if stream else "-s"
    return f"curl {flags} {url}{path} -H 'Content-Type: application/json' \\\n  -d '{body}'"


def _chat_body(text: str, *, stream: bool = False) -> str:
    streamed = '"stream": true, ' if stream else ""
    return f'{{"model": "auto", {streamed}"messages": [{{"role": "user", "content": "{text}"}}]}}'


def sdk_python() -> str | None:
    """The interpreter to print the openai SDK example with: this one, when it has ``openai``."""
    return sys.executable if importlib.util.find_spec("openai") is not None else None


def example_list(url: str, python: str | None) -> list[Example]:
    """The examples for a router at ``url``; the SDK one run by ``python`` (``None``: left out)."""
    found = [
        Example(
            "Ask it something; the answer says which tier and model served it:",
            _curl(url, "/v1/chat/completions", _chat_body("hi there!")),
        ),
        Example(
            "Stream an answer (a hard question goes to the deep tier):",
            _curl(
                url,
                "/v1/chat/completions",
                _chat_body("Prove that there are infinitely many primes.", stream=True),
                stream=True,
            ),
        ),
        Example(
            "See why a prompt goes where it goes, without generating:",
            _curl(url, "/route", _chat_body("Design a rate limiter for a multi-region API")),
        ),
        Example(
            'Embed text with the embedding model (sim-embed; "auto" picks it too):',
            _curl(
                url,
                "/v1/embeddings",
                '{"model": "sim-embed", "input": ["first document", "second document"]}',
            ),
        ),
    ]
    if python is not None:
        # Double quotes around the program, single quotes inside it: nothing in it that a
        # shell expands in double quotes ($, `, \, !), so it pastes as it reads.
        program = (
            f"from openai import OpenAI; c = OpenAI(base_url='{url}/v1', api_key='none'); \\\n"
            "print(c.chat.completions.create(model='auto', messages=[{'role': 'user', "
            "'content': 'Write a Python function that reverses a list'}])"
            ".choices[0].message.content)"
        )
        found.append(Example("With the openai SDK:", f'{shlex.quote(python)} -c "{program}"'))
    found.append(
        Example(
            "What placement sees of each instance (the two fast replicas have 4 slots each: "
            "in_flight,\nmax_concurrent, the queue, affinity_share):",
            f"curl -s {url}/models",
        )
    )
    return found


def dashboard_url(url: str) -> str:
    """Where the router at ``url`` serves its dashboard (``GET /ui/``)."""
    return f"{url}/ui/"


def examples(url: str, python: str | None = None) -> str:
    """The text printed once the demo listens: every example of :func:`example_list`."""
    lines = [
        "",
        f"octoroute demo is running at {url} (strategy and fleet: simulated, on this machine).",
    ]
    for example in example_list(url, python):
        lines += ["", example.title, ""]
        lines += [f"  {line}" for line in example.command.splitlines()]
    if python is None:
        lines += [
            "",
            "To try the openai SDK too: pip install openai (make demo installs it), then run the",
            "demo again for an example that uses it.",
        ]
    lines += [
        "",
        f"Dashboard (the fleet, the traffic, every routing decision, a playground): {dashboard_url(url)}",
        "",
        f"Also: {url}/v1/models  {url}/health  {url}/metrics",
        "Press Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


async def run_demo(
    *, port: int = DEFAULT_PORT, strategy: str = "learned", log_level: str = "info"
) -> None:
    """Start the simulated fleet and the router; return after Ctrl-C (or SIGTERM)."""
    fleet = demo_fleet()
    python = sdk_python()
    async with fleet:
        config = parse_config(
            fleet_config_toml(fleet, strategy=strategy, host="127.0.0.1", port=port),
            source="<demo>",
        )
        configure_logging(log_level, config.observability.log_format)

        def ready(url: str) -> None:
            print(examples(url, python), flush=True)

        await serve(config, on_ready=ready)
