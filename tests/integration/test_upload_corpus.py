"""The upload corpus (tests/data/corpus, manifest expected.json) through a real server and through
``automl data check``: what is accepted reads as expected; what is refused gets its status and an
actionable message, and leaves no row and no file. Then hostile file and dataset names: whatever
they say, nothing is written outside the artifact directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.data.corpus import make_corpus
from tests.integration.conftest import (
    BACKENDS,
    POSTGRES_ADMIN_URL,
    Server,
    drop_postgres_db,
    make_postgres_db,
)

CORPUS = Path(make_corpus.__file__).parent
SMALL: dict[str, dict[str, Any]] = json.loads((CORPUS / make_corpus.MANIFEST).read_text("utf-8"))
LIMIT_MB = 4
LIMIT = LIMIT_MB << 20
BOMB_MIB = 3584  # x.npy inflates to 3.5 GiB from 3.7 MB: under the upload limit
LARGE_NAMES = ["wide_10000_columns.csv", "at_limit.csv", "over_limit_by_one_byte.csv", "bomb.npz"]
ALL_NAMES = [*SMALL, *LARGE_NAMES]
ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Every corpus file: its path and its manifest entry; the large ones written here."""
    large_dir = tmp_path_factory.mktemp("corpus-large")
    large = make_corpus.write_large(large_dir, LIMIT, BOMB_MIB)
    assert sorted(large) == sorted(LARGE_NAMES)
    files = {name: (CORPUS / name, entry) for name, entry in SMALL.items()}
    files.update({name: (large_dir / name, entry) for name, entry in large.items()})
    return files


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The service without a controller (these tests only upload), in a folder of its own
    inside a sentinel folder: nothing may ever be written next to it."""
    sentinel = tmp_path_factory.mktemp(f"sentinel-{request.param}")
    workdir = sentinel / "srv"
    workdir.mkdir()
    name = None
    if request.param == "sqlite":
        url = f"sqlite:///{workdir / 'automl.db'}"
    else:
        admin = request.getfixturevalue("postgres_admin")
        url, name = make_postgres_db(admin)
    env = {
        "AUTOML_EXECUTOR": "in_process",
        "AUTOML_RUN_CONTROLLER": "false",
        "AUTOML_MAX_UPLOAD_MB": str(LIMIT_MB),
    }
    srv = Server(url, workdir, extra_env=env).start()
    try:
        yield srv
    finally:
        srv.stop()
        if name:
            drop_postgres_db(POSTGRES_ADMIN_URL, name)


def stored(server: Server) -> tuple[int, list[str]]:
    """The datasets the API lists and the files under the artifact directory's uploads."""
    with server.client() as c:
        count = c.get("/api/v1/datasets", params={"limit": 500}).json()["count"]
    root = server.workdir / "artifacts" / "datasets"
    return count, sorted(p.name for p in root.glob("*")) if root.is_dir() else []


def outside_files(server: Server) -> list[str]:
    """Everything in the sentinel folder that is not the server's own folder."""
    return sorted(p.name for p in server.workdir.parent.iterdir() if p != server.workdir)


def peak_rss_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def _expected(entry: dict[str, Any], interface: str) -> Any:
    return entry.get(interface, entry["expect"]) if interface == "cli" else entry["expect"]


# ---- the corpus files are what make_corpus.py makes ---------------------------------------------
def test_the_checked_in_corpus_is_what_the_script_writes(tmp_path: Path) -> None:
    written = make_corpus.write_small(tmp_path)
    for path in written:
        assert (CORPUS / path.name).read_bytes() == path.read_bytes(), path.name
    checked_in = {p.name for p in CORPUS.iterdir() if p.suffix in (".csv", ".npz", ".json")}
    assert checked_in == {p.name for p in written}


