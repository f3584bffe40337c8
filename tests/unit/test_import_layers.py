"""The layer rules of docs/architecture.md hold for every module's imports.

The rules are read from the doc's tables, so the doc and the code cannot drift apart:

* "Who may import whom": each module's octoroute imports stay within its row's list;
* "Libraries": an I/O library is imported only by the modules its row names;
* "Calls": a few names (``create_connection``, ``os.environ``, ``labels``, ...) appear only where
  their row allows.

Imports are read with ``ast`` from the source, all of them: module level, inside functions and
under ``TYPE_CHECKING``. Nothing is imported or executed. A few design invariants (routing never
reaches the I/O layer, pure rows allow no I/O library, only ``upstream/client.py`` may import
``upstream/http1.py``) are checked on the tables themselves, so loosening the doc is caught too.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[2]
SRC: Final = ROOT / "src" / "octoroute"
DOC: Final = ROOT / "docs" / "architecture.md"
EMPTY_CELLS: Final = frozenset({"nothing", "nowhere"})

_HEADING = re.compile(r"^(#+) (.+?)\s*$", re.MULTILINE)
_CODE = re.compile(r"`([^`]+)`")


# --- the doc's tables -----------------------------------------------------------------------------


def section(text: str, title: str) -> str:
    """The body of the heading ``title`` (any level) up to the next heading of its level or above."""
    for match in _HEADING.finditer(text):
        if match[2] == title:
            level = len(match[1])
            end = len(text)
            for later in _HEADING.finditer(text, match.end()):
                if len(later[1]) <= level:
                    end = later.start()
                    break
            return text[match.end() : end]
    raise AssertionError(f"docs/architecture.md has no heading {title!r}")


def first_table(text: str) -> list[list[str]]:
    """The body rows of the first Markdown table in ``text``, as lists of stripped cells."""
    lines = [line.strip() for line in text.splitlines()]
    for start, line in enumerate(lines):
        if line.startswith("|") and start + 1 < len(lines) and lines[start + 1].startswith("|--"):
            rows = []
            for row in lines[start + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append([cell.strip() for cell in row.strip("|").split("|")])
            return rows
    raise AssertionError("no table found")


def refs(cell: str) -> tuple[str, ...]:
    """The code spans of a cell; ``()`` for "nothing"/"nowhere"; an error for a cell with neither."""
    found = tuple(_CODE.findall(cell))
    if not found and cell.lower() not in EMPTY_CELLS:
        raise AssertionError(f"cell {cell!r} names no module and is not 'nothing'/'nowhere'")
    return found


@dataclass(frozen=True)
class Row:
    """One rule: who it is about, and what it allows."""

    subjects: tuple[str, ...]
    """Module references (layer table) or library/call names (the other two)."""
    allowed: tuple[str, ...]
    """Module references that may import (layer table: that may be imported)."""
    layer: str = ""


@dataclass(frozen=True)
class Rules:
    """The three rule tables of docs/architecture.md."""

    layers: tuple[Row, ...]
    libraries: tuple[Row, ...]
    calls: tuple[Row, ...]


def parse_rules(text: str) -> Rules:
    """Read the rule tables out of the doc's text."""
    layers = tuple(
        Row(refs(modules), refs(allowed), layer)
        for modules, layer, allowed in first_table(section(text, "Who may import whom"))
    )
    libraries = tuple(
        Row(refs(names), refs(only))
        for names, only, _why in first_table(section(text, "Libraries"))
    )
    calls = tuple(
        Row(refs(names), refs(only)) for names, only, _why in first_table(section(text, "Calls"))
    )
    return Rules(layers, libraries, calls)


@cache
def rules() -> Rules:
    """The rules as the doc states them now."""
    return parse_rules(DOC.read_text(encoding="utf-8"))


# --- module references ----------------------------------------------------------------------------


