"""Run Django's own cache backend test contract against ``rcache_django.RedisCache``.

::

    .venv/bin/python tests/run_django_cache_suite.py [-v]

1. Download the sdist of the installed Django version into ``.cache/django-sdist/`` (once;
   reruns reuse it) and extract its ``tests/`` into ``.cache/django-<version>-tests/``.
2. Write a small test module into that copy, ``cache/test_rcache_backend.py``: Django's
   ``BaseCacheTests`` (every generic test a cache backend must pass: the verbs, timeouts,
   versions, key functions, key warnings, pickling, the cache middleware) in a ``TestCase``,
   with ``@override_settings(CACHES=...)`` pointing every alias the tests use at
   ``rcache_django.RedisCache``. (``RedisCacheTests`` activates only for Django's own
   backend class and tests its client internals, so it is not used.)
3. Start a private redis-server (:class:`rcache.server.RedisServer`), run
   ``runtests.py cache.test_rcache_backend --parallel=1`` (the ``cache`` app label installs
   the test models), stop the server by pid, print the counts and the skips, and exit
   non-zero unless every test that ran passed.

Skipped, and only these (culling): ``test_cull`` and ``test_zero_cull`` expect the backend
to delete entries itself once ``OPTIONS["MAX_ENTRIES"]`` is passed. Redis evicts by its own
``maxmemory-policy``, so the backend accepts and ignores MAX_ENTRIES and CULL_FREQUENCY.

The last line of output is ``RESULT {json}`` with the counts, for tests/django to check.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from importlib.metadata import version

from _django_contract import (  # noqa: E402  (tests/ is on sys.path)
    ROOT,
    django_tests,
    parse_counts,
    stop_on_sigterm,
    write_if_changed,
)

LABEL = "cache.test_rcache_backend"
RUN_TIMEOUT = 170  # seconds; the suite takes well under a minute

#: The only tests skipped, and why (the generated module skips exactly these).
SKIPS = {
    "test_cull": "culling: Redis evicts by its maxmemory-policy; MAX_ENTRIES is ignored",
    "test_zero_cull": "culling: Redis evicts by its maxmemory-policy; CULL_FREQUENCY is ignored",
}

TEST_MODULE = '''\
"""Django's cache backend contract with rcache_django.RedisCache (run_django_cache_suite.py)."""

import os
from unittest import skip

from django.test import TestCase, override_settings

from rcache_django._cache_config import reset

from .tests import BaseCacheTests, caches_setting_for_tests

SKIPS = {skips!r}


@override_settings(
    CACHES=caches_setting_for_tests(
        BACKEND="rcache_django.RedisCache",
        LOCATION=os.environ["RCACHE_SUITE_REDIS_URL"],
    )
)
class RCacheRedisCacheTests(BaseCacheTests, TestCase):
    @skip(SKIPS["test_cull"])
    def test_cull(self):
        pass

    @skip(SKIPS["test_zero_cull"])
    def test_zero_cull(self):
        pass

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        reset()  # close the pooled connections: runtests makes ResourceWarning an error
'''

_SKIPPED = re.compile(r"^(test_\w+) \([\w.]+\)(?:\.test_\w+)? \.\.\. skipped '(.*)'$", re.MULTILINE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="show every test")
    args = parser.parse_args(argv)

    from rcache.server import RedisServer

    django_version = version("django")
    tests = django_tests(django_version)
    write_if_changed(tests / "cache" / "test_rcache_backend.py", TEST_MODULE.format(skips=SKIPS))

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
        command = [sys.executable, "runtests.py", LABEL, "--parallel=1", "--noinput", "-v", "2"]
        run = subprocess.run(
            command, cwd=tests, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT
        )
    finally:
        server.stop()
    elapsed = time.monotonic() - started

    output = run.stdout + run.stderr
    counts = parse_counts(output)
    skipped = dict(_SKIPPED.findall(output))
    unexpected_skips = sorted(set(skipped) - set(SKIPS))
    ok = run.returncode == 0 and bool(counts["ok"]) and not unexpected_skips
    if args.verbose or not ok:
        print(output)
    print(
        f"Django {django_version} BaseCacheTests with rcache_django.RedisCache: "
        f"{counts['ran']} run, {counts['passed']} passed, {counts['failures']} failed, "
        f"{counts['errors']} errors, {counts['skipped']} skipped ({elapsed:.1f} s)"
    )
    for name, reason in sorted(skipped.items()):
        print(f"  skipped {name}: {reason}")
    if unexpected_skips:
        print(f"  unexpected skips: {', '.join(unexpected_skips)}")
    result = {
        **counts,
        "returncode": run.returncode,
        "django": django_version,
        "skips": sorted(skipped),
    }
    print("RESULT " + json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
