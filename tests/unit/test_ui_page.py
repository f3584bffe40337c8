"""The dashboard's static files as shipped: found through the package, complete, self-contained.

No socket here: these read the files the way ``api.ui`` does (``importlib.resources``) and check
what a browser would otherwise only show at run time: every file the page names is shipped, the
page names nothing outside the router's own origin, every form control has a label, and the
script never builds HTML from values (it uses ``textContent``).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib.resources import files
from pathlib import Path
from typing import Final

import pytest

from octoroute.access.keys import UI_SHELL
from octoroute.api.ui import ASSET_MARK, CONTENT_TYPES, PAGE, Asset, load_assets

SHIPPED: Final = files("octoroute").joinpath("ui")
SVG_NAMESPACE: Final = "http://www.w3.org/2000/svg"
_URL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+""")


class PageParts(HTMLParser):
    """The page's landmarks, form controls, labels and every URL-valued attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.controls: list[tuple[str, str | None]] = []
        self.labelled: set[str] = set()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append(tag)
        if tag in ("input", "select", "textarea"):
            self.controls.append((tag, found.get("id")))
        if tag == "label" and found.get("for"):
            self.labelled.add(str(found["for"]))
        for name in ("src", "href", "action"):
            if found.get(name):
                self.urls.append(str(found[name]))


def page_and_static() -> tuple[Asset, dict[str, Asset]]:
    return load_assets()


def parsed_page() -> PageParts:
    page, _ = page_and_static()
    parts = PageParts()
    parts.feed(page.body.decode("utf-8"))
    return parts


def test_the_files_are_found_through_the_package_as_an_installed_wheel_finds_them() -> None:
    names = {entry.name for entry in SHIPPED.iterdir()}

    assert {PAGE, "app.js", "style.css", "favicon.svg"} <= names
    page, static = page_and_static()
    assert set(static) == {"app.js", "style.css", "favicon.svg"}
    assert page.content_type == CONTENT_TYPES[".html"]
    assert static["app.js"].content_type.startswith("text/javascript")
    assert static["style.css"].content_type.startswith("text/css")
    assert static["favicon.svg"].content_type == "image/svg+xml"


def test_the_page_names_each_static_file_with_its_content_version() -> None:
    page, static = page_and_static()
    html = page.body.decode("utf-8")

    assert ASSET_MARK not in html
    for name in ("app.js", "style.css", "favicon.svg"):
        assert f"static/{name}?v={static[name].version}" in html
    assert len({asset.version for asset in static.values()}) == len(static)


def test_a_page_naming_a_file_that_is_not_shipped_is_refused_at_start_up(tmp_path: Path) -> None:
    (tmp_path / PAGE).write_text('<script src="{{asset:missing.js}}"></script>', encoding="utf-8")
    (tmp_path / "app.js").write_text("", encoding="utf-8")

    with pytest.raises(RuntimeError, match=r"missing\.js"):
        load_assets(tmp_path)


def test_only_known_kinds_of_file_are_served(tmp_path: Path) -> None:
    (tmp_path / PAGE).write_text("<p>hi</p>", encoding="utf-8")
    (tmp_path / "notes.md").write_text("not served", encoding="utf-8")
    (tmp_path / "app.js").write_text("", encoding="utf-8")
    (tmp_path / "sub").mkdir()

    _, static = load_assets(tmp_path)

    assert set(static) == {"app.js"}


def test_the_page_has_landmarks_and_a_label_for_every_control() -> None:
    parts = parsed_page()

    for landmark in ("header", "nav", "main", "footer"):
        assert landmark in parts.tags, f"the page has no <{landmark}>"
    assert len(parts.controls) >= 6
    unlabelled = [control for control in parts.controls if control[1] not in parts.labelled]
    assert unlabelled == [], f"controls without a <label for=...>: {unlabelled}"


def test_the_page_and_its_files_reach_nothing_but_the_routers_own_origin() -> None:
    page, static = page_and_static()
    parts = parsed_page()

    assert all(not _URL.match(url) and not url.startswith("/") for url in parts.urls), parts.urls
    for name, asset in {PAGE: page, **static}.items():
        text = asset.body.decode("utf-8").replace(SVG_NAMESPACE, "")
        assert not _URL.search(text), f"{name} names another origin"
        assert "@import" not in text
        assert "url(" not in text or name.endswith(".svg")


def test_the_script_talks_only_to_the_state_events_and_route_endpoints() -> None:
    script = files("octoroute").joinpath("ui", "app.js").read_text(encoding="utf-8")
    called = set(re.findall(r"""(?:getJSON|call)\(\s*[`"']([a-z/]+)""", script))

    assert called == {"admin/state", "admin/events", "route"}
    assert "EventSource" not in script.replace("EventSource cannot", "")
    assert "innerHTML" not in script
    assert "outerHTML" not in script
    assert "insertAdjacentHTML" not in script
    assert "eval(" not in script
    assert "localStorage" not in script, "the admin key is kept per tab (sessionStorage) only"


@pytest.mark.parametrize("path", ["/ui", "/ui/", "/ui/static/app.js", "/ui/static/x"])
def test_the_pages_shell_is_what_auth_serves_without_a_key(path: str) -> None:
    assert path in UI_SHELL


@pytest.mark.parametrize(
    "path", ["/ui/other", "/ui/static", "/uix", "/ui//", "/admin/state", "/admin/events", "/route"]
)
def test_nothing_else_is_served_without_a_key(path: str) -> None:
    assert path not in UI_SHELL
