"""The subscriber's state machine, with no I/O (shared by both drivers).

:class:`SubscriptionMachine` holds everything a pub/sub subscriber has to remember: the
channels and patterns wanted, what has been sent on the current connection, the replies
still owed by Redis, the reconnect backoff, the health-check clock and the messages ready
for delivery. :func:`pump` is the loop around it, written once as a generator that yields
*effects* (connect, send, read with a timeout, pause, drop the connection, run the
reconnect hooks, ask Sentinel for the master) and receives their results, in the style of
:mod:`rcache.ops`. :class:`~rcache.messaging.Subscriber` and
:class:`~rcache.messaging.AsyncSubscriber` only carry the effects out.

A connection goes through these phases::

    DOWN --connect--> SUBSCRIBING --every (P)SUBSCRIBE confirmed--> LIVE
                          |                                          ^
                          +-- after a reconnect --> HOOKS --hooks done+
    any phase --error, no reply in time, Sentinel master moved--> DOWN (backoff)

Messages that arrive before the hooks have run are held back, so a hook that flushes a
local cache always runs before the first message of the new connection is delivered.
This module never imports ``redis``.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any, NamedTuple, TypeAlias

from rcache.errors import BackendTimeout, RCacheError
from rcache.ops import Command
from rcache.resilience import Backoff

__all__ = [
    "CHECK_MASTER",
    "CONNECT",
    "FLUSH",
    "MAX_WAIT",
    "RUN_HOOKS",
    "Drop",
    "Effect",
    "Message",
    "Pause",
    "Read",
    "SubscriberStats",
    "SubscriptionMachine",
]

logger = logging.getLogger("rcache.messaging")

Clock = Callable[[], float]

#: Longest single wait of the loop (seconds), so ``close()`` from elsewhere is seen soon.
MAX_WAIT = 1.0
_PING = ("PING", b"rcache-health-check")


class Message(NamedTuple):
    """A message received on ``channel``; ``pattern`` is the matching pattern, if any.

    ``data`` is the payload as bytes, or decoded by the subscriber's codec.
    """

    channel: str
    data: Any
    pattern: str | None = None


@dataclass(slots=True)
class SubscriberStats:
    """Counters kept by a subscriber (plain ints; ``last_outage`` in seconds or None).

    ``connects``: connections that got every subscription confirmed; ``reconnects``: those
    of them after a lost connection (the reconnect hooks ran once for each);
    ``disconnects``: connections lost; ``failed_connects``: attempts that did not get
    there; ``health_failures``: connections given up because Redis did not reply in time;
    ``refused``: error replies (an ACL refusing a channel, say); ``last_outage``: seconds
    from the last loss to being subscribed again, hooks included.
    """

    connects: int = 0
    reconnects: int = 0
    disconnects: int = 0
    failed_connects: int = 0
    messages: int = 0
    pings: int = 0
    health_failures: int = 0
    refused: int = 0
    hook_errors: int = 0
    decode_errors: int = 0
    last_outage: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        """Return the counters as a dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


# -- effects: what the loop asks a driver to do -------------------------------------------


class Read(NamedTuple):
    """Read one reply, waiting up to ``seconds``; the result is the reply or None."""

    seconds: float


class Pause(NamedTuple):
    """Wait ``seconds`` (cut short when the subscriber is woken); the result is None."""

    seconds: float


class Drop(NamedTuple):
    """Close the current connection, if any; never fails."""

    reason: str


class _Signal(enum.Enum):
    CONNECT = "connect"  # open a connection (closing any old one); raises on failure
    FLUSH = "flush"  # send SubscriptionMachine.take_sends(); raises on failure
    RUN_HOOKS = "run hooks"  # call the reconnect hooks; never fails
    CHECK_MASTER = "check master"  # result: True if the Sentinel master is elsewhere now


