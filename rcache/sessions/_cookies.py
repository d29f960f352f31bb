"""The session cookie: signing, verifying, and when and what to send. Pure, no I/O.

The three framework integrations call these so they send the same cookies::

    session_id = load_id_from_cookie(request_cookie, config)      # None: start a new one
    ...
    if should_set_cookie(session):
        response.headers.append("Set-Cookie", cookie_header(session, config))
    if vary_cookie(session):
        response.headers.append("Vary", "Cookie")

The cookie value is ``<id>.<signature>``: the id (43 URL-safe characters) signed with
HMAC-SHA256 (itsdangerous's format: key derived by HMAC with salt ``"rcache.session"``,
signature in unpadded URL-safe base64) by the newest of ``config.secret_keys`` and checked
against all of them. A cookie is sent only when it
changes (a new session was stored, the id was rotated, the session was flushed), not on
every response, so pages that merely read the session stay cacheable by the browser.
"""

from __future__ import annotations

import hmac
import re

from rcache.sessions._config import SessionConfig
from rcache.sessions._session import Session

__all__ = [
    "cookie_header",
    "cookie_value",
    "load_id_from_cookie",
    "should_set_cookie",
    "vary_cookie",
]

_SESSION_ID = re.compile(rb"[A-Za-z0-9_-]{43}")
_EXPIRED = "Thu, 01 Jan 1970 00:00:00 GMT"
# <id>.<signature>: 43 characters, a dot, then 32 bytes of HMAC-SHA256 in unpadded base64.
_ID_LENGTH = 43
_COOKIE_LENGTH = _ID_LENGTH + 1 + 43
_DOT = ord(".")


def load_id_from_cookie(value: str | bytes | None, config: SessionConfig) -> str | None:
    """Return the session id in a cookie value if its signature verifies, else None.

    Never raises: a missing, empty, oversized (more than ``config.max_cookie_bytes``),
    malformed, tampered or wrongly signed value (a key no longer in ``secret_keys``) all
    give None, and the caller starts a new session without asking Redis.

    The check is itsdangerous's (``config.signer``) with the keys derived once per config
    and the shape checked first: only the canonical form this module writes verifies.
    """
    if isinstance(value, str):
        if not value.isascii():
            return None
        raw = value.encode("ascii")
    elif isinstance(value, bytes):
        raw = value
    else:
        return None
    if len(raw) != _COOKIE_LENGTH or len(raw) > config.max_cookie_bytes or raw[_ID_LENGTH] != _DOT:
        return None
    session_id = raw[:_ID_LENGTH]
    if _SESSION_ID.fullmatch(session_id) is None:
        return None
    sent = raw[_ID_LENGTH + 1 :]
    for key in config.cookie_keys:  # newest first: the usual match costs one HMAC
        if hmac.compare_digest(key.signature(session_id), sent):
            return session_id.decode("ascii")
    return None


def cookie_value(session_id: str, config: SessionConfig) -> str:
    """Return the signed cookie value for ``session_id`` (signed by the newest key)."""
    raw = session_id.encode("utf-8")
    return f"{session_id}.{config.cookie_keys[0].signature(raw).decode('ascii')}"


def should_set_cookie(session: Session) -> bool:
    """Return whether the response must carry a ``Set-Cookie`` for the session.

    True when a new or rotated session is stored, or the session was flushed (then
    :func:`cookie_header` gives the new cookie, or a deletion cookie when nothing is stored).
    False on ordinary requests, for a session found deleted meanwhile (another request may
    have set a newer cookie that must not be clobbered), for a session that is not stored
    (never an empty one), and for a stand-in session after a failed load (the visitor's
    real cookie must survive the outage).
    """
    return session.flushed or ((session.is_new or session.rotated) and session.stored)


def vary_cookie(session: Session) -> bool:
    """Return whether the response depends on the session (add ``Vary: Cookie``)."""
    return session.accessed


def cookie_header(session: Session, config: SessionConfig) -> str:
    """Return the ``Set-Cookie`` header value for ``session``.

    A stored session gets its signed id (with ``Max-Age`` = its remaining absolute lifetime
    when ``config.persistent_cookie``); a session that is not stored (flushed and left
    empty) gets a deletion cookie with the same name, path and domain.
    """
    if session.stored:
        parts = [f"{config.cookie_name}={cookie_value(session.id, config)}"]
        if config.persistent_cookie:
            left = session.lifetime_left
            seconds = int(left) if left is not None else config.absolute_ms // 1000
            parts.append(f"Max-Age={max(seconds, 0)}")
    else:
        parts = [f"{config.cookie_name}=", "Max-Age=0", f"Expires={_EXPIRED}"]
    parts.append(f"Path={config.cookie_path}")
    if config.cookie_domain is not None:
        parts.append(f"Domain={config.cookie_domain}")
    if config.secure:
        parts.append("Secure")
    if config.httponly:
        parts.append("HttpOnly")
    parts.append(f"SameSite={config.samesite}")
    return "; ".join(parts)
