"""The public API is exactly what ``__all__`` says, and every name in it exists."""

from __future__ import annotations

import typing

import rcache


def test_all_names_exist_and_are_sorted() -> None:
    for name in rcache.__all__:
        assert hasattr(rcache, name), name
    assert sorted(rcache.__all__) == rcache.__all__


def test_public_names_come_from_rcache() -> None:
    for name in rcache.__all__:
        if name.startswith("__"):
            continue
        member = getattr(rcache, name)
        if typing.get_origin(member) is not None:
            continue  # a type alias such as Op

        module = getattr(member, "__module__", "rcache")
        assert module.startswith("rcache"), (name, module)


def test_core_never_imports_a_web_framework() -> None:
    import subprocess
    import sys

    code = (
        "import sys, rcache, rcache.adapter, rcache.server, rcache.codecs;"
        "bad = [m for m in ('django', 'flask', 'starlette') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
