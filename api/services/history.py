"""History across jobs: every finished candidate's configuration and scores, kept with the
meta-features of the data it trained on, ranked for new data and used to warm-start searches.

Writing: the controller calls :func:`record_iteration` when an iteration completes, in the
transaction that stores the iteration — the candidates' values are final then (the ones told
to the sampler), and a resumed job, which trains an unfinished iteration again, never records
a candidate twice. :func:`record_job` adds the completed iterations of a job already in the
database (idempotent: a candidate already recorded is skipped).

Ranking (:meth:`HistoryService.rank`): the owner's entries of the same task as the dataset
asked about, each scored

    score = similarity × (1 − relative_objective / 2)

where ``similarity`` compares the meta-features of the entry's data with the dataset's
(:func:`automl.meta.similarity`, 1 for the same data) and ``relative_objective`` places the
entry's F within its own job (0 for the job's best candidate, 1 for its worst; F of different
jobs are not comparable: other data, other λ and β). So on the same data a job's best
configuration scores 1 and its worst 0.5; on data of similarity 0.8, its best scores 0.8.
Highest score first, then lower F, then newer; a configuration (the same hyperparameters)
appears once, with its best score.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session

from api.errors import NotFoundError, UnprocessableError
from api.models import Dataset, HistoryEntry, Job
from api.repositories import (
    CandidateRepository,
    DatasetRepository,
    HistoryRepository,
    IterationRepository,
)
from automl.data import builtin_datasets, builtin_kind
from automl.errors import UnknownDatasetError
from automl.meta import SIMILAR, meta_features, meta_from_counts, similarity
from automl.spec import SearchSpec

# Entries read per ranking, newest first: ranking is done in Python over their meta-features.
SCAN_LIMIT = 20_000
_KINDS = {3: "image", 2: "sequence"}
_FINISHED = ("completed", "stopped_early")
# the meta-features automl.meta.similarity reads
_META_KEYS = ("task", "rows", "features", "classes", "class_balance", "input_rank")


@lru_cache(maxsize=16)
def _builtin_meta(name: str) -> str:
    from automl.data import load_builtin

    return json.dumps(meta_features(load_builtin(name)))


def builtin_meta(name: str) -> dict[str, Any]:
    """The meta-features of a built-in dataset (loaded once per process; a fresh copy)."""
    meta: dict[str, Any] = json.loads(_builtin_meta(name))
    return meta


def upload_meta(row: Dataset) -> dict[str, Any]:
    """The meta-features of an upload, from what its row keeps (no need to read the file)."""
    return meta_from_counts(row.task, row.rows, row.features, row.input_shape, row.class_counts)


class _Likeness:
    """``similarity(meta, other)`` computed once per distinct ``other``: a history holds many
    entries of few datasets."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta
        self._seen: dict[tuple[Any, ...], float] = {}

    def __call__(self, other: dict[str, Any]) -> float:
        key = tuple(other.get(k) for k in _META_KEYS)
        if key not in self._seen:
            self._seen[key] = similarity(self.meta, other)
        return self._seen[key]


@dataclass(frozen=True)
class Target:
    """The dataset a ranking is for: a built-in (``builtin``) or an upload (``dataset_id``)."""

    name: str
    dataset_id: str | None
    builtin: str | None
    meta: dict[str, Any]

    @property
    def kind(self) -> str:
        """``image``, ``sequence`` or ``table``: which subnetwork families apply."""
        return _KINDS.get(int(self.meta.get("input_rank") or 1), "table")


@dataclass
class RankedConfiguration:
    """A past configuration, scored for a target dataset (see the module's docstring)."""

    hparams: dict[str, Any]
    objective: float
    loss: float | None
    complexity: float | None
    metrics: dict[str, Any]
    relative_objective: float
    similarity: float
    score: float
    job_id: str | None
    candidate: str
    iteration: int
    origin: str
    dataset: str
    dataset_id: str | None
    created_at: datetime
    owner: str = field(default="", repr=False)


@dataclass
class WarmStart:
    """What a job's warm start found: the configurations put in its spec, and why."""

    configurations: list[dict[str, Any]]
    sources: list[RankedConfiguration]
    skipped: list[str]
    message: str

    def data(self) -> dict[str, Any]:
        return {
            "configurations": len(self.configurations),
            "sources": [
                {
                    "job_id": r.job_id,
                    "candidate": r.candidate,
                    "dataset": r.dataset,
                    "similarity": r.similarity,
                    "score": r.score,
                }
                for r in self.sources
            ],
            "skipped": self.skipped,
        }


