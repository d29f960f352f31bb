"""Rotate, flush, delete, the per-user index and signing-key rotation, through both stores."""

from __future__ import annotations

import time
from typing import Any

import redis

from rcache.sessions import (
    SaveStatus,
    SessionConfig,
    cookie_header,
    cookie_value,
    load_id_from_cookie,
    should_set_cookie,
)
from rcache.sessions._layout import META_CREATED, META_TOKEN, META_USER
from rcache.sessions._rotation import ROTATE


def create(store: Any, user: str | int | None = None, **data: Any) -> tuple[Any, str]:
    session = store.load(None)
    session.update(data)
    if user is not None:
        store.set_user(session, user)
    assert store.save(session) == SaveStatus.CREATED
    return session, cookie_value(session.id, store.config)


def test_rotate_moves_the_session_to_a_new_id(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url)
    _, cookie = create(store, a=1)
    session = store.load(cookie)
    old_id = session.id
    old_key = store.key(old_id)
    created = raw.hget(old_key, META_CREATED)
    raw.pexpire(old_key, 50_000)
    before = store.round_trips
    store.rotate(session)
    assert store.round_trips == before + 1
    assert session.id != old_id and session.rotated and session.stored
    assert not raw.exists(old_key)
    new_key = store.key(session.id)
    assert raw.hget(new_key, META_CREATED) == created  # rotating does not extend the lifetime
    assert 40_000 < raw.pttl(new_key) <= 50_000  # the TTL moves with it
    assert should_set_cookie(session)
    new_cookie = cookie_value(session.id, store.config)
    assert cookie_header(session, store.config).startswith(f"session={new_cookie};")
    assert store.load(cookie).is_new  # the old cookie no longer works
    assert dict(store.load(new_cookie)) == {"a": 1}


def test_changes_before_a_rotate_are_saved_under_the_new_id(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url)
    _, cookie = create(store, a=1)
    session = store.load(cookie)
    session["b"] = 2
    store.rotate(session)
    assert store.save(session) == SaveStatus.SAVED
    assert dict(store.load(cookie_value(session.id, store.config))) == {"a": 1, "b": 2}
    assert raw.keys(f"{store.config.prefix}:1:*") == [store.key(session.id).encode()]


def test_rotating_a_session_not_stored_only_changes_its_id(make_store: Any, redis_url: str) -> None:
    store = make_store(redis_url)
    session = store.load(None)
    old_id = session.id
    store.rotate(session)
    assert session.id != old_id and store.round_trips == 0
    assert not should_set_cookie(session)  # nothing stored: no cookie
    session["x"] = 1
    assert store.save(session) == SaveStatus.CREATED
    assert should_set_cookie(session)


def test_rotate_after_a_logout_elsewhere_starts_a_new_session(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url)
    _, cookie = create(store, a=1)
    session = store.load(cookie)
    old_id = session.id
    store.delete(old_id)
    store.rotate(session)
    assert session.is_new and not session.stored and session.id != old_id
    assert store.save(session) == SaveStatus.CREATED
    assert not raw.exists(store.key(old_id))  # the old id stays dead
    assert dict(store.load(cookie_value(session.id, store.config))) == {"a": 1}


def test_a_resent_rotate_is_recognised(raw: redis.Redis, prefix: str) -> None:
    old, new, taken = (f"{prefix}:1:{name}" for name in ("old", "new", "taken"))
    raw.hset(old, mapping={META_TOKEN: "tok", "a": "1"})
    raw.hset(taken, mapping={META_TOKEN: "other"})
    assert raw.eval(ROTATE.source, 2, old, taken, "tok") == -1  # new id in use: refused
    assert raw.exists(old)
    assert raw.eval(ROTATE.source, 2, old, new, "tok") == 1
    assert raw.eval(ROTATE.source, 2, old, new, "tok") == 1  # the same batch again
    assert raw.hget(new, "a") == b"1" and not raw.exists(old)
    assert raw.eval(ROTATE.source, 2, old, f"{prefix}:1:else", "tok") == 0  # gone
    raw.delete(new, taken)


def test_flush_deletes_and_starts_over(make_store: Any, redis_url: str, raw: redis.Redis) -> None:
    store = make_store(redis_url)
    _, cookie = create(store, user=42, a=1)
    session = store.load(cookie)
    old_id = session.id
    store.flush(session)
    assert not raw.exists(store.key(old_id))
    assert raw.smembers(store.user_key("42")) == set()
    assert session.is_new and len(session) == 0 and session.user_id is None
    assert session.id != old_id and should_set_cookie(session)
    assert cookie_header(session, store.config).startswith("session=; Max-Age=0;")
    assert store.save(session) == SaveStatus.UNCHANGED  # still empty: nothing stored
    session["after"] = True
    assert store.save(session) == SaveStatus.CREATED
    header = cookie_header(session, store.config)
    assert header.startswith(f"session={cookie_value(session.id, store.config)};")


