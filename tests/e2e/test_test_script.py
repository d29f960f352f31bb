"""``scripts/test``, the README's test command: a failing check must fail the command.

The script runs in a scratch copy of the repository layout whose ``.venv/bin`` holds
stand-ins for ruff, mypy and python (each records its call and exits with the status the
test chose) and whose ``scripts/bootstrap`` does nothing, so only the script's own control
flow is under test.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("ruff", "mypy", "python")


_STUB = """#!/usr/bin/env bash
echo "{tool} $*" >> "$CALLS"
if [ "$FAILING" = "{tool}" ] || [ "$FAILING" = "{tool} $1" ]; then exit 1; fi
exit 0
"""


def _layout(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "test", tmp_path / "scripts" / "test")
    bootstrap = tmp_path / "scripts" / "bootstrap"
    bootstrap.write_text("#!/usr/bin/env bash\nexit 0\n")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in TOOLS:
        (bin_dir / tool).write_text(_STUB.format(tool=tool))
    for path in [bootstrap, tmp_path / "scripts" / "test", *bin_dir.iterdir()]:
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return tmp_path


def _run(root: Path, failing: str | None) -> tuple[int, list[str]]:
    """Run the script; return its exit status and the steps that ran (tool + first arg)."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env |= {"CALLS": str(root / "calls"), "FAILING": failing or ""}
    done = subprocess.run(
        ["bash", str(root / "scripts" / "test")], env=env, capture_output=True, timeout=60
    )
    calls = (root / "calls").read_text().splitlines() if (root / "calls").exists() else []
    steps = [" ".join(c.split(" ")[:2]) if c.startswith("ruff") else c.split(" ")[0] for c in calls]
    return done.returncode, steps


@pytest.mark.parametrize("failing", ["ruff check", "ruff format", "mypy", "python"])
def test_any_failing_check_fails_the_test_command(tmp_path: Path, failing: str) -> None:
    code, steps = _run(_layout(tmp_path), failing)
    assert code != 0
    assert steps[-1] == failing  # nothing after the failing step runs


def test_all_checks_passing_runs_every_step(tmp_path: Path) -> None:
    code, steps = _run(_layout(tmp_path), None)
    assert code == 0
    assert steps == ["ruff check", "ruff format", "mypy", "python"]
