"""Subnetwork builders: one per family, each turning sampled hyperparameters into a Keras model.

A subnetwork maps the flat, scaled feature vector to logits (one per class, or one value for
regression). Builders are deterministic for their inputs; randomness comes from the seed the
trainer sets.
"""

from __future__ import annotations

import abc
from typing import Any

from automl.spec import DenseSpace

# Hyperparameters every family shares; Optuna names them without a family prefix.
SHARED_PARAMS = (
    "optimizer",
    "learning_rate",
    "schedule",
    "decay_power",
    "decay_rate",
    "batch_size",
)


class SubnetworkBuilder(abc.ABC):
    """Builds one family of subnetworks and samples its hyperparameters."""

    family: str = ""
    # A configuration the first iteration tries before sampling (origin ``default``), as
    # AutoKeras's tuners try their blocks' initial hyperparameters first: one measured to train
    # well on this family's kind of data, so a short search starts from a strong member.
    # Keys it leaves out are sampled; it is skipped when it does not fit the spec's space.
    starting_hparams: dict[str, Any] | None = None

    @abc.abstractmethod
    def suggest(self, trial: Any, space: DenseSpace) -> dict[str, Any]:
        """Sample this family's hyperparameters from an Optuna trial (define-by-run).

        Parameter names are prefixed with the family so that conditional spaces stay apart.
        """

    @abc.abstractmethod
    def build(
        self,
        hparams: dict[str, Any],
        n_features: int,
        input_shape: tuple[int, ...] | None,
        n_outputs: int,
        name: str,
    ) -> Any:
        """Return an unbuilt-weights Keras model ``(batch, n_features) → (batch, n_outputs)``."""

    def _suggest_common(self, trial: Any, space: DenseSpace) -> dict[str, Any]:
        p = self.family
        return {
            "depth": trial.suggest_int(f"{p}.depth", space.depth.low, space.depth.high),
            "width": trial.suggest_categorical(f"{p}.width", space.width),
            "activation": trial.suggest_categorical(f"{p}.activation", space.activation),
            "dropout": trial.suggest_float(f"{p}.dropout", space.dropout.low, space.dropout.high),
            "l2": trial.suggest_float(f"{p}.l2", space.l2.low, space.l2.high, log=space.l2.log),
            "batch_norm": trial.suggest_categorical(f"{p}.batch_norm", space.batch_norm),
        }

    @staticmethod
    def to_trial_params(hparams: dict[str, Any]) -> dict[str, Any]:
        """Turn stored hyperparameters back into Optuna parameter names (for enqueue_trial)."""
        family = hparams["family"]
        shared = {*SHARED_PARAMS, "family"}
        return {(k if k in shared else f"{family}.{k}"): v for k, v in hparams.items()}
