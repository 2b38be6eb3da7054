"""The dashboard with a big job: 10,000 candidates over 50 iterations, written straight into
the database (SQLite and PostgreSQL), then timed server-side (each JSON endpoint and page over
loopback HTTP, median and p95 of repeated requests) and in a headless Chromium (first paint of
the job page, time until its plots are drawn).

    .venv/bin/python benchmarks/dashboard_bench.py                # both backends
    .venv/bin/python benchmarks/dashboard_bench.py --backend sqlite --repeat 20

Targets (issue 7): first paint < 1 s; a candidates-table page and each plot's data < 200 ms
server-side. PostgreSQL comes from AUTOML_TEST_POSTGRES_URL (default postgres@127.0.0.1:5432,
database test); the benchmark makes its own database there and drops it afterwards.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

POSTGRES_ADMIN_URL = os.environ.get(
    "AUTOML_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CHROMIUM = os.environ.get("AUTOML_TEST_CHROMIUM", "/usr/bin/chromium")
FAMILIES = ("dense", "conv1d")
OPTIMIZERS = ("adam", "rmsprop", "nesterov", "sgd")


def make_big_job(
    factory: Any,
    owner: str = "bench",
    iterations: int = 50,
    per_iteration: int = 200,
    epochs: int = 20,
    seed: int = 0,
) -> tuple[str, str]:
    """Write a finished job with ``iterations × per_iteration`` candidates (each with its
    per-epoch history), its iterations, events and result; return (job id, API key)."""
    from sqlalchemy import insert

    from api.auth import create_api_key
    from api.db import session_scope
    from api.models import Candidate, Event, Iteration, Job, new_id, utcnow

    rng = random.Random(seed)
    job_id = new_id()
    start = utcnow() - timedelta(hours=3)
    with session_scope(factory) as s:
        key = create_api_key(s, owner)
        s.add(
            Job(
                id=job_id,
                owner=owner,
                builtin_dataset="mnist1d",
                spec={"max_iterations": iterations, "candidates_per_iteration": per_iteration},
                state="succeeded",
                executor="ray",
                current_iteration=iterations - 1,
                candidates_done=iterations * per_iteration,
                candidates_total=iterations * per_iteration,
                stop_reason="max_iterations",
                created_at=start,
                started_at=start,
                finished_at=start + timedelta(hours=2, minutes=50),
            )
        )
    previous = math.log(10)
    members: list[str] = []
    weights: list[float] = []
    candidate_rows: list[dict[str, Any]] = []
    iteration_rows: list[dict[str, Any]] = []
    event_rows: list[dict[str, Any]] = []
    best_f = previous
    for t in range(iterations):
        chosen = rng.randrange(per_iteration)
        ensembles = []
        for c in range(per_iteration):
            name = f"t{t}_c{c}"
            family = rng.choice(FAMILIES)
            depth = rng.randint(1, 4)
            loss = max(0.05, previous * rng.uniform(0.85, 1.1) - 0.01)
            complexity = 0.01 * math.sqrt(depth) * rng.uniform(0.5, 2.0)
            objective = (
                loss + complexity if c != chosen else min(loss + complexity, previous - 1e-3)
            )
            failed = rng.random() < 0.02 and c != chosen
            acc = max(0.1, min(0.99, 1 - loss / 3))
            hparams = {
                "family": family,
                "depth": depth,
                "width": rng.choice([64, 128, 256]),
                "activation": rng.choice(["relu", "elu", "gelu"]),
                "dropout": rng.uniform(0, 0.3),
                "l2": 10 ** rng.uniform(-6, -3),
                "batch_norm": rng.random() < 0.5,
                "optimizer": rng.choice(OPTIMIZERS),
                "learning_rate": 10 ** rng.uniform(-3.3, -2.3),
                "schedule": rng.choice(["cosine", "exponential", "inverse_time"]),
                "batch_size": rng.choice([32, 64, 128]),
            }
            if family == "conv1d":
                hparams |= {"filters": rng.choice([32, 64]), "kernel_size": rng.choice([3, 5])}
            history = {
                "loss": [loss * (1 + 2 / (e + 1)) for e in range(epochs)],
                "val_loss": [loss * (1 + 2.2 / (e + 1)) for e in range(epochs)],
                "accuracy": [acc * (1 - 0.5 / (e + 1)) for e in range(epochs)],
                "val_accuracy": [acc * (1 - 0.55 / (e + 1)) for e in range(epochs)],
            }
            candidate_rows.append(
                {
                    "job_id": job_id,
                    "iteration": t,
                    "name": name,
                    "origin": "sampled" if c > 1 else "paper_same_depth",
                    "state": "failed" if failed else "completed",
                    "hparams": hparams,
                    "seed": rng.randrange(2**31),
                    "depth": depth,
                    "params": depth * hparams["width"] * 40,
                    "loss": None if failed else loss,
                    "complexity": None if failed else complexity,
                    "objective": None if failed else objective,
                    "metrics": {} if failed else {"accuracy": acc},
                    "own_metrics": {} if failed else {"accuracy": acc * 0.95, "loss": loss * 1.1},
                    "chosen": c == chosen,
                    "node": f"worker-{c % 8}:{1000 + c % 8}",
                    "epochs_run": 0 if failed else epochs,
                    "attempts": 1,
                    "failure_kind": "training" if failed else None,
                    "duration_s": rng.uniform(5, 60),
                    "train_s": rng.uniform(4, 55),
                    "error": "Traceback...\nFloatingPointError: training diverged"
                    if failed
                    else None,
                    "history": None if failed else history,
                    "created_at": start,
                    "finished_at": start,
                }
            )
            ensembles.append(
                {
                    "name": f"{name}/grow",
                    "strategy": "grow",
                    "members": [*members, name],
                    "new_members": [name],
                    "mixture_weights": [*weights, 1.0],
                    "bias": [0.0] * 10,
                    "loss": loss,
                    "complexity": complexity,
                    "objective": objective,
                    "metrics": {"accuracy": acc},
                    "chosen": c == chosen,
                }
            )
            event_rows.append(
                {
                    "job_id": job_id,
                    "at": start,
                    "kind": "info",
                    "message": f"candidate {name} started training",
                    "data": {"candidate": name, "iteration": t},
                }
            )
        members.append(f"t{t}_c{chosen}")
        weights.append(rng.uniform(0.2, 3))
        f_chosen = previous - rng.uniform(0.001, 0.05)
        iteration_rows.append(
            {
                "job_id": job_id,
                "iteration": t,
                "previous_objective": previous,
                "best_objective": f_chosen,
                "chosen": f"t{t}_c{chosen}/grow",
                "improved": True,
                "ensemble": {
                    "members": list(members),
                    "mixture_weights": list(weights),
                    "objective": f_chosen,
                    "loss": f_chosen * 0.9,
                    "complexity": f_chosen * 0.1,
                    "params": 20_000 * len(members),
                },
                "ensembles": ensembles,
                "duration_s": 200.0,
                "finished_at": start,
            }
        )
        event_rows.append(
            {
                "job_id": job_id,
                "at": start,
                "kind": "info",
                "message": f"iteration {t}: chose t{t}_c{chosen}",
                "data": {},
            }
        )
        previous = best_f = f_chosen
    result = {
        "test_metrics": {"accuracy": 0.9, "balanced_accuracy": 0.9},
        "ensemble": {
            "members": [
                {
                    "name": m,
                    "family": "dense",
                    "depth": 2,
                    "params": 20_000,
                    "mixture_weight": w,
                    "hparams": {"family": "dense", "width": 128},
                }
                for m, w in zip(members[-10:], weights[-10:], strict=True)
            ],
            "params": 200_000,
            "objective": best_f,
        },
        "evaluation": {
            "metric": "accuracy",
            "steps": [
                {
                    "step": "baseline",
                    "change": "the ensemble the search chose",
                    "kept": True,
                    "members": 10,
                    "params": 200_000,
                    "nonzero_params": 200_000,
                    "objective": best_f,
                    "validation_metrics": {"accuracy": 0.9},
                    "details": {},
                },
                *(
                    {
                        "step": f"prune_weights_{level}",
                        "change": f"zero {level:.0%} of each kernel",
                        "kept": level <= 0.5,
                        "members": 10,
                        "params": 200_000,
                        "nonzero_params": int(200_000 * (1 - level)),
                        "objective": best_f * (1 + level / 10),
                        "validation_metrics": {"accuracy": 0.9 - level / 10},
                        "details": {"target_sparsity": level, "reference": 0.9},
                    }
                    for level in (0.25, 0.5, 0.75, 0.9)
                ),
            ],
            "cross_validation": {
                "folds": 5,
                "metric": "accuracy",
                "mean": 0.89,
                "std": 0.01,
                "per_fold": [0.88, 0.89, 0.9, 0.89, 0.88],
            },
            "sparsity": 0.5,
            "wall_s": 300.0,
            "members": members[-10:],
        },
        "search_wall_s": 10_000.0,
    }
    with session_scope(factory) as s:
        for chunk in range(0, len(candidate_rows), 1000):
            s.execute(insert(Candidate), candidate_rows[chunk : chunk + 1000])
        s.execute(insert(Iteration), iteration_rows)
        for chunk in range(0, len(event_rows), 2000):
            s.execute(insert(Event), event_rows[chunk : chunk + 2000])
        job = s.get(Job, job_id)
        assert job is not None
        job.result = result
        job.best_objective = best_f
    return job_id, key


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(db_url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = dict(
        os.environ,
        AUTOML_DATABASE_URL=db_url,
        AUTOML_ARTIFACT_DIR=str(workdir / "artifacts"),
        AUTOML_PORT=str(port),
        AUTOML_EXECUTOR="in_process",  # nothing to train: no Ray needed to serve the pages
        AUTOML_RUN_CONTROLLER="false",
    )
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve"],
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError((workdir / "server.log").read_text())


def _time(client: httpx.Client, path: str, repeat: int) -> tuple[float, float, int, int]:
    client.get(path)  # warm: first-use caches (templates, the plotly asset) are not the point
    samples = []
    size = status = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.get(path)
        samples.append(time.perf_counter() - t0)
        size, status = len(r.content), r.status_code
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
    return statistics.median(samples), p95, size, status


def _sign_in(url: str, key: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    page = client.get("/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    r = client.post("/signin", data={"key": key, "csrf": csrf.group(1), "next": "/jobs"})
    assert r.status_code == 303, r.text
    return client


def _browser(url: str, key: str, job_id: str) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    out: dict[str, float] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.goto(url + "/signin")
        page.fill("#key", key)
        page.click("form[action='/signin'] button[type=submit]")
        page.wait_for_url("**/jobs")
        for label, path, plots in (
            ("job page (overview)", f"/jobs/{job_id}", ["plot-growth"]),
            ("candidates tab", f"/jobs/{job_id}?tab=candidates&sort=objective", []),
            ("analysis tab", f"/jobs/{job_id}?tab=analysis", ["plot-scatter", "plot-hparams"]),
            ("evaluation tab", f"/jobs/{job_id}?tab=evaluation", ["plot-sparsity"]),
        ):
            t0 = time.perf_counter()
            page.goto(url + path)
            page.wait_for_function(
                "() => performance.getEntriesByName('first-contentful-paint').length > 0"
            )
            paint = page.evaluate(
                "() => performance.getEntriesByName('first-contentful-paint')[0].startTime"
            )
            out[f"{label}: first contentful paint (ms)"] = float(paint)
            for plot in plots:
                page.wait_for_function(
                    "id => Number(document.getElementById(id)?.dataset.loaded || 0) >= 1",
                    arg=plot,
                    timeout=60_000,
                )
            if plots:
                out[f"{label}: plots drawn (ms)"] = (time.perf_counter() - t0) * 1000
        browser.close()
    return out


def bench(backend: str, repeat: int, with_browser: bool) -> None:
    from api.db import make_engine, make_session_factory
    from api.migrate import upgrade

    workdir = Path(tempfile.mkdtemp(prefix=f"dashboard-bench-{backend}-"))
    dbname = None
    if backend == "sqlite":
        db_url = f"sqlite:///{workdir / 'automl.db'}"
    else:
        import psycopg

        dbname = f"automl_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(POSTGRES_ADMIN_URL.replace("+psycopg", ""), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{dbname}"')
        db_url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{dbname}"
    proc = None
    try:
        engine = make_engine(db_url)
        upgrade(engine)
        t0 = time.perf_counter()
        job_id, key = make_big_job(make_session_factory(engine))
        written = time.perf_counter() - t0
        engine.dispose()
        proc, url = _serve(db_url, workdir)
        api = httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {key}"})
        web = _sign_in(url, key)
        print(f"\n## {backend}: 10,000 candidates, 50 iterations (written in {written:.1f} s)\n")
        print("| request | median ms | p95 ms | bytes | status |")
        print("| --- | ---: | ---: | ---: | ---: |")
        base = f"/api/v1/jobs/{job_id}"
        rows = [
            (
                "API: candidates page (sort objective, 50 rows)",
                api,
                f"{base}/candidates?sort=objective&limit=50",
            ),
            ("plot: growth", api, f"{base}/plots/growth"),
            (
                "plot: loss vs complexity (2,000 of 10,000 points)",
                api,
                f"{base}/plots/loss_complexity",
            ),
            (
                "plot: hyperparameters vs F (600 of 10,000 points, 12 panels)",
                api,
                f"{base}/plots/hparams",
            ),
            ("plot: sparsity", api, f"{base}/plots/sparsity"),
            ("plot: training curves (one candidate)", api, f"{base}/plots/curves?candidate=t49_c3"),
            ("API: ensemble", api, f"{base}/ensemble"),
            ("page: job overview (HTML)", web, f"/jobs/{job_id}"),
            (
                "page: candidates table, sorted by F, page 1 of 200",
                web,
                f"/jobs/{job_id}?tab=candidates&sort=objective&order=asc",
            ),
            (
                "page: candidates table fragment, sorted by learning rate (JSON field), page 100",
                web,
                f"/jobs/{job_id}?tab=candidates&sort=learning_rate&page=100&fragment=candidates",
            ),
            (
                "page: candidates table, family=conv1d, iteration=25",
                web,
                f"/jobs/{job_id}?tab=candidates&family=conv1d&iteration=25",
            ),
            ("page: evaluation tab", web, f"/jobs/{job_id}?tab=evaluation"),
            ("page: event log (10,050 events), page 1", web, f"/jobs/{job_id}?tab=events"),
            ("page: jobs list", web, "/jobs"),
            ("CSV export, all 10,000 rows (not a target)", api, f"{base}/candidates/export"),
        ]
        for label, client, path in rows:
            median, p95, size, status = _time(client, path, repeat)
            print(f"| {label} | {median * 1000:.1f} | {p95 * 1000:.1f} | {size:,} | {status} |")
        if with_browser:
            print("\n| in the browser (Chromium, loopback) | ms |\n| --- | ---: |")
            for label, value in _browser(url, key, job_id).items():
                print(f"| {label} | {value:.0f} |")
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if dbname:
            import psycopg

            with psycopg.connect(POSTGRES_ADMIN_URL.replace("+psycopg", ""), autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    for backend in ("sqlite", "postgresql") if args.backend == "both" else (args.backend,):
        bench(backend, args.repeat, not args.no_browser)


if __name__ == "__main__":
    main()
