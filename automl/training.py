"""Training one candidate subnetwork from a plain spec into a plain result.

This is what an executor runs, in-process or on a Ray worker: no hyperparameter choices here and
no storage, only ``CandidateSpec`` + ``TrainingData`` → ``CandidateResult``. The subnetwork
trains on its own loss (as in the adanet library); the driver then fits the mixture weights of
every candidate ensemble it belongs to over the cached outputs of the frozen members.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from automl.errors import AutoMLError

# Called after each epoch with the 1-based epoch and Keras's logs (loss, val_loss, metrics) plus
# ``params``, the subnetwork's parameter count (what a complexity measure may need). It may
# raise ``CandidatePrunedError`` to stop the training after this epoch.
EpochCallback = Callable[[int, dict[str, float]], None]

# What a report says about reproducibility: every candidate trains with TensorFlow's op
# determinism on and every PRNG reset to its own seed, so the same spec, data and seed give the
# same weights on the same machine and thread settings (an executor with other thread pools, or
# another CPU or GPU, may round differently).
DETERMINISM = "tf op determinism, seeds per candidate"


@dataclass(frozen=True)
class CandidateSpec:
    """Everything a worker needs to train one subnetwork; JSON-serialisable."""

    name: str
    iteration: int
    index: int
    hparams: dict[str, Any]
    seed: int
    epochs: int
    early_stopping_patience: int | None = None
    origin: str = "sampled"  # paper_same_depth | paper_deeper | sampled | replay | cv | ...
    trial_number: int | None = None
    # What to do (the evaluation phase's trainings run through the executors too):
    # "train" a new subnetwork, on the search's split or, given ``folds``, on fold ``fold`` of
    # the training and validation rows together (cross-validation); or "fine_tune" the weights
    # handed with the spec after zeroing the ``sparsity`` smallest of each kernel, with the mask
    # held, at a tenth of the learning rate.
    kind: str = "train"
    folds: int | None = None
    fold: int | None = None
    fold_seed: int = 0
    sparsity: float | None = None
    # a training still running after this many seconds is stopped and fails as "timeout"
    timeout_s: float | None = None
    # train on the training and validation rows together (the evaluation phase's refit)
    refit: bool = False
    # a fine-tune's learning rate, as a fraction of the member's, and its schedule over the
    # fine-tune: "constant", or "cosine" (decayed to zero)
    tune_lr_scale: float = 0.1
    tune_schedule: str = "constant"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CandidateSpec:
        return cls(**data)


@dataclass
class TrainingData:
    """The arrays a worker trains on (already scaled), shared by all candidates of a search."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    task: str
    n_outputs: int
    input_shape: tuple[int, ...] | None
    class_weights: dict[int, float] | None = None

    @classmethod
    def from_prepared(cls, data: Any) -> TrainingData:
        return cls(
            x_train=data.x_train,
            y_train=data.y_train,
            x_val=data.x_val,
            y_val=data.y_val,
            task=data.task,
            n_outputs=data.n_outputs,
            input_shape=data.dataset.input_shape,
            class_weights=data.class_weights,
        )


@dataclass
class CandidateResult:
    """What comes back from a worker: trained weights, outputs, timings, or the error."""

    spec: CandidateSpec
    state: str  # completed | stopped_early | failed
    depth: int = 0
    params: int = 0
    weights: list[np.ndarray] = field(default_factory=list, repr=False)
    logits_train: np.ndarray | None = field(default=None, repr=False)
    logits_val: np.ndarray | None = field(default=None, repr=False)
    own_metrics: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    epochs_run: int = 0
    duration_s: float = 0.0
    train_s: float = 0.0
    node: str = ""
    error: str | None = None
    # how many times a worker started training it (an executor retries a candidate whose
    # worker died); 0 when no worker could ever take it
    attempts: int = 1
    # of a failed candidate: "training" (its own code raised), "timeout" (it ran past its
    # timeout_s), "out_of_memory" (it exhausted memory) — each the candidate's own failure —
    # or "infrastructure" (its worker or node was lost, or no worker could be placed); None
    # while it has not failed
    failure_kind: str | None = None
    # why a stopped_early candidate stopped: "pruned" (successive halving, automl.halving) or
    # "patience" (early_stopping_patience epochs without a better validation loss)
    stop_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.state in ("completed", "stopped_early")


