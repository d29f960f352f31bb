"""After the view: store, serve stale on error, release the lease; and the whole ``handle``.

Round trips after the view ran (one :class:`~rcache.ops.Batch` each):

- stored: **1** (``store.lua``: the entry, the Vary spec, missing purge keys and the lease
  release, atomically). So a miss costs 3 in all: lookup, claim, store;
- not stored (a response :func:`~rcache.pages.policy.storable` refuses, a streaming body, a
  HEAD, an entry that would already be expired): **1** to turn the lease into a short "pass"
  (``release.lua``) so waiting requests run the view at once, **0** without a lease;
- the view raised or answered 5xx and a stale entry is within its stale-if-error (or
  stale-while-revalidate) window: the stale entry is served (``X-Cache: STALE``) after the
  lease is released (1). A purged entry is never served, not even on error.

Purges are one round trip each (``purge.lua``), whatever the number of pages they reach.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from rcache.errors import BackendError, DecodeError
from rcache.ops import Batch, Call, Op
from rcache.pages._context import LookupResult, PageContext, StoreOptions, Ticket
from rcache.pages._failures import logger
from rcache.pages._layout import request_from_url
from rcache.pages._lookup import answer, lookup
from rcache.pages._render import finish, from_entry, with_vary
from rcache.pages.fields import parse_cache_control
from rcache.pages.freshness import classify, entry_ttl
from rcache.pages.lifecycle import build_entry
from rcache.pages.model import Request, Response, StoredEntry
from rcache.pages.policy import response_coding, storable
from rcache.pages.vary import parse_vary_spec, vary_spec

__all__ = [
    "Raised",
    "acall_view",
    "call_view",
    "handle",
    "purge",
    "recover",
    "store",
    "url_purge_keys",
]

PASS_MS = 1000
"""How long a lease stays a "pass" after a response that was not stored, in ms."""

_USABLE_ON_ERROR = ("stale-revalidate", "stale-if-error")


class Raised:
    """The exception a view raised, carried through the operation to be re-raised."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def call_view(view: Callable[[Request], Any], req: Request) -> Any:
    """Call a blocking view; return its response, or what it raised as :class:`Raised`."""
    try:
        result = view(req)
    except Exception as exc:
        return Raised(exc)
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if close is not None:
            close()  # a coroutine that will never run: no "never awaited" warning
        return Raised(TypeError("the view returned an awaitable: use AsyncPageCache"))
    return result


async def acall_view(view: Callable[[Request], Any], req: Request) -> Any:
    """Call a view, awaiting it if it is async; return its response or :class:`Raised`.

    A cancellation is caught too, so the lease can be given back before it is re-raised
    (otherwise requests for the same page would wait for a lease nobody holds any more).
    """
    try:
        result = view(req)
        if inspect.isawaitable(result):
            result = await result
    except (Exception, asyncio.CancelledError) as exc:
        return Raised(exc)
    return result


def _release(ctx: PageContext, ticket: Ticket) -> Op[None]:
    """Turn the lease into a short "pass", if this request holds it (best effort)."""
    if ticket.token is None:
        return
    try:
        yield Batch([ctx.layout.release(ticket.lock_key, ticket.token, PASS_MS)])
    except BackendError as err:  # the lease runs out by itself
        logger.debug("page cache: releasing a lease failed (%s)", err)


def _stale_answer(ctx: PageContext, req: Request, entry: StoredEntry | None) -> Response | None:
    if entry is None:
        return None
    now = ctx.clock()
    if classify(entry, now) not in _USABLE_ON_ERROR:
        return None
    served = answer(ctx, req, entry, now, "STALE")
    if served is None:
        return None
    logger.warning("page cache: the view failed; a stale copy was served")
    return served.response


def recover(ctx: PageContext, req: Request, result: LookupResult) -> Op[Response | None]:
    """Handle a view that raised: release the lease; return a stale answer, or None."""
    ticket = result.ticket
    if ticket is None:
        return None
    yield from _release(ctx, ticket)
    return _stale_answer(ctx, req, ticket.stale)


def _entry_for(
    ctx: PageContext, req: Request, resp: Response, options: StoreOptions, now: float
) -> StoredEntry | None:
    """Return the entry to store for ``resp``, or None when it must not be stored."""
    ok, _ = storable(req, resp, ctx.policy, allow_set_cookie=options.allow_set_cookie)
    if not ok or (options.ttl is not None and options.ttl <= 0):
        return None
    entry = build_entry(req, resp, ctx.policy, now, tags=options.tags)
    if options.ttl is not None and "no-cache" not in parse_cache_control(
        resp.headers.get("cache-control")
    ):
        entry = dataclasses.replace(entry, fresh_until=entry.date + options.ttl)
    return None if classify(entry, now) == "expired" else entry


