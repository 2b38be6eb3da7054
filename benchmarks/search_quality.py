"""Default search on digits and MNIST-1D: test accuracy, ensemble size, parameters, wall time,
and the best single member's test accuracy.

    .venv/bin/python benchmarks/search_quality.py [--datasets digits mnist1d] [--seed 0]
        [--spec spec.json] [--json out.json]

Targets (2 cores, default settings, untouched test split): digits ≥ 98% within 5 minutes;
MNIST-1D ≥ 97% within 10 minutes; the search finds convolutions on MNIST-1D; the ensemble's test
accuracy is at least its best single member's. Figures go in the closing note, not in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TARGETS = {"digits": (0.98, 300.0), "mnist1d": (0.97, 600.0)}


def main() -> int:
    from automl.data import load_builtin
    from automl.runner import run
    from automl.spec import SearchSpec

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist1d"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spec", type=Path, help="spec JSON (default: the default spec)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--out", type=Path, help="keep run directories under here")
    args = parser.parse_args()

    base = SearchSpec.from_json(args.spec.read_text()) if args.spec else SearchSpec()
    rows = []
    for name in args.datasets:
        spec = SearchSpec.from_dict({**base.to_dict(), "seed": args.seed})
        started = time.perf_counter()
        outcome = run(spec, load_builtin(name), args.out / name if args.out else None)
        wall = time.perf_counter() - started
        r = outcome.report
        families = sorted({m["family"] for m in r["ensemble"]["members"]})
        tried = sorted({c["hparams"]["family"] for it in r["iterations"] for c in it["candidates"]})
        row = {
            "dataset": name,
            "test_accuracy": r["test_metrics"]["accuracy"],
            "best_member_test_accuracy": r["best_member_test_metrics"]["accuracy"],
            "ensemble_size": len(r["ensemble"]["members"]),
            "member_families": families,
            "families_tried": tried,
            "params": r["ensemble"]["params"],
            "iterations": len(r["iterations"]),
            "candidates": sum(len(it["candidates"]) for it in r["iterations"]),
            "stop_reason": r["stop_reason"],
            "wall_s": round(wall, 1),
        }
        target_acc, target_s = TARGETS.get(name, (None, None))
        if target_acc is not None:
            row["meets_accuracy_target"] = row["test_accuracy"] >= target_acc
            row["meets_time_target"] = wall <= target_s
        row["ensemble_ge_best_member"] = row["test_accuracy"] >= row["best_member_test_accuracy"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
