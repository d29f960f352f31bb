"""The Flask blog: posts (object cache), login/logout and the shared cart's size.

Pages: ``/`` posts, ``/posts/<id>`` one post (a cached lookup, tag ``post:<id>``),
``POST /posts/<id>/edit`` (invalidates that tag), ``/login`` (username only: a demo) and
``POST /logout``. Sessions are rcache's ``RCacheSessionInterface`` over a store configured
like the other demo sites, so a login on any of them shows here, with the cart's size.
"""

from __future__ import annotations

import html

import flask
from flask.typing import ResponseReturnValue

from demo_sites.shared import Catalog, DemoConfig, page
from rcache.sessions import SessionStore
from rcache_flask.sessions import RCacheSessionInterface

NAV = '<a href="/">posts</a> · <a href="/login">login</a>'


def make_app(config: DemoConfig, blog: Catalog) -> flask.Flask:
    """Build the blog; its session store lives as long as the app (one per process)."""
    app = flask.Flask(__name__)
    app.secret_key = config.secret
    app.session_interface = RCacheSessionInterface(
        SessionStore.from_url(config.url, config.session_config())
    )
    session = flask.session

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
    def post(pid: str) -> str:
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
        return render(found["title"], body)

    @app.post("/posts/<pid>/edit")
    def edit(pid: str) -> ResponseReturnValue:
        if pid not in blog.items:
            flask.abort(404)
        form = flask.request.form
        blog.edit(pid, **{k: form[k] for k in ("title", "body") if form.get(k)})
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
