"""Chaos scenarios: the three demo sites under steady load while Redis restarts or fails over.

Run every scenario (or some) and print the table of what was measured::

    python -m tests.failover.chaos                      # all of them, about a minute
    python -m tests.failover.chaos restart sentinel-kill

``tests/failover/test_chaos.py`` runs the same scenarios under pytest and asserts what the
design guarantees (see ``docs/failure-model.md``).

Each scenario starts its own Redis deployment from :mod:`rcache.server` (real processes on
127.0.0.1, nothing mocked), points the demo sites at it and runs, in this process:

- the Django shop and the Flask blog through their WSGI apps, the Starlette API through its
  ASGI app: anonymous visitors loading cached product and post pages (page cache + object
  cache), and two visitors filling their carts (session writes, one per request);
- pub/sub: a publisher (``min_receivers`` = every subscriber, except on Cluster where
  PUBLISH counts one node's subscribers only) and three subscribers, two blocking and one
  asyncio, each with an ``on_reconnect`` hook that records when it was back;
- a :class:`~rcache.messaging.ReliableQueue` with one producer, two consumers and a reaper;
- a :class:`~rcache.counters.Counter` incremented by one per call;
- the local tier (standalone and Sentinel only): one cache with a
  :class:`~rcache.objects.LocalTier` read in a tight loop while another cache (another
  process, as far as Redis is concerned) keeps writing new versions of the entry.

Then the fault is injected, the load goes on until the deployment is settled and every
subscriber is back, the producers stop, the queue is drained, and everything is counted:
requests and 5xx, failures the object and page caches absorbed, session writes
acknowledged and read back (through the Starlette API), messages published and received,
queue items produced and consumed, counter increments, when the subscribers were back, and
whether the local tier ever served an entry that had been invalidated while it was
disconnected.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import logging
import sys
import threading
import time
import uuid
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Literal, Protocol

import httpx
import redis
import redis.crc
import redis.exceptions

from demo_sites import django_shop, flask_blog, starlette_api
from demo_sites.shared import COOKIE_NAME, POSTS, PRODUCTS, Catalog, DemoConfig
from rcache.adapter import RedisAdapter
from rcache.config import RedisSettings
from rcache.counters import Counter
from rcache.errors import RCacheError
from rcache.messaging import AsyncSubscriber, Message, Publisher, ReliableQueue, Subscriber
from rcache.objects import LocalTier, ObjectCache
from rcache.server import ClusterGroup, RedisServer, SentinelGroup

__all__ = ["SCENARIOS", "Result", "Scenario", "run_scenario", "table"]

Guarantee = Literal["triggered", "initiated"]

#: Seconds between two requests of one simulated visitor (each site has two or three).
PACE = 0.005
#: Seconds the standalone server stays down in the restart scenario.
DOWN = 1.0
#: Seconds of steady load before the fault (after every part is up) and after it settled.
WARM = 1.0
AFTER = 2.0
#: Subscribers' health check (seconds): how soon one notices a master that moved.
SUB_HEALTH_CHECK = 1.0
#: The queue's visibility timeout (seconds): a job held that long is given back.
VISIBILITY = 2.0
#: Generous bounds (seconds) for waits that normally take a fraction of them.
START_TIMEOUT = 20.0
FAILOVER_TIMEOUT = 30.0
DRAIN_TIMEOUT = 15.0
SUBSCRIBERS = 3
QUEUE_CONSUMERS = ("c1", "c2")


# -- deployments --------------------------------------------------------------------------


class Deployment(Protocol):
    """A Redis deployment a scenario runs against."""

    url: str
    mode: str
    local_tier: bool

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def pubsub_nodes(self) -> list[RedisServer]:
        """Return the nodes a subscriber may legitimately be connected to now."""
        ...


class Standalone:
    """One redis-server with AOF and ``appendfsync always``."""

    mode = "standalone"
    local_tier = True

    def __init__(self) -> None:
        self.server = RedisServer(appendonly=True, appendfsync="always")
        self.url = ""

    def start(self) -> None:
        self.server.start()
        self.url = self.server.url

    def stop(self) -> None:
        self.server.stop()

    def pubsub_nodes(self) -> list[RedisServer]:
        return [self.server]


class Sentinel:
    """A master, one replica and three Sentinels; AOF with ``appendfsync always``."""

    mode = "sentinel"
    local_tier = True

    def __init__(self) -> None:
        self.group = SentinelGroup(appendonly=True, appendfsync="always")
        self.url = ""

    def start(self) -> None:
        self.group.start()
        self.url = self.group.url

    def stop(self) -> None:
        self.group.stop()

    def master(self) -> RedisServer:
        return self.group.server_at(self.group.master_address())

    def pubsub_nodes(self) -> list[RedisServer]:
        return [self.master()]


class Cluster:
    """Three masters with one replica each."""

    mode = "cluster"
    local_tier = False  # the local tier needs a standalone or Sentinel Redis

    def __init__(self) -> None:
        self.cluster = ClusterGroup()
        self.url = ""

    def start(self) -> None:
        self.cluster.start()
        self.url = self.cluster.url

    def stop(self) -> None:
        self.cluster.stop()

    def pubsub_nodes(self) -> list[RedisServer]:
        return [n for n in self.cluster.nodes if n.is_running()]


# -- faults -------------------------------------------------------------------------------


@dataclass
class Timeline:
    """When the fault started, when clients could reach a master again, when it settled.

    ``available``: the restarted server answers; Sentinel names the new master (what a
    client can know); a Cluster replica reports itself master (clients follow MOVED).
    """

    fault: float = 0.0
    available: float = 0.0
    settled: float = 0.0
    note: str = ""


def _wait_promoted(candidates: Sequence[RedisServer], timeout: float) -> float:
    """Poll ROLE on ``candidates`` until one is a master; return that moment."""
    clients = [
        n.client(socket_timeout=0.5, socket_connect_timeout=0.5, decode_responses=True)
        for n in candidates
    ]
    deadline = time.monotonic() + timeout
    try:
        while True:
            for c in clients:
                try:
                    if c.execute_command("ROLE")[0] == "master":
                        return time.monotonic()
                except redis.exceptions.RedisError:
                    pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"no replica was promoted within {timeout:g}s")
            time.sleep(0.01)
    finally:
        for c in clients:
            c.close()


def _wait_announced(group: SentinelGroup, old: tuple[str, int], timeout: float) -> float:
    """Poll the Sentinels until one names a master other than ``old``; return that moment."""
    clients = [group.sentinel_client(i) for i in range(len(group.sentinel_addresses))]
    deadline = time.monotonic() + timeout
    try:
        while True:
            for c in clients:
                try:
                    host, port = c.execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", group.service_name
                    )
                except (redis.exceptions.RedisError, TypeError, ValueError):
                    continue
                if (host, int(port)) != old:
                    return time.monotonic()
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Sentinel named a new master within {timeout:g}s")
            time.sleep(0.01)
    finally:
        for c in clients:
            c.close()


def restart(dep: Deployment, tl: Timeline) -> None:
    """kill -9 the server, leave it down for DOWN seconds, start it on its AOF again."""
    assert isinstance(dep, Standalone)
    tl.note = f"kill -9, {DOWN:g} s down, start on the AOF"
    tl.fault = time.monotonic()
    dep.server.kill()
    time.sleep(DOWN)
    dep.server.start()
    tl.available = tl.settled = time.monotonic()


def sentinel_kill(dep: Deployment, tl: Timeline) -> None:
    """kill -9 the master; the Sentinels promote the replica."""
    assert isinstance(dep, Sentinel)
    old = dep.group.master_address()
    candidates = [s for s in dep.group.servers if s.is_running() and s.port != old[1]]
    tl.fault = time.monotonic()
    dep.group.kill_master()
    promoted = _wait_promoted(candidates, FAILOVER_TIMEOUT)
    tl.available = _wait_announced(dep.group, old, FAILOVER_TIMEOUT)
    new = dep.group.wait_for_master(not_address=old, timeout=FAILOVER_TIMEOUT)
    tl.settled = time.monotonic()
    tl.note = f"master :{old[1]} killed; :{new[1]} promoted after {promoted - tl.fault:.2f} s"


def sentinel_failover(dep: Deployment, tl: Timeline) -> None:
    """SENTINEL FAILOVER: the old master stays up and is made a replica of the new one."""
    assert isinstance(dep, Sentinel)
    old = dep.group.master_address()
    candidates = [s for s in dep.group.servers if s.is_running() and s.port != old[1]]
    with ThreadPoolExecutor(2) as pool:
        promoted = pool.submit(_wait_promoted, candidates, FAILOVER_TIMEOUT)
        announced = pool.submit(_wait_announced, dep.group, old, FAILOVER_TIMEOUT)
        tl.fault = time.monotonic()
        new = dep.group.failover(timeout=FAILOVER_TIMEOUT)
        tl.settled = time.monotonic()
        tl.available = announced.result()
        t_promoted = promoted.result()
    tl.note = f"master :{old[1]} -> :{new[1]}, promoted after {t_promoted - tl.fault:.2f} s"


def _cluster_victim(dep: Cluster) -> tuple[RedisServer, list[RedisServer]]:
    """Return the first master (the subscribers' node, the queue's slot) and the replicas."""
    masters = dep.cluster.master_nodes()
    victim = dep.cluster.nodes[0]
    assert victim in masters
    return victim, [n for n in dep.cluster.nodes if n.is_running() and n not in masters]


def cluster_failover(dep: Deployment, tl: Timeline) -> None:
    """CLUSTER FAILOVER on a replica of the first master (coordinated: nothing is lost)."""
    assert isinstance(dep, Cluster)
    victim, candidates = _cluster_victim(dep)
    with ThreadPoolExecutor(1) as pool:
        promoted = pool.submit(_wait_promoted, candidates, FAILOVER_TIMEOUT)
        tl.fault = time.monotonic()
        new = dep.cluster.failover(victim, timeout=FAILOVER_TIMEOUT)
        tl.settled = time.monotonic()
        tl.available = promoted.result()
    tl.note = f"master :{victim.port} -> :{new.port}"


def cluster_kill(dep: Deployment, tl: Timeline) -> None:
    """kill -9 the first master; its replica takes over after the node timeout."""
    assert isinstance(dep, Cluster)
    victim, candidates = _cluster_victim(dep)
    tl.fault = time.monotonic()
    victim.kill()
    tl.available = _wait_promoted(candidates, FAILOVER_TIMEOUT)
    dep.cluster.wait_ready(FAILOVER_TIMEOUT)
    tl.settled = time.monotonic()
    tl.note = f"master :{victim.port} killed"


@dataclass(frozen=True)
class Scenario:
    """One chaos scenario: a deployment, a fault and what the design guarantees for it."""

    name: str
    title: str
    guarantee: Guarantee
    deployment: Callable[[], Deployment]
    fault: Callable[[Deployment, Timeline], None]


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("restart", "restart (AOF always)", "triggered", Standalone, restart),
        Scenario("sentinel-kill", "Sentinel: kill -9 master", "triggered", Sentinel, sentinel_kill),
        Scenario(
            "sentinel-failover", "SENTINEL FAILOVER", "initiated", Sentinel, sentinel_failover
        ),
        Scenario("cluster-failover", "CLUSTER FAILOVER", "triggered", Cluster, cluster_failover),
        Scenario("cluster-kill", "Cluster: kill -9 master", "triggered", Cluster, cluster_kill),
    )
}


# -- what is measured ---------------------------------------------------------------------


@dataclass
class Result:
    """The figures of one scenario run (times in seconds)."""

    scenario: str
    title: str
    guarantee: Guarantee
    note: str = ""
    outage: float = 0.0  # fault -> clients can reach a master again (Timeline.available)
    settle: float = 0.0  # fault -> the deployment is settled
    requests: int = 0
    page_requests: int = 0
    page_5xx: int = 0
    other_5xx: int = 0
    object_cache_errors: int = 0
    page_cache_errors: int = 0
    session_writes: int = 0
    session_acked: int = 0
    session_read_back: int = 0
    session_lost: int = 0
    sessions_replaced: int = 0
    published: int = 0
    publish_ok: int = 0
    publish_errors: int = 0
    expected_deliveries: int = 0
    delivered: int = 0
    lost_messages: int = 0
    duplicate_messages: int = 0
    queue_produced: int = 0
    queue_put_errors: int = 0
    queue_consumed: int = 0
    queue_lost: int = 0
    queue_duplicates: int = 0
    queue_reaped: int = 0
    counter_acked: int = 0
    counter_final: int = 0
    counter_lost: int = 0
    subs_back_after_available: float = 0.0
    subs_back_after_fault: float = 0.0
    subs_reconnected: int = 0
    subs_misplaced: int = 0
    tier: bool = False
    tier_reads: int = 0
    tier_outage_writes: int = 0
    tier_stale_after_outage: int = 0
    tier_max_stale: float = 0.0
    tier_converged: bool = True
    duration: float = 0.0
    crashes: list[str] = field(default_factory=list)


class _FailureTally(logging.Handler):
    """Count the failures the object and page caches absorbed (their FailureLog lines)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.counts: Tally[str] = Tally()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        for what in ("object cache", "page cache"):
            if message.startswith(what + ": ") and " failed" in message:
                self.counts[what] += 1


