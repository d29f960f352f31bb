"""On Redis Cluster: the page cache lives in one slot, so a hit stays one round trip."""

from __future__ import annotations

from typing import Any

from pages_harness import View, page, request, x_cache
from redis.crc import key_slot


def test_hit_purge_and_single_flight_on_cluster(make_pages: Any, cluster: Any) -> None:
    h = make_pages(cluster.url)
    view = View(page(b"<p>de</p>", ("Vary", "Accept-Language"), ("Cache-Tag", "t")), delay=0.2)
    de = request("/c/x", ("Accept-Language", "de"))
    results = h.concurrently(5, de, view)
    assert sorted(x_cache(r) for r in results) == ["HIT"] * 4 + ["MISS"]
    rt = h.stats.round_trips
    assert x_cache(h.handle(de, view)) == "HIT"
    assert h.stats.round_trips - rt == 1

    raw = cluster.client()
    try:
        prefix = h.key_space.prefix
        keys = [k for k in raw.scan_iter(match=f"*{prefix}*", target_nodes=raw.ALL_NODES)]
    finally:
        raw.close()
    assert len(keys) >= 7  # spec, variant, URL, "/", "/c", "/c/x", tag, clock
    assert len({key_slot(k) for k in keys}) == 1

    for purge in (lambda: h.purge_tag("t"), lambda: h.purge_prefix("/c"), lambda: h.purge_url(de)):
        assert x_cache(h.handle(de, view)) in ("HIT", "MISS")  # refilled
        assert x_cache(h.handle(de, view)) == "HIT"
        assert purge()
        assert x_cache(h.handle(de, view)) == "MISS"
