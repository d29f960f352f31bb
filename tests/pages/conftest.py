"""Fixtures of the page-cache tests: ``make_pages`` (sync and async)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pages_harness import PagesHarness, space_prefix


@pytest.fixture(params=["sync", "async"])
def make_pages(request: pytest.FixtureRequest, key_prefix: str) -> Iterator[Any]:
    """Return ``make(url, **options) -> PagesHarness``; caches are closed after the test.

    The prefix defaults to one unique to the test, so two caches made in one test with the
    default share their pages (like two workers of one site).
    """
    made: list[PagesHarness] = []

    def make(url: str, **options: Any) -> PagesHarness:
        options.setdefault("prefix", space_prefix(key_prefix))
        harness = PagesHarness(request.param, url, **options)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()
