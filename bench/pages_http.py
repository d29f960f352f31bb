"""Pages over real HTTP: gunicorn and uvicorn serving the page-cache apps, wrk as the load.

    python -m bench.pages_http [--seconds 5] [--rounds 3] [--connections 16]
                               [--frameworks django,flask,starlette,fastapi]
                               [--encodings gzip,identity] [--server-cpu 0] [--load-cpu 1]

Every contender of :mod:`bench._pages_apps` (static page, uncached view, the peer's page
cache, rcache's) gets a server of its own, all started at the beginning and left idle but
for their turn: gunicorn with one sync worker for the WSGI apps (Django, Flask), uvicorn,
one process, for the ASGI apps (Starlette, FastAPI); default settings otherwise (uvicorn
picks its pure-Python ``h11`` and ``asyncio`` when ``httptools`` and ``uvloop`` are not
installed, as here).

Pinning: every app server alone on ``--server-cpu`` (0), redis-server, wrk and this
process on ``--load-cpu`` (1). wrk runs ``wrk -t1 -c<connections> -d<seconds>s`` against one
server at a time; within a round every (contender, encoding) pair runs once, the order
rotated from round to round, so drift on a shared machine hits every contender alike. A
warm-up run of one second per pair comes first. Medians and paired ratios as in
:mod:`bench.harness` (the peer is each group's baseline); a second table gives rcache's
ratios to the peer and to the static response, paired per round.

Encodings: in group "<framework> gzip" wrk sends ``Accept-Encoding: gzip`` (rcache sends
the gzip body it stored; the peers send the plain page they stored), in "<framework>
identity" no ``Accept-Encoding`` (rcache decodes its stored body for every hit).

Checks, which stop the run when they fail: every contender answers the page's bytes
(decoded when gzip-coded) for both encodings; each cache answers the second request without
running the view (rcache says ``X-Cache: HIT``); every wrk run had no socket error and no
non-2xx answer; and no cached view ran during the timed runs (``/count/<who>/`` before and
after). Results go to stdout and ``bench/results/pages_http.json``.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench._pages_apps import FRAMEWORKS, KINDS, PAGE, count_path, page_path
from bench._pages_serve import APP_ENV, REDIS_ENV
from bench.harness import Result, pin, render_table, write_json
from bench.pages_suite import ENCODINGS, group_name, label
from rcache.server import RedisServer

__all__ = ["main"]

_ROOT = Path(__file__).resolve().parent.parent
_WSGI = ("django", "flask")
_READY_TIMEOUT = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class _Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def _get(port: int, path: str, accept_encoding: str | None) -> _Reply:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {}  # Host: 127.0.0.1:<port>, as wrk sends it (part of some cache keys)
        if accept_encoding is not None:
            headers["Accept-Encoding"] = accept_encoding
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
        fields = {k.lower(): v for k, v in response.getheaders()}
        return _Reply(response.status, fields, body)
    finally:
        conn.close()


@dataclass
class _Server:
    """One app server process and what is known of its contender."""

    framework: str
    kind: str
    port: int
    process: subprocess.Popen[bytes]
    runs_at_start: int = 0
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # encoding -> fields

    @property
    def name(self) -> str:
        return f"{self.framework} {self.kind}"

    @property
    def cached(self) -> bool:
        return self.kind in ("peer", "rcache")

    @property
    def path(self) -> str:
        return page_path(self.framework, self.kind)

    def runs(self) -> int:
        return int(_get(self.port, count_path(self.kind), None).body)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name}: the server exited ({self.process.returncode})")
            try:
                _get(self.port, "/static/", None)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name}: the server did not start") from None
                time.sleep(0.1)

    def prime(self) -> None:
        """Fill the cache; check bodies, hits and that the view does not run again."""
        for encoding, accept in ENCODINGS.items():
            first = _get(self.port, self.path, accept)
            _check(first, self.name)
            before = self.runs()
            second = _get(self.port, self.path, accept)
            _check(second, self.name)
            marker = second.headers.get("x-cache") or second.headers.get("x-fastapi-cache")
            if self.kind == "rcache" and marker != "HIT":
                raise AssertionError(f"{self.name}: the second request missed: {second.headers}")
            if self.cached and self.runs() != before:
                raise AssertionError(f"{self.name}: the view ran again on the second request")
            self.headers[encoding] = second.headers
        self.runs_at_start = self.runs()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _check(reply: _Reply, who: str) -> None:
    if reply.status != 200:
        raise AssertionError(f"{who}: status {reply.status}")
    body = reply.body
    if reply.headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    if body != PAGE:
        raise AssertionError(f"{who}: the body is not the page ({len(body)} bytes)")


def _start(framework: str, kind: str, redis_url: str, cpu: int) -> _Server:
    port = _free_port()
    env = {**os.environ, APP_ENV: f"{framework}:{kind}", REDIS_ENV: redis_url}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
    if framework in _WSGI:
        command = [
            sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "sync",
            "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "--no-control-socket",
            "bench._pages_serve:wsgi()",
        ]  # fmt: skip
    else:
        command = [
            sys.executable, "-m", "uvicorn", "--factory", "bench._pages_serve:asgi",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            "--no-access-log", "--lifespan", "on",
        ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=_ROOT, env=env, preexec_fn=lambda: os.sched_setaffinity(0, {cpu})
    )
    return _Server(framework, kind, port, process)


_RPS = re.compile(rb"Requests/sec:\s+([\d.]+)")
_ERRORS = re.compile(rb"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(rb"Non-2xx or 3xx responses: (\d+)")


def _wrk(
    wrk: str, server: _Server, accept: str | None, seconds: float, connections: int, cpu: int
) -> float:
    """Run wrk against ``server``; return requests/s (raises on errors or bad answers)."""
    command = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    if accept is not None:
        command += ["-H", f"Accept-Encoding: {accept}"]
    command.append(f"http://127.0.0.1:{server.port}{server.path}")
    out = subprocess.run(
        command,
        check=True,
        capture_output=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
    ).stdout
    rps = _RPS.search(out)
    if rps is None:
        raise RuntimeError(f"{server.name}: unexpected wrk output: {out.decode()}")
    errors = _ERRORS.search(out)
    if errors is not None and any(int(x) for x in errors.groups()):
        raise RuntimeError(f"{server.name}: wrk saw socket errors: {out.decode()}")
    bad = _NON_2XX.search(out)
    if bad is not None and int(bad.group(1)):
        raise RuntimeError(f"{server.name}: wrk got non-2xx answers: {out.decode()}")
    return float(rps.group(1))


def _verdicts(results: list[Result]) -> str:
    """rcache against the peer and the static response, paired per round (Markdown)."""
    lines = [
        "| group | rcache / peer | rcache / static | rcache median req/s |",
        "|---|---:|---:|---:|",
    ]
    groups: dict[str, dict[str, Result]] = {}
    for result in results:
        groups.setdefault(result.group, {})[result.name] = result
    for group, by_name in groups.items():
        ours = next((r for n, r in by_name.items() if n.startswith("rcache")), None)
        peer = next((r for r in by_name.values() if r.baseline), None)
        static = by_name.get(label("django", "static"))
        if ours is None or peer is None or static is None:
            continue
        to_peer = statistics.median(a / b for a, b in zip(ours.runs, peer.runs, strict=True))
        to_static = statistics.median(a / b for a, b in zip(ours.runs, static.runs, strict=True))
        lines.append(f"| {group} | {to_peer:.2f} | {to_static:.2f} | {ours.median:,.0f} |")
    return "\n".join(lines)


def _header_summary(servers: Sequence[_Server]) -> str:
    lines = []
    for server in servers:
        for encoding, fields in server.headers.items():
            names = ", ".join(sorted(fields))
            size = fields.get("content-length", "?")
            lines.append(f"- {server.name} ({encoding}): {size} B; {names}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pages_http", description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="one wrk run (s)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per contender (median)")
    parser.add_argument("--connections", type=int, default=16, help="wrk -c")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS))
    parser.add_argument("--encodings", default=",".join(ENCODINGS))
    parser.add_argument("--server-cpu", type=int, default=0, help="CPU of the app servers")
    parser.add_argument("--load-cpu", type=int, default=1, help="CPU of redis-server and wrk")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    args = parser.parse_args(argv)
    frameworks = [f for f in args.frameworks.split(",") if f]
    encodings = [e for e in args.encodings.split(",") if e]
    unknown = set(frameworks) - set(FRAMEWORKS) | set(encodings) - set(ENCODINGS)
    if unknown:
        parser.error(f"unknown framework or encoding: {', '.join(sorted(unknown))}")
    wrk = shutil.which("wrk")
    if wrk is None:
        parser.error("wrk is not installed")

    pinned = pin({args.load_cpu})
    redis = RedisServer().start()
    servers: list[_Server] = []
    try:
        pinned = pin({args.load_cpu}, redis.pid) and pinned
        for framework in frameworks:
            for kind in KINDS:
                servers.append(_start(framework, kind, redis.url, args.server_cpu))
        for server in servers:
            server.wait_ready()
            server.prime()
        pairs = [(s, e) for s in servers for e in encodings]
        results = {
            (id(s), e): Result(
                group_name(s.framework, e), label(s.framework, s.kind), baseline=s.kind == "peer"
            )
            for s, e in pairs
        }
        for server, encoding in pairs:  # warm-up
            _wrk(wrk, server, ENCODINGS[encoding], 1, args.connections, args.load_cpu)
        for round_ in range(args.rounds):
            shift = round_ * len(pairs) // max(1, args.rounds)
            for server, encoding in pairs[shift:] + pairs[:shift]:
                rps = _wrk(
                    wrk, server, ENCODINGS[encoding], args.seconds, args.connections, args.load_cpu
                )
                results[id(server), encoding].runs.append(rps)
        failed = [
            f"{s.name}: the view ran {s.runs() - s.runs_at_start} times while timed"
            for s in servers
            if s.cached and s.runs() != s.runs_at_start
        ]
        if failed:
            raise AssertionError("; ".join(failed))
    finally:
        for server in servers:
            server.stop()
        redis.stop()

    ordered = [
        results[id(s), e]
        for framework in frameworks
        for e in encodings
        for s in servers
        if s.framework == framework
    ]
    print(render_table(ordered))
    print()
    print(_verdicts(ordered))
    print(
        f"\n{args.rounds} rounds of wrk -t1 -c{args.connections} -d{max(1, round(args.seconds))}s "
        f"per contender; app servers on CPU {args.server_cpu}, redis-server and wrk on CPU "
        f"{args.load_cpu} (pinned: {pinned}). Checked: bodies, hits, no view run while timed."
    )
    print("\nResponse header fields (second request, as timed):")
    print(_header_summary(servers))
    out = args.json or Path(__file__).parent / "results" / "pages_http.json"
    write_json(
        out,
        "pages_http",
        ordered,
        {
            "seconds": max(1, round(args.seconds)),
            "rounds": args.rounds,
            "connections": args.connections,
            "server_cpu": args.server_cpu,
            "load_cpu": args.load_cpu,
            "pinned": pinned,
            "headers": {s.name: s.headers for s in servers},
        },
    )
    print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
