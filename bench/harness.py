"""Timing, pinning and reporting shared by every benchmark suite.

Every contender in a suite runs against the same private redis-server in the same run,
pinned the same way, interleaved round by round (A B C, A B C, ...) so that drift on a
shared machine hits them all alike. We report medians and ratios to a baseline, never a
single best run.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Contender", "Result", "measure", "pin", "ratios", "render_table", "write_json"]


@dataclass
class Contender:
    """A named benchmark body: ``setup()`` returns the callable timed in a loop.

    ``group`` names the row (e.g. "get 100 B"); ``name`` the library. ``teardown`` runs
    once at the end. ``ops_per_call`` counts operations done by one call (batch benches).
    """

    group: str
    name: str
    setup: Callable[[], Callable[[], Any]]
    teardown: Callable[[], None] | None = None
    ops_per_call: int = 1
    baseline: bool = False


@dataclass
class Result:
    group: str
    name: str
    runs: list[float] = field(default_factory=list)  # ops/s of each round
    baseline: bool = False

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else 0.0


def pin(cpus: set[int], pid: int = 0) -> bool:
    """Pin a process (0 = this one) to ``cpus``; return False where the OS does not allow it."""
    try:
        os.sched_setaffinity(pid, cpus)
        return True
    except (AttributeError, OSError):
        return False


def _time_loop(fn: Callable[[], Any], seconds: float) -> tuple[int, float]:
    calls = 0
    batch = 1
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        for _ in range(batch):
            fn()
        calls += batch
        now = time.perf_counter()
        if now >= deadline:
            return calls, now - t0
        batch = min(batch * 2, 1024)


def measure(
    contenders: list[Contender], *, seconds: float, rounds: int, slice_s: float = 0.1
) -> list[Result]:
    """Time every contender ``rounds`` times; return one Result each.

    Within a round, contenders take turns in short slices (``slice_s``) until each has
    run ``seconds`` in total, so a burst of load elsewhere on the machine hits all of them
    alike instead of whichever happened to be running.
    """
    bodies = [(c, c.setup()) for c in contenders]
    results = [Result(c.group, c.name, baseline=c.baseline) for c in contenders]
    for _c, body in bodies:  # warm up: connections, scripts, caches
        _time_loop(body, min(0.2, seconds))
    slices = max(1, round(seconds / slice_s))
    for _ in range(rounds):
        calls = [0] * len(bodies)
        spent = [0.0] * len(bodies)
        for _ in range(slices):
            for i, (_c, body) in enumerate(bodies):
                n, elapsed = _time_loop(body, slice_s)
                calls[i] += n
                spent[i] += elapsed
        for i, ((c, _body), res) in enumerate(zip(bodies, results, strict=True)):
            res.runs.append(calls[i] * c.ops_per_call / spent[i])
    for c, _ in bodies:
        if c.teardown is not None:
            c.teardown()
    return results


def ratios(results: list[Result]) -> dict[int, float]:
    """Return, per result index, the median over rounds of (its ops/s / baseline ops/s).

    Pairing each round with the baseline's same round cancels most machine-wide drift.
    """
    base = {r.group: r for r in results if r.baseline}
    out: dict[int, float] = {}
    for i, r in enumerate(results):
        b = base.get(r.group)
        if b is not None and b.runs:
            out[i] = statistics.median(x / y for x, y in zip(r.runs, b.runs, strict=True))
    return out


def render_table(results: list[Result]) -> str:
    """Return a Markdown table: median ops/s and the median paired ratio to the baseline."""
    lines = [
        "| benchmark | library | median ops/s | ratio to baseline | runs (ops/s) |",
        "|---|---|---:|---:|---|",
    ]
    paired = ratios(results)
    for i, r in enumerate(results):
        ratio = f"{paired[i]:.2f}" if i in paired else "-"
        runs = ", ".join(f"{x:,.0f}" for x in r.runs)
        lines.append(f"| {r.group} | {r.name} | {r.median:,.0f} | {ratio} | {runs} |")
    return "\n".join(lines)


def write_json(path: Path, suite: str, results: list[Result], meta: dict[str, Any]) -> None:
    """Write the results with the machine and settings they were measured on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    paired = ratios(results)
    doc = {
        "suite": suite,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        **meta,
        "results": [
            asdict(r) | {"median": r.median, "ratio": paired.get(i)} for i, r in enumerate(results)
        ],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
