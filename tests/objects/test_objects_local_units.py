"""The local tier's pure parts: the LRU and its coherence bookkeeping, the listener machine."""

from __future__ import annotations

from typing import Any

import pytest

from rcache.errors import BackendError, ConfigurationError
from rcache.objects import LocalTier
from rcache.objects._local_listen import (
    CHANNEL,
    CHECK_MASTER,
    CONNECT,
    Drop,
    Listener,
    Pause,
    Phase,
    Read,
    Send,
    listen,
)
from rcache.objects._local_read import written_keys
from rcache.objects._local_store import LocalStore
from rcache.resilience import Backoff

TAGS = "p:1:{p:1:tags}#tag:"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_store(clock: Clock | None = None, **options: Any) -> LocalStore:
    options.setdefault("max_entries", 100)
    options.setdefault("max_bytes", 10_000)
    options.setdefault("ttl", None)
    store = LocalStore(clock=clock or Clock(), **options)
    store.tag_head = TAGS
    store.go_live()
    return store


def put(store: LocalStore, key: str, raw: bytes = b"1", **kw: Any) -> bool:
    ticket = store.begin([key])
    held = store.fill(ticket, key, raw, kw.get("expires"), kw.get("tags", ()), kw.get("now", 0))
    store.end(ticket)
    return held


def held(store: LocalStore, *keys: str, now: float = 0.0) -> list[bool]:
    return [e is not None for e in store.lookup(list(keys), now)]


def test_lru_bound_by_entries_keeps_the_recently_used() -> None:
    store = make_store(max_entries=3)
    for k in "abc":
        assert put(store, k)
    assert held(store, "a") == [True]  # a is now the most recently used
    assert put(store, "d")
    assert held(store, "a", "b", "c", "d") == [True, False, True, True]
    assert store.entries == 3 and store.stats.evictions == 1


def test_lru_bound_by_bytes() -> None:
    store = make_store(max_bytes=100)
    assert put(store, "a", b"x" * 40) and put(store, "b", b"x" * 40)
    assert store.nbytes == 80
    assert put(store, "c", b"x" * 40)  # 120 > 100: the oldest goes
    assert held(store, "a", "b", "c") == [False, True, True]
    assert store.nbytes == 80 and store.stats.evictions == 1
    assert not put(store, "huge", b"x" * 101)  # larger than the whole bound: never held
    assert held(store, "b", "c", "huge") == [True, True, False] and store.nbytes == 80
    assert put(store, "b", b"x" * 10) and store.nbytes == 50  # a refill replaces the size


def test_a_fill_loses_to_an_invalidation_that_came_first() -> None:
    store = make_store()
    ticket = store.begin(["k"])
    store.invalidate(["k"])  # another process wrote k while our read was in flight
    assert not store.fill(ticket, "k", b"old", None, (), 0)
    store.end(ticket)
    assert held(store, "k") == [False]
    assert put(store, "k")  # a read that starts afterwards may fill


def test_a_fill_after_a_flush_or_while_down_is_refused() -> None:
    store = make_store()
    ticket = store.begin(["k"])
    store.go_down(lost=True)
    store.go_live()
    assert not store.fill(ticket, "k", b"v", None, (), 0)  # older epoch
    store.go_down(lost=True)
    assert not put(store, "k")  # not live: bypassed
    store.go_down(lost=True)  # already down: not another disconnect
    assert store.stats.disconnects == 2 and store.stats.connects == 2


def test_concurrent_reads_of_one_key_only_the_last_fills() -> None:
    store = make_store()
    first, second = store.begin(["k"]), store.begin(["k"])
    assert not store.fill(first, "k", b"1", None, (), 0)
    assert store.fill(second, "k", b"2", None, (), 0)
    store.end(first)
    store.end(second)
    assert store._pending == {}


def test_tag_key_invalidation_drops_dependents_and_refuses_tagged_fills() -> None:
    store = make_store()
    red, blue = (("red", b"t1"),), (("blue", b"t2"),)
    assert put(store, "a", tags=red) and put(store, "b", tags=red + blue)
    assert put(store, "c", tags=blue) and put(store, "plain")
    ticket = store.begin(["d", "e"])
    store.invalidate([TAGS + "red"])
    assert held(store, "a", "b", "c", "plain") == [False, False, True, True]
    assert not store.fill(ticket, "d", b"v", None, red, 0)  # its tokens may be old
    assert store.fill(ticket, "e", b"v", None, (), 0)  # untagged: unaffected
    store.invalidate([TAGS + "blue"])
    assert held(store, "c", "e") == [False, True]
    assert store._by_tag == {}
    assert store.stats.invalidations == 3


def test_expiry_and_the_local_ttl_cap() -> None:
    clock = Clock()
    store = make_store(clock, ttl=5.0)
    assert put(store, "short", expires=102.0, now=100.0)
    assert put(store, "long", expires=200.0, now=100.0)
    assert put(store, "forever", now=100.0)
    (entry,) = store.lookup(["short"], 100.5)
    assert entry is not None and entry.pttl(100.5) == 1500
    assert held(store, "short", "long", "forever", now=101.9) == [True, True, True]
    assert held(store, "short", "long", "forever", now=102.0) == [False, True, True]
    assert held(store, "long", "forever", now=105.0) == [False, False]  # the 5 s cap
    (entry,) = store.lookup(["x"], 0)
    assert entry is None


def test_flush_counts_and_empties() -> None:
    store = make_store()
    put(store, "a")
    ticket = store.begin(["b"])
    store.flush()
    assert store.entries == 0 and store.nbytes == 0 and store.stats.flushes == 1
    assert not store.fill(ticket, "b", b"v", None, (), 0)


