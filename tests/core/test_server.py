"""rcache.server: private redis-server, Sentinel and Cluster processes."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.cluster
import redis.sentinel
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.retry import Retry

import rcache
from rcache import _server_redis
from rcache.errors import ConfigurationError
from rcache.server import (
    ClusterGroup,
    RedisServer,
    SentinelGroup,
    find_free_port,
    running_processes,
)

ACL_DEFAULT_PASSWORD = "admin-s3cret"  # as in tests/conftest.py


def no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


def role(server: RedisServer) -> str:
    with server.client(decode_responses=True) as c:
        return str(c.execute_command("ROLE")[0])


def assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert pid not in {p.pid for p in running_processes()}


# -- a standalone server ---------------------------------------------------------------------


def test_standalone_answers_on_tcp_and_unix_socket(
    redis_server: RedisServer, redis_url: str, redis_unix_url: str, key_prefix: str
) -> None:
    assert redis_url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_unix_url == f"unix://{redis_server.unix_path}?db=0"
    assert len(redis_server.unix_path.encode()) < 100
    with redis.Redis.from_url(redis_url) as tcp, redis.Redis.from_url(redis_unix_url) as unix:
        tcp.set(key_prefix + "k", b"v")
        assert unix.get(key_prefix + "k") == b"v"
        assert tcp.config_get("bind")["bind"] == "127.0.0.1"
        assert tcp.config_get("save")["save"] == ""
        tcp.execute_command("DEBUG", "SLEEP", "0")  # enabled for local connections
    assert redis_server.pid in {p.pid for p in running_processes()}
    assert stat.S_IMODE(redis_server.dir.stat().st_mode) == 0o700
    assert "pid=" in repr(redis_server)


def test_unix_socket_only_server() -> None:
    with RedisServer(unix_socket=True, tcp=False) as server:
        assert server.url == server.unix_url
        with server.client(decode_responses=True) as c:
            assert c.config_get("port")["port"] == "0"
        with pytest.raises(ValueError):
            server.tls_port  # noqa: B018


def test_password_and_acl_users(acl_server: RedisServer, key_prefix: str) -> None:
    port = acl_server.port
    with redis.Redis(port=port, retry=no_retry()) as anonymous:
        with pytest.raises(redis.AuthenticationError):
            anonymous.set(key_prefix + "x", b"1")
    wrong = redis.Redis(port=port, username="app", password="wrong", retry=no_retry())
    with wrong, pytest.raises(redis.AuthenticationError):
        wrong.ping()
    wrong_default = redis.Redis(port=port, password="wrong", retry=no_retry())
    with wrong_default, pytest.raises(redis.AuthenticationError):
        wrong_default.ping()
    with redis.Redis.from_url(f"redis://app:s3cret@127.0.0.1:{port}/0") as app:
        app.set(key_prefix + "x", b"1")
        assert app.acl_whoami() in ("app", b"app")
    assert acl_server.url == f"redis://:{ACL_DEFAULT_PASSWORD}@127.0.0.1:{port}/0"
    assert "***" in repr(acl_server) and ACL_DEFAULT_PASSWORD not in repr(acl_server)
    with acl_server.client() as admin:
        assert admin.get(key_prefix + "x") == b"1"


def test_tls_with_the_ca_works_and_plain_tcp_to_the_tls_port_fails(
    tls_server: RedisServer, key_prefix: str
) -> None:
    files = tls_server.tls_files
    assert all(p.is_file() for p in (files.ca_cert, files.cert, files.key))
    assert tls_server.url == tls_server.tls_url
    assert tls_server.url == f"rediss://127.0.0.1:{tls_server.tls_port}/0"
    with redis.Redis.from_url(tls_server.tls_url, ssl_ca_certs=str(files.ca_cert)) as c:
        c.set(key_prefix + "t", b"secure")
        assert c.get(key_prefix + "t") == b"secure"
    with redis.Redis.from_url(
        tls_server.tls_url,
        ssl_ca_certs=str(files.ca_cert),
        ssl_certfile=str(files.cert),
        ssl_keyfile=str(files.key),
    ) as with_client_cert:
        assert with_client_cert.ping()
    failures = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
    plain = redis.Redis(port=tls_server.tls_port, socket_timeout=2, retry=no_retry())
    with plain, pytest.raises(failures):
        plain.ping()
    untrusted = redis.Redis.from_url(tls_server.tls_url, socket_timeout=2, retry=no_retry())
    with untrusted, pytest.raises(failures):
        untrusted.ping()


def test_restart_keeps_aof_data(key_prefix: str) -> None:
    with RedisServer(appendonly=True, unix_socket=True) as server:
        pid, port, path, directory = server.pid, server.port, server.unix_path, server.dir
        with server.client() as c:
            c.set(key_prefix + "k", b"v")
            c.incrby(key_prefix + "n", 3)
        server.restart()
        assert server.pid != pid
        assert (server.port, server.unix_path, server.dir) == (port, path, directory)
        assert (directory / "appendonlydir").is_dir()
        with server.client() as c:
            assert c.get(key_prefix + "k") == b"v"
            assert c.get(key_prefix + "n") == b"3"
        server.restart(keep_data=False)
        with server.client() as c:
            assert c.get(key_prefix + "k") is None
    assert not directory.exists()


def test_restart_without_aof_keeps_data_through_a_snapshot(
    fresh_server: RedisServer, key_prefix: str
) -> None:
    with fresh_server.client() as c:
        c.set(key_prefix + "k", b"v")
    fresh_server.restart()
    with fresh_server.client() as c:
        assert c.get(key_prefix + "k") == b"v"


def test_stop_removes_the_dir_and_reaps_the_process(fresh_server: RedisServer) -> None:
    pid, port, directory = fresh_server.pid, fresh_server.port, fresh_server.dir
    assert directory.is_dir()
    fresh_server.stop()
    assert not fresh_server.is_running()
    assert not directory.exists()
    assert_gone(pid)
    with pytest.raises(RuntimeError):
        fresh_server.pid  # noqa: B018
    fresh_server.stop()  # a second stop does nothing
    fresh_server.start()  # comes back on the same port, empty
    assert fresh_server.port == port
    with fresh_server.client() as c:
        assert c.dbsize() == 0


def test_kill_leaves_the_dir_and_start_comes_back(
    fresh_server: RedisServer, key_prefix: str
) -> None:
    with fresh_server.client() as c:
        c.set(key_prefix + "k", b"v")
        c.save()
    pid, directory = fresh_server.pid, fresh_server.dir

    fresh_server.kill(signal.SIGSTOP)  # hung, not dead
    assert fresh_server.is_running()
    with fresh_server.client(socket_timeout=0.3, retry=no_retry()) as c:
        with pytest.raises(redis.exceptions.TimeoutError):
            c.ping()
    fresh_server.kill(signal.SIGCONT)

    fresh_server.kill()  # SIGKILL: a crash
    assert not fresh_server.is_running()
    assert_gone(pid)
    assert (directory / "dump.rdb").is_file()
    fresh_server.start()
    with fresh_server.client() as c:
        assert c.get(key_prefix + "k") == b"v"


def test_start_retries_on_another_port_when_the_port_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        offered = [taken]
        monkeypatch.setattr(
            _server_redis, "find_free_port", lambda: offered.pop() if offered else find_free_port()
        )
        with RedisServer() as server:
            assert server.port != taken
            with server.client() as c:
                assert c.ping()
        with pytest.raises(RuntimeError, match="Address already in use"):
            RedisServer(port=taken).start()


def test_a_server_that_exits_during_startup_reports_its_log() -> None:
    with pytest.raises(RuntimeError, match="maxmemory-policy") as error:
        RedisServer(maxmemory_policy="no-such-policy").start()
    log = re.search(r"end of its log \((\S+)\)", str(error.value))
    assert log is not None
    assert not Path(log.group(1)).parent.exists()  # nothing to keep: the message has the log


def test_bad_options_are_rejected() -> None:
    with pytest.raises(ConfigurationError):
        RedisServer(tcp=False)
    with pytest.raises(ConfigurationError):
        RedisServer(appendfsync="sometimes")
    with pytest.raises(ConfigurationError):
        RedisServer(unix_socket="/tmp/" + "x" * 120)
    with pytest.raises(RuntimeError):
        RedisServer().port  # noqa: B018  (not started)


def test_find_free_port_gives_distinct_bindable_ports() -> None:
    ports = {find_free_port() for _ in range(20)}
    assert len(ports) == 20
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports.pop()))


def test_a_forgotten_server_is_stopped_at_exit() -> None:
    code = (
        "from rcache.server import RedisServer;"
        "s = RedisServer().start();"
        "print(s.pid, s.dir, flush=True)"
    )
    root = Path(rcache.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    pid, directory = out.stdout.split()
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)
    assert not Path(directory).exists()
    assert "never stopped" in out.stderr


# -- Sentinel --------------------------------------------------------------------------------


def test_sentinel_group_reports_a_master_and_fails_over(sentinel_group: SentinelGroup) -> None:
    assert sentinel_group.url.startswith("redis+sentinel://127.0.0.1:")
    assert sentinel_group.url.endswith("/mymaster")
    assert len(sentinel_group.sentinel_addresses) == 3
    assert len(sentinel_group.servers) == 2
    old = sentinel_group.master_address()
    assert role(sentinel_group.server_at(old)) == "master"
    sentinel: Any = redis.sentinel.Sentinel(sentinel_group.sentinel_addresses, socket_timeout=2)
    try:
        assert sentinel.discover_master("mymaster") == old

        new = sentinel_group.failover()

        assert new != old
        assert sentinel.discover_master("mymaster") == new
        assert role(sentinel_group.server_at(new)) == "master"
        assert role(sentinel_group.server_at(old)) == "slave"  # demoted, not a second master
    finally:
        for s in sentinel.sentinels:
            s.close()


# -- Cluster ---------------------------------------------------------------------------------


def test_cluster_is_ok_and_serves_keys_in_different_slots(
    cluster: ClusterGroup, key_prefix: str
) -> None:
    assert cluster.url.startswith("redis+cluster://127.0.0.1:")
    assert len(cluster.nodes) == 6
    assert len(cluster.master_nodes()) == 3
    for node in cluster.nodes:
        with node.client(decode_responses=True) as c:
            assert "cluster_state:ok" in c.execute_command("CLUSTER", "INFO")
    keys = [f"{key_prefix}{i}" for i in range(30)]
    assert len({key_slot(k.encode()) for k in keys}) > 1
    with redis.cluster.RedisCluster(host="127.0.0.1", port=cluster.nodes[0].port) as rc:
        for i, k in enumerate(keys):
            rc.set(k, str(i))
        assert [rc.get(k) for k in keys] == [str(i).encode() for i in range(30)]
        owners = {rc.get_node_from_key(k).port for k in keys}
        assert len(owners) > 1
        rc.delete(*keys)


def test_cluster_failover_promotes_a_replica(cluster: ClusterGroup, key_prefix: str) -> None:
    old = cluster.master_nodes()[0]
    new = cluster.failover(old)
    assert new is not old
    masters = cluster.master_nodes()
    assert new in masters and old not in masters
    assert role(old) == "slave"
    with cluster.client() as rc:
        rc.set(key_prefix + "after", b"1")
        assert rc.get(key_prefix + "after") == b"1"
