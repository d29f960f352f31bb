"""The dashboard's pure part: the HTML and JSON renderers, the routes and the access rule."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from rcache.dashboard import (
    HTML_TYPE,
    PROMETHEUS_TYPE,
    is_local_client,
    render_html,
    render_json,
    response_headers,
    view_for,
)

HOSTILE = '<script>alert("x")</script>'


def source(name: str, kind: str = "object cache", **fields: Any) -> dict[str, Any]:
    """A snapshot source as rcache.metrics.Metrics.snapshot() describes one."""
    counters = {
        "round_trips": 12,
        "commands": 15,
        "errors": 1,
        "retries": 2,
        "fast_failures": 3,
        "breaker_trips": 4,
        "hits": 7,
        "misses": 3,
    }
    base: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "adapter": "redis://127.0.0.1:6379/0#1401",
        "counters": counters,
        "hit_ratio": 0.7,
        "breaker": "closed",
        "pool": None,
        "local": None,
        "connected": None,
    }
    return base | fields


def snapshot(*sources: dict[str, Any]) -> dict[str, Any]:
    return {"taken_at": 1732480000.1, "sources": list(sources)}


SERVER = {
    "redis_version": "7.2.4",
    "redis_mode": "standalone",
    "uptime_s": 3600,
    "used_memory": 3 * 1024 * 1024,
    "maxmemory": 64 * 1024 * 1024,
    "maxmemory_policy": "allkeys-lru",
    "connected_clients": 5,
    "ops_per_sec": 1234,
    "keyspace_hits": 900,
    "keyspace_misses": 100,
    "hit_ratio": 0.9,
    "evicted_keys": 17,
    "expired_keys": 23,
    "keys": 4321,
}


def cell_texts(page: str) -> list[str]:
    return re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", page)


def test_a_hostile_name_and_values_are_escaped_everywhere() -> None:
    hostile_server = SERVER | {"maxmemory_policy": HOSTILE, "redis_version": HOSTILE}
    page = render_html(
        snapshot(
            source(HOSTILE, breaker=HOSTILE, local={HOSTILE: 1}),
            source("other", kind=HOSTILE, adapter=HOSTILE),
        ),
        hostile_server,
        title=HOSTILE,
    )
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<script" not in page.lower()


def test_the_error_line_is_escaped_too() -> None:
    page = render_html(snapshot(), None, error=HOSTILE)
    assert "<script>" not in page and "Redis unreachable: &lt;script&gt;" in page


def test_an_open_breaker_is_highlighted_and_a_closed_one_is_not() -> None:
    page = render_html(
        snapshot(source("down", breaker="open"), source("fine", breaker="closed")), None
    )
    assert '<td class="breaker bad">open</td>' in page
    assert '<td class="breaker ok">closed</td>' in page
    assert ".bad{" in page  # the class is styled


def test_a_half_open_breaker_gets_a_warning() -> None:
    page = render_html(snapshot(source("probing", breaker="half-open")), None)
    assert '<td class="breaker warn">half-open</td>' in page


def test_no_server_with_an_error_says_redis_is_unreachable() -> None:
    page = render_html(snapshot(source("cache")), None, error="BackendUnavailable: refused")
    assert "Redis unreachable: BackendUnavailable: refused" in page
    assert "maxmemory policy" not in page


def test_no_server_without_an_error_says_there_is_no_adapter() -> None:
    page = render_html(snapshot(source("cache")), None)
    assert "unreachable:" not in page and "No adapter given" in page


def test_the_server_panel_shows_the_server_figures() -> None:
    page = render_html(snapshot(), SERVER)
    for text in (
        "7.2.4 (standalone)",
        "3.0 MiB / 64.0 MiB",
        "allkeys-lru",
        "1,234",
        "90.0 % (900 hits / 100 misses)",
        "<dd>17</dd>",
        "<dd>23</dd>",
        "4,321",
    ):
        assert text in page, text
    assert "no limit" in render_html(snapshot(), SERVER | {"maxmemory": 0})


def test_refresh_zero_means_no_meta_refresh() -> None:
    assert 'http-equiv="refresh"' not in render_html(snapshot(), None, refresh=0)
    assert '<meta http-equiv="refresh" content="7">' in render_html(snapshot(), None, refresh=7)
    with pytest.raises(ValueError, match="refresh"):
        render_html(snapshot(), None, refresh=-1)


def test_the_page_is_self_contained() -> None:
    page = render_html(snapshot(source("cache")), SERVER)
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<style>" in page
    for external in ("<script", "<link", "src=", "http://", "https://", "url("):
        assert external not in page, external


def test_a_table_per_kind_in_a_fixed_order_with_the_counters() -> None:
    page = render_html(
        snapshot(
            source("subs", kind="subscriber", adapter=None, connected=False, hit_ratio=None),
            source("sessions", kind="session store"),
            source("cache", pool={"in_use": 1, "idle": 3, "max": 64}, local={"hits": 5}),
            source("raw", kind="adapter"),
        ),
        None,
    )
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings == ["Redis server", "adapter", "object cache", "session store", "subscriber"]
    cells = cell_texts(page)
    for text in ("cache", "70.0 %", "7 / 3", "12", "15", "1 / 3 / 64", "hits 5"):
        assert text in cells, text
    subscriber_table = page.split("<h2>subscriber</h2>", 1)[1]
    assert "<th>connected</th>" in subscriber_table
    assert '<td class="bad">no</td>' in subscriber_table
    assert "<th>connected</th>" not in page.split("<h2>subscriber</h2>", 1)[0]


def test_no_sources_is_said_plainly() -> None:
    assert "No sources registered" in render_html({"taken_at": None, "sources": []}, None)


def test_render_json_round_trips() -> None:
    snap = snapshot(source(HOSTILE))
    document = json.loads(render_json(snap, SERVER))
    assert document == {"snapshot": snap, "server": SERVER, "server_error": None}
    document = json.loads(render_json(snap, None, error="down"))
    assert document["server"] is None and document["server_error"] == "down"


@pytest.mark.parametrize(
    ("path", "view"),
    [("", "html"), ("/", "html"), ("/metrics", "metrics"), ("json/", "json"), ("/x", None)],
)
def test_view_for(path: str, view: str | None) -> None:
    assert view_for(path) == view


@pytest.mark.parametrize(
    "peer", ["127.0.0.1", "127.9.8.7", "::1", "[::1]", "::ffff:127.0.0.1", None, "", "<local>"]
)
def test_loopback_and_unix_peers_are_local(peer: str | None) -> None:
    assert is_local_client(peer)


@pytest.mark.parametrize(
    "peer", ["203.0.113.9", "10.0.0.1", "::ffff:203.0.113.9", "2001:db8::1", "testclient"]
)
def test_other_peers_are_not(peer: str) -> None:
    assert not is_local_client(peer)


@pytest.mark.parametrize("header", ["X-Forwarded-For", "forwarded", "X-Real-IP"])
def test_a_proxied_loopback_request_is_not_local(header: str) -> None:
    assert is_local_client("127.0.0.1", ["Host", "Accept"])
    assert not is_local_client("127.0.0.1", ["Host", header])


def test_every_response_is_no_store_and_html_gets_a_strict_policy() -> None:
    for content_type in (HTML_TYPE, PROMETHEUS_TYPE):
        assert ("Cache-Control", "no-store") in response_headers(content_type)
    policy = dict(response_headers(HTML_TYPE))["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script" not in policy
