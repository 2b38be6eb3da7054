"""Whole default jobs (search + evaluation phase + final model and export) within a time budget,
over seeds and samplers, on digits and MNIST-1D: issue 10's table.

    .venv/bin/python benchmarks/search_quality.py [--datasets digits mnist1d]
        [--seeds 0 1 2] [--samplers tpe rl random] [--budget digits=300 mnist1d=600]
        [--executor in_process|ray] [--workers 2] [--spec spec.json] [--json out.json]
        [--refit-pair]

Per run it prints one JSON line: test accuracy (on the untouched test split), wall time of the
whole job against its budget (target: within budget + 5%), members, parameters, non-zero
parameters after pruning, the best single member's test accuracy (target: the ensemble at least
as good), the sampler, the stop reason and what the evaluation phase cut to fit. Then a table
per dataset and sampler with the mean over seeds against the targets:

    digits    300 s  ≥ 98.8%   ensemble ≥ its best single member
    mnist1d   600 s  ≥ 98.8%   ≤ 150,000 non-zero parameters after pruning

Figures go in closing notes, not in tests (the machine is shared: give its load beside them).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGETS: dict[str, dict[str, float | None]] = {
    "digits": {"budget_s": 300.0, "accuracy": 0.988, "nonzero": None},
    "mnist1d": {"budget_s": 600.0, "accuracy": 0.988, "nonzero": 150_000},
}


def run_one(name: str, seed: int, sampler: str, budget: float, args: argparse.Namespace) -> dict:
    import numpy as np

    from automl.data import load_builtin, prepare
    from automl.executors import create_executor
    from automl.runner import finish
    from automl.search import AdaNetSearch
    from automl.spec import SearchSpec
    from automl.training_store import TrainingStore

    base = SearchSpec.from_json(args.spec.read_text()) if args.spec else SearchSpec()
    raw = {**base.to_dict(), "seed": seed, "sampler": sampler, "time_budget_s": budget}
    warm = warm_configurations(args, name)
    if warm:
        raw.update(warm_start=True, warm_start_configurations=warm)
    if args.executor == "ray":
        raw["resources"] = {"cpus": 1}
    spec = SearchSpec.from_dict(raw)
    started = time.perf_counter()
    data = prepare(
        load_builtin(name),
        test_fraction=spec.test_fraction,
        validation_fraction=spec.validation_fraction,
        seed=spec.seed,
    )
    exe = create_executor(args.executor, resources=spec.resources)
    result = AdaNetSearch(spec, data, exe).run()
    search_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as stored:
        # --refit-pair: the job's own phase then reuses the pair's trainings (same steps)
        store = TrainingStore(stored) if args.refit_pair else None
        paired = refit_pair(result, exe, store) if store is not None else {}
        outcome = finish(result, Path(out), executor=exe, training_store=store)
    wall = time.perf_counter() - started
    searched = search_test_accuracy(result)  # after the wall time: not part of the job
    uniform = uniform_test_accuracy(result)
    report = outcome.report
    plan = (report.get("budget") or {}).get("evaluation_plan") or {}
    acc = report["test_metrics"]["accuracy"]
    metric = (report.get("evaluation") or {}).get("metric", "accuracy")
    best = report["best_member_test_metrics"]["accuracy"]
    return {
        "dataset": name,
        "seed": seed,
        "sampler": sampler,
        "budget_s": budget,
        "wall_s": round(wall, 1),
        "within_budget_5pct": wall <= budget * 1.05,
        "test_accuracy": round(acc, 4),
        "best_member_test_accuracy": round(best, 4),
        # the search's ensemble before the evaluation phase: what the phase changed
        "search_test_accuracy": searched,
        # the same members averaged with equal weights (AdaNet's MeanEnsembler) instead of the
        # mixture weights fitted on the validation rows: what the fitted weights add or cost
        "search_uniform_test_accuracy": uniform,
        "ensemble_ge_best_member": acc >= best,
        "members": len(report["ensemble"]["members"]),
        "params": report["ensemble"]["params"],
        "nonzero_params": report["ensemble"]["nonzero_params"],
        "iterations": len(result.iterations),
        "stop_reason": result.stop_reason,
        # iterations the budget cut to the rounds of candidates that fit, each with its reason
        "shortened_iterations": list(result.iteration_notes),
        "evaluation_cuts": plan.get("cuts", []),
        # the plan's estimate of the phase against the time it had (how close the budget's
        # estimates run), and the fine-tunes' epochs it chose
        "evaluation_estimate_s": plan.get("estimate_s"),
        "evaluation_time_left_s": plan.get("time_left_s"),
        "fine_tune_epochs": plan.get("fine_tune_epochs"),
        "sparsity": report["evaluation"]["sparsity"] if report.get("evaluation") else 0.0,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        # how fast this machine trains (the same spec on another machine of "2 cores" ran
        # 60-epoch conv1d candidates in ~40 s or in ~110 s): figures compare at equal speed only
        "candidate_s": round(
            float(
                np.mean(
                    [
                        c.duration_s
                        for it in result.iterations
                        for c in it.candidates
                        if c.state == "completed" and c.duration_s
                    ]
                    or [0.0]
                )
            ),
            1,
        ),
        "cpu": cpu_model(),
        "search_s": round(search_s, 1),
        # the rest of the job: the evaluation phase, then the final model and its exports
        "evaluation_s": (report.get("evaluation") or {}).get("wall_s"),
        "after_search_s": round(wall - search_s, 1),
        # each step of the evaluation phase: kept?, members, non-zero parameters, the
        # validation metric and F beside what it was compared with
        "evaluation_steps": [
            {
                "step": st["step"],
                "kept": st["kept"],
                "members": st["members"],
                "nonzero": st["nonzero_params"],
                "metric": st["validation_metrics"].get(metric),
                "objective": st["objective"],
                "reference": st["details"].get("reference"),
                "reference_objective": st["details"].get("reference_objective"),
            }
            for st in (report.get("evaluation") or {}).get("steps", [])
        ],
        "warm_start": len(warm),
        **paired,
        # the search's validation F after each iteration, against seconds since the job began
        # (data loading included): how soon a warm start gets where a cold one ended
        "objective_curve": curve(result, started_search=search_s),
        "final_objective": result.ensemble.fit.objective,
        # the best configurations of this run by their candidate ensemble's F, to warm-start
        # another (--warm-from)
        "top_configurations": [
            c.hparams
            for c in sorted(
                (c for it in result.iterations for c in it.candidates if c.objective is not None),
                key=lambda c: float(c.objective or 0.0),
            )[: spec.candidates_per_iteration]
        ],
    }


def cpu_model() -> str:
    """The processor's name, as /proc/cpuinfo gives it ("" elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def search_test_accuracy(result: object) -> float:
    """Test accuracy of the ensemble the search ended with, before the evaluation phase."""
    from automl.model import build_ensemble_model, data_info
    from automl.runner import evaluate_model

    ensemble, data = result.ensemble, result.data  # type: ignore[attr-defined]
    model = build_ensemble_model(
        ensemble.members,
        ensemble.fit,
        data_info(data),
        result.spec.mixture_weight_type,  # type: ignore[attr-defined]
    )
    return round(float(evaluate_model(model, data)["accuracy"]), 4)


