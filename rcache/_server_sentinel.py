"""A private Sentinel setup: :class:`SentinelGroup` (re-exported by rcache.server)."""

from __future__ import annotations

import functools
import logging
import shutil
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from rcache._server_process import (
    BindError,
    ManagedProcess,
    answers_as,
    call_all,
    conf_line,
    describe_error,
    find_free_port,
    launch,
    make_temp_dir,
    remove_temp_dir,
    stop_processes,
    wait_until,
)
from rcache._server_redis import HOST, RedisServer
from rcache.errors import ConfigurationError

__all__ = ["SentinelGroup"]

log = logging.getLogger("rcache.server")

Address = tuple[str, int]

# Data nodes start replicating at once instead of after the default 5 s diskless delay.
_NODE_CONFIG = {"repl-diskless-sync-delay": "0"}
_RETRYABLE_FAILOVER_ERRORS = ("NOGOODSLAVE", "INPROG")


def _client(port: int, **kwargs: Any) -> redis.Redis:
    opts: dict[str, Any] = {
        "host": HOST,
        "port": port,
        "decode_responses": True,
        "socket_connect_timeout": 1.0,
        "socket_timeout": 2.0,
        "retry": Retry(NoBackoff(), 0),
    }
    opts.update(kwargs)
    return redis.Redis(**opts)


def _records(reply: Any) -> list[dict[str, str]]:
    """Return SENTINEL REPLICAS/SENTINELS entries as dicts, whether redis-py parsed them or not."""
    out = []
    for item in reply or []:
        if isinstance(item, Mapping):
            out.append({str(k): str(v) for k, v in item.items()})
        else:
            out.append({str(k): str(v) for k, v in zip(item[::2], item[1::2], strict=True)})
    return out


class _Sentinel:
    """One ``redis-sentinel`` process with its own directory and writable config file."""

    def __init__(self, *, monitor: list[str], binary: str | None) -> None:
        self._monitor = monitor  # the "sentinel ..." lines
        self._binary = binary
        self.port = 0
        self.dir: Path | None = None
        self.proc: ManagedProcess | None = None

    def start(self, timeout: float) -> None:
        """Write the config on a free port and start; wait ``timeout`` s for PING."""
        self.dir = make_temp_dir("rcs-")
        conf = self.dir / "sentinel.conf"
        if self._binary is not None:
            argv = [self._binary, str(conf)]
        else:
            argv = ["redis-server", str(conf), "--sentinel"]
        for attempt in range(5):
            self.port = find_free_port()
            lines = [
                "# One private redis-sentinel, written by rcache.server.",
                conf_line("bind", HOST),
                conf_line("port", self.port),
                conf_line("daemonize", "no"),
                conf_line("dir", self.dir),
                conf_line("logfile", self.dir / "sentinel.log"),
                *self._monitor,
            ]
            conf.write_text("\n".join(lines) + "\n")
            conf.chmod(0o600)
            probe = _client(self.port, socket_connect_timeout=0.5, socket_timeout=0.5)
            try:
                self.proc = launch(
                    argv,
                    name="redis-sentinel",
                    log_path=self.dir / "sentinel.log",
                    stderr_path=self.dir / "stderr.log",
                    probe=functools.partial(answers_as, probe),
                    timeout=timeout,
                )
                return
            except BindError:
                if attempt == 4:
                    raise
            finally:
                probe.close()

    def stop_dir(self) -> None:
        """Remove the directory (the process must have been stopped)."""
        if self.dir is not None:
            remove_temp_dir(self.dir)
            self.dir = None

    def is_running(self) -> bool:
        """Return True while the process is alive."""
        return self.proc is not None and self.proc.is_running()