class _Forward(logging.Handler):
    """Pass on to the parent logger's handlers what the logger would have let through."""

    def __init__(self, level: int, parent: logging.Logger) -> None:
        super().__init__(level)
        self.parent = parent

    def emit(self, record: logging.LogRecord) -> None:
        self.parent.handle(record)


@contextmanager
def _tally_failures() -> Iterator[_FailureTally]:
    """Count the caches' failure lines, DEBUG ones included, without logging more than usual."""
    tally = _FailureTally()
    saved = []
    for name in ("rcache.objects", "rcache.pages"):
        lg = logging.getLogger(name)
        forward = _Forward(lg.getEffectiveLevel(), logging.getLogger("rcache"))
        saved.append((lg, lg.level, lg.propagate, forward))
        lg.addHandler(tally)
        lg.addHandler(forward)
        lg.setLevel(logging.DEBUG)
        lg.propagate = False
    try:
        yield tally
    finally:
        for lg, level, propagate, forward in saved:
            lg.removeHandler(tally)
            lg.removeHandler(forward)
            lg.setLevel(level)
            lg.propagate = propagate


@contextmanager
def _django_shop(config: DemoConfig, shop: Catalog) -> Iterator[None]:
    """Configure Django (once per process) and switch it to the shop's settings."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            SECRET_KEY="chaos-placeholder-secret-key-0123456789abcdef",
            ALLOWED_HOSTS=["testserver"],
            INSTALLED_APPS=[],
            DATABASES={},
            USE_TZ=True,
        )
        django.setup()
    from django.test import override_settings

    with override_settings(**django_shop.settings_for(config, shop)):
        yield


def _queue_name() -> str:
    """A queue name whose Cluster hash slot is served by the first master (slots 0-5460)."""
    for _ in range(1000):
        name = f"jobs-{uuid.uuid4().hex[:6]}"
        if redis.crc.key_slot(name.encode()) < 5461:
            return name
    raise RuntimeError("no queue name in the first master's slots")


class Workload:
    """Everything that runs against the deployment during one scenario."""

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        self.url = dep.url
        tag = uuid.uuid4().hex[:8]
        self.tag = tag
        self.config = DemoConfig(url=dep.url, secret="chaos-secret-" + tag * 4, prefix=f"ch{tag}")
        self.channel = f"chaos:{tag}"
        self.stop_load = threading.Event()
        self.stop_all = threading.Event()
        self.lock = threading.Lock()
        self.crashes: list[str] = []
        self.threads: list[threading.Thread] = []
        self.load_threads: list[threading.Thread] = []
        # web
        self.statuses: list[tuple[str, int]] = []  # (kind, status)
        self.acked: Tally[str] = Tally()  # session cookie -> acknowledged writes
        self.cookies: list[str] = []  # every session cookie ever handed out, in order
        self.sessions_replaced = 0
        self.session_writes = 0
        self.ready: dict[str, threading.Event] = {
            k: threading.Event() for k in ("django", "flask", "asgi")
        }
        # pub/sub
        self.published: list[tuple[int, bool]] = []  # (seq, ok)
        self.publish_errors = 0
        self.received: list[list[int]] = [[] for _ in range(SUBSCRIBERS)]
        self.hooks: list[list[float]] = [[] for _ in range(SUBSCRIBERS)]
        self.sync_subs: list[Subscriber] = []
        self.async_sub: AsyncSubscriber | None = None
        # queue
        self.queue_name = _queue_name()
        self.produced: set[int] = set()
        self.put_errors = 0
        self.consumed: list[int] = []
        self.reaped = 0
        # counter
        self.counter_name = f"hits-{tag}"
        self.counter_acked = 0
        # local tier
        self.tier_cache: ObjectCache | None = None
        self.converged = True
        self.misplaced: list[str] = []
        self.tier_reads: list[tuple[float, int]] = []
        self.tier_acks: list[tuple[float, int, bool]] = []  # (acked at, version, tier was live)
        self.last_version = 0

    # -- plumbing --------------------------------------------------------------------------

    def _spawn(self, name: str, target: Callable[[], None], *, load: bool) -> None:
        def run() -> None:
            try:
                target()
            except BaseException as exc:  # reported by the scenario, never a thread warning
                with self.lock:
                    self.crashes.append(f"{name}: {type(exc).__name__}: {exc}")
                self.stop_load.set()

        thread = threading.Thread(target=run, name=f"chaos-{name}", daemon=True)
        (self.load_threads if load else self.threads).append(thread)
        thread.start()

    def _record(self, kind: str, status: int) -> None:
        with self.lock:
            self.statuses.append((kind, status))

    def _session_response(self, cookie: str | None, new: str | None, ok: bool) -> str | None:
        """Note a session write's outcome; return the cookie to use from now on."""
        with self.lock:
            self.session_writes += 1
            if new and new != cookie:
                if cookie is not None:
                    self.sessions_replaced += 1
                self.cookies.append(new)
                cookie = new
            if ok and cookie is not None:
                self.acked[cookie] += 1
        return cookie

    # -- the demo sites --------------------------------------------------------------------

    def _django(self) -> None:
        from django.test import Client

        anonymous = Client(raise_request_exception=False)
        visitor = Client(raise_request_exception=False)
        cookie: str | None = None
        i = 0
        while not self.stop_load.is_set():
            i += 1
            pid = list(PRODUCTS)[i % len(PRODUCTS)]
            self._record("page", anonymous.get(f"/products/{pid}/").status_code)
            if i % 4 == 0:
                r = visitor.post(f"/cart/add/{pid}")
                self._record("session", r.status_code)
                morsel = r.cookies.get(COOKIE_NAME)
                cookie = self._session_response(
                    cookie, morsel.value if morsel else None, r.status_code == 302
                )
                if cookie is not None and r.status_code == 302:
                    self.ready["django"].set()
            time.sleep(PACE)

    def _flask(self, blog: Catalog) -> None:
        app = flask_blog.make_app(self.config, blog)
        try:
            client = app.test_client(use_cookies=False)
            i = 0
            while not self.stop_load.is_set():
                i += 1
                pid = list(POSTS)[i % len(POSTS)]
                status = client.get(f"/posts/{pid}").status_code
                self._record("page", status)
                if status == 200:
                    self.ready["flask"].set()
                time.sleep(PACE)
        finally:
            flask_blog.close(app)

    async def _asgi(self, shop: Catalog) -> None:
        app = starlette_api.make_app(self.config, shop)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                cookie: str | None = None
                i = 0
                while not self.stop_load.is_set():
                    i += 1
                    pid = list(PRODUCTS)[i % len(PRODUCTS)]
                    path = "/api/products" if i % 5 == 0 else f"/api/products/{pid}"
                    self._record("page", (await c.get(path)).status_code)
                    if i % 4 == 0:
                        headers = {"Cookie": f"{COOKIE_NAME}={cookie}"} if cookie else {}
                        r = await c.post("/api/cart", json={"product": pid}, headers=headers)
                        self._record("session", r.status_code)
                        new = r.cookies.get(COOKIE_NAME)
                        cookie = self._session_response(cookie, new, r.status_code == 200)
                        if cookie is not None and r.status_code == 200:
                            self.ready["asgi"].set()
                    await asyncio.sleep(PACE)

    async def _async_side(self, shop: Catalog) -> None:
        """The asyncio thread: the Starlette API under load and the asyncio subscriber."""
        settings = RedisSettings.from_url(self.url).replace(client_name=f"chaos-{self.tag}-s2")
        sub = AsyncSubscriber(
            settings,
            health_check_interval=SUB_HEALTH_CHECK,
            on_reconnect=[lambda: self.hooks[2].append(time.monotonic())],
        )
        self.async_sub = sub
        await sub.subscribe(self.channel)

        async def consume() -> None:
            async for message in sub:
                self._received(2, message)

        reader = asyncio.create_task(consume())
        try:
            await self._asgi(shop)
            while not self.stop_all.is_set():
                await asyncio.sleep(0.05)
        finally:
            await sub.aclose()
            await reader

    # -- pub/sub ---------------------------------------------------------------------------

    def _received(self, index: int, message: Message) -> None:
        with self.lock:
            self.received[index].append(int(message.data))

    def _start_subscribers(self) -> None:
        for i in range(SUBSCRIBERS - 1):
            name = f"chaos-{self.tag}-s{i}"
            settings = RedisSettings.from_url(self.url).replace(client_name=name)
            hooks = self.hooks[i]
            sub = Subscriber(
                settings,
                health_check_interval=SUB_HEALTH_CHECK,
                on_reconnect=[lambda hooks=hooks: hooks.append(time.monotonic())],  # type: ignore[misc]
            )
            self.sync_subs.append(sub)
            sub.subscribe(self.channel)
            self.threads.append(sub.run_in_thread(lambda m, i=i: self._received(i, m)))  # type: ignore[misc]

    def _publisher(self) -> None:
        need = 0 if self.dep.mode == "cluster" else SUBSCRIBERS
        with RedisAdapter.from_url(self.url) as adapter:
            pub = Publisher(adapter)
            seq = 0
            while not self.stop_load.is_set():
                seq += 1
                try:
                    result = pub.publish(self.channel, seq, min_receivers=need, retry_for=3.0)
                except RCacheError:
                    with self.lock:
                        self.publish_errors += 1
                else:
                    with self.lock:
                        self.published.append((seq, result.ok))
                time.sleep(0.02)

    # -- queue, counter --------------------------------------------------------------------

    def _producer(self) -> None:
        with RedisAdapter.from_url(self.url) as adapter:
            queue = ReliableQueue(adapter, self.queue_name, "producer")
            seq = 0
            while not self.stop_load.is_set():
                seq += 1
                while not self.stop_load.is_set():
                    try:
                        queue.put({"seq": seq})
                    except RCacheError:  # not acknowledged: sent again (it may be there twice)
                        with self.lock:
                            self.put_errors += 1
                        time.sleep(0.05)
                    else:
                        with self.lock:
                            self.produced.add(seq)
                        break
                time.sleep(0.01)

    def _consumer(self, consumer: str) -> None:
        with RedisAdapter.from_url(self.url) as adapter:
            queue = ReliableQueue(adapter, self.queue_name, consumer)
            while not self.stop_all.is_set():
                job = queue.get(timeout=0.5)
                if job is None:
                    continue
                with self.lock:
                    self.consumed.append(int(job.data["seq"]))
                try:
                    queue.ack(job)
                except RCacheError:  # still held: the reaper gives it back (a duplicate)
                    pass

    def _reaper(self) -> None:
        with RedisAdapter.from_url(self.url) as adapter:
            queue = ReliableQueue(adapter, self.queue_name, "reaper")
            while not self.stop_all.wait(0.5):
                try:
                    n = queue.reap(visibility_timeout=VISIBILITY)
                except RCacheError:
                    continue
                with self.lock:
                    self.reaped += n

    def _queue_idle(self) -> bool:
        """True when nothing waits and no consumer holds a job."""
        try:
            with RedisAdapter.from_url(self.url) as adapter:
                queues = [ReliableQueue(adapter, self.queue_name, c) for c in QUEUE_CONSUMERS]
                return queues[0].size() == 0 and all(q.processing() == 0 for q in queues)
        except RCacheError:
            return False

    def _counter(self) -> None:
        with RedisAdapter.from_url(self.url) as adapter:
            counter = Counter(adapter)
            while not self.stop_load.is_set():
                try:
                    counter.incr(self.counter_name)
                except RCacheError:
                    pass
                else:
                    with self.lock:
                        self.counter_acked += 1
                time.sleep(0.01)

    # -- the local tier --------------------------------------------------------------------

    def _tier_writer(self, cache: ObjectCache, tier: LocalTier) -> None:
        while not self.stop_load.is_set():
            version = self.last_version + 1
            live = tier.live
            try:
                cache.set("entry", version, ttl=None)
            except RCacheError:
                time.sleep(0.02)
                continue
            self.last_version = version
            with self.lock:
                self.tier_acks.append((time.monotonic(), version, live and tier.live))
            time.sleep(0.03)

    def _tier_reader(self, cache: ObjectCache) -> None:
        while not self.stop_all.is_set():
            t = time.monotonic()
            value = cache.get("entry")
            if isinstance(value, int):
                with self.lock:
                    self.tier_reads.append((t, value))
            time.sleep(0.002)

    # -- the run ---------------------------------------------------------------------------

    def run(self, fault: Callable[[Deployment, Timeline], None]) -> Timeline:
        """Warm up, inject the fault, keep the load until settled, drain; return the timeline."""
        with ExitStack() as stack:
            cache = stack.enter_context(
                ObjectCache.from_url(self.url, prefix=self.config.cache_prefix)
            )
            shop = Catalog("product", PRODUCTS, cache, delay=0.0)
            blog = Catalog("post", POSTS, cache, delay=0.0)
            stack.enter_context(_django_shop(self.config, shop))
            tier: LocalTier | None = None
            if self.dep.local_tier:
                tier = LocalTier()
                prefix = self.config.prefix + ":tier"
                tier_cache = stack.enter_context(
                    ObjectCache.from_url(self.url, prefix=prefix, local=tier)
                )
                # Another cache without a tier: as far as Redis knows, another process.
                writer = stack.enter_context(
                    ObjectCache.from_url(self.url, prefix=prefix, on_error="raise")
                )
                self.tier_cache = tier_cache
                writer.set("entry", 0, ttl=None)
            stack.callback(self._stop_everything)

            self._start_subscribers()
            self._spawn("asgi", lambda: asyncio.run(self._async_side(shop)), load=False)
            self._spawn("django", self._django, load=True)
            self._spawn("flask", lambda: self._flask(blog), load=True)
            self._spawn("publisher", self._publisher, load=True)
            self._spawn("producer", self._producer, load=True)
            self._spawn("counter", self._counter, load=True)
            for consumer in QUEUE_CONSUMERS:
                self._spawn(consumer, lambda c=consumer: self._consumer(c), load=False)  # type: ignore[misc]
            self._spawn("reaper", self._reaper, load=False)
            if tier is not None:
                self._spawn("tier-reader", lambda: self._tier_reader(tier_cache), load=False)
                self._spawn("tier-writer", lambda: self._tier_writer(writer, tier), load=True)
            self._warm_up(tier)

            timeline = Timeline()
            fault(self.dep, timeline)
            self._wait_back(timeline)
            self.stop_load.set()
            for thread in self.load_threads:
                thread.join(30)
            self._drain()
            self._check_subscribers()
            self.stop_all.set()
            if tier is not None:
                self._check_converged()
            return timeline

    def _warm_up(self, tier: LocalTier | None) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        checks: list[Callable[[], bool]] = [
            *(e.is_set for e in self.ready.values()),
            lambda: all(s.connected for s in self.sync_subs),
            lambda: self.async_sub is not None and self.async_sub.connected,
            lambda: len(self.consumed) > 0,
            lambda: all(len(r) > 0 for r in self.received),
        ]
        if tier is not None:
            checks.append(lambda: tier.live and tier.entries > 0)
        while not all(check() for check in checks):
            if self.crashes or time.monotonic() > deadline:
                failing = [i for i, check in enumerate(checks) if not check()]
                raise RuntimeError(f"the load did not warm up (checks {failing}): {self.crashes}")
            time.sleep(0.05)
        time.sleep(WARM)

    def _subscribers_back(self) -> bool:
        subs: list[Subscriber | AsyncSubscriber | None] = [*self.sync_subs, self.async_sub]
        if not all(s is not None and s.connected for s in subs):
            return False
        return not self._misplaced()

    def _misplaced(self) -> list[str]:
        """Return the subscribers not connected to a node they should be on."""
        names = {f"chaos-{self.tag}-s{i}" for i in range(SUBSCRIBERS)}
        for node in self.dep.pubsub_nodes():
            try:
                with node.client(socket_timeout=2.0, decode_responses=True) as c:
                    for client in c.client_list(_type="pubsub"):
                        names.discard(client.get("name", ""))
            except redis.exceptions.RedisError:
                continue
        return sorted(names)

    def _wait_back(self, tl: Timeline) -> None:
        """Keep the load for AFTER seconds after settling, and until every subscriber is back."""
        end = tl.settled + AFTER
        deadline = tl.settled + FAILOVER_TIMEOUT
        while time.monotonic() < deadline and not self.crashes:
            now = time.monotonic()
            if now >= end and self._subscribers_back():
                return
            time.sleep(0.1)

    def _drain(self) -> None:
        """Let the consumers take every job (the reaper gives back the stuck ones)."""
        t0 = time.monotonic()
        idle_since: float | None = None
        while time.monotonic() - t0 < DRAIN_TIMEOUT and not self.crashes:
            with self.lock:
                missing = self.produced - set(self.consumed)
            if not missing:
                break
            if self._queue_idle():  # nothing left anywhere: the missing ones are lost
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > VISIBILITY + 1.0:
                    break
            else:
                idle_since = None
            time.sleep(0.1)
        time.sleep(0.3)  # messages still in flight

    def _check_subscribers(self) -> None:
        deadline = time.monotonic() + 10.0
        while not self._subscribers_back() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.misplaced = self._misplaced()

    def _check_converged(self) -> None:
        """After the last write, the tier must answer the last version (within 3 s)."""
        cache = self.tier_cache
        assert cache is not None
        deadline = time.monotonic() + 3.0
        self.converged = False
        while time.monotonic() < deadline:
            if cache.get("entry") == self.last_version:
                self.converged = True
                return
            time.sleep(0.05)

    def _stop_everything(self) -> None:
        self.stop_load.set()
        self.stop_all.set()
        for sub in self.sync_subs:
            sub.close()
        for thread in [*self.load_threads, *self.threads]:
            thread.join(30)
            if thread.is_alive():
                self.crashes.append(f"{thread.name} did not stop")

    # -- after the run ---------------------------------------------------------------------

    async def _read_back(self, cookies: Sequence[str]) -> dict[str, int | None]:
        """Read every session's cart through the Starlette API."""
        cache = ObjectCache.from_url(self.url, prefix=self.config.cache_prefix)
        app = starlette_api.make_app(self.config, Catalog("product", PRODUCTS, cache, delay=0))
        found: dict[str, int | None] = {}
        try:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://testserver"
                ) as c:
                    for cookie in cookies:
                        found[cookie] = None
                        headers = {"Cookie": f"{COOKIE_NAME}={cookie}"}
                        for _ in range(20):
                            r = await c.get("/api/cart", headers=headers)
                            if r.status_code == 200:
                                found[cookie] = len(r.json()["cart"])
                                break
                            await asyncio.sleep(0.25)
        finally:
            cache.close()
        return found

    def result(self, scenario: Scenario, tl: Timeline, tally: _FailureTally) -> Result:
        r = Result(scenario.name, scenario.title, scenario.guarantee, note=tl.note)
        r.outage = tl.available - tl.fault
        r.settle = tl.settled - tl.fault
        r.crashes = list(self.crashes)
        # web
        r.requests = len(self.statuses)
        r.page_requests = sum(1 for kind, _ in self.statuses if kind == "page")
        r.page_5xx = sum(1 for kind, s in self.statuses if kind == "page" and s >= 500)
        r.other_5xx = sum(1 for kind, s in self.statuses if kind != "page" and s >= 500)
        r.object_cache_errors = tally.counts["object cache"]
        r.page_cache_errors = tally.counts["page cache"]
        # sessions
        found = asyncio.run(self._read_back(list(dict.fromkeys(self.cookies))))
        r.session_writes = self.session_writes
        r.session_acked = sum(self.acked.values())
        r.session_read_back = sum(n or 0 for n in found.values())
        r.session_lost = sum(max(0, n - (found.get(c) or 0)) for c, n in self.acked.items())
        r.sessions_replaced = self.sessions_replaced
        # pub/sub
        ok = [seq for seq, good in self.published if good]
        r.published = len(self.published) + self.publish_errors
        r.publish_ok = len(ok)
        r.publish_errors = self.publish_errors
        r.expected_deliveries = len(ok) * SUBSCRIBERS
        for got in self.received:
            counts = Tally(got)
            r.delivered += len(counts)
            r.duplicate_messages += sum(n - 1 for n in counts.values())
            r.lost_messages += sum(1 for seq in ok if seq not in counts)
        # queue
        counts = Tally(self.consumed)
        r.queue_produced = len(self.produced)
        r.queue_put_errors = self.put_errors
        r.queue_consumed = len(self.consumed)
        r.queue_lost = len(self.produced - counts.keys())
        r.queue_duplicates = sum(n - 1 for n in counts.values())
        r.queue_reaped = self.reaped
        # counter
        with RedisAdapter.from_url(self.url) as adapter:
            r.counter_final = Counter(adapter).get(self.counter_name)
        r.counter_acked = self.counter_acked
        r.counter_lost = max(0, r.counter_acked - r.counter_final)
        # subscribers
        backs = []
        for hooks in self.hooks:
            after = [h for h in hooks if h > tl.fault]
            if after:
                backs.append(after[-1])
        r.subs_reconnected = len(backs)
        if backs:
            r.subs_back_after_available = max(0.0, max(backs) - tl.available)
            r.subs_back_after_fault = max(backs) - tl.fault
        r.subs_misplaced = len(self.misplaced)
        # local tier
        r.tier = self.dep.local_tier
        if r.tier:
            self._tier_figures(r)
        return r

    def _tier_figures(self, r: Result) -> None:
        """Stale reads: a read that started after a newer version was acknowledged.

        One whose entry was invalidated (overwritten) while the tier was not live counts as
        "served after being invalidated during the outage"; the others measure the usual
        invalidation delay (``tier_max_stale``: the longest one, in seconds).
        """
        acks = sorted(self.tier_acks)
        times = [t for t, _, _ in acks]
        r.tier_reads = len(self.tier_reads)
        r.tier_outage_writes = sum(1 for _, _, live in acks if not live)
        for t, value in self.tier_reads:
            i = bisect.bisect_right(times, t)  # acks[:i] were acknowledged before the read
            if i == 0 or acks[i - 1][1] <= value:
                continue
            first_newer = next(a for a in acks[:i] if a[1] > value)
            r.tier_max_stale = max(r.tier_max_stale, t - first_newer[0])
            if not first_newer[2]:
                r.tier_stale_after_outage += 1
        r.tier_converged = self.converged


