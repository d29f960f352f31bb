"""Run Django's own session test contract against the rcache session engine.

::

    .venv/bin/python tests/run_django_session_suite.py [-v]

1. Download the sdist of the installed Django version into ``.cache/django-sdist/`` (once;
   reruns reuse it) and extract its ``tests/`` into ``.cache/django-<version>-tests/``.
2. Write a settings module and a small test module into that copy: the test module runs
   Django's ``SessionTestsMixin`` (every sync and async test of the session API) with
   ``backend = rcache_django.sessions.SessionStore``, in a ``SimpleTestCase``, so a stray
   database query fails too.
3. Start a private redis-server (:class:`rcache.server.RedisServer`), run
   ``runtests.py sessions_tests.test_rcache_sessions --parallel=1`` against it, stop the
   server by pid, print the counts and exit non-zero unless every test of the mixin ran
   and passed.

The last line of output is ``RESULT {json}`` with the counts, for tests/django to check.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

from _django_contract import (  # noqa: E402  (tests/ is on sys.path)
    ROOT,
    django_tests,
    parse_counts,
    stop_on_sigterm,
    write_if_changed,
)

LABEL = "sessions_tests.test_rcache_sessions"
SETTINGS_MODULE = "rcache_session_settings"
RUN_TIMEOUT = 170  # seconds; the suite takes a few

SETTINGS = '''\
"""Settings for Django's session tests against rcache (written by run_django_session_suite.py)."""

import os

from test_sqlite import *  # noqa: F403

SESSION_ENGINE = "rcache_django.sessions"
RCACHE_SESSIONS = {
    "URL": os.environ["RCACHE_SUITE_REDIS_URL"],
    "OPTIONS": {"prefix": "django-suite", "socket_timeout": 2.0},
}
'''

TEST_MODULE = '''\
"""Django's session test contract with rcache's engine (written by run_django_session_suite.py)."""

from django.test import SimpleTestCase

from rcache_django._sessions_stores import stores
from rcache_django.sessions import SessionStore

from .tests import SessionTestsMixin


class RCacheSessionTests(SessionTestsMixin, SimpleTestCase):
    backend = SessionStore

    @classmethod
    def tearDownClass(cls):
        stores.reset()  # close the pooled connections: runtests makes ResourceWarning an error
        super().tearDownClass()
'''


def contract_size(tests: Path) -> int:
    """Return how many tests ``SessionTestsMixin`` defines in this Django's test suite."""
    tree = ast.parse((tests / "sessions_tests" / "tests.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "SessionTestsMixin":
            return sum(
                isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef) and f.name.startswith("test")
                for f in node.body
            )
    raise SystemExit("SessionTestsMixin not found in sessions_tests/tests.py")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="show every test")
    args = parser.parse_args(argv)

    from rcache.server import RedisServer

    django_version = version("django")
    tests = django_tests(django_version)
    write_if_changed(tests / f"{SETTINGS_MODULE}.py", SETTINGS)
    write_if_changed(tests / "sessions_tests" / "test_rcache_sessions.py", TEST_MODULE)

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    server = RedisServer()
    started = time.monotonic()
    try:
        server.start()
        env = {
            **os.environ,
            "RCACHE_SUITE_REDIS_URL": server.url,
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT), str(ROOT / "integrations"), os.environ.get("PYTHONPATH", "")]
            ),
        }
        command = [
            *(sys.executable, "runtests.py", LABEL, f"--settings={SETTINGS_MODULE}"),
            *("--parallel=1", "--noinput", "-v", "2"),
        ]
        run = subprocess.run(
            command,
            cwd=tests,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
    finally:
        server.stop()
    elapsed = time.monotonic() - started

    output = run.stdout + run.stderr
    counts = parse_counts(output)
    counts["expected"] = contract_size(tests)
    ok = run.returncode == 0 and bool(counts["ok"]) and counts["ran"] == counts["expected"]
    if args.verbose or not ok:
        print(output)
    print(
        f"Django {django_version} SessionTestsMixin with rcache_django.sessions.SessionStore: "
        f"{counts['expected']} in the contract, {counts['ran']} run, {counts['passed']} passed, "
        f"{counts['failures']} failed, {counts['errors']} errors, {counts['skipped']} skipped "
        f"({elapsed:.1f} s)"
    )
    print(
        "RESULT " + json.dumps({**counts, "returncode": run.returncode, "django": django_version})
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
