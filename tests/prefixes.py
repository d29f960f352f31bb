"""Key prefixes for tests: unique per test, always valid KeySpace prefixes."""

from __future__ import annotations

import uuid

__all__ = ["unique_prefix"]


def unique_prefix() -> str:
    """Return a key prefix no other test uses, e.g. ``t:k1f2e3d4c5b6:``.

    The segment starts with a letter: twelve hex digits can all be decimal digits (about
    one draw in 280), and a KeySpace refuses an integer segment (it would read as a
    version).
    """
    return f"t:k{uuid.uuid4().hex[:11]}:"
