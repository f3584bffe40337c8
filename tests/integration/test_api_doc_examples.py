"""The curl examples of ``docs/api.md`` are replayed against the demo fleet and must still hold.

Every ```` ```console ```` block of the doc whose command is ``curl`` is read back into the request
it makes (method, path, ``-H`` headers, ``-d`` body) and the output it shows. The request is sent
over a real socket to a router on ``octoroute demo``'s own simulated fleet and strategy (its
delays zeroed: they change timing, not answers), and the answer must match what the doc printed
in everything that does not change from run to run: the status, the headers shown, and the JSON
body field by field, ids, timestamps and timings aside. Streams are compared event by event, with
a ``...`` line in the doc standing for any number of events.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import pytest

from octoroute.cli import build_parser
from octoroute.config import parse_config
from octoroute.simulator import SimulatedFleet, demo_fleet, fleet_config_toml
from tests.harness import RouterHandle, running_router, within

ROOT: Final = Path(__file__).resolve().parents[2]
DOC: Final = "docs/api.md"

_FENCE: Final = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_PROMPT: Final = "$ "
_ELLIPSIS: Final = "..."
_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_REPLICA: Final = re.compile(r"\[(fast|balanced|deep) #\d+ ·")
"""The demo labels its two fast replicas ``fast #1``/``fast #2``; which one answers is random."""
_CONFIDENCE: Final = re.compile(r"0\.\d{3}|1\.000")
"""``x-octoroute-confidence``: a probability with three decimals."""
_RANDOM_HEX: Final = re.compile(r"[0-9a-f]{16,}")
"""The random part of a generated id (``chatcmpl-<hex>``, ``call_<hex>``); the prefix is kept."""

VOLATILE: Final = frozenset(
    {
        "created",
        "created_at",
        "routing_ms",
        "confidence",  # the learned model's probability: it moves whenever the model is retrained
        "probabilities",  # the learned model's again (POST /route's explanation)
        "learned_confidence",
        "uptime_seconds",
        # Ollama's answers: durations in nanoseconds, and the router's start time.
        "total_duration",
        "load_duration",
        "prompt_eval_duration",
        "eval_duration",
        "modified_at",
    }
)
"""JSON fields that differ on every run: only their presence and type are compared."""

# The curl options the examples may use: those that take an argument, and flags (-I makes a HEAD
# request and -i prints the headers; -s -S -N -v change nothing this test looks at).
_ARG_OPTIONS: Final = {"-X": "method", "--request": "method", "-H": "header", "--header": "header"}
_DATA_OPTIONS: Final = frozenset({"-d", "--data", "--data-raw", "--data-binary"})
_FLAGS: Final = frozenset("sSNivI")
_LONG_FLAGS: Final = {
    "--silent": "s",
    "--no-buffer": "N",
    "--include": "i",
    "--show-error": "S",
    "--head": "I",
}


# --- reading the doc ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CurlExample:
    """One ``$ curl ...`` command of the doc, the request it makes and the output shown after it."""

    line: int
    """The 1-based line of ``docs/api.md`` where the command starts."""
    command: str
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: str | None
    include: bool
    """``-i``: the output starts with the status line and the headers."""
    output: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{DOC}:{self.line} {self.method} {self.path}"

    def header(self, name: str) -> str | None:
        """The value of the last ``-H`` header called ``name`` (any case), else ``None``."""
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return values[-1] if values else None


def _split_command(text: str) -> list[str] | None:
    """The words of a shell command, ``None`` while a quote is still open."""
    try:
        return shlex.split(text)
    except ValueError:
        return None


