"""The session engine's stores, built from Django settings.

One blocking :class:`~rcache.sessions.SessionStore` serves the whole process (its adapter
is thread-safe). An :class:`~rcache.sessions.AsyncSessionStore` can serve only the event
loop it first ran on, and Django starts a fresh loop for every ``async_to_sync`` call (an
async view under WSGI, an async test), so there is one per running loop. Each is closed
when its loop shuts down: a suspended async generator registered with the loop runs the
adapter's ``aclose()`` from ``loop.shutdown_asyncgens()``, which ``asyncio.run`` (and so
asgiref, uvicorn and pytest-asyncio) calls before closing the loop.

Changing any of the settings read here (``override_settings`` in tests) drops the stores,
so the next request builds them again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

from django.conf import settings  # type: ignore[import-untyped, unused-ignore]
from django.core.exceptions import (  # type: ignore[import-untyped, unused-ignore]
    ImproperlyConfigured,
)
from django.core.signals import setting_changed  # type: ignore[import-untyped, unused-ignore]

from rcache.adapter import AsyncRedisAdapter, RedisAdapter
from rcache.config import RedisSettings
from rcache.errors import ConfigurationError
from rcache.sessions import AsyncSessionStore, SessionConfig, SessionStore
from rcache.sessions._layout import Storage
from rcache_django._loops import PerLoop

__all__ = ["SETTINGS_READ", "StoreConfig", "load_config", "reset", "storage", "stores"]

#: The settings the stores are built from; changing one of them drops the stores.
SETTINGS_READ = frozenset(
    {
        "RCACHE_SESSIONS",
        "SECRET_KEY",
        "SECRET_KEY_FALLBACKS",
        "SESSION_COOKIE_AGE",
        "SESSION_COOKIE_NAME",
    }
)

_SESSION_FIELDS = frozenset(f.name for f in fields(SessionConfig) if f.init)
_REDIS_FIELDS = frozenset(f.name for f in fields(RedisSettings))
# Django's SessionMiddleware writes the cookie from its own SESSION_COOKIE_* settings, and
# SESSION_COOKIE_AGE is the absolute lifetime (the cookie is sent once per key).
_FROM_DJANGO = {
    "cookie_name": "SESSION_COOKIE_NAME",
    "cookie_path": "SESSION_COOKIE_PATH",
    "cookie_domain": "SESSION_COOKIE_DOMAIN",
    "secure": "SESSION_COOKIE_SECURE",
    "httponly": "SESSION_COOKIE_HTTPONLY",
    "samesite": "SESSION_COOKIE_SAMESITE",
    "persistent_cookie": "SESSION_EXPIRE_AT_BROWSER_CLOSE",
    "absolute_lifetime": "SESSION_COOKIE_AGE",
}
_TOP_LEVEL = frozenset({"URL", "OPTIONS"})


@dataclass(frozen=True)
class StoreConfig:
    """What ``RCACHE_SESSIONS`` and the Django settings say, validated."""

    redis: RedisSettings
    session: SessionConfig


def load_config() -> StoreConfig:
    """Read ``RCACHE_SESSIONS`` and Django's settings; raise ImproperlyConfigured if wrong."""
    conf = getattr(settings, "RCACHE_SESSIONS", None)
    if not isinstance(conf, Mapping) or not isinstance(conf.get("URL"), str):
        raise ImproperlyConfigured(
            'the rcache session engine needs RCACHE_SESSIONS = {"URL": "redis://...", '
            '"OPTIONS": {...}} in the settings'
        )
    unknown = set(conf) - _TOP_LEVEL
    if unknown:
        raise ImproperlyConfigured(f"unknown RCACHE_SESSIONS key(s): {', '.join(sorted(unknown))}")
    options = conf.get("OPTIONS") or {}
    if not isinstance(options, Mapping):
        raise ImproperlyConfigured('RCACHE_SESSIONS["OPTIONS"] must be a dict')
    taken = sorted(set(options) & set(_FROM_DJANGO))
    if taken:
        use = ", ".join(_FROM_DJANGO[name] for name in taken)
        raise ImproperlyConfigured(
            f"RCACHE_SESSIONS['OPTIONS'] cannot set {', '.join(taken)}: set Django's {use}"
        )
    unknown = set(options) - _SESSION_FIELDS - _REDIS_FIELDS
    if unknown:
        raise ImproperlyConfigured(
            f"unknown RCACHE_SESSIONS['OPTIONS'] key(s): {', '.join(sorted(unknown))}"
        )
    session_options: dict[str, Any] = {k: v for k, v in options.items() if k in _SESSION_FIELDS}
    redis_options = {k: v for k, v in options.items() if k in _REDIS_FIELDS}
    age = timedelta(seconds=settings.SESSION_COOKIE_AGE)
    if "secret_keys" not in session_options:
        keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]
        session_options["secret_keys"] = [k for k in keys if k]
    session_options.setdefault("idle_timeout", age)
    session_options["absolute_lifetime"] = age
    session_options["cookie_name"] = settings.SESSION_COOKIE_NAME
    try:
        return StoreConfig(
            redis=RedisSettings.from_url(conf["URL"], **redis_options),
            session=SessionConfig(**session_options),
        )
    except ConfigurationError as exc:
        raise ImproperlyConfigured(f"RCACHE_SESSIONS: {exc}") from exc


def storage(store: SessionStore | AsyncSessionStore) -> Storage:
    """Return the key layout of ``store``.

    The core keeps it private; the engine needs it to run the core's session operations
    inside its own plans (so its sync and async paths are one code) and to name a
    session's key for EXISTS and its custom expiry.
    """
    return store._storage


def _sync_store(config: StoreConfig) -> SessionStore:
    return SessionStore(RedisAdapter(config.redis), config.session)


def _async_store(config: StoreConfig) -> AsyncSessionStore:
    return AsyncSessionStore(AsyncRedisAdapter(config.redis), config.session)


stores: PerLoop[StoreConfig, SessionStore, AsyncSessionStore] = PerLoop(
    load_config, _sync_store, _async_store
)


def reset(*, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: drop the stores when a setting they use changes."""
    if setting in SETTINGS_READ:
        stores.reset()


setting_changed.connect(reset, dispatch_uid="rcache_django.sessions.reset")
