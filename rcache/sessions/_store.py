"""``SessionStore`` and ``AsyncSessionStore``: thin shells over the operations in ``_ops``."""

from __future__ import annotations

from typing import Any

from rcache.adapter import AsyncRedisAdapter, RedisAdapter
from rcache.sessions import _ops, _rotation, _users
from rcache.sessions._config import SessionConfig
from rcache.sessions._cookies import (
    cookie_header,
    load_id_from_cookie,
    should_set_cookie,
    vary_cookie,
)
from rcache.sessions._layout import Storage
from rcache.sessions._ops import SaveStatus
from rcache.sessions._session import Session

__all__ = ["AsyncSessionStore", "SessionStore"]


def _unchanged(session: Session) -> bool:
    """Whether a save has nothing to do (what ``_ops.save`` finds without a round trip)."""
    return not session._dirty and not session._user_dirty and not session._gone


class _StoreBase:
    """What both stores share: the configuration, the key layout and the cookie helpers."""

    def __init__(self, adapter: RedisAdapter | AsyncRedisAdapter, config: SessionConfig) -> None:
        self.adapter = adapter
        self.config = config
        self._storage = Storage.build(
            config, adapter.key_prefix, cluster=adapter.settings.mode == "cluster"
        )
        self._owns_adapter = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.adapter!r}, prefix={self._storage.sessions.prefix!r})"

    def new(self) -> Session:
        """Return a new, empty session (stored by :meth:`save` once it holds data)."""
        return Session()

    def load_id_from_cookie(self, value: str | bytes | None) -> str | None:
        """Return the verified session id in a cookie value, or None (never raises)."""
        return load_id_from_cookie(value, self.config)

    def cookie_header(self, session: Session) -> str:
        """Return the ``Set-Cookie`` value for ``session`` (or a deletion cookie)."""
        return cookie_header(session, self.config)

    @staticmethod
    def should_set_cookie(session: Session) -> bool:
        """Return whether the response must carry :meth:`cookie_header`."""
        return should_set_cookie(session)

    @staticmethod
    def vary_cookie(session: Session) -> bool:
        """Return whether the response must carry ``Vary: Cookie``."""
        return vary_cookie(session)


class SessionStore(_StoreBase):
    """Sessions in Redis, for blocking code. Every method is one operation of ``_ops``.

    ::

        store = SessionStore(RedisAdapter.from_url(url), SessionConfig(secret_keys=[key]))
        session = store.load(request.cookies.get("session"))     # 0 or 1 round trip
        session["cart"] = [1, 2]
        store.save(session)                                     # 0 or 1 round trip
        if store.should_set_cookie(session):
            response.headers["Set-Cookie"] = store.cookie_header(session)
    """

    adapter: RedisAdapter

    def __init__(self, adapter: RedisAdapter, config: SessionConfig) -> None:
        super().__init__(adapter, config)

    @classmethod
    def from_url(cls, url: str, config: SessionConfig, **settings: Any) -> SessionStore:
        """Build a store with its own adapter (closed by :meth:`close`)."""
        store = cls(RedisAdapter.from_url(url, **settings), config)
        store._owns_adapter = True
        return store

    def load(self, cookie_value: str | bytes | None) -> Session:
        """Return the session named by a cookie value, or a new empty session.

        A missing, tampered, malformed, oversized or wrongly signed cookie gives a new
        session without asking Redis; an unknown or expired id costs one round trip. When
        Redis fails, ``config.on_load_error`` decides: a read-only empty stand-in, or raise.
        """
        session_id = load_id_from_cookie(cookie_value, self.config)
        return self.adapter.run(_ops.load(self._storage, session_id))

    def load_verified(self, session_id: str | None) -> Session:
        """Return the session ``session_id``, an id :meth:`load_id_from_cookie` returned.

        For glue that checked the cookie already (to pick one among several): :meth:`load`
        without checking the signature a second time. None gives a new session.
        """
        return self.adapter.run(_ops.load(self._storage, session_id))

    def save(self, session: Session) -> SaveStatus:
        """Write what changed (see :func:`rcache.sessions._ops.save`); raise on failure."""
        if _unchanged(session):
            return SaveStatus.UNCHANGED
        return self.adapter.run(_ops.save(self._storage, session))

    def rotate(self, session: Session) -> None:
        """Give the session a new id, keeping its data; the old id stops working."""
        self.adapter.run(_rotation.rotate(self._storage, session))

    def flush(self, session: Session) -> None:
        """Delete the stored session and make ``session`` a new empty one (logout)."""
        self.adapter.run(_rotation.flush(self._storage, session))

    def delete(self, session_id: str) -> bool:
        """Delete the session with id ``session_id``; return whether it existed."""
        return self.adapter.run(_rotation.delete(self._storage, session_id))

    def set_user(self, session: Session, user_id: str | int) -> SaveStatus:
        """Record the session's user and index it under ``user_id``."""
        return self.adapter.run(_users.set_user(self._storage, session, user_id))

    def sessions_for(self, user_id: str | int) -> list[str]:
        """Return the ids of the user's live sessions."""
        return self.adapter.run(_users.sessions_for(self._storage, user_id))

    def revoke_all(self, user_id: str | int) -> int:
        """Delete every session of the user; return how many were deleted."""
        return self.adapter.run(_users.revoke_all(self._storage, user_id))

    def close(self) -> None:
        """Close the adapter if :meth:`from_url` created it."""
        if self._owns_adapter:
            self.adapter.close()