def store(
    ctx: PageContext, req: Request, resp: Response, result: LookupResult, options: StoreOptions
) -> Op[Response]:
    """Store the view's ``resp`` if it may be; return what to send (see the module docs)."""
    tag_header = ctx.policy.tag_header
    ticket = result.ticket
    if not isinstance(resp, Response):
        if ticket is not None:
            yield from _release(ctx, ticket)
        raise TypeError(f"a view must return a rcache.pages.Response, not {type(resp).__name__}")
    if ticket is None:
        return finish(resp, result.x_cache, tag_header)
    resp = with_vary(resp, options.vary)
    if resp.status >= 500 and ticket.stale is not None:
        fallback = _stale_answer(ctx, req, ticket.stale)
        if fallback is not None:
            yield from _release(ctx, ticket)
            return fallback
    now = ctx.clock()
    entry = None if ticket.epoch is None else _entry_for(ctx, req, resp, options, now)
    if entry is None or ticket.epoch is None:
        yield from _release(ctx, ticket)
        return finish(resp, result.x_cache, tag_header)
    command = ctx.layout.store(
        ticket.url_key,
        req,
        entry,
        epoch=ticket.epoch,
        ttl_ms=entry_ttl(entry) * 1000,
        lock_key=ticket.lock_key,
        token=ticket.token,
    )
    try:
        yield Batch([command])
    except BackendError as err:
        ctx.failures.backend(err, "store")
        return finish(resp, result.x_cache, tag_header)
    ctx.failures.written()
    _remember(ctx, ticket.url_key, req, entry)
    identity = resp.body if response_coding(resp.headers) == "identity" else None
    cookies = resp.headers.get_all("set-cookie")
    try:
        return from_entry(req, entry, now, "MISS", set_cookies=cookies, identity_body=identity)
    except DecodeError:  # a gzip body from the view that does not decode: send it as it came
        return finish(resp, "MISS", tag_header)


def _remember(ctx: PageContext, url_key: str, req: Request, entry: StoredEntry) -> None:
    """Teach the memo what ``store.lua`` just wrote: the spec and the entry's purge keys."""
    layout = ctx.layout
    spec = vary_spec(entry.vary)
    ctx.memo.learn(url_key, spec.encode("utf-8", "surrogatepass"), parse_vary_spec(spec))
    purge_keys = "\n".join(layout.purge_keys(url_key, req, entry.tags))
    variant_key = layout.variant_key(url_key, req, entry.vary)
    ctx.memo.learn_variant(variant_key, purge_keys.encode("utf-8", "surrogatepass"))


def handle(
    ctx: PageContext,
    req: Request,
    view: Callable[[Request], Any],
    invoke: Callable[..., Any],
    options: StoreOptions,
) -> Op[Response]:
    """Answer ``req`` from the cache or through ``view`` (called by ``invoke``), storing it."""
    result = yield from lookup(ctx, req)
    if result.response is not None:
        return result.response
    outcome = yield Call(invoke, (view, req))
    if isinstance(outcome, Raised):
        if not isinstance(outcome.error, Exception):  # cancelled: give the lease back, go
            if result.ticket is not None:
                yield from _release(ctx, result.ticket)
            raise outcome.error
        fallback = yield from recover(ctx, req, result)
        if fallback is not None:
            return fallback
        raise outcome.error
    return (yield from store(ctx, req, outcome, result, options))


def url_purge_keys(ctx: PageContext, targets: Sequence[str | Request]) -> list[str]:
    """Return the purge keys of URLs (absolute ``http(s)`` URLs or requests)."""
    keys = []
    for target in targets:
        req = request_from_url(target) if isinstance(target, str) else target
        keys.append(ctx.layout.url_purge_key(ctx.layout.url_key(req)))
    return keys


def purge(ctx: PageContext, keys: Sequence[str], action: str) -> Op[bool]:
    """Purge every entry answering to ``keys`` (one round trip); False if Redis failed."""
    if not keys:
        return True
    ctx.failures.done("purge", keys)  # this purge supersedes any lost one of these keys
    try:
        yield Batch([ctx.layout.purge(keys)])
    except BackendError as err:
        ctx.failures.lost("purge", keys)  # redone once Redis answers (see redo_purges)
        ctx.failures.backend(err, action)
        return False
    ctx.failures.written()
    return True


def redo_purges(ctx: PageContext) -> Op[None]:
    """Purge again what purges that failed meant to (see ``FailureLog.lost``): one round trip.

    A Redis that was only out of reach still serves the pages a failed purge meant to drop;
    this purges them with the first round trip that succeeds afterwards, sent once. If it
    fails or is interrupted, they are remembered again and tried after the next success, a
    second later at the earliest. Never raises a BackendError.
    """
    keys = ctx.failures.take_redo().get("purge", [])
    if not keys:
        return
    try:
        yield Batch([ctx.layout.purge(keys)], idempotent=False)  # the next success retries
    except BaseException as err:
        ctx.failures.lost("purge", keys)
        ctx.failures.redo_failed()
        if not isinstance(err, BackendError):
            raise