# ---- over HTTP ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ALL_NAMES)
def test_a_corpus_file_is_accepted_or_refused_with_an_actionable_message(
    server: Server, corpus: dict[str, tuple[Path, dict[str, Any]]], name: str
) -> None:
    path, entry = corpus[name]
    expect = _expected(entry, "api")
    before = stored(server)
    assert server.proc is not None
    peak_before = peak_rss_mib(server.proc.pid)
    with server.client() as c:
        r = c.post(
            "/api/v1/datasets", files={"file": (name, path.read_bytes())}, data=entry["form"]
        )
        if expect == "accepted":
            assert r.status_code == 201, r.text
            ds = r.json()
            if "rows" in entry:
                assert (ds["rows"], ds["features"]) == (entry["rows"], entry["features"])
            assert c.get(f"/api/v1/datasets/{ds['id']}").json() == ds
            assert stored(server)[0] == before[0] + 1
            assert c.delete(f"/api/v1/datasets/{ds['id']}").status_code == 204
        else:
            assert r.status_code == expect["status"], r.text
            body = r.json()
            assert expect["message"] in body["detail"], body
            assert body["errors"] == [{"field": "file", "message": body["detail"]}]
    assert stored(server) == before
    assert outside_files(server) == []
    if name == "bomb.npz":
        # nothing was inflated: the peak stays far below the 3.5 GiB the archive holds
        assert peak_rss_mib(server.proc.pid) - peak_before < 100
        assert peak_rss_mib(server.proc.pid) < BOMB_MIB // 4


def test_what_a_table_reads_as(server: Server) -> None:
    """The accepted files' particulars: the BOM is not part of the first name, quoted commas
    stay inside their value, non-ASCII names are kept, text is a categorical column."""
    expected = {
        "bom.csv": ({"label": "a"}, [("b", "numeric"), ("label", "categorical")]),
        "quoted.csv": ({"label": "label"}, [("name", "categorical"), ("a", "numeric")]),
        "non_ascii_names.csv": (
            {"label": "étiquette"},
            [("température", "numeric"), ("高さ", "numeric")],
        ),
        "text_feature.csv": ({"label": "label"}, [("city", "categorical"), ("a", "numeric")]),
        "nan_features.csv": ({"label": "label"}, [("a", "numeric"), ("b", "numeric")]),
    }
    with server.client() as c:
        for name, (form, columns) in expected.items():
            r = c.post(
                "/api/v1/datasets", files={"file": (name, (CORPUS / name).read_bytes())}, data=form
            )
            assert r.status_code == 201, r.text
            ds = r.json()
            assert [(col["name"], col["type"]) for col in ds["columns"]] == columns, name
            if name == "quoted.csv":
                assert ds["columns"][0]["distinct"] == 3  # "Smith, John" is one value
            if name == "nan_features.csv":
                assert ds["columns"][0]["missing_rate"] == pytest.approx(1 / 30, abs=1e-4)
            c.delete(f"/api/v1/datasets/{ds['id']}")


# ---- through the CLI: `automl data check` -------------------------------------------------------
def _cli_args(path: Path, entry: dict[str, Any]) -> list[str]:
    form = entry["form"]
    args = ["data", "check"]
    args += ["--npz", str(path)] if path.suffix == ".npz" else ["--csv", str(path)]
    if "label" in form:
        args += ["--label", form["label"]]
    if "task" in form:
        args += ["--task", form["task"]]
    return args


@pytest.mark.parametrize("name", [n for n in ALL_NAMES if n != "bomb.npz"])
def test_the_cli_reads_a_corpus_file_as_a_search_would(
    corpus: dict[str, tuple[Path, dict[str, Any]]], name: str
) -> None:
    """In process (the CLI's own app, as the console script runs it): exit 0 and the rows and
    features read, or exit 2 and the same message as the API's."""
    from api.cli import app

    path, entry = corpus[name]
    expect = _expected(entry, "cli")
    result = CliRunner().invoke(app, _cli_args(path, entry))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if expect == "accepted":
        assert result.exit_code == 0, result.output
        if "rows" in entry:
            assert f"{entry['rows']} rows · {entry['features']} features" in result.stdout
    else:
        assert result.exit_code == 2, result.output
        assert expect["message"] in " ".join(result.stderr.split()), result.stderr


