"""A finished job's model: where it lives, its SavedModel archive, its card, predictions."""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.orm import Session

from api.artifacts import ArtifactStore
from api.errors import ConflictError, NotFoundError, UnprocessableError
from api.models import Job, JobState
from api.services.jobs import JobService

_predictors: OrderedDict[str, Any] = OrderedDict()
_lock = threading.Lock()
_zip_locks: dict[str, threading.Lock] = {}
_CACHE = 8  # loaded models kept per process
# encoded model cards kept per process (a card is a few KB), each with its file's version
_cards: OrderedDict[str, tuple[tuple[int, int, int], bytes]] = OrderedDict()
_CARDS = 256


class ModelService:
    def __init__(self, session: Session, store: ArtifactStore, default_executor: str) -> None:
        self.jobs = JobService(session, store, default_executor)
        self.store = store

    def model_dir(self, owner: str, job_id: str) -> Path:
        """The job's artifact directory; 409 until the job has succeeded."""
        state = self.jobs.repo.state_of(owner, job_id)  # the state alone: a polled read
        if state is None:
            raise NotFoundError(f"job {job_id!r} not found")
        return self._model_dir_of(job_id, state)

    def _model_dir_of(self, job_id: str, state: str) -> Path:
        path = self.store.job_dir(job_id)
        if state != JobState.succeeded or not (path / "model.keras").is_file():
            raise ConflictError(
                f"job {job_id!r} has no model yet (it is {state}); models exist once a job "
                "has succeeded"
            )
        return path

    def savedmodel_zip(self, owner: str, job_id: str) -> Path:
        """The SavedModel as a zip, made on first download. One writer per job in this process;
        each writer builds its own temporary file and renames it into place, so concurrent first
        downloads (here or in another process) never read or cache a half-written archive."""
        path = self.model_dir(owner, job_id)
        archive = path / "savedmodel.zip"
        with _zip_lock(job_id):
            if not archive.is_file():
                base = path / f".savedmodel.{uuid.uuid4().hex}.part"
                try:
                    tmp = shutil.make_archive(str(base), "zip", path / "savedmodel")
                    os.replace(tmp, archive)
                finally:
                    Path(f"{base}.zip").unlink(missing_ok=True)
        return archive

    def card(self, owner: str, job_id: str) -> Any:
        return json.loads((self.model_dir(owner, job_id) / "model_card.json").read_text())

    def card_bytes_of(self, job: Job) -> bytes:
        """The card of ``job`` as JSON (whose ownership the caller checked: its id and state
        read), encoded once per version of the file. A dashboard or a script polls it, and
        reading, decoding and encoding a card took 4.4% of the server's CPU under a burst of
        the polled reads (`benchmarks/read_burst.py`, profiled; 1.8% with this). A non-finite
        number is null, as the standard encoder cannot write it."""
        path = self._model_dir_of(job.id, job.state) / "model_card.json"
        st = path.stat()
        version = (st.st_ino, st.st_mtime_ns, st.st_size)
        with _lock:
            cached = _cards.get(job.id)
            if cached is not None and cached[0] == version:
                _cards.move_to_end(job.id)
                return cached[1]
        encoded = orjson.dumps(json.loads(path.read_text()))
        with _lock:
            _cards[job.id] = (version, encoded)
            _cards.move_to_end(job.id)
            while len(_cards) > _CARDS:
                _cards.popitem(last=False)
        return encoded

    def predict(self, owner: str, job_id: str, rows: list[list[Any]]) -> list[dict[str, Any]]:
        """Raw feature rows → predictions; a row that does not fit is a 422 naming it.

        A model of numbers takes JSON numbers only, as ever (no "1", no null); a model trained
        on a table of raw cells also takes text and null (a missing cell)."""
        from automl.export import PredictionInputError

        predictor = _predictor(job_id, self.model_dir(owner, job_id))
        if predictor.input_dtype != "string":
            _numbers_only(rows)
        try:
            return list(predictor.predict(rows))
        except PredictionInputError as exc:
            field = (
                "rows"
                + (f".{exc.row}" if exc.row is not None else "")
                + (f".{exc.column}" if exc.column is not None else "")
            )
            raise UnprocessableError(str(exc), field=field) from None


def _predictor(job_id: str, path: Path) -> Any:
    from automl.export import Predictor

    with _lock:
        if job_id in _predictors:
            _predictors.move_to_end(job_id)
            return _predictors[job_id]
        predictor = Predictor(path)
        _predictors[job_id] = predictor
        while len(_predictors) > _CACHE:
            _predictors.popitem(last=False)
        return predictor


def _numbers_only(rows: list[list[Any]]) -> None:
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise UnprocessableError(
                    f"row {i}, column {j}: {value!r} — Input should be a valid number (this "
                    "model was trained on numbers only)",
                    field=f"rows.{i}.{j}",
                )


def _zip_lock(job_id: str) -> threading.Lock:
    with _lock:
        return _zip_locks.setdefault(job_id, threading.Lock())
