from __future__ import annotations

import keras
import numpy as np
import pytest

from automl.errors import SpecError
from automl.optimizers import InverseTimePower, create_optimizer, create_schedule, optimizers

ALL_OPTIMIZERS = ["sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam"]
ALL_SCHEDULES = ["constant", "inverse_time", "exponential", "cosine"]


def test_every_optimizer_of_the_seed_is_registered() -> None:
    assert optimizers.names() == sorted(ALL_OPTIMIZERS)


@pytest.mark.parametrize("schedule", ALL_SCHEDULES)
@pytest.mark.parametrize("name", ALL_OPTIMIZERS)
def test_every_optimizer_and_schedule_builds_and_takes_a_step(name: str, schedule: str) -> None:
    keras.utils.set_random_seed(0)
    lr = create_schedule(schedule, 0.05, steps_per_epoch=4, epochs=2)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=create_optimizer(name, lr), loss="mse")
    before = [w.copy() for w in model.get_weights()]
    model.fit(np.ones((8, 3)), np.zeros(8), batch_size=4, epochs=1, verbose=0)
    after = model.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(before, after, strict=True))


def test_momentum_and_nesterov_are_configured_as_named() -> None:
    assert create_optimizer("momentum", 0.1).momentum == pytest.approx(0.9)
    nesterov = create_optimizer("nesterov", 0.1)
    assert nesterov.nesterov and nesterov.momentum == pytest.approx(0.9)
    assert not create_optimizer("sgd", 0.1).nesterov


@pytest.mark.parametrize("power", [0.5, 1.0, 2.0])
def test_inverse_time_gives_eta0_over_t_to_the_n(power: float) -> None:
    schedule = create_schedule("inverse_time", 0.1, steps_per_epoch=10, decay_power=power)
    assert isinstance(schedule, InverseTimePower)
    for epoch in range(5):
        t = epoch + 1  # η_t counts epochs from t = 1
        got = float(schedule(epoch * 10))
        assert got == pytest.approx(0.1 / t**power, rel=1e-5)


def test_inverse_time_schedule_round_trips_through_its_config() -> None:
    schedule = InverseTimePower(0.2, 7, 0.75)
    again = InverseTimePower.from_config(schedule.get_config())
    assert float(again(21)) == pytest.approx(float(schedule(21)))


def test_unknown_optimizer_is_rejected_with_the_valid_names() -> None:
    with pytest.raises(SpecError, match="unknown optimizer 'lion'; choose one of: adadelta"):
        create_optimizer("lion", 0.1)


def test_cosine_decays_to_zero_over_the_run() -> None:
    schedule = create_schedule("cosine", 0.1, steps_per_epoch=5, epochs=4)
    assert float(schedule(0)) == pytest.approx(0.1)
    assert float(schedule(20)) == pytest.approx(0.0, abs=1e-7)
