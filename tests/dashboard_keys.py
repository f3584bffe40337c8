"""The ``[auth]`` section the dashboard's tests run under: ``alice``, a client key, and ``ops``,
an admin key (the only kind the dashboard's data is shown to)."""

from __future__ import annotations

import hashlib
from typing import Final

OPS: Final = "sk-octo-ops-0123456789abcdefghijkl"
ALICE: Final = "sk-octo-alice-0123456789abcdefghij"


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


AUTH: Final = f"""
[auth]
[[auth.keys]]
name = "alice"
key_sha256 = "{sha(ALICE)}"
[[auth.keys]]
name = "ops"
key_sha256 = "{sha(OPS)}"
admin = true
"""
