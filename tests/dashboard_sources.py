"""What the blocking dashboards (Django, Flask) show in their tests, on the test's Redis."""

from __future__ import annotations

from rcache.metrics import Metrics
from rcache.objects import ObjectCache
from rcache.sessions import SessionConfig, SessionStore

SECRET = "dashboard-tests-secret-0123456789abcdef"


class Sources:
    """An object cache and a session store, registered in ``metrics`` as catalog and logins.

    The cache has had one hit and one miss.
    """

    def __init__(self, url: str, prefix: str) -> None:
        self.cache = ObjectCache.from_url(url, prefix=prefix)
        config = SessionConfig(secret_keys=[SECRET], prefix=prefix + "s:", secure=False)
        self.sessions = SessionStore.from_url(url, config)
        self.metrics = Metrics()
        self.metrics.add("catalog", self.cache)
        self.metrics.add("logins", self.sessions)
        self.cache.set("k", 1)
        self.cache.get("k")  # a hit
        self.cache.get("nope")  # a miss

    def close(self) -> None:
        self.cache.close()
        self.sessions.close()
