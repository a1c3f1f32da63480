"""PNG quicklooks of a mapped pair: true-colour S2 with its cloud mask outlined, S1 VV/VH, and the map.

The inputs are read through the same `SceneReader` as the mapping (so the picture shows what the
model saw), in row strips and decimated to at most ``max_side`` pixels, so a full 10980² tile
costs one pass and little memory. The map is read from the COG at the same reduced size.

The outlined **cloud mask is a spectral proxy**, not a cloud product (`optics.cloud_proxy_mask`:
bright in the blue and in the SWIR-1 band, which snow is not).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.enums import Resampling

from cloudlulc_edge.contract import CLASS_SCHEMES, CLASSES, S2_BANDS
from cloudlulc_edge.files import atomic_write
from cloudlulc_edge.io.scene import SceneReader
from cloudlulc_edge.optics import cloud_proxy_mask
from cloudlulc_edge.pairing import Pair
from cloudlulc_edge.pipeline import MapOptions

__all__ = ["Preview", "read_preview", "render_quicklook"]

_B02, _B03, _B04 = (S2_BANDS.index(b) for b in ("B02", "B03", "B04"))


@dataclass(frozen=True)
class Preview:
    """Decimated inputs of a pair.

    Attributes:
        s2: (12, h, w) reflectance.
        s2_valid: (h, w).
        s1: (2, h, w) normalised backscatter or None.
        s1_valid: (h, w) or None.
        step: Decimation factor.
    """

    s2: npt.NDArray[np.float32]
    s2_valid: npt.NDArray[np.bool_]
    s1: npt.NDArray[np.float32] | None
    s1_valid: npt.NDArray[np.bool_] | None
    step: int


def read_preview(pair: Pair, options: MapOptions, max_side: int = 1024, strip_rows: int = 512) -> Preview:
    """Reads ``pair`` as the mapping did (``options``), keeping every ``step``-th pixel (≤ ``max_side`` per side).

    Raises:
        ProductError, PairingError: The scene cannot be read (naming the file).
    """
    reader = SceneReader(pair.s2, pair.s1, options.resolution, s2_offset=options.s2_offset,
                         s2_quantification=options.s2_quantification)  # fmt: skip
    try:
        height, width = reader.grid.height, reader.grid.width
        step = max(1, math.ceil(max(height, width) / max_side))
        rows = strip_rows - strip_rows % step or step
        parts: list[tuple[Any, ...]] = []  # (s2, s2_valid, s1, s1_valid) per strip
        for row0 in range(0, height, rows):
            strip = reader.read(row0, min(rows, height - row0))
            cut = (slice(None), slice(None, None, step), slice(None, None, step))
            parts.append((strip.s2[cut], strip.s2_valid[cut[1:]],
                          None if strip.s1 is None else strip.s1[cut],
                          None if strip.s1_valid is None else strip.s1_valid[cut[1:]]))  # fmt: skip
    finally:
        reader.close()
    s1 = None if parts[0][2] is None else np.concatenate([p[2] for p in parts], axis=1)
    s1_valid = None if parts[0][3] is None else np.concatenate([p[3] for p in parts], axis=0)
    return Preview(np.concatenate([p[0] for p in parts], axis=1), np.concatenate([p[1] for p in parts], axis=0),
                   s1, s1_valid, step)  # fmt: skip


def _read_map(path: Path, shape: tuple[int, int], scheme: str) -> npt.NDArray[np.int64]:
    """Class indices (−1 = nodata) of a map COG, read at ``shape``."""
    codes = CLASS_SCHEMES[scheme]
    with rasterio.open(path) as ds:
        raw = ds.read(1, out_shape=shape, resampling=Resampling.nearest)
    lut = np.full(256, -1, dtype=np.int64)
    for index, code in enumerate(codes.codes):
        lut[code] = index
    classes: npt.NDArray[np.int64] = lut[raw]
    return classes


def _true_colour(rgb: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Reflectance 0–0.3 → display 0–1 with a mild gamma (the usual fixed true-colour stretch).

    Fixed, not per-image, so clear land looks the same in a clear and a cloudy scene; clouds saturate.
    """
    shown: npt.NDArray[np.float32] = (np.clip(rgb / 0.3, 0.0, 1.0) ** (1 / 1.3)).astype(np.float32)
    return shown


def render_quicklook(pair: Pair, map_path: Path, out_png: Path, options: MapOptions, max_side: int = 1024) -> Path:
    """Writes a 4-panel PNG (true colour + cloud outline, S1 VV, S1 VH, map + legend) atomically.

    Args:
        pair: The mapped pair.
        map_path: Its map COG.
        out_png: PNG to write (its folder is created).
        options: The options the map was made with (radiometry, class scheme).
        max_side: Longest side of the panels, pixels.

    Returns:
        ``out_png``.

    Raises:
        ProductError, PairingError: The inputs cannot be read.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    preview = read_preview(pair, options, max_side)
    s2, valid = preview.s2, preview.s2_valid
    rgb = _true_colour(s2[[_B04, _B03, _B02]]).transpose(1, 2, 0)
    clouds = cloud_proxy_mask(s2, valid)
    classes = _read_map(map_path, valid.shape, options.class_scheme)

    fig, axes = plt.subplots(1, 4, figsize=(16, 4.6))
    axes[0].imshow(rgb, interpolation="nearest")
    if clouds.any():
        axes[0].contour(clouds.astype(float), levels=[0.5], colors="yellow", linewidths=1.0)
    axes[0].set_title(f"S2 true colour, cloud proxy {100 * clouds.sum() / max(valid.sum(), 1):.0f} %", fontsize=9)
    for ax, channel, pol in ((axes[1], 0, "VV"), (axes[2], 1, "VH")):
        if preview.s1 is None or preview.s1_valid is None:
            ax.text(0.5, 0.5, "no S1", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.imshow(np.where(preview.s1_valid, preview.s1[channel], np.nan), cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")  # fmt: skip
        ax.set_title(f"S1 {pol} (normalised dB)", fontsize=9)
    cmap = ListedColormap([c.colour for c in CLASSES])
    axes[3].imshow(np.ma.masked_less(classes, 0), cmap=cmap, vmin=-0.5, vmax=len(CLASSES) - 0.5,
                   interpolation="nearest")  # fmt: skip
    axes[3].set_title("LULC map", fontsize=9)
    axes[3].legend(handles=[Patch(color=c.colour, label=c.name) for c in CLASSES], loc="center left",
                   bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)  # fmt: skip
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(pair.name, fontsize=10)
    fig.tight_layout()

    def save(tmp: Path) -> None:
        fig.savefig(tmp, dpi=90, format="png")

    try:
        out_png.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out_png, save)
    finally:
        plt.close(fig)
    return out_png
