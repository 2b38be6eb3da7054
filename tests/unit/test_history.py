"""Meta-features, dataset similarity and warm-start configurations in the candidate generator."""

from __future__ import annotations

import math

import pytest

from automl.data import load_builtin, prepare
from automl.errors import SpecError
from automl.generator import CandidateGenerator, check_configuration
from automl.meta import meta_features, meta_from_counts, similarity
from automl.spec import SearchSpec
from tests.conftest import tiny_spec_dict

# A dense configuration inside the tiny spec's space (batch size 64) and the default one.
GOOD = {
    "family": "dense",
    "depth": 2,
    "width": 128,
    "activation": "elu",
    "dropout": 0.1,
    "l2": 1e-4,
    "batch_norm": False,
    "optimizer": "adam",
    "learning_rate": 0.002,
    "schedule": "cosine",
    "batch_size": 64,
}


def _spec(**overrides: object) -> SearchSpec:
    return SearchSpec.from_dict(tiny_spec_dict(**overrides))


# ---- meta-features ------------------------------------------------------------------------------
def test_meta_features_describe_task_size_shape_and_balance() -> None:
    iris = meta_features(load_builtin("iris"))
    assert iris == {
        "task": "classification",
        "rows": 150,
        "features": 4,
        "input_shape": None,
        "input_rank": 1,
        "classes": 3,
        "class_balance": 1.0,
        "class_entropy": 1.0,
    }
    digits = meta_features(load_builtin("digits"))
    assert digits["input_shape"] == [8, 8, 1] and digits["input_rank"] == 3
    assert digits["classes"] == 10 and 0.9 < digits["class_balance"] < 1.0
    diabetes = meta_features(load_builtin("diabetes"))
    assert diabetes["task"] == "regression" and diabetes["classes"] == 0
    assert diabetes["class_balance"] is None and diabetes["class_entropy"] is None


def test_meta_features_of_a_split_are_those_of_its_whole_dataset() -> None:
    wine = load_builtin("wine")
    prepared = prepare(wine, seed=3)
    assert meta_features(prepared) == meta_features(wine)
    # what a service keeps of an upload gives the same meta-features
    summary = meta_from_counts("classification", 178, 13, None, wine.class_counts())
    assert summary == meta_features(wine)
    assert summary["class_balance"] == pytest.approx(48 / 71, abs=1e-6)


def test_an_imbalanced_dataset_has_low_balance_and_entropy() -> None:
    meta = meta_from_counts("classification", 1000, 5, None, [950, 50])
    assert meta["class_balance"] == pytest.approx(50 / 950, abs=1e-6)
    assert 0.2 < meta["class_entropy"] < 0.4


# ---- similarity ---------------------------------------------------------------------------------
def test_similarity_is_one_for_the_same_data_and_zero_across_tasks() -> None:
    iris = meta_features(load_builtin("iris"))
    diabetes = meta_features(load_builtin("diabetes"))
    assert similarity(iris, iris) == 1.0
    assert similarity(iris, diabetes) == 0.0 == similarity(diabetes, iris)


def test_similarity_falls_with_the_order_of_magnitude_of_the_gap() -> None:
    base = meta_from_counts("classification", 1000, 10, None, [500, 500])
    ten_times = meta_from_counts("classification", 10_000, 10, None, [5000, 5000])
    hundred_times = meta_from_counts("classification", 100_000, 10, None, [50_000, 50_000])
    assert similarity(base, ten_times) == pytest.approx(math.exp(-1))
    assert similarity(base, hundred_times) == pytest.approx(math.exp(-2))
    assert similarity(base, ten_times) == similarity(ten_times, base)
    image = meta_from_counts("classification", 1000, 10, [10, 1, 1], [500, 500])
    assert similarity(base, image) == pytest.approx(math.exp(-1))


def test_similar_tables_rank_above_an_image_set() -> None:
    iris, wine, digits = (meta_features(load_builtin(n)) for n in ("iris", "wine", "digits"))
    assert similarity(iris, wine) > similarity(iris, digits) > 0


# ---- the spec -----------------------------------------------------------------------------------
def test_warm_start_configurations_round_trip_and_are_checked() -> None:
    spec = _spec(warm_start=True, warm_start_configurations=[GOOD])
    assert SearchSpec.from_json(spec.to_json()) == spec
    assert SearchSpec().warm_start is False and SearchSpec().warm_start_configurations == []
    for bad, message in [
        ([{"depth": 2}], "warm_start_configurations: configuration 0 needs a 'family'"),
        ([GOOD, {"family": "dense", "width": [64]}], "configuration 1: 'width' must be a number"),
        ([GOOD] * 21, "warm_start_configurations: List should have at most 20 items"),
        (["dense"], "warm_start_configurations.0: Input should be a valid dictionary"),
        ([{**GOOD, "activation": "x" * 65}], "'activation' must be a number, a string of at"),
    ]:
        with pytest.raises(SpecError) as err:
            _spec(warm_start_configurations=bad)
        assert message in str(err.value)


