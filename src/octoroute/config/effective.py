"""The effective configuration as plain JSON values, with every credential masked.

The dashboard shows the configuration a router runs (defaults filled in, command-line overrides
applied) so nobody has to guess; what it must never show is a credential. Masked here: upstream
API keys (``api_key``), client key hashes (``key_sha256``: a hash of a short key can be brute
forced), the Redis password, and the userinfo of every URL (``base_url``, ``redis_url``).
Names of environment variables (``api_key_env``, ``key_env``, ``password_env``) are shown: they
say where a secret comes from, not what it is.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from octoroute.config.redact import MASK, redact_url
from octoroute.config.schema import Config, Secret

CREDENTIAL_KEYS: Final = frozenset({"api_key", "key_sha256", "password"})
"""Keys whose value is shown as :data:`~octoroute.config.redact.MASK` whenever one is set."""


def _masked_secret(value: object) -> object:
    if isinstance(value, Secret):
        return MASK
    raise NotImplementedError(f"cannot show a {type(value).__name__} in the configuration")


def effective_config(config: Config) -> dict[str, Any]:
    """``config`` as JSON-ready builtins (``None`` values kept, tuples as lists, sets as sorted
    lists), every credential masked; what ``GET /admin/state`` shows as ``config.effective``."""
    data = msgspec.to_builtins(config, enc_hook=_masked_secret)
    shown = _redacted(data)
    assert isinstance(shown, dict)
    return shown


def _redacted(value: object, key: str = "") -> object:
    if key in CREDENTIAL_KEYS:
        return None if value is None else MASK
    if isinstance(value, dict):
        return {name: _redacted(item, name) for name, item in value.items()}
    if isinstance(value, list | tuple):
        items = [_redacted(item) for item in value]
        if key in _SETS:
            return sorted(items, key=str)
        return items
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value


_SETS: Final = frozenset({"native", "compat", "tiers", "models"})
"""Keys holding a set in the configuration: shown sorted, so the answer is stable."""
