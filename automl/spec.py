"""The search spec: one JSON-serialisable pydantic model with defaults that work.

Everything a request chooses by name is checked against its registry here, so a bad spec fails
before any training with the field path and the allowed values.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from automl.errors import SpecError
from automl.samplers import is_multi_objective

Family = Literal["dense", "conv1d", "conv2d"]
Activation = Literal["relu", "elu", "gelu", "tanh", "selu"]
OptimizerName = Literal["sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam"]
ScheduleName = Literal["constant", "inverse_time", "exponential", "cosine"]
Strategy = Literal["grow", "solo", "all"]
SamplerName = Literal["tpe", "random", "nsga2", "rl"]

FAMILIES: tuple[str, ...] = ("dense", "conv1d", "conv2d")


# Deeper subnetworks than this are refused: a depth range is sampled as given, and a range up
# to millions of layers would build a model that never finishes (nor fails) on a worker.
MAX_DEPTH = 32

# conv1d's random shift augmentation moves a sequence by at most this many steps
MAX_SHIFT = 1024

# Warm-start configurations a spec may carry: more than a few iterations' worth are never tried.
MAX_WARM_START = 20


DEFAULT_MAX_ITERATIONS = 5
# epochs per candidate when the spec leaves them unset: sequences get more (``for_data``)
DEFAULT_EPOCHS = 30
SEQUENCE_EPOCHS = 60
# epochs of each pruned member's fine-tune when unset: sequences get more (``for_data``)
DEFAULT_FINE_TUNE_EPOCHS = 3
SEQUENCE_FINE_TUNE_EPOCHS = 8
MAX_ITERATIONS = 100


def iteration_limit(max_iterations: int | None, time_budget_s: float | None) -> int | None:
    """The iteration count a spec asks for (``max_iterations`` unset: the default, or None
    when a time budget decides), for callers holding a stored spec's dict."""
    if max_iterations is not None:
        return int(max_iterations)
    return None if time_budget_s is not None else DEFAULT_MAX_ITERATIONS


class _Model(BaseModel):
    # NaN and infinity are refused: no setting means them, and JSON cannot carry them back
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


class IntRange(_Model):
    """An inclusive integer range."""

    low: int = Field(ge=1)
    high: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        return self


class FloatRange(_Model):
    """An inclusive float range, sampled log-uniformly when ``log`` is true."""

    low: float = Field(ge=0)
    high: float = Field(ge=0)
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must not exceed high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log-scaled range needs low > 0")
        return self


def _non_empty(values: list[Any]) -> list[Any]:
    if not values:
        raise ValueError("must list at least one value")
    if len(set(values)) != len(values):
        raise ValueError("must not repeat a value")
    return values


class DenseSpace(_Model):
    """Fully connected subnetworks: ``depth`` hidden layers of ``width`` units."""

    depth: IntRange = IntRange(low=1, high=3)
    width: list[int] = [64, 128, 256]
    activation: list[Activation] = ["relu", "elu", "gelu"]
    dropout: FloatRange = FloatRange(low=0.0, high=0.3)
    l2: FloatRange = FloatRange(low=1e-6, high=1e-3, log=True)
    batch_norm: list[bool] = [True, False]

    _check_lists = field_validator("width", "activation", "batch_norm")(_non_empty)

    @field_validator("width")
    @classmethod
    def _positive(cls, values: list[int]) -> list[int]:
        if any(v < 1 or v > 4096 for v in values):
            raise ValueError("every width must be between 1 and 4096")
        return values

    @field_validator("depth")
    @classmethod
    def _depth(cls, value: IntRange) -> IntRange:
        if value.high > MAX_DEPTH:
            raise ValueError(f"high ({value.high}) must be at most {MAX_DEPTH} layers")
        return value

    @field_validator("dropout")
    @classmethod
    def _dropout(cls, value: FloatRange) -> FloatRange:
        if value.high >= 1:
            raise ValueError(f"high ({value.high}) must be below 1: a rate of 1 drops every unit")
        return value


