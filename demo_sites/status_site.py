"""A minimal Starlette site that shows the adapter at work: latency, breaker, counters.

Pages:
    /            HTML overview (refreshes itself every 2 s)
    /api/status  the same as JSON
    /api/visit   INCR a visit counter (a non-idempotent batch) and return it
    /dashboard/  the rcache dashboard of the site's adapter (``/dashboard/metrics`` for
                 Prometheus, ``/dashboard/json``); loopback clients only, the default
"""

from __future__ import annotations

import html
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Mount, Route

from rcache.adapter import AsyncRedisAdapter
from rcache.errors import RCacheError
from rcache.metrics import Metrics
from rcache.ops import Batch, Op
from rcache_asgi.dashboard import Dashboard

VISITS = "demo:visits"


def visit() -> Op[int]:
    (count,) = yield Batch([("INCR", VISITS)], idempotent=False)
    return int(count)


def status() -> Op[dict[str, Any]]:
    info, visits = yield Batch([("INFO", "server"), ("GET", VISITS)])
    return {
        "redis_version": info.get("redis_version"),
        "uptime_s": info.get("uptime_in_seconds"),
        "visits": int(visits or 0),
    }


async def _snapshot(adapter: AsyncRedisAdapter) -> dict[str, Any]:
    data: dict[str, Any] = {"redis": adapter.settings.redacted_url()}
    try:
        t = time.perf_counter()
        data |= await adapter.run(status())
        data["round_trip_ms"] = round((time.perf_counter() - t) * 1000, 3)
        data["ok"] = True
    except RCacheError as exc:  # the page shows the outage instead of failing
        data |= {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    data["breaker"] = adapter.breaker.state
    data["stats"] = adapter.stats.as_dict()
    return data


def make_app(url: str) -> Starlette:
    """Build the status site talking to the Redis at ``url``."""
    metrics = Metrics()
    dashboard = Dashboard(metrics)  # allow=None: loopback clients only

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # One adapter per run of the lifespan: it belongs to the loop that serves the app.
        adapter = AsyncRedisAdapter.from_url(url)
        app.state.adapter = dashboard.adapter = adapter
        metrics.add("status", adapter)
        try:
            yield
        finally:
            metrics.remove("status")
            dashboard.adapter = None
            await adapter.aclose()

    async def api_status(request: Request) -> JSONResponse:
        return JSONResponse(await _snapshot(request.app.state.adapter))

    async def api_visit(request: Request) -> JSONResponse:
        try:
            return JSONResponse({"visits": await request.app.state.adapter.run(visit())})
        except RCacheError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)

    async def index(request: Request) -> HTMLResponse:
        data = await _snapshot(request.app.state.adapter)
        rows = "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in data.items()
        )
        return HTMLResponse(
            "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=2>"
            "<title>rcache demo</title><h1>rcache: adapter status</h1>"
            f"<table>{rows}</table>"
            '<p><a href="api/visit">count a visit</a> · <a href="api/status">JSON</a>'
            ' · <a href="dashboard/">dashboard</a></p>'
        )

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/status", api_status),
            Route("/api/visit", api_visit),
            Mount("/dashboard", app=dashboard),
        ],
        lifespan=lifespan,
    )
