"""Dataset uploads: checked with the engine's data checks; a rejected upload stores nothing."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, BinaryIO

from sqlalchemy.orm import Session

from api.artifacts import ArtifactStore
from api.db import after_commit, after_rollback
from api.errors import ConflictError, NotFoundError, PayloadTooLargeError, UnprocessableError
from api.limits import too_large_message
from api.models import Dataset, new_id
from api.repositories import DatasetRepository
from api.services.quotas import QuotaService
from automl.data import load_csv, load_npz
from automl.errors import ColumnTypeError, DataError

CHUNK = 1 << 20


class DatasetService:
    def __init__(self, session: Session, store: ArtifactStore, max_bytes: int) -> None:
        self.repo = DatasetRepository(session)
        self.store = store
        self.max_bytes = max_bytes

    def read_limited(self, stream: BinaryIO) -> bytes:
        """Read an upload, stopping as soon as it passes the size limit."""
        chunks, size = [], 0
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > self.max_bytes:
                raise PayloadTooLargeError(too_large_message(self.max_bytes), field="file")
            chunks.append(chunk)
        return b"".join(chunks)

    def upload(
        self,
        owner: str,
        filename: str,
        stream: BinaryIO,
        label: str | None,
        task: str | None,
        name: str | None,
        column_types: str | None = None,
    ) -> Dataset:
        """Check and store an upload. ``column_types`` is the form field as sent: a JSON object
        ``{"col": "numeric" | "categorical" | "ignore"}`` overriding the detected types of a
        CSV's columns; a bad one is a 422 naming ``column_types.<col>``."""
        QuotaService.of(self.repo.s).check_upload(owner, stream)  # 429 past the daily quota
        for field, what, value in (
            ("file", "the file name", filename),
            ("label", "label", label),
            ("task", "task", task),
            ("name", "name", name),
            ("column_types", "column_types", column_types),
        ):
            # PostgreSQL cannot store a NUL in text (a 500 there); no name or label needs one
            if value is not None and "\x00" in value:
                raise UnprocessableError(
                    f"{what} holds a NUL character (\\x00); remove it", field=field
                )
        lower = filename.lower()
        fmt = "npz" if lower.endswith(".npz") else "csv" if lower.endswith(".csv") else None
        if fmt is None:
            raise UnprocessableError(
                f"file {filename!r} is neither .csv nor .npz; upload a CSV with a header row "
                "or an NPZ with arrays x and y",
                field="file",
            )
        if fmt == "csv" and not label:
            raise UnprocessableError(
                "a CSV upload needs 'label', the name of its label column", field="label"
            )
        if task not in (None, "classification", "regression"):
            raise UnprocessableError(
                f"task must be classification or regression, not {task!r}", field="task"
            )
        types = _column_types(column_types)
        if types is not None and fmt != "csv":
            raise UnprocessableError(
                "column_types applies to CSV uploads only; an NPZ's features are numbers",
                field="column_types",
            )
        content = self.read_limited(stream)
        try:
            ds = (
                load_csv(content, label=str(label), task=task, column_types=types)  # type: ignore[arg-type]
                if fmt == "csv"
                else load_npz(content, task=task)  # type: ignore[arg-type]
            )
        except ColumnTypeError as exc:
            field = f"column_types.{exc.column}" if exc.column else "column_types"
            raise UnprocessableError(str(exc), field=field) from None
        except DataError as exc:
            raise UnprocessableError(str(exc), field="file") from None
        dataset_id = new_id()
        path = self.store.dataset_file(dataset_id, fmt)
        tmp = path.with_suffix(".part")

        def remove_file() -> None:
            tmp.unlink(missing_ok=True)
            path.unlink(missing_ok=True)

        # registered before the file exists: a row that does not commit leaves no file behind
        after_rollback(self.repo.s, remove_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(content)
        os.replace(tmp, path)
        try:
            row = Dataset(
                id=dataset_id,
                owner=owner,
                name=(name or os.path.splitext(os.path.basename(filename))[0])[:200],
                format=fmt,
                label=label if fmt == "csv" else None,
                task=ds.task,
                task_rule=ds.task_rule,
                rows=ds.n_rows,
                features=ds.n_features,
                class_counts=ds.class_counts(),
                input_shape=list(ds.input_shape) if ds.input_shape else None,
                # each column's type (and why), missing rate and distinct values; the
                # controller reads the file again with these types
                columns=[c.to_dict() for c in ds.columns] if ds.columns is not None else None,
                fingerprint=ds.fingerprint(),
                size_bytes=len(content),
                path=self.store.relative(path),
            )
            self.repo.add(row)
            self.repo.add_upload(owner, len(content))  # in the same transaction as the row
        except BaseException:
            remove_file()  # the row did not make it: neither does the file
            raise
        return row

    def get(self, owner: str, dataset_id: str) -> Dataset:
        row = self.repo.get(owner, dataset_id)
        if row is None:
            raise NotFoundError(f"dataset {dataset_id!r} not found")
        return row

    def list(self, owner: str, limit: int, offset: int) -> tuple[Sequence[Dataset], int]:
        return self.repo.list(owner, limit, offset)

    def delete(self, owner: str, dataset_id: str) -> None:
        row = self.get(owner, dataset_id)
        active = self.repo.in_use(row.id)
        if active:
            raise ConflictError(
                f"dataset {dataset_id!r} is used by {active} queued or running job(s); "
                "cancel or delete them first"
            )
        path = self.store.absolute(row.path)
        self.repo.delete(row)
        self.repo.s.flush()
        # only once the delete has committed: a failed commit keeps the row, so keeps its file
        after_commit(self.repo.s, lambda: path.unlink(missing_ok=True))


def _column_types(raw: str | None) -> dict[str, Any] | None:
    """The ``column_types`` form field: a JSON object, or nothing."""
    if raw is None or not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UnprocessableError(
            f"column_types is not valid JSON ({exc.msg}); send an object such as "
            '{"city": "categorical", "id": "ignore"}',
            field="column_types",
        ) from None
    if not isinstance(value, dict):
        raise UnprocessableError(
            'column_types must be a JSON object such as {"city": "categorical"}',
            field="column_types",
        )
    return value
