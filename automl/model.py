"""The final ensemble as one Keras model that takes raw features.

raw features → Normalization (statistics of the training split) → each member subnetwork →
MixtureWeights (Σ_j w_j·h_j + b) → softmax probabilities, or the target back in its own units.

A table of raw cells (a CSV with categorical, ignored or partly missing columns) takes its rows
as text instead — a string tensor, one cell per column — and its first layers are the table's
preprocessing (:mod:`automl.preprocessing`: parse, impute, Normalization, StringLookup one-hot)
in place of the Normalization alone.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from automl.data import PreparedData
from automl.ensemble import Member, MixtureFit
from automl.preprocessing import table_block  # also registers its layers for load_model
from automl.training import build_subnetwork


@keras.saving.register_keras_serializable(package="automl")
class MixtureWeights(keras.layers.Layer):
    """Combines member outputs: f(x) = Σ_j w_j·h_j(x) + b, w_j scalar (``scalar``, and
    ``mean`` with every w_j = 1/k) or one per output (``vector``)."""

    def __init__(self, n_members: int, n_outputs: int, weight_type: str = "scalar", **kwargs: Any):
        super().__init__(**kwargs)
        self.n_members = int(n_members)
        self.n_outputs = int(n_outputs)
        self.weight_type = weight_type

    def build(self, input_shape: Any) -> None:
        shape = (
            (self.n_members, self.n_outputs) if self.weight_type == "vector" else (self.n_members,)
        )
        self.mixture = self.add_weight(name="mixture", shape=shape, initializer="zeros")
        self.bias = self.add_weight(name="bias", shape=(self.n_outputs,), initializer="zeros")

    def call(self, inputs: Any) -> Any:
        stacked = keras.ops.stack(list(inputs), axis=1)  # (batch, k, C)
        w = self.mixture
        w = (
            keras.ops.expand_dims(w, 0)
            if self.weight_type == "vector"
            else keras.ops.reshape(w, (1, self.n_members, 1))
        )
        return keras.ops.sum(stacked * w, axis=1) + self.bias

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (input_shape[0][0], self.n_outputs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            n_members=self.n_members, n_outputs=self.n_outputs, weight_type=self.weight_type
        )
        return config


def data_info(data: PreparedData) -> dict[str, Any]:
    """The preprocessing and shapes a model needs, as plain JSON.

    ``n_features``/``feature_names`` are the raw input columns (what the model takes);
    ``n_encoded`` is what the members take. ``input_dtype`` is ``string`` for a table of raw
    cells, whose ``columns`` hold the fitted preprocessing of each column, else ``float32``.
    """
    ds = data.dataset
    return {
        "task": ds.task,
        "input_dtype": "string" if data.fitted_columns else "float32",
        "columns": data.fitted_columns,
        "n_encoded": int(data.x_train.shape[1]),
        "n_features": ds.n_features,
        "input_shape": list(ds.input_shape) if ds.input_shape else None,
        "n_outputs": data.n_outputs,
        "feature_names": ds.feature_names,
        "label_names": ds.label_names,
        "feature_mean": data.feature_mean.tolist(),
        "feature_std": data.feature_std.tolist(),
        "target_mean": data.target_mean,
        "target_std": data.target_std,
    }


def build_member_model(member: Member, info: dict[str, Any]) -> keras.Model:
    """A member's subnetwork with its trained weights: scaled (encoded) features → logits."""
    shape = {**info, "n_features": info.get("n_encoded", info["n_features"])}
    model = build_subnetwork(member.hparams, shape, member.name)
    model.set_weights(list(member.weights))
    return model


def member_logits(member: Member, data: PreparedData) -> tuple[np.ndarray, np.ndarray]:
    """A member's logits on the (scaled) training and validation splits."""
    model = build_member_model(member, data_info(data))
    return (
        np.asarray(model.predict(data.x_train, batch_size=1024, verbose=0), np.float32),
        np.asarray(model.predict(data.x_val, batch_size=1024, verbose=0), np.float32),
    )


def build_ensemble_model(
    members: list[Member], fit: MixtureFit, info: dict[str, Any], weight_type: str
) -> keras.Model:
    """One Keras model for the whole ensemble, taking raw features (or a table's raw cells)."""
    if info.get("input_dtype") == "string":
        inputs = keras.Input((int(info["n_features"]),), dtype="string", name="cells")
        h = table_block(inputs, info["columns"])
    else:
        inputs = keras.Input((int(info["n_features"]),), name="features")
        variance = np.square(np.asarray(info["feature_std"], np.float32))
        h = keras.layers.Normalization(
            mean=np.asarray(info["feature_mean"], np.float32), variance=variance, name="scaling"
        )(inputs)
    outputs = [build_member_model(m, info)(h) for m in members]
    mixture = MixtureWeights(len(members), int(info["n_outputs"]), weight_type, name="mixture")
    z = mixture(outputs)
    mixture.set_weights([np.asarray(fit.weights, np.float32), np.asarray(fit.bias, np.float32)])
    if info["task"] == "classification":
        out = keras.layers.Softmax(name="probabilities")(z)
    else:
        out = keras.layers.Rescaling(
            scale=float(info["target_std"]), offset=float(info["target_mean"]), name="target"
        )(z)
    return keras.Model(inputs, out, name="adanet_ensemble")
