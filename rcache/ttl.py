"""Time to live: normalisation to milliseconds, jitter, sliding expiry, early refresh.

Every TTL rcache sends to Redis is a whole number of milliseconds (``PX``), built by
:func:`to_milliseconds` from what users write: seconds as ``int`` or ``float``, a
``timedelta``, ``None`` for "never expires", or :data:`DEFAULT` for "the backend's default".
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Final, TypeAlias

from rcache.errors import ConfigurationError

__all__ = [
    "DEFAULT",
    "MAX_TTL_MS",
    "TTL",
    "Default",
    "jittered",
    "sliding_expiry",
    "to_milliseconds",
    "xfetch_should_refresh",
]


class Default(enum.Enum):
    """The type of :data:`DEFAULT`, for annotations: ``ttl: TTL | Default = DEFAULT``.

    A one-member enum, so :data:`DEFAULT` is a singleton that survives ``copy`` and
    ``pickle``, and ``ttl is DEFAULT`` narrows the type for checkers.
    """

    DEFAULT = "DEFAULT"

    def __repr__(self) -> str:
        return "DEFAULT"

    __str__ = __repr__


DEFAULT: Final = Default.DEFAULT
"""Use the configured default TTL (distinct from ``None``, which means "never expires")."""

TTL: TypeAlias = int | float | timedelta | None
"""Seconds (``int`` or ``float``), a ``timedelta``, or ``None`` for no expiry."""

MAX_TTL_MS: Final = 2**62
"""The longest TTL accepted, in ms (about 146 million years); Redis refuses much more."""

_MICROSECOND: Final = timedelta(microseconds=1)


def to_milliseconds(ttl: TTL | Default, default: TTL | Default = DEFAULT) -> int | None:
    """Return ``ttl`` as whole milliseconds for ``PX``; None means "never expires".

    ``ttl``: seconds (``int`` or ``float``), a ``timedelta``, None, or :data:`DEFAULT` to use
    ``default`` instead (which is read by the same rules; a :data:`DEFAULT` with no
    ``default`` given raises). A TTL of zero or less gives ``0``, meaning "already expired":
    the caller deletes instead of writing. A positive TTL is rounded *up* to a whole
    millisecond, so it never becomes 0; a float is read as its shortest decimal form
    (``2.007`` is 2007 ms, although ``2.007 * 1000`` is 2007.0000000000002). ``bool``,
    ``str``, NaN, infinities, anything else and TTLs above :data:`MAX_TTL_MS` raise
    :class:`~rcache.errors.ConfigurationError`.
    """
    if ttl is DEFAULT:
        if default is DEFAULT:
            raise ConfigurationError("the TTL is DEFAULT but no default TTL was given")
        ttl = default
    if ttl is None:
        return None
    if isinstance(ttl, bool):
        raise ConfigurationError(f"a TTL cannot be a bool ({ttl!r}); use seconds or None")
    if isinstance(ttl, int):
        ms = int(ttl) * 1000
    elif isinstance(ttl, float):
        if not math.isfinite(ttl):
            raise ConfigurationError(f"a TTL must be finite, got {ttl!r}; use None for no expiry")
        ms = math.ceil(Decimal(float.__repr__(ttl)) * 1000) if ttl > 0 else 0
    elif isinstance(ttl, timedelta):
        ms = -(-(ttl // _MICROSECOND) // 1000)
    else:
        raise ConfigurationError(
            "a TTL must be seconds (int or float), a timedelta, None or DEFAULT, "
            f"got {type(ttl).__name__}"
        )
    if ms <= 0:
        return 0
    if ms > MAX_TTL_MS:
        raise ConfigurationError(f"a TTL of {ttl!r} is too long; use None for no expiry")
    return ms


def jittered(ms: int, fraction: float = 0.1, rand: Callable[[], float] = random.random) -> int:
    """Return ``ms`` moved by a random amount within ``+-fraction`` of it, at least 1 ms.

    Entries written together (a deploy, a warm-up) would otherwise expire together and be
    recomputed together; jitter spreads their expiry. ``rand()`` returns a float in [0, 1);
    the result is ``ms + round(ms * fraction * (2 * rand() - 1))``. ``0`` ("already
    expired") is returned unchanged; ``fraction`` must be within [0, 1].
    """
    if isinstance(ms, bool) or not isinstance(ms, int) or ms < 0:
        raise ConfigurationError(f"jittered() needs a TTL in ms as an int >= 0, got {ms!r}")
    if not 0.0 <= fraction <= 1.0:
        raise ConfigurationError(f"jitter fraction must be within [0, 1], got {fraction!r}")
    if ms == 0:
        return 0
    return max(1, ms + round(ms * fraction * (2.0 * rand() - 1.0)))


def sliding_expiry(
    idle_ms: int | None, absolute_deadline_ms: float | None, now_ms: float
) -> int | None:
    """Return the TTL in ms to set when an entry is read, for an idle timeout with a cap.

    ``idle_ms``: the entry lives this long after its last read (None = no idle timeout).
    ``absolute_deadline_ms``: the moment it must be gone whatever the reads (None = none),
    on the same clock as ``now_ms`` (e.g. Unix time in ms). The result is
    ``min(idle_ms, ceil(deadline - now))``; ``0`` once the deadline has passed (delete the
    entry); None when neither limit is set (remove any expiry).
    """
    if idle_ms is not None and (isinstance(idle_ms, bool) or idle_ms < 0):
        raise ConfigurationError(f"idle_ms must be an int >= 0 or None, got {idle_ms!r}")
    if absolute_deadline_ms is None:
        return idle_ms
    left = absolute_deadline_ms - now_ms
    if not math.isfinite(left):
        raise ConfigurationError("absolute_deadline_ms and now_ms must be finite")
    if left <= 0:
        return 0
    cap = math.ceil(left)
    return cap if idle_ms is None else min(idle_ms, cap)


def xfetch_should_refresh(
    *,
    compute_ms: float,
    ttl_remaining_ms: float,
    beta: float = 1.0,
    rand: Callable[[], float] = random.random,
) -> bool:
    """Return whether to recompute a cached value now, before it expires (XFetch).

    The rule of Vattani, Chierichetti and Lowenstein, "Optimal Probabilistic Cache Stampede
    Prevention", PVLDB 8(8), 2015: with ``delta`` = ``compute_ms`` (how long the value
    took to compute) and ``u = rand()`` uniform in (0, 1), refresh when::

        -delta * beta * ln(u) >= ttl_remaining_ms

    ``-ln(u)`` is exponentially distributed, so a reader refreshes with probability
    ``exp(-ttl_remaining_ms / (delta * beta))``: almost never while expiry is far, more and
    more often as it nears, so usually one reader recomputes ahead of expiry instead of
    every reader at once after it. ``beta > 1`` favours earlier refreshes, ``beta < 1``
    later ones; 1 is optimal in the paper's model.

    Times are in ms. ``ttl_remaining_ms`` is the PTTL reply when it is >= 0 (pass
    ``math.inf`` for a key without expiry: never refreshed early); ``<= 0`` always refreshes.
    ``compute_ms`` or ``beta`` of 0 never refreshes early. ``u == 0`` counts as a refresh
    (the limit of the rule: ``-ln(0)`` is infinite).
    """
    if not math.isfinite(compute_ms) or compute_ms < 0:
        raise ConfigurationError(f"compute_ms must be finite and >= 0, got {compute_ms!r}")
    if not math.isfinite(beta) or beta < 0:
        raise ConfigurationError(f"beta must be finite and >= 0, got {beta!r}")
    if math.isnan(ttl_remaining_ms):
        raise ConfigurationError("ttl_remaining_ms is NaN")
    if ttl_remaining_ms <= 0:
        return True
    if compute_ms == 0 or beta == 0 or ttl_remaining_ms == math.inf:
        return False
    u = rand()
    if u <= 0.0:
        return True
    return -compute_ms * beta * math.log(u) >= ttl_remaining_ms
