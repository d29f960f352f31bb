"""A subscriber through a Sentinel failover: back on the new master, receiving, within 3 s."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from messaging_helpers import Side

from rcache.adapter import RedisAdapter
from rcache.messaging import Message, Publisher


def _wait_for(check: Callable[[], bool], timeout: float) -> float | None:
    """Poll ``check`` until true; return the monotonic time it became true, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(0.01)
    return None


def test_subscriber_survives_a_sentinel_failover(
    side: Side, sentinel_group: Any, channel: str
) -> None:
    name = f"fo-{side.kind}-{channel[2:14]}"
    hooks: list[float] = []
    got: list[tuple[float, Message]] = []
    sub: Any = side.subscriber(
        sentinel_group.url,
        socket_timeout=0.5,
        client_name=name,
        health_check_interval=0.5,
        on_reconnect=[lambda: hooks.append(time.monotonic())],
    )

    def record(message: Message) -> None:
        got.append((time.monotonic(), message))

    if side.is_async:  # the side's own loop runs the subscriber in a thread

        async def consume() -> None:
            await sub.subscribe(channel)
            async for message in sub:
                record(message)

        loop = side.loop
        assert loop is not None
        reader = threading.Thread(target=loop.run_forever)
        reader.start()
        consumer = asyncio.run_coroutine_threadsafe(consume(), loop)
    else:
        sub.subscribe(channel)
        reader = sub.run_in_thread(record)

    def received(data: bytes) -> Callable[[], bool]:
        return lambda: any(m.data == data for _, m in got)

    def on_node(address: tuple[str, int]) -> Callable[[], bool]:
        def check() -> bool:
            with sentinel_group.server_at(address).client() as r:
                return any(c.get("name") == name for c in r.client_list(_type="pubsub"))

        return check

    try:
        with RedisAdapter.from_url(sentinel_group.url, socket_timeout=0.5) as adapter:
            pub = Publisher(adapter)
            assert _wait_for(lambda: sub.connected, 5)
            assert pub.publish(channel, b"before", min_receivers=1, retry_for=5).ok
            assert _wait_for(received(b"before"), 5)

            old = sentinel_group.master_address()
            t_call = time.monotonic()
            new = sentinel_group.failover()
            t_done = time.monotonic()
            assert new != old
            result = pub.publish(channel, b"after", min_receivers=1, retry_for=5)
            t_received = _wait_for(received(b"after"), 3)
            t_moved = _wait_for(on_node(new), 3)
            # Now on the new master only: a publisher still pooled on the demoted master
            # reaches nobody there, notices the role and moves its pool.
            moved_result = pub.publish(channel, b"moved", min_receivers=1, retry_for=5)
            t_moved_msg = _wait_for(received(b"moved"), 3)
    finally:
        if side.is_async:
            asyncio.run_coroutine_threadsafe(sub.aclose(), loop).result(10)
            consumer.result(10)
            loop.call_soon_threadsafe(loop.stop)
        else:
            sub.close()
        reader.join(10)

    assert result.ok, result
    assert t_received is not None, "no message within 3 s of the failover"
    assert t_moved is not None, "the subscriber did not move to the new master within 3 s"
    assert moved_result.ok and t_moved_msg is not None, moved_result
    assert sub.stats.reconnects >= 1 and len(hooks) == sub.stats.reconnects
    outage = sub.stats.last_outage
    print(
        f"\n[{side.kind}] Sentinel failover took {t_done - t_call:.3f}s; subscriber outage "
        f"{outage:.3f}s, back on the new master {max(0.0, t_moved - t_done):.3f}s and a new "
        f"message received {t_received - t_done:.3f}s after failover() returned "
        f"(publish attempts: {result.attempts}, then {moved_result.attempts} after the move; "
        f"reconnects: {sub.stats.reconnects})"
    )
