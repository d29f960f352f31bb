"""Operations written once, driven by a sync and an async adapter.

An operation is a generator that yields *effects* and receives their results::

    def get(ks: KeySpace, codec: Codec, key: str) -> Op[object]:
        (raw,) = yield Batch([("GET", ks.key(key))])     # one batch = one round trip
        return MISSING if raw is None else codec.decode(raw)

    value = adapter.run(get(ks, codec, "k"))            # RedisAdapter: blocking
    value = await aadapter.run(get(ks, codec, "k"))     # AsyncRedisAdapter: same plan

Effects:

- :class:`Batch`: commands sent in one pipelined round trip (one per slot on Cluster); the
  result is the list of replies. A failed batch is *thrown into* the generator as an
  :class:`~rcache.errors.RCacheError`, so an operation may catch it (fail open) or let it rise.
- :class:`Sleep`: wait (``time.sleep`` or ``asyncio.sleep``); the result is ``None``.
- :class:`Call`: call a user function; the async driver awaits it when it returns an awaitable.

Effects are named tuples: an operation creates one per step, so they must be cheap.
Nothing here does I/O; this module never imports ``redis``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any, NamedTuple, TypeAlias, TypeVar

__all__ = ["Batch", "Call", "Command", "Effect", "Op", "Sleep"]

T = TypeVar("T")

Command: TypeAlias = tuple[Any, ...]
"""One Redis command as its arguments, e.g. ``("SET", key, value, "PX", 1000)``."""


class Batch(NamedTuple):
    """Send ``commands`` in one round trip and resume with the list of replies.

    ``idempotent``: the batch may be sent again after a connection error or a timeout (it
    changes nothing when applied twice). Batches that count (INCR, LPUSH, ...) set it False
    and are then never retried, so a failure is reported instead of applied twice.

    ``raise_on_error``: when False, a command that Redis answered with an error appears in
    the reply list as a translated :class:`~rcache.errors.RCacheError` instead of failing
    the whole batch. Connection errors always fail the batch.
    """

    commands: Sequence[Command]
    idempotent: bool = True
    raise_on_error: bool = True


class Sleep(NamedTuple):
    """Pause for ``seconds`` without holding a connection."""

    seconds: float


class Call(NamedTuple):
    """Call ``fn(*args, **kwargs)``; awaited by the async driver if it returns an awaitable."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] | None = None


Effect: TypeAlias = Batch | Sleep | Call
Op: TypeAlias = Generator[Effect, Any, T]
"""An operation that returns ``T`` once every effect it yielded has been carried out."""
