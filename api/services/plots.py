"""Plot data, built on the server as Plotly figures (``{"data", "layout", "meta"}``).

Any client can draw them (the dashboard hands them to Plotly.js as they are). Each point of a
candidate carries its name in ``customdata``, so hovering shows the candidate and a click can
open it. Plots of many candidates are capped at ``max_points``: the chosen candidates, the one
with the lowest objective F and the Pareto front are always kept, the rest is an even sample in
training order (the same on every refresh). ``meta`` says how many points there are and how
many are shown.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from api.artifacts import ArtifactStore
from api.errors import NotFoundError
from api.repositories import CandidateRepository, IterationRepository
from api.services.jobs import JobService
from api.services.results import ResultService, candidate_of_ensemble

DEFAULT_MAX_POINTS = 2000
# every panel of the hyperparameter plot draws each candidate once: fewer per panel keeps the
# figure quick to draw in a browser
DEFAULT_MAX_HPARAM_POINTS = 600
PLOT_NAMES = ("growth", "loss_complexity", "hparams", "sparsity", "curves")
# hyperparameters shown against F, in this order when present; others follow alphabetically
_HPARAM_ORDER = (
    "family",
    "depth",
    "width",
    "filters",
    "kernel_size",
    "learning_rate",
    "optimizer",
    "schedule",
    "batch_size",
    "dropout",
    "l2",
    "activation",
    "batch_norm",
)
_LOG_SCALE = {"learning_rate", "l2"}
_MAX_HPARAM_PANELS = 12

# colours read on a light and on a dark background alike
BLUE = "#3b82f6"
ORANGE = "#f59e0b"
RED = "#ef4444"
GREEN = "#10b981"
GREY = "#8b95a5"


def pareto_front(points: Sequence[tuple[float, float, Any]]) -> list[Any]:
    """Keys of the points no other point beats in both coordinates (both minimised), in
    increasing x."""
    front = []
    best_y = math.inf
    for _x, y, key in sorted(points):  # by x, then y (then key: a stable order for ties)
        if y < best_y:
            front.append(key)
            best_y = y
    return front


def cap_points(order: Sequence[Any], keep: set[Any], max_points: int) -> list[Any]:
    """At most ``max_points`` of ``order``: all of ``keep``, then an even sample of the rest,
    in their original order."""
    if len(order) <= max_points:
        return list(order)
    rest = [k for k in order if k not in keep]
    room = max(0, max_points - len(keep))
    if room and rest:
        step = len(rest) / room
        sampled = {rest[int(i * step)] for i in range(min(room, len(rest)))}
    else:
        sampled = set()
    chosen = keep | sampled
    return [k for k in order if k in chosen]


def _round(value: Any, digits: int = 6) -> Any:
    """A float in ``digits`` significant digits: plots need no more, and JSON gets shorter."""
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.{digits}g}")
    return value


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


class PlotService:
    def __init__(self, session: Session, store: ArtifactStore, default_executor: str) -> None:
        self.jobs = JobService(session, store, default_executor)
        self.results = ResultService(session, store, default_executor)
        self.candidates = CandidateRepository(session)
        self.iterations = IterationRepository(session)

    # ---- ensemble growth ---------------------------------------------------------------------
    def growth(self, owner: str, job_id: str) -> dict[str, Any]:
        """Per iteration: F of the previous ensemble and of the chosen one; below, the chosen
        ensemble's parameters and members."""
        job = self.jobs.get(owner, job_id)
        its = self.iterations.summaries(job.id)
        x = [it.iteration for it in its]
        chosen = [candidate_of_ensemble(it.chosen) for it in its]
        members = [len((it.ensemble or {}).get("members") or []) for it in its]
        params = [(it.ensemble or {}).get("params") for it in its]
        ensemble_f = [(it.ensemble or {}).get("objective") for it in its]
        hover = [
            f"iteration {it.iteration}<br>chosen: {c or 'none (kept the previous ensemble)'}"
            f"<br>F before {_fmt(it.previous_objective)} → after {_fmt(f)}"
            f"<br>{m} member(s), {p or 0} parameters"
            for it, c, f, m, p in zip(its, chosen, ensemble_f, members, params, strict=True)
        ]
        data = [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "F of the previous ensemble",
                "x": x,
                "y": [it.previous_objective for it in its],
                "line": {"color": GREY, "dash": "dot"},
                "marker": {"color": GREY},
                "hoverinfo": "skip",
                "meta": {"role": "previous"},
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "F of the chosen ensemble",
                "x": x,
                "y": ensemble_f,
                "customdata": chosen,
                "text": hover,
                "hovertemplate": "%{text}<extra></extra>",
                "line": {"color": BLUE, "width": 3},
                "marker": {"color": BLUE, "size": 9},
                "meta": {"role": "chosen"},
            },
            {
                "type": "bar",
                "name": "parameters",
                "x": x,
                "y": params,
                "text": [f"{m} member{'s' if m != 1 else ''}" for m in members],
                "textposition": "auto",
                "customdata": chosen,
                "hovertemplate": "iteration %{x}: %{y} parameters, %{text}<extra></extra>",
                "marker": {"color": ORANGE},
                "xaxis": "x2",
                "yaxis": "y2",
                "meta": {"role": "params"},
            },
        ]
        layout = {
            "xaxis": {"title": {"text": ""}, "dtick": 1, "matches": "x2", "showticklabels": False},
            "yaxis": {"title": {"text": "objective F"}, "domain": [0.42, 1]},
            "xaxis2": {"title": {"text": "iteration"}, "dtick": 1, "anchor": "y2"},
            "yaxis2": {"title": {"text": "parameters"}, "domain": [0, 0.32], "rangemode": "tozero"},
            "legend": {"orientation": "h", "y": 1.12},
            "margin": {"t": 40, "r": 20, "b": 50, "l": 70},
        }
        return {"data": data, "layout": layout, "meta": {"points": len(x), "total": len(x)}}

    # ---- loss vs complexity ------------------------------------------------------------------
    def loss_complexity(self, owner: str, job_id: str, max_points: int) -> dict[str, Any]:
        """Every scored candidate: loss against complexity term, the Pareto front of the two
        drawn, the chosen ones marked and the lowest F annotated."""
        job = self.jobs.get(owner, job_id)
        rows = self.candidates.points(job.id)
        scored = len(rows)
        by_id = {r.id: r for r in rows}
        front = pareto_front([(r.complexity, r.loss, r.id) for r in rows])
        best = min(rows, key=lambda r: (r.objective, r.id), default=None)
        keep = {r.id for r in rows if r.chosen} | set(front) | ({best.id} if best else set())
        shown = [by_id[i] for i in cap_points([r.id for r in rows], keep, max_points)]

        def trace(points: list[Any], name: str, marker: dict[str, Any]) -> dict[str, Any]:
            return {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": [_round(p.complexity) for p in points],
                "y": [_round(p.loss) for p in points],
                # [name, iteration, F]: the hover's text, and the name a click opens
                "customdata": [[p.name, p.iteration, _round(p.objective)] for p in points],
                "hovertemplate": "%{customdata[0]} (iteration %{customdata[1]})<br>loss "
                "%{y:.4g}, complexity %{x:.4g}, F %{customdata[2]:.4g}<extra></extra>",
                "marker": marker,
                "meta": {"role": "candidates"},
            }

        others = [p for p in shown if not p.chosen]
        chosen = [p for p in shown if p.chosen]
        data = [
            trace(
                others,
                "candidate",
                {
                    "color": [p.iteration for p in others],
                    "colorscale": "Viridis",
                    "size": 8,
                    "opacity": 0.8,
                    "colorbar": {"title": {"text": "iteration"}, "thickness": 12, "dtick": 1},
                    "cmin": 0,
                    "cmax": max(1, max((p.iteration for p in others), default=1)),
                    "showscale": bool(others),
                },
            ),
            trace(
                chosen,
                "chosen",
                {"color": RED, "size": 14, "symbol": "star", "line": {"width": 1}},
            ),
            {
                "type": "scatter",
                "mode": "lines",
                "name": "Pareto front",
                "x": [_round(by_id[i].complexity) for i in front],
                "y": [_round(by_id[i].loss) for i in front],
                "line": {"color": GREEN, "shape": "hv", "width": 2},
                "hoverinfo": "skip",
                "meta": {"role": "front"},
            },
        ]
        annotations = []
        if best is not None:
            annotations.append(
                {
                    "x": best.complexity,
                    "y": best.loss,
                    "text": f"lowest F: {best.name}",
                    "showarrow": True,
                    "arrowhead": 2,
                    "ax": 40,
                    "ay": -30,
                }
            )
        layout = {
            "xaxis": {"title": {"text": "complexity term Σ (λ·r(h) + β)·|w|₁"}},
            "yaxis": {"title": {"text": "loss"}},
            "annotations": annotations,
            "legend": {"orientation": "h", "y": 1.1},
            "margin": {"t": 40, "r": 20, "b": 60, "l": 70},
        }
        return {
            "data": data,
            "layout": layout,
            "meta": {
                "points": len(shown),
                "scored": scored,
                "total": self.candidates.count(job.id),
                "capped": len(shown) < scored,
                "pareto": [by_id[i].name for i in front],
                "best": best.name if best else None,
            },
        }

    # ---- hyperparameters vs F ----------------------------------------------------------------
    def hparams(self, owner: str, job_id: str, max_points: int) -> dict[str, Any]:
        """One scatter per hyperparameter against the objective F (chosen ones as red stars).
        Every panel shows the same candidates, so the cap counts candidates, not markers."""
        job = self.jobs.get(owner, job_id)
        rows = self.candidates.points(job.id)
        scored = len(rows)
        best = min(rows, key=lambda r: (r.objective, r.id), default=None)
        keep = {r.id for r in rows if r.chosen} | ({best.id} if best else set())
        shown_ids = cap_points([r.id for r in rows], keep, max_points)
        by_id = {r.id: r for r in rows}
        hparams = self.candidates.hparams_of(job.id, shown_ids)
        shown = [(by_id[i], hparams.get(i, {})) for i in shown_ids]
        names: set[str] = set()
        for _, hp in shown:
            names |= set(hp)
        ordered = [n for n in _HPARAM_ORDER if n in names] + sorted(names - set(_HPARAM_ORDER))
        ordered = ordered[:_MAX_HPARAM_PANELS]
        columns = 3
        rows_n = max(1, math.ceil(len(ordered) / columns))
        data: list[dict[str, Any]] = []
        layout: dict[str, Any] = {
            "showlegend": False,
            "margin": {"t": 30, "r": 20, "b": 40, "l": 60},
            "height": 250 * rows_n + 40,
        }
        gap_x, gap_y = 0.08, 0.32 / rows_n
        for i, name in enumerate(ordered):
            row, col = divmod(i, columns)
            axis = "" if i == 0 else str(i + 1)
            points = [(hp[name], r) for r, hp in shown if hp.get(name) is not None]
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v, _ in points)
            for chosen in (False, True):
                part = [(v, r) for v, r in points if bool(r.chosen) == chosen]
                data.append(
                    {
                        "type": "scatter",
                        "mode": "markers",
                        "name": name,
                        "x": [_round(v) if numeric else str(v) for v, _ in part],
                        "y": [_round(r.objective) for _, r in part],
                        "customdata": [r.name for _, r in part],
                        "hovertemplate": "%{customdata}: "
                        + name
                        + " = %{x}<br>F %{y:.4g}"
                        + ("<br>chosen" if chosen else "")
                        + "<extra></extra>",
                        "marker": {"color": RED, "symbol": "star", "size": 12}
                        if chosen
                        else {"color": BLUE, "size": 6, "opacity": 0.7},
                        "xaxis": f"x{axis}",
                        "yaxis": f"y{axis}",
                        "meta": {"role": "candidates", "hparam": name, "chosen": chosen},
                    }
                )
            x0 = col / columns + (gap_x / 2 if col else 0)
            x1 = (col + 1) / columns - (gap_x / 2 if col < columns - 1 else 0)
            y1 = 1 - row / rows_n - (gap_y / 2 if row else 0)
            y0 = 1 - (row + 1) / rows_n + (gap_y / 2 if row < rows_n - 1 else 0)
            layout[f"xaxis{axis}"] = {
                "domain": [x0, x1],
                "anchor": f"y{axis}",
                "title": {"text": name, "standoff": 2},
                "type": "log" if name in _LOG_SCALE and numeric else "-",
                "automargin": True,
            }
            layout[f"yaxis{axis}"] = {
                "domain": [y0, y1],
                "anchor": f"x{axis}",
                "title": {"text": "F" if col == 0 else ""},
                "automargin": True,
                # one F scale in every panel, so panels compare at a glance
                **({"matches": "y"} if i else {}),
            }
        return {
            "data": data,
            "layout": layout,
            "meta": {
                "points": len(shown),
                "scored": scored,
                "capped": len(shown) < scored,
                "hparams": ordered,
            },
        }

    # ---- one candidate's training curves -----------------------------------------------------
    def curves(self, owner: str, job_id: str, candidate: str) -> dict[str, Any]:
        """Loss and metric per epoch, on the training and the validation split."""
        _, row = self.results.candidate(owner, job_id, candidate)
        history: dict[str, list[float | None]] = dict(row.history or {})
        metrics = [k for k in history if not k.startswith("val_") and k != "loss"]
        panels = ["loss", *metrics[:2]]
        data: list[dict[str, Any]] = []
        layout: dict[str, Any] = {
            "legend": {"orientation": "h", "y": 1.15},
            "margin": {"t": 40, "r": 20, "b": 50, "l": 60},
        }
        width = 1 / len(panels)
        for i, key in enumerate(panels):
            axis = "" if i == 0 else str(i + 1)
            for split, series, colour in (
                ("training", key, BLUE),
                ("validation", f"val_{key}", ORANGE),
            ):
                values = history.get(series)
                if not values:
                    continue
                data.append(
                    {
                        "type": "scatter",
                        "mode": "lines+markers",
                        "name": f"{key} ({split})",
                        "x": list(range(1, len(values) + 1)),
                        "y": values,
                        "line": {
                            "color": colour,
                            "dash": "solid" if split == "training" else "dash",
                        },
                        "xaxis": f"x{axis}",
                        "yaxis": f"y{axis}",
                        "hovertemplate": f"epoch %{{x}}: {key} ({split}) %{{y:.4g}}<extra></extra>",
                    }
                )
            layout[f"xaxis{axis}"] = {
                "domain": [i * width + (0.05 if i else 0), (i + 1) * width - 0.04],
                "anchor": f"y{axis}",
                "title": {"text": "epoch"},
                "dtick": 1 if len(history.get("loss") or []) <= 12 else None,
            }
            layout[f"yaxis{axis}"] = {"anchor": f"x{axis}", "title": {"text": key}}
        epochs = max((len(v) for v in history.values()), default=0)
        return {
            "data": data,
            "layout": layout,
            "meta": {"epochs": epochs, "series": sorted(history), "candidate": row.name},
        }

    # ---- the evaluation phase: metric vs weight sparsity -------------------------------------
    def sparsity(self, owner: str, job_id: str) -> dict[str, Any]:
        """Validation metric of the dense model and of each weight-pruning level tried, the
        level the evaluation phase kept marked."""
        job = self.jobs.get(owner, job_id)
        ev = self.results.evaluation(job)
        if ev is None:
            raise NotFoundError(f"job {job_id!r} has no evaluation phase yet", field="plot")
        metric = ev["metric"]
        levels: list[tuple[float, float, bool, str]] = []
        reference = None
        for step in ev["steps"]:
            details = step.get("details") or {}
            if not str(step.get("step", "")).startswith("prune_weights"):
                continue
            if reference is None and details.get("reference") is not None:
                reference = float(details["reference"])
            if step.get("metric_value") is not None and "target_sparsity" in details:
                levels.append(
                    (
                        float(details["target_sparsity"]),
                        float(step["metric_value"]),
                        bool(step.get("kept")),
                        str(step.get("change", "")),
                    )
                )
        x = ([0.0] if reference is not None else []) + [lv[0] for lv in levels]
        y = ([reference] if reference is not None else []) + [lv[1] for lv in levels]
        text = (["dense (before weight pruning)"] if reference is not None else []) + [
            f"{lv[0]:.0%} of weights zeroed: {'kept' if lv[2] else 'not kept'}" for lv in levels
        ]
        kept_level = float(ev.get("sparsity") or 0.0)
        data: list[dict[str, Any]] = [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"validation {metric}",
                "x": x,
                "y": y,
                "text": text,
                "hovertemplate": "%{text}<br>" + metric + " %{y:.4g}<extra></extra>",
                "line": {"color": BLUE},
                "marker": {"size": 9, "color": BLUE},
            }
        ]
        kept_y = next((v for s, v in zip(x, y, strict=True) if s == kept_level), None)
        if kept_y is not None:
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": f"kept: {kept_level:.0%} sparsity",
                    "x": [kept_level],
                    "y": [kept_y],
                    "marker": {"size": 16, "symbol": "star", "color": RED},
                    "hovertemplate": "kept level<extra></extra>",
                }
            )
        layout = {
            "xaxis": {
                "title": {"text": "weight sparsity"},
                "tickformat": ".0%",
                "range": [-0.05, 1],
            },
            "yaxis": {"title": {"text": f"validation {metric}"}},
            "legend": {"orientation": "h", "y": 1.15},
            "margin": {"t": 40, "r": 20, "b": 50, "l": 70},
        }
        return {
            "data": data,
            "layout": layout,
            "meta": {"levels": len(levels), "kept": kept_level, "metric": metric},
        }

    # ---- compare jobs ------------------------------------------------------------------------
    def compare(self, owner: str, job_ids: Sequence[str]) -> dict[str, Any]:
        """The ensemble's F after each iteration, one line per job."""
        rows = self.results.compare(owner, job_ids)
        data = []
        for row in rows:
            summary = row["summary"]
            its = self.iterations.summaries(summary.id)
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    # Plotly reads a little HTML in text: a dataset's name is the owner's
                    # words, so it goes in as text (entities), never as markup
                    "name": f"{html.escape(summary.dataset)} · {summary.id[:8]}",
                    "x": [it.iteration for it in its],
                    "y": [(it.ensemble or {}).get("objective") for it in its],
                    "customdata": [summary.id] * len(its),
                    "hovertemplate": "job %{customdata}<br>iteration %{x}: F %{y:.4g}"
                    "<extra></extra>",
                    "meta": {"role": "job", "job": summary.id},
                }
            )
        layout = {
            "xaxis": {"title": {"text": "iteration"}, "dtick": 1},
            "yaxis": {"title": {"text": "objective F of the ensemble"}},
            "legend": {"orientation": "h", "y": 1.15},
            "margin": {"t": 40, "r": 20, "b": 50, "l": 70},
        }
        return {"data": data, "layout": layout, "meta": {"jobs": [r["summary"].id for r in rows]}}