def all_modules() -> tuple[str, ...]:
    """Every module under ``src/octoroute``, as a path relative to it (``api/openai.py``)."""
    return tuple(sorted(p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")))


def matches(ref: str, module: str) -> bool:
    """``pkg/`` matches every module of the package; ``x.py`` and ``pkg/x.py`` match that file."""
    return module.startswith(ref) if ref.endswith("/") else module == ref


def specificity(ref: str) -> tuple[int, int]:
    """Files beat packages; a deeper package beats a shallower one."""
    return (0 if ref.endswith("/") else 1, ref.count("/"))


def owner(module: str, layers: Iterable[Row]) -> Row:
    """The row a module belongs to: the one whose matching reference is most specific."""
    candidates = [
        (specificity(ref), row) for row in layers for ref in row.subjects if matches(ref, module)
    ]
    if not candidates:
        raise AssertionError(f"{module} is in no row of 'Who may import whom'")
    best = max(rank for rank, _ in candidates)
    rows = {id(row): row for rank, row in candidates if rank == best}
    if len(rows) > 1:
        raise AssertionError(f"{module} is claimed by several rows equally: {list(rows.values())}")
    return next(iter(rows.values()))


def module_name(module: str) -> str:
    """``api/openai.py`` -> ``octoroute.api.openai``; ``api/__init__.py`` -> ``octoroute.api``."""
    parts = module.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["octoroute", *parts])


def module_files(modules: Iterable[str]) -> dict[str, str]:
    """Dotted name -> relative path, for resolving imports."""
    return {module_name(module): module for module in modules}


# --- reading a module's imports and names ---------------------------------------------------------


@dataclass
class Facts:
    """What one module's source imports and names."""

    internal: set[str] = field(default_factory=set)
    """octoroute modules imported anywhere (relative paths)."""
    internal_top: set[str] = field(default_factory=set)
    """octoroute modules imported at module level, outside ``TYPE_CHECKING``."""
    foreign: set[str] = field(default_factory=set)
    """Other modules imported (``from a import b`` gives ``a`` and ``a.b``)."""
    dotted: set[str] = field(default_factory=set)
    """Dotted names used or imported, aliases undone (``os.environ``, ``time.sleep``)."""
    bare: set[str] = field(default_factory=set)
    """Attribute names used (``x.labels`` gives ``labels``) and names imported."""


def _is_type_checking(test: ast.expr) -> bool:
    return isinstance(test, ast.Name | ast.Attribute) and ast.unparse(test).endswith(
        "TYPE_CHECKING"
    )


def read_facts(module: str, source: str, known: dict[str, str]) -> Facts:
    """The imports and names of ``module`` (a relative path) whose source is ``source``."""
    facts = Facts()
    name = module_name(module)
    package = name if module.endswith("__init__.py") else name.rpartition(".")[0]
    aliases: dict[str, str] = {}

    def internal(dotted: str, top: bool) -> None:
        target = known.get(dotted)
        if target is not None:
            facts.internal.add(target)
            if top:
                facts.internal_top.add(target)

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            deferred = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) or (
                isinstance(child, ast.If) and _is_type_checking(child.test)
            )
            child_top = top and not deferred
            if isinstance(child, ast.Import):
                for alias in child.names:
                    aliases[alias.asname or alias.name.partition(".")[0]] = (
                        alias.name if alias.asname else alias.name.partition(".")[0]
                    )
                    if alias.name == "octoroute" or alias.name.startswith("octoroute."):
                        internal(alias.name, child_top)
                    else:
                        facts.foreign.add(alias.name)
                    facts.dotted.add(alias.name)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - (child.level - 1)]
                    base = ".".join([*anchor, *([child.module] if child.module else [])])
                for alias in child.names:
                    full = f"{base}.{alias.name}"
                    aliases[alias.asname or alias.name] = full
                    facts.bare.add(alias.name)
                    facts.dotted.add(full)
                    if base == "octoroute" or base.startswith("octoroute."):
                        internal(full if full in known else base, child_top)
                    elif base != "__future__":
                        facts.foreign.update((base, full))
            elif isinstance(child, ast.Attribute):
                facts.bare.add(child.attr)
                dotted = _dotted(child, aliases)
                if dotted is not None:
                    facts.dotted.add(dotted)
            visit(child, child_top)

    visit(ast.parse(source, filename=module), True)
    return facts