def parse_curl(words: list[str]) -> tuple[str, str, tuple[tuple[str, str], ...], str | None, bool]:
    """Method, URL path, headers, body and ``-i`` of a curl command's words (``curl`` first)."""
    assert words[0] == "curl", words
    method: str | None = None
    headers: list[tuple[str, str]] = []
    body: str | None = None
    flags: set[str] = set()
    urls: list[str] = []
    rest = iter(words[1:])
    for word in rest:
        if word in _ARG_OPTIONS or word in _DATA_OPTIONS:
            option, value = word, next(rest)
        elif word.startswith("--"):
            assert word in _LONG_FLAGS, f"curl option {word} is not understood by this test"
            flags.add(_LONG_FLAGS[word])
            continue
        elif word.startswith("-") and len(word) > 1:
            # Bundled short options: -si, -sN, -sX POST, -XPOST.
            option = ""
            for position, letter in enumerate(word[1:], start=1):
                if f"-{letter}" in _ARG_OPTIONS or f"-{letter}" in _DATA_OPTIONS:
                    option = f"-{letter}"
                    value = word[position + 1 :] or next(rest)
                    break
                assert letter in _FLAGS, f"curl option -{letter} is not understood by this test"
                flags.add(letter)
            if not option:
                continue
        else:
            urls.append(word)
            continue
        if option in _DATA_OPTIONS:
            assert not value.startswith("@"), f"-d {value}: reading a file is not supported"
            body = value if body is None else f"{body}&{value}"
        elif _ARG_OPTIONS[option] == "method":
            method = value
        else:
            name, _, header_value = value.partition(":")
            headers.append((name.strip(), header_value.strip()))
    assert len(urls) == 1, f"expected one URL in {words}"
    url = urlsplit(urls[0])
    path = url.path + (f"?{url.query}" if url.query else "")
    implied = "HEAD" if "I" in flags else "POST" if body is not None else "GET"
    return method or implied, path, tuple(headers), body, "i" in flags or "I" in flags


def curl_examples(doc: str = DOC, text: str | None = None) -> list[CurlExample]:
    """Every curl command in the ``console`` blocks of ``doc``, with the output printed after it.

    A command runs from a ``$ `` line over the lines that continue it: those after a trailing
    ``\\`` and those inside a quote left open (a multi-line ``-d '{...}'``). Its output is every
    following line up to the next command or the end of the block.
    """
    if text is None:
        text = (ROOT / doc).read_text(encoding="utf-8")
    found: list[CurlExample] = []
    for match in _FENCE.finditer(text):
        if match["info"].split()[:1] != ["console"]:
            continue
        first_line = text.count("\n", 0, match.start("body")) + 1
        indent = len(match["indent"])
        lines = [line[indent:].rstrip() for line in match["body"].splitlines()]
        position = 0
        while position < len(lines):
            if not lines[position].startswith(_PROMPT):
                position += 1
                continue
            start = position
            command = lines[position][len(_PROMPT) :]
            while command.endswith("\\") or _split_command(command) is None:
                position += 1
                assert position < len(lines), f"{doc}:{first_line + start}: unfinished command"
                following = lines[position]
                if command.endswith("\\"):
                    # Shell line continuation: the backslash and the newline disappear.
                    command = command[:-1] + following
                else:
                    command += "\n" + following
            position += 1
            output_start = position
            while position < len(lines) and not lines[position].startswith(_PROMPT):
                position += 1
            output = lines[output_start:position]
            while output and not output[-1]:
                output.pop()
            words = _split_command(command)
            assert words is not None
            if words[0] != "curl":
                continue
            method, path, headers, body, include = parse_curl(words)
            found.append(
                CurlExample(
                    line=first_line + start,
                    command=" ".join(command.split()),
                    method=method,
                    path=path,
                    headers=headers,
                    body=body,
                    include=include,
                    output=tuple(output),
                )
            )
    return found


def unwrap_json(lines: list[str] | tuple[str, ...], where: str) -> list[Any]:
    """The JSON values of output lines that the doc wrapped for reading.

    Lines are joined (with a space: the doc wraps at spaces, and a space between JSON tokens
    changes nothing) until they parse; every line must end up in a value.
    """
    values: list[Any] = []
    pending: list[str] = []
    for line in lines:
        if not pending and not line.strip():
            continue
        pending.append(line.strip())
        try:
            values.append(json.loads(" ".join(pending)))
        except json.JSONDecodeError:
            continue
        pending = []
    assert not pending, f"{where}: the output does not parse as JSON: {' '.join(pending)[:200]}"
    return values


@dataclass(frozen=True)
class ShownOutput:
    """What the doc shows a command printed: status and headers (with ``-i``) and the body."""

    status: int | None
    reason: str | None
    headers: tuple[tuple[str, str], ...]
    body: tuple[str, ...]


