"""The apps of :mod:`bench._pages_apps` as gunicorn and uvicorn load them.

Two environment variables choose the contender: ``RCACHE_BENCH_PAGES_APP``
(``<framework>:<kind>``, e.g. ``django:rcache``) and ``RCACHE_BENCH_PAGES_REDIS`` (the
benchmark redis-server's URL). Used by :mod:`bench.pages_http`::

    gunicorn -w 1 -k sync 'bench._pages_serve:wsgi()'
    uvicorn --factory bench._pages_serve:asgi
"""

from __future__ import annotations

import os
from typing import Any

from bench._pages_apps import build, configure_django

__all__ = ["APP_ENV", "REDIS_ENV", "asgi", "wsgi"]

APP_ENV = "RCACHE_BENCH_PAGES_APP"
REDIS_ENV = "RCACHE_BENCH_PAGES_REDIS"


def _chosen() -> tuple[str, str, str]:
    framework, _, kind = os.environ[APP_ENV].partition(":")
    return framework, kind, os.environ[REDIS_ENV]


def wsgi() -> Any:
    """Return the WSGI app of the contender named in the environment (Django or Flask)."""
    framework, kind, url = _chosen()
    if framework == "django":
        configure_django(url)
    return build(framework, kind, url)


def asgi() -> Any:
    """Return the ASGI app of the contender named in the environment (Starlette, FastAPI)."""
    framework, kind, url = _chosen()
    return build(framework, kind, url)
