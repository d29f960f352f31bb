"""How long a response stays fresh, how long it may be served stale, and where an entry stands.

Freshness lifetime (RFC 9111 §4.2.1), first match wins:

1. ``no-cache``: 0, whatever else the response says (the most restrictive directive wins);
2. ``s-maxage`` (a shared cache's own max-age);
3. ``max-age``;
4. ``Expires`` minus ``Date`` (an invalid ``Expires``, such as ``0``, means already expired);
5. the policy's ``default_ttl``: an explicit heuristic the operator opted into, used in
   place of RFC 9111 §4.2.2's "10% of the time since Last-Modified".

A directive with a malformed number counts as 0 (stale). ``Expires`` and ``Date`` given more
than once use their first line.

Stale windows (RFC 5861): ``stale-while-revalidate=N`` lets the cache serve a stale response
for N seconds while it refreshes it in the background; ``stale-if-error=N`` lets it serve a
stale response for N seconds when producing a new one fails. A response that states neither
gets the policy's windows, except that:

- ``no-cache``, ``must-revalidate`` and ``proxy-revalidate`` forbid serving stale at all
  (RFC 9111 §4.2.4): both windows are 0 even if the response also states them;
- ``s-maxage`` implies ``proxy-revalidate`` (RFC 9111 §5.2.2.10), so the policy's windows do
  not apply; windows the response states itself are honored, since RFC 5861 grants them
  explicitly ("s-maxage=60, stale-while-revalidate=30" is the usual CDN idiom).

:func:`classify` places a stored entry at a given time::

    stored_at ... fresh_until ... + stale_while_revalidate ... + stale_if_error ...
       "fresh"          "stale-revalidate"       "stale-if-error"        "expired"

"stale-revalidate": serve it and refresh it in the background. "stale-if-error": produce a
new response, and serve this one only if that fails. When the stale-if-error window is the
shorter one, it is covered by the stale-while-revalidate window. :func:`entry_ttl` says how
long Redis should keep the entry: until its last usable moment, plus a margin.
"""

from __future__ import annotations

import math
from typing import Literal, TypeAlias

from rcache.pages.fields import directive_seconds, parse_cache_control, parse_http_date
from rcache.pages.model import Response, StoredEntry
from rcache.pages.policy import PageCachePolicy

__all__ = [
    "TTL_MARGIN",
    "State",
    "classify",
    "entry_ttl",
    "freshness_lifetime",
    "stale_windows",
]

State: TypeAlias = Literal["fresh", "stale-revalidate", "stale-if-error", "expired"]

TTL_MARGIN = 5
"""Seconds Redis keeps an entry after its last usable moment, so clock jitter never loses one."""

_NO_STALE = ("no-cache", "must-revalidate", "proxy-revalidate")


def freshness_lifetime(
    resp: Response, policy: PageCachePolicy, *, now: float | None = None
) -> float:
    """Return the freshness lifetime of ``resp`` in seconds (>= 0).

    ``now`` (epoch seconds) stands in for a missing or invalid ``Date`` when the lifetime
    comes from ``Expires``; with neither, an ``Expires`` gives 0.
    """
    directives = parse_cache_control(resp.headers.get("cache-control"))
    if "no-cache" in directives:
        return 0.0
    for name in ("s-maxage", "max-age"):
        seconds = directive_seconds(directives, name)
        if seconds is not None:
            return float(seconds)
    expires_value = resp.headers.first("expires")
    if expires_value is not None:
        expires = parse_http_date(expires_value, now=now)
        date = parse_http_date(resp.headers.first("date"), now=now)
        if date is None:
            date = now
        if expires is None or date is None:
            return 0.0
        return max(0.0, expires - date)
    return float(policy.default_ttl)


def stale_windows(resp: Response, policy: PageCachePolicy) -> tuple[float, float]:
    """Return ``(stale_while_revalidate, stale_if_error)`` in seconds for ``resp``."""
    directives = parse_cache_control(resp.headers.get("cache-control"))
    if any(name in directives for name in _NO_STALE):
        return 0.0, 0.0
    defaults_apply = "s-maxage" not in directives
    swr = directive_seconds(directives, "stale-while-revalidate")
    sie = directive_seconds(directives, "stale-if-error")
    default_swr = policy.stale_while_revalidate if defaults_apply else 0.0
    default_sie = policy.stale_if_error if defaults_apply else 0.0
    return (
        float(swr) if swr is not None else float(default_swr),
        float(sie) if sie is not None else float(default_sie),
    )


def classify(entry: StoredEntry, now: float) -> State:
    """Return where ``entry`` stands at ``now`` (epoch seconds); see the module docstring."""
    if now < entry.fresh_until:
        return "fresh"
    stale_for = now - entry.fresh_until
    if stale_for < entry.stale_while_revalidate:
        return "stale-revalidate"
    if stale_for < entry.stale_if_error:
        return "stale-if-error"
    return "expired"


def entry_ttl(entry: StoredEntry) -> int:
    """Return how many seconds after ``stored_at`` Redis should keep ``entry`` (>= 1).

    Its remaining freshness, plus the longer stale window, plus :data:`TTL_MARGIN`.
    """
    fresh = max(0.0, entry.fresh_until - entry.stored_at)
    stale = max(entry.stale_while_revalidate, entry.stale_if_error, 0.0)
    return max(1, math.ceil(fresh + stale + TTL_MARGIN))