class HistoryService:
    """Ranks past configurations for a dataset and fills a warm-start spec from them.

    ``owner`` ``None`` (the command line only, an operator's view) ranks every owner's history.
    """

    def __init__(self, session: Session) -> None:
        self.s = session
        self.repo = HistoryRepository(session)
        self.datasets = DatasetRepository(session)

    # ---- the dataset asked about ------------------------------------------------------------
    def target(self, owner: str | None, dataset_id: str | None, dataset: str | None) -> Target:
        """Exactly one of an upload's id (the owner's) or a built-in name.

        Raises:
            UnprocessableError: Both or neither given (the field is named).
            NotFoundError: No such built-in, or no such upload of the owner.
        """
        if dataset_id is not None and dataset is not None:
            raise UnprocessableError(
                "give exactly one of dataset_id (an upload) or dataset (a built-in), not both",
                field="query.dataset_id",
            )
        if dataset is not None:
            try:
                builtin_kind(dataset)
            except UnknownDatasetError as exc:
                raise NotFoundError(str(exc), field="query.dataset") from None
            return Target(dataset, None, dataset, builtin_meta(dataset))
        if dataset_id is None:
            raise UnprocessableError(
                "give dataset_id (an upload's id) or dataset (a built-in name such as digits)",
                field="query.dataset",
            )
        # PostgreSQL refuses a NUL in a query's text; no id holds one
        row = (
            None
            if "\x00" in dataset_id
            else self.datasets.get(owner, dataset_id)
            if owner is not None
            else self.s.get(Dataset, dataset_id)
        )
        if row is None:
            raise NotFoundError(f"dataset {dataset_id!r} not found", field="query.dataset_id")
        return Target(row.name, row.id, None, upload_meta(row))

    # ---- ranking ------------------------------------------------------------------------------
    def rank(
        self,
        owner: str | None,
        target: Target,
        limit: int,
        *,
        min_similarity: float = 0.0,
        fits: Callable[[dict[str, Any]], bool] | None = None,
    ) -> tuple[list[RankedConfiguration], int]:
        """The ``limit`` best-scored distinct configurations for ``target``, and how many
        distinct ones there are in all. ``fits`` keeps only configurations it accepts."""
        entries = self.repo.latest(owner, str(target.meta.get("task")), SCAN_LIMIT)
        spans: dict[str, tuple[float, float]] = {}
        for e in entries:
            key = e.job_id or f"#{e.id}"
            lo, hi = spans.get(key, (e.objective, e.objective))
            spans[key] = (min(lo, e.objective), max(hi, e.objective))
        likeness = _Likeness(target.meta)
        ranked: list[RankedConfiguration] = []
        for e in entries:
            sim = likeness(e.meta)
            if sim <= 0 or sim < min_similarity or (fits is not None and not fits(e.hparams)):
                continue
            lo, hi = spans[e.job_id or f"#{e.id}"]
            relative = (e.objective - lo) / (hi - lo) if hi > lo else 0.0
            ranked.append(
                RankedConfiguration(
                    hparams=dict(e.hparams),
                    objective=e.objective,
                    loss=e.loss,
                    complexity=e.complexity,
                    metrics=dict(e.metrics or {}),
                    relative_objective=round(relative, 6),
                    similarity=round(sim, 6),
                    score=round(sim * (1 - relative / 2), 6),
                    job_id=e.job_id,
                    candidate=e.candidate,
                    iteration=e.iteration,
                    origin=e.origin,
                    dataset=e.dataset_name,
                    dataset_id=e.dataset_id,
                    created_at=e.created_at,
                    owner=e.owner,
                )
            )
        ranked.sort(key=lambda r: (-r.score, r.objective, -r.created_at.timestamp(), r.candidate))
        seen: set[str] = set()
        distinct = []
        for r in ranked:
            key = json.dumps(r.hparams, sort_keys=True)
            if key not in seen:
                seen.add(key)
                distinct.append(r)
        return distinct[:limit], len(distinct)

    def similar_counts(self, owner: str, targets: Mapping[str, Target]) -> dict[str, int]:
        """Distinct configurations in the owner's history on data similar to each target
        (similarity ≥ ``automl.meta.SIMILAR``): what a warm start could draw on."""
        rows = [
            (meta, json.dumps(hparams, sort_keys=True))
            for meta, hparams in self.repo.configurations(owner, SCAN_LIMIT)
        ]
        counts: dict[str, int] = {}
        for key, target in targets.items():
            likeness = _Likeness(target.meta)
            found = {hparams for meta, hparams in rows if likeness(meta) >= SIMILAR}
            if found:
                counts[key] = len(found)
        return counts

    def has_history(self, owner: str) -> bool:
        return self.repo.exists(owner)

    def new_job_choices(
        self, owner: str, uploads: Sequence[Dataset]
    ) -> tuple[dict[str, int], dict[str, str]]:
        """For the new-job form: per dataset choice (``builtin:NAME``, ``upload:ID``) with
        similar history, how many configurations a warm start could draw on, and its name.
        Nothing without history (and then no built-in is loaded)."""
        if not self.has_history(owner):
            return {}, {}
        targets = {
            f"builtin:{name}": Target(name, None, name, builtin_meta(name))
            for name in builtin_datasets()
        }
        targets.update(
            {f"upload:{d.id}": Target(d.name, d.id, None, upload_meta(d)) for d in uploads}
        )
        counts = self.similar_counts(owner, targets)
        return counts, {key: targets[key].name for key in counts}

    # ---- warm start ---------------------------------------------------------------------------
    def warm_start(
        self,
        owner: str,
        spec: SearchSpec,
        dataset_id: str | None,
        dataset: str | None,
        families: list[str],
    ) -> tuple[SearchSpec, WarmStart | None]:
        """The spec a new job stores, and what its warm start did (``None``: no warm start).

        With ``warm_start`` and no configurations given, the best ``candidates_per_iteration``
        configurations of the owner's history on similar data that fit the data's
        ``families`` and the spec's space fill ``warm_start_configurations``: the stored spec
        alone then reproduces the search (resume, replay). Configurations given in the spec
        are kept as they are; those that will be skipped are named.
        """
        from automl.generator import check_configuration

        if not spec.warm_start and not spec.warm_start_configurations:
            return spec, None
        given = spec.warm_start_configurations
        if given:
            skipped = [
                f"configuration {i + 1}: {why}"
                for i, hp in enumerate(given)
                if (why := check_configuration(spec, families, hp)) is not None
            ]
            usable = len(given) - len(skipped)
            message = f"warm start: {usable} of {len(given)} configuration(s) given in the spec"
            if skipped:
                message += " (the others will be skipped: " + "; ".join(skipped) + ")"
            return spec, WarmStart(list(given), [], skipped, message)
        target = self.target(owner, dataset_id, dataset)
        ranked, _ = self.rank(
            owner,
            target,
            spec.candidates_per_iteration,
            min_similarity=SIMILAR,
            fits=lambda hp: check_configuration(spec, families, hp) is None,
        )
        configurations = [dict(r.hparams) for r in ranked]
        if configurations:
            jobs = sorted({(r.job_id or "?")[:8] for r in ranked})
            message = (
                f"warm start: {len(configurations)} configuration(s) from history "
                f"(job(s) {', '.join(jobs)}; similarity "
                f"{min(r.similarity for r in ranked):.2f}–{max(r.similarity for r in ranked):.2f})"
                " start iteration 0"
            )
        else:
            message = (
                f"warm start: no configuration in your history fits {target.name} (same task, "
                f"similar data, families {', '.join(families)}, inside the spec's space); the "
                "search starts from sampled candidates"
            )
        updated = spec.model_copy(update={"warm_start_configurations": configurations})
        return updated, WarmStart(configurations, ranked, [], message)


