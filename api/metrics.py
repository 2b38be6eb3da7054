"""Prometheus metrics, read from the database at scrape time: jobs by state, candidates trained
by final state, and a histogram of candidate training time.

Nothing is counted in the process: any API process (``automl serve --workers N`` runs several,
and the controller in its own) answers ``/metrics`` with the same figures, and a restart loses
none. The candidate figures cover the candidates stored: deleting a job takes its candidates
out of them (Prometheus treats the drop as a counter reset).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from api.models import JobState

DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
# the states a candidate ends in: the ones counted as trained
FINAL_CANDIDATE_STATES = ("completed", "failed", "stopped_early")


@dataclass
class CandidateFigures:
    """Candidates that finished training, by state, and their durations in cumulative buckets
    (``le`` each of ``DURATION_BUCKETS``, then +Inf), with the durations' sum."""

    by_state: dict[str, int] = field(default_factory=dict)
    buckets: list[int] = field(default_factory=list)
    count: int = 0
    seconds: float = 0.0


class _FromDatabase(Collector):
    def __init__(
        self,
        job_counts: Callable[[], dict[str, int]],
        candidates: Callable[[], CandidateFigures],
    ) -> None:
        self.job_counts = job_counts
        self.candidates = candidates

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("automl_jobs", "Jobs by state", labels=["state"])
        counts = self.job_counts()
        for state in JobState:
            jobs.add_metric([state.value], counts.get(state.value, 0))
        yield jobs
        figures = self.candidates()
        trained = CounterMetricFamily(
            "automl_candidates_trained",
            "Candidates that finished training, by final state (stored candidates)",
            labels=["state"],
        )
        for final in FINAL_CANDIDATE_STATES:
            trained.add_metric([final], figures.by_state.get(final, 0))
        yield trained
        bounds = [str(float(b)) for b in DURATION_BUCKETS] + ["+Inf"]
        yield HistogramMetricFamily(
            "automl_candidate_duration_seconds",
            "Wall time of one candidate's training",
            buckets=list(zip(bounds, [*figures.buckets, figures.count], strict=True)),
            sum_value=figures.seconds,
        )


class Metrics:
    def __init__(
        self,
        job_counts: Callable[[], dict[str, int]],
        candidates: Callable[[], CandidateFigures] = CandidateFigures,
    ) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_FromDatabase(job_counts, candidates))
