"""``GET /ui``: the dashboard's files over real sockets (httpx, and raw bytes for odd paths).

What a browser and a proxy rely on: the redirect to ``/ui/``, content types, the validators and
cache lifetimes, the security headers, refusals in the OpenAI error shape for anything that is
not one of the shipped files (however the path is spelled), and, with ``[auth]``, a shell that
loads without a key while every byte of data still needs an admin key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from octoroute.api.ui import CONTENT_SECURITY_POLICY, load_assets
from octoroute.simulator import SimulatedFleet
from tests.dashboard_keys import ALICE, AUTH, OPS
from tests.harness import RouterHandle, config_for, raw_exchange, running_router


@pytest.fixture
async def client(router: RouterHandle) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=router.url, timeout=10) as http:
        yield http


def assert_openai_404(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert error["message"]


async def test_ui_redirects_to_the_page_keeping_a_path_prefix_and_the_query(
    client: httpx.AsyncClient,
) -> None:
    bare = await client.get("/ui")
    with_query = await client.get("/ui?window=3600")

    assert bare.status_code == 308
    assert bare.headers["location"] == "ui/"  # relative: a proxy's path prefix survives
    assert with_query.headers["location"] == "ui/?window=3600"
    followed = await client.get("/ui", follow_redirects=True)
    assert followed.status_code == 200
    assert str(followed.url).endswith("/ui/")


async def test_the_page_is_html_revalidated_and_locked_to_the_routers_origin(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/ui/")

    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-cache"
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "connect-src 'self'" in CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert "<title>octoroute dashboard</title>" in page.text
    again = await client.get("/ui/", headers={"If-None-Match": page.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    head = await client.head("/ui/")
    assert head.status_code == 200
    assert head.headers["etag"] == page.headers["etag"]


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
async def test_static_files_have_their_type_and_are_cached_for_good_only_when_versioned(
    client: httpx.AsyncClient, name: str, content_type: str
) -> None:
    _, static = load_assets()
    page = (await client.get("/ui/")).text
    versioned = f"static/{name}?v={static[name].version}"
    assert versioned in page

    current = await client.get(f"/ui/{versioned}")
    bare = await client.get(f"/ui/static/{name}")
    stale = await client.get(f"/ui/static/{name}?v=0123456789abcdef")

    assert current.status_code == bare.status_code == stale.status_code == 200
    assert current.headers["content-type"] == content_type
    assert current.content == static[name].body
    assert current.headers["cache-control"] == "private, max-age=31536000, immutable"
    assert bare.headers["cache-control"] == stale.headers["cache-control"] == "no-cache"
    assert current.headers["x-content-type-options"] == "nosniff"
    revalidated = await client.get(
        f"/ui/static/{name}", headers={"If-None-Match": current.headers["etag"]}
    )
    assert revalidated.status_code == 304


async def test_an_unknown_file_is_a_404_naming_the_files_there_are(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/ui/static/nope.js")

    assert_openai_404(response)
    assert "/ui/static/app.js" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/ui/static/../../pyproject.toml",
        "/ui/static/..%2f..%2f__init__.py",
        "/ui/static/%2e%2e/%2e%2e/api/ui.py",
        "/ui/static/..%5c..%5capi%5cui.py",
        "/ui/static/%2Fetc%2Fpasswd",
        "/ui/static//etc/passwd",
        "/ui/static/index.html/..",
        "/ui/../ui/static/../../cli.py",
        "/ui/static/app.js%00.css",
        "/ui/static/.",
    ],
)
async def test_no_spelling_of_a_path_reaches_a_file_that_is_not_shipped(
    router: RouterHandle, path: str
) -> None:
    status, headers, body = await raw_exchange(router.url, "GET", path)

    code = int(status.split()[1])
    assert code in (404, 308), (path, status, body[:200])
    if code == 404:
        assert headers["content-type"].startswith("application/json"), (path, headers)
        assert b'"code":"not_found"' in body.replace(b" ", b"")
    assert b"[build-system]" not in body
    assert b"root:" not in body
    assert b"def add_routes" not in body
    assert b"import" not in body


async def test_with_auth_the_shell_loads_without_a_key_and_the_data_needs_an_admin_key(
    fleet: SimulatedFleet,
) -> None:
    config = config_for(fleet, strategy="rule", extra=AUTH)
    async with running_router(config) as router, httpx.AsyncClient(base_url=router.url) as http:
        page = await http.get("/ui/")
        script = await http.get("/ui/static/app.js")
        redirect = await http.get("/ui")
        with_bad_key = await http.get("/ui/", headers={"Authorization": "Bearer sk-wrong"})
        with_user_key = await http.get("/ui/", headers={"Authorization": f"Bearer {ALICE}"})
        other = await http.get("/ui/other")
        route = await http.post("/route", json={"model": "auto", "messages": []})
        route_as_user = await http.post(
            "/route",
            json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {ALICE}"},
        )
        route_as_admin = await http.post(
            "/route",
            json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {OPS}"},
        )

    assert page.status_code == script.status_code == 200
    assert redirect.status_code == 308
    assert with_bad_key.status_code == with_user_key.status_code == 200
    assert other.status_code == 401  # not a shell file: the operator surface's rule holds
    assert route.status_code == 401
    assert route.json()["error"]["code"] == "invalid_api_key"
    assert route_as_user.status_code == 403
    assert route_as_user.json()["error"]["code"] == "admin_key_required"
    assert route_as_admin.status_code == 200


async def test_with_the_dashboard_switched_off_every_ui_path_is_a_404_in_the_openai_shape(
    fleet: SimulatedFleet,
) -> None:
    config = config_for(fleet, strategy="rule", extra="[ui]\nenabled = false\n")
    async with running_router(config) as router, httpx.AsyncClient(base_url=router.url) as http:
        answers = [await http.get(path) for path in ("/ui", "/ui/", "/ui/static/app.js")]

    for response in answers:
        assert_openai_404(response)
        assert "[ui] enabled = false" in response.json()["error"]["message"]
