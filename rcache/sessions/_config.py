"""Session settings: cookie attributes, lifetimes, limits and the signing keys."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from itsdangerous import Signer

from rcache.codecs import Codec
from rcache.errors import ConfigurationError
from rcache.sessions._signing import CookieKey
from rcache.ttl import to_milliseconds

__all__ = ["SessionConfig"]

#: Mixed into every signature, so a value signed for something else never verifies here.
SIGNING_SALT = "rcache.session"

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token: a cookie name
_ATTRIBUTE_VALUE = re.compile(r"[\x21-\x3a\x3c-\x7e]*")  # printable ASCII except ';'
_SAMESITE = ("Lax", "Strict", "None")


@dataclass(frozen=True, kw_only=True)
class SessionConfig:
    """How sessions are signed, stored and sent. Times are seconds (or ``timedelta``).

    ``secret_keys``: the keys that sign the session cookie, newest first: the first signs,
    every one verifies, so a key is rotated by putting a new one in front and dropping the
    old one once its cookies no longer matter (at most ``absolute_lifetime`` later). Use
    random secrets of 32 bytes or more, dedicated to sessions. Required.

    Cookie: ``cookie_name``, ``cookie_path``, ``cookie_domain`` (None = host-only),
    ``secure`` (HTTPS only), ``httponly`` (hidden from JavaScript), ``samesite`` ("Lax",
    "Strict", "None"; "None" needs ``secure``). ``persistent_cookie``: True sends
    ``Max-Age`` = the session's remaining absolute lifetime; False sends a browser-session
    cookie, dropped when the browser closes.

    Lifetimes: a session expires ``idle_timeout`` after its last load or save (sliding),
    and ``absolute_lifetime`` after its creation whatever the activity. Both must be > 0.
    ``slide_every``: a process slides a session's expiry on a load at most this often
    (seconds; None = 1 % of ``idle_timeout``, at most 60 s; 0 = on every load), so most
    read-only requests are a single HGETALL; a session may then expire up to that much
    earlier than a strict sliding window would say.

    Limits: ``max_session_bytes`` caps a session's stored size (keys plus encoded values,
    checked before every save); ``max_cookie_bytes`` caps the incoming cookie value (a longer
    one is ignored unread).

    ``prefix``: key prefix of the session keys (after the adapter's own ``key_prefix``).
    ``codec``: encodes each value (default: json). ``on_load_error``: what a request gets
    when Redis fails while loading its session: "anonymous" (an empty read-only session,
    and one warning on the ``rcache.sessions`` logger per outage) or "raise" (the error
    propagates; the framework answers 503). Saving never degrades: it always raises.
    """

    secret_keys: str | bytes | Sequence[str | bytes] = field(repr=False)
    cookie_name: str = "session"
    cookie_path: str = "/"
    cookie_domain: str | None = None
    secure: bool = True
    httponly: bool = True
    samesite: Literal["Lax", "Strict", "None"] = "Lax"
    persistent_cookie: bool = True
    idle_timeout: float | timedelta = timedelta(days=1)
    absolute_lifetime: float | timedelta = timedelta(days=14)
    slide_every: float | timedelta | None = None
    max_session_bytes: int = 64 * 1024
    max_cookie_bytes: int = 4096
    prefix: str = "session"
    codec: Codec = field(default_factory=Codec)
    on_load_error: Literal["anonymous", "raise"] = "anonymous"
    idle_ms: int = field(init=False, repr=False, compare=False)
    absolute_ms: int = field(init=False, repr=False, compare=False)
    slide_s: float = field(init=False, repr=False, compare=False)
    signer: Signer = field(init=False, repr=False, compare=False)
    cookie_keys: tuple[CookieKey, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = self.secret_keys
        if isinstance(keys, str | bytes):
            keys = (keys,)
        keys = tuple(keys)
        if not keys or not all(isinstance(k, str | bytes) and k for k in keys):
            raise ConfigurationError("secret_keys needs at least one non-empty str or bytes key")
        object.__setattr__(self, "secret_keys", keys)
        if not _TOKEN.fullmatch(self.cookie_name):
            raise ConfigurationError(f"cookie_name {self.cookie_name!r} is not a valid token")
        for name in ("cookie_path", "cookie_domain"):
            value = getattr(self, name)
            if value is not None and not _ATTRIBUTE_VALUE.fullmatch(value):
                raise ConfigurationError(f"{name} {value!r} has a ';', a space or a control char")
        if self.samesite not in _SAMESITE:
            raise ConfigurationError(f"samesite must be one of {_SAMESITE}, not {self.samesite!r}")
        if self.samesite == "None" and not self.secure:
            raise ConfigurationError('samesite="None" needs secure=True (browsers refuse it)')
        if self.cookie_name.startswith("__Secure-") and not self.secure:
            raise ConfigurationError("a __Secure- cookie needs secure=True")
        if self.cookie_name.startswith("__Host-") and (
            not self.secure or self.cookie_path != "/" or self.cookie_domain is not None
        ):
            raise ConfigurationError(
                "a __Host- cookie needs secure=True, cookie_path='/' and no cookie_domain"
            )
        if self.on_load_error not in ("anonymous", "raise"):
            raise ConfigurationError(
                f'on_load_error must be "anonymous" or "raise", not {self.on_load_error!r}'
            )
        for name in ("max_session_bytes", "max_cookie_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigurationError(f"{name} must be an int > 0 (bytes), got {value!r}")
        if not isinstance(self.codec, Codec):
            raise ConfigurationError("codec must be an rcache.codecs.Codec")
        for name, attr in (("idle_timeout", "idle_ms"), ("absolute_lifetime", "absolute_ms")):
            ms = to_milliseconds(getattr(self, name))
            if not ms:
                raise ConfigurationError(f"{name} must be more than 0 seconds")
            object.__setattr__(self, attr, ms)
        if self.slide_every is None:
            slide_s = min(self.idle_ms / 100_000, 60.0)
        else:
            slide = self.slide_every
            slide_s = slide.total_seconds() if isinstance(slide, timedelta) else float(slide)
            if slide_s < 0:
                raise ConfigurationError("slide_every must be >= 0 seconds (0 = every load)")
        object.__setattr__(self, "slide_s", slide_s)
        secrets = [k.encode() if isinstance(k, str) else k for k in keys]
        # itsdangerous signs with its *last* key and tries every key: give it oldest first.
        signer = Signer(
            secrets[::-1], salt=SIGNING_SALT, key_derivation="hmac", digest_method=hashlib.sha256
        )
        object.__setattr__(self, "signer", signer)
        # The same keys, newest first, derived once here rather than on every cookie check:
        # rcache.sessions._cookies signs and verifies with them (the signer's format).
        salt = SIGNING_SALT.encode()
        object.__setattr__(self, "cookie_keys", tuple(CookieKey(k, salt) for k in secrets))
