"""Mixed-type tables: our search against scikit-learn's HistGradientBoostingClassifier, and what
the preprocessing inside the model costs at prediction time.

    .venv/bin/python benchmarks/mixed_tables.py [--tables churn species] [--rows 4000]
        [--seed 0] [--spec spec.json] [--json out.json]

Each table is generated here (nothing downloads): numeric columns with linear and non-linear
effects, text categories and whole-number codes with known per-category effects, a 0/1 flag, a
free-text id the detection drops, and 10% of the feature cells missing at random (written as
"", "NA" or "?"). ``churn`` has a Yes/No label, ``species`` three named classes; labels are
drawn from the true class probabilities, so the Bayes-optimal accuracy (the true probabilities'
argmax on the test rows) is printed as the ceiling.

Figures per table: our test accuracy (the CSV loaded as a user's upload; the search with the
spec, default: 4 iterations × 3 candidates × 30 epochs, evaluation phase without
cross-validation), HistGradientBoostingClassifier's on the same test rows (fitted on the same
training + validation rows, text columns as pandas categories, missing cells as NaN), and the
prediction latency per row at batch 1 and 256: the whole model on raw cells, the ensemble alone
on the encoded features, the preprocessing alone, and ``Predictor.predict`` on Python rows
(parsing and checking each cell included), and the preprocessing's cost: the median paired
difference between the first two. Figures go in closing notes, not in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MISSING_SPELLINGS = ["", "NA", "?"]
DEFAULT_SPEC: dict[str, Any] = {
    "max_iterations": 4,
    "candidates_per_iteration": 3,
    "epochs": 30,
    "batch_size": [64, 128],
    "evaluation": {"cv_folds": 0},
}


def make_table(kind: str, rows: int, seed: int) -> tuple[str, str, np.ndarray]:
    """CSV text, the label column, and each row's true class probabilities."""
    rng = np.random.default_rng(seed)
    classes = ["No", "Yes"] if kind == "churn" else ["setosa", "versicolor", "virginica"]
    k = len(classes)
    regions = ["north", "south", "east", "west", "centre", "islands"]
    products = [f"product {chr(65 + i)}" for i in range(10)]
    # known effects: one logit contribution per category (and per class)
    region_effect = rng.normal(0, 1.2, (len(regions), k))
    product_effect = rng.normal(0, 0.9, (len(products), k))
    tier_effect = rng.normal(0, 1.0, (5, k))  # codes 1..5, not monotonic
    weights = rng.normal(0, 1.0, (3, k))
    region = rng.integers(len(regions), size=rows)
    product = rng.integers(len(products), size=rows)
    tier = rng.integers(5, size=rows)
    x1 = rng.normal(size=rows)
    x2 = rng.uniform(-2, 2, size=rows)
    x3 = rng.normal(size=rows)  # no effect
    flag = rng.integers(2, size=rows)
    logits = (
        region_effect[region]
        + product_effect[product]
        + tier_effect[tier]
        + np.outer(x1, weights[0])
        + np.outer(np.sin(2 * x2), 1.5 * weights[1])
        + np.outer(flag, 0.7 * weights[2])
    )
    logits -= logits.mean(axis=0, keepdims=True)  # classes of about equal size
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = np.array([rng.choice(k, p=p) for p in probs])
    header = ["x1", "x2", "x3", "region", "product", "tier", "flag", "customer_id", "label"]
    lines = [",".join(header)]
    for i in range(rows):
        cells = [
            f"{x1[i]:.4f}",
            f"{x2[i]:.4f}",
            f"{x3[i]:.4f}",
            regions[region[i]],
            products[product[i]],
            str(tier[i] + 1),
            str(flag[i]),
        ]
        cells = [
            MISSING_SPELLINGS[int(rng.integers(3))] if rng.random() < 0.10 else c for c in cells
        ]
        lines.append(",".join([*cells, f"c{i:06d}", classes[y[i]]]))
    return "\n".join(lines) + "\n", "label", probs


