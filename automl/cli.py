"""The engine's commands of the ``automl`` command line: search, replay, datasets, predict,
export. The service adds its own (serve, worker, db, apikey) in ``api.cli``, the console
script's entry point; this module never imports the service.

Bad arguments or data print one clear message and exit with code 2.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from automl.errors import AutoMLError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

app = typer.Typer(
    help="AdaNet-style neural architecture search: grow complexity-regularised ensembles.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output (CI logs, files) gets a wide console instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 150)
err_console = Console(stderr=True, soft_wrap=True)  # an error stays one greppable line


def fail(message: str) -> typer.Exit:
    # escaped: a message quotes the user's column names and values, which may look like markup
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code=2)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _column_types(text: str | None) -> dict[str, Any] | None:
    """``--column-types`` as a mapping; a message and exit code 2 when it is not one."""
    import json

    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(
            f"--column-types is not valid JSON ({exc.msg}); give an object such as "
            """'{"city": "categorical", "id": "ignore"}'"""
        ) from None
    if not isinstance(value, dict):
        raise fail("""--column-types must be a JSON object such as '{"city": "categorical"}'""")
    return value


def _load_dataset(
    dataset: str | None,
    csv: Path | None,
    label: str | None,
    npz: Path | None,
    task: str | None,
    column_types: dict[str, Any] | None = None,
) -> Any:
    from automl.data import load_builtin, load_csv, load_npz
    from automl.errors import ColumnTypeError

    given = [n for n, v in (("--dataset", dataset), ("--csv", csv), ("--npz", npz)) if v]
    if len(given) != 1:
        raise fail(
            "give exactly one of --dataset NAME, --csv FILE --label COL, or --npz FILE"
            + (f" (got {', '.join(given)})" if given else "")
        )
    if csv is not None and not label:
        raise fail("--csv needs --label COL naming the label column")
    if label and csv is None:
        raise fail("--label only applies with --csv")
    if column_types is not None and csv is None:
        raise fail("--column-types only applies with --csv")
    if dataset:
        return load_builtin(dataset)
    if csv is not None:
        try:
            return load_csv(
                csv,
                label=str(label),
                task=task,  # type: ignore[arg-type]
                column_types=column_types,
            )
        except ColumnTypeError as exc:
            where = f" {exc.column!r}" if exc.column else ""
            raise fail(f"--column-types{where}: {exc}") from None
    assert npz is not None
    return load_npz(npz, task=task)  # type: ignore[arg-type]


class RichProgress:
    """Progress bars (iterations, candidates, epochs) and a table per iteration."""

    def __init__(self, max_iterations: int | None) -> None:
        from automl.search import SearchCallback

        outer = self

        class _Callback(SearchCallback):
            def on_search_start(self, spec: Any, data: Any, families: list[str]) -> None:
                outer.start(spec, data, families)

            def on_iteration_start(self, iteration: int, specs: list[Any]) -> None:
                outer.iteration_start(iteration, specs)

            def on_epoch_end(self, spec: Any, epoch: int, logs: dict[str, float]) -> None:
                outer.epoch(spec, epoch, logs)

            def on_candidate_end(self, record: Any) -> None:
                outer.candidate_end(record)

            def on_ensemble_chosen(self, record: Any, ensemble: Any) -> None:
                outer.iteration_end(record, ensemble)

            def on_note(self, message: str) -> None:
                console.print(f"[yellow]{message}[/]")

        self.callback = _Callback()
        self.progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.max_iterations = max_iterations
        self.it_task: TaskID | None = None
        self.cand_task: TaskID | None = None
        self.epoch_task: TaskID | None = None

    def start(self, spec: Any, data: Any, families: list[str]) -> None:
        s = data.summary()
        console.print(
            f"[bold]{s['name']}[/] · {s['task']} · {s['features']} features · rows "
            f"train {s['rows']['train']} / validation {s['rows']['validation']} / test "
            f"{s['rows']['test']} · families {', '.join(families)} · λ={spec.lambda_} "
            f"β={spec.beta} · selection on {spec.selection}"
        )
        if data.class_weights:
            console.print("[yellow]classes are imbalanced: training with class weights[/]")
        self.progress.start()
        self.it_task = self.progress.add_task("iterations", total=self.max_iterations)
        self.cand_task = self.progress.add_task("candidates", total=spec.candidates_per_iteration)
        self.epoch_task = self.progress.add_task("epochs", total=spec.train_epochs)

    def iteration_start(self, iteration: int, specs: list[Any]) -> None:
        assert self.cand_task is not None and self.epoch_task is not None
        self.progress.update(
            self.cand_task,
            completed=0,
            total=len(specs),
            description=f"candidates (iteration {iteration})",
        )
        self.progress.update(self.epoch_task, completed=0)

    def epoch(self, spec: Any, epoch: int, logs: dict[str, float]) -> None:
        assert self.epoch_task is not None
        self.progress.update(
            self.epoch_task,
            completed=epoch,
            total=spec.epochs,
            description=f"epochs ({spec.name})",
        )

    def candidate_end(self, record: Any) -> None:
        assert self.cand_task is not None
        self.progress.advance(self.cand_task)
        if record.state == "failed":
            last = (record.error or "").strip().splitlines()[-1:] or [""]
            self.progress.console.print(f"[red]candidate {record.name} failed:[/] {last[0]}")

    def iteration_end(self, record: Any, ensemble: Any) -> None:
        assert self.it_task is not None
        self.progress.advance(self.it_task)
        self.progress.console.print(iteration_table(record))
        verdict = (
            f"chose [bold]{record.chosen}[/]: F {record.previous_objective:.4f} → "
            f"{record.best_objective:.4f}; ensemble has {len(ensemble.members)} member(s)"
            if record.chosen
            else f"no candidate beat the previous ensemble (F={record.previous_objective:.4f})"
        )
        self.progress.console.print(verdict)

    def stop(self) -> None:
        self.progress.stop()


def iteration_table(record: Any) -> Table:
    table = Table(title=f"iteration {record.iteration}", title_justify="left")
    for col in (
        "candidate",
        "family",
        "depth",
        "width",
        "optimizer",
        "learning rate",
        "loss",
        "complexity",
        "F",
        "chosen",
    ):
        table.add_column(
            col, justify="right" if col not in ("candidate", "family", "optimizer") else "left"
        )
    for c in record.candidates:
        hp = c.hparams
        width = hp.get("filters", hp.get("width"))
        table.add_row(
            c.name + ("" if c.origin == "sampled" else f" ({c.origin.replace('paper_', '')})"),
            hp.get("family"),
            str(hp.get("depth")),
            str(width),
            hp.get("optimizer"),
            f"{hp.get('learning_rate', 0):.2e}",
            _fmt(c.loss) if c.state != "failed" else "[red]failed[/]",
            _fmt(c.complexity),
            _fmt(c.objective),
            "✓" if c.chosen else "",
        )
    return table


# the one-number metrics of ``automl.metrics``, in the order a table shows them
HEADLINE_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "mse", "mae", "r2")
SCALAR_METRICS = (*HEADLINE_METRICS[:3], "log_loss", "roc_auc", *HEADLINE_METRICS[3:])


def _metrics_text(metrics: dict[str, Any], keys: tuple[str, ...] = HEADLINE_METRICS) -> str:
    """``accuracy 0.9667, balanced_accuracy 0.9600, ...``: the scalar metrics present."""
    return ", ".join(
        f"{k} {metrics[k]:.4f}" if isinstance(metrics[k], float) else f"{k} {_fmt(metrics[k])}"
        for k in keys
        if k in metrics
    )


def _worst_recall(metrics: dict[str, Any]) -> float | None:
    per_class = metrics.get("per_class") or {}
    return min((c["recall"] for c in per_class.values()), default=None)


def evaluation_table(report: dict[str, Any]) -> None:
    ev = report.get("evaluation")
    if not ev:
        return
    classification = report["task"] == "classification"
    metric = ev.get("metric") or ("accuracy" if classification else "mse")
    table = Table(title=f"evaluation phase ({ev['wall_s']:.1f} s)", title_justify="left")
    cols = ["step", "change", "kept", "members", "params", "non-zero", f"val {metric}"]
    if classification:
        # a class the model stopped predicting shows here, whatever the accuracy says
        cols += [*(["val accuracy"] if metric != "accuracy" else []), "worst class recall"]
    for col in (*cols, "F"):
        table.add_column(col, justify="left" if col in ("step", "change") else "right")
    for st in ev["steps"]:
        vm = st["validation_metrics"]
        extra = []
        if classification:
            extra = [
                *([_fmt(vm.get("accuracy"))] if metric != "accuracy" else []),
                _fmt(_worst_recall(vm)),
            ]
        table.add_row(
            st["step"],
            st["change"],
            "✓" if st["kept"] else "",
            str(st["members"]),
            f"{st['params']:,}",
            f"{st['nonzero_params']:,}",
            _fmt(vm.get(metric)),
            *extra,
            _fmt(st["objective"]),
        )
    console.print(table)


def final_metrics_tables(report: dict[str, Any]) -> None:
    """The final model's test metrics beside those of a model that learnt nothing (and of the
    best single member), per-class precision/recall/F1, and a warning for a useless model."""
    test = report["test_metrics"]
    baseline = report.get("baseline_test_metrics") or {}
    best = report.get("best_member_test_metrics") or {}
    classification = report["task"] == "classification"
    trivial = "majority class" if classification else "training mean"
    table = Table(title="test metrics (untouched test split)", title_justify="left")
    for col in ("metric", "final model", trivial, f"best member ({report['best_member']})"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for k in SCALAR_METRICS:
        if k in test:
            table.add_row(k, _fmt(test[k]), _fmt(baseline.get(k)), _fmt(best.get(k)))
    console.print(table)
    warnings: list[str] = []
    if classification and test.get("per_class"):
        per_class = Table(title="test metrics per class", title_justify="left")
        for col in ("class", "support", "precision", "recall", "F1"):
            per_class.add_column(col, justify="left" if col == "class" else "right")
        for name, c in test["per_class"].items():
            per_class.add_row(
                name, str(c["support"]), _fmt(c["precision"]), _fmt(c["recall"]), _fmt(c["f1"])
            )
            if c["support"] and c["recall"] == 0:
                warnings.append(f"the model finds none of the {c['support']} test rows of {name!r}")
        console.print(per_class)
        bal, trivial_bal = test.get("balanced_accuracy"), baseline.get("balanced_accuracy")
        if bal is not None and trivial_bal is not None and bal <= trivial_bal + 1e-9:
            warnings.append(
                f"balanced accuracy {bal:.4f} is no better than always predicting the majority "
                f"class ({trivial_bal:.4f})"
            )
    elif not classification and baseline.get("mse") is not None:
        if test["mse"] >= baseline["mse"]:
            warnings.append(
                f"test mse {test['mse']:.4g} is no better than predicting the training mean "
                f"({baseline['mse']:.4g})"
            )
    for w in warnings:
        console.print(f"[bold yellow]warning:[/] {w}")


def final_tables(report: dict[str, Any]) -> None:
    evaluation_table(report)
    final_metrics_tables(report)
    ens = report["ensemble"]
    table = Table(title="final ensemble", title_justify="left")
    for col in ("member", "family", "depth", "params", "mixture weight", "r(h)"):
        table.add_column(col)
    for m in ens["members"]:
        w = m["mixture_weight"]
        table.add_row(
            m["name"],
            m["family"],
            str(m["depth"]),
            f"{m['params']:,}",
            _fmt(w) if isinstance(w, float) else f"|w|₁={m['mixture_weight_l1']:.3g}",
            _fmt(m["complexity"], 3),
        )
    console.print(table)
    metrics = _metrics_text(report["test_metrics"])
    best = _metrics_text(report["best_member_test_metrics"])
    ev = report.get("evaluation") or {}
    cv = ev.get("cross_validation")
    cv_text = (
        f" · {cv['folds']}-fold CV {cv['metric']} {cv['mean']:.4f} ± {cv['std']:.4f}" if cv else ""
    )
    console.print(
        f"test: [bold]{metrics}[/] · best single member ({report['best_member']}): {best}"
        f"{cv_text}\n"
        f"parameters {ens['params']:,} (non-zero {ens.get('nonzero_params', ens['params']):,}) · "
        f"objective F {ens['objective']:.4f} · stopped: {report['stop_reason']} · "
        f"search wall time {report['wall_s']:.1f} s"
    )


def columns_table(columns: list[Any]) -> None:
    """The type of each input column of a table and the rule (or the user) that chose it."""
    table = Table(title="columns", title_justify="left")
    for col in ("column", "type", "missing", "distinct", "why"):
        table.add_column(col, justify="right" if col in ("missing", "distinct") else "left")
    for c in columns:
        table.add_row(
            escape(c.name),
            c.type if c.type != "ignore" else "[yellow]ignore[/]",
            f"{c.missing_rate:.1%}",
            str(c.distinct),
            escape(c.reason),
        )
    console.print(table)


data_app = typer.Typer(help="Data files: check one without training.", no_args_is_help=True)
app.add_typer(data_app, name="data")

# where the data comes from: the same options for `search` and `data check`
DatasetOpt = Annotated[str | None, typer.Option(help="built-in dataset name")]
CsvOpt = Annotated[Path | None, typer.Option(help="CSV file with a header row")]
LabelOpt = Annotated[str | None, typer.Option(help="label column of --csv")]
NpzOpt = Annotated[Path | None, typer.Option(help="NPZ file with arrays x and y")]
TaskOpt = Annotated[str | None, typer.Option(help="classification or regression")]
ColumnTypesOpt = Annotated[
    str | None,
    typer.Option(
        help="""JSON object overriding the detected column types of --csv, e.g. """
        """'{"city": "categorical", "id": "ignore"}' (numeric, categorical or ignore)"""
    ),
]

# a wider table's columns are summed up by type instead of listed
MAX_LISTED_COLUMNS = 50


@data_app.command("check")
def data_check(
    csv: CsvOpt = None,
    label: LabelOpt = None,
    npz: NpzOpt = None,
    dataset: DatasetOpt = None,
    task: TaskOpt = None,
    column_types: ColumnTypesOpt = None,
) -> None:
    """Read a data file exactly as 'automl search' (and an upload) would, without training.

    Prints the rows, features, task and classes it read; a file the search would refuse prints
    the reason and exits with code 2."""
    if task not in (None, "classification", "regression"):
        raise fail(f"--task must be classification or regression, not {task!r}")
    try:
        ds = _load_dataset(dataset, csv, label, npz, task, _column_types(column_types))
    except AutoMLError as exc:
        raise fail(str(exc)) from None
    if ds.columns is not None and len(ds.columns) <= MAX_LISTED_COLUMNS:
        columns_table(ds.columns)
    elif ds.columns is not None:
        kinds: dict[str, int] = {}
        for c in ds.columns:
            kinds[c.type] = kinds.get(c.type, 0) + 1
        console.print("columns: " + ", ".join(f"{n} {t}" for t, n in sorted(kinds.items())))
    shape = f" · input shape {tuple(ds.input_shape)}" if ds.input_shape else ""
    console.print(
        f"{escape(ds.name)}: {ds.n_rows} rows · {ds.n_features} features{shape} · "
        f"{ds.task} ({escape(ds.task_rule or '')})",
        highlight=False,
    )
    if ds.task == "classification":
        counts = ds.class_counts()
        listed = ", ".join(f"{escape(str(k))}: {v}" for k, v in list(counts.items())[:20])
        more = f", … ({len(counts) - 20} more)" if len(counts) > 20 else ""
        console.print(f"{len(counts)} classes: {listed}{more}", highlight=False)


@app.command()
def datasets() -> None:
    """List the built-in datasets."""
    from automl.data import builtin_datasets

    table = Table(title="built-in datasets", title_justify="left")
    table.add_column("name")
    table.add_column("description")
    for name, desc in builtin_datasets().items():
        table.add_row(name, desc)
    console.print(table)


@app.command()
def search(
    dataset: DatasetOpt = None,
    csv: CsvOpt = None,
    label: LabelOpt = None,
    npz: NpzOpt = None,
    task: TaskOpt = None,
    column_types: ColumnTypesOpt = None,
    spec: Annotated[Path | None, typer.Option(help="search spec JSON file")] = None,
    max_iterations: Annotated[int | None, typer.Option(min=1)] = None,
    candidates: Annotated[int | None, typer.Option(min=1, help="candidates per iteration")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="epochs per candidate")] = None,
    seed: Annotated[int | None, typer.Option(min=0)] = None,
    time_budget: Annotated[
        float | None,
        typer.Option(
            min=1,
            help="seconds for the whole run (search, evaluation phase and export); the run "
            "plans its iterations and evaluation steps to end within it",
        ),
    ] = None,
    cv_folds: Annotated[
        int | None, typer.Option(min=0, max=20, help="cross-validation folds (0: none)")
    ] = None,
    no_evaluation: Annotated[
        bool, typer.Option("--no-evaluation", help="skip the evaluation/pruning phase")
    ] = False,
    max_nonzero_params: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="size goal: the evaluation phase prunes weights, or drops members, until the "
            "model has at most this many non-zero parameters (evaluation.max_nonzero_params)",
        ),
    ] = None,
    goal_search_sparsity: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="with a size goal, the search keeps only ensembles of at most goal / (1 - "
            "this) parameters, the phase pruning the rest away (default 0.5; 0: the search "
            "stays within the goal unpruned; below 1; evaluation.goal_search_sparsity)",
        ),
    ] = None,
    executor: Annotated[
        str, typer.Option(help="where candidates train: in_process, or ray (in parallel)")
    ] = "in_process",
    out: Annotated[Path | None, typer.Option(help="run directory (default runs/NAME-TIME)")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace a run already in --out")] = False,
) -> None:
    """Search for an ensemble on a dataset and write the model, record and report to --out."""
    from automl.spec import SearchSpec

    if task not in (None, "classification", "regression"):
        raise fail(f"--task must be classification or regression, not {task!r}")
    try:
        if spec is not None:
            if not spec.is_file():
                raise fail(f"spec file {str(spec)!r} does not exist")
            search_spec = SearchSpec.from_json(spec.read_text())
        else:
            search_spec = SearchSpec()
        raw = search_spec.to_dict()
        for key, value in (
            ("max_iterations", max_iterations),
            ("candidates_per_iteration", candidates),
            ("epochs", epochs),
            ("seed", seed),
            ("time_budget_s", time_budget),
        ):
            if value is not None:
                raw[key] = value
        if cv_folds is not None:
            raw["evaluation"]["cv_folds"] = cv_folds
        if no_evaluation:
            raw["evaluation"]["enabled"] = False
        if max_nonzero_params is not None:
            raw["evaluation"]["max_nonzero_params"] = max_nonzero_params
        if goal_search_sparsity is not None:
            raw["evaluation"]["goal_search_sparsity"] = goal_search_sparsity
        search_spec = SearchSpec.from_dict(raw)
        ds = _load_dataset(dataset, csv, label, npz, task, _column_types(column_types))
        search_spec.resolve_families(ds.kind)
        out_dir = out or Path("runs") / f"{ds.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        if (out_dir / "report.json").exists() and not overwrite:
            raise fail(
                f"{str(out_dir)!r} already holds a run; choose another --out or pass --overwrite"
            )
        from automl.executors import create_executor

        exe = create_executor(executor, resources=search_spec.resources)
    except AutoMLError as exc:
        raise fail(str(exc)) from None

    from automl._tf import quiet_import

    quiet_import()
    from automl.runner import run

    if ds.columns is not None:
        columns_table(ds.columns)
    progress = RichProgress(None if search_spec.fills_budget else search_spec.iteration_limit)
    try:
        outcome = run(search_spec, ds, out_dir, exe, [progress.callback])
    except AutoMLError as exc:
        progress.stop()
        raise fail(str(exc)) from None
    progress.stop()
    final_tables(outcome.report)
    console.print(
        f"wrote {out_dir}/: model.keras, savedmodel/, model_card.json, architecture.json, "
        "report.json"
    )


@app.command()
def replay(
    run_dir: Annotated[Path, typer.Argument(help="a directory written by 'automl search'")],
    out: Annotated[Path | None, typer.Option(help="where to write the replayed run")] = None,
) -> None:
    """Rebuild and retrain the recorded ensemble without searching."""
    from automl._tf import quiet_import

    quiet_import()
    from automl.runner import replay as do_replay

    try:
        outcome = do_replay(run_dir, out or run_dir / "replay")
    except AutoMLError as exc:
        raise fail(str(exc)) from None
    r = outcome.report
    metrics = _metrics_text(r["test_metrics"])
    console.print(
        f"replayed {len(r['ensemble']['members'])} member(s) of {run_dir}: test {metrics} · "
        f"parameters {r['ensemble']['params']:,} · {r['wall_s']:.1f} s"
    )
    console.print(f"wrote {outcome.out_dir}")


def _load_predictor(run_dir: Path) -> Any:
    from automl._tf import quiet_import

    quiet_import()
    from automl.export import Predictor

    try:
        return Predictor(run_dir)
    except AutoMLError as exc:
        raise fail(str(exc)) from None


@app.command()
def predict(
    run_dir: Annotated[Path, typer.Argument(help="a directory written by 'automl search'")],
    data: Annotated[Path, typer.Argument(help="CSV of raw features with a header row")],
    out: Annotated[
        Path | None, typer.Option(help="write predictions here (default: stdout)")
    ] = None,
) -> None:
    """Predict from raw features; columns are matched by the training feature names.

    A table's cells go in as they are: text, numbers, empty cells (missing). Ignored columns
    may be left out of the file."""
    import csv
    import io

    if not data.is_file():
        raise fail(f"no such file: {str(data)!r}")
    predictor = _load_predictor(run_dir)
    from automl.export import PredictionInputError

    rows = list(csv.reader(io.StringIO(data.read_text(encoding="utf-8-sig"))))
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if len(rows) < 2:
        raise fail("the CSV needs a header row and at least one row of features")
    header = [h.strip() for h in rows[0]]
    names = predictor.info["feature_names"]
    # an ignored column of a table is never read: it may be left out of the file
    ignored = {c["name"] for c in predictor.info.get("columns") or [] if c["type"] == "ignore"}
    idx: list[int | None]
    if all(n in header or n in ignored for n in names):
        idx = [header.index(n) if n in header else None for n in names]
    elif len(header) == len(names):
        idx = list(range(len(names)))
    else:
        missing = [n for n in names if n not in header and n not in ignored][:5]
        raise fail(
            f"the CSV has {len(header)} columns and lacks the model's features "
            f"{', '.join(missing)}…; give a header with the training feature names"
        )
    try:
        table = [[r[j] if j is not None and j < len(r) else "" for j in idx] for r in rows[1:]]
        preds = predictor.predict(table)
    except PredictionInputError as exc:
        line = (exc.row or 0) + 2
        col = names[exc.column] if isinstance(exc.column, int) else None
        where = f"CSV line {line}" + (f", column {col!r}" if col else "")
        raise fail(f"{where}: {exc}") from None
    buf = io.StringIO()
    writer = csv.writer(buf)
    if predictor.info["task"] == "regression":
        writer.writerow(["value"])
        writer.writerows([[p["value"]] for p in preds])
    else:
        labels = predictor.info["label_names"]
        writer.writerow(["label", *[f"p_{n}" for n in labels]])
        writer.writerows([[p["label"], *[p["probabilities"][n] for n in labels]] for p in preds])
    if out is None:
        sys.stdout.write(buf.getvalue())
    else:
        out.write_text(buf.getvalue())
        err_console.print(f"wrote {len(preds)} prediction(s) to {out}")


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="a directory written by 'automl search'")],
    format: Annotated[str, typer.Option(help="savedmodel or keras")] = "savedmodel",
    out: Annotated[Path | None, typer.Option(help="where to write it")] = None,
) -> None:
    """Export a run's model as a TensorFlow SavedModel (for TF Serving) or a .keras file."""
    import shutil

    if format not in ("savedmodel", "keras"):
        raise fail(f"--format must be savedmodel or keras, not {format!r}")
    predictor = _load_predictor(run_dir)
    from automl.export import export_savedmodel

    if format == "keras":
        target = out or run_dir / "export.keras"
        shutil.copyfile(run_dir / "model.keras", target)
    else:
        target = export_savedmodel(predictor.model, out or run_dir / "export-savedmodel")
    console.print(f"wrote {target}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
