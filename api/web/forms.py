"""From HTML forms to the API's request bodies, and from the API's errors back to form fields.

The new-job form builds the same ``JobCreate`` body a script would POST; its validation errors
are worded exactly as the JSON API's 422 (same field paths, same sentences), so a person sees
next to a field what a script would read for it.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from api.errors import UnprocessableError

# form field → the spec key it sets (the rest of the spec comes from the JSON text area)
NUMBER_FIELDS = (
    "max_iterations",
    "candidates_per_iteration",
    "epochs",
    "lambda",
    "beta",
    "time_budget_s",
)
LIST_FIELDS = ("families", "optimizers")
CHOICE_FIELDS = ("sampler",)
# form field → the key it sets in the spec's ``evaluation`` object
EVALUATION_NUMBER_FIELDS = ("max_nonzero_params", "goal_search_sparsity")
FORM_FIELDS = (
    *NUMBER_FIELDS,
    *LIST_FIELDS,
    *CHOICE_FIELDS,
    *EVALUATION_NUMBER_FIELDS,
    "evaluation",
    "warm_start",
)
MAX_PREDICT_ROWS = 10_000


@dataclass
class FieldErrors:
    """Messages by form field; ``spec`` is the JSON text area, ``dataset`` the dataset menu."""

    by_field: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.by_field.setdefault(name, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.by_field)

    def get(self, name: str) -> list[str]:
        return self.by_field.get(name, [])


def api_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as the API's 422 words them (``api.main``'s handler): the field's
    dotted path and the message without pydantic's 'Value error, ' prefix."""
    out = []
    for err in exc.errors():
        message = str(err.get("msg", "")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            message = "is not a field of this request"
        path = ".".join(str(p) for p in err.get("loc", ())) or "(request)"
        out.append({"field": path, "message": message})
    return out


def form_field_for(path: str, submitted: Mapping[str, Any]) -> str:
    """Which form field shows the error at API field ``path``: the field that set that spec
    key when the person filled it in, the dataset menu for the dataset, else the JSON area."""
    if path in ("dataset", "dataset_id", "(request)"):
        return "dataset"
    parts = path.split(".")
    if parts[0] == "spec" and len(parts) >= 2:
        key = parts[1]
        if key == "evaluation" and parts[2:3] == ["enabled"]:
            key = "evaluation"
        elif key == "evaluation" and len(parts) == 3 and parts[2] in EVALUATION_NUMBER_FIELDS:
            key = parts[2]
        elif key == "evaluation":
            return "spec"
        if key in FORM_FIELDS and submitted.get(key):
            return key
    return "spec"


def job_body(form: Mapping[str, Any]) -> tuple[dict[str, Any], FieldErrors]:
    """The ``JobCreate`` body the form describes; errors it has before any validation (the
    JSON area is not JSON, no dataset chosen)."""
    errors = FieldErrors()
    body: dict[str, Any] = {}
    dataset = str(form.get("dataset") or "")
    kind, _, value = dataset.partition(":")
    if kind == "builtin" and value:
        body["dataset"] = value
    elif kind == "upload" and value:
        body["dataset_id"] = value
    else:
        errors.add("dataset", "choose a dataset")
    text = str(form.get("spec") or "").strip()
    spec: Any = {}
    if text:
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.add("spec", f"the spec is not valid JSON: {exc}")
            spec = {}
        if not isinstance(spec, dict):
            errors.add("spec", 'the spec must be a JSON object, like {"epochs": 5}')
            spec = {}
    for name in NUMBER_FIELDS + CHOICE_FIELDS:
        raw = str(form.get(name) or "").strip()
        if raw:
            spec[name] = raw  # as typed: the API's validation parses it and words any error
    for name in LIST_FIELDS:
        values = form.get(name)
        chosen = [str(v) for v in values] if isinstance(values, list) else []
        if chosen:
            spec[name] = chosen
    evaluation = str(form.get("evaluation") or "")
    if evaluation in ("on", "off"):
        current = spec.get("evaluation")
        spec["evaluation"] = {
            **(current if isinstance(current, dict) else {}),
            "enabled": evaluation == "on",
        }
    for name in EVALUATION_NUMBER_FIELDS:
        raw = str(form.get(name) or "").strip()
        if raw:
            current = spec.get("evaluation")
            spec["evaluation"] = {**(current if isinstance(current, dict) else {}), name: raw}
    if str(form.get("warm_start") or "") == "on":
        # the service fills the configurations from the owner's history (the spec's own win)
        spec["warm_start"] = True
    body["spec"] = spec
    return body, errors


def parse_rows(text: str) -> list[list[Any]]:
    """Raw rows from CSV text (a header row is allowed and skipped), as the API's JSON rows:
    a number cell as a number, an empty cell as null, any other cell as its text. Whether the
    model takes text and missing cells (a table of raw cells) or numbers only is the model
    service's rule, so the form and the API answer a bad cell alike."""
    rows: list[list[Any]] = []
    lines = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if lines and not any(_is_number(c) for c in lines[0]):
        lines = lines[1:]  # a header row: no cell of it is a number
    for cells in lines:
        values: list[Any] = []
        for cell in cells:
            stripped = cell.strip()
            if not stripped:
                values.append(None)
            elif _is_number(stripped) and math.isfinite(float(stripped)):
                values.append(float(stripped))
            else:
                values.append(stripped)
        if values:
            rows.append(values)
    if not rows:
        raise UnprocessableError(
            "paste at least one row of feature values, comma-separated", field="rows"
        )
    if len(rows) > MAX_PREDICT_ROWS:
        raise UnprocessableError(
            f"at most {MAX_PREDICT_ROWS} rows at a time; this has {len(rows)}", field="rows"
        )
    return rows


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def checked(form_values: Sequence[str] | None, value: str) -> bool:
    return value in (form_values or [])
