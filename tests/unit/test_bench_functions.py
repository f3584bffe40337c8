"""``bench.functions``' pure parts: which functions callgrind skips, and how a profile is read."""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

from bench.functions import read_profile, skip_patterns

PATTERNS = skip_patterns()


def _skipped(name: str) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in PATTERNS)


def test_every_named_function_is_skipped_but_the_roots_and_the_trampolines() -> None:
    for name in ("_PyEval_EvalFrameDefault", "PyDict_GetItem", "memcpy", "main2", "_start_x"):
        assert _skipped(name), name
    for name in ("_start", "main", "start_thread", "clone", "(below main)", "0x00000000047f9a10"):
        assert not _skipped(name), name


def test_a_profile_charges_c_work_to_its_python_caller(tmp_path: Path) -> None:
    # Two trampolines (outer calls inner) and a library's PLT stub called by inner.
    (tmp_path / "run.map").write_text(
        "1000 b py::outer:/x/site-packages/octoroute/app.py\n"
        "100b b py::inner:/x/site-packages/octoroute/wire/requests.py\n"
    )
    (tmp_path / "run.cg").write_text(
        "events: Ir\n"
        "ob=(1) ???\n"
        "fn=(1) 0x0000000000001000\n"
        "0 50\n"
        "cob=(1)\n"
        "cfn=(2) 0x000000000000100b\n"
        "calls=2 0\n"
        "0 130\n"
        "fn=(2)\n"
        "0 100\n"
        "cob=(2) /lib/libc.so.6\n"
        "cfn=(3) 0x0000000000000040\n"
        "calls=1 0\n"
        "0 30\n"
        "ob=(2)\n"
        "fn=(3)\n"
        "0 30\n"
    )
    costs = read_profile(tmp_path / "run.cg", tmp_path / "run.map")
    outer, inner = "octoroute/app.py:outer", "octoroute/wire/requests.py:inner"
    assert (costs.own[outer], costs.inclusive[outer]) == (50, 180)
    assert (costs.own[inner], costs.inclusive[inner]) == (130, 130)
    assert costs.calls[inner] == 2
