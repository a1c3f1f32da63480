"""Writing a LULC map: uint8 Cloud-Optimized GeoTIFF, colour table, tags and a STAC item.

Rows arrive from the blender in order and are written as windows into a tiled GTiff under a
hidden temporary name. `MapWriter.finalize` adds the colour table and tags, converts to a COG
with GDAL's COG driver (overviews resampled with MODE, set explicitly: GDAL's default for
non-paletted data is CUBIC, which invents classes), writes the STAC item, and renames them into
place only when complete, the map last (its presence marks a finished scene). `MapWriter.abort`
removes every temporary file, so a failed scene leaves nothing behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
import rasterio.errors
import rasterio.shutil
from rasterio.windows import Window

from cloudlulc_edge.contract import CLASS_SCHEMES, CLASSES, encode_classes
from cloudlulc_edge.errors import OutputError
from cloudlulc_edge.files import durable_replace
from cloudlulc_edge.gis_sidecars import legend_rgba, pam_path, pam_xml, qgis_style, qml_path
from cloudlulc_edge.io.grid import RasterGrid
from cloudlulc_edge.optics import OPTICS_CLASSES, OPTICS_CLOUD, OPTICS_NODATA, OPTICS_SHADOW
from cloudlulc_edge.tiling import FinishedRows
from cloudlulc_edge.version import __version__

__all__ = [
    "COG_OPTIONS",
    "MAP_SETTINGS_TAG",
    "MapOutputs",
    "MapWriter",
    "class_legend",
    "optics_legend",
    "read_map_settings",
]

#: The map tag that records, as JSON, what the map was made with (`pipeline.map_settings`).
MAP_SETTINGS_TAG = "MAP_SETTINGS"

#: Creation options of the COG copy (`sentinel.md` §14).
COG_OPTIONS: dict[str, str] = {
    "BLOCKSIZE": "512",
    "COMPRESS": "DEFLATE",
    "LEVEL": "6",
    "OVERVIEW_RESAMPLING": "MODE",
    "BIGTIFF": "IF_SAFER",
    "NUM_THREADS": "ALL_CPUS",
}
_PARTIAL_PROFILE: dict[str, Any] = {
    "driver": "GTiff", "count": 1, "dtype": "uint8", "tiled": True, "blockxsize": 512, "blockysize": 512,
    "compress": "deflate", "BIGTIFF": "IF_SAFER",
}  # fmt: skip


def class_legend(scheme: str) -> list[dict[str, Any]]:
    """Code, name and colour of every class of a scheme (nodata first)."""
    cs = CLASS_SCHEMES[scheme]
    legend: list[dict[str, Any]] = [{"value": cs.nodata, "name": "nodata", "description": "No data", "nodata": True}]
    for cls, code in zip(CLASSES, cs.codes, strict=True):
        legend.append({"value": code, "name": cls.name.lower().replace(" ", "-"), "description": cls.name,
                       "color_hint": cls.colour.lstrip("#").upper()})  # fmt: skip
    return legend


@dataclass
class MapOutputs:
    """Files of a finished map and what it contains.

    Attributes:
        map_path: The COG.
        confidence_path: The confidence COG, if written.
        optics_path: The optics COG (where the map was made through cloud), if written.
        stac_path: The STAC item, if written.
        class_pixels: Pixel count per written code (nodata excluded).
        mapped_pixels: Pixels that received a class.
    """

    map_path: Path
    confidence_path: Path | None
    optics_path: Path | None
    stac_path: Path | None
    class_pixels: dict[int, int] = field(default_factory=dict)
    mapped_pixels: int = 0


def read_map_settings(path: Path) -> dict[str, Any] | None:
    """The settings a finished map records in its `MAP_SETTINGS_TAG` (None: it records none, an earlier version).

    Raises:
        OutputError: ``path`` is not a readable raster, or its settings tag is not a JSON object.
    """
    try:
        with rasterio.open(path) as ds:
            text = ds.tags().get(MAP_SETTINGS_TAG)
    except (rasterio.errors.RasterioError, OSError) as exc:
        raise OutputError(f"exists but is not a readable map ({exc}); move it away or pass --no-resume", path) from exc
    if text is None:
        return None
    try:
        settings = json.loads(text)
    except json.JSONDecodeError:
        settings = None
    if not isinstance(settings, dict):
        raise OutputError(f"its {MAP_SETTINGS_TAG} tag is not a JSON object; move it away or pass --no-resume", path)
    return settings


def optics_legend() -> list[dict[str, Any]]:
    """Code, name, description and colour of every optics category (`cloudlulc_edge.optics`)."""
    return [{"value": k, "name": v[0], "description": v[1], **({"nodata": True} if k == OPTICS_NODATA else {}),
             "color_hint": "{:02X}{:02X}{:02X}".format(*v[2][:3])} for k, v in OPTICS_CLASSES.items()]  # fmt: skip


def _colormap(scheme: str) -> dict[int, tuple[int, int, int, int]]:
    """Colour table of a scheme: class colours, transparent nodata (the colours of the RAT and the QGIS style)."""
    return {int(e["value"]): legend_rgba(e) for e in class_legend(scheme)}


def _hidden(path: Path, suffix: str) -> Path:
    return path.with_name(f".{path.stem}{suffix}")


class MapWriter:
    """Streams finished rows into a map and finalises it atomically.

    Args:
        path: Final path of the map (``<dir>/<name>.tif``).
        grid: Output grid.
        scheme: Class scheme name (``worldcover``, ``dynamicworld``, ``native``).
        confidence: Also write ``<name>_confidence.tif`` (top-1 probability × 255, 0 = nodata).
        stac: Also write ``<name>.json``, a STAC item with the classification extension.
        optics: Also write ``<name>_optics.tif``: where the optics were usable (`cloudlulc_edge.optics`
            categories; rows come from `write_optics`).
    """

    def __init__(self, path: Path, grid: RasterGrid, scheme: str = "worldcover", confidence: bool = False,
                 stac: bool = True, optics: bool = False) -> None:  # fmt: skip
        if scheme not in CLASS_SCHEMES:
            raise OutputError(f"unknown class scheme {scheme!r}; choose one of {sorted(CLASS_SCHEMES)}")
        self.path = Path(path)
        self.grid = grid
        self.scheme = CLASS_SCHEMES[scheme]
        self.stac = stac
        self.confidence_path = self.path.with_name(f"{self.path.stem}_confidence.tif") if confidence else None
        self.optics_path = self.path.with_name(f"{self.path.stem}_optics.tif") if optics else None
        self._optics_counts = np.zeros(len(OPTICS_CLASSES), dtype=np.int64)
        self._temps: list[Path] = []
        self._counts = np.zeros(256, dtype=np.int64)
        profile = {**_PARTIAL_PROFILE, "width": grid.width, "height": grid.height, "crs": grid.crs,
                   "transform": grid.transform}  # fmt: skip
        self._map = self._open(_hidden(self.path, ".partial.tif"), {**profile, "nodata": self.scheme.nodata})
        self._map.write_colormap(1, _colormap(scheme))  # before any pixel: the TIFF photometric tag is fixed then
        self._conf = (
            self._open(_hidden(self.confidence_path, ".partial.tif"), {**profile, "nodata": 0})
            if self.confidence_path is not None
            else None
        )
        self._optics = (
            self._open(_hidden(self.optics_path, ".partial.tif"), {**profile, "nodata": OPTICS_NODATA})
            if self.optics_path is not None
            else None
        )
        if self._optics is not None:
            self._optics.write_colormap(1, {k: v[2] for k, v in OPTICS_CLASSES.items()})

    def _open(self, path: Path, profile: dict[str, Any]) -> rasterio.io.DatasetWriter:
        self._temps.append(path)
        return rasterio.open(path, "w", **profile)

    def write(self, rows: FinishedRows) -> None:
        """Writes finished rows: argmax → class codes, nodata where nothing was predicted."""
        n = rows.probabilities.shape[1]
        window = Window(0, rows.row0, self.grid.width, n)
        codes = encode_classes(rows.probabilities.argmax(axis=0), rows.predicted, self.scheme.name)
        self._map.write(codes, 1, window=window)
        self._counts += np.bincount(codes[rows.predicted], minlength=256)
        if self._conf is not None:
            conf = np.clip(np.rint(rows.probabilities.max(axis=0) * 255), 1, 255).astype(np.uint8)
            conf[~rows.predicted] = 0
            self._conf.write(conf, 1, window=window)

    def write_optics(self, row0: int, categories: npt.NDArray[np.uint8]) -> None:
        """Writes optics categories of rows ``[row0, row0 + n)`` (`cloudlulc_edge.optics`)."""
        if self._optics is None:
            raise OutputError("this writer was opened without optics=True", self.path)
        self._optics.write(categories, 1, window=Window(0, row0, self.grid.width, categories.shape[0]))
        self._optics_counts += np.bincount(categories.ravel(), minlength=len(OPTICS_CLASSES))[: len(OPTICS_CLASSES)]

    @property
    def through_cloud_pct(self) -> float | None:
        """Share of the optics rows written so far covered by cloud or shadow, % of pixels with data."""
        with_data = int(self._optics_counts[1:].sum())
        if self._optics is None or with_data == 0:
            return None
        return round(
            100.0 * float(self._optics_counts[OPTICS_CLOUD] + self._optics_counts[OPTICS_SHADOW]) / with_data, 3
        )

    def finalize(self, tags: dict[str, str], footprint: dict[str, Any] | None = None,
                 datetime_iso: str | None = None) -> MapOutputs:  # fmt: skip
        """Adds colour table and tags, converts to COG, writes STAC, renames into place.

        Args:
            tags: Provenance tags (``S2_PRODUCT``, ``MODEL_SHA256``...).
            footprint: GeoJSON geometry (EPSG:4326) for the STAC item; the grid outline if None.
            datetime_iso: Acquisition time for the STAC item.

        Raises:
            OutputError: No pixel was mapped (an all-nodata scene), or GDAL fails to write.
        """
        mapped = int(self._counts.sum())
        if mapped == 0:
            self.abort()
            raise OutputError("no pixel could be mapped: the scene is all nodata inside its grid", self.path)
        legend = class_legend(self.scheme.name)
        all_tags = {
            **tags,
            "CLASS_SCHEME": self.scheme.name,
            **{f"CLASS_{e['value']}": e["description"] for e in legend if not e.get("nodata")},
            "SOFTWARE": f"cloudlulc-edge {__version__}",
            "CREATED": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        self._map.update_tags(**all_tags)
        self._map.set_band_description(1, f"LULC class ({self.scheme.name} codes)")
        self._map.close()
        finals: list[tuple[Path, Path]] = [(_hidden(self.path, ".partial.tif"), self.path)]
        if self._conf is not None and self.confidence_path is not None:
            self._conf.update_tags(**tags, CONFIDENCE="top-1 softmax probability x 255; 0 = nodata")
            self._conf.set_band_description(1, "confidence")
            self._conf.close()
            finals.append((_hidden(self.confidence_path, ".partial.tif"), self.confidence_path))
        if self._optics is not None and self.optics_path is not None:
            self._optics.update_tags(**tags, **{f"OPTICS_{k}": f"{v[0]}: {v[1]}" for k, v in OPTICS_CLASSES.items()})
            self._optics.set_band_description(1, "optics usable (1), cloud (2), cloud shadow (3); 0 = no map")
            self._optics.close()
            finals.append((_hidden(self.optics_path, ".partial.tif"), self.optics_path))
        try:
            cogs = []
            for partial, final in finals:
                cog = _hidden(final, ".cog.tmp.tif")
                self._temps.append(cog)
                resampling = "AVERAGE" if final == self.confidence_path else "MODE"  # categories: the mode
                rasterio.shutil.copy(partial, cog, driver="COG", **{**COG_OPTIONS, "OVERVIEW_RESAMPLING": resampling})
                cogs.append((cog, final))
            cogs += self._sidecars(self.path, legend, f"LULC classes ({self.scheme.name} codes)")
            if self.optics_path is not None:
                cogs += self._sidecars(self.optics_path, optics_legend(), "where the optics were usable")
            stac_path = self.path.with_suffix(".json") if self.stac else None
            if stac_path is not None:
                item = self._stac_item(all_tags, footprint, datetime_iso, legend)
                tmp = _hidden(stac_path, ".json.tmp")
                self._temps.append(tmp)
                tmp.write_text(json.dumps(item, indent=2))
                cogs.append((tmp, stac_path))
            for tmp, final in reversed(cogs):  # the map itself is renamed last: its presence marks completion
                durable_replace(tmp, final)
        except (rasterio.errors.RasterioError, OSError) as exc:
            self.abort()
            raise OutputError(f"cannot write the map ({exc})", self.path) from exc
        self._remove_temps()
        counts = {int(c): int(n) for c, n in enumerate(self._counts) if n}
        return MapOutputs(self.path, self.confidence_path, self.optics_path, stac_path, counts, mapped)

    def _sidecars(self, raster: Path, legend: list[dict[str, Any]], title: str) -> list[tuple[Path, Path]]:
        """Writes a raster's GDAL PAM (category names + RAT) and QGIS style under temporary names.

        Returns:
            ``(temporary, final)`` paths to rename once the raster is complete.
        """
        out = []
        for final, text in ((pam_path(raster), pam_xml(legend)), (qml_path(raster), qgis_style(legend, title))):
            tmp = _hidden(final, final.suffix + ".tmp")
            self._temps.append(tmp)
            tmp.write_text(text, encoding="utf-8")
            out.append((tmp, final))
        return out

    def _stac_item(self, tags: dict[str, str], footprint: dict[str, Any] | None, datetime_iso: str | None,
                   legend: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
        geometry = footprint or self.grid.footprint_lonlat()
        coords = np.asarray(geometry["coordinates"][0], dtype=np.float64)
        assets: dict[str, Any] = {
            "map": {
                "href": f"./{self.path.name}",
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "title": f"LULC map ({self.scheme.name} codes)",
                "roles": ["data"],
                "classification:classes": legend,
            },
            "qgis-style": {
                "href": f"./{qml_path(self.path).name}",
                "type": "text/xml",
                "roles": ["style"],
                "title": "QGIS layer style (class colours and names)",
            },
            "gdal-pam": {
                "href": f"./{pam_path(self.path).name}",
                "type": "text/xml",
                "roles": ["metadata"],
                "title": "GDAL PAM: category names and raster attribute table",
            },
        }
        if self.confidence_path is not None:
            assets["confidence"] = {"href": f"./{self.confidence_path.name}",
                                    "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                                    "roles": ["data"], "title": "top-1 probability x 255"}  # fmt: skip
        if self.optics_path is not None:
            assets["optics"] = {
                "href": f"./{self.optics_path.name}", "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["data", "quality"], "title": f"where the optics were usable ({tags.get('OPTICS_SOURCE')})",
                "classification:classes": optics_legend(),
            }  # fmt: skip
        return {
            "type": "Feature",
            "stac_version": "1.0.0",
            "stac_extensions": [
                "https://stac-extensions.github.io/classification/v2.0.0/schema.json",
                "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
            ],
            "id": self.path.stem,
            "geometry": geometry,
            "bbox": [
                float(coords[:, 0].min()),
                float(coords[:, 1].min()),
                float(coords[:, 0].max()),
                float(coords[:, 1].max()),
            ],
            "properties": {
                "datetime": (datetime_iso or tags["CREATED"]).split("+")[0].rstrip("Z") + "Z",
                "proj:code": self.grid.crs.to_string(),
                "proj:shape": [self.grid.height, self.grid.width],
                "proj:transform": list(self.grid.transform)[:6],
                "cloudlulc:provenance": tags,
            },
            "assets": assets,
            "links": [],
        }

    def _remove_temps(self) -> None:
        for tmp in self._temps:
            tmp.unlink(missing_ok=True)

    def abort(self) -> None:
        """Closes and deletes every temporary file; the final paths are never touched."""
        for ds in (self._map, self._conf, self._optics):
            if ds is not None and not ds.closed:
                ds.close()
        self._remove_temps()
