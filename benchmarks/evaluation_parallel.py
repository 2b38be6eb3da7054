"""The evaluation phase in the controller process (one training after another) against the same
phase on Ray workers (folds × members, grow rules and fine-tunes in parallel).

    .venv/bin/python benchmarks/evaluation_parallel.py [--dataset digits] [--seed 0]
        [--workers 2] [--json out.json]

One search with the default spec on ``--workers`` one-CPU Ray workers, then the evaluation
phase twice on its result: in this process (how the phase ran before it moved onto the
executor: each training after the other, TensorFlow using every core), and on the Ray workers.
Prints both wall times, the speed-up (issue 8's target: ≥ 1.7× with 2 workers on 2 CPUs), the
whole job's wall time (search + phase on the workers + final model and exports), where each
training ran, and whether both runs kept the same steps. Figures go in closing notes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    import automl.evaluation  # noqa: F401 - loaded now: the whole run uses one version of it
    from automl.data import load_builtin, prepare
    from automl.executors import InProcessExecutor
    from automl.runner import finish
    from automl.search import AdaNetSearch
    from automl.spec import Resources, SearchSpec
    from workers.ray_executor import RayExecutor, ensure_ray

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    spec = SearchSpec.from_dict(
        {**SearchSpec().to_dict(), "seed": args.seed, "resources": {"cpus": 1}}
    )
    data = prepare(
        load_builtin(args.dataset),
        test_fraction=spec.test_fraction,
        validation_fraction=spec.validation_fraction,
        seed=spec.seed,
    )
    ensure_ray(num_cpus=args.workers)
    ray_exe = RayExecutor(Resources(cpus=1))
    warm = ray_exe.warm_up()
    started = time.perf_counter()
    result = AdaNetSearch(spec, data, ray_exe).run()
    search_s = time.perf_counter() - started
    row: dict = {
        "dataset": args.dataset,
        "seed": args.seed,
        "workers": warm,
        "search_wall_s": round(search_s, 1),
        "iterations": len(result.iterations),
        "members": len(result.ensemble.members),
    }
    print(json.dumps(row), flush=True)

    runs = {}
    for label, exe in (("in_process", InProcessExecutor()), ("ray", ray_exe)):
        trainings: list[dict] = []
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            outcome = finish(
                result,
                Path(out),
                executor=exe,
                on_training=lambda _r, rec, t=trainings: t.append(rec),
            )
            total_s = time.perf_counter() - started
        ev = outcome.report["evaluation"]
        runs[label] = {
            "evaluation_wall_s": round(ev["wall_s"], 1),
            "finish_wall_s": round(total_s, 1),
            "trainings": len(trainings),
            "training_s_sum": round(sum(t["duration_s"] for t in trainings), 1),
            "nodes": dict(Counter(t["node"].rsplit(":", 1)[-1] for t in trainings)),
            "failed": sum(t["state"] == "failed" for t in trainings),
            "kept": [s["step"] for s in ev["steps"] if s["kept"]],
            "test_accuracy": outcome.report["test_metrics"]["accuracy"],
        }
        print(json.dumps({label: runs[label]}), flush=True)
    row.update(runs)
    row["speedup"] = round(
        runs["in_process"]["evaluation_wall_s"] / max(runs["ray"]["evaluation_wall_s"], 1e-9), 2
    )
    row["whole_job_wall_s"] = round(search_s + runs["ray"]["finish_wall_s"], 1)
    row["same_steps_kept"] = runs["in_process"]["kept"] == runs["ray"]["kept"]
    print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(row, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
