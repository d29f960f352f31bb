"""Django's own session test contract (``SessionTestsMixin``) passes with our engine.

Runs ``tests/run_django_session_suite.py`` in a subprocess: it fetches the sdist of the
installed Django once (cached under ``.cache/``), starts its own redis-server and runs
every sync and async test of the mixin against ``rcache_django.sessions.SessionStore``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "run_django_session_suite.py"


@pytest.mark.timeout(300)  # the first run downloads the sdist
def test_django_session_test_contract_passes() -> None:
    run = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=280)
    output = run.stdout + run.stderr
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, output
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert run.returncode == 0, output
    assert result["failures"] == result["errors"] == result["skipped"] == 0, output
    assert result["ran"] == result["passed"] == result["expected"] >= 65, output
