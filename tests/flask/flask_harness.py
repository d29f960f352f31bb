"""Helpers for the Flask session tests: requests with an explicit cookie, Redis peeks."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

import redis
from flask import Flask

from rcache.sessions import SessionStore

SECRET = "flask-session-secret-0123456789abcdef"

#: Adapter settings that make an outage show within a request, not after seconds.
FAST = {
    "breaker_cooldown": 0.1,
    "retry_attempts": 1,
    "socket_timeout": 0.5,
    "socket_connect_timeout": 0.5,
}


class Site:
    """One app and its store; requests carry exactly the cookie a test gives them."""

    def __init__(self, app: Flask, store: SessionStore, raw: redis.Redis) -> None:
        self.app = app
        self.store = store
        self.raw = raw
        self.name = store.config.cookie_name

    def get(self, path: str, cookie: str | None = None) -> Any:
        headers = {"Cookie": f"{self.name}={cookie}"} if cookie is not None else {}
        return self.app.test_client(use_cookies=False).get(path, headers=headers)

    def cookie_of(self, response: Any) -> str | None:
        """The session cookie the response sets ("" for a deletion), None if it sets none."""
        morsels = [SimpleCookie(h) for h in response.headers.getlist("Set-Cookie")]
        values = [m[self.name].value for m in morsels if self.name in m]
        assert len(values) <= 1, values
        return values[0] if values else None

    def login(self, name: str = "alice") -> str:
        response = self.get(f"/login/{name}")
        assert response.status_code == 200
        cookie = self.cookie_of(response)
        assert cookie
        return cookie

    def session_id(self, cookie: str) -> str:
        session_id = self.store.load_id_from_cookie(cookie)
        assert session_id is not None, "the cookie does not verify"
        return session_id

    def key(self, cookie: str) -> str:
        return self.store._storage.key(self.session_id(cookie))

    def stored(self, cookie: str) -> bool:
        return bool(self.raw.exists(self.key(cookie)))

    def close(self) -> None:
        self.store.close()
        self.raw.close()
