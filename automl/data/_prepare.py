"""Stratified train/validation/test split, scaling (or a table's preprocessing) fitted on
train, class weights."""

from __future__ import annotations

import math

import numpy as np

from automl.data._dataset import Dataset, PreparedData
from automl.errors import TooFewRowsError

# Class weights switch on when the largest class is this many times the smallest.
IMBALANCE_RATIO = 1.5


def min_rows_per_class(test_fraction: float, validation_fraction: float, has_test: bool) -> int:
    """Fewest rows a class needs so that each split gets at least one."""
    fractions = [validation_fraction] + ([] if has_test else [test_fraction])
    return max(3 if not has_test else 2, math.ceil(1.0 / min(fractions)))


def prepare(
    dataset: Dataset,
    *,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.15,
    seed: int = 0,
) -> PreparedData:
    """Split with stratification (classification) and fit feature scaling on train only.

    ``validation_fraction`` is of all the rows that are not test rows. A dataset that ships its own
    test split (MNIST-1D) keeps it untouched.

    Raises:
        TooFewRowsError: A class (or the whole regression set) is too small for the split.
    """
    from sklearn.model_selection import train_test_split  # slow to import; only needed here

    has_test = dataset.x_test is not None
    stratify = dataset.task == "classification"
    needed = min_rows_per_class(test_fraction, validation_fraction, has_test)
    if stratify:
        counts = np.bincount(dataset.y.astype(np.int64), minlength=dataset.n_classes)
        for name, count in zip(dataset.label_names or [], counts, strict=True):
            if count < needed:
                raise TooFewRowsError(
                    f"class {name!r} has {int(count)} row(s); the stratified "
                    f"train/validation/test split needs at least {needed} rows of every class"
                )
    elif len(dataset.y) < needed * 2:
        raise TooFewRowsError(
            f"the data has {len(dataset.y)} rows; a train/validation/test split needs at least "
            f"{needed * 2}"
        )

    x, y = dataset.x, dataset.y
    if has_test:
        assert dataset.x_test is not None and dataset.y_test is not None
        x_rest, y_rest, x_test, y_test = x, y, dataset.x_test, dataset.y_test
    else:
        x_rest, x_test, y_rest, y_test = train_test_split(
            x, y, test_size=test_fraction, random_state=seed, stratify=y if stratify else None
        )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest,
        y_rest,
        test_size=validation_fraction,
        random_state=seed,
        stratify=y_rest if stratify else None,
    )
    fitted = None
    if dataset.raw_cells:
        # a table of raw cells: the model's own preprocessing layers, fitted on the training
        # split only, encode every split — what the candidates train on is exactly what the
        # exported model computes from a raw row
        from automl.data._columns import fit_columns
        from automl.preprocessing import encode_cells

        assert dataset.columns is not None
        fitted = fit_columns(x_train, dataset.columns)
        encoded = encode_cells(fitted, np.concatenate([x_train, x_val, x_test]))
        width = encoded.shape[1]
        mean, std = np.zeros(width, np.float32), np.ones(width, np.float32)
        x_test_raw = x_test
        x_train, x_val, x_test = np.split(encoded, [len(x_train), len(x_train) + len(x_val)])
    else:
        mean = x_train.mean(axis=0).astype(np.float32)
        std = x_train.std(axis=0).astype(np.float32)
        std[std < 1e-7] = 1.0  # constant columns stay as they are instead of dividing by zero
        x_test_raw = x_test.astype(np.float32)
        x_train, x_val, x_test = (
            ((a - mean) / std).astype(np.float32) for a in (x_train, x_val, x_test)
        )
    y_test_raw = y_test.copy()
    target_mean, target_std = 0.0, 1.0
    class_weights = None
    if dataset.task == "regression":
        target_mean = float(y_train.mean())
        target_std = float(y_train.std()) or 1.0
        y_train = ((y_train - target_mean) / target_std).astype(np.float32)
        y_val = ((y_val - target_mean) / target_std).astype(np.float32)
        y_test = ((y_test - target_mean) / target_std).astype(np.float32)
    else:
        counts = np.bincount(y_train.astype(np.int64), minlength=dataset.n_classes)
        if counts.max() > IMBALANCE_RATIO * max(counts.min(), 1):
            total, k = counts.sum(), len(counts)
            class_weights = {i: float(total / (k * max(c, 1))) for i, c in enumerate(counts)}
    return PreparedData(
        dataset=dataset,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        feature_mean=mean,
        feature_std=std,
        target_mean=target_mean,
        target_std=target_std,
        class_weights=class_weights,
        seed=seed,
        x_test_raw=x_test_raw,
        y_test_raw=y_test_raw,
        fitted_columns=fitted,
    )
