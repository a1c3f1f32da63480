"""The datasets a training configuration names, and how each training sample is prepared.

``cloudlulc_set``: the paper's benchmark; samples carry their own cloudy optical image.
``bigearthnet_dw``: clear BigEarthNet patches with teacher labels; every training sample gets
fresh simulated clouds at a random cover, and validation/test patches get deterministic clouds at
fixed covers (`SimulatedCloudSet`), so the paper's cloud bins are meaningful on them. The patches
of a run are BigEarthNet's train split, every patch (``train_split = "all"``), or every patch
outside one cross-validation fold (`cloudlulc_edge.data.folds`).

Every training sample is prepared as augmentation → simulated clouds (``bigearthnet_dw``) →
modality dropout (`cloudlulc_edge.data.augment.ModalityDropout`).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from cloudlulc_edge.data.augment import Augment, ModalityDropout
from cloudlulc_edge.data.bigearthnet import BigEarthNetDW
from cloudlulc_edge.data.cloud_sim import CloudDonor, CloudSimulator, simulate_sample
from cloudlulc_edge.data.cloudlulc_set import CloudLULCSet, Sample
from cloudlulc_edge.data.folds import fold_names
from cloudlulc_edge.training.config import TrainConfig

__all__ = [
    "SampleSource",
    "SimulatedCloudSet",
    "TrainingData",
    "build_datasets",
    "data_description",
    "evaluation_set",
    "fold_test_set",
]


class SampleSource(Protocol):
    """What the loop and `evaluate` need of a dataset."""

    @property
    def split(self) -> str:
        """Split name."""
        ...

    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> Sample: ...


@dataclass
class SimulatedCloudSet:
    """Every patch of ``base`` at each of ``covers``, with deterministic simulated clouds.

    Sample ``i`` is patch ``i // len(covers)`` at cover ``covers[i % len(covers)]``; its clouds are
    drawn from ``(seed, CRC-32 of the patch name, cover index)`` alone, so a patch gets the same
    clouds in every run, process, fold and model. Samples are cached after their first use
    (patches are small).

    Attributes:
        base: Clear patches.
        simulator: The cloud simulator.
        covers: Target covers.
        seed: Seed of the clouds.
    """

    base: SampleSource
    simulator: CloudSimulator
    covers: Sequence[float]
    seed: int = 0
    _cache: dict[int, Sample] = field(default_factory=dict, repr=False)

    @property
    def split(self) -> str:
        """The base split."""
        return self.base.split

    def __len__(self) -> int:
        return len(self.base) * len(self.covers)

    def __iter__(self) -> Iterator[Sample]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, index: int) -> Sample:
        if index not in self._cache:
            patch, k = divmod(index, len(self.covers))
            sample = self.base[patch]
            rng = np.random.default_rng([self.seed, zlib.crc32(sample.name.encode()), k])
            self._cache[index] = simulate_sample(sample, self.simulator, self.covers[k], rng)
        return self._cache[index]


@dataclass
class TrainingData:
    """The splits of a run and the per-sample preparation of training samples.

    Attributes:
        train: Training split.
        val: Validation split (already cloudy).
        prepare: ``(sample, rng) -> sample``: augmentation, then simulated clouds where configured.
    """

    train: SampleSource
    val: SampleSource
    prepare: Callable[[Sample, np.random.Generator], Sample]


def data_description(cfg: TrainConfig) -> dict[str, str]:
    """What a run trains on, in words, for the model card (``training.data``)."""
    if cfg.dataset == "cloudlulc_set":
        return {"dataset": f"CloudLULC-Set at {cfg.data_root} (official splits)", "labels": "CloudLULC-Set labels"}
    patches = {
        "train": "BigEarthNet's own train split, the six v1 examples included",
        "all": "every patch"
        if not cfg.cv_folds
        else f"every patch outside cross-validation fold {cfg.cv_fold} of "
        f"{cfg.cv_folds} (spatial groups kept together)",
    }[cfg.train_split]
    rule = {"raw": "", "water": "; open water relabelled where dark in VV and VH and NDWI > 0 "
            "(cloudlulc_edge.data.label_rules)"}[cfg.label_rule]  # fmt: skip
    soft = f"; distilled from the teacher's soft probabilities (λ_s = {cfg.soft_weight})" if cfg.soft_weight else ""
    return {
        "dataset": "BigEarthNet v1/v2 S1+S2 patches (120 × 120 px at 10 m; Austria, Ireland, Portugal, Finland "
        f"and open sea, 2017–2018; {patches})",
        "labels": "Dynamic World teacher predictions on the clear S2 patches, mapped to the six classes "
        "(dw-labels): model outputs, NOT ground truth; evaluation against them measures agreement with the teacher"
        f"{rule}{soft}",
        "modality_dropout": f"S1 lost entirely with p = {cfg.s1_drop}, in a rectangle with p = {cfg.s1_partial_drop}; "
        f"S2 lost entirely with p = {cfg.s2_drop}",
        "clouds": f"simulated from the real cloudy L2A product {Path(cfg.cloud_donor).name}, cover drawn in "
        f"{list(cfg.cloud_cover)} per training sample (cloudlulc_edge.data.cloud_sim)",
        "licence": "Contains modified Copernicus Sentinel data 2017-2018 and 2022; BigEarthNet CDLA-Permissive-1.0; "
        "Dynamic World model Apache-2.0",
    }


def _simulator(cfg: TrainConfig) -> CloudSimulator:
    return CloudSimulator(CloudDonor.from_safe(cfg.cloud_donor))


def build_datasets(cfg: TrainConfig) -> TrainingData:
    """Opens the configured dataset's train and val splits.

    Raises:
        DatasetError: Malformed data (naming the file).
        ProductError: An unusable cloud donor.
    """
    augment = Augment(cfg.flip, cfg.rot90, cfg.crop)
    dropout = ModalityDropout(cfg.s1_drop, cfg.s1_partial_drop, cfg.s2_drop)
    if cfg.dataset == "cloudlulc_set":
        args = (cfg.label_scheme, cfg.s2_offset, cfg.s1_units)
        return TrainingData(CloudLULCSet(cfg.data_root, "train", *args), CloudLULCSet(cfg.data_root, "val", *args),  # type: ignore[arg-type]
                            lambda sample, rng: dropout(augment(sample, rng), rng))  # fmt: skip
    simulator = _simulator(cfg)
    low, high = cfg.cloud_cover

    def prepare(sample: Sample, rng: np.random.Generator) -> Sample:
        cloudy = simulate_sample(augment(sample, rng), simulator, float(rng.uniform(low, high)), rng)
        return dropout(cloudy, rng)

    if cfg.train_split == "all":
        everything = BigEarthNetDW(cfg.data_root, "all", label_rule=cfg.label_rule)
        names = fold_names(everything.patches, cfg.cv_folds, cfg.cv_fold, held_out=False) if cfg.cv_folds else None
        train = BigEarthNetDW(cfg.data_root, "all", label_rule=cfg.label_rule, names=names)
        no_val = BigEarthNetDW(cfg.data_root, "all", label_rule=cfg.label_rule, names=[])
        return TrainingData(train, no_val, prepare)
    val = SimulatedCloudSet(BigEarthNetDW(cfg.data_root, "val", label_rule=cfg.label_rule), simulator,
                            cfg.val_covers, cfg.seed)  # fmt: skip
    return TrainingData(BigEarthNetDW(cfg.data_root, "train", label_rule=cfg.label_rule), val, prepare)


def evaluation_set(cfg: TrainConfig, split: str, covers: Sequence[float] | None = None) -> SampleSource:
    """A split of the configured dataset for evaluation (cloudy at ``covers`` for ``bigearthnet_dw``).

    Raises:
        DatasetError: Malformed data (naming the file).
    """
    if cfg.dataset == "cloudlulc_set":
        return CloudLULCSet(cfg.data_root, split, cfg.label_scheme, cfg.s2_offset, cfg.s1_units)  # type: ignore[arg-type]
    base = BigEarthNetDW(cfg.data_root, split, label_rule=cfg.label_rule)  # type: ignore[arg-type]
    return SimulatedCloudSet(base, _simulator(cfg), tuple(covers or cfg.val_covers), cfg.seed)


def fold_test_set(
    cfg: TrainConfig, covers: Sequence[float], label_rule: str, simulator: CloudSimulator | None = None, seed: int = 0
) -> SimulatedCloudSet:
    """The held-out fold ``cfg.cv_fold`` of ``cfg.cv_folds`` at ``covers``, labelled by ``label_rule``.

    The clouds depend on ``seed`` and the patch alone (`SimulatedCloudSet`), so every model and
    training seed is evaluated on the same cloudy patches.

    Raises:
        DatasetError: Malformed data (naming the file).
        ValueError: ``cfg`` has no folds.
    """
    if not cfg.cv_folds:
        raise ValueError("fold_test_set needs a configuration with cv_folds > 0")
    everything = BigEarthNetDW(cfg.data_root, "all")
    names = fold_names(everything.patches, cfg.cv_folds, cfg.cv_fold, held_out=True)
    base = BigEarthNetDW(cfg.data_root, "all", label_rule=label_rule, names=names)
    return SimulatedCloudSet(base, simulator or _simulator(cfg), tuple(covers), seed)
