"""The rcache dashboard as a Flask blueprint.

::

    metrics = Metrics()
    metrics.add("cache", cache)
    app.register_blueprint(dashboard_blueprint(metrics, adapter, url_prefix="/rcache"))

It serves ``<url_prefix>/`` (the HTML page), ``<url_prefix>/metrics`` (Prometheus text)
and ``<url_prefix>/json``; every response carries ``Cache-Control: no-store``.

Access control: the page reveals the internals of the site and its Redis. ``allow``
receives the Flask request and returns whether to serve it, e.g.
``allow=lambda request: current_user.is_authenticated and current_user.is_admin``. By
default only clients on this machine are served (``REMOTE_ADDR`` loopback or a unix
socket, with no ``Forwarded``/``X-Forwarded-For``/``X-Real-IP`` header, see
:func:`rcache.dashboard.is_local_client`); the others get a 403.

``adapter`` (a sync :class:`~rcache.adapter.RedisAdapter`) feeds the Redis server panel:
one round trip of INFO per page or JSON view, none for ``/metrics``. When Redis cannot be
reached the page still renders, with a "Redis unreachable" line. The blueprint adds no
request hooks, so it does not turn off the page cache's early hits.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Request, Response, request

from rcache.adapter import RedisAdapter
from rcache.dashboard import (
    FORBIDDEN_BODY,
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

__all__ = ["dashboard_blueprint"]

# Every method reaches the view, so that a 405 too carries Cache-Control: no-store.
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def _default_allow(req: Request) -> bool:
    return is_local_client(req.remote_addr, req.headers.keys())


def _response(status: int, content_type: str, body: bytes | str) -> Response:
    response = Response(body, status=status)
    for name, value in response_headers(content_type):
        response.headers[name] = value
    return response


def dashboard_blueprint(
    metrics: MetricsSource,
    adapter: RedisAdapter | None = None,
    *,
    allow: Callable[[Request], bool] | None = None,
    url_prefix: str = "/rcache",
    title: str = "rcache",
    refresh: int = 5,
    name: str = "rcache_dashboard",
) -> Blueprint:
    """Return a blueprint serving the dashboard of ``metrics`` under ``url_prefix``.

    ``allow(request) -> bool``: who may see it; ``None`` = clients on this machine only.
    ``title``: the page heading; ``refresh``: seconds between page reloads (0: none).
    ``name``: the blueprint's name (register two dashboards under different names).
    """
    checked_refresh(refresh)
    allowed = allow if allow is not None else _default_allow
    blueprint = Blueprint(name, __name__, url_prefix=url_prefix)

    def serve(view: View) -> Response:
        if not allowed(request._get_current_object()):  # type: ignore[attr-defined]
            return _response(403, TEXT_TYPE, FORBIDDEN_BODY)
        if request.method not in ("GET", "HEAD"):
            response = _response(405, TEXT_TYPE, b"Method Not Allowed\n")
            response.headers["Allow"] = "GET, HEAD"
            return response
        if view == "metrics":
            return _response(200, PROMETHEUS_TYPE, metrics.prometheus())
        snapshot = metrics.snapshot()
        server, error = read_server(adapter)
        if view == "json":
            return _response(200, JSON_TYPE, render_json(snapshot, server, error=error))
        page = render_html(snapshot, server, title=title, refresh=refresh, error=error)
        return _response(200, HTML_TYPE, page)

    @blueprint.route("/", endpoint="page", methods=_METHODS)
    def page() -> Response:
        return serve("html")

    @blueprint.route("/metrics", endpoint="metrics", methods=_METHODS)
    def prometheus() -> Response:
        return serve("metrics")

    @blueprint.route("/json", endpoint="json", methods=_METHODS)
    def as_json() -> Response:
        return serve("json")

    return blueprint