def test_written_keys() -> None:
    cmds = [
        ("SET", "a", b"v", "PX", 10),
        ("UNLINK", "b", "c"),
        ("MSET", "t1", b"x", "t2", b"y"),
        ("EVALSHA", "sha", 1, "d", 5),
        ("PEXPIRE", "e", 10),
        ("PERSIST", b"f"),
        ("GET", "nope"),
        ("MGET", "no", "pe"),
        ("PTTL", "no"),
    ]
    assert written_keys(cmds) == ["a", "b", "c", "t1", "t2", "d", "e", "f"]


@pytest.mark.parametrize(
    "options",
    [
        {"max_entries": 0},
        {"max_bytes": 0},
        {"ttl": 0},
        {"ttl": -1},
        {"health_check_interval": 0},
        {"max_entries": 1.5},
    ],
)
def test_bad_options(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        LocalTier(**options)


# -- the listener machine ------------------------------------------------------------------


def make_listener(clock: Clock, **kw: Any) -> tuple[Listener, LocalStore]:
    store = LocalStore(max_entries=10, max_bytes=1000, ttl=None, clock=clock)
    store.tag_head = TAGS
    listener = Listener(
        store,
        prefix="p:1:",
        backoff=kw.get("backoff", Backoff(base=0.5, cap=0.5)),
        health_check_interval=kw.get("interval", 3.0),
        reply_timeout=1.0,
        check_master=kw.get("check_master", False),
        clock=clock,
    )
    return listener, store


def handshake(loop: Any, clock: Clock) -> None:
    assert next(loop) is CONNECT
    assert loop.send(None) == Send([("CLIENT", "ID")])
    assert type(loop.send(None)) is Read
    tracking = ("CLIENT", "TRACKING", "on", "REDIRECT", 7, "BCAST", "PREFIX", "p:1:")
    assert loop.send(7) == Send([tracking, ("SUBSCRIBE", CHANNEL)])
    loop.send(None)
    loop.send(b"OK")
    step = loop.send([b"subscribe", CHANNEL, 1])
    assert type(step) is Read


def test_listener_handshake_messages_and_flush() -> None:
    clock = Clock()
    m, store = make_listener(clock)
    loop = listen(m)
    handshake(loop, clock)
    assert m.phase is Phase.LIVE and store.live and m.client_id == 7
    assert put(store, "p:1:a") and put(store, "p:1:b")
    loop.send([b"message", CHANNEL, [b"p:1:a"]])
    assert held(store, "p:1:a", "p:1:b") == [False, True]
    loop.send([b"message", b"other-channel", None])  # not ours: ignored
    assert held(store, "p:1:b") == [True]
    loop.send([b"message", CHANNEL, None])  # FLUSHALL
    assert store.entries == 0 and store.stats.flushes == 1 and store.live


def test_listener_pings_and_drops_on_a_missed_pong() -> None:
    clock = Clock()
    m, store = make_listener(clock, interval=3.0)
    loop = listen(m)
    handshake(loop, clock)
    put(store, "p:1:a")
    clock.now += 3.0
    assert loop.send(None) == Send([("PING",)])
    assert loop.send(None) == Read(1.0)
    clock.now += 0.5
    assert type(loop.send([b"pong", b""])) is Read  # answered: still live
    assert m.phase is Phase.LIVE and store.entries == 1
    clock.now += 3.0
    assert loop.send(None) == Send([("PING",)])
    loop.send(None)
    clock.now += 1.0  # no pong within reply_timeout
    step = loop.send(None)
    assert type(step) is Drop
    step = loop.send(None)
    assert step == Pause(0.0) or step is CONNECT  # first retry is immediate
    assert not store.live and store.entries == 0
    assert store.stats.disconnects == 1 and store.stats.flushes == 1


def test_listener_connection_error_bypasses_and_backs_off() -> None:
    clock = Clock()
    m, store = make_listener(clock)
    loop = listen(m)
    handshake(loop, clock)
    put(store, "p:1:a")
    assert type(loop.throw(BackendError("Connection closed by server"))) is Drop
    assert not store.live and store.entries == 0
    assert loop.send(None) is CONNECT  # retry 1: at once
    assert type(loop.throw(BackendError("refused"))) is Drop
    step = loop.send(None)
    assert type(step) is Pause and 0.25 <= step.seconds <= 0.5  # retry 2: backoff
    clock.now += step.seconds
    assert loop.send(None) is CONNECT
    assert not store.live


def test_listener_refused_setup_is_a_failed_attempt() -> None:
    clock = Clock()
    m, store = make_listener(clock)
    loop = listen(m)
    next(loop)
    loop.send(None)
    loop.send(None)
    loop.send(7)
    loop.send(None)
    assert type(loop.send(BackendError("ERR no permission"))) is Drop
    assert not store.live and m.phase is Phase.DOWN


def test_listener_checks_the_sentinel_master() -> None:
    clock = Clock()
    m, store = make_listener(clock, check_master=True)
    loop = listen(m)
    handshake(loop, clock)
    clock.now += 3.0
    m._last_rx = clock.now  # traffic: no ping due
    assert loop.send(None) is CHECK_MASTER
    assert type(loop.send(False)) is Read and store.live
    clock.now += 3.0
    m._last_rx = clock.now
    assert loop.send(None) is CHECK_MASTER
    assert type(loop.send(True)) is Drop  # the master moved: our tracking is elsewhere
    assert not store.live
