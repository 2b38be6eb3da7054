"""The REST API over a real server (uvicorn in a subprocess, real local Ray), on SQLite and
PostgreSQL: auth, owner isolation, every bad input, and jobs from submission to result."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import time

import numpy as np
import pytest

from tests.integration.conftest import TINY, Server, csv_bytes, wait_for


def counts(server: Server) -> tuple[int, int]:
    with server.client() as c:
        return c.get("/api/v1/datasets").json()["count"], c.get("/api/v1/jobs").json()["count"]


# ---- health, metrics, docs --------------------------------------------------------------------
def test_health_metrics_and_docs(server: Server) -> None:
    with server.client() as c:
        health = c.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "database": "ok", "ray": "ok"}
        metrics = c.get("/metrics").text
        assert 'automl_jobs{state="queued"}' in metrics
        assert c.get("/docs").status_code == 200
        paths = c.get("/openapi.json").json()["paths"]
        assert "/api/v1/jobs/{job_id}/candidates" in paths


def test_an_idle_connection_outlives_a_clients_keep_alive(server: Server) -> None:
    """httpx keeps an idle connection 5 s and uvicorn closed one after 5 s: a client reusing
    it at that moment lost its request (a ReadError under load). The server now keeps it
    AUTOML_HTTP_KEEP_ALIVE_S (75 s): a request 6 s after the last one on the same connection
    is answered."""
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", "/healthz")
        first = conn.getresponse()
        assert first.status == 200 and first.getheader("connection") != "close"
        first.read()
        sock = conn.sock
        time.sleep(6)
        conn.request("GET", "/healthz")  # http.client never reconnects an open socket
        again = conn.getresponse()
        assert again.status == 200 and json.loads(again.read())["database"] == "ok"
        assert conn.sock is sock
    finally:
        conn.close()


# ---- auth ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing Authorization header"),
        ("Bearer aml_not-a-real-key", "unknown or revoked API key"),
        ("Basic dXNlcjpwYXNz", "must be 'Bearer <key>'"),
        ("Bearer", "must be 'Bearer <key>'"),
    ],
)
def test_missing_or_wrong_key_is_401(server: Server, header: str | None, message: str) -> None:
    import httpx

    headers = {"Authorization": header} if header is not None else {}
    for path in ("/api/v1/jobs", "/api/v1/datasets"):
        r = httpx.get(server.url + path, headers=headers)
        assert r.status_code == 401 and message in r.json()["detail"]
        assert r.headers["www-authenticate"] == "Bearer"


def test_an_owner_never_sees_or_touches_another_owners_objects(server: Server) -> None:
    alice, bob = server.create_key("alice"), server.create_key("bob")
    with server.client(alice) as a, server.client(bob) as b:
        ds = a.post(
            "/api/v1/datasets",
            files={"file": ("mine.csv", csv_bytes(), "text/csv")},
            data={"label": "direction"},
        ).json()
        job = a.post("/api/v1/jobs", json={"dataset": "iris", "spec": TINY}).json()
        for method, path in [
            ("GET", f"/api/v1/datasets/{ds['id']}"),
            ("DELETE", f"/api/v1/datasets/{ds['id']}"),
            ("GET", f"/api/v1/jobs/{job['id']}"),
            ("POST", f"/api/v1/jobs/{job['id']}/cancel"),
            ("POST", f"/api/v1/jobs/{job['id']}/resume"),
            ("DELETE", f"/api/v1/jobs/{job['id']}"),
            ("GET", f"/api/v1/jobs/{job['id']}/candidates"),
            ("GET", f"/api/v1/jobs/{job['id']}/iterations"),
            ("GET", f"/api/v1/jobs/{job['id']}/events"),
            ("GET", f"/api/v1/jobs/{job['id']}/model"),
            ("GET", f"/api/v1/jobs/{job['id']}/model?format=savedmodel"),
            ("GET", f"/api/v1/jobs/{job['id']}/model/card"),
        ]:
            r = b.request(method, path)
            assert r.status_code == 404, (method, path, r.text)
        r = b.post(f"/api/v1/jobs/{job['id']}/predict", json={"rows": [[0.0] * 4]})
        assert r.status_code == 404, r.text
        assert b.get("/api/v1/jobs").json()["count"] == 0
        assert b.get("/api/v1/datasets").json()["count"] == 0
        # bob cannot run a job on alice's dataset either
        r = b.post("/api/v1/jobs", json={"dataset_id": ds["id"], "spec": TINY})
        assert r.status_code == 404
        assert a.get(f"/api/v1/jobs/{job['id']}").status_code == 200
        wait_for(a, job["id"], {"succeeded", "failed"})


# ---- datasets -----------------------------------------------------------------------------------
def test_upload_get_list_and_delete_a_dataset(server: Server) -> None:
    with server.client() as c:
        r = c.post(
            "/api/v1/datasets",
            files={"file": ("moves.csv", csv_bytes(80), "text/csv")},
            data={"label": "direction", "name": "moves"},
        )
        assert r.status_code == 201, r.text
        ds = r.json()
        assert (ds["name"], ds["task"], ds["rows"], ds["features"]) == (
            "moves",
            "classification",
            80,
            3,
        )
        assert sum(ds["class_counts"].values()) == 80 and set(ds["class_counts"]) == {"up", "down"}
        assert c.get(f"/api/v1/datasets/{ds['id']}").json() == ds
        assert ds["id"] in [d["id"] for d in c.get("/api/v1/datasets").json()["data"]]
        buf = io.BytesIO()
        np.savez(buf, x=np.random.rand(40, 8, 1), y=np.arange(40) % 2)
        npz = c.post("/api/v1/datasets", files={"file": ("seq.npz", buf.getvalue())}).json()
        assert npz["input_shape"] == [8, 1] and npz["label"] is None
        assert c.delete(f"/api/v1/datasets/{ds['id']}").status_code == 204
        assert c.get(f"/api/v1/datasets/{ds['id']}").status_code == 404
        assert c.delete(f"/api/v1/datasets/{npz['id']}").status_code == 204


def _pickled_npz() -> bytes:
    buf = io.BytesIO()
    ragged = np.empty(2, dtype=object)
    ragged[:] = [np.zeros(2), np.zeros(3)]
    np.savez(buf, x=ragged, y=np.array([0, 1]))
    return buf.getvalue()


BAD_UPLOADS = [
    ({"file": ("d.txt", b"a,b\n1,2\n")}, {}, 422, "file", "neither .csv nor .npz"),
    ({"file": ("d.csv", csv_bytes())}, {}, 422, "label", "needs 'label'"),
    ({"file": ("d.csv", csv_bytes())}, {"label": "nope"}, 422, "file", "label column 'nope'"),
    ({"file": ("d.csv", b"a,y\n1,x\n2\n")}, {"label": "y"}, 422, "file", "CSV line 3 has 1"),
    ({"file": ("d.csv", b"a,y\n1,x\nz,y\n")}, {"label": "y"}, 422, "file", "no usable feature"),
    ({"file": ("d.csv", b"a,y\ninf,x\n1,y\n")}, {"label": "y"}, 422, "file", "not a finite"),
    ({"file": ("d.csv", b"a,y\n1,x\n2,NA\n")}, {"label": "y"}, 422, "file", "missing value"),
    ({"file": ("d.csv", b"a,y\n1,x\n2,x\n")}, {"label": "y"}, 422, "file", "two classes"),
    ({"file": ("d.csv", b"")}, {"label": "y"}, 422, "file", "empty"),
    ({"file": ("d.npz", b"PK\x03\x04junk")}, {}, 422, "file", "not an NPZ archive"),
    ({"file": ("d.npz", _pickled_npz())}, {}, 422, "file", "pickles are never loaded"),
    (
        {"file": ("d.csv", csv_bytes())},
        {"label": "direction", "task": "ranking"},
        422,
        "task",
        "classification or regression",
    ),
    ({}, {"label": "y"}, 422, "file", "Field required"),
    (
        {"file": ("big.csv", b"a,y\n" + b"1,x\n" * 400_000)},
        {"label": "y"},
        413,
        "file",
        "upload limit",
    ),
]


@pytest.mark.parametrize(("files", "data", "status", "field", "message"), BAD_UPLOADS)
def test_each_bad_upload_gets_its_4xx_and_stores_nothing(
    server: Server, files: dict, data: dict, status: int, field: str, message: str
) -> None:
    before = counts(server)
    stored = sorted((server.workdir / "artifacts" / "datasets").glob("*"))
    with server.client() as c:
        r = c.post("/api/v1/datasets", files=files, data=data)
    assert r.status_code == status, r.text
    body = r.json()
    assert message in body["detail"]
    assert field in [e["field"] for e in body["errors"]]
    assert counts(server) == before
    assert sorted((server.workdir / "artifacts" / "datasets").glob("*")) == stored


# ---- jobs: bad input ----------------------------------------------------------------------------
BAD_JOBS = [
    ({"dataset": "cifar10"}, 422, "dataset", "unknown dataset 'cifar10'"),
    ({}, 422, "(request)", "give exactly one of dataset_id"),
    ({"dataset": "iris", "dataset_id": "0" * 32}, 422, "(request)", "exactly one"),
    ({"dataset_id": "0" * 32}, 404, "dataset_id", "not found"),
    ({"dataset": "iris", "spec": {"optimizers": ["lion"]}}, 422, "spec.optimizers.0", "'adam'"),
    ({"dataset": "iris", "spec": {"epochs": 0}}, 422, "spec.epochs", "greater than or equal"),
    ({"dataset": "iris", "spec": {"lambda": -1}}, 422, "spec.lambda", "greater than or equal"),
    ({"dataset": "iris", "spec": {"families": ["conv2d"]}}, 422, "spec.families", "table data"),
    (
        {"dataset": "iris", "spec": {"dense": {"depth": {"low": 3, "high": 1}}}},
        422,
        "spec.dense.depth",
        "must not exceed",
    ),
    ({"dataset": "iris", "spec": {"learning_rat": 1}}, 422, "spec.learning_rat", "not a"),
    ({"dataset": "iris", "executor": "spark"}, 422, "executor", "'ray'"),
    ({"dataset": "iris", "priority": 1}, 422, "priority", "not a field"),
]


@pytest.mark.parametrize(("body", "status", "field", "message"), BAD_JOBS)
def test_each_bad_job_gets_its_4xx_with_the_field_path_and_stores_nothing(
    server: Server, body: dict, status: int, field: str, message: str
) -> None:
    before = counts(server)
    with server.client() as c:
        r = c.post("/api/v1/jobs", json=body)
    assert r.status_code == status, r.text
    errors = r.json().get("errors", [])
    assert any(e["field"] == field and message in e["message"] for e in errors), r.text
    assert counts(server) == before


def test_a_body_that_is_not_json_is_422(server: Server) -> None:
    with server.client() as c:
        r = c.post("/api/v1/jobs", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["detail"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=done", "query.state"),
        ("limit=0", "query.limit"),
        ("offset=-1", "query.offset"),
        # past the databases' integers: a 422, not a 500 from an overflowing OFFSET
        ("offset=100000000000000000000", "query.offset"),
    ],
)
def test_bad_list_parameters_are_422(server: Server, query: str, field: str) -> None:
    with server.client() as c:
        r = c.get(f"/api/v1/jobs?{query}")
    assert r.status_code == 422 and field in [e["field"] for e in r.json()["errors"]]


# ---- jobs: from submission to result ------------------------------------------------------------
def test_a_digits_job_runs_to_success_with_candidates_live(server: Server) -> None:
    with server.client() as c:
        r = c.post("/api/v1/jobs", json={"dataset": "digits", "spec": {**TINY, "seed": 4}})
        assert r.status_code == 201, r.text
        job = r.json()
        assert job["state"] == "queued" and job["progress"]["max_iterations"] == 2
        # watch it run: candidates must show up while the job is still running, not at its end
        seen_states, live = set(), []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            body = c.get(f"/api/v1/jobs/{job['id']}").json()
            seen_states.add(body["state"])
            if body["state"] in ("succeeded", "failed"):
                break
            if body["state"] == "running":
                finished = c.get(f"/api/v1/jobs/{job['id']}/candidates?state=completed").json()
                live.append(finished["count"])
            time.sleep(0.1)
        done = wait_for(c, job["id"], {"succeeded", "failed"})
        assert done["state"] == "succeeded", done["error"]
        assert {"running", "evaluating", "succeeded"} <= seen_states, seen_states
        # some poll saw completed candidates while the job ran and more still to come
        total = done["progress"]["candidates_total"]
        assert any(0 < n < total for n in live), (live, total)
        assert done["progress"]["candidates_done"] == done["progress"]["candidates_total"] >= 2
        assert done["result"]["test_metrics"]["accuracy"] > 0.3
        assert done["started_at"] and done["finished_at"] and done["elapsed_s"] > 0
        cands = c.get(f"/api/v1/jobs/{job['id']}/candidates?sort=objective").json()
        assert cands["count"] == done["progress"]["candidates_total"]
        objectives = [x["objective"] for x in cands["data"]]
        assert objectives == sorted(objectives)
        for x in cands["data"]:
            assert x["state"] == "completed" and x["node"] and x["duration_s"] > 0
            assert x["objective"] == pytest.approx(x["loss"] + x["complexity"])
            assert {"family", "optimizer", "learning_rate"} <= set(x["hparams"])
        page = c.get(f"/api/v1/jobs/{job['id']}/candidates?limit=1&offset=1&sort=loss&order=desc")
        assert page.json()["count"] == cands["count"] and len(page.json()["data"]) == 1
        its = c.get(f"/api/v1/jobs/{job['id']}/iterations").json()
        assert [i["iteration"] for i in its["data"]] == list(range(its["count"]))
        events = [e["message"] for e in c.get(f"/api/v1/jobs/{job['id']}/events").json()["data"]]
        assert events[0] == "job queued" and events[-1] == "job succeeded"
        assert "job running" in events
        listed = c.get("/api/v1/jobs?state=succeeded").json()
        assert job["id"] in [j["id"] for j in listed["data"]]
        assert all(j["state"] == "succeeded" for j in listed["data"])
        # the list is a summary: every field of the job but its result (the report), which
        # only GET /jobs/{id} sends
        row = next(j for j in listed["data"] if j["id"] == job["id"])
        assert "result" not in row and row == {k: v for k, v in done.items() if k != "result"}
        metrics = c.get("/metrics").text
        completed = [x for x in cands["data"] if x["state"] == "completed"]
        trained = re.search(r'automl_candidates_trained_total\{state="completed"\} (\S+)', metrics)
        timed = re.search(r"automl_candidate_duration_seconds_count (\S+)", metrics)
        # read from the database: this job's candidates at least (the module's server is shared)
        assert trained and float(trained.group(1)) >= len(completed) > 0, metrics
        assert timed and float(timed.group(1)) >= len(completed), metrics
        assert (server.workdir / "artifacts" / "jobs" / job["id"] / "model.keras").is_file()
        # a finished job can be deleted, with its files
        assert c.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 409
        assert c.delete(f"/api/v1/jobs/{job['id']}").status_code == 204
        assert c.get(f"/api/v1/jobs/{job['id']}").status_code == 404
        assert not (server.workdir / "artifacts" / "jobs" / job["id"]).exists()


def test_cancel_a_running_job_then_resume_it(server: Server) -> None:
    spec = {**TINY, "max_iterations": 3, "epochs": 6, "seed": 11, "force_grow": True}
    with server.client() as c:
        job = c.post("/api/v1/jobs", json={"dataset": "digits", "spec": spec}).json()
        # wait until the first iteration is stored, then cancel mid-search
        for _ in range(600):
            its = c.get(f"/api/v1/jobs/{job['id']}/iterations").json()["count"]
            if its >= 1:
                break
            time.sleep(0.2)
        assert c.post(f"/api/v1/jobs/{job['id']}/cancel").json()["cancel_requested"]
        cancelled = wait_for(c, job["id"], {"cancelled", "succeeded", "failed"})
        assert cancelled["state"] == "cancelled", cancelled
        cands = c.get(f"/api/v1/jobs/{job['id']}/candidates?limit=500").json()["data"]
        assert not [x for x in cands if x["state"] in ("pending", "running")]
        stored_its = c.get(f"/api/v1/jobs/{job['id']}/iterations").json()["count"]
        kept = {x["name"] for x in cands if x["iteration"] < stored_its}
        assert kept and all(x["state"] == "completed" for x in cands if x["name"] in kept)
        assert c.post(f"/api/v1/jobs/{job['id']}/resume").status_code == 200
        assert c.post(f"/api/v1/jobs/{job['id']}/resume").status_code == 409  # already queued
        done = wait_for(c, job["id"], {"succeeded", "failed"})
        assert done["state"] == "succeeded", done["error"]
        final = c.get(f"/api/v1/jobs/{job['id']}/candidates?limit=500").json()["data"]
        names = [x["name"] for x in final]
        assert sorted(names) == [f"t{t}_c{i}" for t in range(3) for i in range(2)]
        assert kept <= set(names)
        assert all(x["state"] == "completed" for x in final)
        events = c.get(f"/api/v1/jobs/{job['id']}/events?limit=1000").json()["data"]
        messages = [e["message"] for e in events]
        assert "job cancelled" in messages and messages[-1] == "job succeeded"
        # trainings, not rows: the stored iterations' candidates were never trained again,
        # and after the resume each remaining candidate trained exactly once
        resumed_at = max(i for i, m in enumerate(messages) if m == "job running")
        for name in names:
            starts = [
                i
                for i, e in enumerate(events)
                if e["data"].get("candidate") == name and e["message"].endswith("started training")
            ]
            if name in kept:
                assert len(starts) == 1 and starts[0] < resumed_at, (name, starts)
            else:
                assert len([i for i in starts if i > resumed_at]) == 1, (name, starts)


def test_a_queued_job_cancels_at_once(server: Server) -> None:
    with server.client() as c:
        blocker = c.post("/api/v1/jobs", json={"dataset": "iris", "spec": TINY}).json()
        # the queued one has a time budget and no iteration count: the budget decides
        budgeted = {**TINY, "max_iterations": None, "time_budget_s": 60}
        queued = c.post("/api/v1/jobs", json={"dataset": "iris", "spec": budgeted}).json()
        assert queued["spec"]["max_iterations"] is None
        assert queued["progress"]["max_iterations"] is None
        assert queued["progress"]["time_budget_s"] == 60
        assert blocker["progress"]["max_iterations"] == 2
        # one job at a time: the controller runs the older one, the other stays queued
        r = c.post(f"/api/v1/jobs/{queued['id']}/cancel")
        assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
        assert r.json()["finished_at"] and not r.json()["cancel_requested"]
        assert c.post(f"/api/v1/jobs/{queued['id']}/cancel").status_code == 409
        wait_for(c, blocker["id"], {"succeeded", "failed"})
        # it never ran: no candidate, and it is still cancelled after the blocker finished
        assert c.get(f"/api/v1/jobs/{queued['id']}").json()["state"] == "cancelled"
        assert c.get(f"/api/v1/jobs/{queued['id']}/candidates").json()["count"] == 0


def test_resources_no_node_can_satisfy_fail_the_job_at_once(server: Server) -> None:
    with server.client() as c:
        for resources, message in [
            ({"gpus": 1}, "no node has a GPU"),
            ({"cpus": 64}, "the largest node has 2"),
        ]:
            job = c.post(
                "/api/v1/jobs", json={"dataset": "iris", "spec": {**TINY, "resources": resources}}
            ).json()
            failed = wait_for(c, job["id"], {"failed", "succeeded"}, timeout=60)
            assert failed["state"] == "failed" and message in failed["error"]


def test_consecutive_candidate_failures_fail_the_job_with_the_reason(server: Server) -> None:
    spec = {
        **TINY,
        "optimizers": ["sgd"],
        "learning_rate": {"low": 1e12, "high": 1e13, "log": True},
        "schedules": ["constant"],
        "dense": {"batch_norm": [False]},
        "max_consecutive_failures": 2,
    }
    with server.client() as c:
        job = c.post("/api/v1/jobs", json={"dataset": "iris", "spec": spec}).json()
        failed = wait_for(c, job["id"], {"failed", "succeeded"})
        assert failed["state"] == "failed"
        assert "2 candidates in a row failed" in failed["error"]
        cands = c.get(f"/api/v1/jobs/{job['id']}/candidates?state=failed").json()["data"]
        assert len(cands) == 2 and all("FloatingPointError" in x["error"] for x in cands)
        events = c.get(f"/api/v1/jobs/{job['id']}/events").json()["data"]
        assert any(e["kind"] == "error" and "diverged" in e["message"] for e in events)


def test_a_dataset_in_use_cannot_be_deleted(server: Server) -> None:
    with server.client() as c:
        ds = c.post(
            "/api/v1/datasets",
            files={"file": ("d.csv", csv_bytes(90))},
            data={"label": "direction"},
        ).json()
        job = c.post("/api/v1/jobs", json={"dataset_id": ds["id"], "spec": TINY}).json()
        r = c.delete(f"/api/v1/datasets/{ds['id']}")
        assert r.status_code == 409 and "used by 1 queued or running job" in r.json()["detail"]
        wait_for(c, job["id"], {"succeeded", "failed"})
        assert c.delete(f"/api/v1/datasets/{ds['id']}").status_code == 204
        assert json.loads(c.get(f"/api/v1/jobs/{job['id']}").text)["dataset_id"] is None


# ---- the model: download, card, predict ---------------------------------------------------------
def test_model_download_card_and_predict(server: Server) -> None:
    import zipfile

    from automl.data import load_builtin

    wine = load_builtin("wine")
    with server.client() as c:
        job = c.post("/api/v1/jobs", json={"dataset": "wine", "spec": {**TINY, "epochs": 6}}).json()
        early = c.post(f"/api/v1/jobs/{job['id']}/predict", json={"rows": [[0.0] * 13]})
        if early.status_code != 200:  # still queued or running
            assert early.status_code == 409 and "has no model yet" in early.json()["detail"]
        done = wait_for(c, job["id"], {"succeeded", "failed"})
        assert done["state"] == "succeeded", done["error"]
        assert done["result"]["evaluation"]["steps"][0]["step"] == "baseline"

        card = c.get(f"/api/v1/jobs/{job['id']}/model/card").json()
        assert card["task"] == "classification" and card["inputs"]["n_features"] == 13
        # the card is the file's, encoded once per version of the file: a rewritten card is
        # served at once, a non-finite number in it as null
        card_file = server.workdir / "artifacts" / "jobs" / job["id"] / "model_card.json"
        assert json.loads(card_file.read_text()) == card
        assert c.get(f"/api/v1/jobs/{job['id']}/model/card").json() == card
        rewritten = card_file.with_name("model_card.json.new")
        rewritten.write_text(json.dumps({**card, "note": "rewritten", "score": float("nan")}))
        os.replace(rewritten, card_file)
        again = c.get(f"/api/v1/jobs/{job['id']}/model/card")
        assert again.status_code == 200
        assert again.json() == {**card, "note": "rewritten", "score": None}
        card_file.write_text(json.dumps(card))  # in place, a different size
        assert c.get(f"/api/v1/jobs/{job['id']}/model/card").json() == card
        keras_file = c.get(f"/api/v1/jobs/{job['id']}/model?format=keras")
        assert keras_file.status_code == 200 and keras_file.content[:2] == b"PK"
        sm = c.get(f"/api/v1/jobs/{job['id']}/model?format=savedmodel")
        assert sm.status_code == 200 and sm.headers["content-type"] == "application/zip"
        assert "saved_model.pb" in zipfile.ZipFile(io.BytesIO(sm.content)).namelist()
        assert c.get(f"/api/v1/jobs/{job['id']}/model?format=onnx").status_code == 422

        rows = wine.x[:5].astype(float).tolist()  # raw features, as uploaded
        r = c.post(f"/api/v1/jobs/{job['id']}/predict", json={"rows": rows})
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        assert r.json()["count"] == 5
        for p in preds:
            assert p["label"] in ("class_0", "class_1", "class_2")
            assert sum(p["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
            assert p["label"] == max(p["probabilities"], key=p["probabilities"].get)

        for body, field, message in [
            ({"rows": [rows[0][:12]]}, "rows.0", "row 0 has 12 values; the model takes 13"),
            ({"rows": [rows[0], [*rows[1][:12], "x"]]}, "rows.1.12", "valid number"),
            ({"rows": []}, "rows", "at least 1"),
            ({"rows": [[True] * 13]}, "rows.0.0", "valid number"),
            ({"data": rows}, "data", "not a field"),
        ]:
            bad = c.post(f"/api/v1/jobs/{job['id']}/predict", json=body)
            assert bad.status_code == 422, (body, bad.text)
            assert any(
                e["field"] == field and message in e["message"] for e in bad.json()["errors"]
            ), bad.text
        missing = c.post(f"/api/v1/jobs/{'0' * 32}/predict", json={"rows": rows})
        assert missing.status_code == 404


def test_a_job_needing_other_resources_than_the_warm_workers_still_runs(server: Server) -> None:
    # the service keeps 1-CPU workers warm, holding both CPUs; a job whose candidates ask for
    # both CPUs must get them (idle workers of another shape make room) instead of waiting
    with server.client() as c:
        job = c.post(
            "/api/v1/jobs",
            json={"dataset": "iris", "spec": {**TINY, "resources": {"cpus": 2}}},
        ).json()
        done = wait_for(c, job["id"], {"succeeded", "failed"}, timeout=180)
        assert done["state"] == "succeeded", done["error"]
        cands = c.get(f"/api/v1/jobs/{job['id']}/candidates").json()["data"]
        assert len({x["node"] for x in cands}) == 1  # one 2-CPU worker fits on 2 cores
        # and the next default job gets 1-CPU workers back
        again = c.post("/api/v1/jobs", json={"dataset": "iris", "spec": TINY}).json()
        assert wait_for(c, again["id"], {"succeeded", "failed"}, timeout=180)["state"] == (
            "succeeded"
        )
