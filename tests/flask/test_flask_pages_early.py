"""Hits answered by the WSGI wrapper, before Flask builds a request, and when they are not."""

from __future__ import annotations

from typing import Any

from flask import Response

from tests.flask.test_flask_pages import Site, make_site, xc

__all__ = ["make_site"]


def _count_flask_requests(site: Site) -> list[str]:
    """Return a list that grows by one path per request Flask itself handles."""
    seen: list[str] = []

    @site.app.teardown_request
    def count(exc: BaseException | None) -> None:
        from flask import request

        seen.append(request.path)

    return seen


def test_a_hit_is_answered_before_flask_with_the_same_fields(
    make_site: Any, redis_server: Any
) -> None:
    early = make_site(redis_server)
    hooked = make_site(redis_server, early_hits=False)
    seen = _count_flask_requests(early)
    for site in (early, hooked):
        assert xc(site.get("/page/e")) in ("MISS", "HIT")
    assert seen == ["/page/e"]
    fast, slow = (
        early.get("/page/e", **{"Accept-Encoding": "gzip"}),
        hooked.get("/page/e", **{"Accept-Encoding": "gzip"}),
    )
    assert seen == ["/page/e"]  # Flask never saw the hit
    assert xc(fast) == xc(slow) == "HIT" and fast.data == slow.data
    assert fast.status == slow.status == "200 OK"

    def without_age(response: Any) -> list[tuple[str, str]]:
        return [(k, v) for k, v in response.headers.items() if k != "Age"]

    assert without_age(fast) == without_age(slow)
    head = early.client.head("/page/e")
    assert (xc(head), head.data, head.headers["Content-Length"]) == ("HIT", b"", "11")


def test_304_and_misses_go_through_flask_with_the_lookup_made(
    make_site: Any, redis_server: Any
) -> None:
    site = make_site(redis_server)
    seen = _count_flask_requests(site)
    etag = site.get("/page/n").headers["ETag"]
    not_modified = site.get("/page/n", **{"If-None-Match": etag})
    assert (not_modified.status_code, xc(not_modified)) == (304, "HIT")
    assert "Content-Type" not in not_modified.headers and len(seen) == 2
    assert site.cache.purge_url("http://localhost/page/n")
    again = site.get("/page/n")  # learned URL, now a miss: the view runs once, is stored
    assert (xc(again), again.data, site.calls["n"]) == ("MISS", b"<p>n #2</p>", 2)
    assert xc(site.get("/page/n")) == "HIT" and len(seen) == 3


def test_other_hooks_session_cookies_and_users_keep_flask_in_the_way(
    make_site: Any, redis_server: Any
) -> None:
    site = make_site(redis_server)
    seen = _count_flask_requests(site)
    site.get("/page/h")
    cookie = site.get("/page/h", Cookie="session=abc")
    assert xc(cookie) == "HIT" and len(seen) == 2  # the session cookie: through Flask

    stamping = make_site(redis_server)
    stamped_seen = _count_flask_requests(stamping)

    @stamping.app.after_request
    def stamp(response: Response) -> Response:
        response.headers["X-Stamp"] = "1"
        return response

    stamping.get("/page/s")
    stamped = stamping.get("/page/s")
    assert (xc(stamped), stamped.headers.get("X-Stamp"), len(stamped_seen)) == ("HIT", "1", 2)

    user = make_site(redis_server, is_authenticated=lambda: False)
    user_seen = _count_flask_requests(user)
    assert [xc(user.get("/page/u")) for _ in range(2)] == ["MISS", "HIT"]
    assert len(user_seen) == 2  # the user is only known inside Flask


def test_a_url_rewritten_inside_the_wrapper_is_never_answered_early(
    make_site: Any, redis_server: Any
) -> None:
    site = make_site(redis_server)
    seen = _count_flask_requests(site)
    inner = site.app.wsgi_app.wsgi_app  # type: ignore[attr-defined]

    def rewrite(environ: dict[str, Any], start_response: Any) -> Any:
        environ["PATH_INFO"] = environ["PATH_INFO"].replace("/alias/", "/page/")
        return inner(environ, start_response)

    site.app.wsgi_app.wsgi_app = rewrite  # type: ignore[attr-defined]
    assert [xc(site.get("/alias/r")) for _ in range(3)] == ["MISS", "HIT", "HIT"]
    assert len(seen) == 3
