"""Token locks: ``SET NX PX`` to take, compare-and-delete (``unlock.lua``) to release.

Each acquisition stores a fresh random token; only the holder of that token can release
or extend the lock, so a caller whose lease ran out can never release the lock of the
caller who took it over. The lease (``timeout``) bounds how long a crashed holder blocks
others. The operations here are shared by :class:`Lock` and :class:`AsyncLock` and by the
single-flight fill of ``@cached``.

Locks never fail open: when Redis cannot be reached, acquiring raises the
:class:`~rcache.errors.BackendError` whatever the cache's ``on_error`` (a lock that
pretends to be held would let two callers in).
"""

from __future__ import annotations

import secrets
import time
from types import TracebackType
from typing import TYPE_CHECKING

from rcache.errors import BackendError, RCacheError
from rcache.objects._failures import logger
from rcache.ops import Batch, Op, Sleep
from rcache.scripts import Script
from rcache.ttl import DEFAULT, Default, to_milliseconds

if TYPE_CHECKING:
    from rcache.adapter import AsyncRedisAdapter, RedisAdapter

__all__ = ["UNLOCK", "AsyncLock", "Lock", "LockNotAcquired", "acquire", "release"]

UNLOCK = Script.from_package("rcache.objects", "unlock.lua")
EXTEND = Script.from_package("rcache.objects", "extend.lua")

_FIRST_POLL = 0.005
_MAX_POLL = 0.1


class LockNotAcquired(RCacheError, TimeoutError):
    """A lock could not be taken within its ``blocking_timeout``."""


def acquire(
    key: str, token: bytes, lease_ms: int | None, blocking_timeout: float | None
) -> Op[bool]:
    """Take the lock, waiting up to ``blocking_timeout`` s (None: as long as it takes)."""
    deadline = None if blocking_timeout is None else time.monotonic() + blocking_timeout
    cmd = (
        ("SET", key, token, "NX") if lease_ms is None else ("SET", key, token, "NX", "PX", lease_ms)
    )
    delay = _FIRST_POLL
    while True:
        (taken,) = yield Batch([cmd], idempotent=False)
        if taken:
            return True
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            pause = min(delay, left)
        else:
            pause = delay
        yield Sleep(pause)
        delay = min(delay * 2, _MAX_POLL)


def release(key: str, token: bytes) -> Op[bool]:
    """Release the lock if ``token`` still holds it; return whether it did (errors: False)."""
    try:
        (released,) = yield Batch([UNLOCK([key], [token])])
    except BackendError:
        return False
    return bool(released)


def extend(key: str, token: bytes, lease_ms: int) -> Op[bool]:
    """Set the lease of a lock ``token`` still holds to ``lease_ms``; return whether it did."""
    (extended,) = yield Batch([EXTEND([key], [token, lease_ms])])
    return bool(extended)


def is_locked(key: str) -> Op[bool]:
    """Return whether anyone holds the lock."""
    (exists,) = yield Batch([("EXISTS", key)])
    return bool(exists)


class _LockBase:
    __slots__ = ("_token", "blocking_timeout", "key", "lease_ms", "name")

    def __init__(
        self, key: str, name: str, timeout: float | None, blocking_timeout: float | None
    ) -> None:
        self.key = key
        self.name = name
        self.lease_ms = to_milliseconds(timeout)
        if self.lease_ms == 0:
            raise ValueError("a lock timeout must be positive seconds, or None for no lease")
        if blocking_timeout is not None and blocking_timeout < 0:
            raise ValueError("blocking_timeout must be >= 0 seconds, or None to wait")
        self.blocking_timeout = blocking_timeout
        self._token: bytes | None = None

    @property
    def owned(self) -> bool:
        """Whether this object took the lock (and has not released it); the lease may be over."""
        return self._token is not None

    def _begin(self) -> bytes:
        if self._token is not None:
            raise RuntimeError(f"lock {self.name!r} is already held by this object")
        return secrets.token_bytes(16)

    def _held(self) -> bytes:
        if self._token is None:
            raise RuntimeError(f"lock {self.name!r} is not held by this object")
        return self._token

    def _released(self, released: bool) -> bool:
        self._token = None
        if not released:
            logger.warning(
                "object cache: lock %r was lost before release (lease too short?)", self.name
            )
        return released

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, owned={self.owned})"


