"""Finished trainings of the evaluation phase, kept on disk so a phase that was interrupted (the
service killed, stopped or the job cancelled) does not train them again when it runs again.

The phase is deterministic given the search's result: the same members, the same seeds, the
same steps, so the trainings it asks for again are the same ones. A stored training is used only
for the same request: its key is a digest of the training's spec (all but its timeout) and of the
weights it started from, so a phase that takes another path (a different time plan, a member
grown differently) trains what it has not trained before. Only trainings that completed are kept;
a failed one is tried again.

Each training is two files named by its key: ``.npz`` (weights and outputs) and ``.json`` (the
rest), each written to a temporary name and renamed, the JSON last: a training is there when its
JSON is, and a half-written one is never read.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from automl.training import CandidateResult, CandidateSpec

_SCALARS = (
    "state",
    "depth",
    "params",
    "own_metrics",
    "history",
    "epochs_run",
    "duration_s",
    "train_s",
    "node",
    "attempts",
    "stop_reason",
)


def training_key(spec: CandidateSpec, init_weights: Sequence[np.ndarray] | None) -> str:
    """What identifies a training: its spec (the timeout aside) and the weights it starts from."""
    h = hashlib.sha256()
    what = {k: v for k, v in spec.to_dict().items() if k != "timeout_s"}
    h.update(json.dumps(what, sort_keys=True, default=str).encode())
    for w in init_weights or ():
        a = np.ascontiguousarray(w)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:32]


class TrainingStore:
    """Completed trainings under ``root`` (made on the first ``put``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.npz", self.root / f"{key}.json"

    def get(
        self, spec: CandidateSpec, init_weights: Sequence[np.ndarray] | None = None
    ) -> CandidateResult | None:
        """The stored result of this very training, or None (never stored, or unreadable)."""
        arrays_path, meta_path = self._paths(training_key(spec, init_weights))
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text())
            with np.load(arrays_path, allow_pickle=False) as z:
                weights = [z[f"w{i}"] for i in range(int(meta["n_weights"]))]
                logits_train = z["logits_train"] if "logits_train" in z.files else None
                logits_val = z["logits_val"] if "logits_val" in z.files else None
        except (OSError, ValueError, KeyError):
            return None  # damaged: trained again
        return CandidateResult(
            spec=spec,
            weights=weights,
            logits_train=logits_train,
            logits_val=logits_val,
            **{k: meta[k] for k in _SCALARS if k in meta},
        )

    def put(
        self,
        result: CandidateResult,
        init_weights: Sequence[np.ndarray] | None = None,
    ) -> None:
        """Keep a completed training (a failed one is not kept: it is tried again)."""
        if not result.ok:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        arrays_path, meta_path = self._paths(training_key(result.spec, init_weights))
        arrays: dict[str, Any] = {f"w{i}": w for i, w in enumerate(result.weights)}
        if result.logits_train is not None:
            arrays["logits_train"] = result.logits_train
        if result.logits_val is not None:
            arrays["logits_val"] = result.logits_val
        meta = {k: getattr(result, k) for k in _SCALARS}
        meta["n_weights"] = len(result.weights)
        meta["name"] = result.spec.name
        _atomic(arrays_path, lambda f: np.savez(f, **arrays))
        _atomic(meta_path, lambda f: f.write(json.dumps(meta, default=float).encode()))

    def clear(self) -> None:
        """Remove every stored training (the phase ended: they are not needed again)."""
        if not self.root.is_dir():
            return
        for path in self.root.iterdir():
            if path.suffix in (".npz", ".json", ".tmp"):
                path.unlink(missing_ok=True)
        try:
            self.root.rmdir()
        except OSError:
            pass


def _atomic(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
