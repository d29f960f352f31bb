"""Decorated functions imported both by the tests and by a subprocess (key stability)."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

from rcache.adapter import RedisAdapter
from rcache.objects import ObjectCache

# Computing a key never talks to Redis, so this adapter is never connected.
cache = ObjectCache(RedisAdapter.from_url("redis://127.0.0.1:1/0"), prefix="keys")


class Color(enum.Enum):
    RED = "red"


@cache.cached
def lookup(a: Any, b: Any = None, *rest: Any, **options: Any) -> None:
    """Never called: only its keys are computed."""


SAMPLE_ARGS: tuple[Any, ...] = (
    {"z": 1, "a": [1, 2.5, None, True], "m": {"nested": (1, "x")}},
    frozenset({"b", "a", "c", "d", "e"}),
    {3, 1, 2, "x", b"y"},
    dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC),
    dt.date(2024, 5, 6),
    Decimal("1.10"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    Color.RED,
)
SAMPLE_KWARGS: dict[str, Any] = {"zeta": "ünï", "alpha": b"\x00\x01", "beta": -7}


def sample_key() -> str:
    return lookup.key_for(*SAMPLE_ARGS, **SAMPLE_KWARGS)
