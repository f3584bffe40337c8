"""``python -m bench.functions``: instructions per ``model: "fast"`` request, function by function.

``bench.fastpath`` counts what a whole request costs; this says where it goes. The router runs
``bench.fastpath``'s two sequences (``--few`` then ``--many`` requests) under valgrind's
callgrind, with CPython's perf trampolines on (``PYTHONPERFSUPPORT=1``, Python 3.12 or later):
each Python function then runs through a small stub of its own, named in
``/tmp/perf-<pid>.map``, so callgrind can tell the functions apart. Every C function is skipped
(``--fn-skip``), which charges its instructions to the Python function that called it: a
function's *self* cost is its bytecode plus the C work it asks for directly (a dict, a
``msgspec`` decode, a timer), its *inclusive* cost adds everything it calls. The difference of the
two runs divided by the difference in requests is one request's cost, start-up cancelled out.

The trampolines add a C call to every Python call, so the counts are higher than
``bench.fastpath``'s (about 1.35x); compare profiles with profiles. To profile another tree, run
it as ``bench.fastpath`` says (``PYTHONPATH=<other>/src`` in front). Steps, from the repository::

    python3.12 -m venv /tmp/v312 && /tmp/v312/bin/pip install -c constraints.txt -e .
    PYTHONPATH=. /tmp/v312/bin/python -m bench.functions profile /tmp/new
    PYTHONPATH=.:<old>/src /tmp/v312/bin/python -m bench.functions profile /tmp/old
    python -m bench.functions compare /tmp/old /tmp/new

Needs valgrind and nginx. ``compare`` prints a Markdown table of the functions whose self cost
grew most, with their inclusive cost and calls (a coroutine counts once per resumption).
"""

from __future__ import annotations

import argparse
import bisect
import os
import re
import shutil
import string
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Final, NamedTuple

from bench import payloads
from bench.fastpath import serve_under_valgrind
from bench.servers import start_nginx

DEFAULT_FEW: Final = 100
DEFAULT_MANY: Final = 400
"""Fewer than ``bench.fastpath``'s: callgrind runs the router about 100x slower than native."""
_KEPT: Final = ("_start", "main", "start_thread", "clone", "clone3", "(below main)")
"""Roots callgrind must see as functions: skipping the outermost frame of a thread trips its
assertion that some unskipped function is on the stack."""
_NAME_CHARS: Final = string.ascii_letters + string.digits + "_.$@(:<~"
_ID: Final = re.compile(r"\((\d+)\)(?: (.*))?")


def skip_patterns(prefix: str = "") -> list[str]:
    """``--fn-skip`` patterns that match every function name except the roots in ``_KEPT`` and
    names starting ``0x``: the trampolines, which have no symbol (nor has some other unnamed
    code, reported as such)."""
    following = {name[len(prefix)] for name in _KEPT if name.startswith(prefix) and name != prefix}
    patterns: list[str] = []
    for char in _NAME_CHARS:
        if prefix + char == "0x":
            continue
        if char in following or (not prefix and char == "0"):
            patterns += skip_patterns(prefix + char)
        else:
            patterns.append(prefix + char + "*")
    return patterns


def profile_run(requests: int, upstream_url: str, folder: Path) -> None:
    """One ``octoroute serve`` under callgrind answering ``requests``; keeps the profile and the
    perf map as ``folder/run-<requests>.{cg,map}``."""
    out = folder / f"run-{requests}.cg"
    env = os.environ | {
        "PYTHONHASHSEED": "0",
        "PYTHONPERFSUPPORT": "1",
        # Lazy binding enters the dynamic linker's resolver from skipped code, which callgrind's
        # skipping cannot follow: bind every symbol at load instead.
        "LD_BIND_NOW": "1",
    }
    pid = serve_under_valgrind(
        [
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            *(f"--fn-skip={pattern}" for pattern in skip_patterns()),
        ],
        requests,
        upstream_url,
        folder,
        payloads.chat_body("fast"),
        env=env,
        stop_timeout=300,
    )
    shutil.copy(f"/tmp/perf-{pid}.map", folder / f"run-{requests}.map")


class Costs(NamedTuple):
    """One profile: self and inclusive instructions and calls, by function name."""

    own: Counter[str]
    inclusive: Counter[str]
    calls: Counter[str]


def _short(name: str) -> str:
    """``py::Forwarder.complete:/x/site-packages/octoroute/upstream/forward.py`` ->
    ``octoroute/upstream/forward.py:Forwarder.complete``."""
    qualified, _, path = name.removeprefix("py::").partition(":")
    for cut in ("site-packages/", "/src/", "/lib/python3."):
        if cut in path:
            path = path.split(cut, 1)[1]
            if cut == "/lib/python3.":
                path = path.partition("/")[2]
            break
    return f"{path}:{qualified}"