class AsyncSessionStore(_StoreBase):
    """Sessions in Redis, for asyncio code: :class:`SessionStore`'s methods, awaited."""

    adapter: AsyncRedisAdapter

    def __init__(self, adapter: AsyncRedisAdapter, config: SessionConfig) -> None:
        super().__init__(adapter, config)

    @classmethod
    def from_url(cls, url: str, config: SessionConfig, **settings: Any) -> AsyncSessionStore:
        """Build a store with its own adapter (closed by :meth:`aclose`)."""
        store = cls(AsyncRedisAdapter.from_url(url, **settings), config)
        store._owns_adapter = True
        return store

    async def load(self, cookie_value: str | bytes | None) -> Session:
        """Return the session named by a cookie value, or a new empty session."""
        session_id = load_id_from_cookie(cookie_value, self.config)
        return await self.adapter.run(_ops.load(self._storage, session_id))

    async def load_verified(self, session_id: str | None) -> Session:
        """Return the session ``session_id``, an id :meth:`load_id_from_cookie` returned."""
        return await self.adapter.run(_ops.load(self._storage, session_id))

    async def save(self, session: Session) -> SaveStatus:
        """Write what changed; raise on failure."""
        if _unchanged(session):
            return SaveStatus.UNCHANGED
        return await self.adapter.run(_ops.save(self._storage, session))

    async def rotate(self, session: Session) -> None:
        """Give the session a new id, keeping its data; the old id stops working."""
        await self.adapter.run(_rotation.rotate(self._storage, session))

    async def flush(self, session: Session) -> None:
        """Delete the stored session and make ``session`` a new empty one (logout)."""
        await self.adapter.run(_rotation.flush(self._storage, session))

    async def delete(self, session_id: str) -> bool:
        """Delete the session with id ``session_id``; return whether it existed."""
        return await self.adapter.run(_rotation.delete(self._storage, session_id))

    async def set_user(self, session: Session, user_id: str | int) -> SaveStatus:
        """Record the session's user and index it under ``user_id``."""
        return await self.adapter.run(_users.set_user(self._storage, session, user_id))

    async def sessions_for(self, user_id: str | int) -> list[str]:
        """Return the ids of the user's live sessions."""
        return await self.adapter.run(_users.sessions_for(self._storage, user_id))

    async def revoke_all(self, user_id: str | int) -> int:
        """Delete every session of the user; return how many were deleted."""
        return await self.adapter.run(_users.revoke_all(self._storage, user_id))

    async def aclose(self) -> None:
        """Close the adapter if :meth:`from_url` created it."""
        if self._owns_adapter:
            await self.adapter.aclose()
