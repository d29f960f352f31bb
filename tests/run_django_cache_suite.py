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
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from importlib.metadata import version
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache"
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

_RAN = re.compile(r"^Ran (\d+) tests? in ([\d.]+)s", re.MULTILINE)
_SUMMARY = re.compile(r"^(OK|FAILED)(?: \(([^)]*)\))?\s*$", re.MULTILINE)
_SKIPPED = re.compile(r"^(test_\w+) \([\w.]+\)(?:\.test_\w+)? \.\.\. skipped '(.*)'$", re.MULTILINE)


def sdist(django_version: str) -> Path:
    """Return the cached sdist of ``django_version``, downloading it the first time."""
    target = CACHE / "django-sdist"
    found = sorted(target.glob(f"[Dd]jango-{django_version}.tar.gz"))
    if found:
        return found[0]
    target.mkdir(parents=True, exist_ok=True)
    print(f"downloading the Django {django_version} sdist into {target.relative_to(ROOT)}/")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"),
            *(f"django=={django_version}", "-d", str(target)),
        ],
        check=True,
    )
    found = sorted(target.glob(f"[Dd]jango-{django_version}.tar.gz"))
    if not found:
        raise SystemExit(f"pip did not leave a Django {django_version} sdist in {target}")
    return found[0]


def django_tests(django_version: str) -> Path:
    """Return the extracted ``tests/`` directory of the Django sdist (extracted once)."""
    tests = CACHE / f"django-{django_version}-tests"
    if (tests / "runtests.py").exists() and (tests / "cache" / "tests.py").exists():
        return tests
    archive = sdist(django_version)
    staging = CACHE / f"django-{django_version}-tests.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(archive) as tar:
        top = tar.getnames()[0].split("/")[0]
        prefix = f"{top}/tests/"
        members = []
        for member in tar.getmembers():
            if member.name.startswith(prefix):
                member.name = member.name[len(prefix) :]
                members.append(member)
        tar.extractall(staging, members=members, filter="data")
    if (tests / "runtests.py").exists() and (tests / "cache" / "tests.py").exists():
        shutil.rmtree(staging, ignore_errors=True)  # extracted meanwhile by another runner
        return tests
    shutil.rmtree(tests, ignore_errors=True)
    staging.rename(tests)
    return tests


def write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def parse_counts(output: str) -> dict[str, int | float]:
    """Return ran/passed/failures/errors/skipped (and seconds) from unittest's summary."""
    ran = _RAN.search(output)
    summary = _SUMMARY.search(output)
    counts: dict[str, int | float] = {"ran": 0, "failures": 0, "errors": 0, "skipped": 0}
    counts["seconds"] = float(ran.group(2)) if ran else 0.0
    if ran:
        counts["ran"] = int(ran.group(1))
    details = summary.group(2) if summary and summary.group(2) else ""
    for part in details.split(","):
        name, _, number = part.strip().partition("=")
        if number.isdigit():
            counts[name.replace(" ", "_")] = int(number)
    not_passed = sum(
        int(counts.get(k, 0))
        for k in ("failures", "errors", "skipped", "expected_failures", "unexpected_successes")
    )
    counts["passed"] = int(counts["ran"]) - not_passed
    counts["ok"] = int(bool(summary and summary.group(1) == "OK" and counts["ran"]))
    return counts


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that stops redis-server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="show every test")
    args = parser.parse_args(argv)

    from rcache.server import RedisServer

    django_version = version("django")
    tests = django_tests(django_version)
    write_if_changed(tests / "cache" / "test_rcache_backend.py", TEST_MODULE.format(skips=SKIPS))

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
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
