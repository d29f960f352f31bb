"""A private Redis Cluster: :class:`ClusterGroup` (re-exported by rcache.server)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import redis
import redis.cluster
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from rcache._server_process import call_all, describe_error, wait_until
from rcache._server_redis import HOST, RedisServer
from rcache.errors import ConfigurationError

__all__ = ["ClusterGroup"]

log = logging.getLogger("rcache.server")

SLOTS = 16384


@dataclass(frozen=True)
class _NodeView:
    """One line of CLUSTER NODES."""

    node_id: str
    port: int
    flags: frozenset[str]
    master_id: str | None
    connected: bool
    slots: int


def _parse_nodes(text: str) -> list[_NodeView]:
    views = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address = fields[1].split("@", 1)[0]
        port = int(address.rsplit(":", 1)[1]) if ":" in address else 0
        slots = 0
        for item in fields[8:]:
            if item.startswith("["):
                continue  # a slot being imported or migrated
            low, _, high = item.partition("-")
            slots += int(high or low) - int(low) + 1
        views.append(
            _NodeView(
                node_id=fields[0],
                port=port,
                flags=frozenset(fields[2].split(",")),
                master_id=None if fields[3] == "-" else fields[3],
                connected=fields[7] == "connected",
                slots=slots,
            )
        )
    return views


def _parse_info(text: str) -> dict[str, str]:
    pairs = (line.partition(":") for line in text.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, _, v in pairs}


class ClusterGroup:
    """A Redis Cluster of private nodes on 127.0.0.1: ``masters`` x (1 + ``replicas_per_master``).

    Slots are split evenly over the first ``masters`` nodes; the others are their replicas.
    :meth:`start` returns once every node reports ``cluster_state:ok`` with all 16384 slots
    served, knows every other node with its role, and every replica is in sync.
    """

    def __init__(
        self,
        *,
        masters: int = 3,
        replicas_per_master: int = 1,
        appendonly: bool = False,
        node_timeout_ms: int = 2000,
        startup_timeout: float = 30.0,
    ) -> None:
        """Describe the cluster; nothing runs until :meth:`start`.

        ``node_timeout_ms`` is ``cluster-node-timeout`` (milliseconds); ``startup_timeout``
        (seconds) bounds the wait for the whole cluster to be ready.
        """
        if masters < 1 or replicas_per_master < 0:
            raise ConfigurationError("a ClusterGroup needs masters >= 1, replicas_per_master >= 0")
        self._n_masters = masters
        self._n_replicas = replicas_per_master
        self._appendonly = appendonly
        self._node_timeout_ms = node_timeout_ms
        self._startup_timeout = startup_timeout
        self._nodes: list[RedisServer] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the nodes, assign slots, join them and attach the replicas; return self.

        On any failure everything started so far is stopped before the error is raised.
        """
        if self._nodes:
            return self
        try:
            for _ in range(self._n_masters * (1 + self._n_replicas)):
                self._nodes.append(self._new_node().start())
            self._create()
        except BaseException:
            self.stop()
            raise
        log.info("started cluster at %s", self.url)
        return self

    def stop(self) -> None:
        """Stop every node (replicas first) and remove their directories."""
        nodes, self._nodes = sorted(self._nodes, key=self._is_master), []
        call_all(node.stop for node in nodes)

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
        if not self._nodes:
            return f"ClusterGroup(masters={self._n_masters}, not started)"
        return f"ClusterGroup(url={self.url!r}, {len(self._nodes)} nodes)"

    # -- addresses -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Return ``redis+cluster://127.0.0.1:P1,...`` with the nodes first given the slots."""
        seeds = self._nodes[: self._n_masters]
        return "redis+cluster://" + ",".join(f"{HOST}:{n.port}" for n in seeds)

    @property
    def nodes(self) -> list[RedisServer]:
        """Return every node, the first ``masters`` of them the masters at start."""
        return list(self._nodes)

    def master_nodes(self) -> list[RedisServer]:
        """Return the running nodes that are masters now (ROLE), in :attr:`nodes` order."""
        return [n for n in self._nodes if self._is_master(n)]

    def node_at(self, address: tuple[str, int]) -> RedisServer:
        """Return the node listening on ``address``; KeyError if none of ours does."""
        for node in self._nodes:
            if node.port == int(address[1]):
                return node
        raise KeyError(f"no node of this cluster at {address[0]}:{address[1]}")

    def client(self, **kwargs: Any) -> redis.cluster.RedisCluster:
        """Return a redis-py RedisCluster client, seeded by a running node; the caller closes it."""
        seed = next((n for n in self._nodes if n.is_running()), None)
        if seed is None:
            raise RuntimeError(f"{self!r} has no running node")
        return redis.cluster.RedisCluster(host=HOST, port=seed.port, **kwargs)

    # -- failures --------------------------------------------------------------------------

    def failover(self, node: RedisServer, timeout: float = 15.0) -> RedisServer:
        """Promote a replica of master ``node`` with CLUSTER FAILOVER; return the new master.

        Waits (``timeout`` s) until every running node sees the replica as a master with the
        slots and ``cluster_state:ok`` again. ``node`` must be a master with a running replica.
        """
        old_id = self._call(node, "CLUSTER", "MYID")
        candidates = [
            v
            for v in _parse_nodes(self._call(node, "CLUSTER", "NODES"))
            if v.master_id == old_id and "fail" not in v.flags and v.connected
        ]
        replica = next(
            (n for v in candidates for n in self._nodes if n.port == v.port and n.is_running()),
            None,
        )
        if replica is None:
            raise ValueError(f"{node!r} is not a master with a running, connected replica")
        self._call(replica, "CLUSTER", "FAILOVER")
        new_id = self._call(replica, "CLUSTER", "MYID")

        def promoted(view: _NodeView) -> bool:
            return view.node_id == new_id and "master" in view.flags and view.slots > 0

        self._wait_ready(timeout, extra=promoted, what=f"{HOST}:{replica.port} to take over")
        log.info("cluster failover: %s:%d -> %s:%d", HOST, node.port, HOST, replica.port)
        return replica

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until every running node reports the cluster ok, all slots served, in sync."""
        self._wait_ready(timeout)

    # -- internals -------------------------------------------------------------------------

    def _new_node(self) -> RedisServer:
        return RedisServer(
            cluster=True,
            appendonly=self._appendonly,
            config={
                "cluster-node-timeout": str(self._node_timeout_ms),
                "repl-diskless-sync-delay": "0",
            },
        )

    @staticmethod
    def _call(node: RedisServer, *command: Any) -> Any:
        with node.client(
            decode_responses=True, socket_timeout=5.0, retry=Retry(NoBackoff(), 0)
        ) as c:
            return c.execute_command(*command)

    def _is_master(self, node: RedisServer) -> bool:
        if not node.is_running():
            return False
        try:
            return bool(self._call(node, "ROLE")[0] == "master")
        except redis.exceptions.RedisError:
            return False

    def _create(self) -> None:
        """Assign slots, join the nodes and attach the replicas, by hand (no redis-cli)."""
        masters = self._nodes[: self._n_masters]
        ids = [self._call(n, "CLUSTER", "MYID") for n in self._nodes]
        for epoch, node in enumerate(self._nodes, start=1):
            self._call(node, "CLUSTER", "SET-CONFIG-EPOCH", epoch)  # distinct epochs, no bumps
        for i, node in enumerate(masters):
            low, high = i * SLOTS // len(masters), (i + 1) * SLOTS // len(masters) - 1
            self._call(node, "CLUSTER", "ADDSLOTSRANGE", low, high)
        first = self._nodes[0]
        for node in self._nodes[1:]:
            self._call(first, "CLUSTER", "MEET", HOST, node.port, node.cluster_bus_port)

        def all_known() -> bool:
            for node in self._nodes:
                views = _parse_nodes(self._call(node, "CLUSTER", "NODES"))
                if len(views) != len(self._nodes) or any("handshake" in v.flags for v in views):
                    return False
            return True

        wait_until(all_known, timeout=self._startup_timeout, what="the cluster nodes to meet")
        for j, node in enumerate(self._nodes[self._n_masters :]):
            self._call(node, "CLUSTER", "REPLICATE", ids[j % self._n_masters])
        self._wait_ready(self._startup_timeout)

    def _wait_ready(
        self,
        timeout: float,
        *,
        extra: Callable[[_NodeView], bool] | None = None,
        what: str = "the cluster to be ready",
    ) -> None:
        problems: list[str] = []

        def check() -> bool:
            problems[:] = self._problems(extra)
            return not problems

        wait_until(
            check,
            timeout=timeout,
            what=what,
            state=lambda: "; ".join(problems),
            interval=0.1,
        )

    def _problems(self, extra: Callable[[_NodeView], bool] | None) -> list[str]:
        """Return what keeps the cluster from being ready (empty: ready)."""
        problems: list[str] = []
        running = [n for n in self._nodes if n.is_running()]
        expected_masters = self._n_masters
        for node in running:
            where = f"node {node.port}"
            try:
                info = _parse_info(self._call(node, "CLUSTER", "INFO"))
                views = _parse_nodes(self._call(node, "CLUSTER", "NODES"))
                replication = self._call(node, "INFO", "replication")
            except redis.exceptions.RedisError as exc:
                problems.append(f"{where}: {describe_error(exc)}")
                continue
            if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != str(SLOTS):
                state = info.get("cluster_state"), info.get("cluster_slots_ok")
                problems.append(f"{where}: cluster_state/slots_ok {state}")
            alive = [v for v in views if "fail" not in v.flags and "fail?" not in v.flags]
            masters = [v for v in alive if "master" in v.flags and v.slots > 0]
            if len(masters) != expected_masters or sum(v.slots for v in masters) != SLOTS:
                problems.append(f"{where}: sees {len(masters)} masters serving slots")
            # Every node here is a master with slots or a replica: a master without slots is
            # a replica whose role this node has not heard of yet (gossip is still spreading).
            if empty := sorted(v.port for v in alive if "master" in v.flags and v.slots == 0):
                problems.append(f"{where}: sees {empty} as masters without slots")
            replicas_ok = all(v.master_id is not None for v in alive if "slave" in v.flags)
            if not replicas_ok or len(alive) < len(running):
                problems.append(f"{where}: sees {len(alive)} of {len(running)} running nodes")
            if extra is not None and not any(extra(v) for v in views):
                problems.append(f"{where}: does not see the new master yet")
            if replication.get("role") == "slave" and replication.get("master_link_status") != "up":
                problems.append(f"{where}: replica link {replication.get('master_link_status')}")
        return problems
