"""Sessions: a full request through Django, Flask and an ASGI app, rcache against its peers.

Each framework's app (:mod:`bench._sessions_apps`) runs once with an rcache session
integration and once with the session library people use with that framework, on the
same benchmark redis-server (TCP), each in a database of its own:

==========  ===============================================  ===============================
framework   peer (the baseline of its groups)                 rcache
==========  ===============================================  ===============================
Django      ``django.contrib.sessions.backends.cache`` on     ``rcache_django.sessions``
            django-redis, Django's ``SessionMiddleware``      and its ``SessionMiddleware``
Flask       Flask-Session, ``SESSION_TYPE="redis"``           ``RCacheSessionInterface``
            (a redis-py client of the same server)            (``RCACHE_SESSION_URL``)
ASGI        starsessions ``SessionMiddleware`` +              ``rcache_asgi.sessions``
            ``RedisStore`` + ``SessionAutoloadMiddleware``    ``SessionMiddleware``
==========  ===============================================  ===============================

Peers keep their defaults (as their docs show), except starsessions' ``lifetime``, set to
Django's default of two weeks (its default, 0, is a browser-session cookie). Flask-Session's
defaults (``SESSION_PERMANENT`` and Flask's ``SESSION_REFRESH_EACH_REQUEST``) write the
session back on every request, and starsessions always does: that is how they slide the
expiry, which rcache does inside its load.

Requests go through each framework's in-process machinery, the same for both libraries
of a framework: a direct WSGI call to Django's ``WSGIHandler`` (not ``django.test.Client``,
which leaks three ``weakref.finalize`` objects per request, see
:class:`bench._sessions_apps.DjangoSite`), Flask's ``test_client``, and for the ASGI apps a
direct ASGI call (the scope, ``receive`` and ``send`` an ASGI server would give a GET), one
``loop.run_until_complete`` per request in the app's own event loop. The ASGI apps are not
driven through ``httpx.AsyncClient(transport=ASGITransport(app))``: its own cost per
request is several times that of the session work measured here and would hide it. A
login in setup stores a session of five keys and every timed request sends its cookie.
Groups: "<framework> read-only" (the view reads one key) and "<framework> modify" (it
reads one key and changes another); the peer is each group's baseline, so a ratio reads
"rcache / peer".

Round trips are counted by redis-server, not by the clients: after the timed rounds each
contender runs alone for :data:`COUNTED` requests between two ``INFO stats cpu
commandstats`` snapshots. ``total_reads_processed`` counts the read events of client
connections: one per round trip, however many commands (pipelined, or MULTI ... EXEC) it
carries. ``total_commands_processed`` and ``commandstats`` count every command, the ones a
Lua script runs included; the commands the client sent are that total for a library that
runs no script, and rcache's ``adapter.stats.commands`` for rcache, whose
``stats.round_trips`` is shown too. ``used_cpu_user + used_cpu_sys`` gives the server's CPU
time per request, which matters here: client and server share one CPU. The counts are
printed (before the timing table) and written to ``bench/results/sessions_roundtrips.json``.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._peers import db_url
from bench._sessions_apps import (
    LIFETIME,
    SECRET,
    AsgiSite,
    DjangoSite,
    FlaskSite,
    Site,
    configure_django,
    flask_app,
    starlette_app,
)
from bench.harness import Contender

__all__ = ["contenders"]

COUNTED = 200  # requests per contender between the two server snapshots
WARM = 20  # requests before the first snapshot

DB = {  # one database per library and framework
    "django-redis": 1,
    "rcache django": 2,
    "flask-session": 3,
    "rcache flask": 4,
    "starsessions": 5,
    "rcache asgi": 6,
}

Body = Callable[[], Any]


# -- the sites -------------------------------------------------------------------------------


def _django(url: str, ours: bool) -> Site:
    from django.conf import settings

    if not settings.configured:
        configure_django(db_url(url, DB["django-redis"]), db_url(url, DB["rcache django"]))
    if ours:
        return DjangoSite("rcache_django.sessions", "rcache_django.sessions.SessionMiddleware")
    return DjangoSite(
        "django.contrib.sessions.backends.cache",
        "django.contrib.sessions.middleware.SessionMiddleware",
    )


def _flask_session(url: str) -> Site:
    import redis
    from flask_session import Session

    client = redis.Redis.from_url(db_url(url, DB["flask-session"]))

    def configure(app: Any) -> None:
        app.config.update(SESSION_TYPE="redis", SESSION_REDIS=client)
        Session(app)

    site = FlaskSite(flask_app(configure))
    site.closers.append(client.close)
    return site


def _flask_rcache(url: str) -> Site:
    from rcache_flask.sessions import RCacheSessionInterface

    interface = RCacheSessionInterface()

    def configure(app: Any) -> None:
        app.config["RCACHE_SESSION_URL"] = db_url(url, DB["rcache flask"])
        interface.init_app(app)

    app = flask_app(configure)
    store = interface.store_for(app)
    site = FlaskSite(app, adapter=store.adapter)
    site.closers.append(store.close)
    return site


def _starsessions(url: str) -> Site:
    import redis.asyncio
    from starlette.middleware import Middleware
    from starsessions import SessionAutoloadMiddleware, SessionMiddleware
    from starsessions.stores.redis import RedisStore

    site = AsgiSite("session")
    client = site.build(lambda: redis.asyncio.Redis.from_url(db_url(url, DB["starsessions"])))
    site.closers.append(client.aclose)
    middleware = [
        Middleware(SessionMiddleware, store=RedisStore(connection=client), lifetime=LIFETIME),
        Middleware(SessionAutoloadMiddleware),
    ]
    site.serve(starlette_app(middleware))
    return site


def _asgi_rcache(url: str) -> Site:
    from starlette.middleware import Middleware

    from rcache.sessions import AsyncSessionStore, SessionConfig
    from rcache_asgi.sessions import SessionMiddleware

    config = SessionConfig(secret_keys=[SECRET])
    site = AsgiSite(config.cookie_name)
    store = site.build(lambda: AsyncSessionStore.from_url(db_url(url, DB["rcache asgi"]), config))
    site.closers.append(store.aclose)
    site.adapter = store.adapter
    site.serve(starlette_app([Middleware(SessionMiddleware, store=store)]))
    return site


# (framework, peer name, peer builder, rcache name, rcache builder)
FRAMEWORKS: list[tuple[str, str, Callable[[str], Site], str, Callable[[str], Site]]] = [
    (
        "Django",
        "Django cache sessions on django-redis",
        lambda url: _django(url, ours=False),
        "rcache_django.sessions + its middleware",
        lambda url: _django(url, ours=True),
    ),
    (
        "Flask",
        "Flask-Session (redis)",
        _flask_session,
        "rcache_flask RCacheSessionInterface",
        _flask_rcache,
    ),
    (
        "ASGI",
        "starsessions (RedisStore, autoload)",
        _starsessions,
        "rcache_asgi SessionMiddleware",
        _asgi_rcache,
    ),
]
KINDS = [("read-only", "read"), ("modify", "modify")]


# -- counting on the server ------------------------------------------------------------------


@dataclass
class _Timed:
    """A contender whose body was built: what the count needs of it."""

    group: str
    name: str
    body: Body
    adapter: Any = None


@dataclass
class _Count:
    """What redis-server (and rcache's adapter) counted for one contender, per request."""

    group: str
    name: str
    requests: int
    round_trips: float  # the server's read events
    top_level: float | None  # commands the client sent (None: not determinable)
    commands: float  # every command the server ran, inside Lua scripts too
    transactions: float  # EXEC
    server_cpu_us: float  # redis-server CPU time (µs)
    adapter_round_trips: float | None  # rcache's adapter.stats (None for a peer)
    adapter_commands: float | None
    per_command: dict[str, float] = field(default_factory=dict)


def _snapshot(monitor: Any) -> dict[str, Any]:
    info: dict[str, Any] = monitor.info("stats", "cpu", "commandstats")
    return info


def _cpu(info: dict[str, Any]) -> float:
    """The server's CPU time so far (s): user and system."""
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


_SCRIPTS = {"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"}


def _count(monitor: Any, timed: _Timed) -> _Count:
    """Run ``timed`` alone for :data:`COUNTED` requests between two server snapshots."""
    for _ in range(WARM):
        timed.body()
    stats = timed.adapter.stats if timed.adapter is not None else None
    trips0, cmds0 = (stats.round_trips, stats.commands) if stats is not None else (0, 0)
    before = _snapshot(monitor)
    for _ in range(COUNTED):
        timed.body()
    after = _snapshot(monitor)
    calls: dict[str, int] = {}
    for key, value in after.items():
        if key.startswith("cmdstat_"):
            was = before.get(key, {}).get("calls", 0)
            if value["calls"] != was:
                calls[key.removeprefix("cmdstat_").upper()] = value["calls"] - was
    # The delta holds one INFO (a snapshot's own command and read): not the contender's.
    info = calls.pop("INFO", 0)
    reads = after["total_reads_processed"] - before["total_reads_processed"] - info
    commands = after["total_commands_processed"] - before["total_commands_processed"] - info
    n = COUNTED
    adapter_trips = adapter_cmds = None
    if stats is not None:
        adapter_trips = (stats.round_trips - trips0) / n
        adapter_cmds = (stats.commands - cmds0) / n
    # The server does not tell a script's commands from the client's: without scripts every
    # command is the client's; with them, only rcache's adapter knows what it sent.
    if not _SCRIPTS & set(calls):
        top_level: float | None = commands / n
    else:
        top_level = adapter_cmds
    return _Count(
        group=timed.group,
        name=timed.name,
        requests=n,
        round_trips=reads / n,
        top_level=top_level,
        commands=commands / n,
        transactions=calls.get("EXEC", 0) / n,
        server_cpu_us=(_cpu(after) - _cpu(before)) * 1e6 / n,
        adapter_round_trips=adapter_trips,
        adapter_commands=adapter_cmds,
        per_command={k: v / n for k, v in sorted(calls.items(), key=lambda kv: (-kv[1], kv[0]))},
    )


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.0f}" if x == int(x) else f"{x:.2f}"


