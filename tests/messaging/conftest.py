"""Fixtures of the messaging tests: ``side`` runs each test through the sync or async API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from messaging_helpers import Side


@pytest.fixture(params=["sync", "async"])
def side(request: pytest.FixtureRequest, key_prefix: str) -> Iterator[Side]:
    """A :class:`Side` of the given kind; everything it built is closed afterwards."""
    s = Side(request.param, key_prefix)
    yield s
    s.close()


@pytest.fixture
def channel(key_prefix: str) -> str:
    """A pub/sub channel name unique to the test (channels are server-wide)."""
    return key_prefix + "ch"
