"""Subscriber and AsyncSubscriber against real redis-server processes."""

from __future__ import annotations

import time
from typing import Any

import pytest
from messaging_helpers import Side, publish_later

from rcache.codecs import Codec
from rcache.errors import BackendError
from rcache.messaging import Message, Subscriber


def test_subscribe_receive_and_unsubscribe(side: Side, redis_server: Any, channel: str) -> None:
    sub = side.subscriber(redis_server.url)
    side(sub.subscribe(channel))
    side(sub.psubscribe(channel + ".*"))
    assert sub.connected and sub.channels == (channel,)
    with redis_server.client() as r:
        assert r.publish(channel, b"one") == 1
        assert r.publish(channel + ".x", b"two") == 1
        assert side(sub.get_message(timeout=5)) == Message(channel, b"one")
        assert side(sub.get_message(timeout=5)) == Message(channel + ".x", b"two", channel + ".*")
        side(sub.unsubscribe(channel))
        assert r.publish(channel, b"gone") == 0
    assert side(sub.get_message(timeout=0)) is None
    assert sub.stats.messages == 2


def test_codec_decodes_and_bad_payloads_are_dropped(
    side: Side, redis_server: Any, channel: str
) -> None:
    sub = side.subscriber(redis_server.url, codec=Codec())
    side(sub.subscribe(channel))
    with redis_server.client() as r:
        r.publish(channel, b"\xffnot a payload")
        r.publish(channel, Codec().encode({"a": [1, 2]}))
    assert side(sub.get_message(timeout=5)).data == {"a": [1, 2]}
    assert sub.stats.decode_errors == 1


def test_reconnects_and_resubscribes_after_a_crash(
    side: Side, fresh_server: Any, channel: str
) -> None:
    events: list[str] = []
    sub = side.subscriber(
        fresh_server.url,
        socket_timeout=0.5,
        health_check_interval=0.5,
        on_reconnect=[lambda: events.append("hook")],
    )
    side(sub.subscribe(channel))
    side(sub.psubscribe(channel + ".*"))
    with fresh_server.client() as r:
        r.publish(channel, b"before")
    assert side(sub.get_message(timeout=5)).data == b"before"

    for round_ in (1, 2):
        fresh_server.kill()  # SIGKILL mid-stream: the subscriber sees EOF on its next read
        fresh_server.start()
        t0 = time.monotonic()
        thread, result = publish_later(fresh_server.url, channel + ".p", b"after %d" % round_)
        message = side(sub.get_message(timeout=10))
        elapsed = time.monotonic() - t0
        events.append("message")
        thread.join(10)
        assert message == Message(channel + ".p", b"after %d" % round_, channel + ".*")
        assert result and result[0].ok
        assert events[-2:] == ["hook", "message"]  # the hook ran before the delivery
        assert sub.stats.reconnects == round_ and events.count("hook") == round_
        print(
            f"[{side.kind}] reconnect round {round_}: message after {elapsed:.3f}s, "
            f"outage {sub.stats.last_outage:.3f}s"
        )
    assert sub.connected


def test_messages_are_held_until_the_hooks_ran(side: Side, fresh_server: Any, channel: str) -> None:
    state: dict[str, Any] = {}

    def slow_hook() -> None:
        state["connected_during_hook"] = sub.connected
        with fresh_server.client() as r:  # published while the hook runs: must wait for it
            state["receivers"] = r.publish(channel, b"during hook")
        time.sleep(0.2)
        state["hook_done"] = time.monotonic()

    sub = side.subscriber(fresh_server.url, socket_timeout=0.5, on_reconnect=[slow_hook])
    side(sub.subscribe(channel))
    fresh_server.kill()
    fresh_server.start()
    message = side(sub.get_message(timeout=10))
    assert message is not None and message.data == b"during hook"
    assert state["receivers"] == 1 and state["connected_during_hook"] is False
    assert time.monotonic() >= state["hook_done"]


async def test_async_hooks_are_awaited(fresh_server: Any, channel: str) -> None:
    from rcache.adapter import AsyncRedisAdapter
    from rcache.messaging import AsyncSubscriber

    calls: list[str] = []

    async def hook() -> None:
        calls.append("async")

    adapter = AsyncRedisAdapter.from_url(fresh_server.url, socket_timeout=0.5)
    sub = AsyncSubscriber(adapter, on_reconnect=[hook, lambda: calls.append("sync")])
    async with adapter, sub:
        await sub.subscribe(channel)
        fresh_server.kill()
        fresh_server.start()
        thread, _ = publish_later(fresh_server.url, channel, b"x")
        assert (await sub.get_message(timeout=10)) is not None
        thread.join(10)
    assert calls == ["async", "sync"]


def test_idle_longer_than_the_socket_timeout_is_not_an_error(
    side: Side, redis_server: Any, channel: str
) -> None:
    # redis-py #4098: an idle listen() hit the socket timeout. Here reads wait in slices.
    for interval in (0.0, 0.2):  # no health checks at all, then frequent ones
        sub = side.subscriber(
            redis_server.url,
            socket_timeout=0.3,
            health_check_interval=interval,
            raise_on_disconnect=True,  # any lost connection would raise here
        )
        side(sub.subscribe(channel))
        assert side(sub.get_message(timeout=1.2)) is None
        assert sub.connected and sub.stats.disconnects == 0
        assert (sub.stats.pings > 0) == (interval > 0)
        with redis_server.client() as r:
            r.publish(channel, b"still here")
        assert side(sub.get_message(timeout=5)).data == b"still here"


