"""Epoch reports and successive halving on a real Ray worker: the driver polls a training
worker's epochs, and a candidate it prunes stops after an epoch, without stopping the next
candidate that worker trains."""

from __future__ import annotations

import dataclasses
import os

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import pytest  # noqa: E402

from automl.data import load_builtin, prepare  # noqa: E402
from automl.generator import CandidateGenerator  # noqa: E402
from automl.spec import Resources, SearchSpec  # noqa: E402
from automl.training import CandidatePrunedError, CandidateSpec, TrainingData  # noqa: E402
from tests.conftest import tiny_spec_dict  # noqa: E402
from tests.integration.test_ray_executor import ray_cluster  # noqa: E402
from workers.ray_executor import RayExecutor  # noqa: E402

# long enough (seconds on 2 busy cores) for a poll to catch it mid-training
LONG_EPOCHS = 40
PRUNE_AT = 2


@pytest.mark.timeout(300)
def test_a_pruned_candidate_stops_early_on_its_worker_and_the_next_one_does_not() -> None:
    data = TrainingData.from_prepared(prepare(load_builtin("digits"), seed=0))
    spec = SearchSpec.from_dict(
        tiny_spec_dict(families=["dense"], candidates_per_iteration=2, batch_size=[32])
    )
    first, second = CandidateGenerator(spec, ["dense"]).propose(0, None)
    first = dataclasses.replace(first, epochs=LONG_EPOCHS)
    second = dataclasses.replace(second, epochs=3)
    seen: dict[str, list[int]] = {first.name: [], second.name: []}

    def on_epoch(c: CandidateSpec, epoch: int, logs: dict[str, float]) -> None:
        seen[c.name].append(epoch)
        assert "val_loss" in logs and logs["params"] > 0
        if c.name == first.name and epoch >= PRUNE_AT:
            raise CandidatePrunedError(f"{c.name}: pruned")

    with ray_cluster(1):
        ex = RayExecutor(Resources(cpus=1))  # one worker: the second runs where the first ran
        ex.start(data)
        results = {r.spec.name: r for r in ex.run([first, second], on_epoch)}
    pruned, after = results[first.name], results[second.name]
    assert pruned.state == "stopped_early" and pruned.stop_reason == "pruned", pruned.error
    # the news reaches the worker an epoch or a few late, never after the whole training
    assert PRUNE_AT <= pruned.epochs_run < LONG_EPOCHS
    assert len(pruned.weights) > 0 and pruned.logits_val is not None
    # the prune flag was for the first candidate only
    assert (after.state, after.stop_reason, after.epochs_run) == ("completed", None, 3)
    # every epoch reported once, in order (polled while training, the rest from the result)
    assert seen == {
        first.name: list(range(1, pruned.epochs_run + 1)),
        second.name: [1, 2, 3],
    }
