"""Start the demo: a private redis-server (unless RCACHE_URL is set) and the three sites.

python -m demo_sites [--host 127.0.0.1] [--port 8000]

PORT is the Starlette site (landing page, JSON API, /status), PORT+1 the Flask blog and
PORT+2 the Django shop. They share one Redis and one session configuration, so a login on
one site is seen by the others. The session secret is random per start unless
RCACHE_DEMO_SECRET is set (for the demo only).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

import uvicorn
from werkzeug.serving import BaseWSGIServer, make_server

from demo_sites import django_shop, flask_blog, starlette_api
from demo_sites.shared import POSTS, PRODUCTS, Catalog, DemoConfig, demo_secret
from rcache.objects import ObjectCache
from rcache.server import RedisServer


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # uvicorn restores this handler and re-raises SIGTERM after its own shutdown; turning it
    # into SystemExit lets the finally clause below stop the servers and the redis-server.
    raise SystemExit(128 + signum)


def _serve_wsgi(host: str, port: int, app: Any) -> BaseWSGIServer:
    """Serve a WSGI app from a daemon thread (werkzeug's threaded server)."""
    server = make_server(host, port, app, threaded=True)
    threading.Thread(target=server.serve_forever, name=f"wsgi-{port}", daemon=True).start()
    return server


def run(url: str, host: str, port: int) -> None:
    config = DemoConfig(url=url, secret=demo_secret())
    cache = ObjectCache.from_url(url, prefix=config.cache_prefix)
    shop = Catalog("product", PRODUCTS, cache)
    blog = Catalog("post", POSTS, cache)
    urls = {name: f"http://{host}:{port + i}/" for i, name in enumerate(("api", "blog", "shop"))}
    links = {"Flask blog": urls["blog"], "Django shop": urls["shop"]}
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    servers: list[BaseWSGIServer] = []
    try:
        servers.append(_serve_wsgi(host, port + 1, flask_blog.make_app(config, blog)))
        servers.append(_serve_wsgi(host, port + 2, django_shop.make_wsgi_app(config, shop)))
        print(f"demo: Starlette API + landing page  {urls['api']}", flush=True)
        print(f"demo: Flask blog                    {urls['blog']}", flush=True)
        print(f"demo: Django shop                   {urls['shop']}", flush=True)
        print("demo: Ctrl-C stops it", flush=True)
        app = starlette_api.make_app(config, shop, links)
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        cache.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo_sites", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("RCACHE_DEMO_PORT", 8000)))
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    url = os.environ.get("RCACHE_URL")
    server = None
    if not url:
        server = RedisServer(unix_socket=True, appendonly=True).start()
        url = server.url
        print(f"demo: started a private redis-server, pid {server.pid}, at {url}", flush=True)
    try:
        run(url, args.host, args.port)
    finally:
        if server is not None:
            server.stop()
            print("demo: redis-server stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
