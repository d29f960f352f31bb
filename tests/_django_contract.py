"""What the Django contract-suite runners share: the sdist, its tests/, unittest's summary.

Django's own test suites ship in its sdist, not its wheel. The runners download the sdist of
the installed Django version once into ``.cache/``, extract its ``tests/`` directory, add a
small test module that points Django's tests at rcache, run ``tests/runtests.py`` and read
the counts from unittest's summary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache"

_RAN = re.compile(r"^Ran (\d+) tests? in ([\d.]+)s", re.MULTILINE)
_SUMMARY = re.compile(r"^(OK|FAILED)(?: \(([^)]*)\))?\s*$", re.MULTILINE)


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


def stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that stops redis-server
