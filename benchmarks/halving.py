"""Successive halving (``spec.early_stopping``) at equal wall time: the search alone (no
evaluation phase, no export) within one time budget, without halving and with it and more
candidates per iteration; the final ensemble's accuracy on the untouched test split.

    .venv/bin/python benchmarks/halving.py [--dataset mnist1d] [--budget 300] [--seeds 0]
        [--epochs 20] [--candidates 4] [--candidates-halving 8] [--min-epochs 2]
        [--reduction-factor 3] [--json out.json]

Per run it prints one JSON line, then a table per setting with the mean over seeds: candidates
trained, how many were pruned, epochs trained in all, iterations, wall time, the objective F of
the final ensemble, its test accuracy, and the 1-minute load average (the machine is shared:
figures go in notes beside it, never in tests).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def test_accuracy(result: Any) -> float:
    """The final ensemble's accuracy on the test split: Σ_j w_j·h_j(x) + b, argmax."""
    import numpy as np

    from automl.ensemble.ensembler import combine
    from automl.model import build_member_model, data_info

    data, ens = result.data, result.ensemble
    info = data_info(data)
    logits = np.stack(
        [
            build_member_model(m, info).predict(data.x_test, batch_size=1024, verbose=0)
            for m in ens.members
        ],
        axis=1,
    )
    z = combine(logits, np.asarray(ens.fit.weights), np.asarray(ens.fit.bias))
    return float(np.mean(np.argmax(z, axis=1) == data.y_test.astype(np.int64)))


def run_one(args: argparse.Namespace, seed: int, halving: bool) -> dict[str, Any]:
    from automl.data import load_builtin, prepare
    from automl.search import AdaNetSearch
    from automl.spec import SearchSpec

    spec = SearchSpec.from_dict(
        {
            "seed": seed,
            "epochs": args.epochs,
            "time_budget_s": args.budget,
            "max_iterations": 100,  # the budget decides
            "candidates_per_iteration": args.candidates_halving if halving else args.candidates,
            "early_stopping": {
                "enabled": halving,
                "min_epochs": args.min_epochs,
                "reduction_factor": args.reduction_factor,
            },
            "evaluation": {"enabled": False},
        }
    )
    data = prepare(
        load_builtin(args.dataset),
        test_fraction=spec.test_fraction,
        validation_fraction=spec.validation_fraction,
        seed=seed,
    )
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    result = AdaNetSearch(spec, data).run()
    wall = time.perf_counter() - started
    candidates = [c for it in result.iterations for c in it.candidates]
    return {
        "dataset": args.dataset,
        "seed": seed,
        "halving": halving,
        "candidates_per_iteration": spec.candidates_per_iteration,
        "candidates": len(candidates),
        "pruned": sum(c.stop_reason == "pruned" for c in candidates),
        "failed": sum(c.state == "failed" for c in candidates),
        "epochs_trained": sum(c.epochs_run for c in candidates),
        "iterations": len(result.iterations),
        "members": len(result.ensemble.members),
        "stop_reason": result.stop_reason,
        "wall_s": round(wall, 1),
        "budget_s": args.budget,
        "objective": round(result.ensemble.fit.objective, 4),
        "test_accuracy": round(test_accuracy(result), 4),
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'halving':8} {'cand/it':>7} {'seeds':>5} {'tried':>6} {'pruned':>6} {'epochs':>7} "
        f"{'iters':>5} {'wall s':>7} {'F':>7} {'test acc':>8} {'load 1m':>11}"
    )
    lines = [head]
    for halving in (False, True):
        rs = [r for r in rows if r["halving"] == halving]
        if not rs:
            continue

        def mean(key: str, rs: list[dict[str, Any]] = rs) -> float:
            return sum(float(r[key]) for r in rs) / len(rs)

        loads = [v for r in rs for v in r["load_avg_1m"]]
        lines.append(
            f"{'on' if halving else 'off':8} {rs[0]['candidates_per_iteration']:7d} "
            f"{len(rs):5d} {mean('candidates'):6.1f} {mean('pruned'):6.1f} "
            f"{mean('epochs_trained'):7.1f} {mean('iterations'):5.1f} {mean('wall_s'):7.0f} "
            f"{mean('objective'):7.4f} {100 * mean('test_accuracy'):7.2f}% "
            f"{min(loads):5.1f}-{max(loads):<5.1f}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--dataset", default="mnist1d")
    parser.add_argument("--budget", type=float, default=300.0)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--candidates", type=int, default=4, help="per iteration, halving off")
    parser.add_argument("--candidates-halving", type=int, default=8, help="halving on")
    parser.add_argument("--min-epochs", type=int, default=2)
    parser.add_argument("--reduction-factor", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write every row here too")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        for halving in (False, True):
            row = run_one(args, seed, halving)
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
