"""rcache for ASGI apps (Starlette, FastAPI): framework glue only; the logic is in `rcache`."""

from __future__ import annotations

from rcache_asgi.sessions import (
    SessionMiddleware,
    flush_session,
    regenerate_session,
    session_store,
)

__all__: list[str] = [
    "SessionMiddleware",
    "flush_session",
    "regenerate_session",
    "session_store",
]
