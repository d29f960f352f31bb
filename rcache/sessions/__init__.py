"""Server-side sessions in Redis: signed-id cookies, per-key merge, rotation, user index.

::

    config = SessionConfig(secret_keys=[new_key, old_key])
    store = SessionStore(adapter, config)             # AsyncSessionStore: same, awaited
    session = store.load(cookie_value)                # 1 round trip (0 without a cookie)
    session["cart"] = [42]
    store.save(session)                               # 1 round trip (0 if unchanged)
    if should_set_cookie(session):
        set_cookie_header = cookie_header(session, config)

Storage: one Redis hash per session, one field per top-level key (see
:mod:`rcache.sessions._layout`); loading slides the idle expiry in the same round trip,
saving writes only the keys that changed and never brings back a session that was deleted
meanwhile. The pieces the framework integrations share are the pure cookie helpers
(:func:`load_id_from_cookie`, :func:`cookie_header`, :func:`should_set_cookie`,
:func:`vary_cookie`); everything else goes through the stores.
"""

from __future__ import annotations

from rcache.sessions._config import SessionConfig
from rcache.sessions._cookies import (
    cookie_header,
    cookie_value,
    load_id_from_cookie,
    should_set_cookie,
    vary_cookie,
)
from rcache.sessions._errors import SessionTooLarge, SessionUnavailable
from rcache.sessions._ops import SaveStatus
from rcache.sessions._session import Session, new_session_id
from rcache.sessions._store import AsyncSessionStore, SessionStore

__all__ = [
    "AsyncSessionStore",
    "SaveStatus",
    "Session",
    "SessionConfig",
    "SessionStore",
    "SessionTooLarge",
    "SessionUnavailable",
    "cookie_header",
    "cookie_value",
    "load_id_from_cookie",
    "new_session_id",
    "should_set_cookie",
    "vary_cookie",
]