# ---- writing ----------------------------------------------------------------------------------
def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _json_safe(metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    # JSON has no NaN or infinity (PostgreSQL refuses them in a JSON column)
    return {k: (_finite(v) if isinstance(v, float) else v) for k, v in dict(metrics or {}).items()}


def job_meta(session: Session, job: Job) -> dict[str, Any] | None:
    """The meta-features of a job's data (``None`` when its upload was deleted)."""
    if job.builtin_dataset:
        return builtin_meta(job.builtin_dataset)
    row = session.get(Dataset, job.dataset_id) if job.dataset_id else None
    return None if row is None else upload_meta(row)


def record_iteration(
    session: Session, job_id: str, candidates: Iterable[Any], meta: Mapping[str, Any]
) -> int:
    """Add a job's finished candidates to its owner's history; return how many were added.

    Args:
        session: The session of the caller's transaction (the controller's, which also
            writes the iteration).
        job_id: The job the candidates belong to.
        candidates: The engine's ``CandidateRecord``\\ s of a completed iteration (or candidate
            rows): those completed or stopped early with a finite F are kept, each once.
        meta: The meta-features of the job's data (``automl.meta.meta_features``).
    """
    job = session.get(Job, job_id)
    if job is None:
        return 0
    name = job.builtin_dataset
    if name is None:
        row = session.get(Dataset, job.dataset_id) if job.dataset_id else None
        name = row.name if row is not None else (job.dataset_id or "?")
    repo = HistoryRepository(session)
    done = repo.recorded(job_id)
    added = 0
    for c in candidates:
        objective = _finite(c.objective)
        if c.name in done or str(c.state) not in _FINISHED or objective is None:
            continue
        repo.add(
            HistoryEntry(
                owner=job.owner,
                job_id=job.id,
                candidate=c.name,
                iteration=int(c.iteration),
                origin=c.origin,
                dataset_id=job.dataset_id,
                dataset_name=name[:200],
                task=str(meta["task"]),
                meta=dict(meta),
                hparams=dict(c.hparams),
                objective=objective,
                loss=_finite(c.loss),
                complexity=_finite(c.complexity),
                metrics=_json_safe(c.metrics),
            )
        )
        done.add(c.name)
        added += 1
    return added


def record_job(session: Session, job_id: str) -> int:
    """Add the finished candidates of a job's completed iterations, as stored, to the history
    (what the controller records as it goes; for jobs that ran before, and for tests)."""
    job = session.get(Job, job_id)
    meta = None if job is None else job_meta(session, job)
    if job is None or meta is None:
        return 0
    completed = IterationRepository(session).completed_count(job_id)
    rows = CandidateRepository(session).all_for_iterations(job_id, completed)
    return record_iteration(session, job_id, rows, meta)