def split_output(example: CurlExample) -> ShownOutput:
    """The status line, the header lines and the body lines of an example's output."""
    if not example.include:
        return ShownOutput(None, None, (), example.output)
    status_line, *rest = example.output
    status = re.fullmatch(r"HTTP/[\d.]+ (\d{3})(?: (.*))?", status_line)
    assert status, f"{example.label}: -i output should start with a status line: {status_line!r}"
    blank = rest.index("") if "" in rest else len(rest)
    headers = []
    for line in rest[:blank]:
        name, colon, value = line.partition(":")
        assert colon, f"{example.label}: not a header line: {line!r}"
        headers.append((name.strip(), value.strip()))
    return ShownOutput(int(status[1]), status[2], tuple(headers), tuple(rest[blank + 1 :]))


def sse_events(lines: list[str] | tuple[str, ...], where: str) -> list[Any]:
    """The ``data:`` payloads of a stream, decoded (``[DONE]`` stays a string).

    In the doc an event may be wrapped over several lines and a ``...`` line stands for events
    left out; it is returned as ``Ellipsis``.
    """
    events: list[Any] = []
    chunks: list[list[str]] = []
    for line in lines:
        if line.strip() == _ELLIPSIS:
            chunks.append([_ELLIPSIS])
        elif line.startswith("data:"):
            chunks.append([line.removeprefix("data:").strip()])
        elif line.strip() and not line.startswith(":"):
            assert chunks, f"{where}: stream output must start with `data:`: {line!r}"
            chunks[-1].append(line)
    for chunk in chunks:
        if chunk == [_ELLIPSIS]:
            events.append(Ellipsis)
        elif chunk == ["[DONE]"]:
            events.append("[DONE]")
        else:
            (value,) = unwrap_json(chunk, where)
            events.append(value)
    return events


EXAMPLES: Final = curl_examples()


# --- comparing ----------------------------------------------------------------------------------


def _same_kind(shown: object, got: object) -> bool:
    def number(value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    return (number(shown) and number(got)) or type(shown) is type(got)


def _stable(text: str) -> str:
    return _RANDOM_HEX.sub("<hex>", _REPLICA.sub(r"[\1 #N ·", text))


def differences(shown: Any, got: Any, path: str = "$") -> list[str]:
    """Where ``got`` differs from what the doc ``shown``, ``VOLATILE`` fields compared by type.

    Object keys must be the same set at every level; strings are compared with the demo's
    replica number (``fast #2``) and the random hex of generated ids blanked out.
    """
    if isinstance(shown, dict) and isinstance(got, dict):
        found = []
        if set(shown) != set(got):
            missing, extra = sorted(set(shown) - set(got)), sorted(set(got) - set(shown))
            found.append(f"{path}: keys differ: doc only {missing}, code only {extra}")
        for key in shown.keys() & got.keys():
            where = f"{path}.{key}"
            if key in VOLATILE:
                if not _same_kind(shown[key], got[key]):
                    found.append(f"{where}: doc {shown[key]!r}, code {got[key]!r} (another type)")
            else:
                found += differences(shown[key], got[key], where)
        return found
    if isinstance(shown, list) and isinstance(got, list):
        if len(shown) != len(got):
            return [f"{path}: doc has {len(shown)} items, code {len(got)}: {got!r}"]
        return [
            d
            for i, (s, g) in enumerate(zip(shown, got, strict=True))
            for d in differences(s, g, f"{path}[{i}]")
        ]
    if isinstance(shown, str) and isinstance(got, str):
        if _stable(shown) == _stable(got):
            return []
    elif _same_kind(shown, got) and shown == got:
        return []
    return [f"{path}: doc {shown!r}, code {got!r}"]


def header_differences(shown: tuple[tuple[str, str], ...], response: httpx.Response) -> list[str]:
    """The shown headers the response lacks or has with another value.

    A shown uuid4 ``x-request-id`` was generated by the router: any uuid4 matches it, and any
    probability matches a shown ``x-octoroute-confidence``. Names
    are compared in any case; the order of the headers is not compared (it means nothing in HTTP).
    """
    found = []
    for name, value in shown:
        got = response.headers.get(name)
        if got is None:
            found.append(f"header {name}: doc {value!r}, code has none")
        elif name.lower() == "x-request-id" and _UUID.fullmatch(value):
            if not _UUID.fullmatch(got) or uuid.UUID(got).version != 4:
                found.append(f"header {name}: doc shows a generated uuid4, code {got!r}")
        elif name.lower() == "x-octoroute-confidence":  # moves whenever the model is retrained
            if not _CONFIDENCE.fullmatch(got):
                found.append(f"header {name}: doc shows a probability, code {got!r}")
        elif got != value:
            found.append(f"header {name}: doc {value!r}, code {got!r}")
    return found


def expected_events(shown: list[Any], got: list[Any]) -> tuple[list[Any], list[Any]]:
    """The shown events and the received ones they stand for, pair by pair.

    Events before a ``...`` are matched from the start of the stream, those after it from the
    end; the stream must be at least as long as what the doc shows around the ``...``.
    """
    if Ellipsis not in shown:
        return shown, got
    cut = shown.index(Ellipsis)
    head, tail = shown[:cut], shown[cut + 1 :]
    assert Ellipsis not in tail, "one `...` per stream is supported"
    assert len(got) >= len(head) + len(tail), f"the stream has only {len(got)} events: {got!r}"
    return head + tail, got[: len(head)] + (got[len(got) - len(tail) :] if tail else [])


# --- the router ---------------------------------------------------------------------------------


def demo_strategy() -> str:
    """The routing strategy ``octoroute demo`` runs with when given no ``--strategy``."""
    strategy = build_parser().parse_args(["demo"]).strategy
    assert isinstance(strategy, str)
    return strategy


@pytest.fixture
async def demo() -> AsyncIterator[RouterHandle]:
    """The router on the demo's fleet and config, answering without the demo's delays."""
    fleet: SimulatedFleet = demo_fleet()
    for model in fleet.models:
        model.behaviour = dataclasses.replace(
            model.behaviour, latency=0.0, first_token_delay=0.0, token_gap=0.0
        )
    async with fleet:
        config = parse_config(
            fleet_config_toml(fleet, strategy=demo_strategy(), host="127.0.0.1", port=0),
            source="<demo>",
        )
        async with running_router(config) as handle:
            yield handle


async def replay(router: RouterHandle, example: CurlExample) -> httpx.Response:
    """Send the example's request as curl would (curl's form type when no Content-Type is set)."""
    headers = dict(example.headers)
    if example.body is not None and example.header("Content-Type") is None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    content = example.body.encode() if example.body is not None else None
    async with httpx.AsyncClient(base_url=router.url, timeout=5.0) as client:
        request = client.request(example.method, example.path, headers=headers, content=content)
        response = await within(request, 5.0)
    assert isinstance(response, httpx.Response)
    return response


# --- tests --------------------------------------------------------------------------------------


def test_the_doc_has_curl_examples() -> None:
    assert len(EXAMPLES) > 0, f"no `$ curl` command found in the console blocks of {DOC}"
    assert all(example.output for example in EXAMPLES), "every example shows its output"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.label)
