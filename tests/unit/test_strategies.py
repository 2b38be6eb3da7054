from __future__ import annotations

import pytest

from automl.ensemble import create_strategy
from automl.errors import SpecError


def test_grow_adds_each_new_subnetwork_to_the_frozen_members() -> None:
    cands = create_strategy("grow").candidates(["t0_c1"], ["t1_c0", "t1_c1"])
    assert [c.members for c in cands] == [("t0_c1", "t1_c0"), ("t0_c1", "t1_c1")]
    assert [c.new_members for c in cands] == [("t1_c0",), ("t1_c1",)]


def test_solo_puts_each_new_subnetwork_alone() -> None:
    cands = create_strategy("solo").candidates(["t0_c1"], ["t1_c0", "t1_c1"])
    assert [c.members for c in cands] == [("t1_c0",), ("t1_c1",)]


def test_all_forms_one_candidate_with_every_new_subnetwork() -> None:
    cands = create_strategy("all").candidates(["t0_c1"], ["t1_c0", "t1_c1"])
    assert len(cands) == 1
    assert cands[0].members == ("t0_c1", "t1_c0", "t1_c1")
    assert create_strategy("all").candidates(["t0_c1"], []) == []


def test_unknown_strategy_lists_the_valid_ones() -> None:
    with pytest.raises(
        SpecError, match="unknown ensemble strategy .bagging.; choose one of: all, grow, solo"
    ):
        create_strategy("bagging")
