"""The ``rcache`` subcommands: each takes the adapter, the parsed arguments and a stream."""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, TextIO

from rcache.adapter import RedisAdapter
from rcache.codecs import Codec
from rcache.errors import CodecError
from rcache.eviction import check_for_cache, check_for_sessions, read_policy
from rcache.hotkeys import top_op
from rcache.keys import key_head
from rcache.metrics import server_info
from rcache.ops import Batch, Op


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def cmd_ping(adapter: RedisAdapter, args: argparse.Namespace, out: TextIO) -> int:
    rtt = adapter.ping()
    print(f"PONG from {adapter.settings.redacted_url()} in {rtt * 1000:.3f} ms", file=out)
    return 0


def cmd_latency(adapter: RedisAdapter, args: argparse.Namespace, out: TextIO) -> int:
    if args.count < 1:
        raise ValueError("--count must be >= 1")
    samples = []
    for _ in range(args.count):
        t = time.perf_counter()
        adapter.execute("PING")
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()

    def pct(p: float) -> float:
        return samples[min(len(samples) - 1, int(p / 100 * len(samples)))]

    print(
        f"{len(samples)} PINGs: min {samples[0]:.3f} ms, median {statistics.median(samples):.3f}"
        f" ms, p99 {pct(99):.3f} ms, max {samples[-1]:.3f} ms",
        file=out,
    )
    return 0


