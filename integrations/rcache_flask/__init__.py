"""rcache for Flask: framework glue only; everything else lives in the `rcache` core."""

from __future__ import annotations

__all__: list[str] = []
