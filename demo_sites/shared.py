"""What the three demo sites share: one Redis, one session configuration, the catalogs.

The Django shop, the Flask blog and the Starlette API build their session stores from the
same :class:`DemoConfig` (Redis URL, secret key, cookie name, key prefix, lifetimes), so the
cookie a login sets on one site is read, with the same data, by the other two.

The secret key is the demo's only: a random one per start, or ``RCACHE_DEMO_SECRET`` when
set (to keep sessions across restarts). Never reuse it anywhere else.
"""

from __future__ import annotations

import copy
import html
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rcache.objects import ObjectCache
from rcache.sessions import SessionConfig

COOKIE_NAME = "rcache_demo_session"
LIFETIME = 14 * 24 * 3600  # seconds: the sessions' absolute lifetime and idle timeout
PAGE_TTL = 300  # seconds a cached product or post page stays fresh (an edit purges it)
TAG_HEADER = "Cache-Tag"  # the page caches read a page's purge tags from it (their default)

PRODUCTS: dict[str, dict[str, Any]] = {
    "teapot": {"name": "Teapot", "price": 18.0, "text": "Short and stout."},
    "mug": {"name": "Mug", "price": 6.5, "text": "Holds one coffee."},
    "kettle": {"name": "Kettle", "price": 35.0, "text": "Boils in two minutes."},
}

POSTS: dict[str, dict[str, Any]] = {
    "hello": {"title": "Hello, cache", "body": "Every post page is an object-cache hit."},
    "tags": {"title": "Tags", "body": "Editing a post invalidates its tag, nothing else."},
}


def demo_secret() -> str:
    """Return ``RCACHE_DEMO_SECRET``, or a fresh random secret (sessions end at restart)."""
    return os.environ.get("RCACHE_DEMO_SECRET") or os.urandom(32).hex()


@dataclass(frozen=True)
class DemoConfig:
    """The settings every demo site is built from."""

    url: str
    secret: str
    prefix: str = "demo"

    @property
    def session_prefix(self) -> str:
        return f"{self.prefix}:session"

    @property
    def cache_prefix(self) -> str:
        return f"{self.prefix}:cache"

    @property
    def page_options(self) -> dict[str, Any]:
        """The page caches' options: one key space (``<prefix>:page``) for the three sites.

        Sharing it lets a purge from any site reach every cached page with that tag: an edit
        in the shop refreshes the API's cached product too.
        """
        return {"key_prefix": self.prefix}

    def session_config(self) -> SessionConfig:
        """The session store configuration, the same for the three sites."""
        return SessionConfig(
            secret_keys=[self.secret],
            cookie_name=COOKIE_NAME,
            prefix=self.session_prefix,
            secure=False,  # the demo serves plain http on 127.0.0.1
            idle_timeout=LIFETIME,
            absolute_lifetime=LIFETIME,
        )


def item_key(kind: str) -> str:
    """The object-cache key of one catalog item: the same in the sync and async caches."""
    return kind + ":{item_id}"


def item_tag(kind: str, item_id: str) -> str:
    """The purge tag of one catalog item, for the object cache and the page caches."""
    return f"{kind}:{item_id}"


def shows_visitor(session: Mapping[str, Any]) -> bool:
    """Whether pages for this session show something of the visitor's own (a name, a cart).

    Such visitors bypass the page caches (the glue calls them "authenticated"): their
    pages are always rendered for them, never stored, never served to anyone else.
    """
    return bool(session.get("user") or session.get("cart"))


def item_tags(kind: str) -> Callable[[str], list[str]]:
    """The tags of one catalog item: ``product:teapot``, ``post:hello``."""
    return lambda item_id: [item_tag(kind, item_id)]


class Catalog:
    """Items kept in process (the demo's "database") behind a slow, cached lookup.

    ``lookup(item_id)`` pretends to be an expensive query (``delay`` seconds) and is cached
    in Redis with the object cache, tagged ``<kind>:<item_id>``; ``edit`` changes an item
    and invalidates its tag, so the next lookup computes it again. ``computed`` counts the
    real computations.
    """

    def __init__(
        self,
        kind: str,
        items: dict[str, dict[str, Any]],
        cache: ObjectCache,
        delay: float = 0.3,
        ttl: float = 300,
    ) -> None:
        self.kind = kind
        self.items = copy.deepcopy(items)
        self.cache = cache
        self.delay = delay
        self.computed = 0
        self.lookup = cache.cached(ttl=ttl, key=item_key(kind), tags=item_tags(kind))(self._compute)

    def _compute(self, item_id: str) -> dict[str, Any] | None:
        time.sleep(self.delay)
        return self.build(item_id)

    def build(self, item_id: str) -> dict[str, Any] | None:
        """What a lookup computes (and counts): the item with the time it was looked up."""
        self.computed += 1
        item = self.items.get(item_id)
        if item is None:
            return None
        return {"id": item_id, **item, "computed_at": time.strftime("%H:%M:%S")}

    def edit(self, item_id: str, **changes: Any) -> None:
        """Change an item and drop its cached lookup (one round trip)."""
        self.items[item_id].update(changes)
        self.cache.invalidate_tags(item_tag(self.kind, item_id))


def page(title: str, body: str, user: str | None = None, nav: str = "") -> str:
    """A bare HTML page; ``body`` and ``nav`` are already HTML, the rest is escaped."""
    who = f"signed in as <b>{html.escape(user)}</b>" if user else "not signed in"
    return (
        "<!doctype html><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>"
        f"<p>{nav} · {who}</p><h1>{html.escape(title)}</h1>{body}"
    )
