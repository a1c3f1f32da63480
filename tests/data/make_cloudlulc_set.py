"""Writes a tiny, deterministic CloudLULC-Set in the official layout (GeoTIFF triplets + split CSVs).

    python tests/data/make_cloudlulc_set.py OUT_DIR [--train 6 --val 2 --test 2 --size 32 --seed 0]

Labels come from a smooth random field cut into the six classes (ids 1..6, nodata 0 on a border
strip), S2 DNs from per-class reflectance spectra (+ noise, baseline-04.00 offset not applied),
S1 VV/VH in dB from per-class backscatter, and the cloudy image from the clear one with a soft,
bright cloud over a chosen fraction of the patch. The cloud fraction of each sample is returned so
tests can check the reader's estimate.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

#: Reflectance of the 12 bands (B01…B12, no B10) per class: water, forest, grassland, barren,
#: built-up, cropland (rough field values; only their differences matter here).
SPECTRA = np.array([
    [0.06, 0.06, 0.05, 0.04, 0.03, 0.02, 0.02, 0.02, 0.02, 0.01, 0.01, 0.01],
    [0.03, 0.03, 0.05, 0.03, 0.08, 0.25, 0.30, 0.32, 0.33, 0.30, 0.15, 0.07],
    [0.04, 0.05, 0.08, 0.07, 0.14, 0.28, 0.32, 0.34, 0.35, 0.32, 0.25, 0.14],
    [0.10, 0.12, 0.16, 0.20, 0.23, 0.25, 0.27, 0.28, 0.29, 0.27, 0.35, 0.30],
    [0.10, 0.11, 0.12, 0.13, 0.15, 0.17, 0.18, 0.19, 0.20, 0.18, 0.22, 0.20],
    [0.05, 0.06, 0.09, 0.08, 0.15, 0.30, 0.36, 0.38, 0.39, 0.35, 0.22, 0.11],
])  # fmt: skip
#: σ⁰ dB [VV, VH] per class.
BACKSCATTER = np.array([[-20, -27], [-8, -14], [-11, -18], [-13, -22], [-4, -11], [-10, -16]], dtype=np.float32)


def _write(path: Path, data: np.ndarray, dtype: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": "GTiff", "height": data.shape[1], "width": data.shape[2], "count": data.shape[0],
               "dtype": dtype, "crs": "EPSG:32633", "transform": from_origin(400000, 5000000, 10, 10)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data.astype(dtype))


def _smooth(rng: np.random.Generator, size: int) -> np.ndarray:
    k = rng.uniform(0.1, 0.4, size=(3, 2))
    phase = rng.uniform(0, 2 * np.pi, size=3)
    r, c = np.mgrid[0:size, 0:size]
    return sum(np.sin(k[i, 0] * r + k[i, 1] * c + phase[i]) for i in range(3))


def make_cloudlulc_set(
    root: Path, train: int = 6, val: int = 2, test: int = 2, size: int = 32, seed: int = 0
) -> dict[str, float]:
    """Writes the dataset under ``root``; returns each sample's true cloud fraction."""
    rng = np.random.default_rng(seed)
    fractions: dict[str, float] = {}
    rows: dict[int, list[str]] = {1: [], 2: [], 3: []}
    for index, split_id in enumerate([1] * train + [2] * val + [3] * test):
        name = f"ROIs_{index // 4:02d}_p_{index:04d}.tif"
        field = _smooth(rng, size)
        cls = np.digitize(field, np.quantile(field, [1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6]))  # 0..5
        label = (cls + 1).astype(np.uint8)
        label[:, :2] = 0  # nodata strip
        clear = SPECTRA[cls].transpose(2, 0, 1) + rng.normal(0, 0.005, (12, size, size))
        cover = [0.0, 0.2, 0.4, 0.6, 0.85][index % 5]  # spread over the paper's bins
        cloud = np.zeros((size, size))
        if cover > 0:
            cloud_field = _smooth(rng, size)
            cloud = (cloud_field >= np.quantile(cloud_field, 1 - cover)).astype(float)
        fractions[Path(name).stem] = float(cloud.mean())
        cloudy = clear * (1 - cloud) + (0.55 + 0.05 * rng.random((12, 1, 1))) * cloud
        db = BACKSCATTER[cls].transpose(2, 0, 1) + rng.normal(0, 0.5, (2, size, size))
        _write(root / "Opt_S2_clear" / name, np.clip(clear, 0, 1) * 10000, "uint16")
        _write(root / "Opt_S2_cloudy" / name, np.clip(cloudy, 0, 1) * 10000, "uint16")
        _write(root / "SAR_S1" / "VV" / name, db[:1], "float32")
        _write(root / "SAR_S1" / "VH" / name, db[1:], "float32")
        _write(root / "Label" / name, label[None], "uint8")
        rows[split_id].append(f"{split_id},SAR_S1/VH/{name},SAR_S1/VV/{name},Opt_S2_cloudy/{name},"
                              f"Opt_S2_clear/{name},Label/{name}")  # fmt: skip
    (root / "split").mkdir(parents=True, exist_ok=True)
    header = "split_id,sar_vh,sar_vv,opt_cloudy,opt_clear,label"
    for split, split_id in (("train", 1), ("val", 2), ("test", 3)):
        (root / "split" / f"{split}.csv").write_text("\n".join([header, *rows[split_id]]) + "\n")
    return fractions


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--train", type=int, default=6)
    parser.add_argument("--val", type=int, default=2)
    parser.add_argument("--test", type=int, default=2)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args()
    print(make_cloudlulc_set(a.out, a.train, a.val, a.test, a.size, a.seed))
