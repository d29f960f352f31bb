"""ClusterGroup.start() and wait_ready(): every node knows every other node's role.

Before, "ready" only counted masters serving slots, so a node could still list a freshly
attached replica as a master without slots; ``failover(node)`` right after ``start()`` then
found no replica of ``node`` and raised ValueError.
"""

from __future__ import annotations

from rcache._server_cluster import _parse_nodes
from rcache.server import ClusterGroup


def _roles(cluster: ClusterGroup) -> list[tuple[int, int, int]]:
    """Return, per node: its port, the masters and the replicas it sees."""
    out = []
    for node in cluster.nodes:
        with node.client(decode_responses=True) as c:
            views = _parse_nodes(c.execute_command("CLUSTER", "NODES"))
        masters = sum(1 for v in views if "master" in v.flags)
        replicas = sum(1 for v in views if "slave" in v.flags and v.master_id is not None)
        out.append((node.port, masters, replicas))
    return out


def test_a_started_cluster_is_seen_alike_by_every_node_and_can_fail_over_at_once() -> None:
    with ClusterGroup() as cluster:
        assert _roles(cluster) == [(node.port, 3, 3) for node in cluster.nodes]
        old = cluster.nodes[0]
        new = cluster.failover(old)  # at once: its replica is known to be one
        assert new is not old and new in cluster.master_nodes()
        assert old not in cluster.master_nodes()
