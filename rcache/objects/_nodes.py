"""Cluster SCAN glue: one page of one primary, for the scan operations.

Batches cannot target a node, so :mod:`rcache.objects._scan` asks these scanners (through
:class:`~rcache.ops.Call`) for the primaries and for a page of one of them. Errors are
returned translated, never raised, so the operation handles them like a failed batch.
The two classes are the blocking and the asyncio variant of the same two calls.
"""

from __future__ import annotations

from typing import Any

import redis.exceptions as rex

from rcache.adapter import AsyncRedisAdapter, RedisAdapter, translate_error

__all__ = ["AsyncClusterScanner", "ClusterScanner"]


def _page(reply: Any) -> tuple[int, list[bytes]]:
    cursors, keys = reply  # redis-py Cluster: ({node name: cursor}, keys)
    return int(next(iter(cursors.values()))), list(keys)


class ClusterScanner:
    """:class:`~rcache.objects._context.NodeScanner` over a blocking Cluster adapter."""

    __slots__ = ("_adapter",)

    def __init__(self, adapter: RedisAdapter) -> None:
        self._adapter = adapter

    def primaries(self) -> Any:
        try:
            return list(self._adapter.client.get_primaries())
        except (rex.RedisError, OSError) as exc:
            return translate_error(exc)

    def scan(self, node: Any, cursor: int, match: str, count: int) -> Any:
        self._adapter.stats.round_trips += 1
        try:
            reply = self._adapter.client.scan(
                cursor=cursor, match=match, count=count, target_nodes=node
            )
        except (rex.RedisError, OSError) as exc:
            return translate_error(exc)
        return _page(reply)


class AsyncClusterScanner:
    """:class:`~rcache.objects._context.NodeScanner` over an asyncio Cluster adapter."""

    __slots__ = ("_adapter",)

    def __init__(self, adapter: AsyncRedisAdapter) -> None:
        self._adapter = adapter

    async def primaries(self) -> Any:
        try:
            client = self._adapter.client
            await client.initialize()
            return list(client.get_primaries())
        except (rex.RedisError, OSError) as exc:
            return translate_error(exc)

    async def scan(self, node: Any, cursor: int, match: str, count: int) -> Any:
        self._adapter.stats.round_trips += 1
        try:
            reply = await self._adapter.client.scan(
                cursor=cursor, match=match, count=count, target_nodes=node
            )
        except (rex.RedisError, OSError) as exc:
            return translate_error(exc)
        return _page(reply)
