"""Key spaces: the prefix, the version, the hashing of odd keys and Cluster hash tags.

Every key rcache writes is built by a :class:`KeySpace`::

    ks = KeySpace(prefix="shop", version=3)
    ks.key("cart:42")                  # 'shop:3:cart:42'
    ks.key("a key with spaces")        # 'shop:3:a_key_with_spaces#<32 hex digits>'
    ks.pattern()                       # 'shop:3:*'  (SCAN MATCH for this space and version)

The layout is Django's ``prefix:version:key``, except that an empty prefix gives
``version:key`` (Django writes ``:version:key``).

A key that is too long, contains whitespace, a control character or ``#``, or is not valid
UTF-8 is stored under a *hashed* form: a readable head of the key (odd characters replaced
by ``_``) then ``#`` then 32 hex digits of the SHA-256 of the key's bytes. The digest is the
same in every process and on every machine (the built-in ``hash()`` is never used), and
the ``#`` appears only in hashed forms, so a plain key can never collide with the hashed
form of another key.

Two key spaces never share a key: a prefix segment (between colons) may not be an integer,
so the version segment of a key always tells where the prefix ends, and a prefix may not
contain braces, so hash tags come only from ``hash_tag`` or :meth:`KeySpace.tagged`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field

from rcache.errors import ConfigurationError

__all__ = ["KeySpace", "key_head"]


def key_head(key_prefix: str) -> str:
    """Return an adapter's key prefix as the head of a key: ``""`` or ending in ``:``.

    It is prepended as it is (not validated as a KeySpace prefix, which may not have
    integer segments): keys built with it are only built, never parsed back.
    """
    return key_prefix if not key_prefix or key_prefix.endswith(":") else key_prefix + ":"


# Whitespace (every character str.isspace() accepts), C0/C1 controls, DEL and lone surrogates.
_ODD = r"\x00-\x20\x7f-\x9f\s\ud800-\udfff"
_UNSAFE_KEY = re.compile(f"[{_ODD}#]")
_UNSAFE_PREFIX = re.compile(f"[{_ODD}{{}}]")
_UNSAFE_TAG = re.compile(f"[{_ODD}#{{}}]")
_INTEGER = re.compile(r"-?[0-9]+")
_VERSION_SEGMENT = re.compile(r"-?[0-9]+:")
_GLOB_META = re.compile(r"([*?\[\]\\])")

_DIGEST_HEX = 32  # hex digits of SHA-256 kept: 128 bits
_HASHED_SUFFIX = 1 + _DIGEST_HEX  # "#" + digest
_HEAD_CHARS = 60  # readable characters kept in front of the digest at most
_TAG_MAX_BYTES = 64  # longer per-entity tags are hashed
_TAG_HEAD_CHARS = 16


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _hashed(raw: bytes, budget: int, unsafe: re.Pattern[str], head_chars: int) -> str:
    """Return ``head#digest`` for ``raw``: at most ``budget`` bytes of readable head."""
    text = raw[: 4 * head_chars].decode("utf-8", "replace")[:head_chars]
    head = unsafe.sub("_", text).replace("\ufffd", "_")
    if _utf8_len(head) > budget:
        head = head.encode("utf-8")[: max(0, budget)].decode("utf-8", "ignore")
    return f"{head}#{hashlib.sha256(raw).hexdigest()[:_DIGEST_HEX]}"


def _check_version(version: object) -> int:
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError(f"a key version must be an int, got {type(version).__name__}")
    return version