class CandidateTimeoutError(Exception):
    """A training ran past its spec's ``timeout_s``."""


class CandidatePrunedError(AutoMLError):
    """Raised by an epoch hook to stop a candidate after this epoch (successive halving ranked
    it below the rung's best). Not a failure: ``train_candidate`` returns the candidate
    ``stopped_early`` with its weights as of that epoch and ``stop_reason="pruned"``."""


def failure_kind_of(exc: BaseException) -> str:
    """What a training's exception says about why it failed."""
    if isinstance(exc, CandidateTimeoutError):
        return "timeout"
    names = {c.__name__ for c in type(exc).__mro__}
    if names & {"MemoryError", "ResourceExhaustedError", "OutOfMemoryError"}:
        return "out_of_memory"
    return "training"


def node_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def build_subnetwork(hparams: dict[str, Any], data_shape: dict[str, Any], name: str) -> Any:
    """Build (not train) the Keras model for ``hparams``; ``data_shape`` holds n_features,
    input_shape and n_outputs."""
    from automl.subnetworks import create_subnetwork_builder

    builder = create_subnetwork_builder(str(hparams["family"]))
    return builder.build(
        hparams,
        int(data_shape["n_features"]),
        tuple(data_shape["input_shape"]) if data_shape.get("input_shape") else None,
        int(data_shape["n_outputs"]),
        name,
    )


def enable_determinism(seed: int | None = None) -> None:
    """Make this process's TensorFlow ops deterministic and, given ``seed``, reset the Python,
    NumPy, TensorFlow and Keras PRNGs to it.

    Op determinism is process-wide and only a flag (it does not start TensorFlow's runtime, so
    thread pools can still be sized after it). Without it TensorFlow may pick kernels whose
    threaded sums run in any order (on GPUs above all) and tf.data may run input pipelines out
    of order: the same seed then gives slightly different weights, enough to change which
    candidate wins. With it tf.data runs some pipelines serially, which costs a little speed.
    """
    import keras
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    if seed is not None:
        keras.utils.set_random_seed(seed)


def _loss(task: str) -> Any:
    import keras

    if task == "classification":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return keras.losses.MeanSquaredError()


