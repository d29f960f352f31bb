"""Private Redis processes for tests, demos and development.

Start and stop ``redis-server`` / ``redis-sentinel`` binaries as child processes, each with
its own short temporary directory (config, log, data, unix socket, TLS files), listening on
127.0.0.1 or a unix socket only. Processes are stopped by pid: SIGTERM, SIGKILL after a
timeout, then reaped. Anything still running when the interpreter exits is stopped by an
:mod:`atexit` hook. Needs Redis 7.0 or newer (and ``openssl`` for TLS).

::

    with RedisServer(unix_socket=True) as server:     # a free loopback port + a unix socket
        server.url, server.unix_url

    with SentinelGroup() as group:                     # master, 1 replica, 3 Sentinels
        group.url                                      # redis+sentinel://.../mymaster
        group.failover()                               # the new master's address

    with ClusterGroup() as cluster:                    # 3 masters + 3 replicas
        cluster.url                                    # redis+cluster://...

Only redis-py (blocking) is used, to wait for the processes and configure them; no web
framework is imported.
"""

from __future__ import annotations

from rcache._server_cluster import ClusterGroup
from rcache._server_process import ProcessInfo, find_free_port, running_processes, stop_all
from rcache._server_redis import RedisServer
from rcache._server_sentinel import SentinelGroup
from rcache._server_tls import TLSFiles, generate_tls_files

__all__ = [
    "ClusterGroup",
    "ProcessInfo",
    "RedisServer",
    "SentinelGroup",
    "TLSFiles",
    "find_free_port",
    "generate_tls_files",
    "running_processes",
    "stop_all",
]
