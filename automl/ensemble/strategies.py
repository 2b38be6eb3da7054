"""The three strategies of adanet: grow, solo and all."""

from __future__ import annotations

from automl.ensemble._base import Candidate, Strategy


class GrowStrategy(Strategy):
    """Previous members (frozen) plus one new subnetwork: one candidate per new subnetwork."""

    name = "grow"

    def candidates(self, previous: list[str], new: list[str]) -> list[Candidate]:
        return [Candidate(f"{n}/grow", self.name, (*previous, n), (n,)) for n in new]


class SoloStrategy(Strategy):
    """Each new subnetwork alone: lets a better single model replace the whole ensemble."""

    name = "solo"

    def candidates(self, previous: list[str], new: list[str]) -> list[Candidate]:
        return [Candidate(f"{n}/solo", self.name, (n,), (n,)) for n in new]


class AllStrategy(Strategy):
    """Previous members plus every new subnetwork of the iteration, in one candidate."""

    name = "all"

    def candidates(self, previous: list[str], new: list[str]) -> list[Candidate]:
        if not new:
            return []
        iteration_tag = new[0].split("_")[0]
        return [Candidate(f"{iteration_tag}/all", self.name, (*previous, *new), tuple(new))]