def test_the_cli_refuses_the_zip_bomb_without_inflating_it(
    corpus: dict[str, tuple[Path, dict[str, Any]]],
) -> None:
    """A real process, its peak memory read by a parent that ran nothing else."""
    path, entry = corpus["bomb.npz"]
    measure = (
        "import resource, subprocess, sys; "
        "code = subprocess.run(sys.argv[1:]).returncode; "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, file=sys.stderr); "
        "sys.exit(code)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", measure, sys.executable, "-m", "api.cli", *_cli_args(path, entry)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, COLUMNS="200"),
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    *message, peak_mib = proc.stderr.strip().splitlines()
    assert "once decompressed" in " ".join(" ".join(message).split())
    assert "Traceback" not in proc.stderr
    assert int(peak_mib) < BOMB_MIB // 4, f"the CLI peaked at {peak_mib} MiB"


# ---- hostile file and dataset names --------------------------------------------------------------
GOOD = (CORPUS / "crlf.csv").read_bytes()


@pytest.mark.parametrize(
    ("filename", "name", "stored_name"),
    [
        ("../../etc/passwd.csv", None, "passwd"),
        ("a/../../b.csv", None, "b"),
        ("..\\..\\windows\\win.ini.csv", None, "..\\..\\windows\\win.ini"),
        ("/etc/cron.d/evil.csv", None, "evil"),
        ("x" * 4000 + ".csv", None, "x" * 200),
        ("d.csv", "../../../../tmp/escaped", "../../../../tmp/escaped"),
        ("d.csv", "/etc/passwd", "/etc/passwd"),
    ],
)
def test_a_hostile_path_is_only_a_name_and_nothing_is_written_outside(
    server: Server, filename: str, name: str | None, stored_name: str
) -> None:
    before = stored(server)
    data = {"label": "label", **({"name": name} if name else {})}
    with server.client() as c:
        r = c.post("/api/v1/datasets", files={"file": (filename, GOOD)}, data=data)
        assert r.status_code == 201, r.text
        ds = r.json()
        assert ds["name"] == stored_name
        # the file is stored under the server's id, in the artifact directory's uploads
        assert stored(server)[1] == sorted([*before[1], f"{ds['id']}.csv"])
        assert outside_files(server) == []
        assert c.delete(f"/api/v1/datasets/{ds['id']}").status_code == 204
    assert stored(server) == before


def _raw_multipart(filename: str, fields: dict[str, str]) -> tuple[bytes, str]:
    """A multipart body written by hand: httpx would percent-encode a NUL in a file name."""
    boundary = "corpus-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"'
        "\r\nContent-Type: text/csv\r\n\r\n".encode()
        + GOOD
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize(
    ("filename", "data", "status", "field", "phrase"),
    [
        ("d\x00.csv", {"label": "label"}, 422, "file", "NUL"),
        ("d\x00/../../../x.csv", {"label": "label"}, 422, "file", "NUL"),
        ("d.csv", {"label": "label", "name": "a\x00b"}, 422, "name", "NUL"),
        ("d.csv", {"label": "la\x00bel"}, 422, "label", "NUL"),
        ("d.csv", {"label": "label", "task": "regression\x00"}, 422, "task", "NUL"),
        ("d.csv", {"label": "label", "name": "n" * 201}, 422, "name", "at most 200"),
        # past python-multipart's 4 KiB part-header limit: Starlette's own 400, still no file
        ("x" * 5000 + ".csv", {"label": "label"}, 400, None, "Invalid multipart data"),
        ("../../etc/passwd", {"label": "label"}, 422, "file", "neither .csv nor .npz"),
    ],
)
def test_a_bad_name_is_a_4xx_naming_its_field(
    server: Server,
    filename: str,
    data: dict[str, str],
    status: int,
    field: str | None,
    phrase: str,
) -> None:
    before = stored(server)
    content, content_type = _raw_multipart(filename, data)
    with server.client() as c:
        r = c.post("/api/v1/datasets", content=content, headers={"Content-Type": content_type})
    assert r.status_code == status, r.text
    body = r.json()
    assert [e["field"] for e in body.get("errors", [])] == ([field] if field else []), body
    assert phrase in body["detail"], body
    assert stored(server) == before
    assert outside_files(server) == []