async def test_curl_example_answers_as_the_doc_shows(
    demo: RouterHandle, example: CurlExample
) -> None:
    shown = split_output(example)

    response = await replay(demo, example)

    where = f"{example.label}: `{example.command}`"
    problems: list[str] = []
    if shown.status is not None:
        if response.status_code != shown.status:
            problems.append(f"status: doc {shown.status}, code {response.status_code}")
        if shown.reason and response.reason_phrase != shown.reason:
            problems.append(f"reason: doc {shown.reason!r}, code {response.reason_phrase!r}")
    problems += header_differences(shown.headers, response)
    if any(line.startswith("data:") for line in shown.body):
        problems += stream_differences(example, shown, response, where)
    else:
        (body,) = unwrap_json(shown.body, where)
        if shown.status is None:
            failed = isinstance(body, dict) and isinstance(body.get("error"), dict)
            if failed != (response.status_code >= 400):
                problems.append(
                    f"status: doc shows {'an error' if failed else 'a success'}, code {response.status_code}"
                )
        assert response.headers.get("content-type", "").startswith("application/json"), where
        problems += differences(body, response.json())

    assert not problems, (
        f"{where}\n" + "\n".join(problems) + f"\n--- code answered:\n{response.text}"
    )


def stream_differences(
    example: CurlExample, shown: ShownOutput, response: httpx.Response, where: str
) -> list[str]:
    """How a streamed answer differs from the events the doc shows."""
    problems = []
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        problems.append(f"content-type: {response.headers.get('content-type')!r}, not SSE")
    doc_events = sse_events(shown.body, where)
    got_events = sse_events(response.text.splitlines(), f"{where} (response)")
    for source, events in (("doc", doc_events), ("code", got_events)):
        first = events[0] if events else None
        choices = first.get("choices") if isinstance(first, dict) else None
        delta = choices[0].get("delta") if isinstance(choices, list) and choices else None
        if not isinstance(delta, dict) or delta.get("role") != "assistant":
            problems.append(
                f"the {source}'s first event is not the assistant role chunk: {first!r}"
            )
        if not events or events[-1] != "[DONE]":
            problems.append(f"the {source}'s stream does not end with `data: [DONE]`")
    body = json.loads(example.body or "{}")
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = [e for e in doc_events if isinstance(e, dict) and e.get("usage")]
        assert usage, f"{where}: include_usage is set but the doc shows no usage chunk"
        if not any(isinstance(e, dict) and e.get("usage") for e in got_events):
            problems.append("include_usage is set but the code streamed no usage chunk")
    if Ellipsis not in doc_events and len(doc_events) != len(got_events):
        problems.append(f"the doc shows {len(doc_events)} events, the code sent {len(got_events)}")
        return problems
    if len(got_events) < len(doc_events) - 1:
        problems.append(
            f"the doc shows {len(doc_events) - 1} events and more, the code sent {len(got_events)}"
        )
        return problems
    for number, (doc_event, got_event) in enumerate(
        zip(*expected_events(doc_events, got_events), strict=True)
    ):
        problems += differences(doc_event, got_event, f"event {number}")
    return problems


