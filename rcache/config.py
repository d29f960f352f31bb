"""Connection settings, built from a URL or from keyword arguments.

Accepted URLs (``rediss`` = TLS everywhere ``redis`` is accepted)::

    redis://[[user]:password@]host[:port][/db][?option=value&...]
    unix://[[user]:password@]/path/to/redis.sock[?db=0&...]
    redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db][?...]
    redis+cluster://[[user]:password@]host:port[,host:port...][?...]

Credentials in the URL are percent-decoded. Every query option is listed in
:data:`URL_OPTIONS`; an unknown option or a malformed value raises
:class:`~rcache.errors.ConfigurationError` naming it. The library never reads the
environment: pass the URL in (the CLI and the demo read ``RCACHE_URL``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, unquote

from rcache.errors import ConfigurationError
from rcache.resilience import Backoff, CircuitBreaker, RetryPolicy

__all__ = ["URL_OPTIONS", "RedisSettings", "split_options"]

Mode = Literal["standalone", "sentinel", "cluster"]

_SCHEMES: dict[str, tuple[Mode, bool]] = {
    "redis": ("standalone", False),
    "rediss": ("standalone", True),
    "unix": ("standalone", False),
    "redis+unix": ("standalone", False),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}
_DEFAULT_PORT = {"standalone": 6379, "sentinel": 26379, "cluster": 6379}


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """Where Redis is and how to talk to it. Times are in seconds.

    Defaults suit a cache in front of a web app: short timeouts (a slow Redis should cost
    a request 1 s, not 5), a bounded pool, three sends per round trip at most, and a
    breaker that fails fast after five consecutive connection failures.
    """

    mode: Mode = "standalone"
    hosts: tuple[tuple[str, int], ...] = (("127.0.0.1", 6379),)
    unix_socket_path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl: bool = False
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_cert_reqs: Literal["required", "optional", "none"] = "required"
    ssl_check_hostname: bool = True
    service_name: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    sentinel_check_interval: float = 1.0
    socket_timeout: float | None = 1.0
    socket_connect_timeout: float | None = 1.0
    socket_keepalive: bool = True
    health_check_interval: float = 30.0
    max_connections: int = 64
    pool_timeout: float = 1.0
    client_name: str | None = None
    retry_attempts: int = 3
    retry_backoff_base: float = 0.05
    retry_backoff_cap: float = 1.0
    retry_deadline: float | None = 2.0
    breaker_threshold: int = 5
    breaker_cooldown: float = 1.0
    key_prefix: str = ""

    def __post_init__(self) -> None:
        if self.mode not in _DEFAULT_PORT:
            raise ConfigurationError(
                f"mode must be standalone, sentinel or cluster, not {self.mode!r}"
            )
        if self.mode == "sentinel" and not self.service_name:
            raise ConfigurationError("a Sentinel URL needs the service name: .../service_name")
        if self.mode == "cluster" and self.db != 0:
            raise ConfigurationError("Redis Cluster has only database 0")
        if self.db < 0:
            raise ConfigurationError("db must be >= 0")
        if self.max_connections < 1:
            raise ConfigurationError("max_connections must be >= 1")
        if self.sentinel_check_interval < 0:
            raise ConfigurationError("sentinel_check_interval must be >= 0 (0 = never)")
        if not self.hosts and self.unix_socket_path is None:
            raise ConfigurationError("no host and no unix socket path")
        if self.unix_socket_path is not None and self.mode != "standalone":
            raise ConfigurationError("unix sockets are for standalone servers only")
        self.retry_policy()  # validates the retry options
        self.breaker()  # validates the breaker options

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> RedisSettings:
        """Parse ``url``; keyword ``overrides`` win over what the URL says."""
        values = _parse_url(url)
        unknown = set(overrides) - _FIELD_NAMES
        if unknown:
            raise ConfigurationError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes: Any) -> RedisSettings:
        """Return a copy with ``changes`` applied (validated again)."""
        unknown = set(changes) - _FIELD_NAMES
        if unknown:
            raise ConfigurationError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    # -- derived policies ------------------------------------------------------------------

    def retry_policy(self) -> RetryPolicy:
        """Return the retry policy these settings describe."""
        return RetryPolicy(
            attempts=self.retry_attempts,
            backoff=Backoff(base=self.retry_backoff_base, cap=self.retry_backoff_cap),
            deadline=self.retry_deadline,
        )

    def breaker(self) -> CircuitBreaker:
        """Return a new circuit breaker configured by these settings."""
        return CircuitBreaker(threshold=self.breaker_threshold, cooldown=self.breaker_cooldown)

    def redacted_url(self) -> str:
        """Return a URL for logs and screens: the password is shown as ``***``."""
        auth = ""
        if self.username or self.password:
            auth = quote(self.username or "", safe="") + (":***" if self.password else "") + "@"
        if self.unix_socket_path:
            return f"unix://{auth}{self.unix_socket_path}?db={self.db}"
        scheme = {"standalone": "redis", "sentinel": "redis+sentinel", "cluster": "redis+cluster"}
        s = scheme[self.mode].replace("redis", "rediss", 1) if self.ssl else scheme[self.mode]
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.hosts)
        path = {"standalone": f"/{self.db}", "sentinel": f"/{self.service_name}/{self.db}"}
        return f"{s}://{auth}{hosts}{path.get(self.mode, '')}"


_FIELD_NAMES = {f.name for f in dataclasses.fields(RedisSettings)}


def split_options(
    options: Mapping[str, Any], own: frozenset[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``from_url`` keywords into a backend's ``own`` options and Redis settings."""
    mine = {k: v for k, v in options.items() if k in own}
    settings = {k: v for k, v in options.items() if k not in own}
    return mine, settings


