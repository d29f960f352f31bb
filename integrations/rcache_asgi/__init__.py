"""rcache for ASGI apps (Starlette, FastAPI): framework glue only; the logic is in `rcache`."""

from __future__ import annotations

__all__: list[str] = []
