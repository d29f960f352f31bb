"""Run a benchmark suite side by side with its peers and print medians and ratios.

    python -m bench.run adapter [--seconds 2] [--rounds 3] [--url redis://...]

Without ``--url`` a private redis-server is started (TCP and unix socket) and stopped at
the end. The benchmark process and redis-server are both pinned to CPU 0 (a loopback round
trip is more than twice as fast, and far steadier, when both share one core), the same for
every contender. Results go to stdout as a Markdown table and to ``bench/results/*.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import adapter_suite, objects_suite, pages_suite, sessions_suite
from bench.harness import measure, pin, render_table, write_json
from rcache.server import RedisServer

SUITES = {
    "adapter": adapter_suite.contenders,
    "objects": objects_suite.contenders,
    "pages": pages_suite.contenders,
    "sessions": sessions_suite.contenders,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("suite", choices=sorted(SUITES))
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one round (s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per contender (median)")
    parser.add_argument("--cpu", type=int, default=0, help="CPU that client and server share")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    args = parser.parse_args(argv)

    server = RedisServer(unix_socket=True).start()
    try:
        pinned = pin({args.cpu}) and pin({args.cpu}, server.pid)
        contenders = SUITES[args.suite](server.url, server.unix_url)
        results = measure(contenders, seconds=args.seconds, rounds=args.rounds)
    finally:
        server.stop()
    print(render_table(results))
    print(
        f"\n{args.rounds} rounds of {args.seconds:g}s; client and redis-server pinned to "
        f"CPU {args.cpu}: {pinned}"
    )
    out = args.json or Path(__file__).parent / "results" / f"{args.suite}.json"
    write_json(
        out,
        args.suite,
        results,
        {
            "seconds": args.seconds,
            "rounds": args.rounds,
            "pinned_cpu": args.cpu if pinned else None,
        },
    )
    print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
