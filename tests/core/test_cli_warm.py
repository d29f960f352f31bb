"""``rcache warm``: fetch pages so the page cache holds them, over real HTTP on loopback."""

from __future__ import annotations

import io
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from flask import Flask

from rcache.cli import main
from rcache_flask.pages import PageCache

NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old_stdin, sys.stdin = sys.stdin, io.StringIO(stdin)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(argv))
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


class Scripted(ThreadingHTTPServer):
    """A site whose pages answer MISS the first time and HIT afterwards."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: Counter[str] = Counter()
        self.headers_seen: list[dict[str, str]] = []
        self.lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Scripted

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, x_cache: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if x_cache:
            self.send_header("X-Cache", x_cache)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.seen[self.path] += 1
            n = self.server.seen[self.path]
            self.server.headers_seen.append(dict(self.headers.items()))
        base = self.server.base
        if self.path == "/sitemap.xml":
            locs = "".join(f"<url><loc>{base}/page/{i}</loc></url>" for i in range(3))
            self._send(200, f'<urlset xmlns="{NS}">{locs}</urlset>'.encode())
        elif self.path == "/index.xml":
            body = f'<sitemapindex xmlns="{NS}"><sitemap><loc>{base}/sitemap.xml</loc></sitemap>'
            self._send(200, (body + "</sitemapindex>").encode())
        elif self.path == "/loop.xml":
            body = f'<sitemapindex xmlns="{NS}"><sitemap><loc>{base}/loop.xml</loc></sitemap>'
            self._send(200, (body + "</sitemapindex>").encode())
        elif self.path == "/broken.xml":
            self._send(200, b"<urlset><url>")
        elif self.path == "/boom":
            self._send(500, b"boom", "BYPASS")
        elif self.path.startswith("/never"):
            self._send(200, b"<p>private</p>", "BYPASS")
        else:
            self._send(200, b"<p>page</p>", "MISS" if n == 1 else "HIT")


@pytest.fixture
def site() -> Iterator[Scripted]:
    server = Scripted()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_help_lists_warm() -> None:
    code, out, _ = run("warm", "--help")
    assert code == 0 and "--sitemap" in out and "--verify" in out


def test_warms_every_url_once_and_reports_status_and_x_cache(site: Scripted) -> None:
    a, b = f"{site.base}/page/a", f"{site.base}/page/b"
    code, out, _ = run("warm", a, b, a, "-H", "Accept-Language: fr")
    assert code == 0
    assert site.seen == Counter({"/page/a": 1, "/page/b": 1})  # the duplicate fetched once
    assert "200 MISS" in out and a in out and b in out
    assert "2 of 2 pages warmed" in out
    assert all(h.get("Accept-Language") == "fr" for h in site.headers_seen)
    assert all(h.get("Accept-Encoding") == "gzip" for h in site.headers_seen)


def test_verify_needs_a_hit_on_the_second_request(site: Scripted) -> None:
    good, never = f"{site.base}/page/v", f"{site.base}/never"
    code, out, _ = run("warm", "--verify", good, never)
    assert code == 1  # the page the cache never keeps is a failure under --verify
    assert site.seen["/page/v"] == 2 and site.seen["/never"] == 2
    assert "then HIT" in out and "then BYPASS" in out
    assert "1 of 2 pages warmed, 1 failed" in out


def test_sitemap_and_sitemap_index(site: Scripted) -> None:
    code, out, _ = run("warm", "--sitemap", f"{site.base}/index.xml")
    assert code == 0, out
    assert [site.seen[f"/page/{i}"] for i in range(3)] == [1, 1, 1]
    assert "3 of 3 pages warmed" in out


def test_urls_from_a_file_and_stdin(site: Scripted, tmp_path: Any) -> None:
    listing = tmp_path / "urls.txt"
    listing.write_text(f"# the shop\n{site.base}/page/f1\n\n{site.base}/page/f2\n")
    assert run("warm", "--from-file", str(listing))[0] == 0
    assert run("warm", "--from-file", "-", stdin=f"{site.base}/page/s1\n")[0] == 0
    assert {"/page/f1", "/page/f2", "/page/s1"} <= set(site.seen)


def test_failures_are_counted_not_raised(site: Scripted) -> None:
    dead = "http://127.0.0.1:9/nothing-listens-here"  # port 9 (discard): refused on loopback
    code, out, _ = run("warm", f"{site.base}/boom", dead, "--timeout", "5")
    assert code == 1
    assert "500 BYPASS" in out and "--- -" in out
    assert "0 of 2 pages warmed, 2 failed" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["warm"], "no pages to warm"),
        (["warm", "ftp://127.0.0.1/x"], "not an http(s) URL"),
        (["warm", "file:///etc/passwd"], "not an http(s) URL"),
        (["warm", "http://127.0.0.1:1/", "-H", "no colon"], "Name: value"),
        (["warm", "http://127.0.0.1:1/", "-c", "0"], "--concurrency"),
    ],
)
def test_bad_usage_exits_2_with_a_clear_message(argv: list[str], message: str) -> None:
    code, _, err = run(*argv)
    assert code == 2 and message in err


def test_bad_sitemaps_are_clear_errors(site: Scripted) -> None:
    code, _, err = run("warm", "--sitemap", f"{site.base}/broken.xml")
    assert code == 2 and "not valid XML" in err
    code, _, err = run("warm", "--sitemap", f"{site.base}/loop.xml")
    assert code == 2 and "deeper than one level" in err
    code, _, err = run("warm", "--sitemap", "http://127.0.0.1:9/sitemap.xml", "--timeout", "5")
    assert code == 2 and "cannot read the sitemap" in err


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def test_warm_then_verify_against_a_real_page_cache(redis_server: Any, key_prefix: str) -> None:
    app = Flask(__name__)
    prefix = "w" + key_prefix.strip(":").replace(":", "")
    app.config.update(RCACHE_PAGES_URL=redis_server.url, RCACHE_PAGES_PREFIX=prefix)
    pages = PageCache()
    pages.init_app(app)
    calls: Counter[str] = Counter()

    @app.get("/p/<name>")
    def page(name: str) -> str:
        calls[name] += 1
        return f"<p>{name}</p>" * 200

    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        code, out, _ = run("warm", "--verify", f"{base}/p/one", f"{base}/p/two")
        assert code == 0, out
        assert out.count("200 MISS") == 2 and out.count("then HIT") == 2
        assert calls == Counter({"one": 1, "two": 1})  # the verifying request was a cache hit
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        pages.close(app)
