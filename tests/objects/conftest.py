"""Fixtures of the object-cache tests: ``make_cache`` (sync and async) and ``server``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from objects_harness import CacheHarness, space_prefix


@pytest.fixture(params=["sync", "async"])
def make_cache(request: pytest.FixtureRequest, key_prefix: str) -> Iterator[Any]:
    """Return ``make(url, **options) -> CacheHarness``; caches are closed after the test.

    The cache's prefix defaults to one unique to the test.
    """
    made: list[CacheHarness] = []

    def make(url: str, **options: Any) -> CacheHarness:
        options.setdefault("prefix", space_prefix(key_prefix))
        harness = CacheHarness(request.param, url, **options)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()


@pytest.fixture(params=["standalone", "cluster"])
def server(request: pytest.FixtureRequest) -> Any:
    """A standalone redis-server or a Cluster (``.url``, ``.client()``)."""
    if request.param == "cluster":
        request.applymarker(pytest.mark.slow)
        return request.getfixturevalue("cluster")
    return request.getfixturevalue("redis_server")
