from __future__ import annotations

import os
import random

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def _seed_rngs() -> None:
    """Every test starts from the same random state."""
    random.seed(1234)
    np.random.seed(1234)


def tiny_spec_dict(**overrides: object) -> dict[str, object]:
    """A spec small enough for 2 cores: 2 iterations, 2 candidates, 2 epochs."""
    spec: dict[str, object] = {
        "max_iterations": 2,
        "candidates_per_iteration": 2,
        "epochs": 2,
        "batch_size": [64],
        "seed": 7,
        # a small evaluation phase: one sparsity level, one fine-tuning epoch, no CV
        "evaluation": {"cv_folds": 0, "sparsities": [0.5], "fine_tune_epochs": 1, "grow": False},
    }
    spec.update(overrides)
    return spec
