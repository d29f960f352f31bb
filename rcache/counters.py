"""Counters, fixed-window rate limits and leaderboards, each one round trip per call.

Key layout (``<p>`` = the adapter's key prefix, ``:`` added if missing)::

    <p>counters:1:<name>        string   an integer (INCRBY), with a TTL when windowed
    <p>leaderboards:1:<name>    zset     member -> score

A windowed counter starts its window on the first hit: ``counters_window.lua`` adds and,
if the key has no TTL yet, sets one of ``window`` in the same script, so a counter can
never be left without its expiry. That makes :meth:`Counter.hit` a fixed-window rate
limiter: ``limit`` hits per window, counted on the server, the same for every process.

Operations are generators (:mod:`rcache.ops`); :class:`Counter`/:class:`AsyncCounter` and
:class:`Leaderboard`/:class:`AsyncLeaderboard` only run them through an adapter.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from rcache.adapter import AsyncRedisAdapter, RedisAdapter
from rcache.errors import ConfigurationError
from rcache.keys import KeySpace, key_head
from rcache.ops import Batch, Op
from rcache.scripts import Script
from rcache.ttl import TTL, to_milliseconds

__all__ = [
    "AsyncCounter",
    "AsyncLeaderboard",
    "Counter",
    "HitResult",
    "Leaderboard",
]

WINDOW = Script.from_package("rcache", "counters_window.lua")

Member = str | bytes | int | float


class HitResult(NamedTuple):
    """The outcome of :meth:`Counter.hit`: unpacks as ``allowed, count, reset_in``.

    ``count`` includes this hit (refused hits count too); ``reset_in`` is the number of
    seconds until the window ends and the count starts again from zero.
    """

    allowed: bool
    count: int  # type: ignore[assignment]  # the field shadows tuple.count, on purpose
    reset_in: float


def _window_ms(window: TTL) -> int:
    ms = to_milliseconds(window)
    if not ms:
        raise ConfigurationError("a window must be > 0 seconds")
    return ms


def _int(value: Any) -> int:
    return 0 if value is None else int(value)


def _text(member: Any) -> str:
    return member.decode("utf-8", "replace") if isinstance(member, bytes) else str(member)


# -- counter operations -----------------------------------------------------------------


def incr(key: str, by: int, window_ms: int | None) -> Op[int]:
    """Add ``by`` and return the new value; a window starts on the first hit."""
    if window_ms is None:
        (n,) = yield Batch([("INCRBY", key, by)], idempotent=False)
        return int(n)
    ((n, _),) = yield Batch([WINDOW([key], [by, window_ms])], idempotent=False)
    return int(n)


def hit(key: str, limit: int, window_ms: int, cost: int) -> Op[HitResult]:
    """Count a hit in the current window; allowed while the count is at most ``limit``."""
    ((n, left),) = yield Batch([WINDOW([key], [cost, window_ms])], idempotent=False)
    return HitResult(int(n) <= limit, int(n), max(0, int(left)) / 1000)


def read(key: str) -> Op[int]:
    """Return the counter's value (0 when absent or expired)."""
    (n,) = yield Batch([("GET", key)])
    return _int(n)


def delete(key: str) -> Op[bool]:
    """Delete a counter or leaderboard; True if it existed."""
    (n,) = yield Batch([("UNLINK", key)])
    return bool(n)


# -- leaderboard operations -------------------------------------------------------------


def board_incr(key: str, member: Member, by: float) -> Op[float]:
    (score,) = yield Batch([("ZINCRBY", key, by, member)], idempotent=False)
    return float(score)


def board_top(key: str, n: int) -> Op[list[tuple[str, float]]]:
    if n <= 0:
        return []
    (flat,) = yield Batch([("ZRANGE", key, 0, n - 1, "REV", "WITHSCORES")])
    if flat and isinstance(flat[0], list | tuple):  # a client that pairs them already
        return [(_text(m), float(s)) for m, s in flat]
    return [(_text(m), float(s)) for m, s in zip(flat[::2], flat[1::2], strict=True)]


