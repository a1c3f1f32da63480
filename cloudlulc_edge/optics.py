"""Where the map is a guess: per-pixel evidence of whether the optics were usable.

The map is made everywhere S2 has data, through cloud too (that is the point of the fusion:
under cloud the class comes from S1 and context). The optics layer (``--optics``) tells a user
which pixels were mapped with clear optics and which through cloud, so the map can be trusted
accordingly. Categories (uint8, `OPTICS_CLASSES`):

* 0 — no map (S2 nodata);
* 1 — clear: the optical bands were usable;
* 2 — cloud: cloud or thin cirrus covered the optics (mapped through cloud);
* 3 — cloud shadow: the optics were darkened by a cloud's shadow.

Evidence, in order of preference: the product's scene classification layer (SCL, Sen2Cor L2A:
classes 8, 9 and 10 are cloud, 3 is shadow; `from_scl`), else a spectral proxy on the
reflectance (`cloud_proxy_mask`: bright in the blue *and* in the SWIR, which snow is not; it
finds no shadows). The source is recorded in the ``OPTICS_SOURCE`` tag. The model's internal
reliability map ρ is not exported: it is a learned weighting, not evidence a user can check.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from cloudlulc_edge.contract import S2_BANDS

__all__ = [
    "CLOUD_BLUE",
    "CLOUD_SWIR",
    "OPTICS_CLASSES",
    "OPTICS_CLEAR",
    "OPTICS_CLOUD",
    "OPTICS_NODATA",
    "OPTICS_SHADOW",
    "SCL_CLOUD",
    "SCL_SHADOW",
    "cloud_proxy_mask",
    "from_reflectance",
    "from_scl",
]

OPTICS_NODATA, OPTICS_CLEAR, OPTICS_CLOUD, OPTICS_SHADOW = 0, 1, 2, 3
#: Code → (name, description, RGBA colour) of the optics layer.
OPTICS_CLASSES: dict[int, tuple[str, str, tuple[int, int, int, int]]] = {
    OPTICS_NODATA: ("nodata", "no map", (0, 0, 0, 0)),
    OPTICS_CLEAR: ("clear", "optics usable", (80, 170, 80, 255)),
    OPTICS_CLOUD: ("cloud", "cloud or cirrus over the optics: mapped through cloud", (240, 240, 240, 255)),
    OPTICS_SHADOW: ("cloud_shadow", "optics darkened by cloud shadow", (90, 90, 140, 255)),
}
#: SCL classes of cloud (medium and high probability, thin cirrus) and of cloud shadow.
SCL_CLOUD = (8, 9, 10)
SCL_SHADOW = (3,)
#: Spectral proxy thresholds on reflectance (see `cloud_proxy_mask`).
CLOUD_BLUE = 0.2
CLOUD_SWIR = 0.15
_B02, _B11 = S2_BANDS.index("B02"), S2_BANDS.index("B11")


def cloud_proxy_mask(s2: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Pixels bright in the blue and in the SWIR: cloud, not snow.

    Snow, as bright in the blue, is dark in the SWIR (the snowy BigEarthNet patch: B11 p99 ≈
    0.13); cloud tops are not (the real L2A clouds the simulator uses: B11 ≈ 0.2). An NDSI test
    would not do: over-corrected L2A cloud tops reach ≈ 1.0 in the visible, which gives them
    snow-like NDSI values.

    Args:
        s2: (12, H, W) reflectance (the contract's normalised bands).
        valid: (H, W) optical validity.
    """
    mask: npt.NDArray[np.bool_] = valid & (s2[_B02] > CLOUD_BLUE) & (s2[_B11] > CLOUD_SWIR)
    return mask


def from_scl(scl: npt.NDArray[np.uint8], valid: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint8]:
    """Optics categories from SCL classes on the map grid.

    Args:
        scl: (H, W) SCL classes.
        valid: (H, W) pixels with S2 data (the mapped ones).
    """
    out = np.where(valid, OPTICS_CLEAR, OPTICS_NODATA).astype(np.uint8)
    out[valid & np.isin(scl, SCL_CLOUD)] = OPTICS_CLOUD
    out[valid & np.isin(scl, SCL_SHADOW)] = OPTICS_SHADOW
    return out


def from_reflectance(s2: npt.NDArray[np.float32], valid: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint8]:
    """Optics categories from the spectral proxy (no shadow detection).

    Args:
        s2: (12, H, W) reflectance.
        valid: (H, W) optical validity.
    """
    out = np.where(valid, OPTICS_CLEAR, OPTICS_NODATA).astype(np.uint8)
    out[cloud_proxy_mask(s2, valid)] = OPTICS_CLOUD
    return out
