"""CloudLULC-Set reader: the official folder layout and split files, never re-split.

Layout (`paper.md` §5)::

    ROOT/SAR_S1/VH/<name>.tif   ROOT/SAR_S1/VV/<name>.tif   ROOT/Opt_S2_cloudy/<name>.tif
    ROOT/Opt_S2_clear/<name>.tif   ROOT/Label/<name>.tif   ROOT/split/{train,val,test}.csv

Split files have the columns ``split_id sar_vh sar_vv opt_cloudy opt_clear label`` (split_id 1 =
train, 2 = val, 3 = test), separated by commas, tabs or spaces; paths are taken relative to ROOT or, when only a file name is given,
from the modality folder. Patches overlap, so only these splits are used.

Undocumented conventions are explicit options, each with the check that decides it (`model.md`
§12, §15):

* **Label ids** (`LABEL_SCHEMES`): ``one_based`` (1..6 = the contract's classes in README order,
  0 and 255 nodata) or ``zero_based`` (0..5, 255 nodata). Any other id fails, naming the file.
* **S2 offset**: ``s2_offset`` added to the DN before ÷10000 (−1000 for processing baseline ≥ 04.00).
* **S1 units**: ``db`` (GEE-style σ⁰ dB, the expected case) or ``linear``.

**Cloud fraction** of a sample (for the paper's cloud bins): the share of valid pixels where the
cloudy image is brighter than the clear one by more than 0.06 reflectance in *both* B02 and B03
(clouds and haze brighten the visible bands; surface change between the two dates rarely does so
in both). Shadows are not counted. The rule is a documented proxy for the paper's unpublished one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.errors import RasterioIOError

from cloudlulc_edge.contract import (
    CLASSES,
    IGNORE_INDEX,
    S2_BANDS,
    S2_CHANNELS,
    linear_to_db,
    normalise_s1_db,
    normalise_s2_reflectance,
)
from cloudlulc_edge.errors import CloudLULCError

__all__ = [
    "CLOUD_BINS",
    "LABEL_SCHEMES",
    "SPLIT_IDS",
    "CloudLULCSet",
    "DatasetError",
    "Sample",
    "SampleFiles",
    "cloud_bin",
    "cloud_fraction",
]

SPLIT_IDS = {"train": 1, "val": 2, "test": 3}
_COLUMNS = ("split_id", "sar_vh", "sar_vv", "opt_cloudy", "opt_clear", "label")
_FOLDERS = {"sar_vh": "SAR_S1/VH", "sar_vv": "SAR_S1/VV", "opt_cloudy": "Opt_S2_cloudy", "opt_clear": "Opt_S2_clear",
            "label": "Label"}  # fmt: skip
#: Stored label id → class index of the contract (or IGNORE_INDEX), per convention.
LABEL_SCHEMES: dict[str, dict[int, int]] = {
    "one_based": {0: IGNORE_INDEX, 255: IGNORE_INDEX, **{i + 1: i for i in range(len(CLASSES))}},
    "zero_based": {255: IGNORE_INDEX, **{i: i for i in range(len(CLASSES))}},
}
#: The paper's cloud-cover bins (upper edges, fractions).
CLOUD_BINS: tuple[tuple[str, float], ...] = (
    ("<10%", 0.10), ("10-30%", 0.30), ("30-50%", 0.50), ("50-70%", 0.70), (">70%", 1.01),
)  # fmt: skip
_B02, _B03 = S2_BANDS.index("B02"), S2_BANDS.index("B03")
_CLOUD_DELTA = 0.06


class DatasetError(CloudLULCError):
    """The dataset is malformed: a missing split file or tif, an unknown label id, mismatched sizes."""


@dataclass(frozen=True)
class SampleFiles:
    """The five files of one sample.

    Attributes:
        name: Sample name (the label file's stem).
        sar_vh: VH backscatter.
        sar_vv: VV backscatter.
        opt_cloudy: Cloud-contaminated S2 (12 bands, the network input).
        opt_clear: Cloud-free S2 (12 bands; reference, cloud fraction, reconstruction baselines).
        label: Label ids.
    """

    name: str
    sar_vh: Path
    sar_vv: Path
    opt_cloudy: Path
    opt_clear: Path
    label: Path


@dataclass
class Sample:
    """One loaded sample, normalised like inference inputs.

    Attributes:
        name: Sample name.
        s2: (12, H, W) float32 cloudy reflectance in [0, 1].
        s2_clear: (12, H, W) float32 clear reflectance in [0, 1].
        s1: (2, H, W) float32 [VV, VH] in [0, 1].
        s2_valid: (H, W) bool.
        s1_valid: (H, W) bool.
        label: (H, W) int64 class index or IGNORE_INDEX.
        cloud_fraction: See the module docstring.
        soft: (K, H, W) float32 soft targets (a teacher's class probabilities, summing to 1), or
            None where the dataset has hard labels only.
    """

    name: str
    s2: npt.NDArray[np.float32]
    s2_clear: npt.NDArray[np.float32]
    s1: npt.NDArray[np.float32]
    s2_valid: npt.NDArray[np.bool_]
    s1_valid: npt.NDArray[np.bool_]
    label: npt.NDArray[np.int64]
    cloud_fraction: float
    soft: npt.NDArray[np.float32] | None = None


def cloud_fraction(
    cloudy: npt.NDArray[np.float32], clear: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]
) -> float:
    """Share of valid pixels brightened by > 0.06 in both B02 and B03 (cloudy − clear).

    Args:
        cloudy: (12, H, W) reflectance.
        clear: (12, H, W) reflectance.
        valid: (H, W) pixels valid in both.
    """
    n = int(valid.sum())
    if n == 0:
        return 0.0
    bright = ((cloudy[_B02] - clear[_B02]) > _CLOUD_DELTA) & ((cloudy[_B03] - clear[_B03]) > _CLOUD_DELTA)
    return float((bright & valid).sum()) / n


def cloud_bin(fraction: float) -> str:
    """The paper's cloud bin of a cloud fraction (``<10%`` … ``>70%``)."""
    return next(name for name, edge in CLOUD_BINS if fraction < edge)


def _read(path: Path, bands: int | None = None) -> npt.NDArray[np.float32]:
    if not path.is_file():
        raise DatasetError("file listed in the split is missing", path)
    try:
        with rasterio.open(path) as ds:
            data: npt.NDArray[np.float32] = ds.read().astype(np.float32)
    except RasterioIOError as exc:
        raise DatasetError(f"unreadable GeoTIFF: {exc}", path) from exc
    if bands is not None and data.shape[0] != bands:
        raise DatasetError(f"expected {bands} band(s), found {data.shape[0]}", path)
    return data


class CloudLULCSet:
    """A CloudLULC-Set split.

    Args:
        root: Dataset root (holding ``split/``).
        split: ``train``, ``val`` or ``test``.
        label_scheme: Key of `LABEL_SCHEMES`.
        s2_offset: DN offset added before ÷10000.
        s1_units: ``db`` or ``linear``.

    Raises:
        DatasetError: Missing or empty split file, a bad header (the header line is optional: a
            first row starting with a split id is data), a row of another split, or an unknown option.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        label_scheme: str = "one_based",
        s2_offset: float = 0.0,
        s1_units: Literal["db", "linear"] = "db",
    ) -> None:
        self.root = Path(root)
        if split not in SPLIT_IDS:
            raise DatasetError(f"split must be one of {', '.join(SPLIT_IDS)}, got {split!r}")
        if label_scheme not in LABEL_SCHEMES:
            raise DatasetError(f"label_scheme must be one of {', '.join(LABEL_SCHEMES)}, got {label_scheme!r}")
        if s1_units not in ("db", "linear"):
            raise DatasetError(f"s1_units must be db or linear, got {s1_units!r}")
        self.split = split
        self.label_map = LABEL_SCHEMES[label_scheme]
        self.s2_offset = s2_offset
        self.s1_units = s1_units
        self.files = self._read_split(self.root / "split" / f"{split}.csv", SPLIT_IDS[split])

    def _resolve(self, column: str, value: str) -> Path:
        path = Path(value)
        if path.is_absolute():
            return path
        if len(path.parts) > 1:
            return self.root / path
        return self.root / _FOLDERS[column] / path

    def _read_split(self, path: Path, split_id: int) -> list[SampleFiles]:
        if not path.is_file():
            raise DatasetError("split file is missing (use the official split files; never re-split)", path)
        # Comma-, tab- or space-separated, with or without the header line (the dataset's README shows
        # the columns but promises neither): a first row that starts with a split id is data.
        rows = [re.split(r"[,;\s]+", line.strip()) for line in path.read_text().splitlines() if line.strip()]
        if not rows:
            raise DatasetError(f"split file is empty (expected rows of {' '.join(_COLUMNS)})", path)
        has_header = not rows[0][0].isdigit()
        if has_header and tuple(rows[0]) != _COLUMNS:
            raise DatasetError(f"split header must be {' '.join(_COLUMNS)} (or no header), got {rows[0]}", path)
        files = []
        for line, row in enumerate(rows[1:] if has_header else rows, start=2 if has_header else 1):
            if len(row) != len(_COLUMNS) or not row[0].isdigit():
                raise DatasetError(f"line {line}: expected {len(_COLUMNS)} columns starting with a split id", path)
            if int(row[0]) != split_id:
                raise DatasetError(
                    f"line {line}: split_id {row[0]} in the {self.split} file (expected {split_id})", path
                )
            paths = {c: self._resolve(c, v) for c, v in zip(_COLUMNS[1:], row[1:], strict=True)}
            files.append(SampleFiles(name=paths["label"].stem, **paths))
        return files

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[Sample]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, index: int) -> Sample:
        """Loads sample ``index``.

        Raises:
            DatasetError: Missing or unreadable file, wrong band count, size mismatch between
                modalities, or a label id outside the label scheme (all naming the file).
        """
        f = self.files[index]
        vv, vh = _read(f.sar_vv, 1), _read(f.sar_vh, 1)
        cloudy, clear = _read(f.opt_cloudy, S2_CHANNELS), _read(f.opt_clear, S2_CHANNELS)
        raw_label = _read(f.label, 1)[0]
        shape = raw_label.shape
        for path, arr in ((f.sar_vv, vv), (f.sar_vh, vh), (f.opt_cloudy, cloudy), (f.opt_clear, clear)):
            if arr.shape[1:] != shape:
                raise DatasetError(f"size {arr.shape[1:]} differs from the label's {shape}", path)
        label = self._map_labels(raw_label, f.label)
        s2, s2_valid = self._optical(cloudy)
        s2_clear, clear_valid = self._optical(clear)
        db = np.stack([vv[0], vh[0]])
        if self.s1_units == "linear":
            db = linear_to_db(db)
        s1, s1_valid = normalise_s1_db(db, np.all(np.isfinite(db), axis=0) & np.any(db != 0, axis=0))
        return Sample(f.name, s2, s2_clear, s1, s2_valid, s1_valid, label,
                      cloud_fraction(s2, s2_clear, s2_valid & clear_valid))  # fmt: skip

    def _optical(self, dn: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
        valid = np.any(dn != 0, axis=0)  # DN 0 in every band is nodata
        return normalise_s2_reflectance((dn + self.s2_offset) / 10000.0, valid, inplace=True)

    def _map_labels(self, raw: npt.NDArray[np.float32], path: Path) -> npt.NDArray[np.int64]:
        ids = raw.astype(np.int64)
        unknown = sorted(set(np.unique(ids).tolist()) - set(self.label_map))
        if unknown:
            raise DatasetError(
                f"label ids {unknown[:8]} are not in the label scheme (known: {sorted(self.label_map)}); "
                "check np.unique on the Label files and pick label_scheme accordingly",
                path,
            )
        lut = np.full(max(self.label_map) + 1, IGNORE_INDEX, dtype=np.int64)
        for stored, index in self.label_map.items():
            lut[stored] = index
        return lut[ids]
