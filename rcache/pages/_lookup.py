"""Looking a request up, as one operation: hit, stale, single-flight miss, waiting.

Round trips (one :class:`~rcache.ops.Batch` each):

- not cacheable (method, ``no-store``, logged in): **0**, ``BYPASS``;
- fresh hit, 304 included, with or without Vary: **1**. When this process has looked the
  URL up before, plain reads predicted by its memo (:mod:`rcache.pages._memo`): ``HMGET``
  of the variant, ``MGET`` of the spec and the purge keys, in one pipeline; else, or
  when the reads show the prediction was wrong (the URL's Vary or the entry's tags changed:
  one more round trip, once), ``lookup.lua``, which teaches the memo;
- stale within stale-while-revalidate: **2** (lookup; ``claim.lua``). The request that takes
  the lease runs the view and stores the result (``X-Cache: MISS``); every other one is
  answered from the stale entry (``STALE``) meanwhile. Nothing runs in the background: a
  WSGI worker has nothing to run it on after the response, and a view's request-scoped
  resources (database sessions, the user) end with the request;
- miss: **2** before the view runs (lookup; claim). The request that takes the lease runs
  the view. The others poll (lookup plus the lease, one round trip each, after 5 ms then
  1.5 times longer each time, at most 100 ms apart) and are answered as soon as the entry
  lands. If the lease turns into a "pass" (the response was not stored) they run the view
  themselves at once; if it vanishes without an entry (its holder died) one of them takes
  it over; after ``wait_timeout`` they run the view themselves;
- HEAD miss: **1**, no lease (a HEAD response is never stored; a GET fills the entry).

The claim also reads the purge clock: the epoch an entry will record, read before the view
runs (see :mod:`rcache.pages._layout`). When Redis fails the request bypasses the cache
(``on_error="miss"``) or the error rises (``"raise"``).
"""

from __future__ import annotations

import math
import secrets
import time
from typing import Any

from rcache.errors import BackendError, DecodeError
from rcache.ops import Batch, Op, Sleep
from rcache.pages._context import LookupResult, PageContext, Ticket
from rcache.pages._layout import PASS
from rcache.pages._memo import VariantRecord
from rcache.pages._render import XCache, from_entry
from rcache.pages.freshness import classify
from rcache.pages.keys import read_lookup_reply
from rcache.pages.model import Request, StoredEntry
from rcache.pages.policy import is_request_cacheable

__all__ = ["answer", "lookup", "read_entry"]

_FIRST_POLL = 0.005
_MAX_POLL = 0.1
_SERVABLE: dict[str, XCache] = {"fresh": "HIT", "stale-revalidate": "STALE"}


def read_entry(ctx: PageContext, reply: Any) -> tuple[tuple[str, ...] | None, StoredEntry | None]:
    """Return ``(Vary names or None, entry or None)`` from a ``lookup.lua`` reply.

    Names are None when the URL has no record. An unreadable entry is logged and ignored
    (the next store overwrites it).
    """
    try:
        found = read_lookup_reply(reply)
        if found is None:
            return None, None
        names, raw = found
        return names, None if raw is None else StoredEntry.from_bytes(raw)
    except DecodeError as err:
        ctx.failures.decode(err)
        return None, None


def _decode(ctx: PageContext, variant_key: str, raw: bytes) -> StoredEntry | None:
    """Return the entry stored as ``raw`` at ``variant_key`` (decoded once per process)."""
    memo = ctx.memo
    entry = memo.decoded(variant_key, raw)
    if entry is None:
        try:
            entry = StoredEntry.from_bytes(raw)
        except DecodeError as err:
            ctx.failures.decode(err)
            return None
        memo.keep(variant_key, raw, entry)
    return entry


