"""``[state]``: the Redis server whose counters every worker and router instance share.

Only the URL's form is checked here (scheme, host, database number); whether the server answers
is a matter of the moment, not of the file: the router starts, and keeps serving, without it.
The password belongs in an environment variable (``password_env``), like the upstream keys;
one written into the URL is accepted but never shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from octoroute.config import rules
from octoroute.config.reader import Table, show
from octoroute.config.redact import redact_url
from octoroute.config.schema import Secret, StateConfig

if TYPE_CHECKING:
    from collections.abc import Mapping

SCHEMES: Final = ("redis", "rediss", "unix")
"""``rediss`` is Redis over TLS; ``unix`` a local socket (``unix:///run/redis.sock``)."""


def check_state(root: Table, environ: Mapping[str, str]) -> StateConfig | None:
    """``[state]``: optional; ``None`` after a problem."""
    table = root.table("state")
    if table is None:
        return None
    url = table.string("redis_url", None)
    if url is not None and (problem := redis_url_problem(url)):
        table.fail("redis_url", problem)
        url = None
    password = _password(table, environ)
    if password is not None and password[0] is not None and "redis_url" not in table.data:
        table.fail("password_env", "is only used with redis_url; set redis_url too")
        password = None
    table.close()
    if password is None or ("redis_url" in table.data and url is None):
        return None
    return StateConfig(redis_url=url, password_env=password[0], password=password[1])


def redis_url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a Redis URL, or ``None``."""
    form = (
        'must be a Redis URL such as "redis://127.0.0.1:6379/0", "rediss://host:6380/0" (TLS) '
        'or "unix:///run/redis/redis.sock"'
    )
    if problem := rules.control_character_problem(url):
        return f"{problem}, got {show(redact_url(url))}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return f"{form}, got {show(redact_url(url))}"
    if parts.scheme not in SCHEMES:
        return f"{form}, got {show(redact_url(url))}"
    if parts.scheme == "unix":
        return None if parts.path else f"{form}, got {show(redact_url(url))}"
    if not parts.hostname:
        return f"{form}, got {show(redact_url(url))}"
    if port == 0:
        return f"has port 0; give the Redis server's port, got {show(redact_url(url))}"
    database = parts.path.strip("/")
    if database and not database.isdigit():
        return (
            f"the path must be a database number (/0 to /15 on a default server), got "
            f"{show(redact_url(url))}"
        )
    return None


def _password(table: Table, environ: Mapping[str, str]) -> tuple[str | None, Secret | None] | None:
    """``password_env`` and the password it names; ``(None, None)`` when absent."""
    found = rules.env_value(table, "password_env", environ)
    if found is None:
        return None if "password_env" in table.data else (None, None)
    return found[0], Secret(found[1])