def run_scenario(name: str) -> Result:
    """Run one scenario from start to end (its deployment included) and return its figures."""
    scenario = SCENARIOS[name]
    t0 = time.monotonic()
    dep = scenario.deployment()
    try:
        dep.start()
        with _tally_failures() as tally:
            workload = Workload(dep)
            timeline = workload.run(scenario.fault)
            result = workload.result(scenario, timeline, tally)
    finally:
        dep.stop()
    result.duration = time.monotonic() - t0
    RESULTS.append(result)
    return result


#: Every result of this process, in order (the test suite prints them at the end).
RESULTS: list[Result] = []


# -- the table ----------------------------------------------------------------------------


def _rows(r: Result) -> list[tuple[str, str]]:
    def pair(a: int, b: int) -> str:
        return f"{a} / {b}"

    tier = "n/a (Cluster)"
    rows = [
        ("fault", r.note),
        ("guarantee", r.guarantee),
        ("master reachable again after (s)", f"{r.outage:.2f}"),
        ("settled after (s)", f"{r.settle:.2f}"),
        ("requests (cached pages)", f"{r.requests} ({r.page_requests})"),
        ("5xx cached pages / other", pair(r.page_5xx, r.other_5xx)),
        ("object / page cache errors", pair(r.object_cache_errors, r.page_cache_errors)),
        ("session writes: sent / acked", pair(r.session_writes, r.session_acked)),
        ("  read back / acked lost", pair(r.session_read_back, r.session_lost)),
        ("pub/sub: published / ok", pair(r.published, r.publish_ok)),
        ("  received / expected", pair(r.delivered, r.expected_deliveries)),
        ("  lost / duplicates", pair(r.lost_messages, r.duplicate_messages)),
        ("queue: produced / consumed", pair(r.queue_produced, r.queue_consumed)),
        ("  lost / duplicates", pair(r.queue_lost, r.queue_duplicates)),
        ("counter: acked / final", pair(r.counter_acked, r.counter_final)),
        (
            "subscribers back after that (s)",
            f"{r.subs_back_after_available:.2f} ({r.subs_back_after_fault:.2f} from fault)",
        ),
        ("  reconnected / misplaced", pair(r.subs_reconnected, r.subs_misplaced)),
        (
            "local tier: stale after outage",
            f"{r.tier_stale_after_outage} of {r.tier_reads} reads" if r.tier else tier,
        ),
        (
            "  outage writes / max stale (s)",
            f"{r.tier_outage_writes} / {r.tier_max_stale:.3f}" if r.tier else tier,
        ),
        ("run time (s)", f"{r.duration:.1f}"),
    ]
    if r.crashes:
        rows.append(("CRASHES", "; ".join(r.crashes)))
    return rows


def table(results: Sequence[Result]) -> str:
    """Return a Markdown table: one column per scenario, one row per figure."""
    if not results:
        return ""
    columns = [_rows(r) for r in results]
    header = ["", *(r.title for r in results)]
    lines = [header, ["---"] * len(header)]
    for i, (label, _) in enumerate(columns[0]):
        lines.append([label, *(col[i][1] if i < len(col) else "" for col in columns)])
    extra = [c[len(columns[0]) :] for c in columns if len(c) > len(columns[0])]
    for rows in extra:
        lines.extend([label, value] for label, value in rows)
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.failover.chaos", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=", ".join(SCENARIOS))
    parser.add_argument("-v", "--verbose", action="store_true", help="show warnings")
    args = parser.parse_args(argv)
    if unknown := [n for n in args.scenarios if n not in SCENARIOS]:
        parser.error(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    handler = logging.StreamHandler()  # on the handler: propagated records skip the levels
    handler.setLevel(logging.WARNING if args.verbose else logging.CRITICAL + 1)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    names = args.scenarios or list(SCENARIOS)
    results = []
    for name in names:
        print(f"chaos: {name} ...", file=sys.stderr, flush=True)
        results.append(run_scenario(name))
    print(table(results))
    return 1 if any(r.crashes for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
