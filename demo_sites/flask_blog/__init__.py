"""The Flask blog: posts (object and page cache), login/logout and the shared cart's size.

Pages: ``/`` posts, ``/posts/<id>`` one post (a cached lookup and a cached page, both tagged
``post:<id>``), ``POST /posts/<id>/edit`` (invalidates and purges that tag), ``/login``
(username only: a demo) and ``POST /logout``. Sessions are rcache's ``RCacheSessionInterface``
over a store configured like the other demo sites, so a login on any of them shows here,
with the cart's size.

Page cache: ``rcache_flask.pages.PageCache`` for the views decorated with ``cached`` (the
post pages). Every page shows the visitor's name and cart size, so a visitor with either in
the session counts as logged in and bypasses the cache; the others share the cached copy.
"""

from __future__ import annotations

import html

import flask
from flask.typing import ResponseReturnValue

from demo_sites.shared import (
    PAGE_TTL,
    TAG_HEADER,
    Catalog,
    DemoConfig,
    item_tag,
    page,
    shows_visitor,
)
from rcache.sessions import SessionStore
from rcache_flask.pages import PageCache
from rcache_flask.sessions import RCacheSessionInterface

NAV = '<a href="/">posts</a> · <a href="/login">login</a>'


def make_app(config: DemoConfig, blog: Catalog) -> flask.Flask:
    """Build the blog; its session store and page cache live as long as the app."""
    app = flask.Flask(__name__)
    app.secret_key = config.secret
    app.session_interface = RCacheSessionInterface(
        SessionStore.from_url(config.url, config.session_config())
    )
    session = flask.session
    app.config["RCACHE_PAGES_URL"] = config.url
    app.config["RCACHE_PAGES_OPTIONS"] = config.page_options
    app.config["RCACHE_PAGES_CACHE_ALL_VIEWS"] = False  # only the views decorated below
    pages = PageCache(app, is_authenticated=lambda: shows_visitor(session))
    app.extensions["demo_pages"] = pages

    def render(title: str, body: str) -> str:
        cart = len(session.get("cart", []))
        nav = f"{NAV} · cart: {cart} item{'s' if cart != 1 else ''}"
        return page(title, body, session.get("user"), nav)

    @app.get("/")
    def posts() -> str:
        rows = "".join(
            f'<li><a href="/posts/{pid}">{html.escape(p["title"])}</a></li>'
            for pid, p in blog.items.items()
        )
        return render("Blog", f"<ul>{rows}</ul>")

    @app.get("/posts/<pid>")
    @pages.cached(ttl=PAGE_TTL)
    def post(pid: str) -> ResponseReturnValue:
        found = blog.lookup(pid)
        if found is None:
            flask.abort(404)
        body = (
            f"<p>{html.escape(found['body'])}</p>"
            f"<p><small>looked up at {found['computed_at']}</small></p>"
            f'<form method=post action="/posts/{pid}/edit">'
            f'<input name=title value="{html.escape(found["title"])}">'
            f'<input name=body value="{html.escape(found["body"])}"><button>save</button></form>'
        )
        return render(found["title"], body), {TAG_HEADER: item_tag("post", pid)}

    @app.post("/posts/<pid>/edit")
    def edit(pid: str) -> ResponseReturnValue:
        if pid not in blog.items:
            flask.abort(404)
        form = flask.request.form
        blog.edit(pid, **{k: form[k] for k in ("title", "body") if form.get(k)})
        pages.purge_tag(item_tag("post", pid))
        return flask.redirect(f"/posts/{pid}")

    @app.route("/login", methods=["GET", "POST"])
    def login() -> ResponseReturnValue:
        username = flask.request.form.get("username", "").strip()
        if flask.request.method == "POST" and username:
            session.regenerate()  # type: ignore[attr-defined]
            session["user"] = username
            return flask.redirect("/")
        return render(
            "Log in",
            "<form method=post><input name=username placeholder=username>"
            "<button>log in</button></form>"
            "<form method=post action=/logout><button>log out</button></form>",
        )

    @app.post("/logout")
    def logout() -> ResponseReturnValue:
        session.flush()  # type: ignore[attr-defined]
        return flask.redirect("/")

    return app


def close(app: flask.Flask) -> None:
    """Close the blog's session store and page cache (tests; the demo exits instead)."""
    assert isinstance(app.session_interface, RCacheSessionInterface)
    app.session_interface.store_for(app).close()
    app.extensions["demo_pages"].close(app)
