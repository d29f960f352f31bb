"""Cache keys for decorated functions: a canonical encoding of the arguments. Pure, no I/O.

The key of a call is ``<module>.<qualname>:<digest>`` where the digest is 32 hex digits of
the SHA-256 of the canonical encoding of the bound arguments (``inspect.signature`` bind
plus ``apply_defaults``, so ``f(1)``, ``f(x=1)`` and ``f(1, y=2)`` with ``y=2`` the default
all share a key). The encoding depends on values only, never on ``hash()``, ``id()`` or
set iteration order, so every process on every machine computes the same key.

Encoded: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, ``tuple``, ``list``,
``dict`` (any key order), ``set``/``frozenset`` (any order; equal sets share a key),
``datetime``, ``date``, ``time``, ``Decimal``, ``UUID``, ``Enum`` members, classes, and any
object with a ``__cache_key__()`` method (its result is encoded instead, with the type's
name). Every value is tagged with its type, so ``1``, ``1.0``, ``True`` and ``"1"`` differ.
Anything else raises TypeError: give the class ``__cache_key__`` or pass ``key=``.

Deriving a key costs a few microseconds (bind, encoding, SHA-256), so the decorator
remembers the keys of recent calls whose arguments are all immutable scalars
(:func:`scalar_call`, :func:`memoizable`): the same key, found in a bounded dict.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import inspect
import uuid
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

__all__ = ["canonical", "function_key", "key_builder", "memoizable", "scalar_call"]

KeyBuilder = Callable[[tuple[Any, ...], dict[str, Any]], str]

_DIGEST_HEX = 32

# Immutable scalar types: a call made only of these maps to one key, for good.
_SCALARS = frozenset({int, str, bytes, bool, float, type(None)})
_KEYWORDS = ("**",)  # separates positional from keyword arguments in a memo key


def scalar_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
    """Return a memo key for a call whose arguments are all immutable scalars, else None.

    Each value goes with its exact type, so ``1``, ``1.0``, ``True`` and ``"1"`` (equal or
    hashed alike by Python) get different memo keys, as they get different cache keys;
    subclasses (``IntEnum``, ``str`` subclasses) are not scalars here. A float goes by its
    hex form, so ``0.0`` and ``-0.0`` differ and a NaN finds its own entry.
    """
    if not kwargs and len(args) == 1:  # the usual call: one id
        value = args[0]
        kind = type(value)
        if kind is int or kind is str:
            return (kind, value)
    parts: list[Any] = []
    for value in args:
        kind = type(value)
        if kind not in _SCALARS:
            return None
        parts += (kind, value.hex() if kind is float else value)
    if kwargs:
        parts.append(_KEYWORDS)
        for name, value in kwargs.items():
            kind = type(value)
            if kind not in _SCALARS:
                return None
            parts += (name, kind, value.hex() if kind is float else value)
    return tuple(parts)


def memoizable(fn: Callable[..., Any], key: str | Callable[..., str] | None) -> bool:
    """Return whether the keys of ``fn``'s scalar calls may be remembered.

    Yes for derived keys and format strings, as long as every default value is an
    immutable scalar too (a default list could be changed in place, and with it the key);
    never for a ``key=`` callable (it may depend on anything).
    """
    if key is not None and not isinstance(key, str):
        return False
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    empty = inspect.Parameter.empty
    return all(p.default is empty or type(p.default) in _SCALARS for p in parameters)


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _sized(tag: bytes, body: bytes) -> bytes:
    return b"%s%d:%s" % (tag, len(body), body)


def _collection(tag: bytes, items: Iterable[bytes]) -> bytes:
    parts = list(items)
    return b"%s%d[%s]" % (tag, len(parts), b"".join(parts))


def canonical(value: Any, _where: str = "argument") -> bytes:
    """Return the canonical bytes of ``value``; raise TypeError for an unsupported type."""
    if value is None:
        return b"N"
    if isinstance(value, enum.Enum):  # before int and str: IntEnum, StrEnum
        return _sized(b"E", f"{_qualified(type(value))}.{value.name}".encode())
    if isinstance(value, bool):
        return b"T" if value else b"F"
    if isinstance(value, int):
        return b"i%d;" % value
    if isinstance(value, float):
        return b"f%s;" % float.hex(value).encode()
    if isinstance(value, str):
        return _sized(b"s", value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes | bytearray | memoryview):
        return _sized(b"b", bytes(value))
    if isinstance(value, tuple):
        return _collection(b"t", (canonical(v, _where) for v in value))
    if isinstance(value, list):
        return _collection(b"l", (canonical(v, _where) for v in value))
    if isinstance(value, Mapping):
        pairs = sorted(canonical(k, _where) + canonical(v, _where) for k, v in value.items())
        return _collection(b"d", pairs)
    if isinstance(value, set | frozenset):
        return _collection(b"S", sorted(canonical(v, _where) for v in value))
    if isinstance(value, dt.datetime):  # before date: datetime is a date
        return _sized(b"D", value.isoformat().encode())
    if isinstance(value, dt.date):
        return _sized(b"d", value.isoformat().encode())
    if isinstance(value, dt.time):
        return _sized(b"h", value.isoformat().encode())
    if isinstance(value, Decimal):
        return _sized(b"M", str(value).encode())
    if isinstance(value, uuid.UUID):
        return b"U" + value.bytes
    if isinstance(value, type):
        return _sized(b"Y", _qualified(value).encode())
    hook = getattr(type(value), "__cache_key__", None)
    if callable(hook):
        inner = canonical(hook(value), _where)
        return b"K" + _sized(b"", _qualified(type(value)).encode()) + inner
    raise TypeError(
        f"cannot build a cache key from {_where} of type {_qualified(type(value))}: give the "
        "class a __cache_key__() method returning a plain value, or pass key= to cached()"
    )


def function_key(fn: Callable[..., Any], arguments: Mapping[str, Any]) -> str:
    """Return the key of calling ``fn`` with bound ``arguments`` (name -> value)."""
    body = b"".join(
        _sized(b"", name.encode()) + canonical(value, f"argument {name!r}")
        for name, value in arguments.items()
    )
    digest = hashlib.sha256(body).hexdigest()[:_DIGEST_HEX]
    return f"{fn.__module__}.{fn.__qualname__}:{digest}"


def key_builder(fn: Callable[..., Any], key: str | Callable[..., str] | None) -> KeyBuilder:
    """Return ``build(args, kwargs) -> key`` for calls of ``fn``.

    ``key``: None derives the key from the function and its arguments (see the module
    docs); a str is a format string over the bound arguments, e.g. ``"user:{user_id}"``;
    a callable gets the call's own arguments and returns the key. Explicit keys are used
    as they are (the cache's prefix and version still apply).
    """
    signature = inspect.signature(fn)

    def bound(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        ba = signature.bind(*args, **kwargs)
        ba.apply_defaults()
        return ba.arguments

    if key is None:

        def derived(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
            return function_key(fn, bound(args, kwargs))

        return derived
    if isinstance(key, str):
        template = key

        def formatted(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
            return template.format(**bound(args, kwargs))

        return formatted
    if callable(key):
        make = key

        def custom(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
            result = make(*args, **kwargs)
            if not isinstance(result, str):
                raise TypeError(f"key= returned {type(result).__name__}, not a str")
            return result

        return custom
    raise TypeError(f"key= must be None, a format string or a callable, not {type(key).__name__}")
