"""How the student is made: the `distill:` section (student shape, losses, training)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from packager.config.base import LM_TASK, Config, Task, Threads
from packager.config.compute import ComputeConfig, ComputeFields
from packager.config.lm import CausalStudentConfig, relative_student


class StudentConfig(Config):
    """Array and image students: a fresh cnn or mlp, or (images) the teacher itself pruned."""

    arch: Literal["cnn", "mlp", "pruned"] = Field(
        "cnn",
        description="cnn: fresh conv net (images: stride-2 blocks and global average pooling); "
        "mlp; pruned: the teacher with `width` of its channels kept in every prunable layer "
        "(structured, dependency-aware pruning by torch-pruning, weights copied)",
    )
    channels: tuple[int, ...] = Field((8, 16), min_length=1, description="conv widths (cnn)")
    hidden: int = Field(32, ge=1, description="width of the hidden dense layer")
    width: float = Field(
        0.5, gt=0, lt=1, description="pruned: fraction of each prunable layer's channels kept"
    )


class TransformerStudentConfig(Config):
    """A student derived from a transformers teacher: k of its n layers, copied (DistilBERT's
    recipe), or a narrower model of the same architecture with fresh weights."""

    arch: Literal["transformer"] = "transformer"
    source: str | None = Field(
        None,
        description="hf:FOLDER the student starts from (its layers chosen as below); none: "
        "derived from the teacher's folder. An api: teacher has no weights: it needs one",
    )
    layers: Literal["every-other", "first-k"] | tuple[int, ...] = Field(
        "every-other",
        description="teacher layers kept: every-other (evenly spaced, the top layer always "
        "kept), first-k, or an explicit list of 0-based indices",
    )
    num_layers: int | None = Field(
        None, ge=1, description="k, layers kept (default: half the teacher's; not with a list)"
    )
    hidden_size: int | None = Field(None, ge=8, description="narrower width: fresh init")
    num_heads: int | None = Field(None, ge=1, description="fewer attention heads: fresh init")
    intermediate_size: int | None = Field(
        None,
        ge=8,
        description="narrower feed-forward: copied layers keep their strongest neurons "
        "(fresh init when hidden_size or num_heads change too)",
    )
    freeze_embeddings: bool = Field(
        False, description="keep the copied embedding tables fixed (faster, less overfitting)"
    )

    @field_validator("source")
    @classmethod
    def _hf(cls, v: str | None) -> str | None:
        if v is not None and (not v.startswith("hf:") or not v[3:].strip()):
            raise ValueError("expected hf:FOLDER (a local transformers encoder folder)")
        return v

    def input_paths(self) -> dict[str, str]:
        if not self.source:
            return {}
        return {"student_source": str(Path(self.source.removeprefix("hf:")).expanduser())}

    @field_validator("layers", mode="before")
    @classmethod
    def _one_of(cls, v: Any) -> Any:
        # Checked before the union so a typo gets one message naming every form, not one per member.
        if isinstance(v, str) and v not in ("every-other", "first-k"):
            raise ValueError("expected every-other, first-k or a list of layer indices")
        if isinstance(v, list | tuple) and (
            not v
            or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in v)
            or len(set(v)) != len(v)
        ):
            raise ValueError("an explicit layer list needs distinct integer indices >= 0")
        return v


class StaticStudentConfig(Config):
    """A static-embedding student (Model2Vec): one vector per word piece of the teacher's
    tokenizer, averaged and L2-normalised (a Gather and a mean in ONNX: no layers at all).
    model2vec distils the table from the teacher; with `tune` it is then trained on the
    teacher's outputs over the training texts (distill.epochs, lr, batch_size, patience)."""

    arch: Literal["static"] = "static"
    sif_coefficient: float | None = Field(
        1e-4,
        gt=0,
        description="model2vec's SIF weighting of frequent word pieces (Zipf ranks); none: off",
    )
    tune: bool = Field(
        True,
        description="train the table (and, for text-classification, a linear head) on the "
        "teacher's cached outputs over the training split; false: model2vec's table as it is "
        "(feature-extraction only)",
    )


def _student_tag(v: Any) -> str | None:
    # arch may be left out: the array student (cnn) stays the default, as before the union.
    arch = v.get("arch", "cnn") if isinstance(v, dict) else getattr(v, "arch", "cnn")
    cnn = {"cnn": "cnn", "mlp": "cnn", "pruned": "cnn"}
    return {**cnn, "transformer": "transformer", "causal-lm": "causal-lm", "static": "static"}.get(
        arch
    )


Student = Annotated[
    Annotated[StudentConfig, Tag("cnn")]
    | Annotated[TransformerStudentConfig, Tag("transformer")]
    | Annotated[CausalStudentConfig, Tag("causal-lm")]
    | Annotated[StaticStudentConfig, Tag("static")],
    Discriminator(
        _student_tag,
        custom_error_type="student_arch",
        custom_error_message="arch must be cnn, mlp, pruned, transformer, causal-lm or static",
    ),
]


