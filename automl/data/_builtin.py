"""Built-in datasets, all generated or shipped offline (nothing downloads at run time)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from automl.data._dataset import Dataset
from automl.errors import UnknownDatasetError

_DESCRIPTIONS: dict[str, str] = {
    "digits": "8x8 handwritten digit images, 10 classes, 1797 rows (scikit-learn)",
    "mnist1d": "MNIST-1D sequences of 40 values, 10 classes, 4000 train / 1000 test (generated)",
    "breast_cancer": "Wisconsin breast cancer, 30 features, 2 classes, 569 rows (scikit-learn)",
    "wine": "Wine cultivars, 13 features, 3 classes, 178 rows (scikit-learn)",
    "iris": "Iris flowers, 4 features, 3 classes, 150 rows (scikit-learn)",
    "diabetes": "Diabetes progression, 10 features, regression, 442 rows (scikit-learn)",
}


def _sklearn(name: str) -> Dataset:
    from sklearn import datasets as skd

    loaders: dict[str, Callable[..., object]] = {
        "digits": skd.load_digits,
        "breast_cancer": skd.load_breast_cancer,
        "wine": skd.load_wine,
        "iris": skd.load_iris,
        "diabetes": skd.load_diabetes,
    }
    bunch = loaders[name]()
    x = np.asarray(bunch.data, dtype=np.float32)  # type: ignore[attr-defined]
    target = np.asarray(bunch.target)  # type: ignore[attr-defined]
    features = [str(f) for f in getattr(bunch, "feature_names", [])] or [
        f"x{i}" for i in range(x.shape[1])
    ]
    if name == "diabetes":
        return Dataset(
            name=name,
            x=x,
            y=target.astype(np.float32),
            task="regression",
            feature_names=features,
            source={"builtin": name},
            task_rule="built-in dataset: regression",
        )
    labels = [str(t) for t in getattr(bunch, "target_names", np.unique(target))]
    return Dataset(
        name=name,
        x=x,
        y=target.astype(np.int64),
        task="classification",
        feature_names=features,
        label_names=labels,
        input_shape=(8, 8, 1) if name == "digits" else None,
        source={"builtin": name},
        task_rule="built-in dataset: classification",
    )


def _mnist1d() -> Dataset:
    import mnist1d.data

    # get_dataset() would try to download; make_dataset() generates the same set locally.
    data = mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())
    length = int(np.asarray(data["x"]).shape[1])
    return Dataset(
        name="mnist1d",
        x=np.asarray(data["x"], dtype=np.float32),
        y=np.asarray(data["y"], dtype=np.int64),
        task="classification",
        feature_names=[f"t{i}" for i in range(length)],
        label_names=[str(i) for i in range(10)],
        input_shape=(length, 1),
        source={"builtin": "mnist1d"},
        x_test=np.asarray(data["x_test"], dtype=np.float32),
        y_test=np.asarray(data["y_test"], dtype=np.int64),
        task_rule="built-in dataset: classification",
    )


_KINDS = {"digits": "image", "mnist1d": "sequence"}


def builtin_kind(name: str) -> str:
    """``image``, ``sequence`` or ``table``, without loading the data."""
    if name not in _DESCRIPTIONS:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; built-in datasets are: {', '.join(sorted(_DESCRIPTIONS))}"
        )
    return _KINDS.get(name, "table")


def builtin_datasets() -> dict[str, str]:
    """Built-in dataset names with a one-line description."""
    return dict(_DESCRIPTIONS)


def load_builtin(name: str) -> Dataset:
    """Load a built-in dataset by name."""
    if name not in _DESCRIPTIONS:
        raise UnknownDatasetError(
            f"unknown dataset {name!r}; built-in datasets are: {', '.join(sorted(_DESCRIPTIONS))}"
        )
    return _mnist1d() if name == "mnist1d" else _sklearn(name)