@dataclass(frozen=True, slots=True)
class KeySpace:
    """Build, match and take apart the keys of one namespace.

    ``prefix``: names the namespace, e.g. ``"shop"`` or ``"shop:sessions"`` ("" = none). It
    may not contain whitespace, control characters or braces, and none of its
    colon-separated segments may be an integer (it would read as a version).

    ``version``: part of every key; bump it to make every old entry unreachable at once.

    ``max_key_length``: the longest key written, in UTF-8 bytes, prefix and version included;
    longer keys are stored under their hashed form (see the module docs). It must leave room
    for the hashed form after the prefix and version (33 bytes).

    ``hash_tag``: None, or a Redis Cluster hash tag put in front of every key as
    ``{hash_tag}:prefix:version:key``. Cluster then hashes only the tag, so every key of the
    space lives in one slot: multi-key commands, transactions and Lua scripts may touch any
    of them at once, but the whole space sits on one node (no spreading of memory or load).
    Child spaces keep the tag. Without a tag, use :meth:`tagged` to group one entity's keys.
    """

    prefix: str = ""
    version: int = 1
    max_key_length: int = 200
    hash_tag: str | None = None
    _lead: str = field(init=False, repr=False, compare=False)
    _head: str = field(init=False, repr=False, compare=False)
    _head_bytes: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.prefix, str):
            raise ConfigurationError(f"key prefix must be a str, got {type(self.prefix).__name__}")
        if _UNSAFE_PREFIX.search(self.prefix):
            raise ConfigurationError(
                f"key prefix {self.prefix!r} contains whitespace, a control character, "
                "a brace or invalid text"
            )
        if self.prefix and any(_INTEGER.fullmatch(s) for s in self.prefix.split(":")):
            raise ConfigurationError(
                f"key prefix {self.prefix!r} has an integer segment, which would read as a "
                "version: two key spaces could then share keys"
            )
        if isinstance(self.version, bool) or not isinstance(self.version, int):
            raise ConfigurationError(
                f"key version must be an int, got {type(self.version).__name__}"
            )
        segments: list[str] = []
        if self.hash_tag is not None:
            if not isinstance(self.hash_tag, str) or not self.hash_tag:
                raise ConfigurationError("hash_tag must be a non-empty str or None")
            if _UNSAFE_TAG.search(self.hash_tag):
                raise ConfigurationError(
                    f"hash_tag {self.hash_tag!r} contains whitespace, a control character, "
                    "'#', a brace or invalid text"
                )
            segments.append(f"{{{self.hash_tag}}}")
        if self.prefix:
            segments.append(self.prefix)
        lead = "".join(s + ":" for s in segments)
        head = f"{lead}{self.version}:"
        head_bytes = _utf8_len(head)
        if isinstance(self.max_key_length, bool) or not isinstance(self.max_key_length, int):
            raise ConfigurationError("max_key_length must be an int (bytes)")
        if self.max_key_length < head_bytes + _HASHED_SUFFIX:
            raise ConfigurationError(
                f"max_key_length={self.max_key_length} leaves no room for a hashed key after "
                f"{head!r}: it must be at least {head_bytes + _HASHED_SUFFIX} bytes"
            )
        object.__setattr__(self, "_lead", lead)
        object.__setattr__(self, "_head", head)
        object.__setattr__(self, "_head_bytes", head_bytes)

    def key(self, k: str | bytes, *, version: int | None = None) -> str:
        """Return the Redis key for ``k``: ``prefix:version:k``, or its hashed form.

        ``version``: None uses the space's version. ``bytes`` that are valid UTF-8 give the
        same key as the equal ``str``. The result is at most ``max_key_length`` bytes (a
        longer explicit ``version`` than the space's may add its extra digits).
        """
        if version is None:
            return self._fit(self._head, self._head_bytes, k)
        head = f"{self._lead}{_check_version(version)}:"
        return self._fit(head, _utf8_len(head), k)

    def tagged(self, k: str | bytes, tag: str | bytes, *, version: int | None = None) -> str:
        """Return the key for field ``k`` of entity ``tag``: ``prefix:version:{tag}:k``.

        Redis Cluster hashes only the text between the braces, so every key built with the
        same ``tag`` (e.g. a session id) lands in the same slot and can be used together in
        one multi-key command, transaction or script. A tag that is empty, longer than 64
        bytes, or contains odd characters, ``#`` or braces is replaced by its hashed form (the
        same tag always gives the same replacement). In a space with ``hash_tag`` the
        space's tag decides the slot (all keys share it anyway). The key may exceed
        ``max_key_length`` by up to the tag's length when the prefix is near the limit.
        """
        head = self._head if version is None else f"{self._lead}{_check_version(version)}:"
        head = f"{head}{{{_tag_text(tag)}}}:"
        return self._fit(head, _utf8_len(head), k)

    def pattern(self, *, version: int | None = None) -> str:
        """Return the SCAN ``MATCH`` pattern of every key of this space and version.

        Glob metacharacters (``* ? [ ] \\``) in the prefix and tag are escaped. Keys of child
        spaces and of other versions do not match. ``version``: None = the space's version.
        """
        v = self.version if version is None else _check_version(version)
        return _GLOB_META.sub(r"\\\1", self._lead) + f"{v}:*"

    def unkey(self, full: str | bytes) -> str:
        """Return the ``k`` that :meth:`key` was given, from the full key (any version).

        Only plain keys come back unchanged: for a hashed key this returns the stored
        ``head#digest`` form (the original cannot be recovered), and for a :meth:`tagged`
        key it returns ``{tag}:k``. Raise ValueError when ``full`` is not a key of this space.
        """
        if isinstance(full, bytes):
            try:
                text = full.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"{full!r} is not a key of {self!r}") from None
        elif isinstance(full, str):
            text = full
        else:
            raise TypeError(f"a key must be str or bytes, got {type(full).__name__}")
        if text.startswith(self._lead):
            m = _VERSION_SEGMENT.match(text, len(self._lead))
            if m is not None:
                return text[m.end() :]
        raise ValueError(f"{full!r} is not a key of {self!r}")

    def child(self, name: str) -> KeySpace:
        """Return the sub-namespace ``prefix:name`` (same version, limit and hash tag)."""
        if not isinstance(name, str) or not name:
            raise ConfigurationError("a child key space needs a non-empty str name")
        return dataclasses.replace(self, prefix=f"{self.prefix}:{name}" if self.prefix else name)

    def with_version(self, version: int) -> KeySpace:
        """Return the same space at another version."""
        return dataclasses.replace(self, version=version)

    def _fit(self, head: str, head_bytes: int, k: str | bytes) -> str:
        if isinstance(k, str):
            if _UNSAFE_KEY.search(k) is None and head_bytes + _utf8_len(k) <= self.max_key_length:
                return head + k
            raw = k.encode("utf-8", "surrogatepass")
        elif isinstance(k, bytes):
            raw = k
            try:
                text = k.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                if _UNSAFE_KEY.search(text) is None and head_bytes + len(k) <= self.max_key_length:
                    return head + text
        else:
            raise TypeError(f"a cache key must be str or bytes, got {type(k).__name__}")
        budget = self.max_key_length - head_bytes - _HASHED_SUFFIX
        return head + _hashed(raw, budget, _UNSAFE_KEY, _HEAD_CHARS)


def _tag_text(tag: str | bytes) -> str:
    """Return ``tag`` if it is usable between braces as it is, else its hashed form."""
    if isinstance(tag, str):
        text: str | None = tag
        raw = tag.encode("utf-8", "surrogatepass")
    elif isinstance(tag, bytes):
        raw = tag
        try:
            text = tag.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    else:
        raise TypeError(f"a hash tag must be str or bytes, got {type(tag).__name__}")
    if text and _UNSAFE_TAG.search(text) is None and len(raw) <= _TAG_MAX_BYTES:
        return text
    return _hashed(raw, _TAG_HEAD_CHARS, _UNSAFE_TAG, _TAG_HEAD_CHARS)
