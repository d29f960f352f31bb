"""A tiny Flask app whose views use the session the ways real apps do.

``HOOKS["after_load"]``, when a test sets it, runs inside a view right after the session
was loaded and before it is changed: the place where a concurrent request, a logout or an
outage is staged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Response, jsonify, session, stream_with_context

HOOKS: dict[str, Callable[[], None]] = {}


def _after_load() -> None:
    hook = HOOKS.get("after_load")
    if hook is not None:
        hook()


def make_app(**config: Any) -> Flask:
    """Return the app; ``config`` goes into ``app.config``."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY="flask-tests-secret-key-0123456789abcdef", **config)

    @app.get("/read")
    def read() -> Any:
        return jsonify(dict(session.items()))

    @app.get("/untouched")
    def untouched() -> Any:
        return "no session here"

    @app.get("/set/<key>/<value>")
    def set_value(key: str, value: str) -> Any:
        session.get("user")  # load first, as a view that checks the login would
        _after_load()
        session[key] = value
        return jsonify(set=key)

    @app.get("/login/<name>")
    def login(name: str) -> Any:
        session.regenerate()  # type: ignore[attr-defined]
        session["user"] = name
        return jsonify(user=name)

    @app.get("/logout")
    def logout() -> Any:
        session.flush()  # type: ignore[attr-defined]
        return jsonify(user=None)

    @app.get("/append/<value>")
    def append(value: str) -> Any:
        cart = session.setdefault("cart", [])
        _after_load()
        cart.append(value)  # a change inside a value: Flask's idiom is to say so
        session.modified = True
        return jsonify(cart=cart)

    @app.get("/crash")
    def crash() -> Any:
        session["half-done"] = True
        raise RuntimeError("the view failed after changing the session")

    @app.get("/stream")
    def stream() -> Response:
        session["streamed"] = "yes"

        def chunks() -> Iterator[str]:
            yield "one,"
            yield f"two,{session['streamed']}"

        return Response(stream_with_context(chunks()), mimetype="text/plain")

    return app
