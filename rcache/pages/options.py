"""What one view or route asks of the page cache: the options the framework glue shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

__all__ = ["PageOptions"]


@dataclass(frozen=True, slots=True)
class PageOptions:
    """Per-view options, handed to ``store()`` / ``handle()`` by the integrations.

    ``ttl``: seconds the page stays fresh here, whatever the response says about its
    freshness (``no-store``, ``private`` and ``no-cache`` still win); None: from the
    response, else the policy's ``default_ttl``; 0: never stored. ``tags``: purge tags,
    added to those of the ``Cache-Tag`` header. ``vary``: request header names added to
    the response's ``Vary``. ``allow_set_cookie``: store the page even if it sets cookies
    (without them; None: the policy decides).
    """

    ttl: float | timedelta | None = None
    tags: tuple[str, ...] = ()
    vary: tuple[str, ...] = ()
    allow_set_cookie: bool | None = None

    def __post_init__(self) -> None:
        if isinstance(self.tags, str) or isinstance(self.vary, str):
            raise TypeError("tags and vary must be sequences of str, not a single str")
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "vary", tuple(self.vary))

    @classmethod
    def of(
        cls,
        ttl: float | timedelta | None,
        tags: Sequence[str],
        vary: Sequence[str],
        allow_set_cookie: bool | None,
    ) -> PageOptions:
        """Return checked options (a single str for ``tags`` or ``vary`` is a mistake)."""
        return cls(ttl, tags, vary, allow_set_cookie)  # type: ignore[arg-type]

    def store_kwargs(self, *, storable: bool = True) -> dict[str, Any]:
        """Return the keyword arguments of ``store()``; a ttl of 0 when it must not store."""
        return {
            "ttl": self.ttl if storable else 0,
            "tags": self.tags,
            "vary": self.vary,
            "allow_set_cookie": self.allow_set_cookie,
        }