def split_indices(y: np.ndarray, spec: Any) -> tuple[np.ndarray, np.ndarray]:
    """The rows ``automl.data.prepare`` uses for training + validation, and for test: the same
    seeded, stratified split (it depends on the labels and the seed only)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    rest, test = train_test_split(
        idx, test_size=spec.test_fraction, random_state=spec.seed, stratify=y
    )
    return np.asarray(rest), np.asarray(test)


def hgb_accuracy(ds: Any, rest: np.ndarray, test: np.ndarray, seed: int) -> tuple[float, float]:
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier

    from automl.data._columns import is_missing

    used = [j for j, c in enumerate(ds.columns) if c.type != "ignore"]
    frame = {}
    for j in used:
        c = ds.columns[j]
        cells = [None if is_missing(str(v)) else str(v) for v in ds.x[:, j]]
        if c.type == "numeric":
            frame[c.name] = pd.to_numeric(pd.Series(cells, dtype=object))
        else:
            frame[c.name] = pd.Series(cells, dtype="category")
    table = pd.DataFrame(frame)
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    started = time.perf_counter()
    model.fit(table.iloc[rest], ds.y[rest])
    fit_s = time.perf_counter() - started
    return float((model.predict(table.iloc[test]) == ds.y[test]).mean()), fit_s


def latencies(outcome: Any, data: Any, run_dir: Path) -> dict[str, dict[str, float]]:
    """Seconds per row, the median over repeats; the calls being compared take turns within
    each repeat, so a busy machine slows them alike, and the preprocessing's cost is the median
    of the paired differences (whole model on raw cells − ensemble alone on encoded features)."""
    import keras

    from automl.export import Predictor, inference_function, model_input
    from automl.preprocessing import preprocessing_model

    full = outcome.model
    core = keras.Model(full.get_layer("table_features").output, full.output)
    prep = preprocessing_model(data.fitted_columns)
    raw, encoded = data.x_test_raw, data.x_test
    predictor = Predictor(run_dir)
    out: dict[str, dict[str, float]] = {}
    for batch in (1, 256):
        cells = np.resize(raw, (batch, raw.shape[1]))
        feats = np.resize(encoded, (batch, encoded.shape[1])).astype(np.float32)
        rows = [list(r) for r in cells]
        raw_in = model_input(cells)
        graphs = [(inference_function(m), x) for m, x in ((full, raw_in), (core, feats))]
        graphs.append((inference_function(prep), raw_in))
        calls = [
            *(lambda fn=fn, x=x: np.asarray(fn(x)) for fn, x in graphs),
            lambda rows=rows: predictor.predict(rows),
        ]
        names = [
            "model on raw cells",
            "ensemble alone (encoded)",
            "preprocessing alone",
            "Predictor.predict (rows in)",
        ]
        times: list[list[float]] = [[] for _ in calls]
        for call in calls:
            call()  # trace and warm up
        for _ in range(300 if batch == 1 else 40):
            for k, call in enumerate(calls):
                t0 = time.perf_counter()
                call()
                times[k].append((time.perf_counter() - t0) / batch)
        for name, t in zip(names, times, strict=True):
            out.setdefault(name, {})[f"batch_{batch}"] = statistics.median(t)
        cost = [a - b for a, b in zip(times[0], times[1], strict=True)]
        out.setdefault("preprocessing cost (paired)", {})[f"batch_{batch}"] = statistics.median(
            cost
        )
    return out


def main() -> int:
    from automl._tf import quiet_import

    quiet_import()
    from automl.data import load_csv, prepare
    from automl.runner import run
    from automl.spec import SearchSpec

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", nargs="+", default=["churn", "species"])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spec", type=Path, help="spec JSON (default: see the docstring)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()

    raw_spec = json.loads(args.spec.read_text()) if args.spec else dict(DEFAULT_SPEC)
    spec = SearchSpec.from_dict({**raw_spec, "seed": args.seed})
    results = []
    for t, kind in enumerate(args.tables):
        text, label, probs = make_table(kind, args.rows, seed=args.seed + 100 * t)
        ds = load_csv(text.encode(), label=label, name=kind)
        types = {c.name: c.type for c in ds.columns}
        data = prepare(
            ds,
            test_fraction=spec.test_fraction,
            validation_fraction=spec.validation_fraction,
            seed=spec.seed,
        )
        rest, test = split_indices(ds.y, spec)
        assert data.x_test_raw is not None
        assert np.array_equal(ds.x[test], data.x_test_raw), "not the search's test rows"
        # classes are indexed by sorted name, as the true probabilities' columns are
        bayes = float((probs[test].argmax(axis=1) == ds.y[test]).mean())
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            outcome = run(spec, ds, Path(tmp) / "run")
            wall = time.perf_counter() - started
            ours = float(outcome.report["test_metrics"]["accuracy"])
            lat = latencies(outcome, data, Path(tmp) / "run")
        hgb, hgb_s = hgb_accuracy(ds, rest, test, args.seed)
        row = {
            "table": kind,
            "rows": args.rows,
            "classes": ds.label_names,
            "column_types": types,
            "encoded_features": int(data.x_train.shape[1]),
            "test_rows": int(len(test)),
            "automl_test_accuracy": ours,
            "automl_balanced_accuracy": outcome.report["test_metrics"].get("balanced_accuracy"),
            "automl_wall_s": round(wall, 1),
            "automl_members": len(outcome.report["ensemble"]["members"]),
            "hgb_test_accuracy": hgb,
            "hgb_fit_s": round(hgb_s, 2),
            "bayes_accuracy": bayes,
            "majority_accuracy": outcome.report["baseline_test_metrics"]["accuracy"],
            "latency_s_per_row": lat,
        }
        results.append(row)
        print(
            f"\n{kind}: {args.rows} rows, {len(ds.label_names or [])} classes, columns "
            + ", ".join(f"{n}={t}" for n, t in types.items())
            + f" → {row['encoded_features']} encoded features"
        )
        print(
            f"  test accuracy ({len(test)} rows): automl {ours:.4f} "
            f"({wall:.0f} s, {row['automl_members']} members) · HistGradientBoosting "
            f"{hgb:.4f} ({hgb_s:.1f} s) · Bayes-optimal {bayes:.4f} · majority class "
            f"{row['majority_accuracy']:.4f}"
        )
        print("  prediction latency per row (median):   batch 1      batch 256")
        for name, v in lat.items():
            print(f"    {name:<30} {v['batch_1'] * 1e3:8.3f} ms {v['batch_256'] * 1e6:9.2f} µs")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