class ConvSpace(DenseSpace):
    """Convolutional subnetworks: ``depth`` conv blocks of ``filters``, then a dense head of
    ``width`` units."""

    depth: IntRange = IntRange(low=1, high=4)
    filters: list[int] = [32, 64]
    kernel_size: list[int] = [3, 5, 7]
    width: list[int] = [64, 128]
    batch_norm: list[bool] = [True]

    _check_conv = field_validator("filters", "kernel_size")(_non_empty)

    @field_validator("filters", "kernel_size")
    @classmethod
    def _positive_conv(cls, values: list[int]) -> list[int]:
        if any(v < 1 or v > 1024 for v in values):
            raise ValueError("values must be between 1 and 1024")
        return values


class Conv1DSpace(ConvSpace):
    """Conv1D subnetworks (sequences). Dropout is fixed at 0.3 by default: on MNIST-1D the
    family overfits its 600 validation rows. Whole 600 s jobs with it (60 epochs, the starting
    configuration on) gave 98.53% and 97.97% mean test accuracy on data seeds 0-2 in two runs,
    against 97.9-98.2% over sessions with the range 0-0.3 and 30 epochs (README, search
    quality)."""

    dropout: FloatRange = FloatRange(low=0.3, high=0.3)
    shift: list[int] = Field(
        [0, 1, 2],
        description="random shift augmentation: while training, each sequence moves by up to "
        "this many steps either way (its edge value repeated); 0 is none. On MNIST-1D a shift "
        "of 2 raised one member's mean test accuracy from 98.3% to 98.9% (README)",
    )

    _check_shift = field_validator("shift")(_non_empty)

    @field_validator("shift")
    @classmethod
    def _shift(cls, values: list[int]) -> list[int]:
        if any(v < 0 or v > MAX_SHIFT for v in values):
            raise ValueError(f"values must be between 0 and {MAX_SHIFT} steps")
        return values


class Conv2DSpace(ConvSpace):
    """Conv2D subnetworks (images): kernel 3 and at most 3 blocks by default, so that a
    partial ``conv2d`` object in a spec keeps these defaults for the fields it leaves out."""

    depth: IntRange = IntRange(low=1, high=3)
    kernel_size: list[int] = [3]


