"""Redis failing under the session store: loads degrade as configured, saves always raise."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from rcache.errors import BackendError, BackendOutOfMemory, BackendReadOnly, BackendUnavailable
from rcache.sessions import (
    SaveStatus,
    Session,
    SessionUnavailable,
    cookie_value,
    should_set_cookie,
)

FAST = {"breaker_cooldown": 0.1, "retry_attempts": 1, "socket_timeout": 0.5}


def create(store: Any, **data: Any) -> tuple[Session, str]:
    session = store.load(None)
    session.update(data)
    assert store.save(session) == SaveStatus.CREATED
    return session, cookie_value(session.id, store.config)


def crash(server: Any) -> None:
    """Snapshot the data, then kill the server: start() brings it back with the data."""
    with server.client() as client:
        client.save()
    server.kill()


def sessions_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "rcache.sessions"]


def test_load_while_down_gives_a_read_only_empty_session_and_one_warning(
    make_store: Any, fresh_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store(fresh_server.url, **FAST)
    real, cookie = create(store, a=1)
    crash(fresh_server)
    with caplog.at_level(logging.WARNING, logger="rcache.sessions"):
        stand_ins = [store.load(cookie) for _ in range(5)]
    assert len(sessions_log(caplog)) == 1  # one warning per outage, not per request
    for s in stand_ins:
        assert s.degraded and len(s) == 0 and not s.stored
        assert not should_set_cookie(s)  # the visitor's real cookie survives the outage
    assert store.save(stand_ins[0]) == SaveStatus.UNCHANGED  # read-only requests are fine
    stand_ins[1]["x"] = 1
    with pytest.raises(SessionUnavailable) as info:
        store.save(stand_ins[1])  # would replace the real session with an empty one
    assert isinstance(info.value, BackendError) and info.value.__cause__ is not None
    with pytest.raises(SessionUnavailable):
        store.rotate(stand_ins[2])
    with pytest.raises(SessionUnavailable):
        store.set_user(stand_ins[2], 42)
    assert store.load(None).is_new  # no cookie: Redis is not needed

    fresh_server.start()
    deadline = time.monotonic() + 10
    with caplog.at_level(logging.WARNING, logger="rcache.sessions"):
        while (session := store.load(cookie)).degraded:
            assert time.monotonic() < deadline, "sessions did not come back"
            time.sleep(0.05)
    assert dict(session) == {"a": 1} and session.id == real.id  # nothing was clobbered
    assert sessions_log(caplog)[-1] == "sessions load again"

    store.flush(stand_ins[3])  # a logout during the outage still deletes the real session
    assert store.load(cookie).is_new and should_set_cookie(stand_ins[3])


def test_load_while_down_raises_when_configured(make_store: Any, fresh_server: Any) -> None:
    store = make_store(fresh_server.url, on_load_error="raise", **FAST)
    _, cookie = create(store, a=1)
    fresh_server.kill()
    with pytest.raises(BackendUnavailable):
        store.load(cookie)
    assert store.load(None).is_new


def test_save_while_down_raises(make_store: Any, fresh_server: Any) -> None:
    store = make_store(fresh_server.url, **FAST)
    _, cookie = create(store, a=1)
    session = store.load(cookie)
    fresh_server.kill()
    session["a"] = 2
    with pytest.raises(BackendUnavailable):
        store.save(session)
    assert session.modified  # the change is still pending, not silently dropped
    new = store.load(None)
    new["b"] = 1
    with pytest.raises(BackendError):
        store.save(new)
    assert not new.stored and not should_set_cookie(new)
    with pytest.raises(BackendError):
        store.flush(session)  # a logout that did not happen is reported


def test_save_on_a_full_server_raises_and_writes_nothing(
    make_store: Any, fresh_server: Any
) -> None:
    store = make_store(fresh_server.url, **FAST)
    session, cookie = create(store, a=1)
    loaded = store.load(cookie)
    with fresh_server.client() as client:
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", "1")  # below what is used: every write is refused
        before = client.hgetall(store.key(session.id))
        loaded["b"] = "y" * 100
        with pytest.raises(BackendOutOfMemory):
            store.save(loaded)
        assert client.hgetall(store.key(session.id)) == before
        fresh = store.load(None)
        fresh["c"] = 1
        with pytest.raises(BackendOutOfMemory):
            store.save(fresh)
        assert client.exists(store.key(fresh.id)) == 0


def test_save_on_a_read_only_replica_raises(make_store: Any, fresh_server: Any) -> None:
    store = make_store(fresh_server.url, **FAST)
    _, cookie = create(store, a=1)
    loaded = store.load(cookie)
    with fresh_server.client() as client:
        client.replicaof("127.0.0.1", 1)  # a master that never answers: a stale replica
    loaded["a"] = 2
    with pytest.raises(BackendReadOnly):
        store.save(loaded)


def test_saves_survive_a_restart(make_store: Any, fresh_server: Any) -> None:
    """Dropped connections and an empty script cache: the save batch is simply sent again."""
    store = make_store(fresh_server.url, retry_attempts=6, retry_deadline=10)
    _, cookie = create(store, a=1)
    session = store.load(cookie)
    new = store.load(None)
    fresh_server.restart()  # every pooled connection is dead, and the script cache empty
    session["a"] = 2
    assert store.save(session) == SaveStatus.SAVED
    fresh_server.restart()
    new["b"] = 1
    assert store.save(new) == SaveStatus.CREATED
    assert dict(store.load(cookie)) == {"a": 2}
