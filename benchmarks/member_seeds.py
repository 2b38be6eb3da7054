"""How far does one good configuration go, trained several times and averaged?

A baseline for the search (issue 10): ``--members`` trainings of one configuration (a family's
built-in starting configuration, with ``--set`` overrides), each from its own initial seed, on
the same split a job with that data seed uses (``prepare`` with the default spec's fractions;
training rows only, validation and test untouched). For each data seed it prints every
member's validation and test accuracy, and those of the equal-weight average of the first k
members' softmax outputs (a seed ensemble), k = 1..members. Trainings go through the engine's
own ``automl.training.train_candidate``, ``--processes`` at a time, one core each.

    .venv/bin/python benchmarks/member_seeds.py --dataset mnist1d --data-seeds 0 1 2 \
        --members 3 [--epochs 30] [--set dropout=0.3] [--processes 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def job_split(dataset: str, data_seed: int) -> Any:
    """A built-in dataset split as a default job with data seed ``data_seed`` splits it, in a
    process training on one core."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from automl.data import load_builtin, prepare
    from automl.spec import SearchSpec

    spec = SearchSpec()
    return prepare(
        load_builtin(dataset),
        test_fraction=spec.test_fraction,
        validation_fraction=spec.validation_fraction,
        seed=data_seed,
    )


def train_one(dataset: str, data_seed: int, init_seed: int, hp: dict, epochs: int) -> dict:
    """One member on data seed ``data_seed``'s training rows; its softmax outputs on the
    validation and test rows."""
    from automl.ensemble import softmax
    from automl.training import CandidateSpec, TrainingData, train_candidate

    data = job_split(dataset, data_seed)
    cspec = CandidateSpec(
        name=f"m{init_seed}",
        iteration=0,
        index=init_seed,
        hparams=hp,
        seed=init_seed,
        epochs=epochs,
    )
    started = time.perf_counter()
    result = train_candidate(cspec, TrainingData.from_prepared(data))
    if result.state != "completed":
        raise RuntimeError(result.error)
    return {
        "data_seed": data_seed,
        "init_seed": init_seed,
        "seconds": round(time.perf_counter() - started, 1),
        "val": softmax(result.logits_val).tolist(),
        "test": softmax(_test_logits(result, data, hp)).tolist(),
        "y_val": data.y_val.tolist(),
        "y_test": data.y_test.tolist(),
    }


def _test_logits(result: Any, data: Any, hp: dict) -> np.ndarray:
    from automl.training import build_subnetwork

    shape = {
        "n_features": data.x_train.shape[1],
        "input_shape": data.dataset.input_shape,
        "n_outputs": data.n_outputs,
    }
    model = build_subnetwork(hp, shape, "m")
    model.set_weights(list(result.weights))
    return np.asarray(model.predict(data.x_test, batch_size=1024, verbose=0))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="mnist1d")
    p.add_argument("--family", default="conv1d", help="whose starting configuration")
    p.add_argument("--data-seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--set", nargs="*", default=[], help="KEY=VALUE hyperparameter overrides")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    from automl.subnetworks import create_subnetwork_builder

    start = create_subnetwork_builder(args.family).starting_hparams
    if not start:
        p.error(f"family {args.family!r} has no starting configuration")
    hp = {"family": args.family, **start}
    hp.update({k: _value(v) for k, v in (s.split("=", 1) for s in args.set)})
    jobs = [(d, i) for d in args.data_seeds for i in range(args.members)]
    with ProcessPoolExecutor(args.processes) as pool:
        futures = [pool.submit(train_one, args.dataset, d, i, hp, args.epochs) for d, i in jobs]
        results = [f.result() for f in futures]
    rows = []
    for d in args.data_seeds:
        mine = [r for r in results if r["data_seed"] == d]
        y_val, y_test = np.array(mine[0]["y_val"]), np.array(mine[0]["y_test"])
        for k in range(1, len(mine) + 1):
            val = np.mean([r["val"] for r in mine[:k]], axis=0)
            test = np.mean([r["test"] for r in mine[:k]], axis=0)
            member = mine[k - 1]
            rows.append(
                {
                    "data_seed": d,
                    "k": k,
                    "member_val": float(np.mean(np.argmax(member["val"], 1) == y_val)),
                    "member_test": float(np.mean(np.argmax(member["test"], 1) == y_test)),
                    "member_s": member["seconds"],
                    "average_val": float(np.mean(val.argmax(1) == y_val)),
                    "average_test": float(np.mean(test.argmax(1) == y_test)),
                }
            )
    print(
        f"{'data seed':>9} {'k':>2} {'member val':>10} {'member test':>11} "
        f"{'avg val':>8} {'avg test':>8} {'member s':>8}"
    )
    for r in rows:
        print(
            f"{r['data_seed']:9d} {r['k']:2d} {100 * r['member_val']:9.2f}% "
            f"{100 * r['member_test']:10.2f}% {100 * r['average_val']:7.2f}% "
            f"{100 * r['average_test']:7.2f}% {r['member_s']:8.1f}"
        )
    for k in range(1, args.members + 1):
        mean = np.mean([r["average_test"] for r in rows if r["k"] == k])
        print(f"mean test accuracy of {k}-member averages over data seeds: {100 * mean:.2f}%")
    if args.json:
        args.json.write_text(json.dumps({"hparams": hp, "epochs": args.epochs, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
