"""Helpers for the Django session tests: a view of the configured engine and its Redis."""

from __future__ import annotations

import redis

from rcache.sessions import SessionConfig, load_id_from_cookie
from rcache_django._sessions_stores import storage, stores

#: Adapter settings that make an outage show within a request, not after seconds.
FAST = {
    "breaker_cooldown": 0.1,
    "retry_attempts": 1,
    "socket_timeout": 0.5,
    "socket_connect_timeout": 0.5,
}


class Engine:
    """The engine as configured for one test, plus ways to look at what it stored."""

    def __init__(self, url: str, prefix: str, client: redis.Redis) -> None:
        self.url = url
        self.prefix = prefix
        self.raw = client

    @property
    def config(self) -> SessionConfig:
        return stores.config().session

    def session_id(self, cookie: str) -> str:
        """The id inside a signed cookie value (fails the test if it does not verify)."""
        session_id = load_id_from_cookie(cookie, self.config)
        assert session_id is not None, "the cookie does not verify"
        return session_id

    def key(self, cookie: str) -> str:
        """The Redis key of the session a cookie names."""
        return storage(stores.sync()).key(self.session_id(cookie))

    def stored(self, cookie: str) -> bool:
        return bool(self.raw.exists(self.key(cookie)))
