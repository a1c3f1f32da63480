"""Sentinel-1 orbits: state vectors from the annotation or from precise/restituted orbit files, as a polynomial.

`OrbitModel` fits one polynomial per ECEF axis to the state vectors around the acquisition (time
in seconds, centred and scaled for conditioning) and gives position, velocity and acceleration at
any time: what the zero-Doppler solve of range-Doppler geocoding needs (ESA "Guide to Sentinel-1
Geocoding", UZH-S1-GC-AD, §3; sarsen fits the same way). The annotation carries 16 vectors 10 s
apart (150 s around a 25 s slice); a degree-5 fit reproduces them to millimetres.

Orbit files (``--orbit-dir``): ``S1?_OPER_AUX_POEORB_OPOD_<made>_V<start>_<stop>.EOF`` (precise,
≈ 5 cm, three weeks after acquisition) or ``…_AUX_RESORB_…`` (restituted, ≈ 10 cm, hours after).
`find_orbit_file` takes the file of the product's mission whose validity covers the acquisition
with a margin, preferring POEORB, then the latest made; `read_orbit_file` reads its state vectors
(the EOF's ``<OSV>`` list, UTC times).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
from defusedxml.ElementTree import parse as safe_parse

from cloudlulc_edge.errors import ProductError

__all__ = ["OrbitModel", "StateVectors", "find_orbit_file", "read_orbit_file"]

_EOF_NAME = re.compile(r"^(S1[ABCD])_OPER_AUX_(POEORB|RESORB)_OPOD_(\d{8}T\d{6})_V(\d{8}T\d{6})_(\d{8}T\d{6})\.EOF$")
#: Seconds of orbit kept on each side of the acquisition for the fit.
FIT_MARGIN_S = 120.0


@dataclass(frozen=True)
class StateVectors:
    """ECEF state vectors.

    Attributes:
        times: (N,) seconds since ``epoch``.
        positions: (N, 3) metres.
        velocities: (N, 3) m/s.
        source: ``annotation`` or the orbit file's name.
    """

    times: npt.NDArray[np.float64]
    positions: npt.NDArray[np.float64]
    velocities: npt.NDArray[np.float64]
    source: str


@dataclass(frozen=True)
class OrbitModel:
    """Position, velocity and acceleration of the satellite as polynomials of time.

    Attributes:
        coefficients: (3, degree + 1) polynomial coefficients per axis, in the scaled time
            ``u = (t − centre) / scale`` (lowest degree first).
        centre: Centre of the fitted times, seconds.
        scale: Half-span of the fitted times, seconds.
        source: Where the state vectors came from.
        residual_m: Largest position residual of the fit, metres.
    """

    coefficients: npt.NDArray[np.float64]
    centre: float
    scale: float
    source: str
    residual_m: float

    @classmethod
    def fit(cls, vectors: StateVectors, start: float, stop: float, degree: int = 5) -> OrbitModel:
        """Fits the state vectors within `FIT_MARGIN_S` of ``[start, stop]`` (seconds since the epoch).

        Raises:
            ProductError: Too few state vectors cover the acquisition.
        """
        keep = (vectors.times >= start - FIT_MARGIN_S) & (vectors.times <= stop + FIT_MARGIN_S)
        times, positions = vectors.times[keep], vectors.positions[keep]
        if times.size < degree + 2 or times.min() > start or times.max() < stop:
            raise ProductError(f"{vectors.source}: {times.size} state vectors within {FIT_MARGIN_S:.0f} s of the "
                               f"acquisition do not cover it; use an orbit file that does (--orbit-dir)")  # fmt: skip
        centre = float(times.mean())
        scale = float(max(np.ptp(times) / 2.0, 1.0))
        u = (times - centre) / scale
        coefficients: npt.NDArray[np.float64] = np.stack(
            [np.polynomial.polynomial.polyfit(u, positions[:, k], degree) for k in range(3)]
        ).astype(np.float64)
        fitted = np.stack([np.polynomial.polynomial.polyval(u, c) for c in coefficients], axis=1)
        residual = float(np.abs(fitted - positions).max())
        return cls(coefficients, centre, scale, vectors.source, residual)

    def _eval(self, t: npt.NDArray[np.float64], derivative: int) -> npt.NDArray[np.float64]:
        u = (np.asarray(t, dtype=np.float64) - self.centre) / self.scale
        out = np.empty((*u.shape, 3))
        for k in range(3):
            c = (
                np.polynomial.polynomial.polyder(self.coefficients[k], derivative)
                if derivative
                else self.coefficients[k]
            )
            out[..., k] = np.polynomial.polynomial.polyval(u, c) / self.scale**derivative
        return out

    def position(self, t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """(…, 3) ECEF position at times ``t`` (…), metres."""
        return self._eval(t, 0)

    def velocity(self, t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """(…, 3) ECEF velocity, m/s."""
        return self._eval(t, 1)

    def acceleration(self, t: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """(…, 3) ECEF acceleration, m/s²."""
        return self._eval(t, 2)


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.strip().removeprefix("UTC=").rstrip("Z"))


def read_orbit_file(path: Path, epoch: datetime) -> StateVectors:
    """The state vectors of an EOF orbit file, with times in seconds since ``epoch``.

    Raises:
        ProductError: The file is not a readable orbit file (naming it).
    """
    try:
        root = safe_parse(str(path), forbid_dtd=True).getroot()
        if root is None:
            raise ValueError("empty document")
        osvs = [el for el in root.iter() if el.tag.split("}")[-1] == "OSV"]
        times, positions, velocities = [], [], []
        for osv in osvs:
            fields = {child.tag.split("}")[-1]: (child.text or "").strip() for child in osv}
            times.append((_utc(fields["UTC"]) - epoch).total_seconds())
            positions.append([float(fields[a]) for a in ("X", "Y", "Z")])
            velocities.append([float(fields[a]) for a in ("VX", "VY", "VZ")])
    except (OSError, KeyError, ValueError) as exc:
        raise ProductError(f"not a readable orbit file ({exc!r})", path) from exc
    except Exception as exc:  # defusedxml / ElementTree parse errors
        raise ProductError(f"malformed orbit file ({exc})", path) from exc
    if len(times) < 8:
        raise ProductError(f"orbit file holds {len(times)} state vectors", path)
    order = np.argsort(times)
    return StateVectors(np.asarray(times)[order], np.asarray(positions)[order], np.asarray(velocities)[order],
                        path.name)  # fmt: skip


def find_orbit_file(orbit_dir: Path, mission: str, start: datetime, stop: datetime) -> Path:
    """The orbit file of ``mission`` in ``orbit_dir`` whose validity covers ``[start, stop]`` with a margin.

    Precise (POEORB) files win over restituted (RESORB) ones, then the most recently made.

    Raises:
        ProductError: No such file (the message lists what the folder holds for the mission).
    """
    if not orbit_dir.is_dir():
        raise ProductError("orbit folder does not exist", orbit_dir)
    candidates = []
    for path in sorted(orbit_dir.iterdir()):
        m = _EOF_NAME.match(path.name)
        if m is None or m.group(1) != mission:
            continue
        valid_from, valid_to = (datetime.strptime(m.group(i), "%Y%m%dT%H%M%S") for i in (4, 5))
        if (start - valid_from).total_seconds() >= FIT_MARGIN_S and (valid_to - stop).total_seconds() >= FIT_MARGIN_S:
            candidates.append((m.group(2) == "POEORB", m.group(3), path))
    if not candidates:
        raise ProductError(f"no {mission} POEORB/RESORB orbit file covering {start.isoformat()}–{stop.isoformat()}",
                           orbit_dir)  # fmt: skip
    return max(candidates)[2]
