"""Fixtures for the Flask session tests: the test app on a store of the test's own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import fields
from typing import Any

import flask_session_app
import pytest
from flask_harness import SECRET, Site

from rcache.sessions import SessionConfig, SessionStore
from rcache_flask.sessions import RCacheSessionInterface

_CONFIG_FIELDS = {f.name for f in fields(SessionConfig) if f.init}


@pytest.fixture
def site_for(key_prefix: str) -> Iterator[Callable[..., Site]]:
    """Return ``make(server, **options) -> Site``: the app on a store of ``server``.

    Options that are SessionConfig fields go to the config (default: ``SECRET``, the
    test's prefix, ``secure=False``), the others to the adapter.
    """
    sites: list[Site] = []

    def make(server: Any, **options: Any) -> Site:
        config_options = {k: v for k, v in options.items() if k in _CONFIG_FIELDS}
        config_options.setdefault("secret_keys", [SECRET])
        config_options.setdefault("prefix", "t" + key_prefix.strip(":").replace(":", ""))
        config_options.setdefault("secure", False)
        adapter_options = {k: v for k, v in options.items() if k not in _CONFIG_FIELDS}
        store = SessionStore.from_url(
            server.url, SessionConfig(**config_options), **adapter_options
        )
        app = flask_session_app.make_app()
        app.session_interface = RCacheSessionInterface(store)
        site = Site(app, store, server.client())
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.close()


@pytest.fixture
def site(site_for: Callable[..., Site], redis_server: Any) -> Site:
    """The app on the shared Redis, with this test's key prefix."""
    return site_for(redis_server)


@pytest.fixture(autouse=True)
def hooks() -> Iterator[dict[str, Callable[[], None]]]:
    """The test app's hooks (``after_load``), cleared after each test."""
    yield flask_session_app.HOOKS
    flask_session_app.HOOKS.clear()
