"""The adapter against raw redis-py: GET and SET, 100 B and 10 KB, TCP and unix socket."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import redis

from bench.harness import Contender
from rcache.adapter import RedisAdapter
from rcache.ops import Batch, Op


def _get_op(key: str) -> Op[Any]:
    (value,) = yield Batch(((("GET", key)),))
    return value


def contenders(tcp_url: str, unix_url: str) -> list[Contender]:
    out: list[Contender] = []
    clients: list[Any] = []

    def closer() -> None:
        for c in clients:
            c.close()
        clients.clear()

    for transport, url in (("tcp", tcp_url), ("unix", unix_url)):
        for size_name, size in (("100 B", 100), ("10 KB", 10_000)):
            value = os.urandom(size)
            key = f"bench:adapter:{size}"

            def raw(url: str = url, key: str = key, value: bytes = value) -> Any:
                r = redis.Redis.from_url(url)
                clients.append(r)
                r.set(key, value)
                return r

            def ours(url: str = url) -> RedisAdapter:
                a = RedisAdapter.from_url(url)
                clients.append(a)
                return a

            def raw_get(raw: Callable[[], Any] = raw, key: str = key) -> Callable[[], Any]:
                r = raw()
                return lambda: r.get(key)

            def ours_get(ours: Callable[[], Any] = ours, key: str = key) -> Callable[[], Any]:
                a = ours()
                return lambda: a.execute("GET", key)

            def ours_get_op(ours: Callable[[], Any] = ours, key: str = key) -> Callable[[], Any]:
                a = ours()
                return lambda: a.run(_get_op(key))

            def raw_set(
                raw: Callable[[], Any] = raw, key: str = key, value: bytes = value
            ) -> Callable[[], Any]:
                r = raw()
                return lambda: r.set(key, value)

            def ours_set(
                ours: Callable[[], Any] = ours, key: str = key, value: bytes = value
            ) -> Callable[[], Any]:
                a = ours()
                return lambda: a.execute("SET", key, value)

            g = f"GET {size_name} {transport}"
            out += [
                Contender(g, "redis-py (hiredis)", raw_get, baseline=True),
                Contender(g, "rcache adapter.execute", ours_get),
                Contender(g, "rcache adapter.run(op)", ours_get_op),
            ]
            g = f"SET {size_name} {transport}"
            out += [
                Contender(g, "redis-py (hiredis)", raw_set, baseline=True),
                Contender(g, "rcache adapter.execute", ours_set),
            ]
    out[-1].teardown = closer
    return out
