"""Training configuration: a TOML file plus ``key=value`` overrides; defaults are `model.md` §11's recipe.

    [train]
    data_root = "/data/CloudLULC-Set"
    variant = "cloudlulc_net"
    epochs = 42
    [model]            # optional overrides of the variant's configuration
    order = 3

Overrides use the same keys (``epochs=3``, ``model.order=3``); values are parsed as JSON when they
parse (numbers, booleans, lists), as text otherwise. Text values may name environment variables as
``${NAME}`` (the packaged config takes its data folder from ``${CLOUDLULC_DATA}``); an unset
variable is a `ConfigError` that says which one to set.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from cloudlulc_edge.errors import CloudLULCError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (JetPack 6)
    import tomli as tomllib

__all__ = ["ConfigError", "TrainConfig", "load_config"]


#: Fields held as tuples (lists in JSON and TOML).
_TUPLE_FIELDS = ("betas", "cloud_cover", "val_covers")
_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(CloudLULCError):
    """A training configuration file or override is malformed."""


@dataclass
class TrainConfig:
    """Everything a training run depends on (recorded in every checkpoint).

    Attributes:
        data_root: CloudLULC-Set root.
        output_dir: Run folder (``last/`` training state, ``best/`` checkpoint, ``log.jsonl``).
        variant: Registered model variant: a CloudLULC-Net profile or a baseline (``unet_s2``,
            ``unet_s1``, ``unet_early``, ``recon_first``); see `cloudlulc_edge.models.variants`.
        model: Overrides of the variant's configuration (`CloudLULCNetConfig`, `UNetConfig`, …).
        label_scheme: See `cloudlulc_edge.data.LABEL_SCHEMES`.
        s2_offset: DN offset of the optical files.
        s1_units: ``db`` or ``linear``.
        epochs: Epochs.
        batch_size: Samples per step.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        betas: AdamW betas.
        warmup_iters: Linear warm-up steps.
        schedule: ``poly`` or ``cosine`` decay after warm-up.
        poly_power: Power of the poly decay.
        amp: ``none``, ``bf16`` or ``fp16`` (fp16 needs CUDA); the FFT stays fp32 in the model.
        grad_clip: Max gradient norm (0: off).
        anchor_weight: λ_a of the semantic anchor loss (0: the "without anchor" ablation);
            CloudLULC-Net only, the baselines have no semantic latent.
        learnable_anchors: Learn the anchor embeddings (CloudLULC-Net only).
        crop: Random crop side (None: full patches).
        flip: Random flips.
        rot90: Random 90° rotations.
        seed: Seed of initialisation, data order and augmentation.
        device: ``cpu``, ``cuda``…
        inputs: Input configuration (`loop.INPUT_CONFIGS`, the paper's Fig. 12); ablations of the
            components are ``model`` overrides (``use_orm``, ``use_shoi``, ``use_choi``,
            ``usmt_depth=0``) and ``anchor_weight=0``.
        dataset: ``cloudlulc_set`` (the paper's benchmark under ``data_root``) or
            ``bigearthnet_dw`` (BigEarthNet patches + Dynamic World teacher labels under
            ``data_root``, with simulated clouds; see `cloudlulc_edge.data.bigearthnet`).
        cloud_donor: Cloudy L2A SAFE whose clouds are simulated onto clear patches (``bigearthnet_dw``).
        cloud_cover: Range of the simulated cloud cover drawn per training sample.
        val_covers: Simulated covers of every validation patch (deterministic per patch and cover).
        recon_weight: λ_r of the reconstruction L1 (``recon_first`` variants).
        recon_segment_on: What the ``recon_first`` segmenter trains on: ``reconstruction`` (its
            stage-1 output, gradient stopped) or ``clear`` (the cloud-free image); see
            `cloudlulc_edge.training.objectives`.
        label_rule: ``raw`` teacher labels or ``water`` (open water relabelled by the physics rule
            of `cloudlulc_edge.data.label_rules`; ``bigearthnet_dw``).
        soft_weight: λ_s of the distillation target ``(1 − λ_s)·onehot(Y) + λ_s·P_teacher`` (0: hard
            labels only; > 0 needs a dataset with soft targets, ``bigearthnet_dw``).
        class_weighting: ``none`` or ``inverse_sqrt`` (per-class loss weights ∝ 1/√frequency over
            the training labels, normalised to a pixel mean of 1).
        s1_drop: Probability that a training sample loses all of S1 (the missing-SAR path).
        s1_partial_drop: Probability that a training sample loses S1 in a random rectangle
            (partial coverage: swath edges, layover/shadow).
        s2_drop: Probability that a training sample loses all of S2 (SAR must carry the map).
        train_split: ``train`` (BigEarthNet's split, validated on ``val``) or ``all`` (every patch,
            no validation; the packaged default) for ``bigearthnet_dw``.
        cv_folds: Cross-validation folds (0: off); with ``cv_fold`` the run trains on every patch
            outside fold ``cv_fold`` (`cloudlulc_edge.data.folds`), without validation.
        cv_fold: The held-out fold (0-based).
        val_every: Validate every this many epochs (and at the last).
    """

    data_root: str = ""
    output_dir: str = "runs/cloudlulc"
    variant: str = "cloudlulc_net"
    model: dict[str, Any] = field(default_factory=dict)
    label_scheme: str = "one_based"
    s2_offset: float = 0.0
    s1_units: str = "db"
    epochs: int = 42
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_iters: int = 1500
    schedule: str = "poly"
    poly_power: float = 0.9
    amp: str = "none"
    grad_clip: float = 1.0
    anchor_weight: float = 0.5
    learnable_anchors: bool = False
    crop: int | None = None
    flip: bool = True
    rot90: bool = True
    seed: int = 0
    device: str = "cpu"
    inputs: str = "cloudy_s2+s1"
    dataset: str = "cloudlulc_set"
    cloud_donor: str = ""
    cloud_cover: tuple[float, float] = (0.0, 0.9)
    val_covers: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8)
    recon_weight: float = 1.0
    recon_segment_on: str = "reconstruction"
    label_rule: str = "raw"
    soft_weight: float = 0.0
    class_weighting: str = "none"
    s1_drop: float = 0.0
    s1_partial_drop: float = 0.0
    s2_drop: float = 0.0
    train_split: str = "train"
    cv_folds: int = 0
    cv_fold: int = 0
    val_every: int = 1

    def validate(self) -> None:
        """Raises `ConfigError` naming the first bad value."""
        checks = [
            (self.epochs >= 1, f"epochs must be ≥ 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be ≥ 1, got {self.batch_size}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.schedule in ("poly", "cosine"), f"schedule must be poly or cosine, got {self.schedule!r}"),
            (self.amp in ("none", "bf16", "fp16"), f"amp must be none, bf16 or fp16, got {self.amp!r}"),
            (self.s1_units in ("db", "linear"), f"s1_units must be db or linear, got {self.s1_units!r}"),
            (bool(self.data_root), "data_root is required"),
            (
                self.inputs in ("cloudy_s2+s1", "cloudy_s2", "s1", "clear_s2+s1"),
                f"inputs must be cloudy_s2+s1, cloudy_s2, s1 or clear_s2+s1, got {self.inputs!r}",
            ),
            (
                self.dataset in ("cloudlulc_set", "bigearthnet_dw"),
                f"dataset must be cloudlulc_set or bigearthnet_dw, got {self.dataset!r}",
            ),
            (
                self.dataset != "bigearthnet_dw" or bool(self.cloud_donor),
                "dataset bigearthnet_dw needs cloud_donor (a cloudy L2A SAFE)",
            ),
            (
                0.0 <= self.cloud_cover[0] <= self.cloud_cover[1] <= 1.0 and all(0 <= c <= 1 for c in self.val_covers),
                f"cloud covers must lie in [0, 1], got {self.cloud_cover} and {self.val_covers}",
            ),
            (self.recon_weight >= 0, f"recon_weight must be >= 0, got {self.recon_weight}"),
            (
                self.recon_segment_on in ("reconstruction", "clear"),
                f"recon_segment_on must be reconstruction or clear, got {self.recon_segment_on!r}",
            ),
            (self.label_rule in ("raw", "water"), f"label_rule must be raw or water, got {self.label_rule!r}"),
            (0.0 <= self.soft_weight <= 1.0, f"soft_weight must lie in [0, 1], got {self.soft_weight}"),
            (
                self.soft_weight == 0.0 or self.dataset == "bigearthnet_dw",
                "soft_weight > 0 needs soft targets (dataset bigearthnet_dw)",
            ),
            (
                self.class_weighting in ("none", "inverse_sqrt"),
                f"class_weighting must be none or inverse_sqrt, got {self.class_weighting!r}",
            ),
            *(
                (0.0 <= p <= 1.0, f"{name} must be a probability in [0, 1], got {p}")
                for name, p in (
                    ("s1_drop", self.s1_drop),
                    ("s1_partial_drop", self.s1_partial_drop),
                    ("s2_drop", self.s2_drop),
                )
            ),
            (self.train_split in ("train", "all"), f"train_split must be train or all, got {self.train_split!r}"),
            (
                self.cv_folds == 0 or (self.cv_folds >= 2 and 0 <= self.cv_fold < self.cv_folds),
                f"cv_folds must be 0 or ≥ 2 with 0 ≤ cv_fold < cv_folds, got {self.cv_folds}/{self.cv_fold}",
            ),
            (
                self.cv_folds == 0 or (self.dataset == "bigearthnet_dw" and self.train_split == "all"),
                "cross-validation folds are drawn from every patch: needs dataset bigearthnet_dw and train_split all",
            ),
            (self.val_every >= 1, f"val_every must be ≥ 1, got {self.val_every}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of `to_dict` (JSON and TOML give lists where the configuration holds tuples).

        Raises:
            TypeError: Unknown keys.
        """
        values: dict[str, Any] = {k: tuple(v) if k in _TUPLE_FIELDS else v for k, v in data.items()}
        return cls(**values)


def _expand(value: Any, path: str | Path | None) -> Any:
    """``${NAME}`` in text values replaced by the environment variable (recursively in lists and tables)."""
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(f"the configuration uses ${{{name}}}: set the environment variable {name} "
                                  f"(e.g. {name}=/path/to/data) or override the option with --set", path)  # fmt: skip
            return os.environ[name]

        return _ENV_VAR.sub(lookup, value)
    if isinstance(value, list):
        return [_expand(v, path) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, path) for k, v in value.items()}
    return value


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Reads ``[train]`` and ``[model]`` from a TOML file (optional) and applies ``key=value`` overrides.

    Raises:
        ConfigError: Unreadable TOML, unknown keys, or values that fail `TrainConfig.validate`.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            doc = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read training config: {exc}", path) from exc
        data = dict(doc.get("train", {}))
        if "model" in doc:
            data["model"] = dict(doc["model"])
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} must look like key=value")
        if key.startswith("model."):
            data.setdefault("model", {})[key.removeprefix("model.")] = _parse_value(value)
        else:
            data[key] = _parse_value(value)
    data = {k: _expand(v, path) for k, v in data.items()}
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown training option(s) {unknown}; known: {sorted(known)}", path)
    config = TrainConfig.from_dict(data)
    config.validate()
    return config
