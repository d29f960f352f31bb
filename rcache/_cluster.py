"""Split multi-key commands per hash slot, so one batch works on Redis Cluster.

A batch may say ``("MGET", k1, k2, ...)`` or ``("UNLINK", ...)`` over keys in many slots;
Cluster refuses that with CROSSSLOT. :func:`split_commands` turns each such command into one
command per slot (all sent in the same pipelined round trip, one per node) and returns a
function that puts the replies back in the shape the operation asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from redis.crc import key_slot

from rcache.ops import Command

__all__ = ["split_commands"]

_SUMMED = {"DEL", "UNLINK", "EXISTS", "TOUCH"}


def _slot(key: Any) -> int:
    if isinstance(key, str):
        key = key.encode()
    return int(key_slot(key))


def _group(keys: Sequence[Any]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(_slot(key), []).append(i)
    return groups


def split_commands(
    commands: Sequence[Command],
) -> tuple[list[Command], Callable[[list[Any]], list[Any]]] | None:
    """Return per-slot commands and a merge function, or None when nothing needs splitting."""
    plan: list[tuple[str, int, Any]] = []  # (kind, how many sent commands, extra)
    out: list[Command] = []
    changed = False
    for cmd in commands:
        name = str(cmd[0]).upper()
        if name == "MGET" or name in _SUMMED:
            groups = _group(cmd[1:])
            if len(groups) > 1:
                changed = True
                order = list(groups.values())
                out.extend((cmd[0], *(cmd[1 + i] for i in idx)) for idx in order)
                plan.append(("mget" if name == "MGET" else "sum", len(order), order))
                continue
        elif name == "MSET":
            keys = cmd[1::2]
            groups = _group(keys)
            if len(groups) > 1:
                changed = True
                for idx in groups.values():
                    args: list[Any] = []
                    for i in idx:
                        args += [cmd[1 + 2 * i], cmd[2 + 2 * i]]
                    out.append((cmd[0], *args))
                plan.append(("all", len(groups), None))
                continue
        out.append(cmd)
        plan.append(("one", 1, None))
    if not changed:
        return None

    def merge(replies: list[Any]) -> list[Any]:
        merged: list[Any] = []
        pos = 0
        for kind, n, extra in plan:
            part = replies[pos : pos + n]
            pos += n
            err = next((r for r in part if isinstance(r, BaseException)), None)
            if err is not None:
                merged.append(err)
            elif kind == "one":
                merged.append(part[0])
            elif kind == "sum":
                merged.append(sum(int(r) for r in part))
            elif kind == "all":
                merged.append(all(part))
            else:  # mget: scatter each group's values back to the keys' positions
                values: list[Any] = [None] * sum(len(idx) for idx in extra)
                for idx, reply in zip(extra, part, strict=True):
                    for i, value in zip(idx, reply, strict=True):
                        values[i] = value
                merged.append(values)
        return merged

    return out, merge