def _dotted(node: ast.Attribute, aliases: dict[str, str]) -> str | None:
    """``os.environ.get`` -> ``os.environ.get`` (with import aliases undone), else ``None``."""
    parts = [node.attr]
    value = node.value
    while isinstance(value, ast.Attribute):
        parts.append(value.attr)
        value = value.value
    if not isinstance(value, ast.Name):
        return None
    head = aliases.get(value.id, value.id)
    return ".".join([head, *reversed(parts)])


@cache
def source_facts() -> dict[str, Facts]:
    """The facts of every module of ``src/octoroute``."""
    modules = all_modules()
    known = module_files(modules)
    return {
        module: read_facts(module, (SRC / module).read_text(encoding="utf-8"), known)
        for module in modules
    }


# --- the checks, as functions so that they can be shown to fail -----------------------------------


def import_violations(module: str, facts: Facts, layers: Iterable[Row]) -> list[str]:
    """The octoroute imports of ``module`` that its row does not allow."""
    row = owner(module, layers)
    return sorted(
        f"{module} imports {target}, which its row ({', '.join(row.subjects)}) does not allow"
        for target in facts.internal
        if target != module and not any(matches(ref, target) for ref in row.allowed)
    )


def _library_matches(library: str, imported: str) -> bool:
    return imported == library or imported.startswith(library + ".")


def library_violations(module: str, facts: Facts, libraries: Iterable[Row]) -> list[str]:
    """The restricted libraries ``module`` imports although its row does not list it."""
    found = []
    for row in libraries:
        if any(matches(ref, module) for ref in row.allowed):
            continue
        for library in row.subjects:
            hits = sorted(name for name in facts.foreign if _library_matches(library, name))
            if hits:
                found.append(f"{module} imports {hits[0]} ({library} is only for {row.allowed})")
    return found


def call_violations(module: str, facts: Facts, calls: Iterable[Row]) -> list[str]:
    """The restricted names ``module`` uses although its row does not list it."""
    found = []
    for row in calls:
        if any(matches(ref, module) for ref in row.allowed):
            continue
        for name in row.subjects:
            used = name in facts.dotted if "." in name else name in facts.bare
            if used:
                found.append(f"{module} uses {name} (only for {row.allowed or 'nobody'})")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


# --- the doc's rules hold in the code -------------------------------------------------------------

MODULES: Final = all_modules()


def test_rule_tables_name_only_existing_modules() -> None:
    tables = rules()
    references = {
        ref
        for table in (tables.layers, tables.libraries, tables.calls)
        for row in table
        for ref in (*row.allowed, *(row.subjects if table is tables.layers else ()))
    }

    dangling = sorted(ref for ref in references if not any(matches(ref, m) for m in MODULES))

    assert not dangling, f"docs/architecture.md names modules that do not exist: {dangling}"


@pytest.mark.parametrize("module", MODULES)
def test_every_module_belongs_to_exactly_one_layer_row(module: str) -> None:
    owner(module, rules().layers)


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_only_what_its_layer_may(module: str) -> None:
    assert import_violations(module, source_facts()[module], rules().layers) == []


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_io_libraries_only_where_allowed(module: str) -> None:
    assert library_violations(module, source_facts()[module], rules().libraries) == []


@pytest.mark.parametrize("module", MODULES)
def test_module_uses_restricted_names_only_where_allowed(module: str) -> None:
    assert call_violations(module, source_facts()[module], rules().calls) == []


def test_module_level_imports_form_no_cycle() -> None:
    graph = {module: facts.internal_top for module, facts in source_facts().items()}

    assert cycles(graph) == []


# --- the tables keep the design's invariants ------------------------------------------------------


def _owned_by_pure_rows() -> set[str]:
    tables = rules()
    return {m for m in MODULES if "(pure)" in owner(m, tables.layers).layer}


def test_the_pure_layers_are_the_ones_the_design_names() -> None:
    pure = _owned_by_pure_rows()

    for module in MODULES:
        expected = module.startswith(("wire/", "routing/", "config/", "fleet/")) or module in {
            "__init__.py",
            "enums.py",
            "errors.py",
            "catalog.py",
            "upstream/attempts.py",
            "access/__init__.py",
            "access/keys.py",
            "access/permissions.py",
            "access/limits.py",
        }
        if module == "fleet/health.py":  # the prober: asyncio for its timer, the probe injected
            expected = False
        if module == "fleet/dispatch.py":  # the slot queues: asyncio futures and timers
            expected = False
        assert (module in pure) == expected, module


