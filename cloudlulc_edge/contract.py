"""The input/output contract: the single source of truth shared by readers, training and the model.

Everything a model depends on to interpret its inputs and outputs lives here: the band order,
how Sentinel-2 reflectance and Sentinel-1 backscatter are normalised, which pixels count as
nodata, the six classes and the class schemes written to maps. Readers produce arrays in this
contract, training consumes them, the model card records the contract used for a checkpoint, and
loading a checkpoint compares the card with this module.

Normalisation follows `model.md` §10 / `sentinel.md` §11:

* S2 (12 bands, L2A BOA): ``reflectance = (DN + BOA_ADD_OFFSET) / QUANTIFICATION`` is applied by
  the reader (offsets read per band from the product metadata, never inferred from the date);
  here it is clipped to [0, 1]. DN 0 is nodata.
* S1 (VV, VH σ⁰ in dB): VV clipped to [-25, 0] dB, VH to [-32.5, 0] dB, then min-max scaled to
  [0, 1]. Linear σ⁰ is converted with ``10·log10(max(x, 1e-6))`` first.
* Invalid pixels (nodata, NaN, ±inf) are filled with 0 after normalisation and reported in a
  boolean validity mask that travels with the data to the model (see `CloudLULCNet.forward`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "CLASSES",
    "CLASS_SCHEMES",
    "DEFAULT_CONTRACT",
    "IGNORE_INDEX",
    "NUM_CLASSES",
    "S1_CHANNELS",
    "S1_POLARISATIONS",
    "S1_RADIOMETRIES",
    "S2_BANDS",
    "S2_CHANNELS",
    "ClassScheme",
    "InputContract",
    "LULCClass",
    "S1Normalisation",
    "S2Normalisation",
    "encode_classes",
    "linear_to_db",
    "normalise_s1_db",
    "normalise_s2_reflectance",
    "output_valid_mask",
    "s2_dn_to_reflectance",
]

#: Sentinel-2 bands the model reads, in channel order (SAFE naming; B10 is never used).
S2_BANDS: tuple[str, ...] = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
#: Sentinel-1 polarisations, in channel order.
S1_POLARISATIONS: tuple[str, ...] = ("VV", "VH")
S2_CHANNELS = len(S2_BANDS)
S1_CHANNELS = len(S1_POLARISATIONS)
#: Radiometries the S1 readers produce (`io.s1_safe`): σ⁰, or γ⁰ flattened on a DEM.
S1_RADIOMETRIES: tuple[str, ...] = ("sigma0", "gamma0_terrain")
#: Label value excluded from losses and metrics.
IGNORE_INDEX = 255


@dataclass(frozen=True)
class LULCClass:
    """One output class of the model.

    Attributes:
        index: Channel index in the logits, 0..5.
        name: Paper name of the class.
        colour: Display colour, ``#RRGGBB``.
    """

    index: int
    name: str
    colour: str


#: The six CloudLULC classes in logit order (paper order).
CLASSES: tuple[LULCClass, ...] = (
    LULCClass(0, "Water", "#0064C8"),
    LULCClass(1, "Forest", "#006400"),
    LULCClass(2, "Grassland", "#FFFF4C"),
    LULCClass(3, "Barren land", "#B4B4B4"),
    LULCClass(4, "Built-up land", "#FA0000"),
    LULCClass(5, "Cropland", "#F096FF"),
)
NUM_CLASSES = len(CLASSES)


@dataclass(frozen=True)
class ClassScheme:
    """How class indices are encoded in a written map.

    Attributes:
        name: Scheme name used on the command line.
        codes: Output code of each class, indexed by class index.
        nodata: Code written where no prediction exists.
    """

    name: str
    codes: tuple[int, ...]
    nodata: int


#: Output encodings (`sentinel.md` §12). ``worldcover`` is the default for written maps.
CLASS_SCHEMES: dict[str, ClassScheme] = {
    # Water, Forest, Grassland, Barren, Built-up, Cropland
    "worldcover": ClassScheme("worldcover", (80, 10, 30, 60, 50, 40), nodata=0),
    "dynamicworld": ClassScheme("dynamicworld", (0, 1, 2, 7, 6, 4), nodata=255),
    "native": ClassScheme("native", (0, 1, 2, 3, 4, 5), nodata=255),
}


@dataclass(frozen=True)
class S2Normalisation:
    """Sentinel-2 normalisation.

    Attributes:
        quantification: Divisor from DN to reflectance (``BOA_QUANTIFICATION_VALUE``).
        clip: Reflectance clip range after the offset has been applied.
        nodata_dn: Digital number marking nodata in SAFE products.
        fill_value: Value written into invalid pixels after normalisation.
    """

    quantification: float = 10000.0
    clip: tuple[float, float] = (0.0, 1.0)
    nodata_dn: int = 0
    fill_value: float = 0.0


@dataclass(frozen=True)
class S1Normalisation:
    """Sentinel-1 normalisation (CloudSeg ranges, `model.md` §10).

    Attributes:
        clip_db: dB clip range per polarisation, in `S1_POLARISATIONS` order.
        linear_floor: Floor applied to linear σ⁰ before taking the logarithm.
        fill_value: Value written into invalid pixels after normalisation.
    """

    clip_db: tuple[tuple[float, float], ...] = ((-25.0, 0.0), (-32.5, 0.0))
    linear_floor: float = 1e-6
    fill_value: float = 0.0


@dataclass(frozen=True)
class InputContract:
    """Everything a checkpoint assumes about its inputs and outputs; recorded in its model card.

    Attributes:
        s2_bands: Optical band order.
        s1_polarisations: SAR channel order.
        s1_radiometry: Backscatter the SAR channels hold: ``sigma0`` or ``gamma0_terrain`` (RTC γ⁰,
            ``--rtc``); a map made with the other one is refused unless allowed, and tagged.
        s1_geocoding: How the training SAR was geocoded: ``RD_DEM`` (range-Doppler terrain
            correction, ``--dem``) or ``GCP_ELLIPSOID``; mapping with the other one is tagged.
        s2: Optical normalisation.
        s1: SAR normalisation.
        classes: Class names in logit order.
        tile_size: Square tile side the model is trained and exported at, pixels.
        ignore_index: Label value excluded from losses and metrics.
    """

    s2_bands: tuple[str, ...] = S2_BANDS
    s1_polarisations: tuple[str, ...] = S1_POLARISATIONS
    s1_radiometry: str = "sigma0"
    s1_geocoding: str = "RD_DEM"
    s2: S2Normalisation = field(default_factory=S2Normalisation)
    s1: S1Normalisation = field(default_factory=S1Normalisation)
    classes: tuple[str, ...] = tuple(c.name for c in CLASSES)
    tile_size: int = 512
    ignore_index: int = IGNORE_INDEX

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-serialisable dictionary (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputContract:
        """Builds a contract from `to_dict` output.

        Raises:
            KeyError: A required key is missing.
            TypeError: A value has the wrong shape.
        """
        s2 = data["s2"]
        s1 = data["s1"]
        return cls(
            s2_bands=tuple(str(b) for b in data["s2_bands"]),
            s1_polarisations=tuple(str(p) for p in data["s1_polarisations"]),
            # Older cards called the radiometry ``s1_coefficient`` and did not record the geocoding.
            s1_radiometry=str(data.get("s1_radiometry", data.get("s1_coefficient"))),
            s1_geocoding=str(data.get("s1_geocoding", "RD_DEM")),
            s2=S2Normalisation(
                quantification=float(s2["quantification"]),
                clip=(float(s2["clip"][0]), float(s2["clip"][1])),
                nodata_dn=int(s2["nodata_dn"]),
                fill_value=float(s2["fill_value"]),
            ),
            s1=S1Normalisation(
                clip_db=tuple((float(lo), float(hi)) for lo, hi in s1["clip_db"]),
                linear_floor=float(s1["linear_floor"]),
                fill_value=float(s1["fill_value"]),
            ),
            classes=tuple(str(c) for c in data["classes"]),
            tile_size=int(data["tile_size"]),
            ignore_index=int(data["ignore_index"]),
        )


DEFAULT_CONTRACT = InputContract()

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]


def s2_dn_to_reflectance(
    dn: npt.NDArray[Any],
    offsets: Sequence[float],
    norm: S2Normalisation = DEFAULT_CONTRACT.s2,
    inplace: bool = False,
) -> tuple[FloatArray, BoolArray]:
    """Converts Sentinel-2 digital numbers to reflectance with the per-band offset applied.

    Args:
        dn: (C, H, W) integer DNs as stored in the product, bands in `S2_BANDS` order.
        offsets: Per-band additive offset read from the product metadata (``BOA_ADD_OFFSET`` /
            ``RADIO_ADD_OFFSET``; -1000 from processing baseline 04.00, 0 before), length C.
        norm: Quantification and nodata DN.
        inplace: Reuse ``dn``'s memory when it is already float32 (streaming readers own their strips).

    Returns:
        ``(reflectance, valid)``: (C, H, W) float32 reflectance (unclipped) and (H, W) bool,
        False where any band holds the nodata DN.

    Raises:
        ValueError: ``dn`` is not 3-D or ``offsets`` does not have one entry per band.
    """
    if dn.ndim != 3:
        raise ValueError(f"expected (C, H, W) DNs, got shape {dn.shape}")
    if len(offsets) != dn.shape[0]:
        raise ValueError(f"{len(offsets)} offsets for {dn.shape[0]} bands")
    valid = np.all(dn != norm.nodata_dn, axis=0)
    off = np.asarray(offsets, dtype=np.float32).reshape(-1, 1, 1)
    reflectance: FloatArray = dn.astype(np.float32, copy=not inplace)
    reflectance += off
    reflectance /= np.float32(norm.quantification)
    return reflectance, valid


def normalise_s2_reflectance(
    reflectance: npt.NDArray[Any],
    valid: BoolArray | None = None,
    norm: S2Normalisation = DEFAULT_CONTRACT.s2,
    inplace: bool = False,
) -> tuple[FloatArray, BoolArray]:
    """Normalises offset-corrected Sentinel-2 reflectance into model input.

    Args:
        reflectance: (12, H, W) reflectance with the processing-baseline offset already applied.
        valid: Optional (H, W) validity from the reader; NaN/inf pixels are added to the invalid set.
        norm: Clip range and fill value.
        inplace: Reuse ``reflectance``'s memory when it is already float32.

    Returns:
        ``(x, valid)``: (12, H, W) float32 in ``norm.clip`` with invalid pixels set to
        ``norm.fill_value``, and the (H, W) bool validity mask.
    """
    x = np.asarray(reflectance, dtype=np.float32)
    finite = np.all(np.isfinite(x), axis=0)
    valid = finite if valid is None else (valid & finite)
    x = np.nan_to_num(x, copy=not inplace, nan=0.0, posinf=0.0, neginf=0.0)
    np.clip(x, norm.clip[0], norm.clip[1], out=x)
    x[:, ~valid] = norm.fill_value
    return x, valid


def linear_to_db(x: npt.NDArray[Any], floor: float = DEFAULT_CONTRACT.s1.linear_floor) -> FloatArray:
    """Converts linear backscatter to decibels: ``10·log10(max(x, floor))``.

    Args:
        x: Linear σ⁰ of any shape.
        floor: Positive floor that keeps the logarithm finite (noise-subtracted σ⁰ can be ≤ 0).

    Returns:
        float32 array of the same shape, in dB.
    """
    db: FloatArray = (10.0 * np.log10(np.maximum(np.asarray(x, dtype=np.float32), np.float32(floor)))).astype(
        np.float32
    )
    return db


def normalise_s1_db(
    db: npt.NDArray[Any],
    valid: BoolArray | None = None,
    norm: S1Normalisation = DEFAULT_CONTRACT.s1,
) -> tuple[FloatArray, BoolArray]:
    """Normalises Sentinel-1 σ⁰ in dB into model input.

    Args:
        db: (2, H, W) σ⁰ in dB, channels [VV, VH].
        valid: Optional (H, W) validity (footprint coverage); NaN/inf pixels are added to the
            invalid set.
        norm: Per-polarisation dB clip ranges and fill value.

    Returns:
        ``(x, valid)``: (2, H, W) float32 in [0, 1] with invalid pixels set to ``norm.fill_value``,
        and the (H, W) bool validity mask.

    Raises:
        ValueError: ``db`` does not have one channel per clip range.
    """
    x = np.asarray(db, dtype=np.float32)
    if x.ndim != 3 or x.shape[0] != len(norm.clip_db):
        raise ValueError(f"expected ({len(norm.clip_db)}, H, W) dB values, got shape {x.shape}")
    finite = np.all(np.isfinite(x), axis=0)
    valid = finite if valid is None else (valid & finite)
    out = np.empty_like(x)
    for c, (lo, hi) in enumerate(norm.clip_db):
        band = np.nan_to_num(x[c], nan=lo, posinf=hi, neginf=lo)
        out[c] = (np.clip(band, lo, hi) - lo) / (hi - lo)
    out[:, ~valid] = norm.fill_value
    return out, valid


def output_valid_mask(s2_valid: BoolArray) -> BoolArray:
    """Pixels of the output map that receive a class; the rest are written as the scheme's nodata.

    The map lives on the Sentinel-2 grid. A pixel outside the S2 footprint (nodata in every band)
    gets no class even if SAR covers it: the model was never trained to map from SAR alone with an
    empty optical input. Clouded pixels are valid S2 pixels and *are* mapped.

    Args:
        s2_valid: (H, W) bool optical validity from `normalise_s2_reflectance`.

    Returns:
        (H, W) bool mask of mapped pixels.
    """
    return np.asarray(s2_valid, dtype=bool)


def encode_classes(
    class_index: npt.NDArray[Any], valid: BoolArray, scheme: str = "worldcover"
) -> npt.NDArray[np.uint8]:
    """Encodes a class-index map with a class scheme.

    Args:
        class_index: (H, W) integer class indices 0..5 (argmax of the logits).
        valid: (H, W) bool; False pixels get the scheme's nodata code.
        scheme: One of `CLASS_SCHEMES`.

    Returns:
        (H, W) uint8 codes.

    Raises:
        KeyError: Unknown scheme name (the message lists the known ones).
        ValueError: ``class_index`` holds values outside 0..5.
    """
    if scheme not in CLASS_SCHEMES:
        raise KeyError(f"unknown class scheme {scheme!r}; choose one of {sorted(CLASS_SCHEMES)}")
    cs = CLASS_SCHEMES[scheme]
    idx = np.asarray(class_index)
    if idx.size and (idx.min() < 0 or idx.max() >= NUM_CLASSES):
        raise ValueError(f"class indices must lie in 0..{NUM_CLASSES - 1}, got {idx.min()}..{idx.max()}")
    lut = np.asarray(cs.codes, dtype=np.uint8)
    out = lut[idx.astype(np.intp)]
    out[~np.asarray(valid, dtype=bool)] = cs.nodata
    return out
