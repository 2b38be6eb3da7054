"""One settings object, read from ``AUTOML_*`` environment variables, with defaults that run
locally: a SQLite file in the working directory and a local Ray bound to 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTOML_", extra="ignore")

    database_url: str = Field("sqlite:///./automl.db", description="SQLAlchemy URL")
    max_requests_in_flight: int = Field(
        4,
        ge=1,
        le=24,
        description="requests other than reads and uploads (job submissions, cancels, "
        "predictions...) one HTTP process handles at once; more wait their turn, first come "
        "first served (with max_reads_in_flight and max_uploads_in_flight, at most 40 — the "
        "threads sync routes run on — so a burst cannot deadlock threads against pooled "
        "database connections)",
    )
    max_reads_in_flight: int = Field(
        4,
        ge=1,
        le=8,
        description="reads (GET, HEAD) one HTTP process handles at once, apart from the other "
        "requests' max_requests_in_flight, so a slow upload never holds a read's place",
    )
    max_uploads_in_flight: int = Field(
        4,
        ge=1,
        le=8,
        description="uploads (a multipart form, or a body over 64 KiB or of unknown length) one "
        "HTTP process receives at once, apart from the other requests: an upload holds its "
        "place while its body arrives, so slow uploads never hold a job submission's",
    )
    db_pool_timeout_s: float = Field(
        30.0,
        gt=0,
        le=600,
        description="seconds a request waits for a pooled database connection when all are in "
        "use; then it is answered 503 with Retry-After",
    )
    artifact_dir: Path = Field(Path("./artifacts"), description="models, uploads, member weights")
    ray_address: str | None = Field(
        None, description="join this Ray cluster (HOST:PORT); default: start a local one"
    )
    ray_num_cpus: int | None = Field(None, ge=1, description="CPUs of the local Ray (default: all)")
    executor: str = Field("ray", description="ray, or in_process (no Ray at all)")
    max_concurrent_jobs: int = Field(1, ge=1, le=64)
    max_upload_mb: float = Field(50.0, gt=0)
    max_jobs_per_owner: int = Field(
        20,
        ge=1,
        description="queued, running and evaluating jobs one owner may have at once; creating "
        "or resuming one more is refused with 429 and Retry-After",
    )
    max_upload_mb_per_day: float = Field(
        1024.0,
        gt=0,
        description="MB of datasets one owner may upload in any 24 hours; an upload that "
        "would pass it is refused with 429 and a Retry-After of when enough of the owner's "
        "uploads are older than 24 hours",
    )
    poll_interval_s: float = Field(0.5, gt=0)
    heartbeat_interval_s: float = Field(
        10.0, gt=0, description="how often a controller renews the lease of each job it runs"
    )
    lease_timeout_s: float = Field(
        60.0,
        gt=0,
        description="a running job whose lease was not renewed for this long has lost its "
        "runner (the process died): it is queued again, or failed after max_attempts",
    )
    max_attempts: int = Field(
        3, ge=1, le=100, description="runs of one job that may end in a crash before it fails"
    )
    run_controller: bool = Field(True, description="run the controller inside the API process")
    api_workers: int = Field(
        1,
        ge=1,
        le=64,
        description="HTTP processes of `automl serve`; with more than one, the controller runs "
        "in their parent process and none of them trains or scores",
    )
    http_keep_alive_s: int = Field(
        75,
        ge=1,
        le=3600,
        description="seconds an idle HTTP connection is kept open; longer than clients' own "
        "idle limits (httpx 5 s, proxies ~60 s), so the server never closes a connection just "
        "as a client sends its next request on it",
    )
    access_log: bool = Field(
        True,
        description="log a line per HTTP request (uvicorn's access log) to stderr; off (for a "
        "deployment whose proxy logs requests), a burst of reads costs ~7% less CPU "
        "(benchmarks/read_burst.py)",
    )
    worker_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="CPU priority (Linux nice) Ray workers train at: on a node shared with the "
        "API, requests go first",
    )
    worker_max_trainings: int = Field(
        50,
        ge=1,
        le=100_000,
        description="trainings after which an idle Ray worker is replaced by a fresh one "
        "(Keras keeps 11-19 MB from every fit: a worker's memory grows with each candidate)",
    )
    ray_max_retries: int = Field(
        2, ge=0, le=100, description="times a candidate whose Ray worker died is started again"
    )
    ray_placement_timeout_s: float = Field(
        180.0,
        gt=0,
        description="how long a new Ray worker may take to be placed and start before its "
        "candidates fail as infrastructure",
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_upload_bytes_per_day(self) -> int:
        return int(self.max_upload_mb_per_day * 1024 * 1024)
