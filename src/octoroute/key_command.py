"""``octoroute key new NAME``: make a client key, show it once, and print what to paste.

The key is 32 random bytes from the operating system's CSPRNG (``secrets``), written as
``sk-octo-`` and 43 URL-safe base64 characters, so it survives any header, shell or config file
unquoted, and secret scanners can recognise it by its prefix. Only its SHA-256 goes into the
configuration: the router never needs the key itself, and a leaked config file leaks no key.
"""

from __future__ import annotations

import secrets
import sys
from typing import Final, TextIO

from octoroute.config.auth import key_name_problem, sha256_hex

PREFIX: Final = "sk-octo-"
RANDOM_BYTES: Final = 32


def new_key() -> str:
    """A fresh client key: ``sk-octo-`` and 256 random bits."""
    return PREFIX + secrets.token_urlsafe(RANDOM_BYTES)


def toml_lines(name: str, key: str, *, admin: bool = False) -> str:
    """The ``[[auth.keys]]`` entry for ``key`` called ``name``, with the optional keys shown
    commented out."""
    lines = [
        "[[auth.keys]]",
        f'name = "{name}"',
        f'key_sha256 = "{sha256_hex(key)}"',
    ]
    if admin:
        lines.append(
            "admin = true                    # may use /metrics, /models, /route, /admin/*"
        )
    lines += [
        '# tiers = ["fast", "balanced"]  # what it may use (default: every tier and embeddings)',
        '# models = ["auto"]             # what it may name in "model" (default: anything)',
        "# requests_per_minute = 60",
        "# tokens_per_minute = 200000    # estimated prompt + the most the answer may take",
        "# max_concurrent = 4",
    ]
    return "\n".join(lines) + "\n"


def key_new(name: str, *, admin: bool = False, out: TextIO | None = None) -> int:
    """Print a new key for ``name`` and its TOML entry; exit code 2 for a name the
    configuration would refuse."""
    stream = out or sys.stdout
    problem = key_name_problem(name)
    if problem is not None:
        print(f"octoroute key new: the name {problem}, got {name[:80]!r}", file=sys.stderr)
        return 2
    key = new_key()
    stream.write(
        f"A new client key for {name!r}. It is shown only this once: hand it to the client now\n"
        "(the router keeps only its SHA-256, and cannot show it again).\n\n"
        f"  {key}\n\n"
        "Add these lines to your configuration (the [auth] section), then reload or restart\n"
        "the router:\n\n" + toml_lines(name, key, admin=admin)
    )
    return 0
