"""Fixtures for the ASGI session tests: the test app on a store of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import fields
from typing import Any

import asgi_harness
import pytest
from asgi_harness import SECRET, Site

from rcache.sessions import AsyncSessionStore, SessionConfig

_CONFIG_FIELDS = {f.name for f in fields(SessionConfig) if f.init}


def build_store(server: Any, prefix: str, **options: Any) -> AsyncSessionStore:
    """A store of ``server``: SessionConfig fields from ``options`` (default: ``SECRET``,
    ``prefix``, ``secure=False``) to the config, the others to the adapter."""
    config_options = {k: v for k, v in options.items() if k in _CONFIG_FIELDS}
    config_options.setdefault("secret_keys", [SECRET])
    config_options.setdefault("prefix", prefix)
    config_options.setdefault("secure", False)
    adapter_options = {k: v for k, v in options.items() if k not in _CONFIG_FIELDS}
    config = SessionConfig(**config_options)
    return AsyncSessionStore.from_url(server.url, config, **adapter_options)


@pytest.fixture
def prefix(key_prefix: str) -> str:
    return "t" + key_prefix.strip(":").replace(":", "")


@pytest.fixture
async def site_for(prefix: str) -> AsyncIterator[Callable[..., Site]]:
    """Return ``make(server, **options) -> Site``: the app on a store of ``server``."""
    sites: list[Site] = []

    def make(server: Any, **options: Any) -> Site:
        site = Site(build_store(server, prefix, **options), server.client())
        sites.append(site)
        return site

    yield make
    for site in sites:
        await site.aclose()


@pytest.fixture
def site(site_for: Callable[..., Site], redis_server: Any) -> Site:
    """The app on the shared Redis, with this test's key prefix."""
    return site_for(redis_server)


@pytest.fixture(autouse=True)
def hooks() -> Iterator[dict[str, Callable[[], Awaitable[None]]]]:
    """The test app's hooks (``after_load``), cleared after each test."""
    yield asgi_harness.HOOKS
    asgi_harness.HOOKS.clear()
