"""How much memory one worker process keeps per training (why AUTOML_WORKER_MAX_TRAININGS).

Keras 3 / TensorFlow 2.21 keeps objects from every ``model.fit``, so a warm Ray worker's
memory grows with each candidate it trains. This trains one candidate after another in this
one process, as a warm worker does (``automl.training.train_candidate``), and prints the
process's resident memory (VmRSS) after each, then the growth per training.

    .venv/bin/python benchmarks/worker_memory.py [--model conv1d|dense] [--trainings 40]
        [--epochs 2] [--json out.json]

``conv1d`` is the conv1d family's starting configuration (3 blocks × 64 filters, 63k
parameters) on MNIST-1D; ``dense`` a 2-layer 64-unit network on digits. Run it alone: it uses
one core, and RSS does not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODELS = {
    # the conv1d family's starting configuration (automl.subnetworks.families)
    "conv1d": ("mnist1d", None),
    "dense": (
        "digits",
        {
            "family": "dense",
            "depth": 2,
            "width": 64,
            "activation": "relu",
            "dropout": 0.0,
            "l2": 0.0,
            "batch_norm": False,
            "optimizer": "adam",
            "learning_rate": 1e-3,
            "schedule": "constant",
            "batch_size": 32,
        },
    ),
}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=sorted(MODELS), default="conv1d")
    p.add_argument("--trainings", type=int, default=40)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--json", type=Path)
    args = p.parse_args()

    from automl.data import load_builtin, prepare
    from automl.subnetworks import create_subnetwork_builder
    from automl.training import CandidateSpec, TrainingData, train_candidate

    dataset, hparams = MODELS[args.model]
    if hparams is None:
        hparams = {"family": args.model, **create_subnetwork_builder(args.model).starting_hparams}
    data = TrainingData.from_prepared(prepare(load_builtin(dataset), seed=0))
    rows = []
    started = time.perf_counter()
    for i in range(args.trainings):
        spec = CandidateSpec(
            name=f"m{i}", iteration=i, index=0, hparams=hparams, seed=i, epochs=args.epochs
        )
        res = train_candidate(spec, data)
        if not res.ok:
            raise SystemExit(f"training {i} failed: {res.error}")
        rows.append({"training": i + 1, "rss_mb": round(rss_mb(), 1)})
        print(json.dumps({**rows[-1], "params": res.params}), flush=True)
    first, last = rows[0]["rss_mb"], rows[-1]["rss_mb"]
    per = (last - first) / max(len(rows) - 1, 1)
    summary = {
        "model": args.model,
        "dataset": dataset,
        "epochs": args.epochs,
        "trainings": len(rows),
        "rss_after_first_mb": first,
        "rss_after_last_mb": last,
        "growth_per_training_mb": round(per, 2),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
