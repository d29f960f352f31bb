"""Building object caches from Flask config, shared by ``RCache`` and the Flask-Caching backend.

Pickle is signed by default: unpickling runs code chosen by whoever wrote the bytes, so a
value read from a Redis that anything else can write to must be verified first. The keys
are derived from the app's ``SECRET_KEY`` (signs) and ``SECRET_KEY_FALLBACKS`` (still
verify) through HMAC with a fixed purpose string, so a signed cache value can never pass as
a signed cookie or session, and the other way round.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from rcache.codecs import Codec
from rcache.errors import ConfigurationError

__all__ = ["derived_signing_keys", "make_codec", "uses_pickle"]

_PURPOSE = b"rcache_flask cache value signing"
_PICKLE_ID = 2


def uses_pickle(serializer: Any) -> bool:
    """Return whether ``serializer`` (a name or a Serializer) is pickle."""
    return serializer == "pickle" or getattr(serializer, "id", None) == _PICKLE_ID


def derived_signing_keys(config: Mapping[str, Any], what: str) -> list[bytes]:
    """Return signing keys derived from ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``."""
    secrets = [config.get("SECRET_KEY"), *(config.get("SECRET_KEY_FALLBACKS") or ())]
    keys = []
    for secret in secrets:
        if not secret:
            continue
        raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
        keys.append(hmac.new(raw, _PURPOSE, hashlib.sha256).digest())
    if not keys:
        raise ConfigurationError(
            f"{what} stores pickle, which must be signed: set SECRET_KEY (the signing key is "
            "derived from it), give signing keys, or use the json serializer"
        )
    return keys


def make_codec(
    config: Mapping[str, Any],
    options: Mapping[str, Any],
    *,
    default_serializer: str,
    what: str,
) -> Codec:
    """Return the codec ``options`` describe (signing keys derived if pickle and none given).

    ``options``: ``serializer``, ``compressor``, ``compress_min_size``, ``signing_keys``
    (left out: derived for pickle; None: no signing) and ``accept_pickle``.
    """
    codec_options = dict(options)
    serializer = codec_options.setdefault("serializer", default_serializer)
    if "signing_keys" not in codec_options and uses_pickle(serializer):
        codec_options["signing_keys"] = derived_signing_keys(config, what)
    return Codec(**codec_options)