CONNECT = _Signal.CONNECT
FLUSH = _Signal.FLUSH
RUN_HOOKS = _Signal.RUN_HOOKS
CHECK_MASTER = _Signal.CHECK_MASTER

Effect: TypeAlias = Read | Pause | Drop | _Signal


class Phase(enum.Enum):
    DOWN = "down"
    SUBSCRIBING = "subscribing"
    HOOKS = "hooks"
    LIVE = "live"


class _Expect(NamedTuple):
    """One reply Redis owes us: its kind, the channel it names, the command it belongs to."""

    kind: bytes
    name: bytes | None
    group: int
    resubscribe: bool


_KINDS = (
    # desired attribute, confirmation kind, subscribe command, unsubscribe command
    ("channels", b"subscribe", b"unsubscribe", "SUBSCRIBE", "UNSUBSCRIBE"),
    ("patterns", b"psubscribe", b"punsubscribe", "PSUBSCRIBE", "PUNSUBSCRIBE"),
)


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


class SubscriptionMachine:
    """Everything a subscriber remembers, and the decision of what to do next.

    ``health_check_interval``: seconds without any traffic after which a PING is sent
    (0 = never). ``reply_timeout``: seconds Redis has to answer a PING or a (P)SUBSCRIBE
    before the connection is given up as dead. ``check_master``: also ask Sentinel, every
    ``health_check_interval``, whether the master moved. ``decode``: turns a payload into
    ``Message.data`` (None = keep bytes). Thread-safe: every method takes one lock.
    """

    def __init__(
        self,
        *,
        backoff: Backoff,
        health_check_interval: float,
        reply_timeout: float,
        check_master: bool = False,
        decode: Callable[[bytes], Any] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.backoff = backoff
        self.health_check_interval = health_check_interval
        self.reply_timeout = reply_timeout
        self.check_master = check_master and health_check_interval > 0
        self.decode = decode
        self.stats = SubscriberStats()
        self.channels: dict[bytes, None] = {}
        self.patterns: dict[bytes, None] = {}
        self.ready: deque[Message] = deque()
        self.phase = Phase.DOWN
        self.failures = 0
        self.closed = False
        self._clock = clock
        self._lock = threading.RLock()
        self._sent: dict[str, set[bytes]] = {"channels": set(), "patterns": set()}
        self._expect: deque[_Expect] = deque()
        self._group = 0
        self._dirty = False
        self._resubscribing = False  # the next take_sends() is the resubscription
        self._resubscribe_left = 0
        self._held: deque[Message] = deque()
        self._ever_live = False
        self._retry_at = 0.0
        self._last_rx = 0.0
        self._reply_deadline: float | None = None
        self._master_check_at = 0.0
        self._lost_at: float | None = None

    # -- what the user wants ---------------------------------------------------------------

    def want(self, kind: str, names: Iterable[bytes]) -> None:
        """Add channels (``kind="channels"``) or patterns (``"patterns"``)."""
        with self._lock:
            wanted = getattr(self, kind)
            for name in names:
                wanted[name] = None
            self._dirty = True

    def unwant(self, kind: str, names: Iterable[bytes]) -> None:
        """Remove channels or patterns (unknown names are ignored)."""
        with self._lock:
            wanted = getattr(self, kind)
            for name in names:
                wanted.pop(name, None)
            self._dirty = True

    def close(self) -> None:
        """Stop for good: the loop ends at its next step."""
        with self._lock:
            self.closed = True
            self.phase = Phase.DOWN

    @property
    def connected(self) -> bool:
        """True while subscribed and delivering (not while reconnecting or resubscribing)."""
        return self.phase is Phase.LIVE

    @property
    def wants_anything(self) -> bool:
        return bool(self.channels or self.patterns)

    def settled(self) -> bool:
        """True when every wanted subscription is confirmed (or nothing is wanted)."""
        with self._lock:
            if self.phase is Phase.DOWN:
                return not self.wants_anything
            if self.phase is not Phase.LIVE or self._dirty:
                return False
            return not any(e.kind != b"pong" for e in self._expect)

    # -- the decision ----------------------------------------------------------------------

    def next_step(self, now: float) -> Effect:
        """Return what to do next (see the module docs for each effect)."""
        with self._lock:
            if self.phase is Phase.DOWN:
                if not self.wants_anything:
                    return Pause(MAX_WAIT)
                if now < self._retry_at:
                    return Pause(self._retry_at - now)
                return CONNECT
            if self.phase is Phase.HOOKS:
                return RUN_HOOKS
            if self._reply_deadline is not None and now >= self._reply_deadline:
                return Drop(f"no reply from Redis within {self.reply_timeout:g}s")
            if self._dirty or self._ping_due(now):
                return FLUSH
            if self.check_master and self.phase is Phase.LIVE and now >= self._master_check_at:
                self._master_check_at = now + self.health_check_interval
                return CHECK_MASTER
            if self._reply_deadline is not None:
                return Read(self._reply_deadline - now)
            if self.health_check_interval > 0 and self.wants_anything:
                return Read(max(0.0, self._last_rx + self.health_check_interval - now))
            return Read(MAX_WAIT)

    def _ping_due(self, now: float) -> bool:
        return (
            self.health_check_interval > 0
            and not self._expect
            and self.wants_anything
            and now - self._last_rx >= self.health_check_interval
        )

    def take_sends(self, now: float) -> list[Command]:
        """Return the commands to send now and expect their replies (call under a send lock)."""
        with self._lock:
            if self.phase is Phase.DOWN:
                return []
            commands: list[Command] = []
            resubscribe = self._resubscribing
            if self._dirty:
                for attr, confirm, unconfirm, sub, unsub in _KINDS:
                    wanted, sent = getattr(self, attr), self._sent[attr]
                    add = [n for n in wanted if n not in sent]
                    drop = [n for n in sent if n not in wanted]
                    if add:
                        commands.append((sub, *add))
                        self._expects(confirm, add, resubscribe)
                        sent.update(add)
                    if drop:
                        commands.append((unsub, *drop))
                        self._expects(unconfirm, drop, False)
                        sent.difference_update(drop)
                self._dirty = False
            if resubscribe:
                self._resubscribing = False
                self._resubscribe_left = sum(1 for e in self._expect if e.resubscribe)
                if not self._resubscribe_left:
                    self._subscribed(now)
            if self._ping_due(now):
                commands.append(_PING)
                self._expects(b"pong", [None], False)
                self.stats.pings += 1
            if commands and self._reply_deadline is None:
                self._reply_deadline = now + self.reply_timeout
            return commands

    def _expects(self, kind: bytes, names: Iterable[bytes | None], resubscribe: bool) -> None:
        self._group += 1
        for name in names:
            self._expect.append(_Expect(kind, name, self._group, resubscribe))

    # -- what happened ---------------------------------------------------------------------

    def on_connected(self, now: float) -> None:
        """A new connection is open: resubscribe everything on it."""
        with self._lock:
            self.phase = Phase.SUBSCRIBING
            for sent in self._sent.values():
                sent.clear()
            self._expect.clear()
            self._dirty = True
            self._resubscribing = True
            self._last_rx = now
            self._reply_deadline = None
            self._master_check_at = now + self.health_check_interval

    def on_lost(self, now: float, error: BaseException) -> None:
        """The connection failed, or a connection attempt did: back off, then reconnect."""
        with self._lock:
            if self.closed:
                return
            was = self.phase
            self.phase = Phase.DOWN
            self._expect.clear()
            self._reply_deadline = None
            self._resubscribing = False
            self.failures += 1
            self._retry_at = now + self.backoff.compute(self.failures)
            if was is Phase.DOWN:
                self.stats.failed_connects += 1
            else:
                self.stats.disconnects += 1
            if isinstance(error, BackendTimeout) and was is not Phase.DOWN:
                self.stats.health_failures += 1
            if was is Phase.LIVE or (was is not Phase.DOWN and self._lost_at is None):
                self._lost_at = now
                logger.warning("pub/sub connection lost (%s); reconnecting", error)
            elif self.failures == 1:
                logger.warning("cannot connect for pub/sub (%s); retrying", error)
            else:
                logger.debug("pub/sub connection attempt %d failed: %s", self.failures, error)

    def on_frame(self, now: float, frame: Any) -> None:
        """Take in one reply or push message read from the connection."""
        with self._lock:
            self._last_rx = now
            if isinstance(frame, RCacheError):
                self._refused(frame)
            elif isinstance(frame, list) and frame and isinstance(frame[0], bytes):
                kind = frame[0].lower()
                if kind == b"message" and len(frame) == 3:
                    self._message(frame[1], frame[2], None)
                elif kind == b"pmessage" and len(frame) == 4:
                    self._message(frame[2], frame[3], frame[1])
                else:
                    self._answered(kind, frame[1] if len(frame) > 1 else None, now)
            elif isinstance(frame, bytes) and frame in (_PING[1], b"PONG"):
                # RESP3 (and RESP2 outside subscribed mode) answers PING with a plain reply
                self._answered(b"pong", None, now)
            else:
                logger.debug("ignoring an unexpected pub/sub reply of type %s", type(frame))
            self._reply_deadline = now + self.reply_timeout if self._expect else None

    def _answered(self, kind: bytes, name: Any, now: float) -> None:
        for i, expected in enumerate(self._expect):
            if expected.kind == kind and (kind == b"pong" or expected.name == name):
                del self._expect[i]
                if expected.resubscribe:
                    self._resubscribe_done(now)
                return

    def _refused(self, error: RCacheError) -> None:
        """An error reply answers the oldest command still owed: give up on it."""
        self.stats.refused += 1
        if not self._expect:
            return
        group = self._expect[0].group
        kind = self._expect[0].kind.decode().upper()
        logger.warning("Redis refused a pub/sub %s: %s", kind, error)
        while self._expect and self._expect[0].group == group:
            if self._expect.popleft().resubscribe:
                self._resubscribe_done(self._clock())

    def _resubscribe_done(self, now: float) -> None:
        self._resubscribe_left -= 1
        if self._resubscribe_left <= 0 and self.phase is Phase.SUBSCRIBING:
            self._subscribed(now)

    def _subscribed(self, now: float) -> None:
        self.failures = 0
        self.stats.connects += 1
        if self._ever_live:
            self.phase = Phase.HOOKS
            return
        self._ever_live = True
        self.phase = Phase.LIVE
        self.ready.extend(self._held)
        self._held.clear()

    def hooks_done(self, now: float) -> None:
        """The reconnect hooks have run: deliver again."""
        with self._lock:
            if self.phase is not Phase.HOOKS:
                return
            self.phase = Phase.LIVE
            self.stats.reconnects += 1
            if self._lost_at is not None:
                self.stats.last_outage = now - self._lost_at
                logger.warning(
                    "pub/sub connection back after %.3fs; subscriptions restored",
                    self.stats.last_outage,
                )
                self._lost_at = None
            self.ready.extend(self._held)
            self._held.clear()

    def _message(self, channel: bytes, data: bytes, pattern: bytes | None) -> None:
        if pattern is None:
            if channel not in self.channels:
                return
        elif pattern not in self.patterns:
            return
        if self.decode is not None:
            try:
                data = self.decode(data)
            except RCacheError as exc:
                self.stats.decode_errors += 1
                logger.warning("dropping an undecodable message on %r: %s", _text(channel), exc)
                return
        message = Message(_text(channel), data, None if pattern is None else _text(pattern))
        self.stats.messages += 1
        if self.phase is Phase.LIVE:
            self.ready.append(message)
        else:
            self._held.append(message)
