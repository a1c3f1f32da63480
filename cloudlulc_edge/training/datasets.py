"""The datasets a training configuration names, and how each training sample is prepared.

``cloudlulc_set``: the paper's benchmark; samples carry their own cloudy optical image.
``bigearthnet_dw``: clear BigEarthNet patches with teacher labels; every training sample gets
fresh simulated clouds at a random cover, and validation/test patches get deterministic clouds at
fixed covers (`SimulatedCloudSet`), so the paper's cloud bins are meaningful on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from cloudlulc_edge.data.augment import Augment
from cloudlulc_edge.data.bigearthnet import BigEarthNetDW
from cloudlulc_edge.data.cloud_sim import CloudDonor, CloudSimulator, simulate_sample
from cloudlulc_edge.data.cloudlulc_set import CloudLULCSet, Sample
from cloudlulc_edge.training.config import TrainConfig

__all__ = ["SampleSource", "SimulatedCloudSet", "TrainingData", "build_datasets", "data_description", "evaluation_set"]


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
    drawn from ``(seed, patch, cover index)`` alone, so a set is identical across runs and
    processes. Samples are cached after their first use (patches are small).

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
            rng = np.random.default_rng([self.seed, patch, k])
            self._cache[index] = simulate_sample(self.base[patch], self.simulator, self.covers[k], rng)
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
    return {
        "dataset": "BigEarthNet v1/v2 S1+S2 patches (120 × 120 px at 10 m; Austria, Ireland, Portugal, Finland, "
        "2017–2018; BigEarthNet's own splits, the six v1 examples in train)",
        "labels": "Dynamic World teacher predictions on the clear S2 patches, mapped to the six classes "
        "(dw-labels): model outputs, NOT ground truth; evaluation against them measures agreement with the teacher",
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
    if cfg.dataset == "cloudlulc_set":
        args = (cfg.label_scheme, cfg.s2_offset, cfg.s1_units)
        return TrainingData(CloudLULCSet(cfg.data_root, "train", *args), CloudLULCSet(cfg.data_root, "val", *args),  # type: ignore[arg-type]
                            augment)  # fmt: skip
    simulator = _simulator(cfg)
    low, high = cfg.cloud_cover

    def prepare(sample: Sample, rng: np.random.Generator) -> Sample:
        return simulate_sample(augment(sample, rng), simulator, float(rng.uniform(low, high)), rng)

    val = SimulatedCloudSet(BigEarthNetDW(cfg.data_root, "val"), simulator, cfg.val_covers, cfg.seed)
    return TrainingData(BigEarthNetDW(cfg.data_root, "train"), val, prepare)


def evaluation_set(cfg: TrainConfig, split: str, covers: Sequence[float] | None = None) -> SampleSource:
    """A split of the configured dataset for evaluation (cloudy at ``covers`` for ``bigearthnet_dw``).

    Raises:
        DatasetError: Malformed data (naming the file).
    """
    if cfg.dataset == "cloudlulc_set":
        return CloudLULCSet(cfg.data_root, split, cfg.label_scheme, cfg.s2_offset, cfg.s1_units)  # type: ignore[arg-type]
    base = BigEarthNetDW(cfg.data_root, split)  # type: ignore[arg-type]
    return SimulatedCloudSet(base, _simulator(cfg), tuple(covers or cfg.val_covers), cfg.seed)
