"""BigEarthNet S1+S2 patches with Dynamic World teacher labels: the default model's training data.

Three forms of real BigEarthNet patches (1.2 km × 1.2 km, 120 × 120 px at 10 m) are read into the
input contract, each paired with its teacher label from ``dw-labels``:

* ``bigearthnet-v1/``: the georeferenced GeoTIFF examples (one file per band, S1 in dB);
* ``bigearthnet-v1-npz/``: arrays per patch, ``patches.csv`` gives the S1 file and the split;
* ``bigearthnet-v2/``: arrays per patch, ``metadata*.csv`` give the S1 name and the split.

Labels are ``lulc6_label`` of ``<patch>_dw_probs.npz``: Dynamic World predictions on the clear S2
patch mapped to the six classes (255 = ignore, e.g. snow). They are **teacher predictions, not
ground truth**, and everything trained or measured on them says so. The teacher's nine class
probabilities (``probs``) are summed into the six classes as soft targets (`SOFT_CLASS_MAP`;
snow_and_ice, an ignored class, is dropped and the rest renormalised). ``label_rule = "water"``
corrects the teacher's dark-water error (`cloudlulc_edge.data.label_rules`).

Splits follow BigEarthNet's own (``validation`` → ``val``); the six v1 GeoTIFF examples have none
and go to ``train``. ``split="all"`` takes every patch (cross-validation picks its folds from
them by `names`). S2 bands of 20 m and 60 m are upsampled to the 10 m grid with the same
rasterio bilinear warp the scene reader uses, so training sees what ``map`` feeds the model.
BigEarthNet S2 is processing baseline 02.xx: reflectance = DN / 10000, no offset.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.warp import reproject

from cloudlulc_edge.contract import (
    IGNORE_INDEX,
    NUM_CLASSES,
    S1_POLARISATIONS,
    S2_BANDS,
    normalise_s1_db,
    normalise_s2_reflectance,
)
from cloudlulc_edge.data.cloudlulc_set import DatasetError, Sample
from cloudlulc_edge.data.label_rules import LABEL_RULES, water_rule

__all__ = ["SOFT_CLASS_MAP", "BigEarthNetDW", "PatchFiles", "patch_group", "upsample_band"]

PATCH = 120
_PIXEL_M = 10.0
_CRS = CRS.from_epsg(32633)  # any metric CRS: the warp only needs consistent pixel geometry
Split = Literal["train", "val", "test", "all"]
#: Dynamic World class (probs channel) → six-class index; snow_and_ice (8) has none (ignored).
SOFT_CLASS_MAP = {0: 0, 1: 1, 2: 2, 3: 2, 4: 5, 5: 2, 6: 4, 7: 3}
_TILE = re.compile(r"_T?(\d{2}[A-Z]{3})_\d+_\d+$")
_DATATAKE = re.compile(r"^(S2[AB]_MSIL2A_\d{8}T\d+)")


@dataclass(frozen=True)
class PatchFiles:
    """Where one patch lives.

    Attributes:
        name: S2 patch name (the teacher label's prefix).
        dataset: ``BigEarthNet-v1``, ``BigEarthNet-v1-npz`` or ``BigEarthNet-v2``.
        split: ``train``, ``val`` or ``test``.
        s2: S2 folder (v1) or ``.npz`` file.
        s1: S1 folder (v1) or ``.npz`` file.
        label: The teacher's ``_dw_probs.npz``.
        s1_name: The S1 patch name (it names the MGRS tile for the v1 examples).
    """

    name: str
    dataset: str
    split: str
    s2: Path
    s1: Path
    label: Path
    s1_name: str = ""


def patch_group(patch: PatchFiles) -> str:
    """The spatial group of a patch for cross-validation: its MGRS tile where the names tell it.

    The v2 ids carry the tile (``…_T33UUP_26_57``), the v1 example S1 names too
    (``…_33UUP_87_48``). The v1-npz patches carry neither, so they are grouped by their S2 datatake
    (``S2A_MSIL2A_<sensing time>``), which never splits a tile of that acquisition; the tile of a
    datatake that also has v1/v2 patches is unknown, so it stays its own group.
    """
    for name in (patch.name, patch.s1_name):
        match = _TILE.search(name)
        if match:
            return match.group(1)
    match = _DATATAKE.match(patch.name)
    return f"datatake {match.group(1)}" if match else patch.name


def upsample_band(band: npt.NDArray[np.float32], size: int = PATCH) -> npt.NDArray[np.float32]:
    """Bilinear warp of a square band onto the ``size``² 10 m grid (DN 0 = nodata), as `BandStack` does.

    Args:
        band: (n, n) DNs covering the same extent as the output.
        size: Output side in pixels.
    """
    if band.shape == (size, size):
        return band.astype(np.float32)
    src_res = _PIXEL_M * size / band.shape[0]
    out = np.zeros((size, size), dtype=np.float32)
    reproject(
        source=band.astype(np.float32),
        destination=out,
        src_transform=Affine(src_res, 0, 0, 0, -src_res, 0),
        src_crs=_CRS,
        src_nodata=0,
        dst_transform=Affine(_PIXEL_M, 0, 0, 0, -_PIXEL_M, 0),
        dst_crs=_CRS,
        dst_nodata=0,
        resampling=Resampling.bilinear,
    )
    return out


class BigEarthNetDW:
    """BigEarthNet patches with teacher labels, as clear `Sample` objects (``s2`` = ``s2_clear``).

    Args:
        data_root: Folder holding ``bigearthnet-v1``, ``bigearthnet-v1-npz``, ``bigearthnet-v2``
            (any subset) and ``dw-labels``.
        split: ``train``, ``val``, ``test`` or ``all``.
        labels_dir: Teacher-label folder (default ``data_root/dw-labels``).
        label_rule: ``raw`` (the teacher's labels) or ``water`` (`label_rules.water_rule` applied).
        names: Keep only these patches (in this order); None keeps the split's patches.

    Raises:
        DatasetError: No teacher-label manifest, a listed patch whose files are missing, an unknown
            label rule, or a requested name that is not a patch of the split.
    """

    def __init__(
        self,
        data_root: str | Path,
        split: Split,
        labels_dir: str | Path | None = None,
        label_rule: str = "raw",
        names: Sequence[str] | None = None,
    ) -> None:
        if split not in ("train", "val", "test", "all"):
            raise DatasetError(f"split must be train, val, test or all, got {split!r}")
        if label_rule not in LABEL_RULES:
            raise DatasetError(f"label_rule must be one of {', '.join(LABEL_RULES)}, got {label_rule!r}")
        self.root = Path(data_root)
        self.split = split
        self.label_rule = label_rule
        self.labels_dir = Path(labels_dir) if labels_dir is not None else self.root / "dw-labels"
        patches = [p for p in self._index() if split == "all" or p.split == split]
        if names is not None:
            by_name = {p.name: p for p in patches}
            missing = [n for n in names if n not in by_name]
            if missing:
                raise DatasetError(f"patch(es) {missing[:3]} are not in the {split} split", self.labels_dir)
            patches = [by_name[n] for n in names]
        self.patches = patches

    def _index(self) -> list[PatchFiles]:
        manifest = self.labels_dir / "manifest.csv"
        if not manifest.is_file():
            raise DatasetError("teacher-label manifest missing", manifest)
        patches = []
        with manifest.open(newline="") as f:
            for row in csv.DictReader(f):
                dataset, name, s1_name = row["dataset"], row["patch_id"], row["s1_patch_id"]
                split = {"validation": "val", "": "train"}.get(row["ben_split"], row["ben_split"])
                if dataset == "BigEarthNet-v1":
                    base = self.root / "bigearthnet-v1"
                    s2, s1 = base / "BigEarthNet-S2-Example" / name, base / "BigEarthNet-S1-Example" / s1_name
                elif dataset == "BigEarthNet-v1-npz":
                    base = self.root / "bigearthnet-v1-npz"
                    s2, s1 = base / "S2" / f"{name}.npz", base / "S1" / f"{s1_name}.npz"
                elif dataset == "BigEarthNet-v2":
                    base = self.root / "bigearthnet-v2"
                    s2, s1 = base / "S2" / f"{name}.npz", base / "S1" / f"{s1_name}.npz"
                else:
                    raise DatasetError(f"unknown dataset {dataset!r} for patch {name}", manifest)
                if not base.is_dir():
                    continue  # that part of the data is not installed here
                label = self.labels_dir / f"{name}_dw_probs.npz"
                for path in (s2, s1, label):
                    if not path.exists():
                        raise DatasetError(f"patch {name} listed in the teacher manifest has no file", path)
                patches.append(PatchFiles(name, dataset, split, s2, s1, label, s1_name))
        return patches

    def __len__(self) -> int:
        return len(self.patches)

    def __iter__(self) -> Iterator[Sample]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, index: int) -> Sample:
        files = self.patches[index]
        dn = np.stack([upsample_band(b) for b in self._s2_bands(files)])
        s2, s2_valid = normalise_s2_reflectance(dn / 10000.0, np.all(dn > 0, axis=0))
        db = self._s1_bands(files)
        s1, s1_valid = normalise_s1_db(db, np.all(np.isfinite(db), axis=0))
        label, teacher = self._label(files)
        soft: npt.NDArray[np.float32] | None = teacher
        if self.label_rule == "water":
            label, soft, _ = water_rule(label, teacher, dn / 10000.0, db, s2_valid & s1_valid)
        return Sample(files.name, s2, s2.copy(), s1, s2_valid, s1_valid, label, cloud_fraction=0.0, soft=soft)

    def _s2_bands(self, files: PatchFiles) -> list[npt.NDArray[np.float32]]:
        if files.dataset == "BigEarthNet-v1":
            return [_read_tif(files.s2 / f"{files.name}_{band}.tif") for band in S2_BANDS]
        arrays = _load_npz(files.s2)
        missing = [b for b in S2_BANDS if b not in arrays]
        if missing:
            raise DatasetError(f"S2 bands {missing} missing", files.s2)
        return [arrays[b].astype(np.float32) for b in S2_BANDS]

    def _s1_bands(self, files: PatchFiles) -> npt.NDArray[np.float32]:
        if files.dataset == "BigEarthNet-v1":
            bands = [_read_tif(files.s1 / f"{files.s1.name}_{pol}.tif") for pol in S1_POLARISATIONS]
        else:
            arrays = _load_npz(files.s1)
            if any(p not in arrays for p in S1_POLARISATIONS):
                raise DatasetError(f"S1 file lacks {S1_POLARISATIONS}", files.s1)
            bands = [arrays[p].astype(np.float32) for p in S1_POLARISATIONS]
        if any(b.shape != (PATCH, PATCH) for b in bands):
            raise DatasetError(f"S1 bands must be {PATCH}×{PATCH}, got {[b.shape for b in bands]}", files.s1)
        return np.stack(bands)

    def _label(self, files: PatchFiles) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        arrays = _load_npz(files.label)
        label, probs = arrays.get("lulc6_label"), arrays.get("probs")
        if label is None or label.shape != (PATCH, PATCH):
            raise DatasetError(f"expected a {PATCH}×{PATCH} lulc6_label array", files.label)
        bad = np.setdiff1d(np.unique(label), [*range(NUM_CLASSES), IGNORE_INDEX])
        if bad.size:
            raise DatasetError(f"unexpected label id(s) {bad.tolist()}", files.label)
        if probs is None or probs.shape != (9, PATCH, PATCH) or not np.isfinite(probs).all():
            raise DatasetError(f"expected finite (9, {PATCH}, {PATCH}) teacher probabilities 'probs'", files.label)
        return label.astype(np.int64), _soft_targets(probs.astype(np.float32))


def _soft_targets(probs: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(9, H, W) teacher probabilities → (6, H, W) soft targets summing to 1 (snow dropped)."""
    soft = np.zeros((NUM_CLASSES, *probs.shape[1:]), dtype=np.float32)
    for dw_class, index in SOFT_CLASS_MAP.items():
        soft[index] += probs[dw_class]
    total = soft.sum(axis=0, keepdims=True)
    # An all-snow pixel has no six-class mass: it is IGNORE in the hard label, so any target will do.
    return np.where(total > 1e-6, soft / np.maximum(total, 1e-6), 1.0 / NUM_CLASSES).astype(np.float32)


def _read_tif(path: Path) -> npt.NDArray[np.float32]:
    try:
        with rasterio.open(path) as ds:
            data: npt.NDArray[np.float32] = ds.read(1, out_dtype=np.float32)
            return data
    except RasterioError as exc:
        raise DatasetError(f"unreadable GeoTIFF: {exc}", path) from exc


def _load_npz(path: Path) -> dict[str, npt.NDArray[np.generic]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise DatasetError(f"unreadable .npz: {exc}", path) from exc
