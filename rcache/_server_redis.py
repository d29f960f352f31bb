"""One private ``redis-server`` process: :class:`RedisServer` (re-exported by rcache.server)."""

from __future__ import annotations

import functools
import logging
import signal
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from rcache._server_process import (
    BindError,
    ManagedProcess,
    answers_as,
    conf_line,
    find_free_port,
    launch,
    make_temp_dir,
    recreate_temp_dir,
    remove_temp_dir,
)
from rcache._server_tls import TLSFiles, generate_tls_files
from rcache.errors import ConfigurationError

__all__ = ["HOST", "RedisServer"]

log = logging.getLogger("rcache.server")

T = TypeVar("T")

#: Every private server listens on this address only.
HOST = "127.0.0.1"

_BIND_ATTEMPTS = 5
_MAX_UNIX_PATH = 100  # bytes; sun_path is 108 on Linux, 104 on macOS
_FSYNC_POLICIES = ("always", "everysec", "no")


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


class RedisServer:
    """A private ``redis-server`` child process on 127.0.0.1 and/or a unix socket.

    Each server has its own temporary directory (config, log, data, socket, TLS files).
    :meth:`start` waits until PING answers; :meth:`stop` ends the process by pid and removes
    the directory; :meth:`restart` keeps the directory, the port and the socket. Needs
    Redis 7.0 or newer.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        unix_socket: bool | str = False,
        tcp: bool | None = None,
        password: str | None = None,
        acl_users: Mapping[str, str] | None = None,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        maxmemory: int | str | None = None,
        maxmemory_policy: str | None = None,
        tls: bool = False,
        replicaof: tuple[str, int] | None = None,
        cluster: bool = False,
        config: Mapping[str, str] | None = None,
        binary: str = "redis-server",
        startup_timeout: float = 10.0,
    ) -> None:
        """Describe the server; nothing runs until :meth:`start`.

        ``port=None`` picks a free loopback port at start. ``unix_socket=True`` puts a socket
        in the server's directory; a string is the socket path. ``tcp=None`` (the default)
        means plain TCP unless ``tls`` is set: a TLS server is TLS-only unless ``tcp=True``.
        ``acl_users`` maps user names to passwords (all commands, keys and channels);
        ``password`` is the default user's. ``config`` adds raw ``redis.conf`` directives,
        written last so they win. ``startup_timeout`` is in seconds.
        """
        self._tcp = (not tls) if tcp is None else tcp
        self._tls = tls
        if port is not None and not 0 < port < 65536:
            raise ConfigurationError(f"port must be within 1..65535, not {port}")
        if not (self._tcp or tls or unix_socket):
            raise ConfigurationError("a server needs tcp, tls or a unix_socket to listen on")
        if cluster and not (self._tcp or tls):
            raise ConfigurationError("a cluster node needs a TCP or TLS port")
        if appendfsync not in _FSYNC_POLICIES:
            raise ConfigurationError(f"appendfsync must be one of {_FSYNC_POLICIES}")
        if isinstance(unix_socket, str) and len(unix_socket.encode()) > _MAX_UNIX_PATH:
            raise ConfigurationError(f"unix socket path longer than {_MAX_UNIX_PATH} bytes")
        if startup_timeout <= 0:
            raise ConfigurationError("startup_timeout must be positive (seconds)")
        self._fixed_port = port
        self._unix_socket = unix_socket
        self._password = password
        self._acl_users = dict(acl_users or {})
        self._appendonly = appendonly
        self._appendfsync = appendfsync
        self._maxmemory = maxmemory
        self._maxmemory_policy = maxmemory_policy
        self._replicaof = replicaof
        self._cluster = cluster
        self._config = dict(config or {})
        self._binary = binary
        self._startup_timeout = startup_timeout

        self._proc: ManagedProcess | None = None
        self._dir: Path | None = None
        self._dir_exists = False
        self._port: int | None = None
        self._tls_port: int | None = None
        self._bus_port: int | None = None
        self._settled = False  # ports fixed by a successful start, kept for every later start

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the process (if not running) and wait until it answers PING; return self.

        Raises RuntimeError (with the end of the server's log) if the process exits during
        startup, TimeoutError if it does not answer within ``startup_timeout`` seconds.
        """
        if self.is_running():
            return self
        fresh = self._dir is None or not self._dir_exists
        directory = self._ensure_dir()
        try:
            self._start_in(directory)
        except BaseException:
            if fresh:  # nothing worth keeping: the error message has the end of the log
                remove_temp_dir(directory)
                self._dir_exists = False
            raise
        return self

    def _start_in(self, directory: Path) -> None:
        if self._tls and not (directory / "redis.crt").exists():
            generate_tls_files(directory)
        conf = directory / "redis.conf"
        for attempt in range(1, _BIND_ATTEMPTS + 1):
            if not self._settled:
                self._pick_ports()
            if not self._settled or not conf.exists():
                conf.write_text(self._render_config(directory))
                conf.chmod(0o600)
            try:
                self._proc = self._launch(conf)
            except BindError as exc:
                if self._settled or attempt == _BIND_ATTEMPTS or not self._has_auto_port():
                    raise
                log.info("redis-server could not bind (attempt %d), new ports: %s", attempt, exc)
                continue
            self._settled = True
            log.info("started redis-server pid %d at %s", self._proc.pid, self._safe_url())
            return

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop the process (SIGTERM, SIGKILL after ``timeout`` s) and remove its directory.

        A later :meth:`start` uses the same ports and (if free) the same directory path, but
        with no data. Safe to call more than once.
        """
        try:
            if self._proc is not None:
                pid = self._proc.pid
                self._proc.stop(timeout)
                self._proc = None
                log.info("stopped redis-server pid %d", pid)
        finally:  # even if interrupted (a signal handler raising SystemExit, say)
            if self._dir is not None and self._dir_exists:
                remove_temp_dir(self._dir)
                self._dir_exists = False
            if isinstance(self._unix_socket, str):
                Path(self._unix_socket).unlink(missing_ok=True)  # left behind by a kill()

    def restart(self, keep_data: bool = True) -> None:
        """Stop and start again on the same ports, socket and directory.

        With ``keep_data`` the dataset survives: the AOF with ``appendonly``, else an RDB
        snapshot (SAVE) taken just before stopping. Without it the data files are deleted.
        """
        if self._proc is not None:
            if keep_data and not self._appendonly and self._proc.is_running():
                self._save_snapshot()
            self._proc.stop()
            self._proc = None
        if not keep_data:
            self._delete_data()
        self.start()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` (SIGKILL: a crash) and, if it ends the process, reap it.

        The directory is left as it is, so :meth:`start` comes back with whatever the crash
        left on disk. Other signals (SIGSTOP, SIGCONT) are sent without waiting.
        """
        if self._proc is None:
            return
        self._proc.kill(sig)
        if not self._proc.is_running():
            self._proc = None

    def is_running(self) -> bool:
        """Return True while the process is alive (it may not answer yet, or be SIGSTOPped)."""
        return self._proc is not None and self._proc.is_running()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        if not self._settled:
            return "RedisServer(not started)"
        state = f"pid={self._proc.pid}" if self.is_running() and self._proc else "stopped"
        return f"RedisServer(url={self._safe_url()!r}, {state})"

    # -- addresses -------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """Return the address every TCP/TLS listener is bound to: ``127.0.0.1``."""
        return HOST

    @property
    def pid(self) -> int:
        """Return the process id; RuntimeError if the server is not running."""
        if self._proc is None or not self._proc.is_running():
            raise RuntimeError(f"{self!r} is not running")
        return self._proc.pid

    @property
    def port(self) -> int:
        """Return the port :attr:`url` uses: plain TCP, or TLS on a TLS-only server."""
        if self._tcp:
            return self._need(self._port, "a TCP port")
        return self.tls_port

    @property
    def tls_port(self) -> int:
        """Return the TLS port; ValueError if the server was made without ``tls``."""
        if not self._tls:
            raise ValueError("this RedisServer has no TLS port (tls=False)")
        return self._need(self._tls_port, "a TLS port")

    @property
    def cluster_bus_port(self) -> int:
        """Return the cluster bus port of a ``cluster=True`` node."""
        if not self._cluster:
            raise ValueError("this RedisServer is not a cluster node (cluster=False)")
        return self._need(self._bus_port, "a cluster bus port")

    @property
    def unix_path(self) -> str:
        """Return the unix socket path; ValueError if the server has no unix socket."""
        if isinstance(self._unix_socket, str):
            return self._unix_socket
        if not self._unix_socket:
            raise ValueError("this RedisServer has no unix socket (unix_socket=False)")
        return str(self.dir / "redis.sock")

    @property
    def dir(self) -> Path:
        """Return the server's own directory (config, log, data; removed by :meth:`stop`)."""
        return self._need(self._dir, "a directory")

    @property
    def log_path(self) -> Path:
        """Return the path of the server's log file."""
        return self.dir / "redis.log"

    @property
    def password(self) -> str | None:
        """Return the default user's password (``requirepass``), if any."""
        return self._password

    @property
    def tls_files(self) -> TLSFiles:
        """Return the CA certificate and the server certificate/key (also usable by clients)."""
        if not self._tls:
            raise ValueError("this RedisServer has no TLS files (tls=False)")
        d = self.dir
        return TLSFiles(ca_cert=d / "ca.crt", cert=d / "redis.crt", key=d / "redis.key")

    @property
    def url(self) -> str:
        """Return ``redis://`` (TCP), else ``rediss://`` (TLS-only), else ``unix://``; db 0."""
        return self._url(self._password)

    @property
    def tls_url(self) -> str:
        """Return ``rediss://[:password@]127.0.0.1:TLS_PORT/0``."""
        return f"rediss://{self._auth(self._password)}{HOST}:{self.tls_port}/0"

    @property
    def unix_url(self) -> str:
        """Return ``unix://[:password@]/path/to/redis.sock?db=0``."""
        return f"unix://{self._auth(self._password)}{self.unix_path}?db=0"

    def client(self, **kwargs: Any) -> redis.Redis:
        """Return a plain redis-py client to the server (as :attr:`url`); ``kwargs`` override.

        TLS-only servers are reached with the generated CA. The caller closes the client.
        """
        opts: dict[str, Any] = {"password": self._password, "socket_connect_timeout": 5.0}
        if self._tcp:
            opts.update(host=HOST, port=self.port)
        elif self._tls:
            opts.update(
                host=HOST, port=self.tls_port, ssl=True, ssl_ca_certs=str(self.tls_files.ca_cert)
            )
        else:
            opts.update(unix_socket_path=self.unix_path)
        opts.update(kwargs)
        return redis.Redis(**opts)

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _need(value: T | None, what: str) -> T:
        if value is None:
            raise RuntimeError(f"{what} is known once the server has been started")
        return value

    @staticmethod
    def _auth(password: str | None) -> str:
        return f":{quote(password, safe='')}@" if password else ""

    def _url(self, password: str | None) -> str:
        if self._tcp:
            return f"redis://{self._auth(password)}{HOST}:{self.port}/0"
        if self._tls:
            return f"rediss://{self._auth(password)}{HOST}:{self.tls_port}/0"
        return f"unix://{self._auth(password)}{self.unix_path}?db=0"

    def _safe_url(self) -> str:
        url = self._url(None)
        if self._password:
            scheme, rest = url.split("://", 1)
            url = f"{scheme}://:***@{rest}"
        return url

    def _has_auto_port(self) -> bool:
        return self._fixed_port is None or (self._tls and self._tcp) or self._cluster

    def _pick_ports(self) -> None:
        main = self._fixed_port if self._fixed_port is not None else find_free_port()
        self._port = main if self._tcp else None
        if self._tls:
            self._tls_port = find_free_port() if self._tcp else main
        if self._cluster:
            self._bus_port = find_free_port()

    def _ensure_dir(self) -> Path:
        if self._dir is None or not (self._dir_exists or recreate_temp_dir(self._dir)):
            self._dir = make_temp_dir()
        self._dir_exists = True
        return self._dir

    def _render_config(self, d: Path) -> str:
        # protected-mode stays on: it only refuses non-loopback clients, and there are none.
        lines = [
            "# One private redis-server, written by rcache.server.",
            conf_line("bind", HOST),
            conf_line("port", self._port if self._tcp else 0),
            conf_line("daemonize", "no"),
            conf_line("dir", d),
            conf_line("logfile", d / "redis.log"),
            conf_line("save", ""),
            conf_line("appendonly", "yes" if self._appendonly else "no"),
            conf_line("appendfsync", self._appendfsync),
            conf_line("enable-debug-command", "local"),
        ]
        if self._tls:
            lines += [
                conf_line("tls-port", self._tls_port),
                conf_line("tls-cert-file", d / "redis.crt"),
                conf_line("tls-key-file", d / "redis.key"),
                conf_line("tls-ca-cert-file", d / "ca.crt"),
                conf_line("tls-auth-clients", "optional"),
            ]
        if self._unix_socket:
            lines += [conf_line("unixsocket", self.unix_path), conf_line("unixsocketperm", "700")]
        if self._password is not None:
            # masterauth too: after a failover any node may replicate from any other.
            lines += [
                conf_line("requirepass", self._password),
                conf_line("masterauth", self._password),
            ]
        for user, secret in self._acl_users.items():
            lines.append(conf_line("user", user, "on", f">{secret}", "~*", "&*", "+@all"))
        if self._maxmemory is not None:
            lines.append(conf_line("maxmemory", self._maxmemory))
        if self._maxmemory_policy is not None:
            lines.append(conf_line("maxmemory-policy", self._maxmemory_policy))
        if self._replicaof is not None:
            lines.append(conf_line("replicaof", *self._replicaof))
        if self._cluster:
            lines += [
                conf_line("cluster-enabled", "yes"),
                conf_line("cluster-config-file", d / "nodes.conf"),
                conf_line("cluster-node-timeout", 2000),
                conf_line("cluster-port", self._bus_port),
            ]
        lines += [conf_line(key, value) for key, value in self._config.items()]
        return "\n".join(lines) + "\n"

    def _launch(self, conf: Path) -> ManagedProcess:
        # Short timeouts: whatever else may hold the port must not stall the exit check.
        probe = self.client(socket_connect_timeout=0.5, socket_timeout=0.5, retry=_no_retry())
        try:
            return launch(
                [self._binary, str(conf)],
                name="redis-server",
                log_path=conf.parent / "redis.log",
                stderr_path=conf.parent / "stderr.log",
                probe=functools.partial(answers_as, probe),
                timeout=self._startup_timeout,
            )
        finally:
            probe.close()

    def _save_snapshot(self) -> None:
        try:
            with self.client(socket_timeout=30.0, retry=_no_retry()) as c:
                c.execute_command("SAVE")
        except redis.exceptions.RedisError as exc:
            log.warning("SAVE before restart failed, data may be lost: %s", exc)

    def _delete_data(self) -> None:
        if self._dir is None or not self._dir_exists:
            return
        (self._dir / self._config.get("dbfilename", "dump.rdb")).unlink(missing_ok=True)
        aof_dir = self._dir / self._config.get("appenddirname", "appendonlydir")
        if aof_dir.is_dir():
            for f in aof_dir.iterdir():
                f.unlink()