class Lock(_LockBase):
    """A Redis lock for blocking code; ``with cache.lock("job", timeout=30):``."""

    __slots__ = ("_adapter",)

    def __init__(
        self,
        adapter: RedisAdapter,
        key: str,
        name: str,
        timeout: float | None,
        blocking_timeout: float | None,
    ) -> None:
        super().__init__(key, name, timeout, blocking_timeout)
        self._adapter = adapter

    def acquire(self, blocking_timeout: float | None | Default = DEFAULT) -> bool:
        """Take the lock; return whether it was taken within ``blocking_timeout``.

        ``blocking_timeout``: seconds to wait (0 = try once, None = as long as it takes);
        DEFAULT = the one the lock was created with.
        """
        wait = self.blocking_timeout if blocking_timeout is DEFAULT else blocking_timeout
        token = self._begin()
        if self._adapter.run(acquire(self.key, token, self.lease_ms, wait)):
            self._token = token
            return True
        return False

    def release(self) -> bool:
        """Release the lock; return False if its lease ran out and it was lost meanwhile."""
        return self._released(self._adapter.run(release(self.key, self._held())))

    def extend(self, timeout: float) -> bool:
        """Set the remaining lease to ``timeout`` seconds; return False if the lock was lost."""
        ms = to_milliseconds(timeout) or 1
        return self._adapter.run(extend(self.key, self._held(), ms))

    def locked(self) -> bool:
        """Return whether anyone holds the lock now."""
        return self._adapter.run(is_locked(self.key))

    def __enter__(self) -> Lock:
        if not self.acquire():
            raise LockNotAcquired(f"lock {self.name!r} not acquired in {self.blocking_timeout}s")
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class AsyncLock(_LockBase):
    """A Redis lock for asyncio code; ``async with cache.lock("job", timeout=30):``."""

    __slots__ = ("_adapter",)

    def __init__(
        self,
        adapter: AsyncRedisAdapter,
        key: str,
        name: str,
        timeout: float | None,
        blocking_timeout: float | None,
    ) -> None:
        super().__init__(key, name, timeout, blocking_timeout)
        self._adapter = adapter

    async def acquire(self, blocking_timeout: float | None | Default = DEFAULT) -> bool:
        """Take the lock; return whether it was taken within ``blocking_timeout``.

        ``blocking_timeout``: seconds to wait (0 = try once, None = as long as it takes);
        DEFAULT = the one the lock was created with.
        """
        wait = self.blocking_timeout if blocking_timeout is DEFAULT else blocking_timeout
        token = self._begin()
        if await self._adapter.run(acquire(self.key, token, self.lease_ms, wait)):
            self._token = token
            return True
        return False

    async def release(self) -> bool:
        """Release the lock; return False if its lease ran out and it was lost meanwhile."""
        return self._released(await self._adapter.run(release(self.key, self._held())))

    async def extend(self, timeout: float) -> bool:
        """Set the remaining lease to ``timeout`` seconds; return False if the lock was lost."""
        ms = to_milliseconds(timeout) or 1
        return await self._adapter.run(extend(self.key, self._held(), ms))

    async def locked(self) -> bool:
        """Return whether anyone holds the lock now."""
        return await self._adapter.run(is_locked(self.key))

    async def __aenter__(self) -> AsyncLock:
        if not await self.acquire():
            raise LockNotAcquired(f"lock {self.name!r} not acquired in {self.blocking_timeout}s")
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.release()