def cmd_stat(adapter: RedisAdapter, args: argparse.Namespace, out: TextIO) -> int:
    info = adapter.run(server_info())
    hits, misses, ratio = info["keyspace_hits"], info["keyspace_misses"], info["hit_ratio"]
    shown = "n/a" if ratio is None else f"{ratio:.1%}"
    maxmemory = info["maxmemory"]
    rows = [
        ("server", f"Redis {info['redis_version']} ({info['redis_mode']})"),
        ("uptime", f"{info['uptime_s']} s"),
        ("memory", f"{_size(info['used_memory'])} used"),
        ("maxmemory", _size(maxmemory) if maxmemory else "unbounded"),
        ("policy", str(info["maxmemory_policy"])),
        ("hit ratio", f"{shown} ({hits} hits, {misses} misses)"),
        ("evicted", str(info["evicted_keys"])),
        ("expired", str(info["expired_keys"])),
        ("ops/s", str(info["ops_per_sec"])),
    ]
    for db, counts in info["keyspace"].items():
        rows.append((db, f"{counts['keys']} keys, {counts['expires']} with a TTL"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}", file=out)
    return 0


def cmd_doctor(adapter: RedisAdapter, args: argparse.Namespace, out: TextIO) -> int:
    findings: list[tuple[str, str]] = []
    found = adapter.run(server_info())["redis_version"]
    version = tuple(int(x) for x in str(found or "0").split(".")[:2])
    if version < (7, 0):
        findings.append(("error", f"Redis {found}: rcache needs 7.0+"))
    else:
        findings.append(("ok", f"Redis {found}"))
    policy = adapter.run(read_policy())
    for use, verdict in (
        ("caches", check_for_cache(policy)),
        ("sessions", check_for_sessions(policy)),
    ):
        findings.append((verdict.level, f"for {use}: {verdict.message}"))
    rtt = statistics.median(adapter.ping() for _ in range(20)) * 1000
    findings.append(("ok" if rtt < 5 else "warning", f"median round trip {rtt:.3f} ms"))
    for level, message in findings:
        print(f"[{level:^7}] {message}", file=out)
    return 1 if any(level == "error" for level, _ in findings) else 0


def _scan(pattern: str, limit: int | None) -> Op[list[bytes]]:
    keys: dict[bytes, None] = {}
    cursor: Any = 0
    while True:
        ((cursor, batch),) = yield Batch([("SCAN", cursor, "MATCH", pattern, "COUNT", 500)])
        keys.update(dict.fromkeys(batch))
        if int(cursor) == 0 or (limit is not None and len(keys) >= limit):
            return list(keys)[:limit] if limit is not None else list(keys)


def _memory(keys: list[bytes]) -> Op[list[tuple[bytes, int]]]:
    sized: list[tuple[bytes, int]] = []
    for i in range(0, len(keys), 100):
        chunk = keys[i : i + 100]
        replies = yield Batch(
            [("MEMORY", "USAGE", k, "SAMPLES", "0") for k in chunk], raise_on_error=False
        )
        sized += [(k, r) for k, r in zip(chunk, replies, strict=True) if isinstance(r, int)]
    return sized


def cmd_bigkeys(adapter: RedisAdapter, args: argparse.Namespace, out: TextIO) -> int:
    if args.sample < 1 or args.top < 1:
        raise ValueError("--sample and --top must be >= 1")
    keys = adapter.run(_scan(args.match, args.sample))
    sized = sorted(adapter.run(_memory(keys)), key=lambda kv: kv[1], reverse=True)
    total = sum(n for _, n in sized)
    print(f"{len(sized)} keys measured, {_size(total)} in total", file=out)
    for key, n in sized[: args.top]:
        print(f"{_size(n):>12}  {_text(key)}", file=out)
    return 0


def _describe(key: str) -> Op[tuple[str, int, int | None, Any]]:
    kind, pttl, mem = yield Batch(
        [("TYPE", key), ("PTTL", key), ("MEMORY", "USAGE", key, "SAMPLES", "0")],
        raise_on_error=False,
    )
    value: Any = None
    kind = _text(kind)
    if kind == "string":
        (value,) = yield Batch([("GET", key)])
    elif kind == "hash":
        (value,) = yield Batch([("HGETALL", key)])
    return kind, int(pttl), mem if isinstance(mem, int) else None, value


def cmd_inspect(adapter: RedisAdapter, args: argparse.Namespace, out: TextIO) -> int:
    kind, pttl, mem, raw = adapter.run(_describe(args.key))
    if kind == "none":
        print(f"{args.key}: no such key", file=out)
        return 1
    ttl = "no expiry" if pttl == -1 else f"{pttl / 1000:.3f} s"
    print(f"type {kind}, ttl {ttl}, memory {_size(mem) if mem is not None else '?'}", file=out)
    codec = Codec()  # reads every stored format; refuses pickle (never unpickle here)

    def show(value: Any) -> str:
        try:
            decoded: Any = codec.decode(value)
            text = repr(decoded)
        except CodecError as exc:
            text = f"<not decodable: {exc}> {value[:64]!r}"
        return text if len(text) <= args.max_chars else text[: args.max_chars] + "..."

    if isinstance(raw, bytes):
        print(show(raw), file=out)
    elif isinstance(raw, dict):
        for field, value in raw.items():
            print(f"  {_text(field)!r}: {show(value)}", file=out)
    return 0


def cmd_purge(adapter: RedisAdapter, args: argparse.Namespace, out: TextIO) -> int:
    if args.pattern.strip("*") == "" and not args.yes:
        raise ValueError("purging every key needs --yes")
    keys = adapter.run(_scan(args.pattern, None))
    if args.dry_run:
        print(f"{len(keys)} keys match {args.pattern!r} (dry run: nothing deleted)", file=out)
        return 0
    deleted = 0
    for i in range(0, len(keys), 500):
        deleted += int(adapter.execute("UNLINK", *keys[i : i + 500]))
    print(f"deleted {deleted} keys matching {args.pattern!r}", file=out)
    return 0


def cmd_hotkeys(adapter: RedisAdapter, args: argparse.Namespace, out: TextIO) -> int:
    if args.top < 1 or args.window < 1:
        raise ValueError("--top and --window must be >= 1")
    ranked = adapter.run(
        top_op(key_head(args.prefix), args.name, args.top, args.window, time.time())
    )
    if not ranked:
        print(f"no reads recorded on board {args.name!r} in the last two windows", file=out)
        return 0
    print(f"reads (estimated, last {args.window}-{2 * args.window} s)  key", file=out)
    for key, reads in ranked:
        print(f"{reads:>12,.0f}  {key}", file=out)
    return 0
