"""Process metrics: a JSON-able snapshot and Prometheus text, gathered from rcache's counters.

::

    metrics = Metrics()
    metrics.add("cache", object_cache)          # adapters, caches, stores, subscribers
    metrics.add("sessions", session_store)
    metrics.snapshot()                          # a dict of plain JSON types
    metrics.prometheus()                        # text exposition format 0.0.4
    adapter.run(server_info())                  # the server's side: one round trip of INFO

Nothing here talks to Redis except :func:`server_info` (a sans-IO operation): a snapshot
only reads counters the adapters, local tiers and subscribers already keep, without taking
their locks, so the figures are approximate under threads. Sources are held by weak
reference: one that was garbage-collected disappears from the next snapshot.

Several backends may share one adapter, and an adapter's counters are all a backend has:
the snapshot names the adapter of every source (``"adapter"``: its redacted URL and
``id()``), and the Prometheus text emits each adapter's counters once, labelled with the
first name it was added under.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from rcache._clients import WaitingConnectionPool
from rcache.adapter import AsyncRedisAdapter, RedisAdapter
from rcache.errors import BackendError
from rcache.messaging import AsyncSubscriber, Subscriber
from rcache.objects import AsyncObjectCache, ObjectCache
from rcache.ops import Batch, Op
from rcache.pages import AsyncPageCache, PageCache
from rcache.sessions import AsyncSessionStore, SessionStore

__all__ = ["Metrics", "ServerPanel", "Source", "aread_server", "read_server", "server_info"]

Adapter: TypeAlias = RedisAdapter | AsyncRedisAdapter
Source: TypeAlias = (
    RedisAdapter
    | AsyncRedisAdapter
    | ObjectCache
    | AsyncObjectCache
    | PageCache
    | AsyncPageCache
    | SessionStore
    | AsyncSessionStore
    | Subscriber
    | AsyncSubscriber
)
"""What :meth:`Metrics.add` accepts."""

# isinstance checks in order: the kind reported for each class of source.
_KINDS: tuple[tuple[tuple[type, ...], str], ...] = (
    ((RedisAdapter, AsyncRedisAdapter), "adapter"),
    ((ObjectCache, AsyncObjectCache), "object cache"),
    ((PageCache, AsyncPageCache), "page cache"),
    ((SessionStore, AsyncSessionStore), "session store"),
    ((Subscriber, AsyncSubscriber), "subscriber"),
)

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")

_ADAPTER_HELP = {
    "round_trips": "Round trips sent to Redis (one per batch of commands).",
    "commands": "Commands sent to Redis.",
    "errors": "Round trips that failed, fast failures included.",
    "retries": "Round trips sent again after a connection error or a timeout.",
    "fast_failures": "Calls refused at once because the circuit breaker was open.",
    "breaker_trips": "Times the circuit breaker opened.",
    "hits": "Cache reads that found a value.",
    "misses": "Cache reads that found nothing.",
}


@dataclass(slots=True)
class _Entry:
    name: str
    kind: str
    ref: Callable[[], object | None]


def _kind_of(source: object) -> str:
    for classes, kind in _KINDS:
        if isinstance(source, classes):
            return kind
    raise TypeError(
        "metrics sources are RedisAdapter, ObjectCache, PageCache, SessionStore, Subscriber "
        f"and their async twins, not {type(source).__name__}"
    )


def _hold(source: object) -> Callable[[], object | None]:
    try:
        return weakref.ref(source)
    except TypeError:  # a class without __weakref__: kept alive, like it or not
        return lambda: source


class Metrics:
    """A registry of named sources whose counters are read on demand (thread-safe)."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def add(self, name: str, source: Source) -> None:
        """Register ``source`` under ``name`` (held by weak reference).

        Raises :class:`TypeError` for a source rcache cannot read or a name that is not a
        str, :class:`ValueError` for an empty name or one already in use by a live source.
        """
        if not isinstance(name, str):
            raise TypeError(f"a metrics source name must be a str, not {type(name).__name__}")
        if not name:
            raise ValueError("a metrics source name must not be empty")
        kind = _kind_of(source)
        with self._lock:
            self._prune()
            if name in self._entries:
                raise ValueError(f"a metrics source named {name!r} was already added")
            self._entries[name] = _Entry(name, kind, _hold(source))

    def remove(self, name: str) -> None:
        """Forget the source named ``name`` (nothing happens if there is none)."""
        with self._lock:
            self._entries.pop(name, None)

    def _prune(self) -> None:
        for name in [n for n, e in self._entries.items() if e.ref() is None]:
            del self._entries[name]

    def _live(self) -> list[tuple[_Entry, Any]]:
        """Return the live sources in the order added (strong references, for one read)."""
        with self._lock:
            self._prune()
            pairs = [(e, e.ref()) for e in self._entries.values()]
        return [(e, s) for e, s in pairs if s is not None]

    def snapshot(self) -> dict[str, Any]:
        """Return every live source's figures as plain JSON types (never connects).

        ``{"taken_at": time.time(), "sources": [...]}``; each source has ``name``,
        ``kind``, ``adapter`` (a stable id of the adapter whose counters these are: shared
        adapters repeat it; None for a subscriber), ``counters``, ``hit_ratio`` (None with
        no reads), ``breaker``, ``pool``, ``local`` and ``connected`` (None where they do
        not apply). See docs/metrics.md.
        """
        return {
            "taken_at": time.time(),
            "sources": [_describe(entry, source) for entry, source in self._live()],
        }

    def prometheus(self) -> str:
        """Return the figures in the Prometheus text exposition format (version 0.0.4).

        An adapter's counters and gauges appear once, labelled with the first name it was
        added under (directly or through a backend); every source also gets an
        ``rcache_source_info`` line whose ``adapter`` label names that first name.
        """
        out = _Exposition()
        seen: dict[int, str] = {}  # id(adapter) -> the source label its figures carry
        for entry, source in self._live():
            labels = {"source": entry.name}
            adapter = _adapter_of(source)
            first = "" if adapter is None else seen.setdefault(id(adapter), entry.name)
            info = {"source": entry.name, "kind": entry.kind, "adapter": first}
            out.add("rcache_source_info", 1, info)
            if adapter is None:
                _subscriber_samples(out, labels, source)
                continue
            if first == entry.name:
                _adapter_samples(out, labels, adapter)
            local = source.local if entry.kind == "object cache" else None
            if local is not None:
                for field, value in local.stats.as_dict().items():
                    out.add(f"rcache_local_{field}_total", value, labels)
        return out.text()


