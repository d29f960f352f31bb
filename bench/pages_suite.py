"""Pages: a cached 20 KB page through Django, Flask, Starlette and FastAPI, in process.

For each framework four contenders serve the same page (:mod:`bench._pages_apps`): the
static page (a view returning the bytes, no cache: the limit), the uncached view, the
peer's page cache (the baseline of the group, so a ratio reads "x / peer") and rcache's.
Requests go through each framework's in-process machinery (:mod:`bench._pages_drivers`),
the same for every contender of a framework.

Each framework is measured twice: in group "<framework> gzip" every request says
``Accept-Encoding: gzip`` (rcache sends its stored gzip body as it is, about a fifth of
the page; the peers send the plain page, as they stored it), in "<framework> identity" no
request carries ``Accept-Encoding`` (rcache decodes its gzip body on every hit, the peers
send what they stored).

Checks, before the timing and after it: every contender answers 200 with the page's bytes
(decoded when gzip-coded); each cache answers the second request from Redis (rcache says
``X-Cache: HIT``); and the cached views did not run once between the first request and the
end of the run (each app's ``/count/<who>/``). A failed check stops the run.

The HTTP counterpart, with real servers and wrk, is :mod:`bench.pages_http`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench._pages_apps import (
    FRAMEWORKS,
    KINDS,
    OURS,
    PEERS,
    configure_django,
    count_path,
    django_client,
    fastapi_app,
    flask_app,
    page_path,
    rcache_async_cache,
    starlette_app,
)
from bench._pages_drivers import AsgiDriver, Driver, Reply, check_page, django_driver, flask_driver
from bench.harness import Contender

__all__ = ["ENCODINGS", "LABELS", "contenders", "group_name", "label"]

#: Group suffix -> the ``Accept-Encoding`` every request of the group sends (None: none).
ENCODINGS: dict[str, str | None] = {"gzip": "gzip", "identity": None}
LABELS = {"django": "Django", "flask": "Flask", "starlette": "Starlette", "fastapi": "FastAPI"}

Body = Callable[[], Any]


def label(framework: str, kind: str) -> str:
    """Return the table name of a contender."""
    if kind == "static":
        return "static response (no cache)"
    if kind == "uncached":
        return "uncached view"
    return PEERS[framework] if kind == "peer" else OURS[framework]


def group_name(framework: str, encoding: str) -> str:
    return f"{LABELS[framework]} {encoding}"


def _driver(framework: str, kind: str, url: str) -> Driver:
    if framework == "django":
        from django.conf import settings

        if not settings.configured:
            configure_django(url)
        return django_driver(django_client(kind))
    if framework == "flask":
        return flask_driver(flask_app(kind, url))
    asgi = AsgiDriver()
    cache = None
    if kind == "rcache":
        cache = asgi.build(lambda: rcache_async_cache(framework, url))
        asgi.closers.append(cache.aclose)
    if framework == "starlette":
        asgi.app = asgi.build(lambda: starlette_app(kind, url, cache))
    else:
        asgi.app = app = asgi.build(lambda: fastapi_app(kind, url, cache))
        if app.state.bench_init is not None:
            asgi.build(app.state.bench_init)
    return asgi.driver()


def hit_marker(reply: Reply) -> str | None:
    """Return what a reply says about the cache (rcache, fastapi-cache2), if anything."""
    return reply.header("x-cache") or reply.header("x-fastapi-cache")


@dataclass
class _Site:
    framework: str
    kind: str
    driver: Driver
    runs_at_start: int = 0

    @property
    def cached(self) -> bool:
        return self.kind in ("peer", "rcache")

    def runs(self) -> int:
        reply = self.driver.get(count_path(self.kind), None)
        return int(reply.body)

    def prime(self, encoding: str | None) -> None:
        """Fill the cache and check the second request is a hit with the page's bytes."""
        who = f"{self.framework} {self.kind}"
        path = page_path(self.framework, self.kind)
        check_page(self.driver.get(path, encoding), who)
        before = self.runs()
        second = self.driver.get(path, encoding)
        check_page(second, who)
        if self.kind == "rcache" and hit_marker(second) != "HIT":
            raise AssertionError(f"{who}: the second request was not a hit ({second.headers})")
        if self.cached and self.runs() != before:
            raise AssertionError(f"{who}: the view ran again on the second request")


class _Suite:
    """Builds each site once (both encodings share it); checks the counts at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sites: dict[tuple[str, str], _Site] = {}

    def site(self, framework: str, kind: str) -> _Site:
        site = self.sites.get((framework, kind))
        if site is None:
            site = _Site(framework, kind, _driver(framework, kind, self.url))
            self.sites[framework, kind] = site
        return site

    def setup(self, framework: str, kind: str, encoding: str | None) -> Callable[[], Body]:
        def setup() -> Body:
            site = self.site(framework, kind)
            site.prime(encoding)
            site.runs_at_start = site.runs()
            get, path = site.driver.get, page_path(framework, kind)
            return lambda: get(path, encoding)

        return setup

    def finish(self) -> None:
        failed = []
        try:
            for (framework, kind), site in self.sites.items():
                if site.cached and site.runs() != site.runs_at_start:
                    ran = site.runs() - site.runs_at_start
                    failed.append(f"{framework} {kind}: the view ran {ran} times while timed")
        finally:
            for site in self.sites.values():
                site.driver.close()
        for line in failed:
            print(f"pages suite: {line}", file=sys.stderr)
        if failed:
            raise AssertionError("a cached contender did not hit: " + "; ".join(failed))
        print("Checked: every cached view ran 0 times during the timed rounds.\n")


def contenders(tcp_url: str, unix_url: str) -> list[Contender]:
    """Return the suite's contenders (TCP: how these apps reach Redis in production)."""
    suite = _Suite(tcp_url)
    out: list[Contender] = []
    for framework in FRAMEWORKS:
        for encoding, accept in ENCODINGS.items():
            group = group_name(framework, encoding)
            for kind in KINDS:
                out.append(
                    Contender(
                        group,
                        label(framework, kind),
                        suite.setup(framework, kind, accept),
                        baseline=kind == "peer",
                    )
                )
    out[-1].teardown = suite.finish
    return out
