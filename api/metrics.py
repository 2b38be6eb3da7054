"""Prometheus metrics: jobs by state (read from the database at scrape time), candidates
trained, and a histogram of candidate training time."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.models import JobState


class _JobsByState(Collector):
    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("automl_jobs", "Jobs by state", labels=["state"])
        counts = self.counts()
        for state in JobState:
            family.add_metric([state.value], counts.get(state.value, 0))
        yield family


class Metrics:
    def __init__(self, job_counts: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_JobsByState(job_counts))
        self.candidates = Counter(
            "automl_candidates_trained",
            "Candidates that finished training, by final state",
            ["state"],
            registry=self.registry,
        )
        self.candidate_seconds = Histogram(
            "automl_candidate_duration_seconds",
            "Wall time of one candidate's training",
            buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
            registry=self.registry,
        )
