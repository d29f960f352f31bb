"""Pure helpers of the session engine: custom expiry. No I/O.

(Changes made inside a value, ``request.session["cart"].append(1)``, are found by the
core's :func:`rcache.sessions._ops.changed_in_place`, which compares each value with the
bytes it was stored as: nothing is copied at load.)

Custom expiry (``request.session.set_expiry(value)``) is stored by Django under the session
key ``"_session_expiry"``; the engine maps it onto the Redis TTL of the session hash, which
the core otherwise keeps at ``min(idle timeout, time left of the absolute lifetime)``:

=====================  ==================================================================
value                  effect in Redis
=====================  ==================================================================
None, missing, 0       the configured lifetimes (0 only makes Django's cookie end with
                       the browser)
int seconds > 0        the session ends that long after its last load or save, if
                       sooner than the configured idle timeout (it cannot be longer)
datetime / timedelta   the session ends at that moment, if sooner than its configured
                       end; loading it after that moment finds nothing
negative, or past      the session is deleted when saved
=====================  ==================================================================
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from rcache.ops import Command

__all__ = ["EXPIRY_KEY", "expiry_command"]

#: Where Django's SessionBase.set_expiry() keeps a custom expiry.
EXPIRY_KEY = "_session_expiry"


def _aware(moment: datetime) -> datetime:
    # A naive datetime is local time (Django's timezone.now() without USE_TZ).
    return moment if moment.tzinfo is not None else moment.astimezone()


def _deadline(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return _aware(value)
    if isinstance(value, str):
        try:
            return _aware(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _ms_left(value: Any, now: datetime) -> int | None:
    """Milliseconds the custom expiry leaves, or None when there is none."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        if value == 0 or not math.isfinite(value):
            return None
        return int(value * 1000)
    deadline = _deadline(value)
    if deadline is None:
        return None
    return math.floor((deadline - _aware(now)).total_seconds() * 1000)


def expiry_command(key: str, value: Any, now: datetime, idle_ms: int) -> Command | None:
    """Return the command that applies custom expiry ``value`` to session hash ``key``.

    None when nothing is to be done (no custom expiry, or one longer than the configured
    idle timeout). ``PEXPIRE ... LT`` only ever shortens the TTL, so the absolute
    lifetime still holds.
    """
    ms = _ms_left(value, now)
    if ms is None:
        return None
    if ms <= 0:
        return ("DEL", key)
    if ms >= idle_ms and not isinstance(value, str | datetime):
        return None  # an idle timeout at least the configured one changes nothing
    return ("PEXPIRE", key, ms, "LT")
