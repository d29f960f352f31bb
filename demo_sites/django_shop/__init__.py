"""The Django shop: products (object and page cache), a username-only login and a session cart.

No database and no installed apps: the products live in a :class:`~demo_sites.shared.Catalog`
(given in the ``DEMO_SHOP`` setting) and the session engine is ``rcache_django.sessions``,
configured like the other demo sites so they share one login and one cart.

Pages: ``/`` products, ``/products/<id>/`` one product (a cached lookup and a cached page,
both tagged ``product:<id>``), ``POST /products/<id>/edit`` (invalidates and purges that
tag), ``/login``, ``POST /logout``, ``/cart`` and ``POST /cart/add|remove/<id>``. There is
no CSRF check and no password: it is a demo.

Page cache: ``rcache_django.pages.PageCacheMiddleware`` first, only for views decorated with
``@page_cache`` (the product pages). A visitor with a name or a cart in the session counts as
logged in (``request.user`` is set from the session by ``views.visitor_middleware``), so
their pages bypass the cache; visitors without one share the cached copy.
"""

from __future__ import annotations

from typing import Any

from demo_sites.shared import COOKIE_NAME, LIFETIME, Catalog, DemoConfig


def settings_for(config: DemoConfig, shop: Catalog) -> dict[str, Any]:
    """The Django settings of the shop (for ``settings.configure`` or ``override_settings``)."""
    return {
        "SECRET_KEY": config.secret,
        "SECRET_KEY_FALLBACKS": [],
        "ALLOWED_HOSTS": ["127.0.0.1", "localhost", "testserver"],
        "ROOT_URLCONF": "demo_sites.django_shop.views",
        "MIDDLEWARE": [
            "rcache_django.pages.PageCacheMiddleware",  # first: it sees the final response
            "rcache_django.sessions.SessionMiddleware",
            "demo_sites.django_shop.views.visitor_middleware",
        ],
        "SESSION_ENGINE": "rcache_django.sessions",
        "SESSION_COOKIE_NAME": COOKIE_NAME,
        "SESSION_COOKIE_AGE": LIFETIME,
        "SESSION_COOKIE_SECURE": False,
        "RCACHE_SESSIONS": {"URL": config.url, "OPTIONS": {"prefix": config.session_prefix}},
        "RCACHE_PAGES": {
            "URL": config.url,
            "CACHE_ALL_VIEWS": False,  # only the views decorated with @page_cache
            "OPTIONS": config.page_options,
        },
        "DEMO_SHOP": shop,
    }


def make_wsgi_app(config: DemoConfig, shop: Catalog) -> Any:
    """Configure Django for the shop (once per process) and return its WSGI application."""
    import django
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler

    settings.configure(
        DEBUG=False, INSTALLED_APPS=[], DATABASES={}, USE_TZ=True, **settings_for(config, shop)
    )
    django.setup(set_prefix=False)
    return WSGIHandler()
