"""A case-insensitive, multi-value, immutable list of HTTP header fields.

Framework adapters build a :class:`Headers` from the ``(name, value)`` pairs their request
or response carries; everything in :mod:`rcache.pages` reads headers through it::

    h = Headers([("Cache-Control", "max-age=60"), ("Vary", "Cookie"), ("vary", "Accept")])
    h.get("vary")                   # 'Cookie, Accept'
    h.get_all("VARY")               # ['Cookie', 'Accept']
    h.with_("Age", "3").without("vary")

Order and the original spelling of names are kept. Leading and trailing whitespace of a
value is not part of it (RFC 9110 §5.5) and is removed. A :class:`Headers` never changes:
:meth:`Headers.with_`, :meth:`Headers.add` and :meth:`Headers.without` return copies.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

__all__ = ["Headers"]

_SET_COOKIE = "set-cookie"
_COOKIE = "cookie"
_NOT_HEADERS = frozenset({"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"})
_CONTENT_KEYS = {"CONTENT_TYPE": "content-type", "CONTENT_LENGTH": "content-length"}


class Headers:
    """An immutable sequence of header fields, looked up by case-insensitive name."""

    __slots__ = ("_items", "_keys")

    _items: tuple[tuple[str, str], ...]
    _keys: tuple[str, ...]  # the lowercased names, in the same order

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = tuple((name, value.strip(" \t")) for name, value in items)
        self._keys = tuple([name.lower() for name, _ in self._items])

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any]) -> Headers:
        """Return the request header fields of a WSGI ``environ`` (or Django's ``META``).

        ``HTTP_ACCEPT_LANGUAGE`` becomes ``accept-language`` (names come lowercased), and
        ``CONTENT_TYPE`` / ``CONTENT_LENGTH`` are fields when not empty, as PEP 3333 says.
        """
        items: list[tuple[str, str]] = []
        keys: list[str] = []
        names = _ENVIRON_NAMES
        for key, value in environ.items():
            name = names.get(key, "")
            if name == "":
                name = _environ_name(key)
            if name is None or (not value and key[:5] != "HTTP_"):
                continue  # not a field, or an empty CONTENT_TYPE / CONTENT_LENGTH
            items.append((name, value.strip(" \t")))
            keys.append(name)
        return cls._trusted(tuple(items), tuple(keys))

    @classmethod
    def _trusted(cls, items: tuple[tuple[str, str], ...], keys: tuple[str, ...]) -> Headers:
        """Return headers of ``items`` already stripped, ``keys`` their lowercased names."""
        headers = cls.__new__(cls)
        headers._items = items
        headers._keys = keys
        return headers

    def get(self, name: str) -> str | None:
        """Return the value of field ``name``; None if the message does not carry it.

        Repeated fields are combined as RFC 9110 §5.3 allows: joined with ``", "``. Two
        exceptions: ``Cookie`` lines are joined with ``"; "`` (RFC 9113 §8.2.3) and
        ``Set-Cookie``, which cannot be combined, returns its first value only (use
        :meth:`get_all`).
        """
        values = self.get_all(name)
        if not values:
            return None
        key = name.lower()
        if key == _SET_COOKIE:
            return values[0]
        return ("; " if key == _COOKIE else ", ").join(values)

    def get_all(self, name: str) -> list[str]:
        """Return every value of field ``name`` in message order; [] if it is absent."""
        key = name.lower()
        if key not in self._keys:
            return []
        return [item[1] for k, item in zip(self._keys, self._items, strict=True) if k == key]

    def first(self, name: str) -> str | None:
        """Return the first value of field ``name``; None if it is absent."""
        key = name.lower()
        if key not in self._keys:
            return None
        return self._items[self._keys.index(key)][1]

    def names(self) -> list[str]:
        """Return the distinct field names, lowercased, in order of first appearance."""
        return list(dict.fromkeys(self._keys))

    def with_(self, name: str, value: str) -> Headers:
        """Return a copy where ``value`` replaces every field ``name``.

        The new field takes the place of the first one it replaces, or goes last.
        """
        key = name.lower()
        items: list[tuple[str, str]] = []
        placed = False
        for field, old in self._items:
            if field.lower() != key:
                items.append((field, old))
            elif not placed:
                items.append((name, value))
                placed = True
        if not placed:
            items.append((name, value))
        return Headers(items)

    def add(self, name: str, value: str) -> Headers:
        """Return a copy with one more field ``name: value`` at the end."""
        return Headers((*self._items, (name, value)))

    def without(self, *names: str) -> Headers:
        """Return a copy without any of the fields ``names`` (case-insensitive; itself if none)."""
        drop = {name.lower() for name in names}
        if drop.isdisjoint(self._keys):
            return self
        return Headers(item for item in self._items if item[0].lower() not in drop)

    def to_list(self) -> list[tuple[str, str]]:
        """Return the fields as a new list of ``(name, value)`` pairs."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name.lower() in self._keys

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Headers({list(self._items)!r})"


_ENVIRON_NAMES: dict[str, str | None] = {}


def _environ_name(key: str) -> str | None:
    """Return the field name of an environ key, None if not a field (remembered)."""
    name: str | None = None
    if key[:5] == "HTTP_":
        if key not in _NOT_HEADERS:
            name = key[5:].lower().replace("_", "-")
    elif key in _CONTENT_KEYS:
        name = _CONTENT_KEYS[key]
    if len(_ENVIRON_NAMES) < 4096:
        _ENVIRON_NAMES[key] = name
    return name
