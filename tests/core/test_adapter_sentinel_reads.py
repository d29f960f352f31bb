"""After an initiated Sentinel failover, reads must reach the new master.

An adapter's connections are bound to a master when they connect. A write that meets
READONLY on a demoted master makes the adapter ask Sentinel again, but an adapter that
only reads never meets READONLY: without a periodic check it would keep reading from the
old master, now a replica, its reads as stale as that node's replication (and a local
tier tracking the new master would fill from a node it does not track). Found by the
SENTINEL FAILOVER chaos scenario. The adapters ask the Sentinels who the master is every
``sentinel_check_interval`` seconds (default 1) and move when it changed.
"""

from __future__ import annotations

import time
from typing import Any

from rcache.server import SentinelGroup


def _served_by(runner: Any) -> int:
    info = runner.execute("INFO", "server")
    return int(info["tcp_port"])


def test_a_reading_adapter_follows_an_initiated_sentinel_failover(
    sentinel_group: SentinelGroup, make_runner: Any
) -> None:
    runner = make_runner(sentinel_group.url, sentinel_check_interval=0.2)
    old = sentinel_group.master_address()
    assert _served_by(runner) == old[1]
    new = sentinel_group.failover()
    deadline = time.monotonic() + 5.0  # Sentinel named it already; allow a check or two
    while _served_by(runner) != new[1] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _served_by(runner) == new[1]
    runner.execute("SET", "after-failover", "1")  # and writes land on it too
