from __future__ import annotations

import pytest

from rcache.config import URL_OPTIONS, RedisSettings
from rcache.errors import ConfigurationError


def test_tcp_url_with_acl_user_db_and_options() -> None:
    s = RedisSettings.from_url(
        "redis://app:p%40ss%3Aw@cache.local:6380/3?socket_timeout=0.25&max_connections=8"
    )
    assert s.mode == "standalone"
    assert s.hosts == (("cache.local", 6380),)
    assert (s.username, s.password, s.db) == ("app", "p@ss:w", 3)
    assert s.socket_timeout == 0.25
    assert s.max_connections == 8
    assert s.ssl is False


def test_defaults_port_and_db() -> None:
    s = RedisSettings.from_url("redis://localhost")
    assert s.hosts == (("localhost", 6379),) and s.db == 0


def test_password_only_and_ipv6() -> None:
    s = RedisSettings.from_url("redis://:secret@[::1]:7000")
    assert s.username is None and s.password == "secret"
    assert s.hosts == (("::1", 7000),)


def test_tls_url_with_ca_and_client_cert() -> None:
    s = RedisSettings.from_url(
        "rediss://h:6390/0?ssl_ca_certs=/ca.pem&ssl_certfile=/c.pem&ssl_keyfile=/k.pem"
        "&ssl_cert_reqs=optional&ssl_check_hostname=false"
    )
    assert s.ssl is True
    assert (s.ssl_ca_certs, s.ssl_certfile, s.ssl_keyfile) == ("/ca.pem", "/c.pem", "/k.pem")
    assert s.ssl_cert_reqs == "optional" and s.ssl_check_hostname is False


def test_unix_socket_url() -> None:
    s = RedisSettings.from_url("unix://:pw@/run/redis/redis.sock?db=2")
    assert s.unix_socket_path == "/run/redis/redis.sock"
    assert s.db == 2 and s.password == "pw" and s.hosts == ()


def test_sentinel_url() -> None:
    s = RedisSettings.from_url(
        "redis+sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/1?sentinel_password=x"
    )
    assert s.mode == "sentinel"
    assert s.hosts == (("127.0.0.1", 26379), ("127.0.0.1", 26380))
    assert (s.service_name, s.db, s.sentinel_password) == ("mymaster", 1, "x")


def test_cluster_url_and_tls_variant() -> None:
    s = RedisSettings.from_url("rediss+cluster://a:7000,b:7001")
    assert s.mode == "cluster" and s.ssl is True
    assert s.hosts == (("a", 7000), ("b", 7001))


def test_overrides_win_over_url() -> None:
    s = RedisSettings.from_url("redis://h/1?socket_timeout=3", socket_timeout=0.1, db=4)
    assert s.socket_timeout == 0.1 and s.db == 4


def test_none_timeout() -> None:
    assert RedisSettings.from_url("redis://h?socket_timeout=none").socket_timeout is None


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("redis://h?bogus=1", "'bogus'"),
        ("redis://h?socket_timeout=abc", "'socket_timeout'"),
        ("redis://h?max_connections=", "'max_connections'"),
        ("redis://h?ssl_cert_reqs=maybe", "'ssl_cert_reqs'"),
        ("redis://h?ssl_check_hostname=perhaps", "'ssl_check_hostname'"),
        ("redis://h/notadb", "'notadb'"),
        ("redis://h:port", "port"),
        ("redis://h:99999", "out of range"),
        ("memcached://h", "scheme"),
        ("just-a-host", "redis://"),
        ("redis+sentinel://h:26379", "service name"),
        ("redis+cluster://h:7000/2", "database 0"),
        ("redis://a:1,b:2", "several hosts"),
        ("unix://", "socket path"),
        ("redis://h?retry_attempts=0", "attempts"),
        ("redis://h?breaker_threshold=0", "threshold"),
        ("redis://[::1:6379", "IPv6"),
    ],
)
def test_bad_urls_name_the_problem(url: str, needle: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        RedisSettings.from_url(url)
    assert needle in str(info.value)


def test_configuration_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        RedisSettings.from_url("redis://h?nope=1")


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="sockettimeout"):
        RedisSettings.from_url("redis://h", sockettimeout=1)


def test_every_url_option_maps_to_a_setting() -> None:
    names = set(RedisSettings.__dataclass_fields__)
    assert {setting for setting, _ in URL_OPTIONS.values()} <= names


def test_redacted_url_hides_password() -> None:
    s = RedisSettings.from_url("redis://app:topsecret@h:6379/2")
    assert "topsecret" not in s.redacted_url()
    assert "topsecret" not in repr(s)
    assert s.redacted_url() == "redis://app:***@h:6379/2"
