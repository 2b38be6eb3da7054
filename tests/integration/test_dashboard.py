"""The web dashboard in a real headless Chromium (Debian's, driven by Playwright) against the
real service (`automl serve` in a subprocess, SQLite, a real local Ray).

One server and one browser serve the whole module; the job submitted from the form in
``test_submit_from_the_form_and_watch_it_grow_live`` is the finished job later tests look at
(a test run on its own makes one through the API). Every wait is on a condition. A failed
test leaves a screenshot of each of its pages under its tmp dir and prints the path.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.integration.conftest import TINY, Server, wait_for

playwright_sync = pytest.importorskip("playwright.sync_api")
Page = playwright_sync.Page
expect = playwright_sync.expect

CHROMIUM = os.environ.get("AUTOML_TEST_CHROMIUM", "/usr/bin/chromium")
# what the form test submits (the finished job the later tests look at)
FORM_SPEC: dict[str, Any] = {
    **TINY,
    "epochs": 3,
    "seed": 3,
    "optimizers": ["rmsprop", "adam"],  # in the order the form lists them
    "evaluation": {"cv_folds": 2, "sparsities": [0.5], "fine_tune_epochs": 1, "grow": False},
}
FORM_GOAL = 1_000_000  # the size goal the form test types: every model here meets it
XSS = "<script>alert(1)</script>"
SHARED: dict[str, str] = {}  # the finished job, once the form test has made it
WAIT_MS = 120_000


# ---- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("dashboard")
    srv = Server(f"sqlite:///{workdir / 'automl.db'}", workdir).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("AUTOML_TEST_SKIP_BROWSER") == "1":
            pytest.skip(f"no browser at {CHROMIUM} and AUTOML_TEST_SKIP_BROWSER=1")
        pytest.fail(
            f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium "
            "(apt-get install chromium); AUTOML_TEST_SKIP_BROWSER=1 skips these tests explicitly"
        )
    with playwright_sync.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


class Browsing:
    """A browser context that records what a user would not see: console errors, uncaught
    exceptions and any request to another host (which is refused)."""

    def __init__(self, browser: Any, server: Server, color_scheme: str = "light") -> None:
        self.server = server
        self.context = browser.new_context(
            viewport={"width": 1366, "height": 900},
            color_scheme=color_scheme,
            accept_downloads=True,
            base_url=server.url,
        )
        self.context.set_default_timeout(30_000)
        self.console_errors: list[str] = []
        self.external: list[str] = []
        self.dialogs: list[str] = []

        def route(route: Any) -> None:
            url = route.request.url
            if url.startswith(server.url) or url.startswith(("data:", "blob:")):
                route.continue_()
            else:
                self.external.append(url)
                route.abort()

        self.context.route("**/*", route)
        self.pages: list[Any] = []

    def new_page(self) -> Any:
        page = self.context.new_page()
        page.on(
            "console",
            lambda m: (
                self.console_errors.append(f"{page.url}: {m.text}") if m.type == "error" else None
            ),
        )
        page.on("pageerror", lambda e: self.console_errors.append(f"{page.url}: {e}"))

        def dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.accept()

        page.on("dialog", dialog)
        self.pages.append(page)
        return page

    def sign_in(self, key: str) -> Any:
        page = self.new_page()
        page.goto("/signin")
        page.fill("#key", key)
        page.click("form[action='/signin'] button[type=submit]")
        page.wait_for_url("**/jobs")
        return page

    def assert_clean(self, *expected_statuses: int) -> None:
        """No console error, no request elsewhere. A page that answers a form with its error
        (401, 404, 422...) makes Chromium log the status: those the test caused are allowed."""
        allowed = [f"status of {code} " for code in expected_statuses]
        errors = [e for e in self.console_errors if not any(a in e for a in allowed)]
        assert errors == [], errors
        assert self.external == [], self.external


@pytest.fixture
def browsing(
    browser: Any, server: Server, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Browsing]:
    failed_before = request.session.testsfailed
    b = Browsing(browser, server)
    try:
        yield b
    finally:
        if request.session.testsfailed > failed_before:
            for i, page in enumerate(b.pages):
                if page.is_closed():
                    continue
                shot = tmp_path / f"failure-{i}.png"
                try:
                    page.screenshot(path=str(shot), full_page=True)
                    print(f"\nscreenshot of {page.url}: {shot}")
                except Exception as exc:  # noqa: BLE001 - the report matters more
                    print(f"\nno screenshot of {page.url}: {exc}")
        b.context.close()


@pytest.fixture
def page(browsing: Browsing, server: Server) -> Any:
    """A page signed in as the first key's owner."""
    assert server.first_key
    return browsing.sign_in(server.first_key)


def api(server: Server, key: str | None = None) -> httpx.Client:
    return server.client(key)


@pytest.fixture
def finished_job(server: Server) -> str:
    """The job the form test submitted, once it has finished (made through the API when that
    test did not run)."""
    with api(server) as c:
        if "finished" not in SHARED:
            # as the form sends it: with the size goal its field sets
            goal = {
                **FORM_SPEC["evaluation"],
                "max_nonzero_params": FORM_GOAL,
                "goal_search_sparsity": 0.25,
            }
            spec = {**FORM_SPEC, "evaluation": goal}
            job = c.post("/api/v1/jobs", json={"dataset": "iris", "spec": spec}).json()
            SHARED["finished"] = job["id"]
        done = wait_for(c, SHARED["finished"], {"succeeded", "failed"})
    assert done["state"] == "succeeded", done["error"]
    return SHARED["finished"]