class EvaluationSpec(_Model):
    """The evaluation/pruning phase run on the winning ensemble after the search."""

    enabled: bool = True
    cv_folds: int = Field(5, ge=0, le=20, description="stratified k-fold; 0 or 1 skips it")
    prune_members_threshold: float = Field(
        0.05, ge=0, description="drop members whose |w|₁ is below this, then refit the rest"
    )
    drop_members: bool = Field(
        True,
        description="after the threshold, drop members one at a time (the one whose removal "
        "leaves F lowest) while the validation metric does not fall and F stays within "
        "drop_objective_tolerance (else objective_tolerance) of the model before pruning",
    )
    drop_objective_tolerance: float | None = Field(
        0.0,
        ge=0,
        le=100,
        description="relative rise in F a member's removal may take; 0 (the default) lets the "
        "objective decide alone, as AdaNet's would: a member goes only when F, its complexity "
        "term included, does not rise; null: objective_tolerance. With a tolerance of "
        "25%, whole 300 s digits jobs fell from 4-5 members to one on validation rows at their "
        "ceiling, and from 99.4 / 99.7% test to 98.9 / 98.6% (README, evaluation phase)",
    )
    sparsities: list[float] = Field(
        default_factory=lambda: [0.25, 0.5, 0.75, 0.9],
        description="target fractions of zero weights to try, by magnitude; each level "
        "starts from the level before it, fine-tuned (gradual pruning)",
    )
    fine_tune_epochs: int | None = Field(
        None,
        ge=0,
        le=100,
        description=f"epochs of each pruned member's fine-tune (with a time budget, the phase "
        f"may lengthen them: extend_fine_tune); unset: {SEQUENCE_FINE_TUNE_EPOCHS} for sequence "
        f"data, {DEFAULT_FINE_TUNE_EPOCHS} otherwise (the job's stored spec holds the number "
        "used). On MNIST-1D (600 s jobs, seeds 0-2) 8 epochs gave 98.47% mean test accuracy "
        "against 98.23% with 3; on digits (300 s) 98.89% against 98.98% (README, search "
        "quality)",
    )
    fine_tune_learning_rate: float = Field(
        0.1,
        gt=0,
        le=10,
        description="each fine-tune's learning rate, as a fraction of its member's. On "
        "MNIST-1D (benchmarks/pruning.py: six conv1d members, 8 epochs per level) a tenth held "
        "left 98.60 / 98.28 / 95.98 / 74.50% mean test accuracy at sparsity 0.25 / 0.5 / 0.75 "
        "/ 0.9 (dense 98.63%); the whole rate decayed by cosine 98.48 / 98.37 / 97.18 / "
        "91.15% (README, evaluation phase)",
    )
    fine_tune_schedule: Literal["constant", "cosine"] = Field(
        "constant",
        description="the fine-tunes' learning rate over their epochs: held, or decayed to zero "
        "(cosine)",
    )
    refit: bool = Field(
        False,
        description="last, fine-tune the final members (their zeros held) on the training and "
        "validation rows together for the fine-tunes' epochs, as AutoKeras and auto-sklearn "
        "refit on all the data; the mixture weights stay as the validation rows fitted them, "
        "and the validation metrics after this step are no longer held out (the test split "
        "still is). Measured on MNIST-1D (600 s jobs, seeds 0-2) it lowered test accuracy "
        "from 97.90% to 97.73% mean: off by default",
    )
    extend_fine_tune: bool = Field(
        True,
        description="with a time budget and time to spare after the search, fine-tune the "
        "pruned members longer (up to the spec's epochs) while the phase's estimate stays "
        "within 80% of the time left; recorded in the time_plan step",
    )
    accuracy_tolerance: float = Field(
        0.005,
        ge=0,
        le=1,
        description="accuracy a sparser model may lose (0.005 = 0.5 points); balanced accuracy "
        "when the classes are weighted",
    )
    relative_error_tolerance: float = Field(
        0.02, ge=0, le=10, description="relative rise in MSE a sparser regressor may take"
    )
    objective_tolerance: float = Field(
        0.10,
        ge=0,
        le=100,
        description="relative rise in the (class-weighted) objective F a sparser model may "
        "take; with rare classes the metric alone can miss a model that lost them. 10% (25% "
        "before): on MNIST-1D levels kept with F 17-25% above the dense model's lost 0.1-2.4 "
        "points on test, within the accuracy tolerance on the 600 validation rows (README, "
        "evaluation phase)",
    )
    grow: bool = Field(
        True, description="try one more layer and twice the width on the last member"
    )
    max_nonzero_params: int | None = Field(
        None,
        ge=1,
        le=10**12,
        description="a size goal (as AutoKeras' max_model_size): the final model has at most "
        "this many non-zero parameters. When the members entering weight pruning have more, "
        "the phase also fine-tunes the sparsity level that meets the goal. Then every model at "
        "hand (before weight pruning, each level) is brought to the goal by dropping members "
        "(the one whose removal leaves F lowest first) and the one of lowest F is kept, "
        "whatever the tolerances say: a dense model within the goal is not pruned further "
        "unless a level lowers F. Recorded in the size_goal step (every option weighed, the "
        "tolerances' choice beside it), where a goal nothing met is recorded as missed (the "
        "job still succeeds). Unset: no goal, the tolerances decide alone",
    )
    goal_search_sparsity: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="with a size goal, the search chooses only candidate ensembles the phase "
        "can bring to the goal by pruning this fraction of their weights: at most goal / (1 - "
        "this) parameters (search_param_cap). 0: the search stays within the goal unpruned. "
        "Without it MNIST-1D's 600 s jobs grew 5-9 members (200k-590k parameters) that the "
        "phase then dropped to meet a 150k goal (98.60% against 98.83% with no goal; README, "
        "search quality). No effect without max_nonzero_params",
    )

    @property
    def search_param_cap(self) -> int | None:
        """The most parameters an ensemble the search chooses may hold: None without a size
        goal (``goal_search_sparsity``)."""
        if self.max_nonzero_params is None:
            return None
        return int(self.max_nonzero_params / (1.0 - self.goal_search_sparsity))

    @property
    def tune_epochs(self) -> int:
        """Epochs per fine-tune; a spec not yet resolved by ``for_data`` gets the default."""
        return DEFAULT_FINE_TUNE_EPOCHS if self.fine_tune_epochs is None else self.fine_tune_epochs

    @field_validator("sparsities")
    @classmethod
    def _fractions(cls, values: list[float]) -> list[float]:
        if any(not 0 < v < 1 for v in values):
            raise ValueError("every sparsity must be between 0 and 1 (exclusive)")
        return sorted(set(values))