def uniform_test_accuracy(result: object) -> float | None:
    """Test accuracy of the search's members averaged with equal weights: the mean of their
    logits (AdaNet's MeanEnsembler; an ensemble model with every mixture weight 1/n and no
    bias); None for regression."""
    import numpy as np

    from automl.model import build_member_model, data_info

    ensemble, data = result.ensemble, result.data  # type: ignore[attr-defined]
    if data.task != "classification":
        return None
    info = data_info(data)
    logits = [
        np.asarray(build_member_model(m, info).predict(data.x_test, verbose=0))
        for m in ensemble.members
    ]
    pred = np.mean(logits, axis=0).argmax(axis=1)
    return round(float(np.mean(pred == np.asarray(data.y_test))), 4)


def refit_pair(result: object, exe: object, store: object) -> dict:
    """The evaluation phase twice on the same search, each planned as its job would plan it:
    without ``evaluation.refit``, then with it (every training both share is reused from the
    first run): the refit's effect on test accuracy, paired on one search. Runs before the
    job's own finish, which then reuses the first run's trainings from ``store``; the row's
    wall time includes the pair (``refit_pair_s``)."""
    from automl.budget import export_reserve, plan_evaluation
    from automl.evaluation import evaluate
    from automl.model import build_ensemble_model, data_info
    from automl.runner import evaluate_model

    spec, data = result.spec, result.data  # type: ignore[attr-defined]
    started = time.perf_counter()
    n = len(result.ensemble.members)  # type: ignore[attr-defined]
    left = max(0.0, (result.budget_left_s or 0.0) - export_reserve(spec.time_budget_s, n))  # type: ignore[attr-defined]
    out: dict = {}
    for refit in (False, True):
        s = spec.model_copy(
            update={"evaluation": spec.evaluation.model_copy(update={"refit": refit})}
        )
        # each planned as its job would be (the refit's batch may cut a sparsity level)
        plan = plan_evaluation(s, result.timing, n, left)  # type: ignore[attr-defined]
        ev = evaluate(
            s,
            data,
            result.ensemble,  # type: ignore[attr-defined]
            executor=exe,  # type: ignore[arg-type]
            member_logits=result.member_logits,  # type: ignore[attr-defined]
            plan=plan,
            store=store,  # type: ignore[arg-type]
        )
        model = build_ensemble_model(ev.members, ev.fit, data_info(data), spec.mixture_weight_type)
        key = "with_refit" if refit else "without_refit"
        out[f"test_accuracy_{key}"] = round(evaluate_model(model, data)["accuracy"], 4)
        out[f"validation_{key}"] = ev.steps[-1].validation_metrics.get("accuracy")
        out[f"steps_{key}"] = [st.step for st in ev.steps if st.kept]
    out["refit_pair_s"] = round(time.perf_counter() - started, 1)
    return out


