"""Retry with backoff, and a circuit breaker: small state machines with no I/O.

:class:`RetryPolicy` answers "may I try again, and after how long?"; :class:`CircuitBreaker`
answers "is Redis worth calling right now?". The adapters (:mod:`rcache.adapter`) consult
both around every round trip. Time comes from an injectable clock so tests need no sleeps.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rcache.errors import ConfigurationError

__all__ = ["Backoff", "CircuitBreaker", "RetryPolicy"]

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with "equal jitter" and a cap (seconds).

    ``compute(n)`` is the pause before retry ``n`` (1-based): retry 1 is immediate (a
    dropped connection is usually fixed by reconnecting at once); retry ``n >= 2`` waits
    ``d/2 + uniform(0, d/2)`` where ``d = min(cap, base * 2 ** (n - 2))``. Jitter keeps a
    fleet of clients from reconnecting in lockstep after a failover.
    """

    base: float = 0.05
    cap: float = 1.0

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0:
            raise ConfigurationError("backoff base and cap must be >= 0 seconds")

    def compute(self, n: int, rand: Callable[[], float] = random.random) -> float:
        """Return the pause in seconds before retry number ``n`` (1-based)."""
        if n <= 1:
            return 0.0
        d = min(self.cap, self.base * 2 ** (n - 2))
        return float(d / 2 + rand() * d / 2)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and for how long a failed round trip is sent again.

    ``attempts``: sends in total, the first included (1 = never retry). ``deadline``:
    seconds from the first send after which no retry starts (None = only ``attempts``
    bounds it). Only connection errors and timeouts are retried, and only for batches
    that are safe to send twice (see :class:`rcache.ops.Batch`).
    """

    attempts: int = 3
    backoff: Backoff = Backoff()
    deadline: float | None = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigurationError("retry attempts must be >= 1 (1 = no retry)")
        if self.deadline is not None and self.deadline < 0:
            raise ConfigurationError("retry deadline must be >= 0 seconds or None")

    def delay(self, failures: int, elapsed: float) -> float | None:
        """Return the pause before the next send after ``failures`` failures, or None to stop.

        ``elapsed``: seconds since the first send.
        """
        if failures >= self.attempts:
            return None
        pause = self.backoff.compute(failures)
        if self.deadline is not None and elapsed + pause > self.deadline:
            return None
        return pause


class CircuitBreaker:
    """Fail fast while Redis is down, probe now and then, close on the first success.

    States: *closed* (calls go through; ``threshold`` consecutive connection failures open
    it), *open* (calls fail at once for ``cooldown`` seconds), *half-open* (one caller is let
    through as a probe; its success closes the breaker, its failure reopens it for another
    cool-down). Only connection-level failures count: an error *answered* by Redis (a wrong
    type, OOM) proves the server is up and counts as a success.

    Thread-safe; the hot path (closed, no failures) is two attribute reads.
    """

    __slots__ = ("threshold", "cooldown", "_clock", "_failures", "_opened_at", "_probing", "_lock")

    def __init__(self, *, threshold: int = 5, cooldown: float = 1.0, clock: Clock = time.monotonic):
        if threshold < 1:
            raise ConfigurationError("breaker threshold must be >= 1")
        if cooldown < 0:
            raise ConfigurationError("breaker cooldown must be >= 0 seconds")
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        """Return ``"closed"``, ``"open"`` or ``"half-open"``."""
        if self._opened_at is None:
            return "closed"
        if self._probing or self._clock() - self._opened_at >= self.cooldown:
            return "half-open"
        return "open"

    @property
    def is_closed(self) -> bool:
        """True while calls go through normally."""
        return self._opened_at is None

    def allow(self) -> bool:
        """Return True if a call may go to Redis now (it may be the half-open probe)."""
        if self._opened_at is None:
            return True
        with self._lock:
            if self._opened_at is None:
                return True
            if self._probing or self._clock() - self._opened_at < self.cooldown:
                return False
            self._probing = True
            return True

    def record_success(self) -> bool:
        """Note a round trip that reached Redis; return True if this closed the breaker."""
        if self._failures == 0 and self._opened_at is None:
            return False
        with self._lock:
            was_open = self._opened_at is not None
            self._failures = 0
            self._opened_at = None
            self._probing = False
            return was_open

    def record_failure(self) -> bool:
        """Note a connection failure; return True if this opened the breaker."""
        with self._lock:
            self._failures += 1
            if self._opened_at is not None:
                # A failed probe (or a straggler from before the trip): wait another cool-down.
                self._opened_at = self._clock()
                self._probing = False
                return False
            if self._failures >= self.threshold:
                self._opened_at = self._clock()
                return True
            return False

    def reset(self) -> None:
        """Close the breaker and forget past failures."""
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._probing = False

    def __repr__(self) -> str:
        return f"CircuitBreaker(state={self.state!r}, failures={self._failures})"
