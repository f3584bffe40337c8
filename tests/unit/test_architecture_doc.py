"""docs/architecture.md stays true to ``src/octoroute``: its module map and the paths it names.

The module map must list every module and package, once each, and nothing that does not exist.
Every other module path the page mentions (in code spans and in its diagrams) must exist too, so
a rename cannot leave the page pointing at a file that is gone. The page must link the other docs
and the README must link the page.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
SRC: Final = ROOT / "src" / "octoroute"
DOC: Final = ROOT / "docs" / "architecture.md"
LINKED_DOCS: Final = (
    "configuration.md",
    "api.md",
    "routing.md",
    "observability.md",
    "deployment.md",
    "development.md",
    "performance.md",
)
"""The docs the architecture page points readers to."""
NOT_SOURCE: Final = ("tests/", "bench/", "deploy/", "docs/", "research/")
"""Path prefixes the page may mention that are not under ``src/octoroute``."""

_CODE = re.compile(r"`([^`\n]+)`")
_MODULE_PATH = re.compile(r"(?:[a-z0-9_]+/)*[a-z0-9_]+\.py|[a-z0-9_]+/")
_FENCE = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
_PY_WORD = re.compile(r"(?<![\w/.])(?:[a-z0-9_]+/)*[a-z0-9_]+\.py\b")
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def text() -> str:
    return DOC.read_text(encoding="utf-8")


def source_entries() -> set[str]:
    """What the map must list: every module, with a package (``api/``) standing for its
    ``__init__.py``; the top-level ``__init__.py`` is listed as itself."""
    entries = set()
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC).as_posix()
        if path.name == "__init__.py" and path.parent != SRC:
            entries.add(relative.removesuffix("__init__.py"))
        else:
            entries.add(relative)
    return entries


def map_rows(doc: str) -> list[tuple[str, str]]:
    """(module, job) for every row of the table under ``## Module map``."""
    start = doc.index("\n## Module map\n")
    end = doc.find("\n## ", start + 1)
    rows = []
    for line in doc[start : end if end != -1 else len(doc)].splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) != 2 or set(cells[0]) <= {"-"}:
            continue
        module = _CODE.fullmatch(cells[0])
        if module is None:
            continue  # the header row
        rows.append((module[1], cells[1]))
    return rows


def mentioned_paths(doc: str) -> set[str]:
    """Module paths named anywhere on the page: code spans, and ``.py`` words in code blocks."""
    found = {span for span in _CODE.findall(doc) if _MODULE_PATH.fullmatch(span)}
    for block in _FENCE.finditer(doc):
        found.update(_PY_WORD.findall(block["body"]))
    return {path for path in found if not path.startswith(NOT_SOURCE)}


def exists(path: str) -> bool:
    """Whether ``path`` (relative to ``src/octoroute``) is a module or a package."""
    if path.endswith("/"):
        return (SRC / path / "__init__.py").is_file()
    return (SRC / path).is_file()


def test_every_module_and_package_is_in_the_map() -> None:
    listed = {module for module, _ in map_rows(text())}

    missing = sorted(source_entries() - listed)

    assert not missing, f"add these to the module map of docs/architecture.md: {missing}"


def test_every_module_in_the_map_exists() -> None:
    listed = {module for module, _ in map_rows(text())}

    gone = sorted(listed - source_entries())

    assert not gone, f"the module map of docs/architecture.md lists what does not exist: {gone}"


def test_the_map_lists_each_module_once_with_its_job() -> None:
    rows = map_rows(text())
    modules = [module for module, _ in rows]

    assert len(modules) == len(set(modules)), "a module is listed twice"
    assert all(job for _, job in rows), "every module needs its one job"


def test_every_module_path_the_page_mentions_exists() -> None:
    paths = mentioned_paths(text())

    dangling = sorted(path for path in paths if not exists(path))

    assert paths, "the page should name modules"
    assert not dangling, f"docs/architecture.md names modules that do not exist: {dangling}"


def test_the_page_has_a_text_diagram_naming_the_flow_modules() -> None:
    diagrams = [m["body"] for m in _FENCE.finditer(text()) if m["lang"] == "text"]
    flow = ("app.py", "api/openai.py", "wire/requests.py", "catalog.py", "routing/strategy.py")
    upstream = ("fleet/selector.py", "upstream/forward.py", "upstream/client.py")

    assert diagrams
    for module in (*flow, *upstream, "upstream/http1.py"):
        assert any(module in diagram for diagram in diagrams), module


def test_the_page_links_the_other_docs() -> None:
    linked = {Path(target).name for target in _LINK.findall(text())}
    existing = {p.name for p in (ROOT / "docs").glob("*.md")} - {DOC.name}

    assert set(LINKED_DOCS) <= linked
    assert existing <= linked, f"docs not linked from architecture.md: {existing - linked}"


def test_every_relative_link_in_the_docs_resolves() -> None:
    pages = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "bench" / "README.md"]
    pages += sorted((ROOT / "docs").glob("*.md"))
    dangling = [
        f"{page.relative_to(ROOT)} -> {target}"
        for page in pages
        for target in _LINK.findall(page.read_text(encoding="utf-8"))
        if "://" not in target
        and not target.startswith("mailto:")
        and not (page.parent / target).exists()
    ]
    assert dangling == []


def test_the_readme_links_the_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")

    assert "(docs/architecture.md)" in readme


def test_the_map_check_notices_a_missing_and_an_extra_module() -> None:
    doc = text()
    without_sse = doc.replace("| `wire/sse.py` |", "| `wire/sse2.py` |", 1)

    listed = {module for module, _ in map_rows(without_sse)}

    assert "wire/sse.py" in source_entries() - listed
    assert "wire/sse2.py" in listed - source_entries()
    assert not exists("wire/sse2.py")