def fold_indices(
    y: np.ndarray, task: str, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, held-out rows) of each cross-validation fold over ``y``: stratified for
    classification, shuffled with ``seed``. The driver and every worker split alike."""
    from sklearn.model_selection import KFold, StratifiedKFold

    splitter = (
        StratifiedKFold(folds, shuffle=True, random_state=seed)
        if task == "classification"
        else KFold(folds, shuffle=True, random_state=seed)
    )
    return list(splitter.split(np.zeros(len(y)), y if task == "classification" else None))


def with_validation_rows(data: TrainingData) -> TrainingData:
    """Train on the training and validation rows together; the outputs on the validation rows
    are still computed (no longer held out)."""
    return replace(
        data,
        x_train=np.concatenate([data.x_train, data.x_val]),
        y_train=np.concatenate([data.y_train, data.y_val]),
    )


def fold_data(data: TrainingData, folds: int, fold: int, seed: int) -> TrainingData:
    """Fold ``fold`` of the training and validation rows together: train on the rest, validate
    on it."""
    x = np.concatenate([data.x_train, data.x_val])
    y = np.concatenate([data.y_train, data.y_val])
    tr, te = fold_indices(y, data.task, folds, seed)[fold]
    return TrainingData(
        x[tr], y[tr], x[te], y[te], data.task, data.n_outputs, data.input_shape, data.class_weights
    )


def magnitude_masks(weights: Sequence[np.ndarray], sparsity: float) -> list[np.ndarray | None]:
    """Per kernel (rank ≥ 2: dense and convolution kernels; biases and batch-norm statistics
    are not pruned), keep the largest-magnitude (1 − sparsity) fraction; None for the rest."""
    masks: list[np.ndarray | None] = []
    for w in weights:
        if w.ndim < 2:
            masks.append(None)
            continue
        k = int(round(sparsity * w.size))
        mask = np.ones(w.size, dtype=bool)
        if k > 0:
            order = np.argsort(np.abs(w).reshape(-1), kind="stable")
            mask[order[:k]] = False
        masks.append(mask.reshape(w.shape))
    return masks


def train_candidate(
    spec: CandidateSpec,
    data: TrainingData,
    on_epoch: EpochCallback | None = None,
    init_weights: Sequence[np.ndarray] | None = None,
) -> CandidateResult:
    """Train one subnetwork on its own loss (or fine-tune ``init_weights`` pruned, for
    ``kind="fine_tune"``); never raises for a training failure.

    A failure (bad hyperparameters, NaN loss, out of memory...) comes back as
    ``state="failed"`` with the traceback in ``error``, so the search records it and goes on.
    """
    from automl.errors import SearchCancelledError

    started = time.perf_counter()
    try:
        if spec.refit:
            data = with_validation_rows(data)
        if spec.kind == "fine_tune":
            if init_weights is None:
                raise ValueError(f"{spec.name}: a fine-tune needs the weights it starts from")
            return _fine_tune(spec, data, init_weights, started)
        if spec.kind != "train":
            raise ValueError(f"{spec.name}: unknown kind {spec.kind!r}")
        if spec.folds is not None and spec.fold is not None:
            data = fold_data(data, spec.folds, spec.fold, spec.fold_seed)
        return _train(spec, data, on_epoch, started)
    except SearchCancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a worker reports every failure as data
        return CandidateResult(
            spec=spec,
            state="failed",
            duration_s=time.perf_counter() - started,
            node=node_name(),
            error=traceback.format_exc(),
            failure_kind=failure_kind_of(exc),
        )


def _deadline(spec: CandidateSpec, started: float) -> list[Any]:
    """A callback that stops the training once it has run ``spec.timeout_s`` seconds (checked
    after every batch; an executor that can kill its worker also enforces it from outside)."""
    if not spec.timeout_s:
        return []
    import keras

    limit = float(spec.timeout_s)

    class Deadline(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if time.perf_counter() - started > limit:
                raise CandidateTimeoutError(
                    f"{spec.name} was still training after {limit:g} s "
                    "(candidate_timeout_s); stopped"
                )

    return [Deadline()]


def _train(
    spec: CandidateSpec, data: TrainingData, on_epoch: EpochCallback | None, started: float
) -> CandidateResult:
    import keras

    from automl.optimizers import create_optimizer, create_schedule

    enable_determinism(spec.seed)
    hp = spec.hparams
    shape = {
        "n_features": data.x_train.shape[1],
        "input_shape": data.input_shape,
        "n_outputs": data.n_outputs,
    }
    model = build_subnetwork(hp, shape, spec.name)
    batch_size = int(hp["batch_size"])
    steps = int(np.ceil(len(data.x_train) / batch_size))
    lr = create_schedule(
        str(hp["schedule"]),
        float(hp["learning_rate"]),
        steps_per_epoch=steps,
        epochs=spec.epochs,
        decay_power=float(hp.get("decay_power", 0.5)),
        decay_rate=float(hp.get("decay_rate", 0.9)),
    )
    model.compile(
        optimizer=create_optimizer(str(hp["optimizer"]), lr),
        loss=_loss(data.task),
        metrics=["accuracy"] if data.task == "classification" else ["mae"],
    )

    callbacks: list[Any] = [keras.callbacks.TerminateOnNaN(), *_deadline(spec, started)]
    if spec.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=spec.early_stopping_patience,
                restore_best_weights=True,
            )
        )
    pruned: list[int] = []  # the epoch after which the epoch hook pruned it
    if on_epoch is not None:
        report = on_epoch

        class _Progress(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                values = {k: float(v) for k, v in (logs or {}).items()}
                values["params"] = float(self.model.count_params())
                try:
                    report(epoch + 1, values)
                except CandidatePrunedError:
                    # stop at the epoch's end, as EarlyStopping does: fit returns normally,
                    # History has this epoch and the weights are those after it
                    pruned.append(epoch + 1)
                    self.model.stop_training = True

        callbacks.append(_Progress())

    train_started = time.perf_counter()
    history = model.fit(
        data.x_train,
        data.y_train,
        batch_size=batch_size,
        epochs=spec.epochs,
        validation_data=(data.x_val, data.y_val),
        class_weight=data.class_weights,
        callbacks=callbacks,
        verbose=0,
        shuffle=True,
    )
    train_s = time.perf_counter() - train_started
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    losses = hist.get("loss", [])
    if not losses or not np.all(np.isfinite(losses)):
        raise FloatingPointError(
            "training diverged (loss became NaN or infinite); "
            f"learning rate {hp['learning_rate']:.3g} with {hp['optimizer']} may be too high"
        )
    logits_train = model.predict(data.x_train, batch_size=1024, verbose=0)
    logits_val = model.predict(data.x_val, batch_size=1024, verbose=0)
    from automl.ensemble import task_loss, task_metrics

    own = task_metrics(logits_val, data.y_val, data.task)
    own["loss"] = task_loss(logits_val, data.y_val, data.task)
    epochs_run = len(losses)
    stopped = epochs_run < spec.epochs
    return CandidateResult(
        spec=spec,
        state="stopped_early" if stopped else "completed",
        stop_reason=("pruned" if pruned else "patience") if stopped else None,
        depth=int(hp["depth"]),
        params=int(model.count_params()),
        weights=[np.asarray(w) for w in model.get_weights()],
        logits_train=np.asarray(logits_train, np.float32),
        logits_val=np.asarray(logits_val, np.float32),
        own_metrics=own,
        history=hist,
        epochs_run=epochs_run,
        duration_s=time.perf_counter() - started,
        train_s=train_s,
        node=node_name(),
    )


def _fine_tune(
    spec: CandidateSpec, data: TrainingData, init_weights: Sequence[np.ndarray], started: float
) -> CandidateResult:
    """Zero the ``spec.sparsity`` smallest weights of each kernel, then train on the member's
    own loss with the mask held (re-applied after every step, so pruned weights stay exactly
    zero) for ``spec.epochs`` epochs at ``spec.tune_lr_scale`` of its learning rate (a tenth
    by default), held or decayed to zero (``spec.tune_schedule``)."""
    import keras

    from automl.optimizers import create_optimizer, create_schedule

    hp = spec.hparams
    masks = magnitude_masks(init_weights, float(spec.sparsity or 0.0))
    pruned = [w * m if m is not None else w for w, m in zip(init_weights, masks, strict=True)]
    shape = {
        "n_features": data.x_train.shape[1],
        "input_shape": data.input_shape,
        "n_outputs": data.n_outputs,
    }
    enable_determinism(spec.seed)  # as every candidate's training: same seed, same result
    model = build_subnetwork(hp, shape, spec.name)
    model.set_weights(pruned)
    train_started = time.perf_counter()
    if spec.epochs > 0:

        class HoldMask(keras.callbacks.Callback):
            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                # the masks line up with model.weights, the order get_weights() uses too
                for var, mask in zip(self.model.weights, masks, strict=True):
                    if mask is not None:
                        var.assign(var.numpy() * mask)

        if spec.tune_schedule not in ("constant", "cosine"):
            raise ValueError(f"{spec.name}: unknown fine-tune schedule {spec.tune_schedule!r}")
        lr = create_schedule(
            spec.tune_schedule,
            float(hp["learning_rate"]) * spec.tune_lr_scale,
            steps_per_epoch=int(np.ceil(len(data.x_train) / int(hp["batch_size"]))),
            epochs=spec.epochs,
        )
        model.compile(optimizer=create_optimizer(str(hp["optimizer"]), lr), loss=_loss(data.task))
        model.fit(
            data.x_train,
            data.y_train,
            batch_size=int(hp["batch_size"]),
            epochs=spec.epochs,
            verbose=0,
            callbacks=[HoldMask(), *_deadline(spec, started)],
            class_weight=data.class_weights,
        )
    train_s = time.perf_counter() - train_started
    # no multiply here: the callback alone keeps pruned weights at zero (the tests count them)
    weights = [np.asarray(w) for w in model.get_weights()]
    logits_train = model.predict(data.x_train, batch_size=1024, verbose=0)
    logits_val = model.predict(data.x_val, batch_size=1024, verbose=0)
    if not (np.all(np.isfinite(logits_train)) and np.all(np.isfinite(logits_val))):
        raise FloatingPointError("fine-tuning diverged (outputs became NaN or infinite)")
    return CandidateResult(
        spec=spec,
        state="completed",
        depth=int(hp["depth"]),
        params=int(model.count_params()),
        weights=weights,
        logits_train=np.asarray(logits_train, np.float32),
        logits_val=np.asarray(logits_val, np.float32),
        epochs_run=spec.epochs,
        duration_s=time.perf_counter() - started,
        train_s=train_s,
        node=node_name(),
    )
