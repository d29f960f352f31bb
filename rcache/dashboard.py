"""The stats page, framework-neutral: HTML and JSON renderers and the access rule (no I/O).

The integrations mount it (``rcache_asgi.dashboard``, ``rcache_flask.dashboard``,
``rcache_django.dashboard``); each serves three paths below where it is mounted::

    ""         HTML_TYPE        render_html(metrics.snapshot(), server_info, ...)
    "metrics"  PROMETHEUS_TYPE  metrics.prometheus()
    "json"     JSON_TYPE        render_json(metrics.snapshot(), server_info)

The page is one self-contained document: inline CSS, no script, no external asset, every
value escaped, and a ``<meta http-equiv="refresh">``. Responses are never cached
(``Cache-Control: no-store``) and, unless the application says otherwise, only served to
clients on the same machine: see :func:`is_local_client`.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any, Literal, Protocol

__all__ = [
    "FORBIDDEN_BODY",
    "FORWARDING_HEADERS",
    "HTML_TYPE",
    "JSON_TYPE",
    "KIND_ORDER",
    "PROMETHEUS_TYPE",
    "TEXT_TYPE",
    "MetricsSource",
    "View",
    "checked_refresh",
    "is_local_client",
    "render_html",
    "render_json",
    "response_headers",
    "view_for",
]

HTML_TYPE = "text/html; charset=utf-8"
JSON_TYPE = "application/json"
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"

#: The body of the 403 every integration sends when access is refused.
FORBIDDEN_BODY = (
    b"Forbidden: the rcache dashboard shows the internals of this site and its Redis, so by "
    b"default it answers only clients on this machine (127.0.0.0/8, ::1, a unix socket) "
    b"that did not come through a proxy. Pass allow=... to the dashboard to open it to "
    b"others, e.g. allow=lambda request: request.user.is_staff in Django.\n"
)

#: Request headers (lower case) that show a proxy in between: the peer address is then the
#: proxy's, so a loopback peer says nothing about the client.
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")

#: Source kinds in the order the page shows their tables; unknown kinds come after.
KIND_ORDER = ("adapter", "object cache", "page cache", "session store", "subscriber")

View = Literal["html", "metrics", "json"]

_UNIX_PEERS = frozenset({"", "<local>"})  # what servers report for a unix-socket peer
_DASH = "\N{EM DASH}"
_BREAKER_CLASSES = {"open": "bad", "half-open": "warn", "closed": "ok"}


class MetricsSource(Protocol):
    """What the dashboard needs of :class:`rcache.metrics.Metrics`."""

    def snapshot(self) -> dict[str, Any]: ...

    def prometheus(self) -> str: ...


def view_for(subpath: str) -> View | None:
    """Return the view a path below the mount point names (``""``, ``"metrics"``, ``"json"``).

    Leading and trailing slashes do not matter; ``None`` for any other path (a 404).
    """
    name = subpath.strip("/")
    if name == "":
        return "html"
    if name in ("metrics", "json"):
        return name  # type: ignore[return-value]  # narrowed by the test above
    return None


def checked_refresh(refresh: int) -> int:
    """Return ``refresh`` (seconds between page reloads, 0 = none); ValueError if negative."""
    if refresh < 0:
        raise ValueError(f"refresh must be >= 0 seconds, not {refresh!r}")
    return refresh


def is_local_client(peer: str | None, header_names: Iterable[str] = ()) -> bool:
    """Tell whether the default access rule lets a request in.

    ``peer``: the client address as the server reports it (ASGI ``scope["client"][0]``,
    WSGI ``REMOTE_ADDR``); ``None``, ``""`` and Werkzeug's ``"<local>"`` mean a unix-socket
    peer. Allowed: loopback addresses (127.0.0.0/8, ``::1``, IPv4-mapped loopback) and unix
    sockets, unless ``header_names`` (any case) include a :data:`FORWARDING_HEADERS` entry:
    behind a reverse proxy on the same host every client looks like loopback.
    """
    if any(name.lower() in FORWARDING_HEADERS for name in header_names):
        return False
    if peer is None or peer in _UNIX_PEERS:
        return True
    try:
        address = ipaddress.ip_address(peer.strip("[]"))
    except ValueError:
        return False  # not an address at all ("testclient", say): not provably local
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def response_headers(content_type: str) -> list[tuple[str, str]]:
    """Return the headers of a dashboard response: never stored, no sniffing, no script."""
    headers = [
        ("Content-Type", content_type),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
    ]
    if content_type == HTML_TYPE:
        headers.append(("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"))
    return headers


def render_json(
    snapshot: Mapping[str, Any], server: Mapping[str, Any] | None, *, error: str | None = None
) -> bytes:
    """Return ``{"snapshot": ..., "server": ..., "server_error": ...}`` as UTF-8 JSON.

    ``server`` is ``None`` when no adapter was given or Redis could not be reached;
    ``error`` then says why (``None`` when there was no adapter).
    """
    document = {"snapshot": snapshot, "server": server, "server_error": error}
    return json.dumps(document, default=str).encode("utf-8")


def render_html(
    snapshot: Mapping[str, Any],
    server: Mapping[str, Any] | None,
    *,
    title: str = "rcache",
    refresh: int = 5,
    error: str | None = None,
) -> str:
    """Return the dashboard page for a :meth:`Metrics.snapshot` and a ``server_info`` dict.

    ``refresh``: seconds between reloads (``0``: the page never reloads itself).
    ``server``: ``None`` when there is no adapter or Redis is unreachable; ``error`` is then
    shown as "Redis unreachable: <error>".
    """
    checked_refresh(refresh)
    head = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="robots" content="noindex">',
    ]
    if refresh:
        head.append(f'<meta http-equiv="refresh" content="{int(refresh)}">')
    head += [f"<title>{escape(title)}</title>", f"<style>{_CSS}</style></head><body>"]
    taken = _timestamp(snapshot.get("taken_at"))
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">snapshot {taken}'
        + (f" &middot; refreshes every {int(refresh)} s" if refresh else "")
        + ' &middot; <a href="metrics">Prometheus</a> &middot; <a href="json">JSON</a></p>',
        _server_panel(server, error),
        *_source_tables(snapshot.get("sources") or ()),
        "</body></html>",
    ]
    return "\n".join(head + body) + "\n"


_CSS = (
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}"
    "h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}"
    ".meta{color:#666;margin-top:0}"
    "table{border-collapse:collapse;margin-bottom:.5em}"
    "th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right;white-space:nowrap}"
    "th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}"
    "td.id{text-align:left;color:#666;font-size:.9em}"
    ".ok{color:#186a1c}.warn{background:#fff3cd}.bad{background:#f8d7da;color:#842029;"
    "font-weight:bold}"
    ".unreachable{background:#f8d7da;color:#842029;padding:.5em .8em;font-weight:bold}"
    "dl.server{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;margin:0}"
    "dl.server dt{color:#666}dl.server dd{margin:0}"
)


def _e(value: object) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return escape(str(value), quote=True)


def _number(value: object) -> str:
    if value is None:
        return _DASH
    if isinstance(value, bool):
        return _e(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return _e(value)


def _ratio(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value * 100:.1f} %"
    return _DASH if value is None else _e(value)


def _bytes(value: object) -> str:
    if not isinstance(value, int) or isinstance(value, bool):
        return _number(value)
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _timestamp(value: object) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return _DASH
    try:
        moment = datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return _e(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _server_panel(server: Mapping[str, Any] | None, error: str | None) -> str:
    if server is None:
        if error is not None:
            return f'<h2>Redis server</h2><p class="unreachable">Redis unreachable: {_e(error)}</p>'
        return '<h2>Redis server</h2><p class="meta">No adapter given: no server panel.</p>'
    maxmemory = server.get("maxmemory")
    limit = "no limit" if maxmemory == 0 else _bytes(maxmemory)
    version = _e(server.get("redis_version", _DASH))
    if server.get("redis_mode"):
        version += f" ({_e(server['redis_mode'])})"
    hits, misses = server.get("keyspace_hits"), server.get("keyspace_misses")
    rows = [
        ("version", version),
        ("uptime", f"{_number(server.get('uptime_s'))} s"),
        ("memory used / max", f"{_bytes(server.get('used_memory'))} / {limit}"),
        ("maxmemory policy", _e(server.get("maxmemory_policy", _DASH))),
        ("connected clients", _number(server.get("connected_clients"))),
        ("ops/s", _number(server.get("ops_per_sec"))),
        (
            "keyspace hit ratio",
            f"{_ratio(server.get('hit_ratio'))} ({_number(hits)} hits / {_number(misses)} misses)",
        ),
        ("evicted keys", _number(server.get("evicted_keys"))),
        ("expired keys", _number(server.get("expired_keys"))),
        ("keys", _number(server.get("keys"))),
    ]
    if server.get("expires") is not None:
        rows[-1] = ("keys", f"{rows[-1][1]} ({_number(server['expires'])} with a TTL)")
    cells = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    return f'<h2>Redis server</h2><dl class="server">{cells}</dl>'


def _source_tables(sources: Sequence[Mapping[str, Any]]) -> list[str]:
    by_kind: dict[str, list[Mapping[str, Any]]] = {}
    for source in sources:
        by_kind.setdefault(str(source.get("kind", "other")), []).append(source)
    order = [k for k in KIND_ORDER if k in by_kind] + sorted(set(by_kind) - set(KIND_ORDER))
    if not order:
        return ['<p class="meta">No sources registered.</p>']
    return [_table(kind, by_kind[kind]) for kind in order]


def _table(kind: str, sources: list[Mapping[str, Any]]) -> str:
    # Optional columns appear only when some source in the table has them.
    has_pool = any(s.get("pool") is not None for s in sources)
    has_local = any(s.get("local") is not None for s in sources)
    has_connected = any(s.get("connected") is not None for s in sources)
    header = [
        "name",
        "Redis",
        "hit ratio",
        "hits / misses",
        "round trips",
        "commands",
        "errors",
        "retries",
        "fast failures",
        "breaker",
        "breaker trips",
    ]
    header += ["pool in use / idle / max"] * has_pool + ["local tier"] * has_local
    header += ["connected"] * has_connected
    rows = []
    for source in sources:
        counters: Mapping[str, Any] = source.get("counters") or {}
        cells = [
            f"<td>{_e(source.get('name', ''))}</td>",
            f'<td class="id">{_e(source.get("adapter") or _DASH)}</td>',
            f"<td>{_ratio(source.get('hit_ratio'))}</td>",
            f"<td>{_number(counters.get('hits'))} / {_number(counters.get('misses'))}</td>",
            *(
                f"<td>{_number(counters.get(name))}</td>"
                for name in ("round_trips", "commands", "errors", "retries", "fast_failures")
            ),
            _breaker_cell(source.get("breaker")),
            f"<td>{_number(counters.get('breaker_trips'))}</td>",
        ]
        if has_pool:
            cells.append(f"<td>{_pool(source.get('pool'))}</td>")
        if has_local:
            cells.append(f'<td class="id">{_counters(source.get("local"))}</td>')
        if has_connected:
            cells.append(_connected_cell(source.get("connected")))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f"<th>{name}</th>" for name in header)
    return f"<h2>{_e(kind)}</h2><table><tr>{head}</tr>{''.join(rows)}</table>"


def _breaker_cell(state: object) -> str:
    if state is None:
        return f"<td>{_DASH}</td>"
    css = _BREAKER_CLASSES.get(str(state))
    attribute = f' class="breaker {css}"' if css else ' class="breaker"'
    return f"<td{attribute}>{_e(state)}</td>"


def _connected_cell(connected: object) -> str:
    if connected is None:
        return f"<td>{_DASH}</td>"
    if connected:
        return '<td class="ok">yes</td>'
    return '<td class="bad">no</td>'


def _pool(pool: object) -> str:
    if not isinstance(pool, Mapping):
        return _DASH
    return " / ".join(_number(pool.get(k)) for k in ("in_use", "idle", "max"))


def _counters(local: object) -> str:
    if not isinstance(local, Mapping):
        return _DASH
    return " &middot; ".join(f"{_e(k)} {_number(v)}" for k, v in local.items()) or _DASH
