"""Each endpoint's TLS settings as an ``ssl.SSLContext``, built once at start-up.

The loader has already checked the files (``config/tls.py``); loading them here happens once per
endpoint when its ``Target`` is built, never per connection. Endpoints with the default settings
get no context of their own: the pool shares one default context among them.
"""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

from octoroute.config.schema import EndpointConfig


def tls_settings(endpoint: EndpointConfig) -> tuple[object, ...]:
    """What tells this endpoint's TLS apart from the default: ``()`` when nothing does."""
    settings = (
        endpoint.tls_ca_file,
        endpoint.tls_verify,
        endpoint.tls_client_cert,
        endpoint.tls_client_key,
    )
    return () if settings == (None, True, None, None) else ("tls", *settings)


def tls_context(endpoint: EndpointConfig) -> ssl.SSLContext | None:
    """The endpoint's own context, or ``None`` for the shared default one.

    ``tls_ca_file`` replaces the system trust store (a private CA); ``tls_verify = false`` checks
    neither the certificate nor the host name; ``tls_client_cert`` (and ``tls_client_key``) is
    presented to servers that ask for one.
    """
    if not tls_settings(endpoint):
        return None
    # With a cafile, create_default_context trusts that bundle only, not the system store.
    context = ssl.create_default_context(cafile=endpoint.tls_ca_file)
    if not endpoint.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if endpoint.tls_client_cert is not None:
        context.load_cert_chain(endpoint.tls_client_cert, endpoint.tls_client_key)
    return context


def tls_files_digest(endpoint: EndpointConfig) -> bytes:
    """A digest of the TLS files the endpoint names (empty when it names none): a reload that
    finds a rotated certificate or CA bundle under the same path sets the endpoint up anew.

    Raises ``OSError`` when a file cannot be read."""
    paths = [
        path
        for path in (endpoint.tls_ca_file, endpoint.tls_client_cert, endpoint.tls_client_key)
        if path is not None
    ]
    if not paths:
        return b""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
        digest.update(b"\0")
    return digest.digest()