def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _seconds_or_none(value: str) -> float | None:
    if value.strip().lower() in ("", "none", "null"):
        return None
    return float(value)


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return value

    return parse


URL_OPTIONS: Mapping[str, tuple[str, Callable[[str], Any]]] = {
    # query name: (setting, parser)
    "db": ("db", int),
    "username": ("username", str),
    "password": ("password", str),
    "ssl_ca_certs": ("ssl_ca_certs", str),
    "ssl_certfile": ("ssl_certfile", str),
    "ssl_keyfile": ("ssl_keyfile", str),
    "ssl_cert_reqs": ("ssl_cert_reqs", _choice("required", "optional", "none")),
    "ssl_check_hostname": ("ssl_check_hostname", _bool),
    "service_name": ("service_name", str),
    "sentinel_username": ("sentinel_username", str),
    "sentinel_password": ("sentinel_password", str),
    "sentinel_check_interval": ("sentinel_check_interval", float),
    "socket_timeout": ("socket_timeout", _seconds_or_none),
    "timeout": ("socket_timeout", _seconds_or_none),
    "socket_connect_timeout": ("socket_connect_timeout", _seconds_or_none),
    "connect_timeout": ("socket_connect_timeout", _seconds_or_none),
    "socket_keepalive": ("socket_keepalive", _bool),
    "health_check_interval": ("health_check_interval", float),
    "max_connections": ("max_connections", int),
    "pool_timeout": ("pool_timeout", float),
    "client_name": ("client_name", str),
    "retry_attempts": ("retry_attempts", int),
    "retry_backoff_base": ("retry_backoff_base", float),
    "retry_backoff_cap": ("retry_backoff_cap", float),
    "retry_deadline": ("retry_deadline", _seconds_or_none),
    "breaker_threshold": ("breaker_threshold", int),
    "breaker_cooldown": ("breaker_cooldown", float),
    "key_prefix": ("key_prefix", str),
    "prefix": ("key_prefix", str),
}


def _parse_hosts(netloc: str, default_port: int) -> tuple[tuple[str, int], ...]:
    hosts: list[tuple[str, int]] = []
    for part in netloc.split(","):
        part = part.strip()
        if not part:
            raise ConfigurationError(f"empty host in {netloc!r}")
        if part.startswith("["):
            end = part.find("]")
            if end < 0:
                raise ConfigurationError(f"unclosed IPv6 bracket in host {part!r}")
            host, rest = part[1:end], part[end + 1 :]
            port_text = rest[1:] if rest.startswith(":") else None
            if rest and port_text is None:
                raise ConfigurationError(f"malformed host {part!r}")
        elif part.count(":") == 1:
            host, port_text = part.split(":")
        else:
            host, port_text = part, None
        if not host:
            raise ConfigurationError(f"missing host name in {part!r}")
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            raise ConfigurationError(f"port of {part!r} is not a number") from None
        if not 0 < port < 65536:
            raise ConfigurationError(f"port of {part!r} is out of range")
        hosts.append((host, port))
    return tuple(hosts)


def _parse_url(url: str) -> dict[str, Any]:
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError("a Redis URL looks like redis://host:port/db")
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme not in _SCHEMES:
        raise ConfigurationError(
            f"unknown URL scheme {scheme!r}; use one of {', '.join(sorted(_SCHEMES))}"
        )
    mode, ssl = _SCHEMES[scheme]
    if "#" in rest:
        raise ConfigurationError("a Redis URL has no #fragment")
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    path = slash + path
    values: dict[str, Any] = {"mode": mode, "ssl": ssl}
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        user, sep, password = userinfo.partition(":")
        if user:
            values["username"] = unquote(user)
        if sep and password:
            values["password"] = unquote(password)
    if scheme in ("unix", "redis+unix"):
        if netloc:
            raise ConfigurationError("a unix URL has no host: unix:///path/to/redis.sock")
        if not path or path == "/":
            raise ConfigurationError("a unix URL needs the socket path: unix:///path/to/redis.sock")
        values["unix_socket_path"] = unquote(path)
        values["hosts"] = ()
    else:
        if not netloc:
            raise ConfigurationError(f"no host in URL {scheme}://...")
        values["hosts"] = _parse_hosts(netloc, _DEFAULT_PORT[mode])
        if mode == "standalone" and len(values["hosts"]) > 1:
            raise ConfigurationError("several hosts need redis+sentinel:// or redis+cluster://")
        segments = [unquote(s) for s in path.split("/") if s]
        if mode == "sentinel":
            if segments:
                values["service_name"] = segments[0]
            if len(segments) > 1:
                values["db"] = _db(segments[1])
            if len(segments) > 2:
                raise ConfigurationError(f"malformed Sentinel path {path!r}: /service_name/db")
        elif segments:
            if len(segments) > 1:
                raise ConfigurationError(f"malformed path {path!r}: expected /db")
            values["db"] = _db(segments[0])
    for name, raw in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if name not in URL_OPTIONS:
            raise ConfigurationError(
                f"unknown option {name!r} in Redis URL; known: {', '.join(sorted(URL_OPTIONS))}"
            )
        setting, parser = URL_OPTIONS[name]
        try:
            values[setting] = parser(raw)
        except ValueError as exc:
            raise ConfigurationError(f"option {name!r} in Redis URL: bad value ({exc})") from None
    return values


def _db(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigurationError(f"database number must be an integer, not {text!r}") from None
