"""Sessions on Redis Cluster: load, save and rotate, through both stores."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis.cluster

from rcache.ops import Batch
from rcache.sessions import SaveStatus, Session, cookie_value, should_set_cookie
from rcache.sessions._layout import META_CREATED
from rcache.sessions._rotation import rotate


@pytest.fixture
def nodes(cluster: Any) -> Iterator[redis.cluster.RedisCluster]:
    client = cluster.client()
    yield client
    client.close()


def create(store: Any, user: int | None = None, **data: Any) -> tuple[Session, str]:
    session = store.load(None)
    session.update(data)
    if user is not None:
        store.set_user(session, user)
    assert store.save(session) == SaveStatus.CREATED
    return session, cookie_value(session.id, store.config)


def test_load_and_save_on_cluster(
    make_store: Any, cluster: Any, nodes: redis.cluster.RedisCluster
) -> None:
    store = make_store(cluster.url, slide_every=0)
    session, cookie = create(store, a=0)
    assert store.round_trips == 1
    first, second = store.load(cookie), store.load(cookie)
    assert store.round_trips == 3  # one per load
    first["x"] = 1
    second["y"] = 2
    assert store.save(first) == SaveStatus.SAVED
    assert store.save(second) == SaveStatus.SAVED
    assert store.round_trips == 5  # one per save
    assert dict(store.load(cookie)) == {"a": 0, "x": 1, "y": 2}

    key = store.key(session.id)
    nodes.pexpire(key, 300)
    store.load(cookie)
    assert nodes.pttl(key) > 80_000_000  # slid back to the idle timeout (1 day)

    store.delete(session.id)
    first["x"] = 2
    assert store.save(first) == SaveStatus.GONE
    assert not nodes.exists(key)


def test_rotate_and_the_user_index_on_cluster(
    make_store: Any, cluster: Any, nodes: redis.cluster.RedisCluster
) -> None:
    store = make_store(cluster.url)
    _, cookie = create(store, user=42, a=1)
    session = store.load(cookie)
    old_key = store.key(session.id)
    created = nodes.hget(old_key, META_CREATED)
    nodes.pexpire(old_key, 50_000)
    before = store.round_trips
    store.rotate(session)
    assert store.round_trips == before + 2  # copy, then restore + delete
    new_key = store.key(session.id)
    assert not nodes.exists(old_key)
    assert nodes.hget(new_key, META_CREATED) == created
    assert 40_000 < nodes.pttl(new_key) <= 50_000
    assert should_set_cookie(session)
    assert store.load(cookie).is_new
    assert dict(store.load(cookie_value(session.id, store.config))) == {"a": 1}
    assert store.sessions_for(42) == [session.id]

    other, _ = create(store, user=42, b=2)
    assert store.sessions_for(42) == sorted([session.id, other.id])
    assert store.revoke_all(42) == 2
    assert not nodes.exists(new_key) and not nodes.exists(store.key(other.id))


def test_rotate_racing_a_logout_on_cluster(
    make_store: Any, cluster: Any, nodes: redis.cluster.RedisCluster
) -> None:
    """A logout between the copy and the delete must not leave the copy alive."""
    store = make_store(cluster.url)
    _, cookie = create(store, a=1)
    session = store.load(cookie)
    old_key = store.key(session.id)
    sent: list[Batch] = []
    real_batch: Callable[[Batch], list[Any]] = store.batch

    def record(batch: Batch) -> list[Any]:
        sent.append(batch)
        return real_batch(batch)

    store.batch = record

    def logout_after_the_copy(n: int) -> None:
        if n == 1:
            nodes.delete(old_key)

    store.drive(rotate(store.storage, session), logout_after_the_copy)
    restore = sent[1].commands[0]
    assert restore[0] == "RESTORE"
    assert not nodes.exists(restore[1])  # the copy was removed again
    assert len(sent) == 3
    assert session.is_new and not session.stored  # stored afresh only if saved
    assert store.load(cookie).is_new
