"""The ``rcache`` command: look at a Redis the way a cache operator needs to.

::

    rcache [--url URL] ping | latency | stat | doctor | bigkeys | inspect KEY | purge PATTERN
    rcache [--url URL] hotkeys [--name NAME] [--top N]
    rcache warm URL... | --from-file FILE | --sitemap URL  [--verify]

The URL comes from ``--url``, else the ``RCACHE_URL`` environment variable, else
``redis://127.0.0.1:6379/0``. Every command has ``--help``. Exit status: 0 fine, 1 a
finding (``doctor``) or a missing key (``inspect``), 2 bad usage, 3 Redis unreachable.
"""

from __future__ import annotations

from rcache.cli._main import main

__all__ = ["main"]
