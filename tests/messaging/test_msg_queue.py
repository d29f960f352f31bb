"""ReliableQueue and AsyncReliableQueue against real Redis (standalone and Cluster)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from messaging_helpers import Side
from redis.crc import key_slot

from rcache.adapter import RedisAdapter
from rcache.errors import BackendError
from rcache.messaging import ReliableQueue
from rcache.server import RedisServer


def test_put_get_ack(side: Side, redis_server: Any) -> None:
    q = side.queue(redis_server.url)
    first = side(q.put({"n": 1}))
    side(q.put({"n": 2}))
    assert side(q.size()) == 2
    job = side(q.get(timeout=1))
    assert (job.id, job.data, job.attempt) == (first, {"n": 1}, 1)  # FIFO
    assert side(q.processing()) == 1 and side(q.size()) == 1
    assert side(q.ack(job)) is True
    assert side(q.ack(job)) is False  # not held any more
    assert side(q.processing()) == 0
    assert side(q.get(timeout=1)).data == {"n": 2}
    assert side(q.get(timeout=0)) is None


def test_nack_puts_in_front_and_retry_behind(side: Side, redis_server: Any) -> None:
    q = side.queue(redis_server.url)
    for item in ("a", "b"):
        side(q.put(item))
    a = side(q.get(timeout=1))
    assert side(q.nack(a)) is True
    a2 = side(q.get(timeout=1))
    assert (a2.id, a2.data, a2.attempt) == (a.id, "a", 2)
    assert side(q.retry(a2)) is True
    assert side(q.get(timeout=1)).data == "b"
    a3 = side(q.get(timeout=1))
    assert (a3.id, a3.attempt) == (a.id, 3)
    assert side(q.nack(a)) is False  # the old copy is not held


def test_reaper_requeues_after_the_visibility_timeout_and_not_before(
    side: Side, redis_server: Any
) -> None:
    crashed = side.queue(redis_server.url, consumer="crashed")
    other = side.queue(redis_server.url, consumer="other")
    job_id = side(crashed.put("work"))
    job = side(crashed.get(timeout=1))  # then the consumer "dies" without acking
    assert side(other.reap(1.0)) == 0
    assert side(other.get(timeout=0)) is None
    time.sleep(0.4)
    assert side(other.reap(1.0)) == 0  # still within the timeout
    time.sleep(1.0)
    assert side(other.reap(1.0)) == 1
    again = side(other.get(timeout=1))
    assert (again.id, again.data, again.attempt) == (job_id, "work", 2)
    assert side(crashed.ack(job)) is False  # too late: it was reaped
    assert side(other.ack(again)) is True
    assert side(other.reap(1.0)) == 0


def test_touch_extends_the_visibility_timeout(side: Side, redis_server: Any) -> None:
    q = side.queue(redis_server.url)
    side(q.put("long"))
    job = side(q.get(timeout=1))
    time.sleep(0.7)
    assert side(q.touch(job)) is True
    time.sleep(0.5)
    assert side(q.reap(1.0)) == 0  # 1.2 s since the claim, 0.5 s since the touch
    side(q.ack(job))
    assert side(q.touch(job)) is False


def test_an_unclaimed_job_is_reaped_one_timeout_after_it_is_seen(
    side: Side, redis_server: Any
) -> None:
    # A consumer that died between BLMOVE and recording its claim left no claim behind.
    q = side.queue(redis_server.url, consumer="ghost")
    side(q.put("orphan"))
    with redis_server.client() as r:
        r.sadd(q.keys.consumers, "ghost")
        r.lmove(q.keys.pending, q.keys.processing("ghost"), "RIGHT", "LEFT")
    assert side(q.reap(0.3)) == 0  # first seen now
    time.sleep(0.5)
    assert side(q.reap(0.3)) == 1
    assert side(q.get(timeout=1)).data == "orphan"


def test_blocking_wait_longer_than_the_socket_timeout(side: Side, redis_server: Any) -> None:
    # redis-py #2807: a blocking pop cannot wait longer than socket_timeout. get() waits in
    # BLMOVE slices below it.
    q = side.queue(redis_server.url, socket_timeout=0.5)

    def push_later() -> None:
        time.sleep(1.5)
        with RedisAdapter.from_url(redis_server.url, key_prefix=side.key_prefix) as adapter:
            ReliableQueue(adapter, "jobs").put("late")

    thread = threading.Thread(target=push_later, daemon=True)
    thread.start()
    t0 = time.monotonic()
    job = side(q.get(timeout=2))
    elapsed = time.monotonic() - t0
    thread.join(5)
    assert job is not None and job.data == "late"
    assert elapsed >= 1.4
    assert q._adapter.stats.errors == 0
    t0 = time.monotonic()
    assert side(q.get(timeout=1.2)) is None  # and an empty wait past it just ends
    assert time.monotonic() - t0 >= 1.1 and q._adapter.stats.errors == 0


def test_get_waits_out_an_outage(side: Side, fresh_server: Any) -> None:
    q = side.queue(fresh_server.url, socket_timeout=0.3)
    fresh_server.stop()
    assert side(q.get(timeout=0.5)) is None  # logged, not raised
    strict = side.queue(fresh_server.url, socket_timeout=0.3, raise_on_disconnect=True)
    with pytest.raises(BackendError):
        side(strict.get(timeout=0.5))
    with pytest.raises(BackendError):
        side(q.put("lost?"))  # writes always raise


def test_get_waits_out_its_master_turning_into_a_replica(side: Side, fresh_server: Any) -> None:
    # A failover demotes the master a consumer is blocked on: Redis ends the BLMOVE with
    # "UNBLOCKED ... (master -> replica?)". That is an outage to wait out like the others.
    q = side.queue(fresh_server.url, socket_timeout=2.0)  # BLMOVE slices of 1 s
    errors: list[BaseException] = []

    def demote_and_promote_again() -> None:
        try:
            time.sleep(0.4)  # the consumer is blocked by now
            with RedisServer() as other, fresh_server.client() as r:
                r.execute_command("REPLICAOF", "127.0.0.1", other.port)
                time.sleep(0.5)
                r.execute_command("REPLICAOF", "NO", "ONE")
            with RedisAdapter.from_url(fresh_server.url, key_prefix=side.key_prefix) as adapter:
                ReliableQueue(adapter, "jobs").put("after")
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=demote_and_promote_again, daemon=True)
    thread.start()
    try:
        job = side(q.get(timeout=10))
    finally:
        thread.join(15)
    assert not errors
    assert job is not None and job.data == "after"


def test_once(side: Side, redis_server: Any) -> None:
    q = side.queue(redis_server.url)
    side(q.put("charge"))
    job = side(q.get(timeout=1))
    assert side(q.once(job, ttl=10)) is True
    assert side(q.once(job.id, ttl=10)) is False  # a second run of the same job skips
    assert side(q.once("another-id", ttl=10)) is True


def test_unreadable_items_go_to_the_dead_letters(side: Side, redis_server: Any) -> None:
    q = side.queue(redis_server.url)
    with redis_server.client() as r:
        r.lpush(q.keys.pending, b"not a job")
    side(q.put("fine"))
    assert side(q.get(timeout=1)).data == "fine"
    with redis_server.client() as r:
        assert r.lrange(q.keys.dead, 0, -1) == [b"not a job"]


def test_cluster_keeps_a_queue_in_one_slot(side: Side, cluster: Any) -> None:
    q = side.queue(cluster.url, socket_timeout=0.5)
    keys = [q.keys.pending, q.keys.claims, q.keys.consumers, q.keys.dead]
    keys += [q.keys.processing("c1"), q.keys.once("x")]
    assert len({key_slot(k.encode()) for k in keys}) == 1
    side(q.put("on cluster"))
    job = side(q.get(timeout=1.5))
    assert job.data == "on cluster"
    assert side(q.reap(60)) == 0
    assert side(q.ack(job)) is True
