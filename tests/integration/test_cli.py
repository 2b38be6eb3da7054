"""The ``automl`` command line, run as a user runs it: a real subprocess, real training."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

AUTOML = [sys.executable, "-m", "api.cli"]


def automl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", COLUMNS="200")
    return subprocess.run(
        [*AUTOML, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


GOAL = 10**9


@pytest.fixture(scope="module")
def digits_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess]:
    # a one-level evaluation phase (no CV folds, no grow rules, one sparsity): the default
    # phase's steps are the engine's (test_evaluation) and the Ray executor's (test_ray_executor)
    # to test; here it is what the CLI writes and how replay rebuilds it
    base = tmp_path_factory.mktemp("cli")
    spec = base / "spec.json"
    spec.write_text(json.dumps({"evaluation": {"cv_folds": 0, "grow": False, "sparsities": [0.5]}}))
    out = base / "digits"
    proc = automl(
        "search",
        "--dataset",
        "digits",
        "--max-iterations",
        "2",
        "--candidates",
        "2",
        "--epochs",
        "2",
        "--seed",
        "3",
        "--spec",
        str(spec),
        # a goal every model of this size meets: the flag reaches the phase, which records it
        "--max-nonzero-params",
        str(GOAL),
        "--goal-search-sparsity",
        "0.25",
        "--out",
        str(out),
    )
    return out, proc


def test_tiny_digits_search_writes_a_complete_report(digits_run) -> None:  # type: ignore[no-untyped-def]
    out, proc = digits_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "model.keras").is_file() and (out / "architecture.json").is_file()
    # replay fine-tunes pruned members for as many epochs as the phase did (image data: 3)
    arch = json.loads((out / "architecture.json").read_text())
    assert (
        arch["ensemble"]["fine_tune_epochs"] == 3 == arch["spec"]["evaluation"]["fine_tune_epochs"]
    )
    report = json.loads((out / "report.json").read_text())
    assert report["dataset"] == "digits" and report["task"] == "classification"
    assert report["seed"] == 3 and report["wall_s"] > 0
    assert 1 <= len(report["iterations"]) <= 2
    for it in report["iterations"]:
        assert len(it["candidates"]) == 2
        for c in it["candidates"]:
            assert {"name", "hparams", "loss", "complexity", "objective", "chosen"} <= set(c)
            assert c["objective"] == pytest.approx(c["loss"] + c["complexity"])
            assert c["hparams"]["family"] in ("dense", "conv2d")
        assert sum(c["chosen"] for c in it["candidates"]) == (1 if it["chosen"] else 0)
    members = report["ensemble"]["members"]
    assert members and all({"name", "depth", "params", "mixture_weight"} <= set(m) for m in members)
    # the members, one mixture weight each and one bias per class
    assert report["ensemble"]["params"] == sum(m["params"] for m in members) + len(members) + 10
    assert 0.3 < report["test_metrics"]["accuracy"] <= 1.0
    assert "accuracy" in report["best_member_test_metrics"]
    goal = report["evaluation"]["steps"][-1]
    assert goal["step"] == "size_goal" and goal["details"]["goal"] == GOAL
    # every model meets it: the goal keeps the one of lowest F, the dense model or the level
    assert goal["details"]["met"] is True
    best = min(goal["details"]["options"], key=lambda o: (o["objective"], o["nonzero_params"]))
    assert goal["details"]["sparsity"] == best["sparsity"] == report["evaluation"]["sparsity"]
    assert goal["kept"] == (best["sparsity"] != goal["details"]["tolerance_sparsity"])
    assert arch["spec"]["evaluation"]["max_nonzero_params"] == GOAL
    assert arch["spec"]["evaluation"]["goal_search_sparsity"] == 0.25
    # what the user saw: the per-iteration table and the final summary
    assert "iteration 0" in proc.stdout and "learning rate" in proc.stdout
    assert "final ensemble" in proc.stdout and "test: accuracy" in proc.stdout


def test_replay_rebuilds_the_same_ensemble(digits_run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, _ = digits_run
    proc = automl("replay", str(out), "--out", str(tmp_path / "again"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    original = json.loads((out / "report.json").read_text())
    replayed = json.loads((tmp_path / "again" / "report.json").read_text())
    assert [m["name"] for m in replayed["ensemble"]["members"]] == [
        m["name"] for m in original["ensemble"]["members"]
    ]
    assert replayed["ensemble"]["params"] == original["ensemble"]["params"]
    assert replayed["test_metrics"]["accuracy"] == pytest.approx(
        original["test_metrics"]["accuracy"], abs=0.02
    )
    np.testing.assert_allclose(
        [m["mixture_weight"] for m in replayed["ensemble"]["members"]],
        [m["mixture_weight"] for m in original["ensemble"]["members"]],
        rtol=0.05,
    )


def test_search_with_the_ray_executor_trains_candidates_in_parallel_workers(
    tmp_path: Path,
) -> None:
    proc = automl(
        "search",
        "--dataset",
        "iris",
        "--executor",
        "ray",
        "--max-iterations",
        "1",
        "--candidates",
        "4",
        "--epochs",
        "20",
        "--no-evaluation",
        "--out",
        str(tmp_path / "run"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    nodes = {c["node"] for c in report["iterations"][0]["candidates"]}
    # two workers (one per core) share the four candidates: a candidate goes to the first worker
    # ready, so with tiny candidates the first worker could take them all before the second has
    # imported TensorFlow; four of 20 epochs outlast that
    assert len(nodes) == 2, nodes
    # trained in worker processes, not in the CLI's own process
    assert all(n.split(":")[1] != str(report["environment"]["pid"]) for n in nodes)


def test_datasets_lists_the_builtins() -> None:
    proc = automl("datasets")
    assert proc.returncode == 0
    for name in ("digits", "mnist1d", "breast_cancer", "wine", "diabetes"):
        assert name in proc.stdout


def test_csv_search_with_a_named_label(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    y = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")
    lines = ["f1,f2,f3,answer"] + [f"{a},{b},{c},{t}" for (a, b, c), t in zip(x, y, strict=True)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "spec.json").write_text(
        json.dumps({"batch_size": [16], "epochs": 15, "evaluation": {"enabled": False}})
    )
    proc = automl(
        "search",
        "--csv",
        str(tmp_path / "d.csv"),
        "--label",
        "answer",
        "--max-iterations",
        "1",
        "--candidates",
        "1",
        "--spec",
        str(tmp_path / "spec.json"),
        "--out",
        str(tmp_path / "run"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["data"]["classes"] == ["no", "yes"] and report["data"]["features"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "--out", "x"], "give exactly one of --dataset NAME, --csv FILE --label COL"),
        (["search", "--dataset", "digits", "--npz", "a.npz"], "(got --dataset, --npz)"),
        (["search", "--dataset", "cifar"], "unknown dataset 'cifar'; built-in datasets are"),
        (["search", "--csv", "data.csv"], "--csv needs --label COL"),
        (["search", "--csv", "data.csv", "--label", "nope"], "label column 'nope' is not in"),
        (["search", "--csv", "ragged.csv", "--label", "y"], "CSV line 3 has 1 values"),
        (["search", "--csv", "missing.csv", "--label", "y"], "no such file"),
        (["search", "--dataset", "digits", "--spec", "bad_spec.json"], "optimizers.0: must be"),
        (["search", "--dataset", "digits", "--spec", "nope.json"], "spec file 'nope.json' does"),
        (["search", "--dataset", "digits", "--task", "ranking"], "--task must be classification"),
        (["search", "--dataset", "wine", "--spec", "conv_spec.json"], "'conv2d' does not apply"),
        (["search", "--dataset", "digits", "--executor", "spark"], "unknown executor 'spark'"),
        (["replay", "nowhere"], "architecture.json' does not exist"),
        (["search", "--dataset", "digits", "--epochs", "0"], "Invalid value for '--epochs'"),
        (
            ["search", "--dataset", "digits", "--max-nonzero-params", "0"],
            "Invalid value for '--max-nonzero-params'",
        ),
        (
            ["search", "--dataset", "digits", "--goal-search-sparsity", "-0.1"],
            "Invalid value for '--goal-search-sparsity'",
        ),
        (
            ["search", "--dataset", "digits", "--goal-search-sparsity", "1"],
            "evaluation.goal_search_sparsity: Input should be less than 1",
        ),
    ],
)
def test_bad_arguments_get_a_message_and_exit_code_2(
    args: list[str], message: str, tmp_path: Path
) -> None:
    (tmp_path / "data.csv").write_text("a,y\n1,x\n2,z\n")
    (tmp_path / "ragged.csv").write_text("a,y\n1,x\n2\n")
    (tmp_path / "bad_spec.json").write_text(json.dumps({"optimizers": ["lion"]}))
    (tmp_path / "conv_spec.json").write_text(json.dumps({"families": ["conv2d"]}))
    proc = automl(*args, cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert message in " ".join(proc.stderr.split()), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_an_existing_run_is_not_overwritten_without_asking(digits_run) -> None:  # type: ignore[no-untyped-def]
    out, _ = digits_run
    before = (out / "report.json").read_text()
    proc = automl("search", "--dataset", "digits", "--out", str(out))
    assert proc.returncode == 2 and "already holds a run" in proc.stderr
    assert (out / "report.json").read_text() == before
