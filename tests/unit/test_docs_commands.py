"""The deployment and development docs stay true: their configs load, their commands parse.

Every fenced ``toml`` block of ``README.md``, ``docs/deployment.md`` and ``docs/development.md`` is
a complete configuration that must pass ``parse_config``; a block that shows only part of a file
is fenced as ``toml fragment`` and must still be valid TOML. Every ``octoroute ...`` command shown
in a ``sh`` or ``console`` block of those two docs and of ``deploy/README.md`` must be accepted by
the real argument parser (nothing is executed). The deploy files that embed a command (the
Dockerfile's ``CMD``, the systemd unit's ``ExecStart``) are held to the same parser, and to the
shutdown grace period.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from octoroute.cli import build_parser
from octoroute.config import parse_config
from octoroute.server import SHUTDOWN_GRACE_SECONDS

ROOT: Final = Path(__file__).resolve().parents[2]
TOML_DOCS: Final = (
    "README.md",
    "docs/configuration.md",
    "docs/deployment.md",
    "docs/development.md",
    "docs/routing.md",
    "docs/security.md",
    "docs/operations.md",
)
COMMAND_DOCS: Final = (
    "README.md",
    "docs/configuration.md",
    "docs/deployment.md",
    "docs/development.md",
    "docs/routing.md",
    "docs/performance.md",
    "docs/security.md",
    "docs/operations.md",
    "deploy/README.md",
    "docs/security.md",
    "docs/operations.md",
)
SHELL_LANGS: Final = frozenset({"sh", "shell", "bash", "console"})
CONTAINER_TOOLS: Final = frozenset({"docker", "podman"})
"""Commands whose arguments may contain an ``octoroute`` command run inside a container."""

_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_API_KEY_ENV = re.compile(r'^\s*api_key_env\s*=\s*"(?P<name>[^"]+)"', re.MULTILINE)
_OPERATORS: Final = frozenset({"|", "||", "&&", ";", "&", "(", ")"})
_REDIRECTS: Final = frozenset({">", ">>", "<", "2>", "&>", ">&"})


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its info string's words and its text."""

    doc: str
    index: int
    info: tuple[str, ...]
    body: str

    @property
    def lang(self) -> str:
        """The block's language, lowercase (``''`` when the fence names none)."""
        return self.info[0].lower() if self.info else ""

    @property
    def label(self) -> str:
        """How a failure names the block: the file and its ordinal among the file's blocks."""
        return f"{self.doc} block {self.index + 1} ({' '.join(self.info) or 'no language'})"


def blocks(doc: str) -> list[Block]:
    """The fenced blocks of ``doc`` (a path under the repository root), in document order.

    A missing file has none, so the README may be written later without breaking this test.
    """
    path = ROOT / doc
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    found = []
    for index, match in enumerate(_FENCE.finditer(text)):
        indent = len(match["indent"])
        body = "".join(line[indent:] for line in match["body"].splitlines(keepends=True))
        found.append(Block(doc, index, tuple(match["info"].split()), body))
    return found


def toml_blocks() -> list[Block]:
    """Every ``toml`` block of the docs whose configurations this test checks."""
    return [b for doc in TOML_DOCS for b in blocks(doc) if b.lang == "toml"]


# --- shell commands -----------------------------------------------------------------------------


def _logical_lines(block: Block) -> list[str]:
    """The command lines of a shell block, continuations joined.

    In ``console`` blocks only lines after a ``$`` prompt are commands (the rest is output);
    in ``sh`` blocks every line is.
    """
    lines: list[str] = []
    pending = ""
    for raw in block.body.splitlines():
        line = raw.rstrip()
        if not pending and block.lang == "console":
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    if pending:
        lines.append(pending)
    return [line for line in lines if line.strip()]


def _simple_commands(line: str) -> list[list[str]]:
    """The simple commands of one shell line: split at operators, redirections removed."""
    line = re.sub(r"(?<=\s)\d+(?=[<>])", "", line)  # 2>&1: the descriptor is not an argument
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands: list[list[str]] = [[]]
    skip_next = False
    for token in lexer:
        if skip_next:
            skip_next = False
        elif token in _OPERATORS:
            commands.append([])
        elif token in _REDIRECTS:
            skip_next = True
        else:
            commands[-1].append(token)
    return [command for command in commands if command]


