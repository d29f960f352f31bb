"""Lua scripts: loaded once per server, called by SHA, re-sent whole after NOSCRIPT.

A :class:`Script` turns a call into an ordinary ``EVALSHA`` command, so a script call can
sit in a :class:`~rcache.ops.Batch` next to other commands. When a server answers
``NOSCRIPT`` (new server, restart, ``SCRIPT FLUSH``), the adapter sends that command again
as ``EVAL`` with the source, which also caches the script for next time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

from rcache.ops import Command

__all__ = ["Script", "source_for_sha"]

_SOURCES: dict[str, str] = {}


class Script:
    """A Lua script known by its SHA1; calling it builds an ``EVALSHA`` command."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        _SOURCES[self.sha] = source

    @classmethod
    def from_package(cls, package: str, name: str) -> Script:
        """Load ``name`` (a ``.lua`` file) that sits next to the modules of ``package``."""
        return cls(resources.files(package).joinpath(name).read_text(encoding="utf-8"))

    def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Command:
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    def __repr__(self) -> str:
        return f"Script(sha={self.sha[:12]})"


def source_for_sha(sha: str | bytes) -> str | None:
    """Return the source of a script created in this process, by SHA1; None if unknown."""
    if isinstance(sha, bytes):
        sha = sha.decode()
    return _SOURCES.get(sha)