def read_profile(profile: Path, perf_map: Path) -> Costs:
    """A callgrind file with its perf map: names resolved, recursion levels folded; the self
    cost of each Python function (the trampolines), with the C work it called charged to it."""
    stubs = sorted(
        (int(address, 16), int(size, 16), name)
        for address, size, name in (
            line.split(" ", 2) for line in perf_map.read_text(encoding="utf-8").splitlines()
        )
    )
    starts = [stub[0] for stub in stubs]
    names: dict[str, str] = {}
    objects: dict[str, str] = {}
    python: set[str] = set()

    def resolve(raw: str, obj: str | None) -> str:
        base = raw.split("'")[0]
        if base.startswith("0x") and obj in (None, "???"):
            address = int(base, 16)
            at = bisect.bisect_right(starts, address) - 1
            if at >= 0 and stubs[at][0] <= address < stubs[at][0] + stubs[at][1]:
                name = _short(stubs[at][2])
                python.add(name)
                return name
            return f"[unnamed {base}]"
        return base if obj in (None, "???") else f"{base} [{obj.rsplit('/', 1)[-1]}]"

    def lookup(table: dict[str, str], value: str) -> str:
        match = _ID.match(value)
        if match is None:
            return value
        key, name = match.groups()
        if name is not None:
            table[key] = name
        return table[key]

    own: Counter[str] = Counter()
    arcs: Counter[tuple[str, str]] = Counter()
    calls: Counter[tuple[str, str]] = Counter()
    function = callee = ""
    obj: str | None = None
    callee_obj: str | None = None
    pending: int | None = None
    for line in profile.read_text(encoding="utf-8", errors="replace").splitlines():
        if line[:1].isdigit() or line[:1] in "+-*":
            fields = line.split()
            cost = int(fields[1]) if len(fields) > 1 else 0
            if pending is None:
                own[function] += cost
            else:
                arcs[(function, callee)] += cost
                calls[(function, callee)] += pending
                pending = None
        elif line.startswith("ob="):
            obj = lookup(objects, line[3:].strip())
        elif line.startswith("cob="):
            callee_obj = lookup(objects, line[4:].strip())
        elif line.startswith("fn="):
            function = resolve(lookup(names, line[3:].strip()), obj)
            callee_obj = None
        elif line.startswith("cfn="):
            raw = lookup(names, line[4:].strip())
            callee = resolve(raw, obj if callee_obj is None else callee_obj)
        elif line.startswith("calls="):
            pending = int(line[6:].split()[0])
            callee_obj = None
    inclusive = Counter(own)
    called: Counter[str] = Counter()
    beneath: Counter[str] = Counter()  # what ran under another Python function
    for (caller, target), cost in arcs.items():
        if caller != target:
            inclusive[caller] += cost
            called[target] += calls[(caller, target)]
            if target in python:
                beneath[caller] += cost
    # What is left unskipped between two Python functions (a library's PLT stub, named by its
    # address) passes its share of Python work up to its caller; the rest is the caller's own.
    share = {
        name: beneath[name] / inclusive[name]
        for name in inclusive
        if name not in python and inclusive[name]
    }
    for (caller, target), cost in arcs.items():
        if caller != target and target not in python:
            beneath[caller] += round(cost * share.get(target, 0.0))
    python_own = Counter({name: inclusive[name] - beneath[name] for name in python})
    return Costs(python_own, inclusive, called)


def per_request(folder: Path, few: int, many: int) -> Costs:
    """The difference of the two runs in ``folder`` over the difference in requests."""
    low = read_profile(folder / f"run-{few}.cg", folder / f"run-{few}.map")
    high = read_profile(folder / f"run-{many}.cg", folder / f"run-{many}.map")
    span = many - few

    def diff(a: Counter[str], b: Counter[str]) -> Counter[str]:
        return Counter({name: round((b[name] - a[name]) / span) for name in set(a) | set(b)})

    return Costs(
        diff(low.own, high.own), diff(low.inclusive, high.inclusive), diff(low.calls, high.calls)
    )


def compare(old: Costs, new: Costs, top: int) -> str:
    """The Markdown table of the ``top`` functions whose self cost grew most."""
    names = list(set(old.own) | set(new.own))
    names.sort(key=lambda name: new.own[name] - old.own[name], reverse=True)
    rows = [
        "| function | self, old | self, new | inclusive, old | inclusive, new | calls old / new |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in names[:top]:
        rows.append(
            f"| `{name}` | {old.own[name]:,} | {new.own[name]:,} | {old.inclusive[name]:,} | "
            f"{new.inclusive[name]:,} | {old.calls[name]:g} / {new.calls[name]:g} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.functions", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("profile", help="profile the router this interpreter runs")
    run.add_argument("folder", type=Path)
    for command in (run, shown := commands.add_parser("compare", help="old and new side by side")):
        command.add_argument("--few", type=int, default=DEFAULT_FEW)
        command.add_argument("--many", type=int, default=DEFAULT_MANY)
    shown.add_argument("old", type=Path)
    shown.add_argument("new", type=Path)
    shown.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    if args.command == "compare":
        old = per_request(args.old, args.few, args.many)
        new = per_request(args.new, args.few, args.many)
        print(compare(old, new, args.top))
        return
    if not hasattr(sys, "activate_stack_trampoline"):  # Python 3.12 or later, on Linux
        parser.exit(2, "profile needs Python 3.12 or later (perf trampolines); see --help\n")
    args.folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as name:
        nginx = start_nginx(Path(name))
        try:
            profile_run(args.few, nginx.url, args.folder)
            profile_run(args.many, nginx.url, args.folder)
        finally:
            nginx.stop()
    print(f"profiles in {args.folder}")


if __name__ == "__main__":
    main()
