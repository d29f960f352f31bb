"""``rcache warm``: fill the page cache by requesting pages, the way a visitor would.

The pages come from the command line, a file (one URL per line, ``#`` comments) or a
sitemap (``<urlset>``, or a ``<sitemapindex>`` one level deep). Each is fetched with GET
by a small pool of threads; the line printed per page carries the status, the
``X-Cache`` header the page cache answered with, and the time taken. ``--verify`` fetches
each page a second time and counts it as warm only if that answer is a ``HIT``.
"""

from __future__ import annotations

import argparse
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple, TextIO

_SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
MAX_SITEMAP_BYTES = 50 * 1024 * 1024  # the sitemap protocol's own limit per file


class Fetched(NamedTuple):
    """The outcome of one GET."""

    url: str
    status: int | None  # None: no HTTP answer at all
    x_cache: str
    millis: float
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 400


def _checked(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return url


def _headers(raw: Sequence[str]) -> dict[str, str]:
    headers = {"User-Agent": "rcache-warm", "Accept-Encoding": "gzip"}
    for line in raw:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--header wants 'Name: value', got {line!r}")
        headers[name.strip()] = value.strip()
    return headers


def fetch(url: str, headers: dict[str, str], timeout: float) -> Fetched:
    """GET ``url`` and read the whole body (so the server finishes and stores the page)."""
    request = urllib.request.Request(url, headers=headers, method="GET")
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            response.read()
            status, x_cache = response.status, response.headers.get("X-Cache", "")
    except urllib.error.HTTPError as exc:  # a 4xx/5xx answer: still an HTTP status
        exc.close()
        status, x_cache = exc.code, exc.headers.get("X-Cache", "") if exc.headers else ""
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Fetched(url, None, "", (time.perf_counter() - t) * 1000, str(reason))
    return Fetched(url, status, x_cache, (time.perf_counter() - t) * 1000)


def sitemap_urls(url: str, headers: dict[str, str], timeout: float, depth: int = 1) -> list[str]:
    """Return the page URLs a sitemap lists (following a sitemap index ``depth`` levels)."""
    request = urllib.request.Request(
        _checked(url), headers={**headers, "Accept-Encoding": "identity"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked)
            body = response.read(MAX_SITEMAP_BYTES + 1)
    except (urllib.error.URLError, OSError) as exc:
        raise ValueError(f"cannot read the sitemap {url}: {getattr(exc, 'reason', exc)}") from exc
    if len(body) > MAX_SITEMAP_BYTES:
        raise ValueError(f"the sitemap {url} is larger than {MAX_SITEMAP_BYTES} bytes")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ValueError(f"the sitemap {url} is not valid XML: {exc}") from exc
    locs = [el.text.strip() for el in root.iter(_SITEMAP_NS + "loc") if el.text and el.text.strip()]
    if root.tag == _SITEMAP_NS + "sitemapindex":
        if depth <= 0:
            raise ValueError(f"the sitemap index {url} nests deeper than one level")
        pages: list[str] = []
        for child in locs:
            pages += sitemap_urls(child, headers, timeout, depth - 1)
        return pages
    if root.tag != _SITEMAP_NS + "urlset":
        raise ValueError(f"{url} is neither a <urlset> nor a <sitemapindex>")
    return locs


def _read_list(path: str, stdin: TextIO) -> list[str]:
    if path == "-":
        lines: Iterable[str] = stdin
    else:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    return [s for s in (line.strip() for line in lines) if s and not s.startswith("#")]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    warm = sub.add_parser(
        "warm",
        help="fill the page cache: GET every page of a list or a sitemap (exit 1 on a failure)",
    )
    warm.add_argument("urls", nargs="*", metavar="URL", help="pages to request")
    warm.add_argument(
        "--from-file", metavar="FILE", help="read URLs from FILE (one per line; - is stdin)"
    )
    warm.add_argument("--sitemap", metavar="URL", help="request every page a sitemap lists")
    warm.add_argument(
        "-c", "--concurrency", type=int, default=4, help="requests in flight (default 4)"
    )
    warm.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra request header (repeatable), e.g. a Host or an Accept-Language variant",
    )
    warm.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per request (default 30)"
    )
    warm.add_argument(
        "--verify", action="store_true", help="request each page again; it must answer X-Cache: HIT"
    )


def cmd_warm(args: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    if args.concurrency < 1 or args.timeout <= 0:
        raise ValueError("--concurrency must be >= 1 and --timeout > 0")
    headers = _headers(args.header)
    urls = list(args.urls)
    if args.from_file:
        urls += _read_list(args.from_file, stdin)
    if args.sitemap:
        urls += sitemap_urls(args.sitemap, headers, args.timeout)
    urls = [_checked(u) for u in dict.fromkeys(urls)]  # in order, each once
    if not urls:
        raise ValueError("no pages to warm: give URLs, --from-file or --sitemap")

    def one(url: str) -> tuple[Fetched, Fetched | None]:
        first = fetch(url, headers, args.timeout)
        again = fetch(url, headers, args.timeout) if args.verify and first.ok else None
        return first, again

    failed = 0
    with ThreadPoolExecutor(max_workers=min(args.concurrency, len(urls))) as pool:
        for first, again in pool.map(one, urls):
            status = str(first.status) if first.status is not None else "---"
            line = f"{status} {first.x_cache or '-':<6} {first.millis:8.1f} ms  {first.url}"
            bad = not first.ok
            if first.error:
                line += f"  ({first.error})"
            if again is not None:
                hit = again.ok and again.x_cache.upper().startswith("HIT")
                line += f"  then {again.x_cache or again.status or 'no answer'}"
                bad = bad or not hit
            failed += bad
            print(line, file=out)
    warmed = len(urls) - failed
    print(
        f"{warmed} of {len(urls)} pages warmed" + (f", {failed} failed" if failed else ""), file=out
    )
    return 1 if failed else 0