def render_counts(counts: list[_Count]) -> str:
    """Return the round-trip table (Markdown), one row per contender."""
    lines = [
        "| benchmark | library | round trips | commands sent | commands run (with Lua's) "
        "| MULTI/EXEC | rcache adapter round trips | server CPU µs | commands run |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in counts:
        per = ", ".join(f"{k} {_num(v)}" for k, v in c.per_command.items()) or "none"
        lines.append(
            f"| {c.group} | {c.name} | {_num(c.round_trips)} | {_num(c.top_level)} "
            f"| {_num(c.commands)} | {_num(c.transactions)} | {_num(c.adapter_round_trips)} "
            f"| {c.server_cpu_us:.0f} | {per} |"
        )
    return "\n".join(lines)


# -- the suite -------------------------------------------------------------------------------


class _Suite:
    """Builds each site once (both groups of a library share it); counts; closes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sites: dict[str, Site] = {}
        self.timed: list[_Timed] = []

    def site(self, name: str, build: Callable[[str], Site]) -> Site:
        site = self.sites.get(name)
        if site is None:
            site = self.sites[name] = build(self.url)
            site.login()
        return site

    def setup(
        self, group: str, name: str, build: Callable[[str], Site], action: str
    ) -> Callable[[], Body]:
        def setup() -> Body:
            site = self.site(name, build)
            body: Body = getattr(site, action)
            self.timed.append(_Timed(group, name, body, site.adapter))
            return body

        return setup

    def finish(self) -> None:
        import redis

        monitor = redis.Redis.from_url(self.url)
        try:
            counts = [_count(monitor, timed) for timed in self.timed]
            for name, site in self.sites.items():  # the session must have lasted the run
                try:
                    site.check()
                except AssertionError as exc:
                    print(f"sessions suite: {name}: {exc}", file=sys.stderr)
        finally:
            monitor.close()
            for site in self.sites.values():
                site.close()
        print(
            f"Per request, counted by redis-server over {COUNTED} requests of each contender "
            "run alone.\nRound trips: the server's read events (total_reads_processed). "
            "Commands sent: by the client (pipelined when more than the round trips). "
            "Commands run: total_commands_processed, which counts the commands of Lua "
            "scripts too.\n"
        )
        print(render_counts(counts))
        print()
        out = Path(__file__).parent / "results" / "sessions_roundtrips.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "suite": "sessions",
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "requests_per_contender": COUNTED,
            "counts": [c.__dict__ for c in counts],
        }
        out.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"Round-trip counts JSON: {out}\n")


def contenders(tcp_url: str, unix_url: str) -> list[Contender]:
    """Return the suite's contenders (TCP: how these apps reach Redis in production)."""
    suite = _Suite(tcp_url)
    out: list[Contender] = []
    for framework, peer, build_peer, ours, build_ours in FRAMEWORKS:
        for kind, action in KINDS:
            group = f"{framework} {kind}"
            out.append(
                Contender(group, peer, suite.setup(group, peer, build_peer, action), baseline=True)
            )
            out.append(Contender(group, ours, suite.setup(group, ours, build_ours, action)))
    out[-1].teardown = suite.finish
    return out