class EarlyStoppingSpec(_Model):
    """Successive halving of each iteration's candidates (``automl.halving``).

    Every candidate reports, after each epoch, a cheap proxy of the objective F of its
    candidate ensemble (its own validation loss plus its complexity term λ·r(h) + β); at
    epochs ``min_epochs``·``reduction_factor``^k (rungs) Optuna's asynchronous
    ``SuccessiveHalvingPruner`` stops it unless it ranks in the top 1/``reduction_factor`` of
    the iteration's candidates that reached that rung (the first to get there is kept only if
    it is the best so far). A stopped candidate is recorded ``stopped_early`` with the epochs it
    ran, and still joins the iteration's scoring with the weights it had. With it on, an
    iteration can try more candidates in the same time. No effect when ``min_epochs`` is not
    below the spec's ``epochs``.
    """

    enabled: bool = Field(False, description="stop weak candidates early (successive halving)")
    min_epochs: int = Field(
        2, ge=1, le=1000, description="epochs every candidate trains before the first rung"
    )
    reduction_factor: int = Field(
        3, ge=2, le=100, description="about 1 in this many candidates goes on at each rung"
    )


class Resources(_Model):
    """What one candidate asks of a worker (used by the Ray executor)."""

    cpus: float = Field(1.0, gt=0, le=256)
    gpus: float = Field(0.0, ge=0, le=16)


