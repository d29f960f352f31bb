"""The rcache dashboard as Django views, and the URL patterns to include them.

::

    # urls.py
    from rcache_django.dashboard import dashboard_urls

    urlpatterns = [
        path("rcache/", include(dashboard_urls(METRICS, ADAPTER, allow=lambda r: r.user.is_staff))),
    ]

It serves ``rcache/`` (the HTML page), ``rcache/metrics`` (Prometheus text) and
``rcache/json``; every response carries ``Cache-Control: no-store``.

Access control: the page reveals the internals of the site and its Redis. ``allow``
receives the :class:`~django.http.HttpRequest` and returns whether to serve it. The usual
choice is ``allow=lambda r: r.user.is_staff`` (it needs ``AuthenticationMiddleware``). By
default only clients on this machine are served (``REMOTE_ADDR`` loopback or a unix
socket, with no ``Forwarded``/``X-Forwarded-For``/``X-Real-IP`` header, see
:func:`rcache.dashboard.is_local_client`); the others get a 403.

``adapter`` (a sync :class:`~rcache.adapter.RedisAdapter`) feeds the Redis server panel:
one round trip of INFO per page or JSON view, none for ``metrics``. When Redis cannot be
reached the page still renders, with a "Redis unreachable" line.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse  # type: ignore[import-untyped, unused-ignore]
from django.urls import URLPattern, path  # type: ignore[import-untyped, unused-ignore]

from rcache.adapter import RedisAdapter
from rcache.dashboard import (
    FORBIDDEN_BODY,
    FORWARDING_HEADERS,
    HTML_TYPE,
    JSON_TYPE,
    PROMETHEUS_TYPE,
    TEXT_TYPE,
    MetricsSource,
    View,
    checked_refresh,
    is_local_client,
    render_html,
    render_json,
    response_headers,
)
from rcache.metrics import read_server

__all__ = ["DashboardViews", "dashboard_urls"]

# The META keys of FORWARDING_HEADERS: "x-forwarded-for" -> "HTTP_X_FORWARDED_FOR".
_FORWARDING_META = tuple("HTTP_" + h.upper().replace("-", "_") for h in FORWARDING_HEADERS)


def _default_allow(request: HttpRequest) -> bool:
    meta = request.META
    names = [h for h, key in zip(FORWARDING_HEADERS, _FORWARDING_META, strict=True) if key in meta]
    return is_local_client(meta.get("REMOTE_ADDR"), names)


def _response(status: int, content_type: str, body: bytes | str) -> HttpResponse:
    response = HttpResponse(body, status=status)
    for name, value in response_headers(content_type):
        response[name] = value
    return response


class DashboardViews:
    """The three views of one dashboard; :func:`dashboard_urls` routes to them.

    ``allow(request) -> bool``: who may see it; ``None`` = clients on this machine only.
    ``title``: the page heading; ``refresh``: seconds between page reloads (0: none).
    """

    def __init__(
        self,
        metrics: MetricsSource,
        adapter: RedisAdapter | None = None,
        *,
        allow: Callable[[HttpRequest], bool] | None = None,
        title: str = "rcache",
        refresh: int = 5,
    ) -> None:
        self.metrics = metrics
        self.adapter = adapter
        self.allow = allow if allow is not None else _default_allow
        self.title = title
        self.refresh = checked_refresh(refresh)

    def page(self, request: HttpRequest) -> HttpResponse:
        """The HTML page."""
        return self._serve(request, "html")

    def prometheus(self, request: HttpRequest) -> HttpResponse:
        """The figures as Prometheus text (no round trip to Redis)."""
        return self._serve(request, "metrics")

    def json(self, request: HttpRequest) -> HttpResponse:
        """The snapshot and the server's figures as JSON."""
        return self._serve(request, "json")

    def _serve(self, request: HttpRequest, view: View) -> HttpResponse:
        if not self.allow(request):
            return _response(403, TEXT_TYPE, FORBIDDEN_BODY)
        if request.method not in ("GET", "HEAD"):
            response = _response(405, TEXT_TYPE, b"Method Not Allowed\n")
            response["Allow"] = "GET, HEAD"
            return response
        if view == "metrics":
            return _response(200, PROMETHEUS_TYPE, self.metrics.prometheus())
        snapshot = self.metrics.snapshot()
        server, error = read_server(self.adapter)
        if view == "json":
            return _response(200, JSON_TYPE, render_json(snapshot, server, error=error))
        page = render_html(snapshot, server, title=self.title, refresh=self.refresh, error=error)
        return _response(200, HTML_TYPE, page)


def dashboard_urls(
    metrics: MetricsSource,
    adapter: RedisAdapter | None = None,
    *,
    allow: Callable[[HttpRequest], bool] | None = None,
    title: str = "rcache",
    refresh: int = 5,
    name: str = "rcache_dashboard",
) -> list[URLPattern]:
    """Return URL patterns for ``path("rcache/", include(dashboard_urls(...)))``.

    The views are named ``name``, ``name + "_metrics"`` and ``name + "_json"`` (give a
    second dashboard another ``name``). See :class:`DashboardViews` for the arguments.
    """
    views = DashboardViews(metrics, adapter, allow=allow, title=title, refresh=refresh)
    return [
        path("", views.page, name=name),
        path("metrics", views.prometheus, name=f"{name}_metrics"),
        path("json", views.json, name=f"{name}_json"),
    ]
