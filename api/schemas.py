"""Request and response schemas (kept apart from the SQLAlchemy models)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from automl.spec import SearchSpec


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class FieldErrorPublic(BaseModel):
    field: str = Field(description="the path of the field at fault, e.g. spec.epochs or file")
    message: str


class ErrorPublic(BaseModel):
    """The body of every 4xx answer: a sentence a person can act on and, where a field is at
    fault, one entry per field. Some errors add their own keys (a 429's ``retry_after_s``)."""

    model_config = ConfigDict(extra="allow")

    detail: str
    errors: list[FieldErrorPublic] | None = None


class DatasetPublic(_Out):
    id: str
    name: str
    format: str
    label: str | None
    task: str
    task_rule: str | None = None
    rows: int
    features: int
    class_counts: dict[str, int]
    input_shape: list[int] | None
    columns: list[dict[str, Any]] | None = Field(
        None,
        description="a CSV's feature columns: name, type (numeric, categorical or ignore), "
        "reason (the rule or the user that chose the type), missing_rate, distinct, given",
    )
    size_bytes: int
    created_at: datetime


class DatasetsPublic(BaseModel):
    data: list[DatasetPublic]
    count: int


class JobCreate(BaseModel):
    """A search job: a dataset (an uploaded dataset's id, or a built-in name) and a spec."""

    model_config = ConfigDict(extra="forbid")

    dataset_id: str | None = Field(None, description="id of an uploaded dataset")
    dataset: str | None = Field(None, description="a built-in dataset name, e.g. digits")
    spec: SearchSpec = Field(default_factory=SearchSpec)
    executor: Literal["ray", "in_process"] | None = Field(
        None, description="where candidates train; default: the service's setting"
    )

    @model_validator(mode="after")
    def _one_dataset(self) -> JobCreate:
        if (self.dataset_id is None) == (self.dataset is None):
            raise ValueError("give exactly one of dataset_id (an upload) or dataset (a built-in)")
        return self


class Progress(BaseModel):
    iteration: int | None
    max_iterations: int | None = Field(
        description="iterations the job runs at most; null when its time budget decides"
    )
    candidates_done: int
    candidates_total: int
    best_objective: float | None
    time_budget_s: float | None = Field(None, description="the spec's whole-job time budget")
    time_left_s: float | None = Field(
        None,
        description="seconds of the time budget left while the job runs (from its start; "
        "the job plans its iterations and evaluation steps to end within it)",
    )


class JobSummary(_Out):
    """A job as the list shows it: everything but ``result`` (a finished job's report, tens of
    kilobytes; ``GET /api/v1/jobs/{id}`` has it)."""

    id: str
    state: str
    dataset_id: str | None
    dataset: str | None = None
    spec: dict[str, Any]
    executor: str
    progress: Progress
    stop_reason: str | None
    error: str | None
    cancel_requested: bool
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    elapsed_s: float | None


class JobPublic(JobSummary):
    result: dict[str, Any] | None


class JobsPublic(BaseModel):
    data: list[JobSummary] = Field(
        description="newest first; each job without its result (GET /api/v1/jobs/{id} has it)"
    )
    count: int


class IterationPublic(_Out):
    iteration: int
    previous_objective: float
    best_objective: float | None
    chosen: str | None
    improved: bool
    ensemble: dict[str, Any]
    ensembles: list[Any]
    duration_s: float
    finished_at: datetime


class IterationsPublic(BaseModel):
    data: list[IterationPublic]
    count: int


class CandidatePublic(_Out):
    name: str
    iteration: int
    origin: str
    state: str
    hparams: dict[str, Any]
    seed: int
    depth: int | None
    params: int | None
    loss: float | None
    complexity: float | None
    objective: float | None
    metrics: dict[str, Any]
    own_metrics: dict[str, Any]
    chosen: bool
    node: str | None
    epochs_run: int
    attempts: int = Field(1, description="trainings started: more than one when a worker died")
    failure_kind: str | None = Field(
        None,
        description="for a failed candidate: training (its own error), timeout (ran past "
        "candidate_timeout_s), out_of_memory, or infrastructure (its worker or node was lost)",
    )
    stop_reason: str | None = Field(
        None,
        description="for a stopped_early candidate: pruned (successive halving stopped it at a "
        "rung) or patience (early_stopping_patience)",
    )
    duration_s: float | None
    train_s: float | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class CandidatesPublic(BaseModel):
    data: list[CandidatePublic]
    count: int


class EventPublic(_Out):
    at: datetime
    kind: str
    message: str
    data: dict[str, Any]


class EventsPublic(BaseModel):
    data: list[EventPublic]
    count: int


class CandidateDetail(CandidatePublic):
    """One candidate with its per-epoch training curves (Keras's log names: loss, val_loss,
    accuracy, val_accuracy...; null where an epoch's value was not finite)."""

    history: dict[str, list[float | None]] = Field(default_factory=dict)


class EnsembleMemberPublic(BaseModel):
    name: str
    family: str
    depth: int | None
    width: int | None = Field(description="units per layer (filters for conv families)")
    params: int | None
    mixture_weight: float = Field(description="scalar weight, or mean |w| of a vector weight")
    iteration: int | None = Field(description="the iteration whose chosen ensemble added it")


class EnsemblePublic(BaseModel):
    source: Literal["final", "search", "none"] = Field(
        description="final: the exported model after the evaluation phase; search: the "
        "ensemble the last completed iteration chose; none: no iteration completed yet"
    )
    members: list[EnsembleMemberPublic]
    params: int | None
    objective: float | None


class PlotPublic(BaseModel):
    """A Plotly figure: ``data`` (traces) and ``layout`` as Plotly.js takes them; ``meta``
    counts the points (``points`` shown, of ``scored``/``total``) when the plot is capped."""

    data: list[dict[str, Any]]
    layout: dict[str, Any]
    meta: dict[str, Any]


class ApiKeyPublic(_Out):
    """An API key as it is listed: never the key itself, nor its hash."""

    id: int
    owner: str
    prefix: str = Field(description="the key's first characters, to tell keys apart")
    created_at: datetime
    last_used_at: datetime | None = Field(
        description="when a request last used it (updated at most once a minute)"
    )
    revoked: bool


class ApiKeysPublic(BaseModel):
    data: list[ApiKeyPublic]
    count: int


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="the new key; shown only in this response, store it now")


class HistoryConfigurationPublic(BaseModel):
    """A past configuration ranked for a dataset: ``score`` = ``similarity`` × (1 −
    ``relative_objective`` / 2), highest first."""

    hparams: dict[str, Any]
    objective: float = Field(description="F of the candidate in its own job")
    loss: float | None
    complexity: float | None
    metrics: dict[str, Any]
    relative_objective: float = Field(
        description="F within its job: 0 for that job's best candidate, 1 for its worst"
    )
    similarity: float = Field(
        description="of the job's data to the dataset asked about (automl.meta.similarity): "
        "1 for the same meta-features, 0 for another task"
    )
    score: float
    job_id: str | None = Field(description="the job it came from (it may since be deleted)")
    candidate: str
    iteration: int
    origin: str
    dataset: str = Field(description="the name of the data the job searched")
    dataset_id: str | None = Field(description="the upload's id; null for a built-in")
    created_at: datetime


class HistoryConfigurationsPublic(BaseModel):
    data: list[HistoryConfigurationPublic]
    count: int = Field(description="distinct configurations of the same task, before the limit")
    dataset: str
    meta: dict[str, Any] = Field(description="the meta-features of the dataset asked about")
