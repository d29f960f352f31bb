"""The invalidation listener of the local tier, as a state machine and a loop. No I/O.

One dedicated connection, speaking RESP2, does everything (Redis 7.0 and later)::

    CLIENT ID                                          -> its own id, N
    CLIENT TRACKING on REDIRECT N BCAST PREFIX <space>  (pipelined with the next one)
    SUBSCRIBE __redis__:invalidate

Tracking redirected to the connection itself: Redis sends the invalidation messages of
every key under the cache's key space (entries and tag tokens alike, whoever writes them,
this process included) to that connection as pub/sub messages (a list of keys; a null
payload means "everything", e.g. FLUSHALL). Tracking belongs to the connection that
enabled it and ends when it closes, so tracking and delivery share one fate: there is no
second connection whose silent loss would stop the messages while the subscription looks
healthy. (A connection in RESP2 pub/sub mode accepts no CLIENT command, hence the order;
a write between the two commands is simply not reported, which is harmless because the
tier only starts holding entries once the subscription is confirmed.)

Phases::

    DOWN --connect--> HANDSHAKE --subscription confirmed--> LIVE (the store holds entries)
    any --error, EOF, no reply in time, Sentinel master moved--> DOWN (store flushed,
                                                                bypassed; reconnect with backoff)

A PING goes out after ``health_check_interval`` seconds without traffic; no reply within
``reply_timeout`` drops the connection. :func:`listen` is the loop, written once as a
generator of effects that the thread driver and the asyncio driver carry out
(:mod:`rcache.objects._local_drivers`).
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from collections.abc import Callable, Generator
from typing import Any, NamedTuple, TypeAlias

from rcache.errors import BackendError, BackendTimeout, BackendUnavailable, RCacheError
from rcache.objects._local_store import LocalStore
from rcache.ops import Command
from rcache.resilience import Backoff

__all__ = ["CHANNEL", "Listener", "Phase", "listen"]

logger = logging.getLogger("rcache.objects")

Clock = Callable[[], float]

CHANNEL = b"__redis__:invalidate"
MAX_WAIT = 1.0  # longest single wait (seconds), so a close from elsewhere is seen soon


class Read(NamedTuple):
    """Read one reply, waiting up to ``seconds``; the result is the reply or None."""

    seconds: float


class Send(NamedTuple):
    """Send ``commands`` on the connection (pipelined)."""

    commands: list[Command]


class Pause(NamedTuple):
    """Wait ``seconds`` (cut short by a close)."""

    seconds: float


class Drop(NamedTuple):
    """Close the connection, if any; never fails."""

    reason: str


class Signal(enum.Enum):
    CONNECT = "connect"  # open the connection (re-resolving a Sentinel master)
    CHECK_MASTER = "check master"  # result: True if the Sentinel master is elsewhere now


CONNECT = Signal.CONNECT
CHECK_MASTER = Signal.CHECK_MASTER

Effect: TypeAlias = Read | Send | Pause | Drop | Signal


class Phase(enum.Enum):
    DOWN = "down"
    HANDSHAKE = "handshake"
    LIVE = "live"


class Listener:
    """The listener's state and decisions; it drives the store's live/down switch."""

    def __init__(
        self,
        store: LocalStore,
        *,
        prefix: str,
        backoff: Backoff,
        health_check_interval: float,
        reply_timeout: float,
        check_master: bool,
        clock: Clock,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.backoff = backoff
        self.health_check_interval = health_check_interval
        self.reply_timeout = reply_timeout
        self.check_master = check_master
        self.clock = clock
        self.phase = Phase.DOWN
        self.closed = False
        self.client_id: int | None = None
        self.failures = 0
        self._retry_at = 0.0
        self._last_rx = 0.0
        self._deadline: float | None = None
        self._master_at = 0.0
        self._lost_at: float | None = None
        self._outbox: list[Command] = []
        self._expect: deque[bytes] = deque()

    def tracking_command(self, client_id: int) -> Command:
        """Return the CLIENT TRACKING command for a connection whose id is ``client_id``."""
        cmd: Command = ("CLIENT", "TRACKING", "on", "REDIRECT", client_id, "BCAST")
        return (*cmd, "PREFIX", self.prefix) if self.prefix else cmd

    # -- the decision ----------------------------------------------------------------------

    def next_step(self, now: float) -> Effect:
        """Return what to do next."""
        if self.phase is Phase.DOWN:
            return CONNECT if now >= self._retry_at else Pause(self._retry_at - now)
        if self._deadline is not None and now >= self._deadline:
            return Drop(f"no reply from Redis within {self.reply_timeout:g}s")
        if (
            self.phase is Phase.LIVE
            and not self._expect
            and now - self._last_rx >= self.health_check_interval
        ):
            self._outbox.append(("PING",))
            self._expect.append(b"pong")
        if self._outbox:
            commands, self._outbox = self._outbox, []
            self._deadline = now + self.reply_timeout
            return Send(commands)
        if self.check_master and self.phase is Phase.LIVE and now >= self._master_at:
            self._master_at = now + self.health_check_interval
            return CHECK_MASTER
        if self._deadline is not None:
            wait = self._deadline - now
        else:
            wait = self._last_rx + self.health_check_interval - now
        return Read(max(0.0, min(wait, MAX_WAIT)))

    # -- what happened ---------------------------------------------------------------------

    def on_connected(self, now: float) -> None:
        """A connection is open: ask for its id first."""
        self.phase = Phase.HANDSHAKE
        self.client_id = None
        self._outbox = [("CLIENT", "ID")]
        self._expect = deque([b"id"])
        self._deadline = None
        self._last_rx = now
        self._master_at = now + self.health_check_interval

    def on_frame(self, now: float, frame: Any) -> None:
        """Take in one reply or message; raise BackendError if the handshake is refused."""
        self._last_rx = now
        expected = self._expect[0] if self._expect else None
        if isinstance(frame, list) and len(frame) == 3 and frame[0] == b"message":
            if frame[1] == CHANNEL and self.phase is Phase.LIVE:
                self._invalidate(frame[2])
        elif isinstance(frame, RCacheError):
            if self.phase is not Phase.LIVE:
                raise BackendUnavailable(f"Redis refused the invalidation setup: {frame}")
            logger.warning("local tier: Redis answered the invalidation connection: %s", frame)
            if self._expect:
                self._expect.popleft()
        elif expected == b"id" and isinstance(frame, int):
            self._expect.popleft()
            self.client_id = frame
            self._outbox = [self.tracking_command(frame), ("SUBSCRIBE", CHANNEL)]
            self._expect.extend((b"ok", b"subscribe"))
        elif expected == b"ok" and frame in (b"OK", "OK"):
            self._expect.popleft()
        elif expected == b"subscribe" and isinstance(frame, list) and frame[:1] == [b"subscribe"]:
            self._expect.popleft()
            self._live(now)
        elif expected == b"pong" and (
            (isinstance(frame, list) and frame[:1] == [b"pong"]) or frame == b"PONG"
        ):
            self._expect.popleft()
        elif self.phase is not Phase.LIVE:
            raise BackendUnavailable(f"unexpected reply during the invalidation setup: {frame!r}")
        else:
            logger.debug("local tier: ignoring an unexpected reply of type %s", type(frame))
        self._deadline = now + self.reply_timeout if self._expect else None

    def _invalidate(self, payload: Any) -> None:
        if payload is None:  # FLUSHALL / FLUSHDB, or Redis could not name the keys
            self.store.flush()
            return
        try:
            keys = [k.decode("utf-8") for k in payload]
        except (AttributeError, TypeError, UnicodeDecodeError):
            self.store.flush()  # not keys this cache could have written: be safe
            return
        self.store.invalidate(keys)

    def _live(self, now: float) -> None:
        self.phase = Phase.LIVE
        self.failures = 0
        self.store.go_live()
        if self._lost_at is not None:
            logger.warning(
                "local tier: invalidation connection back after %.3fs; serving locally again",
                now - self._lost_at,
            )
            self._lost_at = None

    def on_lost(self, now: float, error: BaseException) -> None:
        """The connection (or an attempt) failed: flush, bypass, reconnect after a pause."""
        was = self.phase
        self.phase = Phase.DOWN
        self.client_id = None
        self._outbox = []
        self._expect.clear()
        self._deadline = None
        self.store.go_down(lost=was is Phase.LIVE)
        if self.closed:
            return
        self.failures += 1
        self._retry_at = now + self.backoff.compute(self.failures)
        if was is Phase.LIVE:
            self._lost_at = now
            logger.warning(
                "local tier: invalidation connection lost (%s); flushed, reading Redis "
                "directly until it is back",
                error,
            )
        elif self.failures == 1 or self.failures % 100 == 0:
            logger.warning("local tier: cannot set up invalidations (%s); retrying", error)
        else:
            logger.debug("local tier: setup attempt %d failed: %s", self.failures, error)


def listen(m: Listener) -> Generator[Effect, Any, None]:
    """Run the listener until it is closed (connection errors are thrown in as BackendError)."""
    clock = m.clock
    while not m.closed:
        step = m.next_step(clock())
        try:
            if type(step) is Read:
                frame = yield step
                if frame is not None:
                    m.on_frame(clock(), frame)
            elif type(step) is Send or type(step) is Pause:
                yield step
            elif type(step) is Drop:
                raise BackendTimeout(step.reason)
            elif step is CONNECT:
                yield step
                m.on_connected(clock())
            elif step is CHECK_MASTER:
                try:
                    moved = yield step
                except BackendError as err:
                    logger.debug("local tier: could not ask Sentinel for the master: %s", err)
                    continue
                if moved:
                    raise BackendUnavailable("the Sentinel master moved to another node")
        except BackendError as err:
            m.on_lost(clock(), err)  # bypass first: nothing is served while we hang up
            yield Drop(str(err))
