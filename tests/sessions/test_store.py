"""Load and save against real Redis, through both stores: round trips, merge, expiry, limits."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
import redis

from rcache.errors import ConfigurationError, EncodeError
from rcache.sessions import (
    SaveStatus,
    Session,
    SessionConfig,
    SessionTooLarge,
    cookie_header,
    cookie_value,
    new_session_id,
    should_set_cookie,
    vary_cookie,
)
from rcache.sessions._cookies import load_id_from_cookie
from rcache.sessions._layout import META_CREATED, META_USER
from rcache.sessions._ops import SAVE, changed_in_place

LOAD_COMMANDS = {"hgetall": 1, "pexpire": 1}  # plain commands, no script
UPDATE_COMMANDS = {"evalsha": 1, "hexists": 1, "hset": 1, "pexpire": 1}
CREATE_COMMANDS = {"evalsha": 1, "time": 1, "hget": 1, "exists": 1, "hset": 2, "pexpire": 1}


def create(store: Any, **data: Any) -> tuple[Session, str]:
    """Store a new session holding ``data``; return it and its cookie value."""
    session = store.load(None)
    session.update(data)
    assert store.save(session) == SaveStatus.CREATED
    return session, cookie_value(session.id, store.config)


def server_time_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def test_a_new_session_is_stored_and_loaded_back(make_store: Any, redis_server: Any) -> None:
    store = make_store(redis_server.url)
    session = store.load(None)
    assert store.round_trips == 0
    assert session.is_new and not session.accessed
    data = {"cart": [1, 2], "user": {"name": "Zoë", "age": 7}, "n": 3, "s": "text"}
    session.update(data)
    assert store.save(session) == SaveStatus.CREATED
    assert store.round_trips == 1
    assert session.stored and should_set_cookie(session) and vary_cookie(session)
    header = cookie_header(session, store.config)
    assert header.startswith(f"session={cookie_value(session.id, store.config)};")

    again = store.load(cookie_value(session.id, store.config))
    assert store.round_trips == 2
    assert dict(again) == data
    assert again.id == session.id and not again.is_new
    assert not should_set_cookie(again)  # ordinary requests send no cookie
    assert 0 < again.lifetime_left <= 14 * 86400


def test_round_trips_seen_by_the_client_and_the_server(
    make_store: Any, fresh_server: Any, server_commands: Any
) -> None:
    store = make_store(fresh_server.url, slide_every=0)  # every load slides
    _, cookie = create(store, a=1)
    store.load(cookie)  # every script is now cached by the server
    server = server_commands()

    def request(cookie_value: str | None, change: dict[str, Any] | None = None) -> int:
        before: int = store.round_trips
        session = store.load(cookie_value)
        session.get("a")
        if change:
            session.update(change)
        store.save(session)
        after: int = store.round_trips
        return after - before

    assert request(cookie) == 1  # read-only request: the load, nothing else
    assert server.delta() == LOAD_COMMANDS

    assert request(cookie, {"b": 2}) == 2  # load + save
    assert server.delta() == {
        k: LOAD_COMMANDS.get(k, 0) + UPDATE_COMMANDS.get(k, 0)
        for k in {**LOAD_COMMANDS, **UPDATE_COMMANDS}
    }

    assert request(None) == 0  # no cookie, nothing stored: Redis is not asked
    assert server.delta() == {}

    assert request(None, {"c": 3}) == 1  # a new session with data: one create
    assert server.delta() == CREATE_COMMANDS


def test_bad_cookies_cost_no_redis_command(
    make_store: Any, fresh_server: Any, server_commands: Any
) -> None:
    store = make_store(fresh_server.url, max_cookie_bytes=200)
    session, good = create(store, a=1)
    sid, sig = good.split(".")
    other_key = SessionConfig(secret_keys=["another-key"])
    bad = {
        "tampered id": ("B" if sid[0] == "A" else "A") + sid[1:] + "." + sig,
        "tampered signature": sid + "." + sig[::-1],
        "malformed": "not a cookie",
        "no signature": sid,
        "oversized": good + "." + "x" * 200,
        "wrong key": cookie_value(sid, other_key),
        "non-ascii": good[:-1] + "é",
    }
    server = server_commands()
    before = store.round_trips
    for name, value in bad.items():
        loaded = store.load(value)
        assert loaded.is_new and len(loaded) == 0, name
        assert loaded.id != session.id, name
        assert store.save(loaded) == SaveStatus.UNCHANGED, name
    assert store.round_trips == before
    assert server.delta() == {}
    assert dict(store.load(good)) == {"a": 1}  # the real session was not touched


def test_an_unknown_signed_id_is_not_adopted(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url)
    planted = new_session_id()  # an id an attacker chose and signed with a leaked key
    session = store.load(cookie_value(planted, store.config))
    assert store.round_trips == 1
    assert session.is_new and session.id != planted
    session["x"] = 1
    assert store.save(session) == SaveStatus.CREATED
    assert not raw.exists(store.key(planted))
    assert raw.exists(store.key(session.id))


def test_an_empty_session_is_never_stored(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url)
    session = store.load(None)
    assert store.save(session) == SaveStatus.UNCHANGED
    session["x"] = 1
    del session["x"]
    assert session.modified
    assert store.save(session) == SaveStatus.UNCHANGED
    assert store.round_trips == 0
    assert not should_set_cookie(session)
    assert raw.keys(f"{store.config.prefix}*") == []


def test_concurrent_writers_of_different_keys_both_persist(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url)
    _, cookie = create(store, a=0, z="old", keep=True)
    first = store.load(cookie)
    second = store.load(cookie)
    first["a"] = 1
    second["b"] = 2
    del second["z"]
    assert store.save(first) == SaveStatus.SAVED
    assert store.save(second) == SaveStatus.SAVED
    assert dict(store.load(cookie)) == {"a": 1, "b": 2, "keep": True}


def test_a_nested_change_is_saved_once_marked(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url)
    _, cookie = create(store, cart=[1])
    session = store.load(cookie)
    session["cart"].append(2)
    assert store.save(session) == SaveStatus.UNCHANGED
    assert store.load(cookie)["cart"] == [1]
    session.mark_modified("cart")
    assert store.save(session) == SaveStatus.SAVED
    assert store.load(cookie)["cart"] == [1, 2]


def test_changes_in_place_are_found_against_the_stored_bytes(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url)
    _, cookie = create(store, cart=[1], prefs={"a": {"b": 1}}, name="x", n=1, spaced=[2])
    codec = store.config.codec
    header = codec.encode([0])[:1]
    spaced = header + b"[ 2 ]"  # the same value, encoded otherwise (another writer)
    assert codec.decode(spaced) == [2] and codec.encode([2]) != spaced
    raw.hset(store.key(load_id_from_cookie(cookie, store.config) or ""), "spaced", spaced)
    session = store.load(cookie)
    assert changed_in_place(store.storage, session) == []
    session["cart"].append(2)
    session["prefs"]["a"]["b"] = 2
    session["spaced"].sort()  # changes nothing
    session["name"] = "y"  # assigned: a save writes it anyway
    assert sorted(changed_in_place(store.storage, session)) == ["cart", "prefs"]
    for key in changed_in_place(store.storage, session):
        session.mark_modified(key)
    assert store.save(session) == SaveStatus.SAVED
    assert changed_in_place(store.storage, session) == []  # the saved bytes are the new base
    session["cart"].append(3)
    assert changed_in_place(store.storage, session) == ["cart"]
    again = store.load(cookie)
    assert again["cart"] == [1, 2] and again["prefs"] == {"a": {"b": 2}} and again["name"] == "y"


def test_load_verified_takes_an_id_checked_already(make_store: Any, redis_url: str) -> None:
    store = make_store(redis_url)
    session, cookie = create(store, a=1)
    session_id = store.load_id_from_cookie(cookie)
    assert session_id == session.id
    assert dict(store.load_verified(session_id)) == {"a": 1}
    assert store.round_trips == 2
    fresh = store.load_verified(None)
    assert fresh.is_new and store.round_trips == 2
    unknown = store.load_verified(new_session_id())
    assert unknown.is_new and not unknown.stored  # never adopted


def test_a_save_after_logout_does_not_resurrect(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url)
    _, cookie = create(store, a=1)
    slow = store.load(cookie)  # request A, still running
    assert store.delete(slow.id)  # request B logs out
    slow["a"] = 2
    before = store.round_trips
    assert store.save(slow) == SaveStatus.GONE
    assert store.round_trips == before + 1
    assert not raw.exists(store.key(slow.id))
    assert slow.gone and not should_set_cookie(slow)
    assert store.save(slow) == SaveStatus.GONE  # known gone: no more round trips
    assert store.round_trips == before + 1


def test_loading_slides_the_idle_expiry(make_store: Any, redis_url: str, raw: redis.Redis) -> None:
    store = make_store(redis_url, idle_timeout=5, absolute_lifetime=60)
    session, cookie = create(store, a=1)
    key = store.key(session.id)
    assert 4000 < raw.pttl(key) <= 5000
    raw.pexpire(key, 300)
    store.load(cookie)  # a read-only request
    assert 4000 < raw.pttl(key) <= 5000
    raw.pexpire(key, 50)
    time.sleep(0.1)
    assert store.load(cookie).is_new  # idle too long: gone


def test_the_absolute_lifetime_caps_the_expiry(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url, idle_timeout=100, absolute_lifetime=3)
    session, cookie = create(store, a=1)
    key = store.key(session.id)
    assert 2000 < raw.pttl(key) <= 3000
    loaded = store.load(cookie)
    assert 2000 < raw.pttl(key) <= 3000 and loaded.lifetime_left <= 3
    loaded["b"] = 2
    assert store.save(loaded) == SaveStatus.SAVED
    assert raw.pttl(key) <= 3000

    # Started 2 s ago with a 3 s lifetime: 1 s left, whatever the idle timeout says. The
    # load slides the key's TTL to the idle timeout; the session is served 1 s more only,
    # and a save caps the TTL again.
    raw.hset(key, META_CREATED, str(server_time_ms(raw) - 2000))
    loaded = store.load(cookie)
    assert loaded.lifetime_left is not None and 0 < loaded.lifetime_left <= 1
    loaded["c"] = 3
    assert store.save(loaded) == SaveStatus.SAVED
    assert 0 < raw.pttl(key) <= 1000

    # Past its deadline: the load deletes it (and a save would not write it back).
    raw.hset(key, META_CREATED, str(server_time_ms(raw) - 3001))
    raw.pexpire(key, 60_000)
    assert store.load(cookie).is_new
    assert not raw.exists(key)


def test_a_save_past_the_deadline_deletes_instead(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url, idle_timeout=100, absolute_lifetime=1)
    session, cookie = create(store, a=1)
    loaded = store.load(cookie)
    key = store.key(session.id)
    raw.pexpire(key, 60_000)  # the key outlives the deadline: the save must notice it
    time.sleep(1.05)
    loaded["a"] = 2
    assert store.save(loaded) == SaveStatus.GONE
    assert not raw.exists(key)


def test_a_save_checks_the_deadline_the_load_learnt(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url, idle_timeout=100, absolute_lifetime=60)
    session, cookie = create(store, a=1)
    key = store.key(session.id)
    raw.hset(key, META_CREATED, str(server_time_ms(raw) - 59_000))  # 1 s left
    loaded = store.load(cookie)
    loaded["a"] = 2
    assert store.save(loaded) == SaveStatus.SAVED
    assert 0 < raw.pttl(key) <= 1000  # the TTL stops at the absolute deadline


def test_a_hash_without_its_creation_time_is_neither_served_nor_written(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url)
    session, cookie = create(store, a=1)
    loaded = store.load(cookie)
    key = store.key(session.id)
    raw.hdel(key, META_CREATED)
    assert store.load(cookie).is_new
    loaded["a"] = 2
    assert store.save(loaded) == SaveStatus.GONE
    assert raw.hget(key, "a") != store.config.codec.encode(2)


def test_the_size_limit_is_checked_before_writing(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url, max_session_bytes=200)
    session = store.load(None)
    session["big"] = "x" * 300
    with pytest.raises(SessionTooLarge) as info:
        store.save(session)
    assert info.value.limit == 200 and info.value.size > 300
    assert store.round_trips == 0 and raw.keys(f"{store.config.prefix}*") == []

    session, cookie = create(store, a="y" * 100)
    loaded = store.load(cookie)
    loaded["b"] = "z" * 100  # small alone, too much with what is stored
    with pytest.raises(SessionTooLarge):
        store.save(loaded)
    assert raw.hkeys(store.key(session.id)).count(b"b") == 0
    del loaded["a"]
    assert store.save(loaded) == SaveStatus.SAVED  # room again once "a" goes
    assert dict(store.load(cookie)) == {"b": "z" * 100}


def test_the_size_counts_stored_field_names_and_values_exactly(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    data = {"é": "x" * 10, "\x00x": 1, "a": [1], "": "e"}
    roomy = make_store(redis_url)
    session, cookie = create(roomy, **data)
    fields = raw.hgetall(roomy.key(session.id))
    exact = sum(
        len(k) + len(v)
        for k, v in fields.items()
        if not k.startswith(b"\x00") or k.startswith(b"\x00\x00")
    )
    tight = make_store(redis_url, max_session_bytes=exact)
    loaded = tight.load(cookie)
    assert dict(loaded) == data
    loaded["a"] = [1]  # the same size: fits exactly
    assert tight.save(loaded) == SaveStatus.SAVED
    loaded["a"] = [1, 2]  # two bytes more
    with pytest.raises(SessionTooLarge) as info:
        tight.save(loaded)
    assert info.value.size == exact + 2


def test_an_unencodable_value_raises_before_writing(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url)
    session = store.load(None)
    session["s"] = {1, 2}  # json has no sets
    with pytest.raises(EncodeError):
        store.save(session)
    assert store.round_trips == 0


def test_session_keys_never_touch_the_meta_fields(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url)
    data = {"\x00created": "mine", "\x00user": "also mine", "\x00": 0}
    session, cookie = create(store, **data)
    key = store.key(session.id)
    assert raw.hget(key, META_CREATED).isdigit()  # type: ignore[union-attr]
    assert raw.hget(key, META_USER) is None
    loaded = store.load(cookie)
    assert dict(loaded) == data and loaded.user_id is None


def test_unreadable_values_are_skipped_with_a_warning(
    make_store: Any, redis_url: str, raw: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store(redis_url)
    session, cookie = create(store, good=1)
    raw.hset(store.key(session.id), "bad", b"\xff\x00garbage")
    with caplog.at_level(logging.WARNING, logger="rcache.sessions"):
        loaded = store.load(cookie)
    assert dict(loaded) == {"good": 1}
    [record] = [r for r in caplog.records if r.name == "rcache.sessions"]
    assert "garbage" not in record.getMessage()


def test_values_are_decoded_when_read_and_an_unread_bad_one_is_left_alone(
    make_store: Any, redis_url: str, raw: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store(redis_url)
    session, cookie = create(store, good=1, n=0)
    key = store.key(session.id)
    raw.hset(key, "bad", b"\xff\x00garbage")
    with caplog.at_level(logging.WARNING, logger="rcache.sessions"):
        loaded = store.load(cookie)
        loaded["n"] = loaded["n"] + 1  # the request never reads "bad"
        assert store.save(loaded) == SaveStatus.SAVED
    assert not [r for r in caplog.records if r.name == "rcache.sessions"]  # never decoded
    assert raw.hget(key, "bad") == b"\xff\x00garbage"  # nor touched
    with caplog.at_level(logging.WARNING, logger="rcache.sessions"):
        again = store.load(cookie)
        assert again.get("bad", "default") == "default"
        assert "bad" not in again
        with pytest.raises(KeyError):
            again["bad"]
        assert dict(again) == {"good": 1, "n": 1}
    assert len([r for r in caplog.records if r.name == "rcache.sessions"]) == 1


def test_a_key_marked_modified_but_never_read_is_written_back_unchanged(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url)
    session, cookie = create(store, cart=[1, 2], user={"name": "Zoë"})
    key = store.key(session.id)
    before = raw.hgetall(key)
    loaded = store.load(cookie)
    loaded.mark_modified("cart")
    assert store.save(loaded) == SaveStatus.SAVED
    assert raw.hgetall(key) == before
    assert dict(store.load(cookie)) == {"cart": [1, 2], "user": {"name": "Zoë"}}


def test_rotating_a_session_never_read_keeps_its_values(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    store = make_store(redis_url)
    session, cookie = create(store, cart=[1, 2], n=7)
    loaded = store.load(cookie)
    store.rotate(loaded)  # nothing was read before the rotation
    assert loaded.id != session.id
    assert dict(store.load(cookie_value(loaded.id, store.config))) == {"cart": [1, 2], "n": 7}
    assert raw.exists(store.key(session.id)) == 0


def test_a_loaded_session_copies_and_pickles_with_its_values(
    make_store: Any, redis_url: str, raw: redis.Redis
) -> None:
    import copy
    import pickle

    store = make_store(redis_url)
    session, cookie = create(store, cart=[1, 2], name="Zoë")
    loaded = store.load(cookie)  # nothing read yet: every value still undecoded
    for twin in (copy.deepcopy(loaded), pickle.loads(pickle.dumps(loaded)), copy.copy(loaded)):
        assert dict(twin) == {"cart": [1, 2], "name": "Zoë"}
        assert twin.id == loaded.id and twin.stored
    again = store.load(cookie)
    twin = copy.deepcopy(again)
    twin.mark_modified("cart")  # a key never read in the copy: written back as it was
    assert store.save(twin) == SaveStatus.SAVED
    assert dict(store.load(cookie)) == {"cart": [1, 2], "name": "Zoë"}


def test_a_taken_id_is_never_merged_into(make_store: Any, redis_url: str, raw: redis.Redis) -> None:
    store = make_store(redis_url)
    owner, cookie = create(store, owner="first")
    intruder = Session(owner.id)  # a new session that drew the same id
    intruder["owner"] = "second"
    assert store.save(intruder) == SaveStatus.CREATED
    assert intruder.id != owner.id
    assert dict(store.load(cookie)) == {"owner": "first"}


def test_a_resent_create_is_recognised(raw: redis.Redis, prefix: str) -> None:
    """The save batch is retried after a lost connection: a create must survive that."""
    key = f"{prefix}:1:{new_session_id()}"
    args: list[Any] = ["create", 60_000, 60_000, "token-1", 1, "a", "1"]
    assert raw.eval(SAVE.source, 1, key, *args) == b"created"
    assert raw.eval(SAVE.source, 1, key, *args) == b"created"  # the same batch again
    other: list[Any] = ["create", 60_000, 60_000, "token-2", 1, "a", "2"]
    assert raw.eval(SAVE.source, 1, key, *other) == b"collision"
    assert raw.hget(key, "a") == b"1"
    raw.delete(key)


def test_many_fields_in_one_save(make_store: Any, redis_url: str, raw: redis.Redis) -> None:
    store = make_store(redis_url)
    session, cookie = create(store, **{f"k{i}": i for i in range(3000)})
    loaded = store.load(cookie)
    for i in range(2500):
        del loaded[f"k{i}"]
    assert store.save(loaded) == SaveStatus.SAVED
    assert len(store.load(cookie)) == 500


def test_a_process_slides_a_session_at_most_once_per_slide_every(
    make_store: Any, fresh_server: Any, server_commands: Any
) -> None:
    store = make_store(fresh_server.url, slide_every=0.3, idle_timeout=60)
    _, cookie = create(store, a=1)
    store.load(cookie)  # slides (and caches the scripts on the server)
    server = server_commands()
    store.load(cookie)  # slid a moment ago: only the read
    assert server.delta() == {"hgetall": 1}
    time.sleep(0.35)
    store.load(cookie)  # the interval is over: slides again, in the same round trip
    assert server.delta() == LOAD_COMMANDS
    assert store.round_trips == 4  # create + three loads, one round trip each


def test_slide_every_defaults_to_one_percent_of_the_idle_timeout() -> None:
    assert SessionConfig(secret_keys=["k"], idle_timeout=600).slide_s == 6.0
    assert SessionConfig(secret_keys=["k"], idle_timeout=86400).slide_s == 60.0  # capped
    assert SessionConfig(secret_keys=["k"], idle_timeout=600, slide_every=0).slide_s == 0.0
    with pytest.raises(ConfigurationError):
        SessionConfig(secret_keys=["k"], slide_every=-1)