def board_rank(key: str, member: Member) -> Op[int | None]:
    (rank,) = yield Batch([("ZREVRANK", key, member)])
    return None if rank is None else int(rank)


def board_score(key: str, member: Member) -> Op[float | None]:
    (score,) = yield Batch([("ZSCORE", key, member)])
    return None if score is None else float(score)


def board_trim(key: str, keep: int) -> Op[int]:
    if keep < 0:
        raise ConfigurationError("trim() keeps >= 0 members")
    (removed,) = yield Batch([("ZREMRANGEBYRANK", key, 0, -keep - 1)])
    return int(removed)


def board_remove(key: str, members: tuple[Member, ...]) -> Op[int]:
    if not members:
        return 0
    (removed,) = yield Batch([("ZREM", key, *members)])
    return int(removed)


def board_size(key: str) -> Op[int]:
    (n,) = yield Batch([("ZCARD", key)])
    return int(n)


# -- shells -----------------------------------------------------------------------------


def _keys(adapter: RedisAdapter | AsyncRedisAdapter, prefix: str) -> tuple[str, KeySpace]:
    return key_head(adapter.key_prefix), KeySpace(prefix=prefix)


class _CounterBase:
    def __init__(self, adapter: RedisAdapter | AsyncRedisAdapter, prefix: str) -> None:
        self._lead, self.key_space = _keys(adapter, prefix)

    def key(self, name: str) -> str:
        """Return the Redis key of counter ``name``."""
        return self._lead + self.key_space.key(name)

    @staticmethod
    def _window(window: TTL) -> int | None:
        return None if window is None else _window_ms(window)

    def _hit(self, key: str, limit: int, window: TTL, cost: int) -> Op[HitResult]:
        if limit < 0 or cost < 1:
            raise ConfigurationError("hit() needs limit >= 0 and cost >= 1")
        return hit(self.key(key), limit, _window_ms(window), cost)


class Counter(_CounterBase):
    """Named integer counters, optionally windowed (blocking code).

    ``prefix``: the namespace under the adapter's key prefix (default ``counters``).

    ::

        counters = Counter(adapter)
        counters.incr("signups")
        allowed, count, reset_in = counters.hit(f"login:{ip}", limit=5, window=60)
    """

    def __init__(self, adapter: RedisAdapter, *, prefix: str = "counters") -> None:
        super().__init__(adapter, prefix)
        self._adapter = adapter

    def incr(self, name: str, by: int = 1, window: TTL = None) -> int:
        """Add ``by`` (may be negative) and return the new value.

        ``window``: None = the counter never expires; seconds = it expires that long after
        the hit that created it (a fixed window), and counts from zero after that.
        """
        return self._adapter.run(incr(self.key(name), by, self._window(window)))

    def hit(self, key: str, limit: int, window: TTL, *, cost: int = 1) -> HitResult:
        """Count a hit on rate limit ``key``: at most ``limit`` per ``window`` seconds.

        Return ``(allowed, count, reset_in)`` from one round trip; refused hits count too.
        """
        return self._adapter.run(self._hit(key, limit, window, cost))

    def get(self, name: str) -> int:
        """Return the counter's value (0 if it does not exist or its window ended)."""
        return self._adapter.run(read(self.key(name)))

    def reset(self, name: str) -> bool:
        """Delete the counter (and its window); True if it existed."""
        return self._adapter.run(delete(self.key(name)))


class AsyncCounter(_CounterBase):
    """Named integer counters for asyncio code; see :class:`Counter`."""

    def __init__(self, adapter: AsyncRedisAdapter, *, prefix: str = "counters") -> None:
        super().__init__(adapter, prefix)
        self._adapter = adapter

    async def incr(self, name: str, by: int = 1, window: TTL = None) -> int:
        """Add ``by`` and return the new value; see :meth:`Counter.incr`."""
        return await self._adapter.run(incr(self.key(name), by, self._window(window)))

    async def hit(self, key: str, limit: int, window: TTL, *, cost: int = 1) -> HitResult:
        """Count a hit on rate limit ``key``; see :meth:`Counter.hit`."""
        return await self._adapter.run(self._hit(key, limit, window, cost))

    async def get(self, name: str) -> int:
        """Return the counter's value (0 if absent)."""
        return await self._adapter.run(read(self.key(name)))

    async def reset(self, name: str) -> bool:
        """Delete the counter; True if it existed."""
        return await self._adapter.run(delete(self.key(name)))


