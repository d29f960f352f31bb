"""Run every session test through SessionStore and AsyncSessionStore, against real Redis."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from rcache.adapter import AsyncRedisAdapter, RedisAdapter
from rcache.ops import Batch, Op
from rcache.sessions import AsyncSessionStore, SessionConfig, SessionStore
from rcache.sessions._layout import Storage
from rcache.sessions._ops import SAVE
from rcache.sessions._rotation import ROTATE
from rcache.sessions._users import REVOKE

SECRET = "test-secret-key-0123456789abcdef"
#: Loaded into the server with every store (not through the adapter, so not counted): a
#: first call on a new server otherwise costs a second round trip (NOSCRIPT, then the
#: source), and round-trip counts would depend on which test ran first.
SCRIPTS = (SAVE, ROTATE, REVOKE)


class Store:
    """A SessionStore or an AsyncSessionStore behind one blocking facade.

    Every store method is available under its own name; coroutines are run to completion on
    the facade's private event loop, so one test body drives both stores.
    """

    def __init__(self, kind: str, url: str, config: SessionConfig, **settings: Any) -> None:
        self.kind = kind
        self.loop: asyncio.AbstractEventLoop | None = None
        if kind == "sync":
            self.store: SessionStore | AsyncSessionStore = SessionStore(
                RedisAdapter.from_url(url, **settings), config
            )
            for script in SCRIPTS:
                self.store.adapter.client.script_load(script.source)
        else:
            self.loop = asyncio.new_event_loop()
            self.store = self.loop.run_until_complete(self._make_async(url, config, settings))

    @staticmethod
    async def _make_async(
        url: str, config: SessionConfig, settings: dict[str, Any]
    ) -> AsyncSessionStore:
        store = AsyncSessionStore(AsyncRedisAdapter.from_url(url, **settings), config)
        for script in SCRIPTS:
            await store.adapter.client.script_load(script.source)
        return store

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.store, name)
        if self.loop is None or not callable(attr):
            return attr
        loop = self.loop

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            return loop.run_until_complete(result) if inspect.iscoroutine(result) else result

        return call

    def batch(self, batch: Batch) -> list[Any]:
        """Send one batch through the store's adapter (to drive an operation by hand)."""
        adapter = self.store.adapter
        if isinstance(adapter, RedisAdapter):
            return adapter.execute_batch(batch)
        assert self.loop is not None
        return self.loop.run_until_complete(adapter.execute_batch(batch))

    def drive(self, op: Op[Any], between: Callable[[int], None]) -> Any:
        """Run ``op`` batch by batch, calling ``between(n)`` after the n-th round trip.

        This lets a test act as a concurrent request at an exact point of an operation.
        """
        effect = next(op)
        n = 0
        try:
            while True:
                assert isinstance(effect, Batch)
                replies = self.batch(effect)
                n += 1
                between(n)
                effect = op.send(replies)
        except StopIteration as stop:
            return stop.value

    @property
    def storage(self) -> Storage:
        return self.store._storage

    @property
    def config(self) -> SessionConfig:
        return self.store.config

    @property
    def round_trips(self) -> int:
        return self.store.adapter.stats.round_trips

    def key(self, session_id: str) -> str:
        """The Redis key of a session (test-only peek at the layout)."""
        return self.store._storage.key(session_id)

    def user_key(self, user_id: str) -> str:
        return self.store._storage.user_key(user_id)

    def close(self) -> None:
        adapter = self.store.adapter
        if isinstance(adapter, RedisAdapter):
            adapter.close()
        else:
            assert self.loop is not None
            self.loop.run_until_complete(adapter.aclose())
            self.loop.close()


MakeStore = Callable[..., Store]


@pytest.fixture
def prefix(key_prefix: str) -> str:
    """A session key prefix unique to the test ("t:s<hex>": never an integer segment)."""
    return "t:s" + key_prefix.split(":")[1]


@pytest.fixture(params=["sync", "async"])
def make_store(request: pytest.FixtureRequest, prefix: str) -> Iterator[MakeStore]:
    """Return ``make(url, config=None, **config_or_adapter_settings) -> Store``.

    Keyword arguments that are SessionConfig fields go to the config (default: ``SECRET``
    and the test's prefix), the others to the adapter. Every store is closed afterwards.
    """
    made: list[Store] = []
    config_fields = set(SessionConfig.__dataclass_fields__)

    def make(url: str, config: SessionConfig | None = None, **kwargs: Any) -> Store:
        if config is None:
            options = {k: v for k, v in kwargs.items() if k in config_fields}
            options.setdefault("secret_keys", [SECRET])
            options.setdefault("prefix", prefix)
            config = SessionConfig(**options)
        settings = {k: v for k, v in kwargs.items() if k not in config_fields}
        store = Store(request.param, url, config, **settings)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def raw(redis_server: Any) -> Iterator[redis.Redis]:
    """A plain redis-py client of the shared server, to look at what the store wrote."""
    client = redis_server.client()
    yield client
    client.close()


class ServerCommands:
    """Commands a server ran between two snapshots (``INFO commandstats`` deltas).

    Commands a script calls are counted too, so the delta shows exactly what a round trip
    did; the ``INFO`` calls of the snapshots themselves are left out.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.before = self._calls()

    def _calls(self) -> dict[str, int]:
        stats = self.client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}

    def delta(self) -> dict[str, int]:
        """Return {command: calls} since the last snapshot, and take a new snapshot."""
        now = self._calls()
        diff = {k: n - self.before.get(k, 0) for k, n in now.items()}
        self.before = self._calls()
        return {k: n for k, n in diff.items() if n and k != "info"}


@pytest.fixture
def server_commands(fresh_server: Any) -> Iterator[Callable[[], ServerCommands]]:
    """Return ``start() -> ServerCommands`` counting commands on ``fresh_server``."""
    clients: list[redis.Redis] = []

    def start() -> ServerCommands:
        client = fresh_server.client()
        clients.append(client)
        return ServerCommands(client)

    yield start
    for client in clients:
        client.close()
