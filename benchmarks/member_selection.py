"""Which rule for dropping ensemble members holds up on the untouched test split?

The evaluation phase's member elimination (``automl.evaluation._drop_members``) decides on the
validation split: 600 rows on MNIST-1D, 216 on digits, where one row is 0.17 / 0.46 points.
This study runs a whole search (the same spec and budget as ``search_quality.py``), then starts
from the ensemble it chose and applies several drop rules to the same members, reporting for
each the members kept and the dense ensemble's test accuracy (no weight pruning, no grow rules:
the drop decision alone). Cross-validated (out-of-fold) member outputs over the training and
validation rows come from the phase's own fold trainings (``_cv_specs``).

    .venv/bin/python benchmarks/member_selection.py --dataset mnist1d --seeds 0 1 2 \
        [--budget 600] [--folds 3] [--spec spec.json] [--json out.json]

Rules (each a backward elimination from the lowest-F removal up, as the phase does):

    none        keep every member
    current     validation metric not below the reference, F within objective_tolerance (25%)
    f_no_rise   F (validation, class-weighted, with the complexity term) not above the
                reference's: the AdaNet objective alone decides
    f_5pct      validation metric not below the reference, F within 5%
    oof         out-of-fold metric not below the reference's and out-of-fold log-loss
                within 1% (over every training + validation row)
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

RULES = ("none", "current", "f_no_rise", "f_5pct", "oof")


def _log_loss(logits, y) -> float:
    import numpy as np

    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def study(name: str, seed: int, args: argparse.Namespace) -> dict:
    import numpy as np

    from automl.data import load_builtin, prepare
    from automl.ensemble import combine
    from automl.evaluation import _Bench, _cv_specs, _Trainings
    from automl.executors import create_executor
    from automl.model import build_member_model, data_info
    from automl.search import AdaNetSearch
    from automl.spec import SearchSpec
    from automl.training import fold_indices

    base = SearchSpec.from_json(args.spec.read_text()) if args.spec else SearchSpec()
    raw = {**base.to_dict(), "seed": seed, "time_budget_s": args.budget, "resources": {"cpus": 1}}
    spec = SearchSpec.from_dict(raw)
    data = prepare(
        load_builtin(name),
        test_fraction=spec.test_fraction,
        validation_fraction=spec.validation_fraction,
        seed=spec.seed,
    )
    exe = create_executor("ray", resources=spec.resources)
    t0 = time.perf_counter()
    result = AdaNetSearch(spec, data, exe).run()
    search_s = time.perf_counter() - t0
    members = list(result.ensemble.members)
    bench = _Bench(spec, data)
    for m in members:
        if m.name in result.member_logits:
            bench.remember(m, result.member_logits[m.name])
    info = data_info(data)
    test_logits = {
        m.name: np.asarray(
            build_member_model(m, info).predict(data.x_test, batch_size=1024, verbose=0),
            np.float32,
        )
        for m in members
    }
    # out-of-fold outputs of every member over the training + validation rows
    y_all = np.concatenate([data.y_train, data.y_val])
    t1 = time.perf_counter()
    results = _Trainings(exe, None, None).run(_cv_specs(spec, members, args.folds))
    cv_s = time.perf_counter() - t1
    oof = {m.name: np.zeros((len(y_all), data.n_outputs), np.float32) for m in members}
    for fold, (_tr, te) in enumerate(fold_indices(y_all, data.task, args.folds, spec.seed)):
        for m in members:
            res = results[f"cv{fold}_{m.name}"]
            if not res.ok:
                raise RuntimeError(f"{m.name} fold {fold}: {res.error}")
            oof[m.name][te] = res.logits_val
    exe.close()

    def acc(out, y) -> float:
        return float(np.mean(np.argmax(out, axis=1) == y))

    def outputs(ms, fit, table):
        return combine(np.stack([table[m.name] for m in ms], axis=1), fit.weights, fit.bias)

    ref_fit = bench.fit(members)
    ref_val = bench.val_metrics(members, ref_fit)
    ref_oof = outputs(members, ref_fit, oof)
    ref_oof_acc, ref_oof_loss = acc(ref_oof, y_all), _log_loss(ref_oof, y_all)

    def accept(rule, trial, fit) -> bool:
        if rule == "oof":
            out = outputs(trial, fit, oof)
            return acc(out, y_all) >= ref_oof_acc and _log_loss(out, y_all) <= ref_oof_loss * 1.01
        if rule == "f_no_rise":
            return fit.objective <= ref_fit.objective + 1e-9
        val_ok = not bench.better(ref_val, bench.val_metrics(trial, fit))
        tol = spec.evaluation.objective_tolerance if rule == "current" else 0.05
        return val_ok and fit.objective <= ref_fit.objective * (1 + tol) + 1e-12

    rows = {}
    for rule in RULES:
        ms, fit = members, ref_fit
        while rule != "none" and len(ms) > 1:
            trials = sorted(
                ((bench.fit(ms[:i] + ms[i + 1 :]), i) for i in range(len(ms))),
                key=lambda t: (t[0].objective, t[1]),
            )
            for trial_fit, i in trials:
                trial = ms[:i] + ms[i + 1 :]
                if accept(rule, trial, trial_fit):
                    ms, fit = trial, trial_fit
                    break
            else:
                break
        rows[rule] = {
            "members": len(ms),
            "params": sum(m.params for m in ms),
            "objective": round(fit.objective, 5),
            "val_accuracy": round(
                acc(outputs(ms, fit, {m.name: bench.logits(m)[1] for m in ms}), data.y_val), 4
            ),
            "oof_accuracy": round(acc(outputs(ms, fit, oof), y_all), 4),
            "test_accuracy": round(acc(outputs(ms, fit, test_logits), data.y_test), 4),
        }
    return {
        "dataset": name,
        "seed": seed,
        "search_s": round(search_s, 1),
        "cv_s": round(cv_s, 1),
        "folds": args.folds,
        "member_test_accuracy": {
            m.name: round(acc(test_logits[m.name], data.y_test), 4) for m in members
        },
        "member_params": {m.name: m.params for m in members},
        "rules": rows,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", default="mnist1d")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--budget", type=float, default=600.0)
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--spec", type=Path)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    import workers  # noqa: F401 - registers the ray executor
    from workers.ray_executor import ensure_ray

    ensure_ray(num_cpus=2)
    out = []
    for seed in args.seeds:
        row = study(args.dataset, seed, args)
        print(json.dumps(row), flush=True)
        out.append(row)
        if args.json:
            args.json.write_text(json.dumps(out, indent=1))
    print(f"\n{'rule':<10} " + " ".join(f"seed {s['seed']:<17}" for s in out) + " mean test")
    for rule in RULES:
        cells = [
            f"{s['rules'][rule]['members']} m {s['rules'][rule]['test_accuracy']:.2%}" for s in out
        ]
        mean = sum(s["rules"][rule]["test_accuracy"] for s in out) / len(out)
        print(f"{rule:<10} " + " ".join(f"{c:<22}" for c in cells) + f" {mean:.2%}")


if __name__ == "__main__":
    main()