def test_delete(make_store: Any, redis_url: str) -> None:
    store = make_store(redis_url)
    session, cookie = create(store, a=1)
    assert store.delete(session.id) is True
    assert store.delete(session.id) is False
    assert store.load(cookie).is_new
    before = store.round_trips
    assert store.delete("not-an-id") is False
    assert store.delete("*") is False
    assert store.round_trips == before


def test_users_and_their_sessions(make_store: Any, redis_url: str, raw: redis.Redis) -> None:
    store = make_store(redis_url)
    first = store.load(None)
    first["a"] = 1
    assert store.set_user(first, 42) == SaveStatus.UNCHANGED  # written by the save
    assert store.round_trips == 0
    assert store.save(first) == SaveStatus.CREATED
    assert store.round_trips == 1
    second, cookie = create(store, b=2)
    loaded = store.load(cookie)
    before = store.round_trips
    assert store.set_user(loaded, "42") == SaveStatus.SAVED
    assert store.round_trips == before + 1
    other, _ = create(store, user=7, c=3)

    assert store.sessions_for(42) == sorted([first.id, second.id])
    assert store.sessions_for("7") == [other.id]
    assert store.sessions_for(99) == []
    assert raw.hget(store.key(first.id), META_USER) == b"42"
    assert 13 * 86400_000 < raw.pttl(store.user_key("42")) <= 14 * 86400_000
    assert store.load(cookie).user_id == "42"

    # Re-assigning a session moves it from one index to the other.
    assert store.set_user(loaded, 7) == SaveStatus.SAVED
    assert raw.smembers(store.user_key("42")) == {first.id.encode()}
    assert store.sessions_for(42) == [first.id]
    assert store.sessions_for(7) == sorted([other.id, second.id])


def test_sessions_for_drops_dead_entries(make_store: Any, redis_url: str, raw: redis.Redis) -> None:
    store = make_store(redis_url)
    gone, _ = create(store, user=42, a=1)
    kept, _ = create(store, user=42, a=2)
    store.delete(gone.id)
    raw.sadd(store.user_key("42"), "stale-entry")
    assert store.sessions_for(42) == [kept.id]
    assert raw.smembers(store.user_key("42")) == {kept.id.encode()}


def test_sessions_for_leaves_out_a_session_past_its_absolute_lifetime(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url, idle_timeout=100, absolute_lifetime=60)
    ended, cookie = create(store, user=42, a=1)
    live, _ = create(store, user=42, a=2)
    # Loaded a second before its deadline: the key's TTL slid to the idle timeout, longer
    # than the session has left.
    raw.hset(store.key(ended.id), META_CREATED, str(time.time_ns() // 1_000_000 - 60_000))
    assert store.sessions_for(42) == [live.id]
    assert store.load(cookie).is_new  # never served either (and deleted by that load)
    assert not raw.exists(store.key(ended.id))


def test_revoke_all_logs_a_user_out_everywhere(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url)
    sessions = [create(store, user=42, n=i) for i in range(3)]
    bystander, bystander_cookie = create(store, user=7, n=9)
    in_flight = store.load(sessions[0][1])
    assert store.revoke_all(42) == 3
    for session, cookie in sessions:
        assert not raw.exists(store.key(session.id))
        assert store.load(cookie).is_new
    in_flight["n"] = 100
    assert store.save(in_flight) == SaveStatus.GONE  # a running request cannot undo it
    assert store.sessions_for(42) == [] and store.revoke_all(42) == 0
    assert dict(store.load(bystander_cookie)) == {"n": 9}


def test_set_user_on_a_session_deleted_meanwhile(make_store: Any, redis_url: str) -> None:
    store = make_store(redis_url)
    _, cookie = create(store, a=1)
    session = store.load(cookie)
    store.delete(session.id)
    assert store.set_user(session, 42) == SaveStatus.GONE
    assert store.sessions_for(42) == []


def test_signing_keys_rotate_without_logging_anyone_out(make_store: Any, redis_url: str) -> None:
    old = make_store(redis_url, secret_keys=["old-key"])
    _, old_cookie = create(old, a=1)
    both = make_store(redis_url, secret_keys=["new-key", "old-key"])
    session = both.load(old_cookie)
    assert dict(session) == {"a": 1}  # still logged in
    store_new_only = SessionConfig(secret_keys=["new-key"])
    resigned = cookie_value(session.id, both.config)
    assert load_id_from_cookie(resigned, store_new_only) == session.id  # new cookies: new key
    new_only = make_store(redis_url, secret_keys=["new-key"])
    assert new_only.load(old_cookie).is_new  # once the old key is dropped, so are its cookies
    assert dict(new_only.load(resigned)) == {"a": 1}
