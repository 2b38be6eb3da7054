"""What does gradual weight pruning cost one member, level by level, on the untouched test rows?

The evaluation phase keeps the sparsest level within its tolerances of the validation metric
(600 rows on MNIST-1D); this measures what each level costs on test, apart from the search and
from member pruning. For each data seed and each of ``--members`` initial seeds: one member of
a family's starting configuration is trained on a job's split (``prepare`` with the default
spec's fractions), then pruned level by level as the phase does it (``--levels``, each level's
mask cut from the weights the level before left, ``--tune-epochs`` epochs of the engine's own
fine-tune with the mask held, at each of ``--arms``' learning rate and schedule). Printed per
level: validation and test accuracy, and the test accuracy's change against the dense member.
Measured (README, evaluation phase) with ``--data-seeds 0 1 2 --members 2 --arms 0.1:constant
0.1:cosine 0.3:cosine 1:cosine``.

    .venv/bin/python benchmarks/pruning.py --dataset mnist1d --data-seeds 0 1 2 \
        [--members 1] [--epochs 60] [--tune-epochs 8] [--arms 0.1:constant 1:cosine] \
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def prune_one(
    dataset: str,
    data_seed: int,
    init_seed: int,
    hp: dict,
    epochs: int,
    levels: list[float],
    tune_epochs: int,
    arms: list[tuple[float, str]],
) -> list[dict[str, Any]]:
    """One member, dense then at each level (per fine-tune learning rate and schedule): its
    validation and test accuracy."""
    from automl.training import CandidateSpec, TrainingData, build_subnetwork, train_candidate
    from benchmarks.member_seeds import job_split

    data = job_split(dataset, data_seed)
    training = TrainingData.from_prepared(data)
    shape = {
        "n_features": data.x_train.shape[1],
        "input_shape": data.dataset.input_shape,
        "n_outputs": data.n_outputs,
    }

    def row(result: Any, level: float, arm: tuple[float, str]) -> dict[str, Any]:
        model = build_subnetwork(hp, shape, "m")
        model.set_weights(list(result.weights))
        test = np.asarray(model.predict(data.x_test, batch_size=1024, verbose=0))
        return {
            "data_seed": data_seed,
            "init_seed": init_seed,
            "level": level,
            "learning_rate": arm[0],
            "schedule": arm[1],
            "val": float(np.mean(result.logits_val.argmax(1) == data.y_val)),
            "test": float(np.mean(test.argmax(1) == data.y_test)),
            "seconds": round(result.duration_s, 1),
        }

    base = dict(name=f"m{init_seed}", iteration=0, index=init_seed, hparams=hp, seed=init_seed)
    dense = train_candidate(CandidateSpec(**base, epochs=epochs), training)
    if dense.state != "completed":
        raise RuntimeError(dense.error)
    rows = [row(dense, 0.0, arm) for arm in arms]
    for arm in arms:
        weights = dense.weights
        for level in levels:
            tuned = train_candidate(
                CandidateSpec(
                    **base,
                    epochs=tune_epochs,
                    kind="fine_tune",
                    sparsity=level,
                    tune_lr_scale=arm[0],
                    tune_schedule=arm[1],
                ),
                training,
                init_weights=weights,
            )
            if tuned.state != "completed":
                raise RuntimeError(tuned.error)
            weights = tuned.weights
            rows.append(row(tuned, level, arm))
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="mnist1d")
    p.add_argument("--family", default="conv1d", help="whose starting configuration")
    p.add_argument("--data-seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--members", type=int, default=1, help="initial seeds per data seed")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--levels", nargs="+", type=float, default=[0.25, 0.5, 0.75, 0.9])
    p.add_argument("--tune-epochs", type=int, default=8)
    p.add_argument(
        "--arms",
        nargs="+",
        default=["0.1:constant"],
        help="fine-tunes to compare, each RATE:SCHEDULE (evaluation.fine_tune_learning_rate, "
        "a fraction of the member's, and evaluation.fine_tune_schedule)",
    )
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    arms = [(float(a.split(":")[0]), a.split(":")[1]) for a in args.arms]
    from automl.subnetworks import create_subnetwork_builder

    start = create_subnetwork_builder(args.family).starting_hparams
    if not start:
        p.error(f"family {args.family!r} has no starting configuration")
    hp = {"family": args.family, **start}
    jobs = [(d, i) for d in args.data_seeds for i in range(args.members)]
    with ProcessPoolExecutor(args.processes) as pool:
        futures = [
            pool.submit(
                prune_one,
                args.dataset,
                d,
                i,
                hp,
                args.epochs,
                args.levels,
                args.tune_epochs,
                arms,
            )
            for d, i in jobs
        ]
        rows = [r for f in futures for r in f.result()]
    print(
        f"{'data seed':>9} {'init':>4} {'rate':>4} {'schedule':>8} {'level':>5} {'val':>7} "
        f"{'test':>7} {'Δ test':>7}"
    )
    dense = {(r["data_seed"], r["init_seed"]): r["test"] for r in rows if r["level"] == 0.0}
    for r in rows:
        delta = r["test"] - dense[(r["data_seed"], r["init_seed"])]
        print(
            f"{r['data_seed']:9d} {r['init_seed']:4d} {r['learning_rate']:4.2f} {r['schedule']:>8} "
            f"{r['level']:5.2f} "
            f"{100 * r['val']:6.2f}% {100 * r['test']:6.2f}% {100 * delta:+6.2f}"
        )
    for rate, schedule in arms:
        for level in [0.0, *args.levels]:
            at = [
                r
                for r in rows
                if r["level"] == level and (r["learning_rate"], r["schedule"]) == (rate, schedule)
            ]
            print(
                f"{rate:g} {schedule}, level {level:4.2f}: "
                f"mean val {100 * np.mean([r['val'] for r in at]):.2f}%, "
                f"mean test {100 * np.mean([r['test'] for r in at]):.2f}%"
            )
    if args.json:
        args.json.write_text(
            json.dumps({"hparams": hp, "args": vars(args) | {"json": None}, "rows": rows})
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
