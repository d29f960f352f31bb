"""Start the demo: a private redis-server (unless RCACHE_URL is set) and the demo site.

python -m demo_sites [--host 127.0.0.1] [--port 8000]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from types import FrameType

import uvicorn

from demo_sites.status_site import make_app
from rcache.server import RedisServer


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # uvicorn restores this handler and re-raises SIGTERM after its own shutdown; turning it
    # into SystemExit lets the finally clause below stop the private redis-server.
    raise SystemExit(128 + signum)


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
        print(f"demo: open http://{args.host}:{args.port}/  (Ctrl-C stops it)", flush=True)
        uvicorn.run(make_app(url), host=args.host, port=args.port, log_level="warning")
    finally:
        if server is not None:
            server.stop()
            print("demo: redis-server stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
