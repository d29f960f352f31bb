"""Hot keys: which cache keys are read most, counted by every process into one leaderboard.

A cache records each read with :meth:`HotKeys.note` (a sampled in-process count, no I/O);
every ``flush_every`` seconds the counts go to Redis in one round trip (``ZINCRBY`` per
key into the current window's sorted set, then a trim and an expiry), so the cost per read
is a dictionary update and the cost in round trips is one per process per flush.

Windows are ``window`` seconds long and each lives for two windows; :func:`top` merges the
current window with the previous one (``ZUNION``), so "hot" means "read most in the last
one to two windows", with counts scaled back by the sampling rate. Key layout (``<p>`` is
the adapter's key prefix)::

    <p>hotkeys:{<name>}:<window start, epoch seconds>    zset   cache key -> reads

Both windows of one board share a hash tag, so the merge works on Cluster. Nothing here
raises into a cache's read path: the cache runs :meth:`HotKeys.flush` and absorbs errors
the way it absorbs any other failed round trip.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from rcache.adapter import AsyncRedisAdapter, RedisAdapter
from rcache.errors import ConfigurationError
from rcache.keys import key_head
from rcache.ops import Batch, Op

__all__ = ["HotKeys", "top"]


def _text(member: Any) -> str:
    return member.decode("utf-8", "replace") if isinstance(member, bytes) else str(member)


def _board(lead: str, name: str, start: int) -> str:
    return f"{lead}hotkeys:{{{name}}}:{start}"


class HotKeys:
    """Sampled read counts of one cache, flushed to a shared leaderboard.

    ``sample`` is the fraction of reads counted (each counted read weighs ``1 / sample``);
    ``keep`` bounds the members per window (the coldest are trimmed at each flush);
    ``max_pending`` bounds the distinct keys held in memory between flushes (past it, new
    keys wait for the next flush; keys already pending keep counting).
    """

    def __init__(
        self,
        name: str = "default",
        *,
        sample: float = 0.1,
        flush_every: float = 5.0,
        window: int = 300,
        keep: int = 1000,
        max_pending: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < sample <= 1:
            raise ConfigurationError("HotKeys(sample=...) must be in (0, 1]")
        if flush_every <= 0 or window < 1 or keep < 1 or max_pending < 1:
            raise ConfigurationError(
                "HotKeys needs flush_every > 0, window >= 1, keep >= 1, max_pending >= 1"
            )
        if not name or any(c in name for c in "{}"):
            raise ConfigurationError("a hot-keys board name must be non-empty, without braces")
        self.name = name
        self.sample = sample
        self.flush_every = flush_every
        self.window = window
        self.keep = keep
        self.max_pending = max_pending
        self._clock = clock
        self._weight = 1.0 / sample
        self._pending: Counter[str] = Counter()
        self._next_flush = clock() + flush_every
        self._lock = threading.Lock()
        self._random = random.random

    def note(self, key: str) -> bool:
        """Count one read of ``key`` (sampled); True when a flush is due."""
        if self.sample >= 1 or self._random() < self.sample:
            pending = self._pending
            if key in pending or len(pending) < self.max_pending:
                pending[key] += 1
        return self._clock() >= self._next_flush

    def take(self) -> Counter[str]:
        """Return the counts gathered since the last flush and start afresh."""
        with self._lock:
            taken, self._pending = self._pending, Counter()
            self._next_flush = self._clock() + self.flush_every
        return taken

    def flush_op(self, lead: str, counts: Counter[str]) -> Op[int]:
        """The round trip that adds ``counts`` to the current window; returns keys sent."""
        if not counts:
            return 0
        start = int(self._clock()) // self.window * self.window
        board = _board(lead, self.name, start)
        commands: list[tuple[Any, ...]] = [
            ("ZINCRBY", board, n * self._weight, key) for key, n in counts.items()
        ]
        commands.append(("ZREMRANGEBYRANK", board, 0, -self.keep - 1))
        commands.append(("EXPIRE", board, 2 * self.window + 60))
        yield Batch(commands, idempotent=False)
        return len(counts)

    def flush(self, adapter: RedisAdapter) -> int:
        """Send what was counted (one round trip); returns the number of keys sent."""
        return adapter.run(self.flush_op(key_head(adapter.key_prefix), self.take()))

    async def aflush(self, adapter: AsyncRedisAdapter) -> int:
        """Async :meth:`flush`."""
        return await adapter.run(self.flush_op(key_head(adapter.key_prefix), self.take()))


def top_op(lead: str, name: str, n: int, window: int, now: float) -> Op[list[tuple[str, float]]]:
    """The hottest ``n`` keys of the current and the previous window, most read first."""
    if n < 1:
        raise ConfigurationError("top() needs n >= 1")
    start = int(now) // window * window
    current, previous = _board(lead, name, start), _board(lead, name, start - window)
    (flat,) = yield Batch([("ZUNION", 2, current, previous, "WITHSCORES")])
    if flat and isinstance(flat[0], list | tuple):  # RESP3 pairs
        pairs = [(_text(m), float(s)) for m, s in flat]
    else:
        pairs = [(_text(m), float(s)) for m, s in zip(flat[::2], flat[1::2], strict=True)]
    pairs.sort(key=lambda p: (-p[1], p[0]))
    return pairs[:n]


def top(
    adapter: RedisAdapter, name: str = "default", n: int = 10, *, window: int = 300
) -> list[tuple[str, float]]:
    """Return the ``n`` hottest keys of board ``name`` with their estimated read counts."""
    return adapter.run(top_op(key_head(adapter.key_prefix), name, n, window, time.time()))