def curve(result: object, started_search: float) -> list[tuple[float, float]]:
    """(seconds since the job began, the ensemble's F) at the end of each iteration: the
    iterations' durations counted back from the end of the search."""
    its = result.iterations  # type: ignore[attr-defined]
    t = started_search - sum(it.duration_s for it in its)
    points = []
    for it in its:
        t += it.duration_s
        improved = it.improved and it.best_objective is not None
        objective = it.best_objective if improved else it.previous_objective
        points.append((round(t, 1), objective))
    return points


def warm_configurations(args: argparse.Namespace, name: str) -> list[dict]:
    """--warm-from: the top configurations of that file's run on this dataset (its first)."""
    if not args.warm_from:
        return []
    rows = [r for r in json.loads(args.warm_from.read_text()) if r["dataset"] == name]
    if args.warm_seed is not None:
        rows = [r for r in rows if r["seed"] == args.warm_seed]
    return rows[0]["top_configurations"] if rows else []


def table(rows: list[dict]) -> str:
    lines = [
        f"{'dataset':9} {'sampler':7} {'seeds':5} {'acc mean':>8} {'target':>7} "
        f"{'wall s':>7} {'budget':>6} {'nonzero':>8} {'ens≥best':>8} {'cand. s':>7}"
    ]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["sampler"]), []).append(r)
    for (name, sampler), rs in groups.items():
        mean = sum(r["test_accuracy"] for r in rs) / len(rs)
        target = TARGETS.get(name, {}).get("accuracy")
        lines.append(
            f"{name:9} {sampler:7} {len(rs):5d} {100 * mean:7.2f}% "
            f"{'' if target is None else f'{100 * target:.1f}%':>7} "
            f"{max(r['wall_s'] for r in rs):7.0f} {rs[0]['budget_s']:6.0f} "
            f"{max(r['nonzero_params'] for r in rs):8d} "
            f"{'yes' if all(r['ensemble_ge_best_member'] for r in rs) else 'no':>8} "
            f"{sum(r.get('candidate_s', 0.0) for r in rs) / len(rs):7.0f}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist1d"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--samplers", nargs="+", default=["tpe"])
    parser.add_argument(
        "--budget", nargs="+", default=[], help="NAME=SECONDS, e.g. digits=300 (the targets')"
    )
    parser.add_argument("--executor", default="in_process", choices=["in_process", "ray"])
    parser.add_argument("--workers", type=int, default=2, help="Ray workers (--executor ray)")
    parser.add_argument("--spec", type=Path, help="spec JSON (default: the default spec)")
    parser.add_argument("--json", type=Path, help="write every row here too")
    parser.add_argument(
        "--warm-from",
        type=Path,
        help="a --json file of an earlier run: warm-start from its top configurations "
        "(warm_start_configurations, as the service's history would fill them)",
    )
    parser.add_argument(
        "--refit-pair",
        action="store_true",
        help="also run the evaluation phase without and with evaluation.refit on each search, "
        "and give both test accuracies (the refit's effect, paired)",
    )
    parser.add_argument("--warm-seed", type=int, help="the earlier run's seed to take them from")
    args = parser.parse_args()
    budgets = {k: float(v["budget_s"] or 0.0) for k, v in TARGETS.items()}
    for item in args.budget:
        key, _, value = item.partition("=")
        budgets[key] = float(value)
    if args.executor == "ray":
        import workers  # noqa: F401 - registers the ray executor
        from workers.ray_executor import ensure_ray

        ensure_ray(num_cpus=args.workers)
    rows = []
    for name in args.datasets:
        for sampler in args.samplers:
            for seed in args.seeds:
                row = run_one(name, seed, sampler, budgets.get(name, 600.0), args)
                print(json.dumps(row), flush=True)
                rows.append(row)
                if args.json:
                    args.json.write_text(json.dumps(rows, indent=2))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