def test_no_library_row_allows_a_pure_module() -> None:
    # The Calls table may (config/load.py reads the environment, by design); Libraries may not.
    pure = _owned_by_pure_rows()

    for row in rules().libraries:
        allowed = {m for m in MODULES if any(matches(ref, m) for ref in row.allowed)}
        assert not allowed & pure, f"{row.subjects} allowed in pure modules {allowed & pure}"


def test_network_and_loop_libraries_are_restricted() -> None:
    restricted = {name for row in rules().libraries for name in row.subjects}

    assert {"aiohttp", "httptools", "asyncio", "ssl", "socket"} <= restricted


def test_routing_may_not_reach_the_io_layer() -> None:
    io = ("upstream/client.py", "upstream/forward.py", "api/common.py", "app.py", "runtime.py")

    for module in (m for m in MODULES if m.startswith("routing/")):
        allowed = owner(module, rules().layers).allowed
        reached = [target for target in io if any(matches(ref, target) for ref in allowed)]
        assert not reached, f"{module} may import {reached}"


def test_only_the_upstream_client_may_import_the_http1_client() -> None:
    importers = {
        module
        for module in MODULES
        if module != "upstream/http1.py"
        and any(matches(ref, "upstream/http1.py") for ref in owner(module, rules().layers).allowed)
    }

    assert importers == {"upstream/client.py"}


def test_only_http1_opens_upstream_connections() -> None:
    row = next(r for r in rules().calls if "create_connection" in r.subjects)

    assert row.allowed == ("upstream/http1.py",)


# --- the checker itself can fail ------------------------------------------------------------------

_KNOWN: Final = module_files(MODULES)


def test_a_forbidden_import_is_reported() -> None:
    source = "from octoroute.upstream.client import UpstreamClient\nimport octoroute.app\n"
    facts = read_facts("routing/strategy.py", source, _KNOWN)

    violations = import_violations("routing/strategy.py", facts, rules().layers)

    assert len(violations) == 2
    assert "upstream/client.py" in violations[0] or "upstream/client.py" in violations[1]


def test_a_lazy_or_type_only_import_still_counts() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from octoroute.runtime import Runtime\n"
        "def f() -> None:\n    from octoroute.api import common\n"
    )
    facts = read_facts("wire/sse.py", source, _KNOWN)

    assert facts.internal == {"runtime.py", "api/common.py"}
    assert facts.internal_top == set()
    assert len(import_violations("wire/sse.py", facts, rules().layers)) == 2


def test_a_network_library_in_a_pure_module_is_reported() -> None:
    source = "import asyncio\nfrom aiohttp import web\nimport urllib.request\n"
    facts = read_facts("fleet/selector.py", source, _KNOWN)

    violations = library_violations("fleet/selector.py", facts, rules().libraries)

    assert len(violations) == 3


def test_restricted_names_are_found_through_aliases() -> None:
    source = (
        "import os as system\nfrom time import sleep\n"
        "def f(counter, loop):\n"
        "    system.environ.get('X')\n    sleep(1)\n    counter.labels('a')\n"
        "    loop.create_connection()\n"
    )
    facts = read_facts("api/openai.py", source, _KNOWN)

    violations = call_violations("api/openai.py", facts, rules().calls)

    assert {v.split(" uses ")[1].split(" ")[0] for v in violations} == {
        "os.environ",
        "time.sleep",
        "labels",
        "create_connection",
    }


def test_an_import_cycle_is_found() -> None:
    graph = {"a.py": {"b.py"}, "b.py": {"c.py"}, "c.py": {"a.py"}, "d.py": {"a.py"}}

    assert cycles(graph) == [["a.py", "b.py", "c.py"]]


def test_a_module_missing_from_the_layer_table_is_reported() -> None:
    layers = (Row(("wire/",), ("enums.py",), "wire (pure)"),)

    with pytest.raises(AssertionError, match="in no row"):
        owner("routing/rules.py", layers)