def csv_bytes(rows: int = 60, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    y = np.where(x[:, 0] > 0.3, "up", "down")
    lines = ["a,b,c,direction"] + [f"{r[0]},{r[1]},{r[2]},{t}" for r, t in zip(x, y, strict=True)]
    return ("\n".join(lines) + "\n").encode()


def wait_js(page: Any, expression: str, arg: Any = None, timeout: float = WAIT_MS) -> None:
    """Wait until a JavaScript condition holds in the page. Playwright's wait_for_function
    polls by compiling the condition inside the page, which the dashboard's Content-Security-
    Policy (no 'unsafe-eval') forbids whenever the condition is not true at once; evaluate()
    runs through the debugging protocol instead, outside the page's CSP."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression, arg):
        assert time.monotonic() < deadline, (
            f"still false after {timeout / 1000:.0f} s: {expression}"
        )
        time.sleep(0.05)


def wait_plot(page: Any, plot_id: str, loads: int = 1) -> None:
    wait_js(
        page,
        "([id, n]) => Number(document.getElementById(id)?.dataset.loaded || 0) >= n",
        [plot_id, loads],
    )


def plot_traces(page: Any, plot_id: str) -> list[dict[str, Any]]:
    """The traces as drawn; ``customdata`` as candidate names (a point carries its name first
    when it carries more)."""
    result: list[dict[str, Any]] = page.evaluate(
        """id => (document.querySelector('#' + id + ' .plot-area').data || []).map(t => ({
               name: t.name, role: t.meta && t.meta.role, n: (t.x || []).length,
               x: t.x, y: t.y,
               customdata: (t.customdata || []).map(d => Array.isArray(d) ? d[0] : d)}))""",
        plot_id,
    )
    return result


# ---- sign in, sessions, CSRF ---------------------------------------------------------------------
def test_sign_in_sets_a_safe_session_and_sign_out_ends_it(
    browsing: Browsing, server: Server
) -> None:
    page = browsing.new_page()
    response = page.goto("/jobs/new")
    assert page.url.endswith("/signin?next=/jobs/new"), page.url
    assert response is not None and response.status == 200
    page.fill("#key", "aml_not-a-real-key")
    page.click("form[action='/signin'] button[type=submit]")
    expect(page.locator("[data-error-for=key]")).to_have_text("unknown or revoked API key")
    expect(page.locator("#key")).to_have_attribute("aria-invalid", "true")

    assert server.first_key
    page.fill("#key", server.first_key)
    page.click("form[action='/signin'] button[type=submit]")
    page.wait_for_url("**/jobs/new")  # back where the person was going
    cookie = next(c for c in browsing.context.cookies() if c["name"] == "automl_session")
    assert cookie["httpOnly"] and cookie["sameSite"] in ("Lax", "Strict")
    assert server.first_key not in cookie["value"]  # the key itself never sits in the browser
    assert "automl_session" not in page.evaluate("document.cookie")

    # a form post without this session's token, or from another site, changes nothing
    job = api(server).post("/api/v1/jobs", json={"dataset": "iris", "spec": TINY}).json()
    forged = page.request.post(f"/jobs/{job['id']}/cancel", form={"csrf": "forged"})
    assert forged.status == 403 and "security token" in forged.text()
    token = page.locator("form.signout input[name=csrf]").get_attribute("value")
    foreign = page.request.post(
        f"/jobs/{job['id']}/cancel", form={"csrf": token}, headers={"Origin": "https://evil.test"}
    )
    assert foreign.status == 403 and "another site" in foreign.text()
    with api(server) as c:
        assert c.get(f"/api/v1/jobs/{job['id']}").json()["cancel_requested"] is False
        # the cookie reads the JSON a page needs, but never writes through the API
        assert page.request.get(f"/api/v1/jobs/{job['id']}/plots/growth").status == 200
        assert page.request.post(f"/api/v1/jobs/{job['id']}/cancel").status == 401
        c.post(f"/api/v1/jobs/{job['id']}/cancel")

    page.click("form.signout button")
    page.wait_for_url("**/signin?notice=signed_out")
    assert not [c for c in browsing.context.cookies() if c["name"] == "automl_session"]
    page.goto("/jobs")
    assert "/signin" in page.url
    browsing.assert_clean(401)


# ---- datasets ----------------------------------------------------------------------------------
def _upload(page: Any, name: str, content: bytes, label: str = "", shown_name: str = "") -> None:
    page.set_input_files(
        "#u-file", files=[{"name": name, "mimeType": "text/csv", "buffer": content}]
    )
    page.fill("#u-label", label)
    page.fill("#u-name", shown_name)
    page.click("form[action='/datasets'] button[type=submit]")


def test_datasets_upload_list_refuse_escape_and_delete(page: Any, browsing: Browsing) -> None:
    page.goto("/datasets")
    _upload(page, "moves.csv", csv_bytes(80), label="direction", shown_name="moves")
    page.wait_for_url("**/datasets?notice=uploaded")
    row = page.locator("#datasets tbody tr", has=page.locator("th", has_text="moves"))
    expect(row).to_have_count(1)
    cells = row.locator("td")
    assert cells.nth(1).inner_text() == "80" and cells.nth(2).inner_text().startswith("3")
    assert cells.nth(3).inner_text().startswith("classification")
    bars = row.locator("ul.bars li")
    expect(bars).to_have_count(2)
    counts = [int(bars.nth(i).locator(".bar-value").inner_text()) for i in range(2)]
    assert sum(counts) == 80 and counts == sorted(counts, reverse=True)
    widths = [bars.nth(i).locator(".bar").evaluate("e => e.style.width") for i in range(2)]
    assert widths[0] == "100%" and 0 < float(widths[1].rstrip("%")) < 100

    # a name that is markup is shown as text, never run
    _upload(page, "x.csv", csv_bytes(40, seed=1), label="direction", shown_name=XSS)
    page.wait_for_url("**/datasets?notice=uploaded")
    expect(page.locator("th.dataset-name", has_text="alert(1)")).to_have_text(XSS)
    page.goto("/jobs/new")
    assert XSS in page.locator("#dataset").inner_text()
    assert browsing.dialogs == []

    # refused uploads: the reason next to its field, nothing stored
    page.goto("/datasets")
    before = page.locator("#datasets tbody tr").count()
    _upload(page, "bad.csv", csv_bytes(), label="nope")
    expect(page.locator("[data-error-for=file]")).to_contain_text("label column 'nope'")
    expect(page.locator("#u-file")).to_have_attribute("aria-invalid", "true")
    _upload(page, "bad.csv", csv_bytes(), label="")
    expect(page.locator("[data-error-for=label]")).to_contain_text("needs 'label'")
    assert page.locator("#datasets tbody tr").count() == before
    # over the 1 MB limit: the page says so before sending; the server refuses it as well
    big = b"a,y\n" + b"1,x\n" * 400_000
    _upload(page, "big.csv", big, label="y")
    expect(page.locator("#error-file-size")).to_contain_text("1 MB upload limit")
    token = page.locator("form.signout input[name=csrf]").get_attribute("value")
    refused = page.request.post(
        "/datasets",
        multipart={
            "csrf": token,
            "label": "y",
            "file": {"name": "big.csv", "mimeType": "text/csv", "buffer": big},
        },
    )
    assert refused.status == 413 and "upload limit" in refused.text()
    page.goto("/datasets")
    assert page.locator("#datasets tbody tr").count() == before

    # delete (after the confirmation dialog)
    row = page.locator("#datasets tbody tr", has=page.locator("th", has_text="moves"))
    row.locator("button.danger").click()
    page.wait_for_url("**/datasets?notice=dataset_deleted")
    expect(page.locator("#datasets th.dataset-name", has_text="moves")).to_have_count(0)
    assert browsing.dialogs == ["Delete this dataset?"]
    browsing.assert_clean(422)


# ---- the new-job form ----------------------------------------------------------------------------
def _api_message(server: Server, body: dict[str, Any], field: str) -> str:
    with api(server) as c:
        r = c.post("/api/v1/jobs", json=body)
    assert r.status_code == 422, r.text
    return next(e["message"] for e in r.json()["errors"] if e["field"] == field)


def test_a_bad_field_of_the_new_job_form_shows_the_apis_message(
    page: Any, server: Server, browsing: Browsing
) -> None:
    with api(server) as c:
        jobs_before = c.get("/api/v1/jobs").json()["count"]
    page.goto("/jobs/new")
    page.select_option("#dataset", "builtin:iris")
    page.fill("#f-epochs", "0")
    page.fill("#f-max_iterations", "2")
    page.fill("#f-spec", '{"optimizers": ["lion"]}')
    page.click("form.job-form button[type=submit]")
    expected = _api_message(server, {"dataset": "iris", "spec": {"epochs": 0}}, "spec.epochs")
    expect(page.locator("[data-error-for=epochs]")).to_have_text(expected)
    expect(page.locator("#f-epochs")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-epochs")).to_have_value("0")  # what was typed stays
    lion = _api_message(
        server, {"dataset": "iris", "spec": {"optimizers": ["lion"]}}, "spec.optimizers.0"
    )
    expect(page.locator("[data-error-for=spec]")).to_have_text(f"spec.optimizers.0: {lion}")
    expect(page.locator("[data-error-for=max_iterations]")).to_have_count(0)

    # the size goal, and the sparsity the search plans for with it (below 1), set fields of
    # the spec's evaluation object; each one's error shows beside it
    page.fill("#f-spec", "{}")
    for name, value in (("max_nonzero_params", 0), ("goal_search_sparsity", 1)):
        page.fill(f"#f-{name}", str(value))
        page.click("form.job-form button[type=submit]")
        message = _api_message(
            server,
            {"dataset": "iris", "spec": {"evaluation": {name: value}}},
            f"spec.evaluation.{name}",
        )
        expect(page.locator(f"[data-error-for={name}]")).to_have_text(message)
        expect(page.locator(f"#f-{name}")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("[data-error-for=epochs]")).to_have_text(expected)
        page.fill(f"#f-{name}", "")

    # a rule of the service (families that do not fit the data), next to the families
    page.fill("#f-epochs", "")
    page.fill("#f-spec", "{}")
    page.check("input[name=families][value=conv2d]")
    page.click("form.job-form button[type=submit]")
    expect(page.locator("[data-error-for=families]")).to_contain_text("does not apply to table")
    page.fill("#f-spec", "{nope")
    page.click("form.job-form button[type=submit]")
    expect(page.locator("[data-error-for=spec]")).to_contain_text("not valid JSON")
    with api(server) as c:
        assert c.get("/api/v1/jobs").json()["count"] == jobs_before
    browsing.assert_clean(422)


# ---- a job from the form, watched live ---------------------------------------------------------
# every request the page's script makes from here on, counted while in flight: a live page
# refreshes one thing at a time, never with overlapping requests
COUNT_FETCHES = """() => {
  window.__inflight = 0; window.__maxInflight = 0; window.__fetches = 0;
  const original = window.fetch;
  window.fetch = function (...args) {
    window.__fetches++;
    window.__maxInflight = Math.max(window.__maxInflight, ++window.__inflight);
    return original.apply(this, args).finally(() => { window.__inflight--; });
  };
}"""
WATCH_ROWS = """() => {
  window.__noReload = true;
  window.__rows = [];
  window.__completedAt = {};
  const record = () => {
    const rows = Array.from(document.querySelectorAll('#candidates tbody tr'));
    window.__rows.push(rows.length);
    rows.forEach(r => {
      if (r.querySelector('.cand-completed') && !(r.dataset.candidate in window.__completedAt))
        window.__completedAt[r.dataset.candidate] = Date.now();
    });
  };
  record();
  new MutationObserver(record).observe(document.getElementById('candidates-region'),
                                       {childList: true, subtree: true});
}"""
WATCH_GROWTH = """() => {
  window.__noReload = true;
  window.__growth = [];
  const card = document.getElementById('plot-growth');
  const record = () => {
    const data = card.querySelector('.plot-area').data || [];
    const chosen = data.find(t => t.meta && t.meta.role === 'chosen');
    window.__growth.push(chosen ? chosen.x.length : 0);
  };
  new MutationObserver(record).observe(card, {attributes: true, attributeFilter: ['data-loaded']});
}"""


def test_submit_from_the_form_and_watch_it_grow_live(
    page: Any, server: Server, browsing: Browsing
) -> None:
    page.goto("/jobs/new")
    page.select_option("#dataset", "builtin:iris")
    page.fill("#f-max_iterations", "2")
    page.fill("#f-candidates_per_iteration", "2")
    page.fill("#f-epochs", "3")
    page.check("input[name=optimizers][value=adam]")
    page.check("input[name=optimizers][value=rmsprop]")
    page.select_option("#f-evaluation", "on")
    page.fill("#f-max_nonzero_params", str(FORM_GOAL))
    page.fill("#f-goal_search_sparsity", "0.25")
    spec = {k: FORM_SPEC[k] for k in ("batch_size", "seed", "evaluation")}
    page.fill("#f-spec", json.dumps(spec))
    page.click("form.job-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/jobs/[0-9a-f]{32}$"))
    job_id = page.url.rsplit("/", 1)[1]
    SHARED["finished"] = job_id
    with api(server) as c:
        sent = c.get(f"/api/v1/jobs/{job_id}").json()
    assert sent["spec"]["epochs"] == 3 and sent["spec"]["optimizers"] == FORM_SPEC["optimizers"]
    assert sent["spec"]["evaluation"]["cv_folds"] == 2 and sent["dataset"] == "iris"
    # the form's size goal joined the JSON's evaluation object
    assert sent["spec"]["evaluation"]["max_nonzero_params"] == FORM_GOAL
    assert sent["spec"]["evaluation"]["goal_search_sparsity"] == 0.25

    # the overview (growth plot) here, the candidates table in a second tab
    wait_plot(page, "plot-growth")
    page.evaluate(WATCH_GROWTH)
    page.evaluate(COUNT_FETCHES)
    table = browsing.new_page()
    table.goto(f"/jobs/{job_id}?tab=candidates")
    table.evaluate(WATCH_ROWS)
    table.evaluate(COUNT_FETCHES)
    listing = browsing.new_page()  # and the jobs list, whose row follows the job
    listing.goto("/jobs")
    listing.evaluate("window.__noReload = true")

    expect(page.locator("[data-field=state]")).to_have_text("succeeded", timeout=240_000)
    expect(table.locator("[data-field=state]")).to_have_text("succeeded", timeout=30_000)
    for p in (page, table):  # the stream ended with the job; nothing reloaded the page
        wait_js(p, "document.body.dataset.streamState === 'ended'")
        assert p.evaluate("window.__noReload") is True
        wait_js(p, "window.__inflight === 0")
        assert p.evaluate("window.__fetches") > 2 and p.evaluate("window.__maxInflight") == 1
    row = listing.locator(f"tr[data-job-id='{job_id}']")
    expect(row.locator(".badge")).to_have_text("succeeded", timeout=30_000)
    expect(row.locator("td").nth(5)).to_contain_text("accuracy")  # its test metric arrived
    assert listing.evaluate("window.__noReload") is True
    wait_js(table, "document.querySelectorAll('#candidates tbody tr').length === 4")
    rows_seen = table.evaluate("window.__rows")
    assert rows_seen[0] < 4 and rows_seen[-1] == 4 and rows_seen == sorted(rows_seen), rows_seen
    wait_js(page, "window.__growth.length && window.__growth.at(-1) === 2")
    growth_seen = page.evaluate("window.__growth")
    assert growth_seen[0] < 2 and growth_seen == sorted(growth_seen), growth_seen

    # each finished candidate appeared in the open table within 2 s of being stored
    with api(server) as c:
        cands = c.get(f"/api/v1/jobs/{job_id}/candidates").json()["data"]
    shown_at = table.evaluate("window.__completedAt")
    late = {
        c["name"]: round(
            shown_at[c["name"]] / 1000 - datetime.fromisoformat(c["finished_at"]).timestamp(), 2
        )
        for c in cands
    }
    assert all(d < 2.0 for d in late.values()), late
    assert page.locator("#members tbody tr").count() >= 1  # the ensemble filled in live
    browsing.assert_clean()


# ---- the finished job ------------------------------------------------------------------------
def test_scatter_shows_every_candidate_and_a_click_opens_its_curves(
    page: Any, server: Server, finished_job: str, browsing: Browsing
) -> None:
    with api(server) as c:
        total = c.get(f"/api/v1/jobs/{finished_job}/candidates").json()["count"]
        pareto = c.get(f"/api/v1/jobs/{finished_job}/plots/loss_complexity").json()["meta"]
    page.goto(f"/jobs/{finished_job}?tab=analysis")
    wait_plot(page, "plot-scatter")
    wait_plot(page, "plot-hparams")
    points = page.locator("#plot-scatter .scatterlayer .point")
    expect(points).to_have_count(total)
    traces = plot_traces(page, "plot-scatter")
    chosen = next(t for t in traces if t["name"] == "chosen")
    with api(server) as c:
        rows = c.get(f"/api/v1/jobs/{finished_job}/candidates").json()["data"]
    assert sorted(chosen["customdata"]) == sorted(x["name"] for x in rows if x["chosen"])
    plotted = [n for t in traces if t["role"] == "candidates" for n in t["customdata"]]
    assert sorted(plotted) == sorted(x["name"] for x in rows)
    best = min(rows, key=lambda x: x["objective"])["name"]
    assert pareto["best"] == best
    expect(page.locator("#plot-scatter .annotation")).to_contain_text(f"lowest F: {best}")
    front = next(t for t in traces if t["role"] == "front")
    assert front["n"] == len(pareto["pareto"]) >= 1
    hp = plot_traces(page, "plot-hparams")
    assert {"learning_rate", "optimizer", "depth"} <= {t["name"] for t in hp}
    for name in ("learning_rate", "optimizer"):  # every candidate in each panel
        assert sum(t["n"] for t in hp if t["name"] == name) == total

    # a click on a point opens that candidate
    box = points.first.bounding_box()
    assert box
    name = next(t for t in traces if t["n"])["customdata"][0]
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_url(f"**/jobs/{finished_job}/candidates/*")
    opened = page.url.rsplit("/", 1)[1]
    assert re.fullmatch(r"t\d+_c\d+", opened) and opened in (name, *chosen["customdata"])
    wait_plot(page, "plot-curves")
    curves = {t["name"]: t for t in plot_traces(page, "plot-curves")}
    assert {"loss (training)", "loss (validation)", "accuracy (validation)"} <= set(curves)
    assert curves["loss (training)"]["x"] == [1, 2, 3]  # every epoch, from a Ray worker
    with api(server) as c:
        detail = c.get(f"/api/v1/jobs/{finished_job}/candidates/{opened}").json()
    assert curves["loss (validation)"]["y"] == pytest.approx(detail["history"]["val_loss"])
    assert detail["node"]  # trained on a Ray worker, which reported the history too
    browsing.assert_clean()


def test_candidates_table_sorts_filters_pages_and_exports_the_apis_rows(
    page: Any, server: Server, finished_job: str, browsing: Browsing
) -> None:
    page.goto(f"/jobs/{finished_job}?tab=candidates")
    page.click("#candidates thead a[data-key=sort-objective]")
    page.wait_for_url("**sort=objective&order=asc*")
    page.select_option("#f-size", "25")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**size=25*")
    f_values = page.locator("#candidates tbody tr td:nth-child(12)").all_inner_texts()
    assert [float(v) for v in f_values] == sorted(float(v) for v in f_values)
    expect(page.locator("#candidates thead th[aria-sort=ascending]")).to_contain_text("F")

    url = f"/jobs/{finished_job}?tab=candidates&sort=objective&order=desc&size=1&page=2"
    page.goto(url)
    expect(page.locator("#candidates tbody tr")).to_have_count(1)  # never more than a page
    expect(page.locator(".pagination")).to_contain_text("Page 2 of 4")
    second = page.locator("#candidates tbody th").inner_text()
    page.reload()  # the URL is the view
    assert page.locator("#candidates tbody th").inner_text() == second
    with api(server) as c:
        by_api = c.get(
            f"/api/v1/jobs/{finished_job}/candidates?sort=objective&order=desc&limit=1&offset=1"
        ).json()["data"]
    assert by_api[0]["name"] == second
    page.click(".pagination a[rel=next]")
    expect(page.locator(".pagination")).to_contain_text("Page 3 of 4")

    page.goto(f"/jobs/{finished_job}?tab=candidates")
    page.select_option("#f-iteration", "1")
    page.select_option("#f-family", "dense")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**family=dense*")
    iterations = page.locator("#candidates tbody tr td:nth-child(2)").all_inner_texts()
    assert iterations and set(iterations) == {"1"}
    assert "iteration=1" in page.url and "family=dense" in page.url

    with page.expect_download() as download:
        page.click("a[data-key=export]")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    with api(server) as c:
        same = c.get(f"/api/v1/jobs/{finished_job}/candidates?iteration=1").json()["data"]
    assert [r["name"] for r in rows] == [x["name"] for x in same]
    for r, x in zip(rows, same, strict=True):
        assert float(r["objective"]) == pytest.approx(x["objective"])
        assert r["hparams.family"] == x["hparams"]["family"] == "dense"
        assert json.loads(r["hparams"]) == x["hparams"]
    browsing.assert_clean()


def test_evaluation_tab_shows_steps_folds_and_the_kept_sparsity(
    page: Any, server: Server, finished_job: str, browsing: Browsing
) -> None:
    with api(server) as c:
        ev = c.get(f"/api/v1/jobs/{finished_job}").json()["result"]["evaluation"]
    page.goto(f"/jobs/{finished_job}?tab=evaluation")
    steps = page.locator("#evaluation-steps tbody tr")
    expect(steps).to_have_count(len(ev["steps"]))
    for i, step in enumerate(ev["steps"]):
        expect(steps.nth(i).locator("th")).to_have_text(step["step"])
        expect(steps.nth(i)).to_contain_text("✓ kept" if step["kept"] else "✗ not kept")
    # the size goal the form set, met, said above the table
    goal = ev["steps"][-1]
    assert goal["step"] == "size_goal" and goal["details"]["met"] is True
    expect(page.locator("#size-goal")).to_have_text(
        f"A size goal of {FORM_GOAL:,} non-zero parameters outranks these rules: met "
        f"({goal['nonzero_params']:,})."
    )
    # the tolerances' own choice beside the goal's, and every option the goal weighed, the
    # chosen one marked
    details = goal["details"]
    rules = (
        f"sparsity {details['tolerance_sparsity']:g}"
        if details["tolerance_sparsity"]
        else "the dense model"
    )
    same = "another model" if goal["kept"] else "the same"
    expect(page.locator("#size-goal-rules")).to_have_text(
        f"The rules alone kept {rules} ({details['nonzero_before']:,}); the goal kept {same}."
    )
    options = page.locator("#size-goal-options tbody tr")
    assert len(details["options"]) >= 2  # the dense model and at least one level
    expect(options).to_have_count(len(details["options"]))
    chosen = page.locator("#size-goal-options tbody tr.kept")
    expect(chosen).to_have_count(1)
    level = details["sparsity"]
    expect(chosen.locator("th")).to_have_text(f"{level:g}" if level else "dense")
    expect(chosen).to_contain_text("✓ chosen")
    for i, option in enumerate(details["options"]):
        expect(options.nth(i).locator("td").nth(2)).to_have_text(f"{option['nonzero_params']:,}")
    if ev["cross_validation"]:
        cv = ev["cross_validation"]
        expect(page.locator("#cv-folds tbody tr")).to_have_count(cv["folds"])
        expect(page.locator("#cv-title + p")).to_contain_text("±")
    wait_plot(page, "plot-sparsity")
    traces = plot_traces(page, "plot-sparsity")
    kept = next(t for t in traces if t["name"].startswith("kept"))
    assert kept["x"] == [ev["sparsity"]]
    browsing.assert_clean()


def test_model_downloads_and_predictions_from_the_form(
    page: Any, server: Server, finished_job: str, browsing: Browsing
) -> None:
    page.goto(f"/jobs/{finished_job}?tab=model")
    expect(page.locator("#card-title")).to_be_visible()
    # the test metrics beside the majority-class baseline, per class and the confusion matrix,
    # as the job's result has them
    with api(server) as c:
        result = c.get(f"/api/v1/jobs/{finished_job}").json()["result"]
    metrics = page.locator("#test-metrics tbody tr")
    balanced = metrics.filter(has_text="balanced accuracy").locator("td")
    assert float(balanced.nth(0).inner_text()) == pytest.approx(
        result["test_metrics"]["balanced_accuracy"], abs=1e-3
    )
    assert float(balanced.nth(1).inner_text()) == pytest.approx(
        result["baseline_test_metrics"]["balanced_accuracy"], abs=1e-3
    )
    expect(page.locator("#per-class tbody tr")).to_have_count(3)  # iris
    expect(page.locator("#confusion-matrix tbody tr")).to_have_count(3)
    with page.expect_download() as keras_file:
        page.click("a[data-key=download-keras]")
    assert Path(keras_file.value.path()).read_bytes()[:2] == b"PK"
    assert keras_file.value.suggested_filename.endswith(".keras")
    with page.expect_download() as savedmodel:
        page.click("a[data-key=download-savedmodel]")
    assert "saved_model.pb" in zipfile.ZipFile(savedmodel.value.path()).namelist()

    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
    text = "sepal l,sepal w,petal l,petal w\n" + "\n".join(",".join(map(str, r)) for r in rows)
    page.fill("#predict-rows", text)
    page.click("form[action$='/predict'] button[type=submit]")
    table = page.locator("#predictions tbody tr")
    expect(table).to_have_count(3)
    with api(server) as c:
        by_api = c.post(f"/api/v1/jobs/{finished_job}/predict", json={"rows": rows}).json()
    for i, p in enumerate(by_api["predictions"]):
        cells = table.nth(i).locator("td")
        assert cells.nth(0).inner_text() == p["label"]
        shown = [float(cells.nth(j + 1).inner_text()) for j in range(len(p["probabilities"]))]
        assert shown == pytest.approx(list(p["probabilities"].values()), abs=1e-3)
    # the same rows as a file
    page.set_input_files(
        "#predict-file",
        files=[{"name": "rows.csv", "mimeType": "text/csv", "buffer": text.encode()}],
    )
    page.fill("#predict-rows", "")
    page.click("form[action$='/predict'] button[type=submit]")
    expect(page.locator("#predictions tbody tr")).to_have_count(3)
    assert page.locator("#predictions tbody tr td.label").all_inner_texts() == [
        p["label"] for p in by_api["predictions"]
    ]
    page.fill("#predict-rows", "5.1,3.5,x,0.2")
    page.click("form[action$='/predict'] button[type=submit]")
    # the API's own message for the cell (rows.0.2): the form and the API judge cells alike
    expect(page.locator("[data-error-for=rows]")).to_contain_text(
        "row 0, column 2: 'x' — Input should be a valid number"
    )
    page.fill("#predict-rows", "5.1,3.5")
    page.click("form[action$='/predict'] button[type=submit]")
    expect(page.locator("[data-error-for=rows]")).to_contain_text("the model takes 4")
    browsing.assert_clean(422)


# ---- a running job: cancel, resume, delete; an empty job ----------------------------------------
def test_cancel_resume_and_delete_from_the_buttons_while_it_runs(
    page: Any, server: Server, browsing: Browsing
) -> None:
    spec = {**TINY, "max_iterations": 3, "epochs": 8, "seed": 5, "force_grow": True}
    with api(server) as c:
        job = c.post("/api/v1/jobs", json={"dataset": "iris", "spec": spec}).json()
        empty = c.post("/api/v1/jobs", json={"dataset": "wine", "spec": TINY}).json()
    page.goto(f"/jobs/{job['id']}")
    expect(page.locator("[data-field=state]")).to_have_text("running", timeout=WAIT_MS)
    expect(page.locator("[data-field=candidates]")).not_to_have_text(
        re.compile(r"^0 of"), timeout=WAIT_MS
    )
    # a running job's pages, and the queued (empty) one behind it, are clean and accessible
    for url in (
        f"/jobs/{job['id']}",
        f"/jobs/{job['id']}?tab=candidates",
        f"/jobs/{job['id']}?tab=analysis",
        f"/jobs/{empty['id']}",
        f"/jobs/{empty['id']}?tab=candidates",
    ):
        check_page(page, url)
    expect(page.locator(".empty")).to_contain_text("No candidates yet")
    # the empty job is cancelled while it still waits: it ends without a candidate
    page.goto(f"/jobs/{empty['id']}")
    expect(page.locator("[data-field=state]")).to_have_text("queued")
    page.click("form[data-action=cancel] button")
    page.wait_for_url("**notice=cancelled")
    expect(page.locator("[data-field=state]")).to_have_text("cancelled")
    SHARED["empty"] = empty["id"]

    page.goto(f"/jobs/{job['id']}")
    page.click("form[data-action=cancel] button")
    page.wait_for_url("**notice=cancel_requested")
    expect(page.locator("[data-field=state]")).to_have_text("cancelled", timeout=WAIT_MS)
    expect(page.locator("form[data-action=cancel]")).to_be_hidden()
    page.click("form[data-action=resume] button")
    page.wait_for_url("**notice=resumed")
    expect(page.locator("[data-field=state]")).to_have_text(re.compile("queued|running"))
    expect(page.locator("[data-field=state]")).to_have_text("running", timeout=WAIT_MS)
    page.click("form[data-action=cancel] button")
    # the cancel's own page loads before the next click: the stream can show "cancelled" on the
    # old page first, and a delete sent then would make the cancel's redirect a 404
    page.wait_for_url("**notice=cancel_requested")
    expect(page.locator("[data-field=state]")).to_have_text("cancelled", timeout=WAIT_MS)
    page.click("form[data-action=delete] button")
    page.wait_for_url("**/jobs?notice=deleted")
    expect(page.locator(f"tr[data-job-id='{job['id']}']")).to_have_count(0)
    assert browsing.dialogs == ["Delete this job, its candidates and its model?"]
    # the job's own page may still have been reloading itself (its state had just changed) when
    # the delete landed: that reload is a 404 for the deleted job, which the test caused; any
    # other error, or a 404 for anything else, still fails
    gone = f"/jobs/{job['id']}"
    browsing.console_errors = [
        e
        for e in browsing.console_errors
        if not (e.split(": ", 1)[0].split("?")[0].endswith(gone) and "status of 404" in e)
    ]
    browsing.assert_clean()


def test_a_failed_job_shows_its_error_and_offers_resume(
    page: Any, server: Server, browsing: Browsing
) -> None:
    spec = {**TINY, "resources": {"gpus": 1}}
    with api(server) as c:
        job = c.post("/api/v1/jobs", json={"dataset": "iris", "spec": spec}).json()
        wait_for(c, job["id"], {"failed"}, timeout=120)
    SHARED["failed"] = job["id"]
    page.goto(f"/jobs/{job['id']}")
    expect(page.locator("[data-field=state]")).to_have_text("failed")
    expect(page.locator("[data-field=error]")).to_contain_text("no node has a GPU")
    expect(page.locator("form[data-action=resume]")).to_be_visible()
    expect(page.locator("form[data-action=cancel]")).to_be_hidden()
    assert page.evaluate("document.body.dataset.stream") is None  # a finished job: no stream
    browsing.assert_clean()


def test_another_owners_job_is_a_404_page(
    browsing: Browsing, server: Server, finished_job: str
) -> None:
    bob = browsing.sign_in(server.create_key("bob"))
    for url in (
        f"/jobs/{finished_job}",
        f"/jobs/{finished_job}?tab=model",
        f"/jobs/{finished_job}/candidates/t0_c0",
        f"/jobs/{finished_job}/download/keras",
    ):
        response = bob.goto(url)
        assert response is not None and response.status == 404, url
        expect(bob.locator("h1")).to_have_text("Not found")
        expect(bob.locator(".error-message")).to_contain_text("not found")
    assert bob.request.get(f"/api/v1/jobs/{finished_job}/plots/growth").status == 404
    bob.goto("/jobs")
    expect(bob.locator(".empty")).to_contain_text("No jobs")
    token = bob.locator("form.signout input[name=csrf]").get_attribute("value")
    assert bob.request.post(f"/jobs/{finished_job}/delete", form={"csrf": token}).status == 404
    with api(server) as c:
        assert c.get(f"/api/v1/jobs/{finished_job}").status_code == 200
    browsing.assert_clean(404)


# ---- every page: clean, accessible, reachable by keyboard --------------------------------------
SEVERE = ("serious", "critical")
FOCUSABLE = """() => Array.from(document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]'))
  .filter(e => e.tabIndex >= 0 && !e.disabled && e.getClientRects().length
               && getComputedStyle(e).visibility !== 'hidden')
  .map((e, i) => { e.dataset.kb = String(i); return i; }).length"""


def check_page(page: Any, url: str, keyboard: bool = True) -> None:
    """Load ``url``; wait for its plots; no serious or critical axe violation; every control
    reachable with Tab."""
    from axe_playwright_python.sync_playwright import Axe

    response = page.goto(url)
    assert response is not None and response.status == 200, (url, response and response.status)
    wait_js(
        page,
        "() => Array.from(document.querySelectorAll('[data-plot]'))"
        ".every(p => Number(p.dataset.loaded || 0) >= 1)",
    )
    results = Axe().run(page)
    severe = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in SEVERE
    ]
    assert severe == [], (url, severe)
    if not keyboard:
        return
    total = page.evaluate(FOCUSABLE)
    reached: set[str] = set()
    page.evaluate("document.activeElement && document.activeElement.blur()")
    # a live page can redraw a region or a plot during the walk (a running job): the budget
    # allows the walk to start over; a control that Tab cannot reach is never reached at all
    for _ in range(3 * total + 20):
        page.keyboard.press("Tab")
        kb = page.evaluate("document.activeElement && document.activeElement.dataset.kb")
        if kb is not None:
            reached.add(kb)
        if len(reached) == total:
            break
    missing = page.evaluate(
        "r => Array.from(document.querySelectorAll('[data-kb]'))"
        ".filter(e => !r.includes(e.dataset.kb)).map(e => e.outerHTML.slice(0, 120))",
        sorted(reached),
    )
    assert not missing, (url, missing)


def test_every_page_is_clean_accessible_and_reachable_by_keyboard(
    page: Any, browsing: Browsing, finished_job: str
) -> None:
    urls = [
        "/jobs",
        "/jobs?state=succeeded",
        "/jobs/new",
        "/datasets",
        f"/compare?jobs={finished_job}",
        *(
            f"/jobs/{finished_job}?tab={tab}"
            for tab in ("overview", "candidates", "analysis", "evaluation", "model", "events")
        ),
        f"/jobs/{finished_job}/candidates/t0_c0",
    ]
    urls += [f"/jobs/{SHARED[k]}" for k in ("failed", "empty") if k in SHARED]
    for url in urls:
        check_page(page, url)
    # signed out: the sign-in page
    other = browsing.new_page()
    browsing.context.clear_cookies()
    check_page(other, "/signin")
    browsing.assert_clean()


def test_the_dark_scheme_is_readable_and_plots_download_as_png(
    browser: Any, server: Server, finished_job: str, tmp_path: Path
) -> None:
    dark = Browsing(browser, server, color_scheme="dark")
    try:
        assert server.first_key
        page = dark.sign_in(server.first_key)
        check_page(page, f"/jobs/{finished_job}", keyboard=False)
        check_page(page, "/datasets", keyboard=False)
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        r, g, b = (int(v) for v in re.findall(r"\d+", background)[:3])
        assert r + g + b < 150, background
        page.goto(f"/jobs/{finished_job}")
        wait_plot(page, "plot-growth")
        font = page.evaluate(
            "document.querySelector('#plot-growth .plot-area')._fullLayout.font.color"
        )
        assert font.lower() not in ("#444", "#444444", "rgb(68, 68, 68)"), font
        with page.expect_download() as png:
            page.click("button[data-png=plot-growth]")
        assert png.value.suggested_filename == "plot-growth.png"
        assert Path(png.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        dark.assert_clean()
    except BaseException:
        for i, p in enumerate(dark.pages):
            shot = tmp_path / f"failure-dark-{i}.png"
            p.screenshot(path=str(shot), full_page=True)
            print(f"\nscreenshot of {p.url}: {shot}")
        raise
    finally:
        dark.context.close()


def test_compare_two_jobs_side_by_side(
    page: Any, server: Server, finished_job: str, browsing: Browsing
) -> None:
    with api(server) as c:
        other = c.post("/api/v1/jobs", json={"dataset": "iris", "spec": {**TINY, "seed": 9}})
        other_id = other.json()["id"]
        wait_for(c, other_id, {"succeeded", "failed"})
    page.goto("/compare")
    page.check(f"input[name=jobs][value='{finished_job}']")
    page.check(f"input[name=jobs][value='{other_id}']")
    page.click("form[action='/compare'] button[type=submit]")
    page.wait_for_url("**/compare?jobs=*")
    wait_plot(page, "plot-compare")
    traces = plot_traces(page, "plot-compare")
    assert len(traces) == 2 and all(t["n"] >= 1 for t in traces)
    expect(page.locator("#compare tbody tr")).to_have_count(2)
    page.reload()  # the URL names the compared jobs
    expect(page.locator("#compare tbody tr")).to_have_count(2)
    browsing.assert_clean()


def test_docs_work_offline(page: Any, browsing: Browsing) -> None:
    page.goto("/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/jobs/{job_id}/plots/growth")
    browsing.assert_clean()