# --- the extractor itself -----------------------------------------------------------------------


def test_the_extractor_reads_continuations_open_quotes_bundled_flags_and_output() -> None:
    text = (
        "intro\n"
        "```console\n"
        "$ curl -si http://127.0.0.1:8080/route -H 'Content-Type: application/json' \\\n"
        "    -H 'x-request-id: a-1' \\\n"
        """    -d '{"model": "auto",\n"""
        """         "messages": []}'\n"""
        "HTTP/1.1 400 Bad Request\n"
        "x-request-id: a-1\n"
        "\n"
        """{"error": {"message": "wrapped\n"""
        """here", "code": null}}\n"""
        "\n"
        "$ curl -sX HEAD http://127.0.0.1:8080/health\n"
        "$ echo not curl\n"
        "ok\n"
        "```\n"
        "```json\n"
        "$ curl http://ignored/\n"
        "```\n"
    )

    first, second = curl_examples("x.md", text)

    assert (first.line, first.method, first.path, first.include) == (3, "POST", "/route", True)
    assert first.headers == (("Content-Type", "application/json"), ("x-request-id", "a-1"))
    assert json.loads(first.body or "") == {"model": "auto", "messages": []}
    output = split_output(first)
    assert (output.status, output.reason, output.headers) == (
        400,
        "Bad Request",
        (("x-request-id", "a-1"),),
    )
    assert unwrap_json(output.body, "x") == [{"error": {"message": "wrapped here", "code": None}}]
    assert (second.line, second.method, second.path, second.output) == (13, "HEAD", "/health", ())


def test_stream_events_are_unwrapped_and_an_ellipsis_stands_for_the_middle() -> None:
    shown = sse_events(['data: {"a":', "1}", "", "...", "", "data: [DONE]"], "x")
    got = [{"a": 1}, {"a": 2}, {"a": 3}, "[DONE]"]

    assert shown == [{"a": 1}, Ellipsis, "[DONE]"]
    assert expected_events(shown, got) == ([{"a": 1}, "[DONE]"], [{"a": 1}, "[DONE]"])


def test_json_is_compared_field_by_field_except_what_changes_from_run_to_run() -> None:
    shown = {"id": "chatcmpl-0123456789abcdef", "created": 1, "text": "[fast #1 · m] hi"}
    same = {"id": "chatcmpl-fedcba9876543210", "created": 2, "text": "[fast #2 · m] hi"}

    assert differences(shown, same) == []
    assert differences(shown, {**same, "id": "cmpl-fedcba9876543210"}) != []
    assert differences(shown, {**same, "created": "2"}) != []
    assert differences(shown, {**same, "text": "[deep #1 · m] hi"}) != []
    assert differences({"a": [1]}, {"a": [1, 2]}) != []
    assert differences({"a": 1}, {"a": True}) != []
    assert differences({"a": 1}, {"a": 1, "b": 2}) == [
        "$: keys differ: doc only [], code only ['b']"
    ]
