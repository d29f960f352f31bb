"""What the page cache operations share: settings, per-view options, the lookup result. Pure."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from rcache.errors import ConfigurationError
from rcache.pages._failures import Failures
from rcache.pages._layout import Layout
from rcache.pages._memo import LookupMemo
from rcache.pages._render import XCache
from rcache.pages.model import Response, StoredEntry
from rcache.pages.policy import PageCachePolicy

if TYPE_CHECKING:
    from rcache.adapter import AdapterStats

__all__ = ["LookupResult", "PageContext", "StoreOptions", "Ticket", "seconds"]


def seconds(value: float | timedelta, name: str) -> float:
    """Return ``value`` (seconds or a timedelta) as finite float seconds, or raise."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a finite number of seconds, got {value!r}")
    return float(value)


@dataclass(slots=True, eq=False)
class PageContext:
    """Everything an operation needs besides the adapter.

    ``lease_ms``: the single-flight lease. ``wait_timeout``: seconds a request waits for
    another one producing the same page. ``clock``: epoch seconds (a seam for tests).
    ``memo``: what this process learned from earlier lookups (see :mod:`rcache.pages._memo`).
    """

    policy: PageCachePolicy
    layout: Layout
    failures: Failures
    stats: AdapterStats
    lease_ms: int
    wait_timeout: float
    clock: Callable[[], float] = time.time
    memo: LookupMemo = field(default_factory=LookupMemo)


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """What one view asks of the cache (see :meth:`rcache.pages.PageCache.handle`)."""

    ttl: float | None = None
    tags: tuple[str, ...] = ()
    allow_set_cookie: bool | None = None
    vary: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        ttl: float | timedelta | None,
        tags: Iterable[str],
        allow_set_cookie: bool | None,
        vary: Sequence[str],
    ) -> StoreOptions:
        """Return validated options."""
        if isinstance(tags, str) or isinstance(vary, str):
            raise TypeError("tags and vary must be sequences of str, not a single str")
        tag_list = tuple(dict.fromkeys(tags))
        if not all(isinstance(tag, str) and tag for tag in tag_list):
            raise TypeError("every tag must be a non-empty str")
        return cls(
            None if ttl is None else seconds(ttl, "ttl"), tag_list, allow_set_cookie, tuple(vary)
        )


DEFAULT_OPTIONS = StoreOptions()


@dataclass(frozen=True, slots=True)
class Ticket:
    """What :func:`~rcache.pages._store.store` needs to know about the lookup before it.

    ``token``: the lease this request holds (None: none). ``epoch``: the purge clock read
    before the view ran (None: the response must not be stored). ``stale``: an entry to
    serve if the view fails.
    """

    url_key: str
    lock_key: str
    token: bytes | None = None
    epoch: bytes | None = None
    stale: StoredEntry | None = None


@dataclass(frozen=True, slots=True)
class LookupResult:
    """The outcome of :meth:`~rcache.pages.PageCache.lookup`.

    ``response``: the answer to send now (``X-Cache`` HIT or STALE, maybe a 304), or None:
    run the view, then hand its response to :meth:`~rcache.pages.PageCache.store` with
    this result (or, if the view raised, call :meth:`~rcache.pages.PageCache.recover`).
    ``x_cache``: how the request was or will be answered. ``reason``: a short, stable word
    for debugging (``"fresh"``, ``"miss"``, ``"method POST"``, ``"redis error"``, ...).
    The rest is private to the cache (which lease is held, what may be served on error).
    """

    response: Response | None
    x_cache: XCache
    reason: str
    ticket: Ticket | None = field(default=None, repr=False, compare=False)