def _adapter_of(source: Any) -> Adapter | None:
    """Return the adapter whose counters describe ``source`` (None for a subscriber)."""
    if isinstance(source, RedisAdapter | AsyncRedisAdapter):
        return source
    if isinstance(source, Subscriber | AsyncSubscriber):
        return None
    adapter: Adapter = source.adapter
    return adapter


def _adapter_id(adapter: Adapter) -> str:
    """Return a stable id of ``adapter`` for this process: its redacted URL and ``id()``."""
    return f"{adapter.settings.redacted_url()}#{id(adapter)}"


def _ratio(hits: int, misses: int) -> float | None:
    return hits / (hits + misses) if hits + misses else None


def _pool(adapter: Adapter) -> dict[str, int] | None:
    """Return the sync pool's usage, read without its lock (None for other pools)."""
    pool = getattr(adapter.client, "connection_pool", None)
    if not isinstance(adapter, RedisAdapter) or not isinstance(pool, WaitingConnectionPool):
        return None
    in_use = getattr(pool, "_in_use_connections", None)
    idle = getattr(pool, "_available_connections", None)
    limit = getattr(pool, "max_connections", None)
    if in_use is None or idle is None or not isinstance(limit, int):
        return None
    return {"in_use": len(in_use), "idle": len(idle), "max": limit}


def _describe(entry: _Entry, source: Any) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "name": entry.name,
        "kind": entry.kind,
        "adapter": None,
        "counters": {},
        "hit_ratio": None,
        "breaker": None,
        "pool": None,
        "local": None,
        "connected": None,
    }
    adapter = _adapter_of(source)
    if adapter is None:  # a subscriber: its own counters (last_outage only once known)
        stats = source.stats.as_dict().items()
        figures["counters"] = {k: v for k, v in stats if isinstance(v, int | float)}
        figures["connected"] = bool(source.connected)
        return figures
    counters = adapter.stats.as_dict()
    local = source.local if entry.kind == "object cache" else None
    figures.update(
        adapter=_adapter_id(adapter),
        counters=counters,
        hit_ratio=_ratio(counters["hits"], counters["misses"]),
        breaker=adapter.breaker.state,
        pool=_pool(adapter),
        local=None if local is None else local.stats.as_dict(),
    )
    return figures


# -- Prometheus text --------------------------------------------------------------------------

_HELP = {
    "rcache_source_info": "A registered source; adapter: the label its adapter's figures carry.",
    "rcache_breaker_open": "1 while the circuit breaker is open or half-open, else 0.",
    "rcache_pool_in_use": "Pooled connections checked out.",
    "rcache_pool_idle": "Pooled connections idle.",
    "rcache_pool_max": "Pooled connections allowed at most.",
    "rcache_subscriber_connected": "1 while the subscriber is subscribed and delivering, else 0.",
    "rcache_subscriber_last_outage_seconds": (
        "Seconds from the subscriber's last lost connection to being subscribed again."
    ),
}


def _help(name: str) -> str:
    text = _HELP.get(name)
    if text is not None:
        return text
    field = name.removeprefix("rcache_").removesuffix("_total")
    if field.startswith("local_"):
        return f"Local tier counter: {field[6:]}."
    if field.startswith("subscriber_"):
        return f"Subscriber counter: {field[11:]}."
    return _ADAPTER_HELP.get(field, f"Adapter counter: {field}.")


def _adapter_samples(out: _Exposition, labels: dict[str, str], adapter: Adapter) -> None:
    for field, value in adapter.stats.as_dict().items():
        out.add(f"rcache_{field}_total", value, labels)
    out.add("rcache_breaker_open", adapter.breaker.state != "closed", labels)
    pool = _pool(adapter)
    if pool is not None:
        for key, value in pool.items():
            out.add(f"rcache_pool_{key}", value, labels)


