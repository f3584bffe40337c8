"""Access control: client keys, what each may use, and its limits.

``keys`` finds who sent a request, ``permissions`` what that key may use, ``limits`` the
per-key counters kept in this process, ``redis_store`` the same counters kept in Redis, and
``state`` which of the two answers (Redis when configured and reachable, this process when not).
The HTTP side (``api.auth``, ``api.access``) is their only caller.
"""
