"""The TLS keys of an endpoint, checked at load time.

A private CA file that is missing, unreadable or not PEM would otherwise surface as a TLS error
on the first request, blamed on the upstream. Checking the files here puts the mistake in
``octoroute check``'s report instead, with the key that holds it. The files are only read and
looked at (PEM markers), not loaded: the ``ssl`` module belongs to the upstream layer, which
builds each endpoint's context from these paths once at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from octoroute.config.reader import Table

TLS_KEYS = ("tls_ca_file", "tls_verify", "tls_client_cert", "tls_client_key")


class TlsSettings(NamedTuple):
    """An endpoint's TLS keys as read, before they go into its ``EndpointConfig``."""

    ca_file: str | None
    verify: bool
    client_cert: str | None
    client_key: str | None


def check_tls(table: Table, base_url: str | None) -> TlsSettings | None:
    """The TLS keys of one endpoint table, loaded once to prove they work; ``None`` on a problem."""
    ca_file = table.string("tls_ca_file", None)
    verify = table.boolean("tls_verify", True)
    client_cert = table.string("tls_client_cert", None)
    client_key = table.string("tls_client_key", None)
    failed = any(
        name in table.data and value is None
        for name, value in (
            ("tls_ca_file", ca_file),
            ("tls_verify", verify),
            ("tls_client_cert", client_cert),
            ("tls_client_key", client_key),
        )
    )
    if failed or verify is None:
        return None
    given = [name for name in TLS_KEYS if name in table.data]
    if given and base_url is not None and not base_url.lower().startswith("https://"):
        table.fail(given[0], "only applies to https:// base_url values; this one is plain http")
        return None
    if client_key is not None and client_cert is None:
        table.fail("tls_client_key", "needs tls_client_cert: the certificate this key belongs to")
        return None
    if ca_file is not None and not verify:
        table.fail(
            "tls_verify",
            "false turns certificate checks off, so tls_ca_file would be ignored; keep one of them",
        )
        return None
    if ca_file is not None and not _pem(table, "tls_ca_file", ca_file, (b"CERTIFICATE",)):
        return None
    if client_cert is not None:
        # The key may be inside the certificate file, as many tools write them.
        wanted = (b"CERTIFICATE",) if client_key is not None else (b"CERTIFICATE", b"PRIVATE KEY")
        if not _pem(table, "tls_client_cert", client_cert, wanted):
            return None
    if client_key is not None and not _pem(table, "tls_client_key", client_key, (b"PRIVATE KEY",)):
        return None
    return TlsSettings(ca_file, verify, client_cert, client_key)


MAX_PEM_BYTES = 16 * 1024 * 1024
"""A CA bundle is at most a few hundred KiB; reading more than this is reading the wrong file."""


def _pem(table: Table, name: str, path: str, wanted: tuple[bytes, ...]) -> bool:
    """Whether ``path`` is a readable PEM file with a block of each ``wanted`` kind; otherwise
    the problem is recorded on ``name``."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_PEM_BYTES)
    except FileNotFoundError:
        table.fail(name, f"file not found: {path}")
        return False
    except IsADirectoryError:
        table.fail(name, f"is a directory, not a PEM file: {path}")
        return False
    except PermissionError:
        table.fail(name, f"permission denied reading {path}")
        return False
    except OSError as error:
        table.fail(name, f"cannot read {path}: {error.strerror or error}")
        return False
    for kind in wanted:
        if b"-----BEGIN " not in data or kind not in data:
            what = "certificate" if kind == b"CERTIFICATE" else "private key"
            table.fail(
                name, f"{path} holds no PEM {what} (a -----BEGIN ...{kind.decode()}----- block)"
            )
            return False
    return True
