"""``Publisher`` and ``AsyncPublisher``: PUBLISH that can insist on being heard.

One operation (:func:`publish`) drives both: PUBLISH returns how many subscribers got the
message, and with ``min_receivers`` the operation publishes again (immediately, then with
backoff) until that many did or ``retry_for`` seconds have passed.

What this does not buy: pub/sub is fire-and-forget. A message published while a
subscriber is reconnecting is lost to it (its ``on_reconnect`` hooks are how it catches
up), and a subscriber counted by Redis may still lose the message if its connection
breaks before it reads it. Work that must not be lost belongs in a
:class:`~rcache.messaging.ReliableQueue`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from rcache.adapter import AsyncRedisAdapter, RedisAdapter
from rcache.codecs import Codec
from rcache.errors import (
    BackendError,
    BackendReadOnly,
    BackendTimeout,
    BackendUnavailable,
    ConfigurationError,
    EncodeError,
)
from rcache.ops import Batch, Call, Op, Sleep
from rcache.resilience import Backoff

__all__ = ["AsyncPublisher", "PublishResult", "Publisher", "publish"]

logger = logging.getLogger("rcache.messaging")

# Errors after which a publish is tried again within retry_for (it may have been delivered).
_RETRIED = (BackendUnavailable, BackendTimeout, BackendReadOnly)
_DEFAULT_BACKOFF = Backoff()


class PublishResult(NamedTuple):
    """How a publish went: ``receivers`` of the last attempt, ``attempts`` made, ``ok``.

    ``ok`` is True when the last attempt reached at least ``min_receivers`` subscribers.
    """

    receivers: int
    attempts: int
    ok: bool


def _is_replica(role: Any) -> bool:
    if isinstance(role, list) and role:
        kind = role[0]
        return (kind.decode() if isinstance(kind, bytes) else str(kind)) in ("slave", "replica")
    return False


def publish(
    channel: str | bytes,
    payload: Any,
    *,
    min_receivers: int = 0,
    retry_for: float = 0.0,
    backoff: Backoff = _DEFAULT_BACKOFF,
    refresh_master: Callable[[], Any] | None = None,
) -> Op[PublishResult]:
    """Publish ``payload`` until ``min_receivers`` subscribers got it or ``retry_for`` s pass.

    Connection errors are retried within ``retry_for`` too, and raised after it. With
    ``refresh_master`` (Sentinel), retries also check that the connection is to the
    master: a pooled connection left on a demoted master still accepts PUBLISH, but only
    reaches that node's own subscribers; if so ``refresh_master`` is called to move the pool.
    """
    t0 = time.monotonic()
    attempts = failures = receivers = 0
    check_role = False
    while True:
        attempts += 1
        error: BackendError | None = None
        commands: list[tuple[Any, ...]] = [("PUBLISH", channel, payload)]
        if check_role:
            commands.insert(0, ("ROLE",))
        try:
            replies = yield Batch(commands, idempotent=False, raise_on_error=False)
        except _RETRIED as err:
            error, receivers = err, 0
        else:
            if isinstance(replies[-1], BaseException):
                raise replies[-1]
            receivers = int(replies[-1])
            if receivers >= min_receivers:
                return PublishResult(receivers, attempts, True)
            if check_role and _is_replica(replies[0]) and refresh_master is not None:
                logger.warning("publishing to a demoted master; asking Sentinel for the new one")
                yield Call(refresh_master)
        check_role = refresh_master is not None
        failures += 1
        left = retry_for - (time.monotonic() - t0)
        if left <= 0:
            if error is not None:
                raise error
            return PublishResult(receivers, attempts, False)
        pause = min(backoff.compute(failures), left)  # the last attempt lands at retry_for
        if pause:
            yield Sleep(pause)


class _PublisherBase:
    def __init__(
        self,
        adapter: RedisAdapter | AsyncRedisAdapter,
        *,
        codec: Codec | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        s = adapter.settings
        self.codec = codec
        self.backoff = backoff or Backoff(base=s.retry_backoff_base, cap=s.retry_backoff_cap)
        pool = getattr(adapter.client, "connection_pool", None)
        self._refresh = getattr(pool, "get_master_address", None) if s.mode == "sentinel" else None

    def _op(
        self, channel: str | bytes, message: Any, min_receivers: int, retry_for: float
    ) -> Op[PublishResult]:
        if min_receivers < 0 or retry_for < 0:
            raise ConfigurationError("min_receivers and retry_for must be >= 0")
        payload: Any
        if self.codec is not None:
            payload = self.codec.encode(message)
        elif isinstance(message, bytes | str | int | float) and not isinstance(message, bool):
            payload = message
        else:
            raise EncodeError(
                f"cannot publish a {type(message).__name__} without a codec: "
                "pass bytes, str or a number, or give the publisher a codec"
            )
        return publish(
            channel,
            payload,
            min_receivers=min_receivers,
            retry_for=retry_for,
            backoff=self.backoff,
            refresh_master=self._refresh,
        )


class Publisher(_PublisherBase):
    """Publish messages from blocking code.

    ``codec``: encodes every message (None = send bytes, str or numbers as they are; the
    subscribers must use the same codec). ``backoff``: pauses between retries (default:
    the adapter's retry backoff).
    """

    def __init__(
        self, adapter: RedisAdapter, *, codec: Codec | None = None, backoff: Backoff | None = None
    ) -> None:
        super().__init__(adapter, codec=codec, backoff=backoff)
        self._adapter = adapter

    def publish(
        self,
        channel: str | bytes,
        message: Any,
        *,
        min_receivers: int = 0,
        retry_for: float = 0.0,
    ) -> PublishResult:
        """Publish ``message`` on ``channel``; retry while fewer than ``min_receivers`` got it.

        ``retry_for``: seconds to keep trying (0 = one attempt). Every attempt publishes
        again, so subscribers that got an earlier attempt receive the message twice.
        Connection errors are retried within ``retry_for`` and then raised
        (:class:`~rcache.errors.BackendError`); a PUBLISH whose reply was lost may have been
        delivered, so a retry can duplicate it.

        Residual loss during an initiated failover: between the moment the old master stops
        serving and the moment every subscriber has resubscribed on the new one (typically
        well under a second, bounded by the subscribers' reconnect backoff), a message can
        reach fewer subscribers than counted, or none. ``min_receivers`` turns "nobody heard
        it" into retries or ``ok=False``, not into delivery: a subscriber that reconnects
        after the message was published never sees it, which is why subscribers resync in
        their ``on_reconnect`` hooks. On Redis Cluster the count is of the subscribers
        connected to the node that ran the PUBLISH only.
        """
        return self._adapter.run(self._op(channel, message, min_receivers, retry_for))


class AsyncPublisher(_PublisherBase):
    """Publish messages from asyncio code; see :class:`Publisher`."""

    def __init__(
        self,
        adapter: AsyncRedisAdapter,
        *,
        codec: Codec | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(adapter, codec=codec, backoff=backoff)
        self._adapter = adapter

    async def publish(
        self,
        channel: str | bytes,
        message: Any,
        *,
        min_receivers: int = 0,
        retry_for: float = 0.0,
    ) -> PublishResult:
        """Publish ``message`` on ``channel``; see :meth:`Publisher.publish`."""
        return await self._adapter.run(self._op(channel, message, min_receivers, retry_for))
