"""A table's preprocessing inside the model: raw text cells in, the encoded numeric features out.

The model of a table of raw cells takes one string tensor ``(batch, columns)`` — each cell as the
CSV holds it, empty cells included — and encodes it with Keras' own preprocessing layers, fitted
on the training split (:func:`automl.data.fit_columns` gives their statistics):

- numeric columns: the cell parsed as a number (``NumericCells``; a missing cell becomes the
  training median), then ``keras.layers.Normalization`` with the training mean and variance;
- categorical columns: the cell's category token (``CategoryCells``; a missing cell becomes the
  most frequent training category), then ``keras.layers.StringLookup`` one-hot with one
  out-of-vocabulary bucket, where a value never seen in training goes;
- a missing-indicator feature (``MissingCells``) for every column that had missing cells in
  training; ignored columns are not read.

The three small layers here only parse cells (TensorFlow string ops: the preprocessing layers of
Keras 3 run on TensorFlow too); they are registered, so a ``.keras`` file loads once this
module is imported (``automl.model`` imports it), and they export to a SavedModel like any
layer. The same layers encode the training data (:func:`encode_cells`), so what the candidates
train on is exactly what the exported model computes from a raw row.

``keras.utils.FeatureSpace`` does the same from a dict of per-column inputs; a single string
tensor is kept here instead so that a raw row is one list of cells in ``model.predict``, the
SavedModel's ``serve`` signature and TF Serving alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from automl.data._columns import (
    INTEGER_PATTERN,
    INTEGER_REWRITE,
    MISSING_PATTERN,
    OOV_TOKEN,
    encoded_layout,
)


def _missing(tf: Any, cells: Any) -> Any:
    return tf.strings.regex_full_match(tf.strings.lower(cells), MISSING_PATTERN)


def _columns(tf: Any, cells: Any, columns: Sequence[int]) -> Any:
    return tf.strings.strip(tf.gather(cells, list(columns), axis=1))


@keras.saving.register_keras_serializable(package="automl")
class NumericCells(keras.layers.Layer):
    """Cells of numeric columns → float32; a missing cell → that column's ``fill`` value.

    A cell that is neither missing nor a number fails the call (TensorFlow's
    ``InvalidArgumentError``); :func:`automl.export.parse_table_rows` refuses it before.
    """

    def __init__(self, columns: Sequence[int], fill: Sequence[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.columns = [int(c) for c in columns]
        self.fill = [float(f) for f in fill]

    def call(self, cells: Any) -> Any:
        import tensorflow as tf

        x = _columns(tf, cells, self.columns)
        missing = _missing(tf, x)
        values = tf.strings.to_number(tf.where(missing, "0", x), tf.float32)
        return tf.where(missing, tf.constant([self.fill], tf.float32), values)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (input_shape[0], len(self.columns))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(columns=self.columns, fill=self.fill)
        return config


@keras.saving.register_keras_serializable(package="automl")
class MissingCells(keras.layers.Layer):
    """1.0 where a cell of the given columns is missing, else 0.0 (the missing indicators)."""

    def __init__(self, columns: Sequence[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.columns = [int(c) for c in columns]

    def call(self, cells: Any) -> Any:
        import tensorflow as tf

        return tf.cast(_missing(tf, _columns(tf, cells, self.columns)), tf.float32)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (input_shape[0], len(self.columns))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(columns=self.columns)
        return config


@keras.saving.register_keras_serializable(package="automl")
class CategoryCells(keras.layers.Layer):
    """One categorical column's cells → their category tokens ``(batch, 1)``: stripped, whole
    numbers in their plain form (``"03"``, ``"3.0"`` → ``"3"``), a missing cell → ``fill``."""

    def __init__(self, column: int, fill: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.column = int(column)
        self.fill = str(fill)

    def call(self, cells: Any) -> Any:
        import tensorflow as tf

        x = _columns(tf, cells, [self.column])
        token = tf.strings.regex_replace(x, f"^{INTEGER_PATTERN}$", INTEGER_REWRITE)
        token = tf.strings.regex_replace(token, "^-0$", "0")
        return tf.where(_missing(tf, x), self.fill, token)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, ...]:
        return (input_shape[0], 1)

    def compute_output_spec(self, inputs: Any) -> Any:
        return keras.KerasTensor((inputs.shape[0], 1), dtype="string")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(column=self.column, fill=self.fill)
        return config


def table_block(cells: Any, fitted: Sequence[Mapping[str, Any]]) -> Any:
    """The preprocessing layers applied to the string input ``cells``: the encoded features,
    in the order of :func:`automl.data._columns.encoded_layout`."""
    layout = encoded_layout(fitted)
    parts = []
    if layout["numeric"]:
        cols = [fitted[j] for j in layout["numeric"]]
        values = NumericCells(layout["numeric"], [c["fill"] for c in cols], name="table_numbers")(
            cells
        )
        parts.append(
            keras.layers.Normalization(
                mean=np.array([c["mean"] for c in cols], np.float32),
                variance=np.square(np.array([c["std"] for c in cols], np.float32)),
                name="table_scaling",
            )(values)
        )
    if layout["indicator"]:
        parts.append(MissingCells(layout["indicator"], name="table_missing")(cells))
    for j in layout["categorical"]:
        c = fitted[j]
        tokens = CategoryCells(j, c["fill"], name=f"table_tokens_{j}")(cells)
        parts.append(
            keras.layers.StringLookup(
                vocabulary=list(c["vocabulary"]),
                num_oov_indices=1,
                oov_token=OOV_TOKEN,
                output_mode="one_hot",
                name=f"table_lookup_{j}",
            )(tokens)
        )
    if len(parts) == 1:
        return parts[0]
    return keras.layers.Concatenate(name="table_features")(parts)


def preprocessing_model(fitted: Sequence[Mapping[str, Any]]) -> keras.Model:
    """The preprocessing alone: raw cells ``(batch, columns)`` → encoded features."""
    cells = keras.Input((len(fitted),), dtype="string", name="cells")
    return keras.Model(cells, table_block(cells, fitted), name="table_preprocessing")


def cells_tensor(cells: np.ndarray) -> Any:
    """Raw cells (an object array of text) as the string tensor the model takes."""
    import tensorflow as tf

    return tf.constant(np.asarray(cells, dtype=object), tf.string)


def encode_cells(
    fitted: Sequence[Mapping[str, Any]], cells: np.ndarray, batch_size: int = 8192
) -> np.ndarray:
    """Encode raw cells with the preprocessing layers: the matrix the candidates train on."""
    model = preprocessing_model(fitted)
    out = [
        np.asarray(model(cells_tensor(cells[i : i + batch_size]), training=False), np.float32)
        for i in range(0, len(cells), batch_size)
    ]
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)