def _epoch(raw: Any) -> int | float | None:
    """Return a stored epoch as a number, None when absent or not one (as Lua's tonumber)."""
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _url_key(ctx: PageContext, req: Request) -> str:
    """Return the URL-level key of ``req``, remembered per (scheme, host, path, query)."""
    urls = ctx.memo.urls
    where = (req.scheme, req.host, req.path, req.query_string)
    url_key = urls.get(where)
    if url_key is None:
        url_key = ctx.layout.url_key(req)
        urls.put(where, url_key)
    return url_key


_MISMATCH: Any = object()


def _check(record: VariantRecord, spec: bytes, names: tuple[str, ...], replies: list[Any]) -> Any:
    """Return what ``lookup.lua`` would have: ``(names or None, raw entry or None)``.

    ``_MISMATCH`` when the reads do not answer the question (another spec, other purge
    keys): the memo predicted wrong, and ``lookup.lua`` must decide.
    """
    (raw, g, t), (found_spec, *stamps) = replies
    if found_spec is None:
        return None, None
    if found_spec != spec:
        return _MISMATCH
    if raw is None:
        return names, None
    if t != record.t:
        return _MISMATCH
    epoch = _epoch(g)
    for stamp in stamps:
        purged = _epoch(stamp)
        if epoch is None or purged is None or purged > epoch:
            return names, None
    return names, raw


def _learn(
    ctx: PageContext, url_key: str, req: Request, reply: Any
) -> tuple[tuple[str, ...] | None, StoredEntry | None]:
    """Read a ``lookup.lua`` reply, remembering what it says for the next lookups."""
    try:
        found = read_lookup_reply(reply)
    except DecodeError as err:
        ctx.failures.decode(err)
        return None, None
    if found is None:
        return None, None
    names, raw = found
    memo = ctx.memo
    spec = reply[0]
    memo.learn(
        url_key, spec.encode("utf-8", "surrogatepass") if isinstance(spec, str) else spec, names
    )
    if raw is None:
        return names, None
    variant_key = ctx.layout.variant_key(url_key, req, names)
    t = reply[2] if len(reply) > 2 else None
    if isinstance(t, bytes):
        memo.learn_variant(variant_key, t)
    return names, _decode(ctx, variant_key, raw)


def _read(
    ctx: PageContext, req: Request
) -> Op[tuple[str, tuple[str, ...] | None, StoredEntry | None]]:
    """Read the URL's record and the request's entry: ``(url key, names, entry)``.

    One round trip in steady state (plain reads the memo predicts, or ``lookup.lua``); two
    when the prediction turns out wrong. Raises BackendError.
    """
    url_key = _url_key(ctx, req)
    memo = ctx.memo
    known = memo.specs.get(url_key)
    if known is not None:
        spec, names = known
        variant_key = ctx.layout.variant_key(url_key, req, names)
        record = memo.variants.get(variant_key)
        if record is not None:
            replies = yield Batch(ctx.layout.memo_lookup(url_key, variant_key, record.keys))
            found = _check(record, spec, names, replies)
            if found is not _MISMATCH:
                names_found, raw = found
                entry = None if raw is None else _decode(ctx, variant_key, raw)
                return url_key, names_found, entry
    (reply,) = yield Batch([ctx.layout.lookup_script(url_key, req)])
    names_read, entry = _learn(ctx, url_key, req, reply)
    return url_key, names_read, entry


def answer(
    ctx: PageContext, req: Request, entry: StoredEntry, now: float, x_cache: XCache
) -> LookupResult | None:
    """Return the result that answers ``req`` from ``entry``; None if its body is unreadable."""
    try:
        response = from_entry(req, entry, now, x_cache)
    except DecodeError as err:
        ctx.failures.decode(err)
        return None
    ctx.stats.hits += 1
    return LookupResult(response, x_cache, "fresh" if x_cache == "HIT" else "stale")


def _run_view(ctx: PageContext, reason: str, ticket: Ticket) -> LookupResult:
    """Return the go-ahead to run the view (a miss)."""
    ctx.stats.misses += 1
    return LookupResult(None, "MISS", reason, ticket)