class SentinelGroup:
    """A master, its replicas and N Sentinels, all private processes on 127.0.0.1.

    :meth:`start` returns once every Sentinel agrees on the master and knows every replica
    and every other Sentinel, and every replica is in sync. The data nodes are
    :class:`RedisServer` objects (:attr:`servers`), so tests can stop, kill or restart them.
    """

    def __init__(
        self,
        *,
        service_name: str = "mymaster",
        replicas: int = 1,
        sentinels: int = 3,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 5000,
        password: str | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        """Describe the group; nothing runs until :meth:`start`.

        ``down_after_ms`` and ``failover_timeout_ms`` (milliseconds) go to every Sentinel;
        ``password`` protects the data nodes (Sentinels get it as ``auth-pass``);
        ``startup_timeout`` (seconds) bounds the wait for the whole group to be ready.
        """
        if replicas < 0 or sentinels < 1:
            raise ConfigurationError("a SentinelGroup needs replicas >= 0 and sentinels >= 1")
        if not service_name or any(c.isspace() for c in service_name):
            raise ConfigurationError(f"bad service name {service_name!r}")
        self._name = service_name
        self._n_replicas = replicas
        self._n_sentinels = sentinels
        self._appendonly = appendonly
        self._appendfsync = appendfsync
        self._down_after_ms = down_after_ms
        self._failover_timeout_ms = failover_timeout_ms
        self._password = password
        self._startup_timeout = startup_timeout
        self._servers: list[RedisServer] = []
        self._sentinels: list[_Sentinel] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Start every process and wait until the group is ready; return self.

        On any failure everything started so far is stopped before the error is raised.
        """
        if self._servers:
            return self
        try:
            master = self._new_node(None).start()
            self._servers.append(master)
            for _ in range(self._n_replicas):
                self._servers.append(self._new_node((HOST, master.port)).start())
            binary = shutil.which("redis-sentinel")
            quorum = self._n_sentinels // 2 + 1
            monitor = self._monitor_lines(master.port, quorum)
            for _ in range(self._n_sentinels):
                sentinel = _Sentinel(monitor=monitor, binary=binary)
                self._sentinels.append(sentinel)
                sentinel.start(self._startup_timeout)
            self._wait_ready((HOST, master.port), self._startup_timeout)
        except BaseException:
            self.stop()
            raise
        log.info("started Sentinel group %s at %s", self._name, self.url)
        return self

    def stop(self) -> None:
        """Stop the Sentinels, then the data nodes (replicas first); remove every directory."""
        sentinels, servers = self._sentinels, sorted(self._servers, key=self._is_master)
        self._sentinels, self._servers = [], []
        call_all(
            [
                lambda: stop_processes(s.proc for s in sentinels if s.proc is not None),
                *(s.stop_dir for s in sentinels),
                *(s.stop for s in servers),
            ]
        )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        if not self._servers:
            return f"SentinelGroup(service_name={self._name!r}, not started)"
        ports = ",".join(str(s.port) for s in self._servers)
        return f"SentinelGroup(url={self.url!r}, data ports {ports})"

    # -- addresses -------------------------------------------------------------------------

    @property
    def service_name(self) -> str:
        """Return the name the Sentinels monitor the master under."""
        return self._name

    @property
    def url(self) -> str:
        """Return ``redis+sentinel://[:password@]127.0.0.1:P1,.../SERVICE``."""
        auth = f":{quote(self._password, safe='')}@" if self._password else ""
        hosts = ",".join(f"{h}:{p}" for h, p in self.sentinel_addresses)
        return f"redis+sentinel://{auth}{hosts}/{self._name}"

    @property
    def sentinel_addresses(self) -> list[Address]:
        """Return the ``(host, port)`` of every Sentinel."""
        return [(HOST, s.port) for s in self._sentinels]

    @property
    def servers(self) -> list[RedisServer]:
        """Return every data node (master and replicas, in start order)."""
        return list(self._servers)

    def server_at(self, address: Address) -> RedisServer:
        """Return the data node listening on ``address``; KeyError if none of ours does."""
        host, port = address
        for server in self._servers:
            if host in (HOST, "localhost") and server.port == int(port):
                return server
        raise KeyError(f"no data node of this group at {host}:{port}")

    def sentinel_client(self, index: int = 0) -> redis.Redis:
        """Return a redis-py client (str replies) to Sentinel ``index``; the caller closes it."""
        return _client(self._sentinels[index].port)

    def master_address(self) -> Address:
        """Return the master's address as the first Sentinel that answers reports it."""
        errors = []
        for sentinel in self._sentinels:
            if not sentinel.is_running():
                continue
            try:
                return self._ask_master(sentinel)
            except redis.exceptions.RedisError as exc:
                errors.append(f"{sentinel.port}: {describe_error(exc)}")
        raise RuntimeError(f"no Sentinel of {self._name} answered: {'; '.join(errors)}")

    # -- failures --------------------------------------------------------------------------

    def failover(self, timeout: float = 15.0) -> Address:
        """Run SENTINEL FAILOVER and wait (``timeout`` s) until it is done; return the new master.

        Done means every Sentinel reports the new master, which answers ROLE as master, and
        the group is settled again (see :meth:`wait_ready`). The old master is made a replica
        of the new one as soon as that one is promoted, before the Sentinels look at it again:
        Sentinel itself would leave it a master for several seconds, and a Sentinel that
        saw it acting as a master could later undo the next failover.
        """
        deadline = time.monotonic() + timeout
        old = self.master_address()
        old_node = self.server_at(old) if old[0] == HOST else None
        candidates = [s for s in self._servers if s.is_running() and s is not old_node]
        self._request_failover(deadline)

        def promoted() -> RedisServer | None:
            return next((s for s in candidates if self._is_master(s)), None)

        winner = wait_until(
            promoted,
            timeout=max(0.1, deadline - time.monotonic()),
            what=f"a replica of {self._name} to be promoted",
            interval=0.02,
        )
        if old_node is not None and self._is_master(old_node):
            self._make_replica(old_node, (HOST, winner.port))
        new = self.wait_for_master(not_address=old, timeout=max(0.1, deadline - time.monotonic()))
        self._demote_stray_masters(new)
        self._wait_ready(new, max(0.1, deadline - time.monotonic()))
        log.info("Sentinel failover of %s: %s:%d -> %s:%d", self._name, *old, *new)
        return new

    def kill_master(self, sig: int = signal.SIGKILL) -> Address:
        """Kill the current master's process (SIGKILL: a crash); return its address."""
        address = self.master_address()
        self.server_at(address).kill(sig)
        return address

    def wait_for_master(self, not_address: Address | None = None, timeout: float = 30.0) -> Address:
        """Wait until every running Sentinel reports the same master, other than
        ``not_address``, and that node answers ROLE as master; return its address.
        """
        views: dict[int, str] = {}

        def check() -> Address | None:
            views.clear()
            answers = set()
            for sentinel in self._sentinels:
                if sentinel.is_running():
                    try:
                        address = self._ask_master(sentinel)
                    except redis.exceptions.RedisError as exc:
                        views[sentinel.port] = describe_error(exc)
                        return None
                    views[sentinel.port] = f"{address[0]}:{address[1]}"
                    answers.add(address)
            if len(answers) != 1:
                return None
            (address,) = answers
            if address == not_address or not self._answers_as_master(address):
                return None
            return address

        return wait_until(
            check,
            timeout=timeout,
            what=f"a new master of {self._name} (not {not_address})",
            state=lambda: f"master per Sentinel port {views}",
            interval=0.1,
        )

    def wait_ready(self, timeout: float = 30.0) -> Address:
        """Wait until the group is settled around its current master; return its address.

        Settled: every running Sentinel reports that master, knows every other Sentinel and
        sees every running replica in sync; every other running data node replicates from the
        master with its link up. A data node still acting as a master (e.g. one restarted
        after a crash) is made a replica first. This may take up to ~10 s: Sentinel refreshes
        its view of a replica only that often.
        """
        deadline = time.monotonic() + timeout
        master = self.wait_for_master(timeout=timeout)
        self._demote_stray_masters(master)
        return self._wait_ready(master, max(0.1, deadline - time.monotonic()))

    # -- internals -------------------------------------------------------------------------

    def _new_node(self, replicaof: Address | None) -> RedisServer:
        return RedisServer(
            password=self._password,
            appendonly=self._appendonly,
            appendfsync=self._appendfsync,
            replicaof=replicaof,
            config=_NODE_CONFIG,
        )

    def _monitor_lines(self, master_port: int, quorum: int) -> list[str]:
        name = self._name
        lines = [
            conf_line("sentinel", "resolve-hostnames", "no"),
            conf_line("sentinel", "deny-scripts-reconfig", "yes"),
            conf_line("sentinel", "monitor", name, HOST, master_port, quorum),
            conf_line("sentinel", "down-after-milliseconds", name, self._down_after_ms),
            conf_line("sentinel", "failover-timeout", name, self._failover_timeout_ms),
            conf_line("sentinel", "parallel-syncs", name, 1),
        ]
        if self._password is not None:
            lines.append(conf_line("sentinel", "auth-pass", name, self._password))
        return lines

    def _node_client(self, port: int) -> redis.Redis:
        return _client(port, password=self._password)

    def _is_master(self, server: RedisServer) -> bool:
        if not server.is_running():
            return False
        try:
            with self._node_client(server.port) as c:
                return bool(c.execute_command("ROLE")[0] == "master")
        except redis.exceptions.RedisError:
            return False

    def _ask_master(self, sentinel: _Sentinel) -> Address:
        with _client(sentinel.port) as c:
            reply = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self._name)
        if not reply:
            raise redis.exceptions.ResponseError(f"Sentinel does not know {self._name}")
        return str(reply[0]), int(reply[1])

    def _answers_as_master(self, address: Address) -> bool:
        try:
            with self._node_client(address[1]) as c:
                return bool(c.execute_command("ROLE")[0] == "master")
        except redis.exceptions.RedisError:
            return False

    def _demote_stray_masters(self, master: Address) -> None:
        for server in self._servers:
            if server.port != master[1] and self._is_master(server):
                self._make_replica(server, master)

    def _make_replica(self, server: RedisServer, master: Address) -> None:
        """REPLICAOF ``master``, saved to the node's config file so a restart keeps it."""
        log.info("making %s:%d a replica of %s:%d", HOST, server.port, *master)
        with self._node_client(server.port) as c:
            c.execute_command("REPLICAOF", *master)
            c.execute_command("CONFIG", "REWRITE")

    def _request_failover(self, deadline: float) -> None:
        """Send SENTINEL FAILOVER to the first Sentinel that accepts it, retrying until
        ``deadline`` (monotonic) while each answers NOGOODSLAVE (no replica it sees in sync
        yet: a Sentinel refreshes its view of a replica only every few seconds) or INPROG.
        """
        while True:
            errors = []
            for sentinel in self._sentinels:
                if not sentinel.is_running():
                    continue
                try:
                    with _client(sentinel.port) as c:
                        c.execute_command("SENTINEL", "FAILOVER", self._name)
                    return
                except redis.exceptions.ResponseError as exc:
                    if not str(exc).startswith(_RETRYABLE_FAILOVER_ERRORS):
                        raise
                    errors.append(f"Sentinel {sentinel.port}: {exc}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Sentinel accepted SENTINEL FAILOVER: {'; '.join(errors)}")
            time.sleep(0.2)

    def _wait_ready(self, master: Address, timeout: float) -> Address:
        problems: list[str] = []

        def check() -> bool:
            problems[:] = self._problems(master)
            return not problems

        wait_until(
            check,
            timeout=timeout,
            what=f"Sentinel group {self._name} to settle on master {master[0]}:{master[1]}",
            state=lambda: "; ".join(problems),
            interval=0.1,
        )
        return master

    def _problems(self, master: Address) -> list[str]:
        """Return what keeps the group from being ready around ``master`` (empty: ready)."""
        problems: list[str] = []
        replicas = set()
        for server in self._servers:
            if not server.is_running():
                continue
            port = server.port
            try:
                with self._node_client(port) as c:
                    info = c.info("replication")
            except redis.exceptions.RedisError as exc:
                problems.append(f"node {port}: {describe_error(exc)}")
                continue
            if port == master[1]:
                if info.get("role") != "master":
                    problems.append(f"node {port}: role {info.get('role')}, not master")
                continue
            replicas.add(port)
            link = (
                info.get("role"),
                int(info.get("master_port", 0)),
                info.get("master_link_status"),
            )
            if link != ("slave", master[1], "up"):
                problems.append(f"node {port}: role/master port/link {link}")
        running = [s for s in self._sentinels if s.is_running()]
        in_sync_votes = dict.fromkeys(replicas, 0)
        for sentinel in running:
            where = f"Sentinel {sentinel.port}"
            try:
                with _client(sentinel.port) as c:
                    seen = self._ask_master(sentinel)
                    known = _records(c.execute_command("SENTINEL", "REPLICAS", self._name))
                    peers = _records(c.execute_command("SENTINEL", "SENTINELS", self._name))
            except redis.exceptions.RedisError as exc:
                problems.append(f"{where}: {describe_error(exc)}")
                continue
            if seen != master:
                problems.append(f"{where}: master {seen[0]}:{seen[1]}")
            listed = {int(r["port"]): r for r in known if r.get("flags") == "slave"}
            if missing := sorted(replicas - listed.keys()):
                problems.append(f"{where}: replicas {missing} unknown or down")
            for port in replicas & listed.keys():
                if listed[port].get("master-link-status") == "ok":
                    in_sync_votes[port] += 1
            peers_ok = sum(1 for p in peers if p.get("flags") == "sentinel")
            if peers_ok < len(running) - 1:
                problems.append(f"{where}: knows {peers_ok} of {len(running) - 1} other Sentinels")
        # Every Sentinel must have seen every replica as a replica in sync: a Sentinel that
        # last saw a node acting as a master (its view of a replica is refreshed only every
        # 10 s) would turn it back into a replica if a later failover promoted it.
        lagging = sorted(port for port, votes in in_sync_votes.items() if votes < len(running))
        if lagging:
            problems.append(f"replicas {lagging} not yet seen in sync by every Sentinel")
        return problems
