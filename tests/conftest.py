"""Fixtures for the whole suite: private Redis processes (rcache.server) and key isolation.

Session-scoped servers and groups start on first use only, so any subset of the suite runs
with just the processes it needs. Tests share them and isolate themselves with
``key_prefix``, never with FLUSHDB; a test that stops, kills or restarts Redis takes
``fresh_server``. At the end the run fails if a Redis process it started is still alive.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefixes import unique_prefix

from rcache.server import ClusterGroup, RedisServer, SentinelGroup, running_processes, stop_all

#: Passwords of ``acl_server``: the default user's, and the ``app`` user's.
ACL_DEFAULT_PASSWORD = "admin-s3cret"
ACL_APP_USER = "app"
ACL_APP_PASSWORD = "s3cret"

_GROUP_FIXTURES = frozenset({"sentinel_group", "cluster"})
_REDIS_NAMES = frozenset({"redis-server", "redis-sentinel"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a Sentinel group or a Cluster as ``slow``."""
    for item in items:
        if _GROUP_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """Yield a shared redis-server on a free loopback port plus a unix socket."""
    with RedisServer(unix_socket=True) as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """Return the TCP URL of ``redis_server``: ``redis://127.0.0.1:PORT/0``."""
    return redis_server.url


@pytest.fixture(scope="session")
def redis_unix_url(redis_server: RedisServer) -> str:
    """Return the unix socket URL of ``redis_server``: ``unix:///tmp/.../redis.sock?db=0``."""
    return redis_server.unix_url


@pytest.fixture(scope="session")
def tls_server() -> Iterator[RedisServer]:
    """Yield a shared TLS-only redis-server (``tls_url``; CA in ``tls_files.ca_cert``)."""
    with RedisServer(tls=True, tcp=False) as server:
        yield server


@pytest.fixture(scope="session")
def acl_server() -> Iterator[RedisServer]:
    """Yield a shared redis-server with passwords only.

    User ``app`` / ``s3cret`` may do anything; the default user's password is
    ``ACL_DEFAULT_PASSWORD`` (``server.url`` and ``server.client()`` use it), so
    unauthenticated connections are refused.
    """
    with RedisServer(
        password=ACL_DEFAULT_PASSWORD, acl_users={ACL_APP_USER: ACL_APP_PASSWORD}
    ) as server:
        yield server


@pytest.fixture(scope="session")
def sentinel_group() -> Iterator[SentinelGroup]:
    """Yield a shared Sentinel group: master, one replica, three Sentinels (``mymaster``).

    Tests may call ``failover()``; the group is settled again when it returns.
    """
    with SentinelGroup() as group:
        yield group


@pytest.fixture(scope="session")
def cluster() -> Iterator[ClusterGroup]:
    """Yield a shared Redis Cluster: three masters, one replica each (``cluster.url``)."""
    with ClusterGroup() as group:
        yield group


@pytest.fixture
def fresh_server() -> Iterator[RedisServer]:
    """Yield a private redis-server (TCP + unix socket) for this test alone.

    The test may stop, kill, restart or reconfigure it; it is stopped and its directory
    removed afterwards, whatever state it was left in.
    """
    server = RedisServer(unix_socket=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def key_prefix() -> str:
    """Return a key prefix unique to this test (see :func:`unique_prefix`)."""
    return unique_prefix()


def _stop_child(pid: int, timeout: float = 5.0) -> None:
    """Stop and reap a child process that the rcache.server registry does not know."""
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.02)
    except (ProcessLookupError, ChildProcessError):
        pass  # already gone, or reaped elsewhere


def _redis_children() -> list[str]:
    """Return ``pid name`` of live redis-* child processes of this process (Linux /proc)."""
    found = []
    me = str(os.getpid())
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue  # gone meanwhile
        name, state = fields.get("Name", ""), fields.get("State", "")
        if fields.get("PPid") == me and name in _REDIS_NAMES and not state.startswith("Z"):
            found.append(f"{status.parent.name} {name}")
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a Redis process started by it outlived its fixture; then stop it."""
    registered = {str(p.pid): f"{p.pid} {' '.join(p.argv)}" for p in running_processes()}
    strays = [c for c in _redis_children() if c.split()[0] not in registered]
    leftovers = [*registered.values(), *strays]
    if not leftovers:
        return
    stop_all()
    for stray in strays:
        _stop_child(int(stray.split()[0]))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = "Redis processes still running at the end of the run (now stopped):"
    if reporter is not None:
        reporter.write_line("")
        reporter.write_sep("!", "leftover Redis processes", red=True, bold=True)
        reporter.write_line(message, red=True)
        for line in leftovers:
            reporter.write_line(f"    {line}", red=True)
    else:
        print(message, *leftovers, sep="\n    ")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