def test_a_silently_dead_connection_is_noticed(side: Side, fresh_server: Any, channel: str) -> None:
    hooks: list[int] = []
    sub = side.subscriber(
        fresh_server.url,
        socket_timeout=0.5,
        health_check_interval=0.2,
        reply_timeout=0.3,
        on_reconnect=[lambda: hooks.append(1)],
    )
    side(sub.subscribe(channel))
    with fresh_server.client() as admin:
        # Redis stops answering every client, the socket stays open: only a PING tells.
        admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")
    t0 = time.monotonic()
    assert side(sub.get_message(timeout=1.0)) is None
    assert sub.stats.health_failures >= 1 and not sub.connected
    pause_left = 1.6 - (time.monotonic() - t0)
    thread, _ = publish_later(fresh_server.url, channel, b"awake", delay=pause_left)
    message = side(sub.get_message(timeout=10))
    thread.join(10)
    assert message is not None and message.data == b"awake"
    assert sub.connected and sub.stats.reconnects == 1 and hooks == [1]


def test_raise_on_disconnect(side: Side, fresh_server: Any, channel: str) -> None:
    sub = side.subscriber(fresh_server.url, socket_timeout=0.5, raise_on_disconnect=True)
    side(sub.subscribe(channel))
    fresh_server.kill()
    with pytest.raises(BackendError):
        side(sub.get_message(timeout=5))
    fresh_server.start()
    thread, _ = publish_later(fresh_server.url, channel, b"back")
    assert side(sub.get_message(timeout=10)).data == b"back"  # the next read reconnects
    thread.join(10)


def test_errors_never_reach_the_reader_by_default(
    side: Side, fresh_server: Any, channel: str
) -> None:
    sub = side.subscriber(fresh_server.url, socket_timeout=0.3)
    side(sub.subscribe(channel))
    fresh_server.stop()  # gone for good: reconnect attempts back off, nothing is raised
    assert side(sub.get_message(timeout=1.5)) is None
    assert not sub.connected and sub.stats.failed_connects >= 2


def test_subscribing_while_redis_is_down_connects_later(
    side: Side, fresh_server: Any, channel: str
) -> None:
    fresh_server.stop()
    sub = side.subscriber(fresh_server.url, socket_timeout=0.3)
    side(sub.subscribe(channel))  # no error, nothing confirmed
    assert not sub.connected
    fresh_server.start()
    thread, _ = publish_later(fresh_server.url, channel, b"late")
    assert side(sub.get_message(timeout=10)).data == b"late"
    thread.join(10)
    assert sub.stats.reconnects == 0  # the first connection is not a reconnect


def test_thread_reader_with_subscribe_and_close_from_outside(
    redis_server: Any, channel: str
) -> None:
    got: list[Message] = []
    sub = Subscriber.from_url(redis_server.url, health_check_interval=0.2)
    sub.subscribe(channel)
    thread = sub.run_in_thread(got.append)
    time.sleep(0.1)
    sub.subscribe(channel + "-2")  # the reader holds the connection: this only sends
    with redis_server.client() as r:
        deadline = time.monotonic() + 5
        while r.publish(channel + "-2", b"x") == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        r.publish(channel, b"y")
    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    t0 = time.monotonic()
    sub.close()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - t0 < 2
    assert sorted(m.data for m in got) == [b"x", b"y"]
    assert sub.get_message(timeout=0.1) is None  # closed: returns at once


def test_close_is_idempotent_and_leaves_no_connection(
    side: Side, redis_server: Any, channel: str
) -> None:
    sub = side.subscriber(redis_server.url, client_name=f"sub-{side.kind}-{channel[2:14]}")
    side(sub.subscribe(channel))
    with redis_server.client() as r:
        name = f"sub-{side.kind}-{channel[2:14]}"
        assert any(c.get("name") == name for c in r.client_list(_type="pubsub"))
        for _ in range(2):
            side(sub.aclose() if side.is_async else sub.close())  # type: ignore[union-attr]
        time.sleep(0.1)
        assert not any(c.get("name") == name for c in r.client_list(_type="pubsub"))
    assert sub.closed and not sub.connected


def test_stats_as_dict(side: Side, redis_server: Any, channel: str) -> None:
    sub = side.subscriber(redis_server.url)
    side(sub.subscribe(channel))
    stats = sub.stats.as_dict()
    assert stats["connects"] == 1 and stats["reconnects"] == 0 and stats["last_outage"] is None


def test_cluster_subscriber(side: Side, cluster: Any, channel: str) -> None:
    # Classic PUBLISH is broadcast to every node, so one node's connection hears it all.
    sub = side.subscriber(cluster.url, socket_timeout=0.5)
    side(sub.subscribe(channel))
    assert sub.connected
    pub = side.publisher(cluster.url)
    assert side(pub.publish(channel, b"anywhere")).ok
    assert side(sub.get_message(timeout=5)).data == b"anywhere"
