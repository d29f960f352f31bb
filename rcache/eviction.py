"""What Redis does when memory is full, and how much memory a key space uses.

Pure verdicts over a :class:`MemoryPolicy` (``maxmemory`` and ``maxmemory-policy``), and two
operations (see :mod:`rcache.ops`) that read them from a server::

    policy = adapter.run(read_policy())
    verdict = check_for_sessions(policy)
    if not verdict.ok:
        log.error(verdict.message)

    report = adapter.run(sample_memory(ks.pattern(), sample=500))

Sessions must never be evicted (a user would be logged out), so they need ``noeviction``.
A cache wants the opposite: an evicting policy, so a full Redis drops entries instead of
refusing writes. rcache gives every cache entry a TTL, so ``volatile-*`` policies can evict
them too. With ``maxmemory`` 0 nothing is ever evicted and memory is unbounded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from rcache.errors import BackendError, BackendTimeout, BackendUnavailable, ConfigurationError
from rcache.ops import Batch, Op

__all__ = [
    "Level",
    "MemoryPolicy",
    "MemoryReport",
    "Verdict",
    "check_for_cache",
    "check_for_sessions",
    "read_policy",
    "sample_memory",
]

Level: TypeAlias = Literal["ok", "warning", "error"]

_MEMORY_CHUNK = 100  # MEMORY USAGE commands per round trip


@dataclass(frozen=True, slots=True)
class MemoryPolicy:
    """A server's ``maxmemory`` (bytes; 0 = no limit) and ``maxmemory-policy``."""

    maxmemory: int
    policy: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a memory policy suits a use: ``ok`` is False exactly when ``level`` is "error".

    A "warning" is usable but deserves a look; ``message`` says why, for a log or a CLI.
    """

    ok: bool
    level: Level
    message: str

    def __post_init__(self) -> None:
        if self.level not in ("ok", "warning", "error"):
            raise ConfigurationError(f"verdict level must be ok, warning or error: {self.level!r}")
        if self.ok != (self.level != "error"):
            raise ConfigurationError("a verdict is ok exactly when its level is not 'error'")


@dataclass(frozen=True, slots=True)
class MemoryReport:
    """Memory used by a sample of the keys that match a pattern (bytes, from MEMORY USAGE).

    ``keys_sampled``: keys measured (keys that vanished meanwhile are left out).
    ``mean_bytes``: ``bytes_sampled / keys_sampled`` (0.0 when nothing was measured).
    ``scanned_all``: SCAN went through the whole keyspace, so ``keys_seen`` is every key
    that matched. ``estimated_total_bytes``: for all matching keys, only when
    ``scanned_all`` (None otherwise); equal to ``bytes_sampled`` when every key was measured.
    ``keys_seen``: distinct matching keys SCAN returned.
    """

    keys_sampled: int
    bytes_sampled: int
    mean_bytes: float
    scanned_all: bool
    estimated_total_bytes: int | None
    keys_seen: int


def _verdict(level: Level, message: str) -> Verdict:
    return Verdict(level != "error", level, message)


def _family(policy: str) -> str:
    """Return "none", "allkeys", "volatile" or "unknown" for a maxmemory-policy name."""
    name = policy.strip().lower()
    if name == "noeviction":
        return "none"
    if name.startswith("allkeys-"):
        return "allkeys"
    if name.startswith("volatile-"):
        return "volatile"
    return "unknown"


def check_for_sessions(p: MemoryPolicy) -> Verdict:
    """Judge ``p`` for a session store: safe only when nothing can be evicted.

    An error when ``maxmemory`` is set and the policy may evict (``allkeys-*``, and
    ``volatile-*`` too since sessions carry a TTL) or is unknown. ``maxmemory`` 0 never
    evicts: ok, with a note that memory is then unbounded.
    """
    family = _family(p.policy)
    if p.maxmemory <= 0:
        return _verdict(
            "ok",
            f"maxmemory is 0, so nothing is evicted (policy {p.policy!r} never applies); "
            "note that memory is then unbounded: Redis grows until the host runs out",
        )
    if family == "none":
        return _verdict(
            "ok",
            f"noeviction with maxmemory {p.maxmemory} bytes: sessions are never evicted; "
            "when memory is full, saving a session fails with OOM",
        )
    if family == "unknown":
        return _verdict(
            "error",
            f"unknown maxmemory-policy {p.policy!r}: sessions may be evicted; "
            "use noeviction for sessions",
        )
    which = "any key" if family == "allkeys" else "keys with a TTL, which sessions all have"
    return _verdict(
        "error",
        f"maxmemory-policy {p.policy} evicts {which} once {p.maxmemory} bytes are used: "
        "sessions may be evicted and users logged out; use noeviction "
        "(a separate Redis for sessions if the cache needs eviction)",
    )


def check_for_cache(p: MemoryPolicy) -> Verdict:
    """Judge ``p`` for a cache: safe when a full Redis evicts entries instead of failing.

    Ok with ``allkeys-*`` and ``volatile-*`` (rcache cache entries always carry a TTL, so
    they are evictable). An error with ``noeviction`` and ``maxmemory`` set: once full, every
    cache write fails with OOM. A warning with ``maxmemory`` 0 (unbounded memory) and with
    an unknown policy.
    """
    family = _family(p.policy)
    if p.maxmemory <= 0:
        return _verdict(
            "warning",
            "maxmemory is 0: the cache is unbounded; expired entries are reclaimed, but a "
            "burst of writes can use all of the host's memory. Set maxmemory with allkeys-lru "
            "or allkeys-lfu",
        )
    if family == "none":
        return _verdict(
            "error",
            f"noeviction with maxmemory {p.maxmemory} bytes: once memory is full every cache "
            "write fails with OOM; use allkeys-lru or allkeys-lfu",
        )
    if family == "allkeys":
        return _verdict("ok", f"{p.policy} evicts cache entries when memory is full")
    if family == "volatile":
        return _verdict(
            "ok",
            f"{p.policy} evicts keys with a TTL, which every rcache cache entry has; keys "
            "without a TTL written by others are never evicted",
        )
    return _verdict(
        "warning", f"unknown maxmemory-policy {p.policy!r}: cannot tell whether it evicts"
    )


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _to_int(value: object, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, bytes | str):
        try:
            return int(_text(value).strip())
        except ValueError:
            pass
    raise BackendError(f"the server reported {name} as {value!r}, not a number of bytes")


def _pairs(reply: object) -> dict[str, Any]:
    """Return a CONFIG GET or INFO reply as a dict with str keys (lower case)."""
    if isinstance(reply, Mapping):
        return {_text(k).lower(): v for k, v in reply.items()}
    if isinstance(reply, bytes | str):  # an unparsed INFO section: "name:value" lines
        found: dict[str, Any] = {}
        for line in _text(reply).splitlines():
            name, sep, value = line.partition(":")
            if sep and not name.startswith("#"):
                found[name.strip().lower()] = value.strip()
        return found
    if isinstance(reply, list | tuple):  # flat [name, value, name, value, ...]
        return {_text(reply[i]).lower(): reply[i + 1] for i in range(0, len(reply) - 1, 2)}
    return {}


def read_policy() -> Op[MemoryPolicy]:
    """Read ``maxmemory`` and ``maxmemory-policy`` from the server (one round trip, or two).

    Sends ``CONFIG GET`` for both. Managed services often refuse CONFIG (renamed command,
    ACL): on a :class:`~rcache.errors.BackendError` that is not a connection failure or a
    timeout, or when the reply lacks either value, it asks ``INFO memory`` instead. Raise
    BackendError when neither answer has both values.
    """
    config: dict[str, Any] = {}
    try:
        replies = yield Batch(
            [("CONFIG", "GET", "maxmemory"), ("CONFIG", "GET", "maxmemory-policy")]
        )
    except (BackendUnavailable, BackendTimeout):
        raise
    except BackendError:
        pass
    else:
        for reply in replies:
            config.update(_pairs(reply))
    if "maxmemory" in config and "maxmemory-policy" in config:
        return MemoryPolicy(
            _to_int(config["maxmemory"], "maxmemory"), _text(config["maxmemory-policy"])
        )
    (info,) = yield Batch([("INFO", "memory")])
    fields = _pairs(info)
    if "maxmemory" not in fields or "maxmemory_policy" not in fields:
        raise BackendError("the server reports its maxmemory policy neither by CONFIG nor INFO")
    return MemoryPolicy(
        _to_int(fields["maxmemory"], "maxmemory"), _text(fields["maxmemory_policy"])
    )


def sample_memory(
    keyspace_pattern: str, *, sample: int = 1000, count: int = 500
) -> Op[MemoryReport]:
    """Measure the memory of up to ``sample`` keys matching ``keyspace_pattern``.

    SCANs with ``MATCH keyspace_pattern COUNT count`` (one round trip per call, ``count``
    being a hint of keys examined per call) until ``sample`` distinct keys are found or the
    scan ends, then asks ``MEMORY USAGE key SAMPLES 0`` (exact, nested values included)
    for each, 100 per round trip. Meant for one standalone server (on a Cluster, run it
    against each primary). SCAN does not block the server, but a large ``sample`` costs
    that many MEMORY USAGE calls.
    """
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 1:
        raise ConfigurationError(f"sample must be an int >= 1, got {sample!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ConfigurationError(f"count must be an int >= 1, got {count!r}")
    return _sample_memory(keyspace_pattern, sample, count)


def _sample_memory(pattern: str, sample: int, count: int) -> Op[MemoryReport]:
    seen: dict[Any, None] = {}  # SCAN may return a key twice; keep the first order
    cursor = 0
    while True:
        (reply,) = yield Batch([("SCAN", cursor, "MATCH", pattern, "COUNT", count)])
        cursor = _to_int(reply[0], "the SCAN cursor")
        seen.update(dict.fromkeys(reply[1]))
        done = cursor == 0
        if done or len(seen) >= sample:
            break
    probed = list(seen)[:sample]
    measured = 0
    total = 0
    for start in range(0, len(probed), _MEMORY_CHUNK):
        chunk = probed[start : start + _MEMORY_CHUNK]
        replies = yield Batch(
            [("MEMORY", "USAGE", key, "SAMPLES", "0") for key in chunk], raise_on_error=False
        )
        for size in _sizes(replies):
            measured += 1
            total += size
    mean = total / measured if measured else 0.0
    estimate = None
    if done:
        # Scale by every matching key; keys that vanished while measured count as gone.
        estimate = (total * len(seen) + len(probed) // 2) // len(probed) if probed else 0
    return MemoryReport(
        keys_sampled=measured,
        bytes_sampled=total,
        mean_bytes=mean,
        scanned_all=done,
        estimated_total_bytes=estimate,
        keys_seen=len(seen),
    )


def _sizes(replies: Iterable[Any]) -> Iterable[int]:
    """Yield the byte counts among MEMORY USAGE replies, skipping None (vanished) and errors."""
    for reply in replies:
        if isinstance(reply, int) and not isinstance(reply, bool):
            yield reply
