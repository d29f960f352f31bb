"""Argument parsing and dispatch for the ``rcache`` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from rcache.adapter import RedisAdapter
from rcache.cli import _commands, _warm
from rcache.errors import BackendError, ConfigurationError

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rcache",
        description="Inspect and maintain the Redis behind rcache.",
        epilog="The URL defaults to $RCACHE_URL, then " + DEFAULT_URL,
    )
    p.add_argument("--url", help="Redis URL (redis://, rediss://, unix://, redis+sentinel://)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("ping", help="check that Redis answers; print the round-trip time")

    lat = sub.add_parser("latency", help="measure round-trip times (PING) and print percentiles")
    lat.add_argument("-n", "--count", type=int, default=200, help="PINGs to send (default 200)")

    sub.add_parser("stat", help="server, memory, keyspace and hit-ratio summary")

    sub.add_parser(
        "doctor",
        help="check settings that matter for caches and sessions (exit 1 on an error)",
    )

    big = sub.add_parser("bigkeys", help="the largest keys matching a pattern (SCAN + MEMORY)")
    big.add_argument("--match", default="*", help="SCAN MATCH pattern (default *)")
    big.add_argument("--sample", type=int, default=1000, help="keys to measure (default 1000)")
    big.add_argument("--top", type=int, default=10, help="how many to list (default 10)")

    ins = sub.add_parser("inspect", help="type, TTL, size and decoded value of one key")
    ins.add_argument("key")
    ins.add_argument(
        "--max-chars", type=int, default=400, help="truncate the shown value (default 400)"
    )

    pur = sub.add_parser("purge", help="delete every key matching a pattern (SCAN + UNLINK)")
    pur.add_argument("pattern", help="SCAN MATCH pattern, e.g. 'shop:1:*'")
    pur.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    pur.add_argument("--yes", action="store_true", help="required to purge the pattern '*'")

    hot = sub.add_parser(
        "hotkeys", help="the most-read cache keys, from the board caches record into (HotKeys)"
    )
    hot.add_argument("--name", default="default", help="the board's name (default 'default')")
    hot.add_argument("--top", type=int, default=20, help="how many to list (default 20)")
    hot.add_argument(
        "--window", type=int, default=300, help="the board's window in seconds (default 300)"
    )
    hot.add_argument("--prefix", default="", help="the caches' adapter key prefix, if any")

    _warm.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "warm":  # talks HTTP to the site, not to Redis
        try:
            return _warm.cmd_warm(args, sys.stdout, sys.stdin)
        except (ValueError, OSError) as exc:
            print(f"rcache: {exc}", file=sys.stderr)
            return 2
    url = args.url or os.environ.get("RCACHE_URL") or DEFAULT_URL
    try:
        adapter = RedisAdapter.from_url(url, retry_attempts=1)
    except ConfigurationError as exc:
        print(f"rcache: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    try:
        handler = getattr(_commands, "cmd_" + args.command)
        return int(handler(adapter, args, out))
    except BackendError as exc:
        print(f"rcache: {adapter.settings.redacted_url()}: {exc}", file=sys.stderr)
        return 3
    except ValueError as exc:
        print(f"rcache: {exc}", file=sys.stderr)
        return 2
    finally:
        adapter.close()


if __name__ == "__main__":
    sys.exit(main())
