"""A longer Schemathesis run over the whole REST API than the test suite's bounded one.

    .venv/bin/python benchmarks/fuzz_api.py [--examples 50] [--seed-random] [--json out.json]

Starts its own `automl serve` (SQLite, in-process executor) in a temporary folder, with one
owner's dataset and finished tiny job and a second owner's key — the same world as
tests/integration/test_api_fuzz.py — then fuzzes every operation from /openapi.json:

1. with the owner's key: positive and negative requests, generated path parameters, then the
   real dataset's and job's ids; checks: no 5xx, documented status codes, bodies on schema;
2. without a key: every call a 401 (a body that is not JSON may be refused first);
3. with the other owner's key and the first owner's ids: no answer holds the first owner's data.

Prints each operation as it goes, then per run the operations, cases, statuses and failures
(with a curl command that reproduces each). Exits 1 when a failure was found.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.test_api_fuzz import (  # noqa: E402
    FuzzReport,
    fuzz_no_key,
    fuzz_other_owner,
    fuzz_owner,
    no_leftover_jobs,
    start_world,
    stop_world,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=50, help="per operation and mode")
    parser.add_argument(
        "--seed-random",
        action="store_true",
        help="new examples on every run (default: derandomized, as in the tests)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not list the operations")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()

    options = {"derandomize": not args.seed_random, "log": None if args.quiet else print}
    results: dict[str, FuzzReport] = {}
    with tempfile.TemporaryDirectory(prefix="automl-fuzz-") as tmp:
        world = start_world(Path(tmp))
        try:
            print(f"server {world.server.url}, {args.examples} examples per operation and mode")
            for name, run in (
                ("owner's key", fuzz_owner),
                ("no key", fuzz_no_key),
                ("another owner's key", fuzz_other_owner),
            ):
                print(f"\n== {name}")
                results[name] = run(world, args.examples, **options)
                no_leftover_jobs(world)
        finally:
            stop_world(world)

    print()
    total = FuzzReport()
    for name, report in results.items():
        total.add(report)
        print(f"{name:>20}: {report.summary()}")
        for key, example in sorted(report.failures.items()):
            print(f"    FAIL {key}\n        {example}")
    print(f"{'all':>20}: {total.summary()}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    name: {
                        "operations": r.operations,
                        "cases": r.cases,
                        "statuses": dict(r.statuses),
                        "failures": r.failures,
                        "seconds": round(r.seconds, 1),
                    }
                    for name, r in results.items()
                },
                indent=2,
            )
        )
    return 1 if total.failures else 0


if __name__ == "__main__":
    sys.exit(main())