class AugmentConfig(Config):
    """Training-only augmentation of image data (distill.augment): applied to the training
    split as the student learns; never to validation, test, calibration or samples."""

    enabled: bool = True
    crop_scale: tuple[float, float] = Field(
        (0.25, 1.0), description="random resized crop: area fraction range (torchvision's scale)"
    )
    crop_ratio: tuple[float, float] = Field(
        (3 / 4, 4 / 3), description="random resized crop: aspect ratio range"
    )
    hflip: float = Field(0.5, ge=0, le=1, description="probability of a horizontal flip")
    brightness: float = Field(0.2, ge=0, le=1, description="colour jitter: factor in 1 +- this")
    contrast: float = Field(0.2, ge=0, le=1, description="colour jitter: factor in 1 +- this")
    saturation: float = Field(0.2, ge=0, le=1, description="colour jitter: factor in 1 +- this")

    @field_validator("crop_scale", "crop_ratio")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] <= v[1]:
            raise ValueError("expected [low, high] with 0 < low <= high")
        return v


class LossWeights(Config):
    """Distillation losses and their weights; a loss with weight 0 is not computed."""

    logits_kd: float = Field(0.0, ge=0, description="KL(teacher || student) at distill.temperature")
    label_ce: float = Field(0.0, ge=0, description="cross-entropy with the labels")
    hidden_mse: float = Field(
        0.0, ge=0, description="MSE of hidden states of matched layers (learned projection)"
    )
    attention_kl: float = Field(
        0.0, ge=0, description="KL of the last layer's attention distributions (MiniLM)"
    )
    relation_kl: float = Field(
        0.0,
        ge=0,
        description="KL of the last layer's query/key/value self-relations (MiniLMv2): "
        "distribution over tokens per relation head, width-independent",
    )
    embedding_cosine: float = Field(0.0, ge=0, description="1 - cosine of pooled embeddings")
    embedding_mse: float = Field(0.0, ge=0, description="MSE of pooled embeddings")
    feature_mse: float = Field(
        0.0,
        ge=0,
        description="images: hint loss, MSE of the student's globally pooled last feature map "
        "against the teacher's (a learned projection when widths differ)",
    )
    reverse_kl: float = Field(
        0.0, ge=0, description="text-generation: token-level KL(student || teacher) at temperature"
    )
    jsd: float = Field(
        0.0,
        ge=0,
        description="text-generation: generalized Jensen-Shannon divergence at distill.jsd_beta "
        "(GKD; beta 0 is forward KL, 1 reverse KL)",
    )

    def active(self) -> dict[str, float]:
        return {k: w for k, w in self.to_json().items() if w > 0}