def _bypass(ticket: Ticket) -> LookupResult:
    """Return the go-ahead to run the view after Redis failed (the page is not stored)."""
    return LookupResult(None, "BYPASS", "redis error", ticket)


def lookup(ctx: PageContext, req: Request) -> Op[LookupResult]:
    """Look ``req`` up: an answer, or the go-ahead to run the view (see the module docs)."""
    cacheable, reason = is_request_cacheable(req, ctx.policy)
    if not cacheable:
        return LookupResult(None, "BYPASS", reason)
    try:
        url_key, names, entry = yield from _read(ctx, req)
    except BackendError as err:
        ctx.failures.backend(err, "lookup")
        return LookupResult(None, "BYPASS", "redis error")
    ctx.failures.ok()
    state = "expired"
    if entry is not None:
        now = ctx.clock()
        state = classify(entry, now)
        if state == "fresh":
            hit = answer(ctx, req, entry, now, "HIT")
            if hit is not None:
                return hit
    stale = entry if state in ("stale-revalidate", "stale-if-error") else None
    layout = ctx.layout
    lock_key = layout.lock_key(
        url_key if names is None else layout.variant_key(url_key, req, names)
    )
    if req.method != "GET":  # HEAD: never stored, so nobody waits for it
        if stale is not None and state == "stale-revalidate":
            served = answer(ctx, req, stale, ctx.clock(), "STALE")
            if served is not None:
                return served
        return _run_view(ctx, "head", Ticket(url_key, lock_key, stale=stale))
    command = layout.lookup_script(url_key, req)
    return (yield from _claim_or_wait(ctx, req, command, Ticket(url_key, lock_key, stale=stale)))


def _claim_or_wait(ctx: PageContext, req: Request, command: Any, base: Ticket) -> Op[LookupResult]:
    """Take the lease and run the view, or serve stale, or wait for the lease holder."""
    stale = base.stale
    revalidate = stale is not None and classify(stale, ctx.clock()) == "stale-revalidate"
    token = secrets.token_bytes(16)
    deadline = time.monotonic() + ctx.wait_timeout
    delay = _FIRST_POLL
    claim = ctx.layout.claim(base.lock_key, token, ctx.lease_ms)
    while True:
        try:
            ((taken, epoch, holder),) = yield Batch([claim], idempotent=False)
        except BackendError as err:
            ctx.failures.backend(err, "claim")
            return _bypass(Ticket(base.url_key, base.lock_key, stale=stale))
        if taken:
            ticket = Ticket(base.url_key, base.lock_key, token, epoch, stale)
            return _run_view(ctx, "revalidate" if revalidate else "miss", ticket)
        if revalidate and stale is not None:  # someone else revalidates: serve stale now
            served = answer(ctx, req, stale, ctx.clock(), "STALE")
            if served is not None:
                return served
        on_your_own = Ticket(base.url_key, base.lock_key, None, epoch, stale)
        while True:
            if holder == PASS:
                return _run_view(ctx, "pass", on_your_own)
            left = deadline - time.monotonic()
            if left <= 0:
                return _run_view(ctx, "wait timeout", on_your_own)
            yield Sleep(min(delay, left))
            delay = min(delay * 1.5, _MAX_POLL)
            try:
                reply, holder = yield Batch([command, ("GET", base.lock_key)])
            except BackendError as err:
                ctx.failures.backend(err, "lookup")
                return _bypass(Ticket(base.url_key, base.lock_key, stale=stale))
            _, entry = read_entry(ctx, reply)
            if entry is not None:
                now = ctx.clock()
                state = classify(entry, now)
                if state in _SERVABLE:
                    served = answer(ctx, req, entry, now, _SERVABLE[state])
                    if served is not None:
                        return served
            if holder is None:
                break  # the holder left without storing anything usable: take over
