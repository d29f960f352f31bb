"""The Starlette site on the base port: a landing page, a JSON API and the status page.

- ``/``: links to the three sites, and who is signed in.
- ``/api/products`` and ``/api/products/{id}``: the shop's products, looked up through an
  :class:`~rcache.objects.AsyncObjectCache` under the very keys and tags the Django shop
  uses, so both share (and an edit in the shop invalidates) the cached entries. The
  responses themselves are in the page cache (``rcache_asgi.pages``), tagged
  ``product:<id>`` in the key space the shop purges, so an edit there refreshes them too.
  They show nothing of the visitor, so everybody shares them.
- ``/api/cart``: GET the shared cart; POST ``{"product": id}`` adds one,
  ``{"product": id, "action": "remove"}`` removes one.
- ``/api/whoami``: the user signed in on any of the sites.
- ``/status/``: the adapter status site.

Sessions are rcache's pure ASGI ``SessionMiddleware`` over a store configured like the
other sites' (same Redis, secret, cookie name and prefix).
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Mount, Route

from demo_sites import status_site
from demo_sites.shared import (
    PAGE_TTL,
    TAG_HEADER,
    Catalog,
    DemoConfig,
    item_key,
    item_tag,
    item_tags,
    page,
)
from rcache.objects import AsyncObjectCache
from rcache.pages import AsyncPageCache
from rcache.sessions import AsyncSessionStore
from rcache_asgi.pages import PageCacheMiddleware, PageOptions
from rcache_asgi.sessions import SessionMiddleware


def make_app(config: DemoConfig, shop: Catalog, links: dict[str, str] | None = None) -> Starlette:
    """Build the site; ``links`` names the other sites for the landing page."""
    store = AsyncSessionStore.from_url(config.url, config.session_config())
    cache = AsyncObjectCache.from_url(config.url, prefix=config.cache_prefix)
    pages = AsyncPageCache.from_url(config.url, **config.page_options)
    cached = PageOptions(ttl=PAGE_TTL)
    status = status_site.make_app(config.url)

    @cache.cached(ttl=300, key=item_key(shop.kind), tags=item_tags(shop.kind))
    async def lookup(item_id: str) -> dict[str, Any] | None:
        await asyncio.sleep(shop.delay)  # the same pretend-expensive query as the shop's
        return shop.build(item_id)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with status.router.lifespan_context(status):
            yield
        await pages.aclose()
        await cache.aclose()
        await store.aclose()

    async def landing(request: Request) -> HTMLResponse:
        sites = {"Starlette API (this site)": "/api/products", **(links or {})}
        items = "".join(
            f'<li><a href="{html.escape(url)}">{html.escape(name)}</a></li>'
            for name, url in sites.items()
        )
        body = (
            f"<ul>{items}</ul><p>Log in on one site, the others know you; the cart is "
            'shared too.</p><p><a href="/api/whoami">whoami</a> · <a href="/api/cart">cart</a>'
            ' · <a href="/status/">Redis status</a></p>'
        )
        return HTMLResponse(page("rcache demo", body, request.session.get("user")))

    async def products(request: Request) -> JSONResponse:
        pids = list(shop.items)
        found = await asyncio.gather(*(lookup(pid) for pid in pids))
        tags = " ".join(item_tag(shop.kind, pid) for pid in pids)
        return JSONResponse([p for p in found if p is not None], headers={TAG_HEADER: tags})

    async def product(request: Request) -> JSONResponse:
        pid = request.path_params["pid"]
        found = await lookup(pid)
        if found is None:
            return JSONResponse({"error": "no such product"}, status_code=404)
        return JSONResponse(found, headers={TAG_HEADER: item_tag(shop.kind, pid)})

    async def cart(request: Request) -> JSONResponse:
        session = request.session
        if request.method == "POST":
            try:
                data = await request.json()
                pid, action = data["product"], data.get("action", "add")
            except (ValueError, KeyError, TypeError):
                return JSONResponse({"error": 'send {"product": id}'}, status_code=400)
            items = list(session.get("cart", []))
            if action == "add":
                if pid not in shop.items:
                    return JSONResponse({"error": "no such product"}, status_code=404)
                items.append(pid)
            elif action == "remove" and pid in items:
                items.remove(pid)
            session["cart"] = items
        return JSONResponse({"cart": session.get("cart", [])})

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.session.get("user")})

    return Starlette(
        routes=[
            Route("/", landing),
            Route("/api/products", products),
            Route("/api/products/{pid}", product),
            Route("/api/cart", cart, methods=["GET", "POST"]),
            Route("/api/whoami", whoami),
            Mount("/status", status),
        ],
        middleware=[
            Middleware(SessionMiddleware, store=store),
            Middleware(
                PageCacheMiddleware,
                cache=pages,
                paths={"/api/products": cached, "/api/products/*": cached},
                default=None,  # nothing else: the rest is per visitor (or the status page)
            ),
        ],
        lifespan=lifespan,
    )