def _is_octoroute(word: str) -> bool:
    return word.rsplit("/", 1)[-1] == "octoroute"


def _octoroute_argv(words: list[str], starts: frozenset[str]) -> list[str] | None:
    """The arguments after ``octoroute`` when ``words`` runs it, else ``None``.

    Leading ``sudo`` and ``VAR=value`` words are skipped. Inside ``docker``/``podman`` commands the
    container's command is the first ``octoroute`` word followed by one of ``starts`` (a subcommand
    or a top-level option): the container, service or image may be called ``octoroute`` too.
    """
    rest = list(words)
    while rest and (rest[0] == "sudo" or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", rest[0])):
        rest.pop(0)
    if not rest:
        return None
    if _is_octoroute(rest[0]):
        return rest[1:]
    if rest[0] in CONTAINER_TOOLS:
        for position, word in enumerate(rest[1:-1], start=1):
            following = rest[position + 1]
            if word == "octoroute" and following.split("=", 1)[0] in starts:
                return rest[position + 1 :]
    return None


def _argv_starts(parser: argparse.ArgumentParser) -> frozenset[str]:
    """The words an ``octoroute`` argument list can begin with: subcommands and top-level options."""
    words = set(parser._option_string_actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            words.update(action.choices)
    return frozenset(words)


@dataclass(frozen=True)
class Command:
    """An ``octoroute`` invocation shown in a doc."""

    where: str
    line: str
    argv: tuple[str, ...]


def documented_commands(doc: str) -> list[Command]:
    """Every ``octoroute`` invocation in the shell blocks of ``doc``."""
    starts = _argv_starts(build_parser())
    found = []
    for block in blocks(doc):
        if block.lang not in SHELL_LANGS:
            continue
        for line in _logical_lines(block):
            for argv in _invocations(line, starts):
                found.append(Command(block.label, line.strip(), tuple(argv)))
    return found


def _invocations(line: str, starts: frozenset[str]) -> list[list[str]]:
    """The ``octoroute`` argument lists of one shell line, including inside ``sh -c '...'``."""
    found = []
    for words in _simple_commands(line):
        rest = words[1:] if words[0] == "sudo" else words
        if len(rest) >= 3 and rest[0] in ("sh", "bash") and rest[1] == "-c":
            found.extend(_invocations(rest[2], starts))
            continue
        argv = _octoroute_argv(words, starts)
        if argv is not None:
            found.append(argv)
    return found


def parse_error(argv: tuple[str, ...]) -> str | None:
    """``None`` when the real parser accepts ``argv`` (``--help``/``--version`` included)."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(list(argv))
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            return stderr.getvalue().strip() or f"exit code {exit_.code}"
    return None


ALL_COMMANDS: Final = [command for doc in COMMAND_DOCS for command in documented_commands(doc)]


# --- TOML ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", toml_blocks(), ids=lambda b: b.label)
def test_every_toml_block_is_a_valid_config_or_a_marked_fragment(block: Block) -> None:
    tomllib.loads(block.body)  # even a fragment must be TOML a user can paste
    if "fragment" in block.info:
        return
    environ = {match["name"]: "doc-key" for match in _API_KEY_ENV.finditer(block.body)}

    config = parse_config(block.body, source=block.label, environ=environ)

    assert config.models.all()


def test_deployment_doc_shows_a_complete_config() -> None:
    complete = [b for b in toml_blocks() if b.doc == "docs/deployment.md" and len(b.info) == 1]

    assert complete, "docs/deployment.md should show at least one complete configuration"


# --- commands -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=lambda c: f"{c.where}: {c.line}")
def test_every_documented_command_is_accepted_by_the_parser(command: Command) -> None:
    error = parse_error(command.argv)

    assert error is None, f"{command.where}: `{command.line}` is rejected: {error}"


def test_deployment_doc_shows_the_commands_a_deployment_needs() -> None:
    shown = {c.argv[0] for c in documented_commands("docs/deployment.md") if c.argv}

    assert {"config", "check", "serve"} <= shown


def test_the_extractor_finds_commands_behind_prompts_sudo_pipes_and_containers() -> None:
    starts = _argv_starts(build_parser())
    examples = {
        "sudo /opt/octoroute/bin/octoroute check --config /x.toml": [
            "check",
            "--config",
            "/x.toml",
        ],
        "OCTOROUTE_LOG=debug octoroute serve  # comment": ["serve"],
        "docker compose run --rm octoroute octoroute config > c.toml": ["config"],
        "docker run --rm img octoroute --version | head": ["--version"],
        "docker run --name octoroute -p 8080:8080 octoroute:local": None,
        "octoroute check --config c.toml 2>&1 | tee log": ["check", "--config", "c.toml"],
        "systemctl status octoroute": None,
        "journalctl -u octoroute -f": None,
    }
    for line, expected in examples.items():
        found = _invocations(line, starts)

        assert (found[0] if found else None) == expected, line


def test_the_extractor_reads_console_prompts_and_continuations() -> None:
    console = Block("x.md", 0, ("console",), "$ octoroute check \\\n    -c a.toml\nok\n")
    sh = Block("x.md", 1, ("sh",), "sudo sh -c '. env; octoroute check -c b.toml'\n")

    assert [line.split() for line in _logical_lines(console)] == [
        ["octoroute", "check", "-c", "a.toml"]
    ]
    assert _invocations(_logical_lines(sh)[0], _argv_starts(build_parser())) == [
        ["check", "-c", "b.toml"]
    ]


def test_a_wrong_option_is_reported() -> None:
    assert parse_error(("check", "--konfig", "x.toml")) is not None
    assert parse_error(("--version",)) is None


# --- deploy files -------------------------------------------------------------------------------


def _directive(text: str, name: str) -> str:
    """The value of the last ``name=`` line of a systemd unit."""
    values = re.findall(rf"^{name}=(.*)$", text, re.MULTILINE)
    assert values, f"the unit has no {name}="
    return str(values[-1]).strip()


def test_unit_in_deployment_doc_is_the_unit_file() -> None:
    unit = (ROOT / "deploy/octoroute.service").read_text(encoding="utf-8")
    shown = [b.body for b in blocks("docs/deployment.md") if b.lang == "ini"]

    assert unit in shown, "docs/deployment.md must show deploy/octoroute.service verbatim"


def test_unit_execstart_parses_and_outlasts_the_shutdown_grace() -> None:
    unit = (ROOT / "deploy/octoroute.service").read_text(encoding="utf-8")
    executable, *argv = shlex.split(_directive(unit, "ExecStart"))

    assert _is_octoroute(executable)
    assert parse_error(tuple(argv)) is None
    assert float(_directive(unit, "TimeoutStopSec")) > SHUTDOWN_GRACE_SECONDS
    assert _directive(unit, "KillSignal") == "SIGTERM"


def test_dockerfile_cmd_parses_and_serves_the_exposed_and_checked_port() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    cmd = re.findall(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert cmd, "the Dockerfile has no exec-form CMD"
    executable, *argv = json.loads(cmd[-1])
    port = argv[argv.index("--port") + 1]

    assert executable == "octoroute"
    assert parse_error(tuple(argv)) is None
    assert argv[argv.index("--host") + 1] == "0.0.0.0"
    assert re.search(rf"^EXPOSE {port}$", dockerfile, re.MULTILINE)
    assert f"127.0.0.1:{port}/health" in dockerfile


def test_compose_stop_grace_outlasts_the_shutdown_grace() -> None:
    compose = (ROOT / "deploy/compose.yaml").read_text(encoding="utf-8")
    grace = re.search(r"^\s+stop_grace_period: (\d+)s$", compose, re.MULTILINE)

    assert grace is not None
    assert int(grace[1]) > SHUTDOWN_GRACE_SECONDS