class DistillConfig(ComputeFields):
    enabled: bool = Field(
        True,
        description="false (`distill: none` in a recipe): ship the teacher itself through "
        "export, quantize, evaluate, bench and package",
    )
    student: Student = StudentConfig()
    augment: AugmentConfig = AugmentConfig()
    allow_larger: bool = Field(
        False,
        description="accept a student that is not smaller than its teacher in parameters and "
        "MACs (refused otherwise: it defeats the purpose)",
    )
    losses: LossWeights | None = Field(
        None,
        description="explicit loss weights; none: alpha * logits_kd + (1 - alpha) * label_ce "
        "for classifiers, embedding_cosine + embedding_mse for feature-extraction",
    )
    temperature: float = Field(4.0, gt=0, description="softmax temperature T of the KD loss")
    alpha: float = Field(0.7, ge=0, le=1, description="weight of KD; 1 - alpha goes to label CE")
    epochs: int = Field(40, ge=1, le=10000)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(5e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    warmup: float = Field(
        0.06, ge=0, lt=1, description="transformer students: fraction of steps of lr warm-up"
    )
    patience: int = Field(8, ge=1, description="epochs without val improvement before stopping")
    seed: int = 0
    relation_heads: int = Field(
        12, ge=1, description="relation_kl: heads the q/k/v relations are split into (MiniLMv2)"
    )
    trim_vocab: int | None = Field(
        None,
        ge=1,
        description="transformer students: keep only the word pieces seen at least this many "
        "times in the training split (and every special token and single character), and the "
        "word-table rows with them; the shipped tokenizer is rewritten to match",
    )
    cache_teacher: Literal["auto", "on", "off"] = Field(
        "auto",
        description="transformer students: run the teacher over the training split once, as a "
        "cached step (teacher_outputs), and train every epoch from it; only for losses on the "
        "teacher's pooled output or logits (token-level losses need the teacher each step). "
        "auto: on with more than one epoch",
    )
    threads: Threads | None = Field(
        None,
        description="transformer students: torch threads while training; none: 1 below 5M "
        "parameters, else all cores (on a loaded machine 1 can be faster)",
    )
    jsd_beta: float = Field(0.5, ge=0, le=1, description="text-generation: beta of the jsd loss")
    on_policy: float = Field(
        0.0,
        ge=0,
        le=1,
        description="text-generation: fraction of batches on which the student samples its own "
        "continuations and the teacher scores them (GKD's lambda)",
    )
    on_policy_tokens: int = Field(
        24, ge=1, description="text-generation: tokens the student samples per on-policy batch"
    )
    max_steps: int | None = Field(
        None, ge=1, description="text-generation: cap on optimizer steps (over all epochs)"
    )
    teacher_topk: int | None = Field(
        None,
        ge=1,
        le=4096,
        description="text-generation: cache the teacher's top-k logits per token once (the "
        "teacher_logits step) and train every epoch from them; none: the teacher runs each step",
    )

    @classmethod
    def relative_to(cls, data: dict[str, Any], base: Path) -> dict[str, Any]:
        return relative_student(super().relative_to(data, base), base)

    def input_paths(self) -> dict[str, str]:
        return self.student.input_paths()

    @model_validator(mode="after")
    def _losses_fit_student(self) -> DistillConfig:
        if self.losses is not None:
            if not self.losses.active():
                raise ValueError("distill.losses: give at least one loss a weight > 0")
            extra = set(self.losses.active()) - {"logits_kd", "label_ce", "feature_mse"}
            lm = {"reverse_kl", "jsd"}
            if self.student.arch == "causal-lm":
                extra -= lm
            elif extra & lm:
                raise ValueError(f"losses {sorted(extra & lm)} need a causal-lm student")
            if self.student.arch == "static":
                extra -= {"embedding_cosine", "embedding_mse"}
            if self.student.arch != "transformer" and extra:
                raise ValueError(
                    f"losses {sorted(extra)} need a transformer student (arch: transformer)"
                )
        if self.student.arch == "static" and self.trim_vocab is not None:
            raise ValueError(
                "distill.trim_vocab: a static student keeps its teacher's tokenizer (its unused "
                "rows cost size, not time; quantize.embeddings int4 shrinks them)"
            )
        return self

    def loss_weights(self, task: str) -> dict[str, float]:
        """The losses in use, with the task's defaults when `losses` is not given."""
        if self.losses is not None:
            return self.losses.active()
        if task == "feature-extraction":
            return {"embedding_cosine": 1.0, "embedding_mse": 1.0}
        if task == LM_TASK:  # token-level KD at T plus CE on the data's next tokens
            return {k: w for k, w in (("logits_kd", self.alpha), ("label_ce", 1 - self.alpha)) if w}
        return {k: w for k, w in (("logits_kd", self.alpha), ("label_ce", 1 - self.alpha)) if w}


POOLED_LOSSES = frozenset({"logits_kd", "label_ce", "embedding_cosine", "embedding_mse"})


class TrimVocabConfig(Config):
    """The trim_vocab stage: a student's vocabulary cut to the pieces its training text uses."""

    min_count: int = Field(1, ge=1)


class TeacherOutputsConfig(Config):
    """The teacher_outputs stage: the teacher's head output (pooled embedding or logits) on
    every training text, once per teacher, corpus and tokenizer settings; sharded across
    compute.nproc processes (the same rows as one process computes)."""

    task: Task
    max_length: int = Field(128, ge=4)
    batch: int = Field(64, ge=1, description="texts per teacher forward")
    compute: ComputeConfig = ComputeConfig()


class TokenizeConfig(Config):
    """The tokenize stage: the training split's token ids with the teacher's tokenizer, once
    per tokenizer and corpus (packager.data.tokens)."""

    max_length: int = Field(128, ge=4)


class DistillStepConfig(DistillConfig):
    """What the distill stage reads: the `distill:` section plus the recipe's task (which head
    and which default losses), so switching the task is a new key; and, when the word table is
    frozen and will ship as int4 blocks (quantize.embeddings = int4), those blocks, so the student
    trains on exactly the vectors it ships with."""

    # The trim_vocab step after distill has its own config (min_count): trimming, or trimming
    # more, reuses the trained student instead of training it again. Where and how the passes
    # run is `compute` (resolved, keyed by kind and precision); the raw fields are not read.
    unkeyed: ClassVar[frozenset[str]] = DistillConfig.unkeyed | {
        "trim_vocab", "device", "workers", "checkpoint_steps", "restarts"
    }  # fmt: skip

    task: Task
    compute: ComputeConfig = ComputeConfig()
    int4_embedding_block: int | None = None
    int4_embedding_symmetric: bool = True

    @property
    def weights(self) -> dict[str, float]:
        return self.loss_weights(self.task)

    @property
    def uses_teacher_cache(self) -> bool:
        """Whether training reads the teacher's outputs from the teacher_outputs step."""
        if self.student.arch == "static":  # one pass of the teacher, then the table trains
            return self.student.tune and self.task != LM_TASK
        if (
            self.student.arch != "transformer"
            or self.cache_teacher == "off"
            or self.task == LM_TASK
        ):
            return False
        pooled = set(self.weights) <= POOLED_LOSSES
        return pooled and (self.cache_teacher == "on" or self.epochs > 1)
