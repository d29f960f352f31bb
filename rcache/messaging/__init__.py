"""Pub/sub and a work queue that survive restarts and failovers.

- :class:`Subscriber` / :class:`AsyncSubscriber`: a dedicated pub/sub connection that
  reconnects by itself (immediate retry, then capped exponential backoff with jitter),
  resubscribes every channel and pattern, PINGs an idle connection to notice when it died
  silently, and runs ``on_reconnect`` hooks before delivering again.
- :class:`Publisher` / :class:`AsyncPublisher`: PUBLISH with ``min_receivers`` and
  ``retry_for``.
- :class:`ReliableQueue` / :class:`AsyncReliableQueue`: BLMOVE into a per-consumer
  processing list, ack / nack / retry, a reaper for jobs whose consumer died, and
  :meth:`~ReliableQueue.once` for work that must not run twice.

Pub/sub channels are server-wide: they are neither per database nor under the key prefix.
"""

from __future__ import annotations

from rcache.messaging._async_subscriber import AsyncSubscriber
from rcache.messaging._machine import Message, SubscriberStats
from rcache.messaging._publisher import AsyncPublisher, Publisher, PublishResult
from rcache.messaging._queue import AsyncReliableQueue, Job, ReliableQueue
from rcache.messaging._subscriber import Subscriber

__all__ = [
    "AsyncPublisher",
    "AsyncReliableQueue",
    "AsyncSubscriber",
    "Job",
    "Message",
    "PublishResult",
    "Publisher",
    "ReliableQueue",
    "Subscriber",
    "SubscriberStats",
]