class _BoardBase:
    def __init__(self, adapter: RedisAdapter | AsyncRedisAdapter, name: str, prefix: str) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError("a leaderboard needs a non-empty str name")
        self.name = name
        lead, space = _keys(adapter, prefix)
        self.key = lead + space.key(name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class Leaderboard(_BoardBase):
    """A ranking of members by score, highest first (blocking code).

    Members are str (bytes and numbers are stored as their text); ties are ordered by
    member, in reverse. ``prefix``: the namespace under the adapter's key prefix.
    """

    def __init__(self, adapter: RedisAdapter, name: str, *, prefix: str = "leaderboards"):
        super().__init__(adapter, name, prefix)
        self._adapter = adapter

    def incr(self, member: Member, by: float = 1) -> float:
        """Add ``by`` to ``member``'s score (from 0 if new); return the new score."""
        return self._adapter.run(board_incr(self.key, member, by))

    def top(self, n: int = 10) -> list[tuple[str, float]]:
        """Return the ``n`` best ``(member, score)`` pairs, best first."""
        return self._adapter.run(board_top(self.key, n))

    def rank(self, member: Member) -> int | None:
        """Return ``member``'s rank (0 = best), or None if it has no score."""
        return self._adapter.run(board_rank(self.key, member))

    def score(self, member: Member) -> float | None:
        """Return ``member``'s score, or None."""
        return self._adapter.run(board_score(self.key, member))

    def trim(self, keep: int) -> int:
        """Keep only the ``keep`` best members; return how many were removed."""
        return self._adapter.run(board_trim(self.key, keep))

    def remove(self, *members: Member) -> int:
        """Remove ``members``; return how many had a score."""
        return self._adapter.run(board_remove(self.key, members))

    def size(self) -> int:
        """Return the number of members."""
        return self._adapter.run(board_size(self.key))

    def clear(self) -> bool:
        """Delete the whole leaderboard; True if it existed."""
        return self._adapter.run(delete(self.key))


class AsyncLeaderboard(_BoardBase):
    """A ranking of members by score for asyncio code; see :class:`Leaderboard`."""

    def __init__(self, adapter: AsyncRedisAdapter, name: str, *, prefix: str = "leaderboards"):
        super().__init__(adapter, name, prefix)
        self._adapter = adapter

    async def incr(self, member: Member, by: float = 1) -> float:
        """Add ``by`` to ``member``'s score; return the new score."""
        return await self._adapter.run(board_incr(self.key, member, by))

    async def top(self, n: int = 10) -> list[tuple[str, float]]:
        """Return the ``n`` best ``(member, score)`` pairs, best first."""
        return await self._adapter.run(board_top(self.key, n))

    async def rank(self, member: Member) -> int | None:
        """Return ``member``'s rank (0 = best), or None."""
        return await self._adapter.run(board_rank(self.key, member))

    async def score(self, member: Member) -> float | None:
        """Return ``member``'s score, or None."""
        return await self._adapter.run(board_score(self.key, member))

    async def trim(self, keep: int) -> int:
        """Keep only the ``keep`` best members; return how many were removed."""
        return await self._adapter.run(board_trim(self.key, keep))

    async def remove(self, *members: Member) -> int:
        """Remove ``members``; return how many had a score."""
        return await self._adapter.run(board_remove(self.key, members))

    async def size(self) -> int:
        """Return the number of members."""
        return await self._adapter.run(board_size(self.key))

    async def clear(self) -> bool:
        """Delete the whole leaderboard; True if it existed."""
        return await self._adapter.run(delete(self.key))
