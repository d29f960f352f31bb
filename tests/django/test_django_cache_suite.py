"""Django's own cache test contract passes against rcache_django.RedisCache.

Runs ``tests/run_django_cache_suite.py`` (Django's ``BaseCacheTests`` from the sdist of the
installed Django, on a private redis-server) in a subprocess and checks its counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "run_django_cache_suite.py"
#: Culling tests only: Redis evicts by its maxmemory-policy (see the script's docs).
EXPECTED_SKIPS = ["test_cull", "test_zero_cull"]


def test_django_base_cache_tests_pass() -> None:
    run = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=175)
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, run.stdout + run.stderr
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
    assert result["failures"] == 0 and result["errors"] == 0, result
    assert result["skips"] == EXPECTED_SKIPS, result
    assert result["passed"] >= 50, result  # BaseCacheTests has 54 tests in Django 5.2