def _subscriber_samples(out: _Exposition, labels: dict[str, str], source: Any) -> None:
    for field, value in source.stats.as_dict().items():
        if field == "last_outage":  # seconds, not a count
            if value is not None:
                out.add("rcache_subscriber_last_outage_seconds", value, labels)
        elif isinstance(value, int | float):
            out.add(f"rcache_subscriber_{field}_total", value, labels)
    out.add("rcache_subscriber_connected", bool(source.connected), labels)


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float | bool) -> str:
    if isinstance(value, bool | int):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class _Exposition:
    """Samples grouped by metric family, written with one HELP and TYPE per family.

    A family is a counter when its name ends in ``_total``, else a gauge.
    """

    def __init__(self) -> None:
        self._families: dict[str, list[str]] = {}

    def add(self, name: str, value: float | bool, labels: Mapping[str, str]) -> None:
        if not _METRIC_NAME.match(name):
            raise ValueError(f"not a valid Prometheus metric name: {name!r}")
        pairs = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
        self._families.setdefault(name, []).append(f"{name}{{{pairs}}} {_number(value)}")

    def text(self) -> str:
        lines: list[str] = []
        for name, samples in self._families.items():
            kind = "counter" if name.endswith("_total") else "gauge"
            lines.append(f"# HELP {name} {_escape_help(_help(name))}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(samples)
        return "\n".join(lines) + "\n" if lines else ""


# -- the server's side ------------------------------------------------------------------------

_SECTIONS = ("server", "memory", "stats", "clients", "keyspace")


def _int(section: Mapping[str, Any], key: str) -> int:
    value = section.get(key, 0)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _str(section: Mapping[str, Any], key: str) -> str | None:
    value = section.get(key)
    return None if value is None else str(value)


def server_info() -> Op[dict[str, Any]]:
    """Read INFO server, memory, stats, clients and keyspace in one round trip.

    Returns a flat dict of plain JSON types: ``redis_version``, ``redis_mode``,
    ``uptime_s``, ``used_memory`` and ``maxmemory`` (bytes; maxmemory 0 = unbounded),
    ``maxmemory_policy``, ``connected_clients``, ``ops_per_sec``, ``keyspace_hits``,
    ``keyspace_misses``, ``hit_ratio`` (None when nothing was read), ``evicted_keys``,
    ``expired_keys``, ``keys`` and ``expires`` (summed over the databases) and
    ``keyspace`` (``{"db0": {"keys": n, "expires": m}, ...}``). A field the server does
    not report is 0 (numbers) or None (text).
    """
    replies = yield Batch([("INFO", section) for section in _SECTIONS])
    server, memory, stats, clients, keyspace = (r if isinstance(r, dict) else {} for r in replies)
    hits, misses = _int(stats, "keyspace_hits"), _int(stats, "keyspace_misses")
    dbs = {
        db: {"keys": _int(v, "keys"), "expires": _int(v, "expires")}
        for db, v in sorted(keyspace.items())
        if isinstance(db, str) and db.startswith("db") and isinstance(v, dict)
    }
    return {
        "redis_version": _str(server, "redis_version"),
        "redis_mode": _str(server, "redis_mode"),
        "uptime_s": _int(server, "uptime_in_seconds"),
        "used_memory": _int(memory, "used_memory"),
        "maxmemory": _int(memory, "maxmemory"),
        "maxmemory_policy": _str(memory, "maxmemory_policy"),
        "connected_clients": _int(clients, "connected_clients"),
        "ops_per_sec": _int(stats, "instantaneous_ops_per_sec"),
        "keyspace_hits": hits,
        "keyspace_misses": misses,
        "hit_ratio": _ratio(hits, misses),
        "evicted_keys": _int(stats, "evicted_keys"),
        "expired_keys": _int(stats, "expired_keys"),
        "keys": sum(d["keys"] for d in dbs.values()),
        "expires": sum(d["expires"] for d in dbs.values()),
        "keyspace": dbs,
    }


#: ``(server_info(), None)``; ``(None, "why")`` when Redis could not be read; ``(None, None)``
#: without an adapter.
ServerPanel: TypeAlias = tuple[dict[str, Any] | None, str | None]


def read_server(adapter: RedisAdapter | None) -> ServerPanel:
    """Run :func:`server_info` for a status page: a failure is a reason, never an exception."""
    if adapter is None:
        return None, None
    try:
        return adapter.run(server_info()), None
    except BackendError as exc:  # the page is most wanted when Redis is in trouble
        return None, f"{type(exc).__name__}: {exc}"


async def aread_server(adapter: RedisAdapter | AsyncRedisAdapter | None) -> ServerPanel:
    """:func:`read_server` from asyncio code (a blocking adapter runs in a thread)."""
    if not isinstance(adapter, AsyncRedisAdapter):
        return await asyncio.to_thread(read_server, adapter)
    try:
        return await adapter.run(server_info()), None
    except BackendError as exc:
        return None, f"{type(exc).__name__}: {exc}"
