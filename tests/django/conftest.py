"""Django for the session engine tests: minimal settings, the test app, per-test Redis.

Settings are configured once per process (``settings.configure``); each test then points
``RCACHE_SESSIONS`` at its Redis and a key prefix of its own with ``override_settings``,
which also rebuilds the engine's stores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import django
import pytest
import redis
from django.conf import settings

if not settings.configured:
    settings.configure(
        SECRET_KEY="django-tests-secret-key-0123456789abcdef0123456789",
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[],
        DATABASES={},
        MIDDLEWARE=["rcache_django.sessions.SessionMiddleware"],
        ROOT_URLCONF="django_session_app",
        SESSION_ENGINE="rcache_django.sessions",
        RCACHE_SESSIONS={"URL": "redis://127.0.0.1:9/0"},  # every test points it elsewhere
        USE_TZ=True,
    )
    django.setup()

import django_session_app  # noqa: E402
from django.test import override_settings  # noqa: E402  (needs the settings above)
from django_harness import Engine  # noqa: E402


@pytest.fixture
def engine_for(key_prefix: str) -> Iterator[Callable[..., Engine]]:
    """Return ``configure(server, **options) -> Engine``: point the engine at ``server``."""
    overrides: list[Any] = []
    clients: list[redis.Redis] = []

    def configure(server: Any, **options: Any) -> Engine:
        prefix = "t" + key_prefix.strip(":").replace(":", "")
        override = override_settings(
            RCACHE_SESSIONS={"URL": server.url, "OPTIONS": {"prefix": prefix, **options}}
        )
        override.enable()
        overrides.append(override)
        client = server.client()
        clients.append(client)
        return Engine(server.url, prefix, client)

    yield configure
    for override in reversed(overrides):
        override.disable()
    for client in clients:
        client.close()


@pytest.fixture
def engine(engine_for: Callable[..., Engine], redis_server: Any) -> Engine:
    """The engine on the shared Redis, with this test's key prefix."""
    return engine_for(redis_server)


@pytest.fixture(autouse=True)
def hooks() -> Iterator[dict[str, Callable[[], None]]]:
    """The test app's hooks (``after_load``), cleared after each test."""
    yield django_session_app.HOOKS
    django_session_app.HOOKS.clear()