def test_a_configuration_must_fit_the_families_and_the_space() -> None:
    spec = _spec()
    assert check_configuration(spec, ["dense"], GOOD) is None
    assert check_configuration(spec, ["dense"], {"family": "dense", "depth": 1}) is None
    cases = [
        ({**GOOD, "family": "conv2d"}, "family 'conv2d' does not apply here"),
        ({**GOOD, "width": 100}, "width=100 is not one of the spec's choices"),
        ({**GOOD, "batch_size": 32}, "batch_size=32 is not one of the spec's choices [64]"),
        ({**GOOD, "depth": 9}, "depth=9 is outside the spec's range [1, 3]"),
        ({**GOOD, "learning_rate": 0.5}, "learning_rate=0.5 is outside the spec's range"),
        ({**GOOD, "batch_norm": 1}, "batch_norm=1 is not one of the spec's choices"),
        ({**GOOD, "filters": 32}, "'filters' is not a hyperparameter of the dense family"),
    ]
    for hp, message in cases:
        assert message in (check_configuration(spec, ["dense"], hp) or "")


# ---- the generator ------------------------------------------------------------------------------
def test_warm_start_configurations_are_proposed_first_with_origin_history() -> None:
    other = {**GOOD, "depth": 1, "width": 64, "activation": "relu", "learning_rate": 0.001}
    spec = _spec(candidates_per_iteration=3, warm_start_configurations=[GOOD, other])
    gen = CandidateGenerator(spec, ["dense"])
    first = gen.propose(0, None)
    assert [s.origin for s in first] == ["history", "history", "sampled"]
    assert first[0].hparams == GOOD and first[1].hparams == other
    assert gen.notes == []
    for s in first:
        gen.tell(s.name, 0.5, 0.1)
    # later iterations sample (and build on the chosen member) as before
    second = gen.propose(1, first[0].hparams)
    assert [s.origin for s in second] == ["paper_same_depth", "paper_deeper", "sampled"]


def test_configurations_that_do_not_fit_are_skipped_with_a_note() -> None:
    partial = {"family": "dense", "depth": 3, "optimizer": "rmsprop"}
    spec = _spec(
        candidates_per_iteration=3,
        warm_start_configurations=[
            {**GOOD, "family": "conv1d"},
            {**GOOD, "width": 7},
            partial,
            {"family": "transformer"},
        ],
    )
    gen = CandidateGenerator(spec, ["dense"])
    first = gen.propose(0, None)
    assert [s.origin for s in first] == ["history", "sampled", "sampled"]
    # the keys a configuration leaves out are sampled
    assert first[0].hparams["depth"] == 3 and first[0].hparams["optimizer"] == "rmsprop"
    assert set(first[0].hparams) >= {"width", "learning_rate", "schedule", "batch_size"}
    assert len(gen.notes) == 3
    assert gen.notes[0].startswith("warm-start configuration 1 of 4 skipped: family 'conv1d'")
    assert "configuration 2 of 4 skipped: width=7" in gen.notes[1]
    assert "configuration 4 of 4 skipped: family 'transformer'" in gen.notes[2]


def test_more_configurations_than_candidates_fill_the_first_iteration_only() -> None:
    configs = [{**GOOD, "learning_rate": lr} for lr in (0.001, 0.002, 0.003)]
    spec = _spec(candidates_per_iteration=2, warm_start_configurations=configs)
    gen = CandidateGenerator(spec, ["dense"])
    first = gen.propose(0, None)
    assert [s.hparams["learning_rate"] for s in first] == [0.001, 0.002]
    assert [s.origin for s in first] == ["history", "history"]
    assert gen.notes == ["1 warm-start configuration(s) left out: iteration 0 has 2 candidates"]


def test_the_same_spec_gives_the_same_proposals() -> None:
    spec = _spec(candidates_per_iteration=3, warm_start_configurations=[GOOD])

    def run() -> list[tuple[str, dict]]:
        gen = CandidateGenerator(spec, ["dense"])
        out = []
        for t in range(2):
            specs = gen.propose(t, None if t == 0 else GOOD)
            for i, s in enumerate(specs):
                gen.tell(s.name, 0.5 + 0.1 * i, 0.1)
            out += [(s.origin, s.hparams) for s in specs]
        return out

    assert run() == run()
    # without the warm start the first iteration is sampled from the same seed instead
    gen = CandidateGenerator(_spec(candidates_per_iteration=3), ["dense"])
    assert [s.origin for s in gen.propose(0, None)] == ["sampled"] * 3
