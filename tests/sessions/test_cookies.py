"""Cookie helpers and SessionConfig: pure, no Redis."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rcache.errors import ConfigurationError
from rcache.sessions import (
    Session,
    SessionConfig,
    cookie_header,
    cookie_value,
    load_id_from_cookie,
    should_set_cookie,
    vary_cookie,
)

CONFIG = SessionConfig(secret_keys=["k-new", "k-old"])


def stored(session: Session, *, new: bool = True) -> Session:
    session._stored = True
    session._is_new = new
    return session


def test_signed_id_round_trips() -> None:
    s = Session()
    value = cookie_value(s.id, CONFIG)
    assert value.startswith(s.id + ".")
    assert load_id_from_cookie(value, CONFIG) == s.id
    assert load_id_from_cookie(value.encode(), CONFIG) == s.id


def test_newest_key_signs_and_every_key_verifies() -> None:
    sid = Session().id
    old_only = SessionConfig(secret_keys=["k-old"])
    new_only = SessionConfig(secret_keys=["k-new"])
    assert load_id_from_cookie(cookie_value(sid, old_only), CONFIG) == sid  # old cookies live
    assert cookie_value(sid, CONFIG) == cookie_value(sid, new_only)  # the first key signs
    assert load_id_from_cookie(cookie_value(sid, old_only), new_only) is None  # key dropped


def test_the_salt_separates_sessions_from_other_signed_values() -> None:
    from itsdangerous import Signer

    sid = Session().id
    other = Signer(b"k-new").sign(sid.encode()).decode()
    assert load_id_from_cookie(other, CONFIG) is None


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "no-dot",
        ".",
        "abc.def",
        "a" * 43 + ".",
        "é" * 10,
        "\udcff.x",
        b"\xff\xfe.\x00",
        123,
        ["a.b"],
    ],
)
def test_malformed_cookies_give_none(value: Any) -> None:
    assert load_id_from_cookie(value, CONFIG) is None


def test_tampered_cookies_give_none() -> None:
    good = cookie_value(Session().id, CONFIG)
    sid, sig = good.split(".")
    flipped = sid[:-1] + ("A" if sid[-1] != "A" else "B")
    assert load_id_from_cookie(f"{flipped}.{sig}", CONFIG) is None
    assert load_id_from_cookie(f"{sid}.{sig[:-2]}", CONFIG) is None
    assert load_id_from_cookie(good + "x", CONFIG) is None


@pytest.mark.parametrize("keys", [["k-new", "k-old"], [b"\x00" * 100, "short"], ["x" * 64]])
def test_cookies_are_itsdangerous_signatures_byte_for_byte(keys: list[str | bytes]) -> None:
    # The format of every cookie already out there: itsdangerous, oldest key last to sign.
    import hashlib

    from itsdangerous import Signer

    secrets = [k.encode() if isinstance(k, str) else k for k in keys]
    config = SessionConfig(secret_keys=keys)
    sid = Session().id
    for i in range(len(secrets)):
        signer = Signer(
            secrets[i:][::-1],
            salt="rcache.session",
            key_derivation="hmac",
            digest_method=hashlib.sha256,
        )
        signed = signer.sign(sid).decode()
        assert load_id_from_cookie(signed, config) == sid  # every key verifies
        if i == 0:
            assert cookie_value(sid, config) == signed  # the newest signs, as before
            assert signer.unsign(cookie_value(sid, config)) == sid.encode()


def test_only_the_canonical_signature_verifies() -> None:
    good = cookie_value(Session().id, CONFIG)
    sid, sig = good.split(".")
    for odd in (good + "=", f"{sid}.{sig}==", f"{sid}.{sig[:20]}!{sig[20:]}", f"{sid}..{sig}"):
        assert load_id_from_cookie(odd, CONFIG) is None


@pytest.mark.parametrize("length", [1, 31, 32, 64, 65, 200])
def test_cookie_keys_are_hmac_of_the_derived_key(length: int) -> None:
    import hashlib
    import hmac

    from rcache.sessions._signing import CookieKey

    secret = bytes(range(length % 256)) * (length // 256) + bytes(range(length % 256))
    key = CookieKey(secret, b"salt")
    derived = hmac.digest(secret, b"salt", "sha256")
    for value in (b"", b"x", bytes(range(256)) * 3):
        assert key.mac(value) == hmac.new(derived, value, hashlib.sha256).digest()
    assert "salt" not in repr(key) and repr(secret) not in repr(key)


def test_a_signed_value_that_is_not_a_session_id_gives_none() -> None:
    for odd in ("short", "a" * 44, "../../etc" + "a" * 34):
        assert load_id_from_cookie(cookie_value(odd, CONFIG), CONFIG) is None


def test_oversized_cookies_are_not_even_verified() -> None:
    small = SessionConfig(secret_keys=["k"], max_cookie_bytes=50)
    good = cookie_value(Session().id, small)
    assert len(good) > 50
    assert load_id_from_cookie(good, small) is None
    assert load_id_from_cookie(good, SessionConfig(secret_keys=["k"])) is not None


@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_load_id_from_cookie_never_raises(value: str | bytes) -> None:
    assert load_id_from_cookie(value, CONFIG) is None


def test_cookie_header_for_a_stored_session() -> None:
    s = stored(Session())
    s._lifetime_left_ms = 3_600_500
    header = cookie_header(s, CONFIG)
    name_value, *attrs = header.split("; ")
    assert name_value == f"session={cookie_value(s.id, CONFIG)}"
    assert attrs == ["Max-Age=3600", "Path=/", "Secure", "HttpOnly", "SameSite=Lax"]


def test_cookie_header_options() -> None:
    cfg = SessionConfig(
        secret_keys=["k"],
        cookie_name="sid",
        cookie_path="/app",
        cookie_domain="example.com",
        secure=False,
        httponly=False,
        samesite="Strict",
        persistent_cookie=False,
    )
    header = cookie_header(stored(Session()), cfg)
    assert header.split("; ")[1:] == ["Path=/app", "Domain=example.com", "SameSite=Strict"]


def test_deletion_cookie_when_nothing_is_stored() -> None:
    s = Session()
    s._flushed = True
    header = cookie_header(s, CONFIG)
    assert header.startswith("session=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    assert "Path=/" in header and "Secure" in header


def test_should_set_cookie_only_when_the_cookie_changes() -> None:
    assert not should_set_cookie(Session())  # new and empty: never stored, no cookie
    assert should_set_cookie(stored(Session()))  # new and stored
    assert not should_set_cookie(stored(Session(), new=False))  # an ordinary request
    rotated = stored(Session(), new=False)
    rotated._rotated = True
    assert should_set_cookie(rotated)
    flushed = Session()
    flushed._flushed = True
    assert should_set_cookie(flushed)
    degraded = stored(Session())
    degraded._degraded = RuntimeError("down")
    assert not should_set_cookie(degraded)


def test_vary_cookie_when_accessed() -> None:
    s = Session()
    assert not vary_cookie(s)
    s.get("x")
    assert vary_cookie(s)


def test_config_defaults_are_safe() -> None:
    assert CONFIG.secure and CONFIG.httponly and CONFIG.samesite == "Lax"
    assert CONFIG.idle_ms == 86_400_000
    assert CONFIG.absolute_ms == 14 * 86_400_000
    assert CONFIG.max_session_bytes == 65536 and CONFIG.max_cookie_bytes == 4096
    assert "k-new" not in repr(CONFIG)


def test_config_accepts_timedeltas_and_seconds() -> None:
    cfg = SessionConfig(secret_keys=b"k", idle_timeout=1.5, absolute_lifetime=timedelta(hours=1))
    assert (cfg.idle_ms, cfg.absolute_ms) == (1500, 3_600_000)
    assert cfg.secret_keys == (b"k",)


@pytest.mark.parametrize(
    "options",
    [
        {"secret_keys": []},
        {"secret_keys": [""]},
        {"cookie_name": "bad name"},
        {"cookie_path": "/a;b"},
        {"cookie_domain": "x\r\ny"},
        {"samesite": "lax"},
        {"samesite": "None", "secure": False},
        {"cookie_name": "__Host-s", "cookie_path": "/app"},
        {"cookie_name": "__Secure-s", "secure": False},
        {"idle_timeout": 0},
        {"absolute_lifetime": None},
        {"max_session_bytes": 0},
        {"max_cookie_bytes": True},
        {"on_load_error": "ignore"},
        {"codec": "json"},
    ],
)
def test_config_rejects_unsafe_or_malformed_options(options: dict[str, object]) -> None:
    options.setdefault("secret_keys", ["k"])
    with pytest.raises(ConfigurationError):
        SessionConfig(**options)  # type: ignore[arg-type]
