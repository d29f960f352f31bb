"""One request through the page cache, for the middleware and the decorator alike.

``lookup`` before the view, then ``store`` with its response, or ``recover`` if it raised;
each in a blocking and an asyncio form that differ only in awaiting. The caching rules are
the core's; this module only moves Django objects in and out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    SuspiciousOperation,
)

from rcache.pages import AsyncPageCache, LookupResult, PageCache, Request
from rcache.pages.options import PageOptions
from rcache_django._pages_config import caches
from rcache_django._pages_http import (
    ais_authenticated,
    arender,
    django_response,
    early_response,
    is_authenticated,
    mark_bypass,
    page_request,
    page_response,
    prepare_for_storage,
    render,
)

__all__ = [
    "DEFAULT_OPTIONS",
    "Pending",
    "PageOptions",
    "alookup",
    "arecover",
    "astore",
    "early_lookup",
    "aearly_lookup",
    "finish_unlooked",
    "lookup",
    "recover",
    "store",
    "take_over",
]


DEFAULT_OPTIONS = PageOptions()


@dataclass(slots=True)
class Pending:
    """A request looked up and not answered yet: what ``store`` or ``recover`` needs."""

    cache: PageCache | AsyncPageCache
    page: Request
    result: LookupResult
    options: PageOptions
    done: bool = False


def lookup(request: Any, options: PageOptions) -> tuple[Pending, Any]:
    """Look ``request`` up; return its pending state and the cached response, or None."""
    cache = caches.sync()
    # When the policy caches pages of logged-in users too, nobody needs to know who it is.
    authenticated = not cache.policy.cache_authenticated and is_authenticated(request)
    page = page_request(request, authenticated=authenticated)
    result = cache.lookup(page)
    pending = Pending(cache, page, result, options)
    if result.response is None:
        return pending, None
    pending.done = True
    return pending, django_response(result.response)


async def alookup(request: Any, options: PageOptions) -> tuple[Pending, Any]:
    """:func:`lookup` on the running event loop's cache."""
    cache = await caches.async_()
    authenticated = not cache.policy.cache_authenticated and await ais_authenticated(request)
    page = page_request(request, authenticated=authenticated)
    result = await cache.lookup(page)
    pending = Pending(cache, page, result, options)
    if result.response is None:
        return pending, None
    pending.done = True
    return pending, django_response(result.response)


def early_lookup(request: Any) -> tuple[Pending | None, Any]:
    """Look up a request before Django resolves its URL (an anonymous one, see
    :mod:`rcache_django._pages_early`); return its state and the response to send, or None.

    No response for a miss and for answers the normal path finishes (stale, a 304...):
    ``process_view`` then takes the state over, so the request still costs one lookup.
    """
    try:
        page = page_request(request, authenticated=False)
    except SuspiciousOperation:  # a host not allowed: the normal path says so
        return None, None
    cache = caches.sync()
    result = cache.lookup(page)
    return _early(Pending(cache, page, result, DEFAULT_OPTIONS))


async def aearly_lookup(request: Any) -> tuple[Pending | None, Any]:
    """:func:`early_lookup` on the running event loop's cache."""
    try:
        page = page_request(request, authenticated=False)
    except SuspiciousOperation:
        return None, None
    cache = await caches.async_()
    result = await cache.lookup(page)
    return _early(Pending(cache, page, result, DEFAULT_OPTIONS))


def _early(pending: Pending) -> tuple[Pending, Any]:
    """Return ``pending`` and the response for a fresh hit; None for any other answer."""
    result = pending.result
    out = result.response
    if out is None or result.x_cache != "HIT":
        return pending, None
    return pending, early_response(out)


def take_over(pending: Pending, options: PageOptions) -> tuple[Pending, Any]:
    """Return what :func:`lookup` would have for the request ``pending`` looked up early."""
    pending.options = options
    out = pending.result.response
    if out is None:
        return pending, None
    pending.done = True
    return pending, django_response(out)


def store(request: Any, response: Any, pending: Pending) -> Any:
    """Store the view's response if it may be; return the response to send."""
    if pending.done:
        return response
    pending.done = True
    response = render(response)
    reason = prepare_for_storage(request, response)
    sent = page_response(response)
    cache = pending.cache
    assert isinstance(cache, PageCache)
    kwargs = pending.options.store_kwargs(storable=reason is None)
    out = cache.store(pending.page, sent, pending.result, **kwargs)
    return django_response(out, response, sent.body)


async def astore(request: Any, response: Any, pending: Pending) -> Any:
    """:func:`store` for async code."""
    if pending.done:
        return response
    pending.done = True
    response = await arender(response)
    reason = prepare_for_storage(request, response)
    sent = page_response(response)
    cache = pending.cache
    assert isinstance(cache, AsyncPageCache)
    kwargs = pending.options.store_kwargs(storable=reason is None)
    out = await cache.store(pending.page, sent, pending.result, **kwargs)
    return django_response(out, response, sent.body)


def recover(pending: Pending) -> Any:
    """After the view raised: give the lease back; return a stale response, or None.

    Runs on the blocking cache even for a request looked up on an asyncio one (Django calls
    exception middleware in a thread): both name the same keys, so either can release.
    """
    if pending.done:
        return None
    pending.done = True
    out = caches.sync().recover(pending.page, pending.result)
    return None if out is None else django_response(out)


async def arecover(pending: Pending) -> Any:
    """:func:`recover` for async code, on the cache that looked the request up."""
    if pending.done:
        return None
    pending.done = True
    cache = pending.cache
    assert isinstance(cache, AsyncPageCache)
    out = await cache.recover(pending.page, pending.result)
    return None if out is None else django_response(out)


def finish_unlooked(response: Any, pending: Pending | None) -> Any:
    """Mark a response whose request was not looked up, or whose lease was given back."""
    tag_header = caches.config().policy.tag_header
    if pending is None:
        return mark_bypass(response, tag_header)
    if "X-Cache" not in response.headers:
        if tag_header in response.headers:
            del response.headers[tag_header]
        response.headers["X-Cache"] = pending.result.x_cache
    return response
