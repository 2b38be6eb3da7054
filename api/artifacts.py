"""Where files live. Every path is made here from server-side ids; none comes from user input."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

_ID = re.compile(r"^[0-9a-f]{32}$")
_NAME = re.compile(r"^t\d+_c\d+$")


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _checked(self, value: str, pattern: re.Pattern[str]) -> str:
        if not pattern.match(value):
            raise ValueError(f"refusing an artifact path built from {value!r}")
        return value

    def dataset_file(self, dataset_id: str, fmt: str) -> Path:
        if fmt not in ("csv", "npz"):
            raise ValueError(f"unknown dataset format {fmt!r}")
        return self.root / "datasets" / f"{self._checked(dataset_id, _ID)}.{fmt}"

    def job_dir(self, job_id: str) -> Path:
        return self.root / "jobs" / self._checked(job_id, _ID)

    def weights_file(self, job_id: str, candidate: str) -> Path:
        return self.job_dir(job_id) / "weights" / f"{self._checked(candidate, _NAME)}.npz"

    def relative(self, path: Path) -> str:
        return str(path.resolve().relative_to(self.root))

    def absolute(self, relative: str) -> Path:
        path = (self.root / relative).resolve()
        if self.root not in path.parents:
            raise ValueError(f"refusing a path outside the artifact directory: {relative!r}")
        return path

    def remove_job(self, job_id: str) -> None:
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