class SearchSpec(_Model):
    """A whole search: the space of subnetworks and training choices, and the AdaNet settings.

    ``lambda``/``beta`` weigh the complexity term Σ_j (λ·r(h_j) + β)·|w_j|₁ of the objective.
    ``selection`` says which split the mixture weights are fitted and F is scored on: ``train``
    as in the paper, or the held-out ``validation`` split.
    """

    families: list[Family] | None = Field(
        None, description="Subnetwork families to search; default: chosen by the data's shape."
    )
    dense: DenseSpace = Field(default_factory=DenseSpace)
    conv1d: Conv1DSpace = Field(default_factory=Conv1DSpace)
    conv2d: Conv2DSpace = Field(default_factory=Conv2DSpace)
    optimizers: list[OptimizerName] = ["adam", "rmsprop", "nesterov"]
    learning_rate: FloatRange = FloatRange(low=5e-4, high=5e-3, log=True)
    schedules: list[ScheduleName] = ["cosine", "inverse_time", "exponential"]
    decay_power: FloatRange = Field(
        FloatRange(low=0.3, high=1.0), description="n in the inverse_time schedule η0 / t^n"
    )
    decay_rate: FloatRange = Field(
        FloatRange(low=0.85, high=0.98), description="per-epoch factor of the exponential schedule"
    )
    batch_size: list[int] = [32, 64, 128]
    epochs: int | None = Field(
        None,
        ge=1,
        le=1000,
        description=f"training epochs per candidate; unset: {SEQUENCE_EPOCHS} for sequence "
        f"data, {DEFAULT_EPOCHS} otherwise (the job's stored spec holds the number used)",
    )
    early_stopping_patience: int | None = Field(
        None, ge=1, description="stop a candidate after this many epochs without val. improvement"
    )
    early_stopping: EarlyStoppingSpec = Field(
        default_factory=lambda: EarlyStoppingSpec(),
        description="successive halving: stop an iteration's weak candidates at rungs",
    )
    candidates_per_iteration: int = Field(4, ge=1, le=64)
    max_iterations: int | None = Field(
        None,
        ge=1,
        le=MAX_ITERATIONS,
        description=f"iterations at most; unset: {DEFAULT_MAX_ITERATIONS}, or with "
        f"time_budget_s as many as the budget fits (at most {MAX_ITERATIONS}): the search "
        "then ends when F stops falling or when one more iteration and the evaluation phase "
        "would not fit",
    )
    force_grow: bool = Field(False, description="add a member even when F does not fall")
    paper_candidates: bool = Field(
        True, description="propose the paper's two candidates: as deep as the last member, +1"
    )
    starting_configurations: bool = Field(
        True,
        description="the first iteration tries each family's built-in starting configuration "
        "(one measured to train well on such data; origin 'default') before sampling; values "
        "this spec's space does not hold are sampled. Only conv1d has one (sequence data)",
    )
    warm_start: bool = Field(
        False,
        description="start from the owner's history: the service fills "
        "warm_start_configurations with the best past configurations on similar data",
    )
    warm_start_configurations: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=MAX_WARM_START,
        description="hyperparameter dicts (as a candidate's hparams: family, depth, width, "
        "optimizer...) tried first in iteration 0 with origin 'history'; one that does not fit "
        "the data's families or this spec's space is skipped with a note; missing keys are "
        "sampled",
    )
    lambda_: float = Field(0.01, alias="lambda", ge=0, le=100)
    beta: float = Field(0.001, ge=0, le=100)
    complexity_measure: str = "sqrt_depth"
    mixture_weight_type: Literal["scalar", "vector", "mean"] = Field(
        "scalar",
        description="scalar: one fitted weight per member; vector: one per member and output; "
        "mean: every member weighted 1/k, not fitted (adanet's MeanEnsembler), F still counts "
        "the members' complexity at those weights",
    )
    mixture_nonnegative: bool = Field(
        True,
        description="keep mixture weights ≥ 0: on few selection rows a negative weight on a "
        "near-copy of a member fits noise (the paper allows any sign: set false)",
    )
    mixture_bias: bool = Field(
        False, description="learn an unpenalised bias b in f = Σ w_j h_j + b (adanet: off)"
    )
    ensemble_strategies: list[Strategy] = ["grow"]
    selection: Literal["train", "validation"] = "validation"
    sampler: SamplerName = "tpe"
    max_consecutive_failures: int = Field(3, ge=1, le=1000)
    time_budget_s: float | None = Field(
        None,
        gt=0,
        description="seconds for the whole job (search, evaluation phase, final model and "
        "export): an iteration starts only if the smallest evaluation phase still fits after "
        "it (one that would not fit whole trains the rounds of candidates that do), and the "
        "phase cuts folds, sparsity levels and grow rules to fit what is left",
    )
    candidate_timeout_s: float | None = Field(
        None,
        gt=0,
        le=7 * 86400,
        description="a training still running after this many seconds is stopped and recorded "
        "as failed (timeout); the search goes on",
    )
    test_fraction: float = Field(0.2, gt=0, lt=0.9)
    validation_fraction: float = Field(0.15, gt=0, lt=0.9)
    evaluation: EvaluationSpec = Field(default_factory=lambda: EvaluationSpec())
    resources: Resources = Field(default_factory=Resources)
    seed: int = Field(0, ge=0, le=2**31 - 1)

    _check_lists = field_validator("optimizers", "schedules", "batch_size", "ensemble_strategies")(
        _non_empty
    )

    @property
    def iteration_limit(self) -> int:
        """The iterations the search may run: ``max_iterations`` when set; else as many as a
        time budget fits, or the default without one."""
        return iteration_limit(self.max_iterations, self.time_budget_s) or MAX_ITERATIONS

    @property
    def fills_budget(self) -> bool:
        """No iteration count was asked for and there is a time budget: the budget decides."""
        return self.max_iterations is None and self.time_budget_s is not None

    @model_validator(mode="after")
    def _halving_needs_one_objective(self) -> SearchSpec:
        if self.early_stopping.enabled and is_multi_objective(self.sampler):
            # Optuna's pruners rank one value; a multi-objective study has none to rank by
            raise ValueError(
                f"early_stopping: successive halving ranks candidates by one objective, but "
                f"the {self.sampler!r} sampler optimises two (loss and complexity); turn "
                "early_stopping off or choose tpe, random or rl"
            )
        return self

    @field_validator("families")
    @classmethod
    def _families(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _non_empty(values)

    @field_validator("warm_start_configurations")
    @classmethod
    def _configurations(cls, values: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # only the shape here: whether a configuration fits the data and the space is known
        # when the search starts, which skips (and notes) one that does not
        for i, hp in enumerate(values):
            if not isinstance(hp.get("family"), str):
                raise ValueError(f"configuration {i} needs a 'family' (e.g. \"dense\")")
            if len(hp) > 32:
                raise ValueError(f"configuration {i} has {len(hp)} keys; at most 32")
            for key, value in hp.items():
                if len(key) > 64 or "\x00" in key:
                    raise ValueError(f"configuration {i}: {key[:64]!r} is not a hyperparameter")
                finite = not isinstance(value, float) or math.isfinite(value)
                # names of choices (relu, adam, cosine) are short and plain
                text_ok = not isinstance(value, str) or (len(value) <= 64 and "\x00" not in value)
                if not isinstance(value, str | int | float | bool) or not finite or not text_ok:
                    raise ValueError(
                        f"configuration {i}: {key!r} must be a number, a string of at most 64 "
                        "characters or a boolean (one hyperparameter value)"
                    )
        return values

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, values: list[int]) -> list[int]:
        if any(v < 1 or v > 65536 for v in values):
            raise ValueError("every batch size must be between 1 and 65536")
        return values

    @field_validator("complexity_measure")
    @classmethod
    def _measure(cls, value: str) -> str:
        from automl.complexity import complexity_measures

        if value not in complexity_measures.names():
            raise ValueError(
                f"unknown complexity measure {value!r}; "
                f"valid ones are: {', '.join(complexity_measures.names())}"
            )
        return value

    # ---- JSON round trip -------------------------------------------------------------------
    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchSpec:
        """Validate a dict; raise ``SpecError`` naming each bad field's path."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise SpecError(format_validation_error(exc)) from None

    @classmethod
    def from_json(cls, text: str) -> SearchSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"the spec is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise SpecError("the spec must be a JSON object")
        return cls.from_dict(data)

    # ---- resolution against a dataset --------------------------------------------------------
    def for_data(self, data_kind: str) -> SearchSpec:
        """This spec with what depends on the data filled in: ``epochs`` and the evaluation's
        ``fine_tune_epochs`` when unset (more for sequences, whose conv1d members kept
        improving past 30 epochs on MNIST-1D, and whose pruned members recovered more with
        longer fine-tunes). The same spec when nothing is left to fill, so resolving twice
        changes nothing."""
        sequence = data_kind == "sequence"
        update: dict[str, Any] = {}
        if self.epochs is None:
            update["epochs"] = SEQUENCE_EPOCHS if sequence else DEFAULT_EPOCHS
        if self.evaluation.fine_tune_epochs is None:
            tune = SEQUENCE_FINE_TUNE_EPOCHS if sequence else DEFAULT_FINE_TUNE_EPOCHS
            update["evaluation"] = self.evaluation.model_copy(update={"fine_tune_epochs": tune})
        return self.model_copy(update=update) if update else self

    @property
    def train_epochs(self) -> int:
        """Epochs per candidate; a spec not yet resolved by ``for_data`` gets the default."""
        return DEFAULT_EPOCHS if self.epochs is None else self.epochs

    def resolve_families(self, data_kind: str) -> list[str]:
        """The families to search for data of this kind (``image``, ``sequence`` or ``table``)."""
        applicable = {"image": ["dense", "conv2d"], "sequence": ["dense", "conv1d"]}.get(
            data_kind, ["dense"]
        )
        if self.families is None:
            # Every family that applies: the search, not the default, has to find convolutions.
            return applicable
        bad = [f for f in self.families if f not in applicable]
        if bad:
            raise SpecError(
                f"families: {bad[0]!r} does not apply to {data_kind} data; "
                f"for this dataset choose from: {', '.join(applicable)}"
            )
        return list(self.families)

    def space_for(self, family: str) -> DenseSpace:
        space: DenseSpace = getattr(self, family)
        return space


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: ``field.path: message``."""
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(spec)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "is not a spec field"
        elif err["type"] == "literal_error" and "expected" in err.get("ctx", {}):
            msg = f"must be one of {err['ctx']['expected']}"
        lines.append(f"{path}: {msg}")
    return "invalid search spec:\n  " + "\n  ".join(lines)
