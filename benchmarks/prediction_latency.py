"""Prediction latency per row at batch 1 and batch 256, in process and through the API.

    .venv/bin/python benchmarks/prediction_latency.py [--json out.json]

Starts `automl serve` (SQLite, local Ray), trains a digits job (3 iterations × 3 candidates,
15 epochs, no cross-validation), then times the same model (a) in this process through
automl.export.Predictor and (b) over HTTP with POST /api/v1/jobs/{id}/predict. Medians of
repeated calls after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integration.conftest import Server, wait_for  # noqa: E402


def per_row(call, batch: int, repeats: int) -> float:  # type: ignore[no-untyped-def]
    call()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / batch


def main() -> int:
    from sklearn.datasets import load_digits

    from automl.export import Predictor

    parser = argparse.ArgumentParser()
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    x = load_digits().data.astype(float)
    spec = {
        "max_iterations": 3,
        "candidates_per_iteration": 3,
        "epochs": 15,
        "seed": 1,
        "evaluation": {"cv_folds": 0},
    }
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(f"sqlite:///{tmp}/lat.db", Path(tmp)).start()
        try:
            with server.client() as c:
                job = c.post("/api/v1/jobs", json={"dataset": "digits", "spec": spec}).json()
                done = wait_for(c, job["id"], {"succeeded", "failed"}, timeout=1800)
                assert done["state"] == "succeeded", done["error"]
                out["members"] = len(done["result"]["ensemble"]["members"])
                out["params"] = done["result"]["ensemble"]["params"]
                out["nonzero_params"] = done["result"]["ensemble"]["nonzero_params"]
                out["test_accuracy"] = done["result"]["test_metrics"]["accuracy"]
                predictor = Predictor(Path(tmp) / "artifacts" / "jobs" / job["id"])
                for batch, repeats in ((1, 200), (256, 30)):
                    rows = x[:batch].tolist()
                    out[f"in_process_batch_{batch}_ms_per_row"] = 1000 * per_row(
                        lambda rows=rows: predictor.predict(rows), batch, repeats
                    )
                    url = f"/api/v1/jobs/{job['id']}/predict"
                    out[f"api_batch_{batch}_ms_per_row"] = 1000 * per_row(
                        lambda rows=rows, url=url: c.post(
                            url, json={"rows": rows}
                        ).raise_for_status(),
                        batch,
                        repeats,
                    )
        finally:
            server.stop()
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
