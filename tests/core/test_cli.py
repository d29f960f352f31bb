"""The ``rcache`` command against a real server."""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

import pytest

from rcache.cli import main


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse: --help, bad usage
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_help_of_every_command() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for command in (
        "ping",
        "latency",
        "stat",
        "doctor",
        "bigkeys",
        "inspect",
        "purge",
        "warm",
        "hotkeys",
    ):
        assert command in out
        code, sub_out, _ = run(command, "--help")
        assert code == 0 and "usage: rcache" in sub_out


def test_console_script_entry_point() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rcache.cli", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0 and "Inspect and maintain" in done.stdout


def test_ping_latency_stat(redis_server: Any) -> None:
    code, out, _ = run("--url", redis_server.url, "ping")
    assert code == 0 and out.startswith("PONG")
    code, out, _ = run("--url", redis_server.url, "latency", "-n", "20")
    assert code == 0 and "20 PINGs" in out and "p99" in out
    code, out, _ = run("--url", redis_server.url, "stat")
    assert code == 0 and "Redis 7" in out and "hit ratio" in out


def test_doctor_flags_a_policy_unsafe_for_sessions(fresh_server: Any) -> None:
    client = fresh_server.client()
    client.config_set("maxmemory", "64mb")
    client.config_set("maxmemory-policy", "allkeys-lru")
    client.close()
    code, out, _ = run("--url", fresh_server.url, "doctor")
    assert code == 1
    assert "for sessions" in out and "[ error " in out


def test_bigkeys_inspect_purge(redis_server: Any, key_prefix: str) -> None:
    client = redis_server.client()
    client.set(key_prefix + "big", b"\x81" + b'"' + b"x" * 5000 + b'"')  # a json str value
    client.set(key_prefix + "small", b"7")
    client.hset(key_prefix + "h", mapping={"a": b"1"})
    client.close()
    url = redis_server.url
    code, out, _ = run("--url", url, "bigkeys", "--match", key_prefix + "*", "--top", "1")
    assert code == 0 and "3 keys measured" in out and (key_prefix + "big") in out
    assert (key_prefix + "small") not in out
    code, out, _ = run("--url", url, "inspect", key_prefix + "small")
    assert code == 0 and "type string" in out and out.strip().endswith("7")
    code, out, _ = run("--url", url, "inspect", key_prefix + "h")
    assert code == 0 and "type hash" in out and "'a': 1" in out
    code, out, _ = run("--url", url, "inspect", key_prefix + "absent")
    assert code == 1 and "no such key" in out
    code, out, _ = run("--url", url, "purge", key_prefix + "*", "--dry-run")
    assert code == 0 and out.startswith("3 keys match")
    code, out, _ = run("--url", url, "purge", key_prefix + "*")
    assert code == 0 and out.startswith("deleted 3 keys")
    code, out, _ = run("--url", url, "bigkeys", "--match", key_prefix + "*")
    assert "0 keys measured" in out


def test_purge_everything_needs_yes(redis_server: Any) -> None:
    code, _, err = run("--url", redis_server.url, "purge", "*")
    assert code == 2 and "--yes" in err


@pytest.mark.parametrize(
    ("argv", "status", "needle"),
    [
        (("--url", "redis://h?nope=1", "ping"), 2, "'nope'"),
        (("--url", "redis://127.0.0.1:1/0", "ping"), 3, "cannot reach"),
        (("nosuchcommand",), 2, "invalid choice"),
    ],
)
def test_errors_have_clear_messages_and_statuses(
    argv: tuple[str, ...], status: int, needle: str
) -> None:
    code, _, err = run(*argv)
    assert code == status
    assert needle in err


def test_hotkeys_lists_the_board(redis_server: Any, key_prefix: str) -> None:
    from rcache.adapter import RedisAdapter
    from rcache.hotkeys import HotKeys

    adapter = RedisAdapter.from_url(redis_server.url, key_prefix=key_prefix)
    hot = HotKeys("cli", sample=1.0)
    for key, n in (("product:1", 3), ("product:2", 7)):
        for _ in range(n):
            hot.note(key)
    hot.flush(adapter)
    adapter.close()
    args = ("--url", redis_server.url, "hotkeys", "--name", "cli", "--prefix", key_prefix)
    code, out, _ = run(*args)
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == ["7", "product:2"] and lines[2].split() == ["3", "product:1"]
    code, out, _ = run("--url", redis_server.url, "hotkeys", "--name", "nothing-here")
    assert code == 0 and "no reads recorded" in out
    assert run("--url", redis_server.url, "hotkeys", "--top", "0")[0] == 2
