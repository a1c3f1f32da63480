"""GIS sidecars of a categorical map: GDAL category names and raster attribute table, and a QGIS style.

A GeoTIFF has no place for category names or a raster attribute table (RAT): GDAL keeps both in a
PAM sidecar ``<file>.tif.aux.xml`` (what ``SetCategoryNames``/``SetDefaultRAT`` write for a GTiff
or COG) and reads it back on open, so ``gdalinfo``, QGIS (≥ 3.30 lists the RAT, and uses the
category names as labels) and ArcGIS Pro see the class names. QGIS also applies ``<file>.qml``
beside a raster as its default style: here a paletted renderer with the class colours and names.

Both are built from a legend, the list of ``{"value", "description", "color_hint", "nodata"}``
entries that the STAC item's classification extension carries (`writer.class_legend`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["RAT_FIELDS", "legend_rgba", "pam_path", "pam_xml", "qgis_style", "qml_path"]

#: RAT columns: name, GDAL field type (0 integer, 2 string), GDAL field usage (5 MinMax: the pixel
#: value; 2 Name; 6–9 Red, Green, Blue, Alpha), from ``GDALRATFieldType`` / ``GDALRATFieldUsage``.
RAT_FIELDS: tuple[tuple[str, int, int], ...] = (
    ("Value", 0, 5),
    ("Class", 2, 2),
    ("Red", 0, 6),
    ("Green", 0, 7),
    ("Blue", 0, 8),
    ("Alpha", 0, 9),
)


def pam_path(raster: Path) -> Path:
    """Where GDAL looks for a raster's PAM sidecar: ``<file>.tif.aux.xml``."""
    return raster.with_name(raster.name + ".aux.xml")


def qml_path(raster: Path) -> Path:
    """Where QGIS looks for a raster's default style: ``<file>.qml``."""
    return raster.with_suffix(".qml")


def legend_rgba(entry: dict[str, Any]) -> tuple[int, int, int, int]:
    """RGBA of a legend entry: its ``color_hint`` opaque; the nodata entry (or one without a colour) transparent."""
    if entry.get("nodata") or "color_hint" not in entry:
        return (0, 0, 0, 0)
    r, g, b = bytes.fromhex(entry["color_hint"])
    return (r, g, b, 255)


def pam_xml(legend: Sequence[dict[str, Any]]) -> str:
    """GDAL PAM XML for band 1: category names (index = pixel value) and a thematic RAT.

    Args:
        legend: Entries with ``value`` (0–255), ``description`` and ``color_hint`` (``RRGGBB``);
            the ``nodata`` entry is named but transparent.

    Returns:
        The ``<PAMDataset>`` document.
    """
    names = {int(e["value"]): str(e["description"]) for e in legend}
    root = ET.Element("PAMDataset")
    band = ET.SubElement(root, "PAMRasterBand", band="1")
    categories = ET.SubElement(band, "CategoryNames")
    for value in range(max(names) + 1):  # GDAL's category list is indexed by pixel value
        ET.SubElement(categories, "Category").text = names.get(value, "")
    table = ET.SubElement(band, "GDALRasterAttributeTable", tableType="thematic")
    for index, (name, kind, usage) in enumerate(RAT_FIELDS):
        field = ET.SubElement(table, "FieldDefn", index=str(index))
        ET.SubElement(field, "Name").text = name
        ET.SubElement(field, "Type").text = str(kind)
        ET.SubElement(field, "Usage").text = str(usage)
    for row_index, entry in enumerate(sorted(legend, key=lambda e: int(e["value"]))):
        row = ET.SubElement(table, "Row", index=str(row_index))
        for cell in (entry["value"], entry["description"], *legend_rgba(entry)):
            ET.SubElement(row, "F").text = str(cell)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def qgis_style(legend: Sequence[dict[str, Any]], title: str) -> str:
    """A QGIS layer style (``.qml``): paletted renderer on band 1, one entry per class, nodata transparent.

    Args:
        legend: As for `pam_xml`.
        title: Layer style name shown in QGIS.

    Returns:
        The ``<qgis>`` document.
    """
    root = ET.Element("qgis", version="3.28.0", styleCategories="AllStyleCategories")
    ET.SubElement(root, "metadata").text = title
    pipe = ET.SubElement(root, "pipe")
    renderer = ET.SubElement(pipe, "rasterrenderer", type="paletted", band="1", opacity="1", alphaBand="-1",
                             nodataColor="")  # fmt: skip
    ET.SubElement(renderer, "rasterTransparency")
    palette = ET.SubElement(renderer, "colorPalette")
    for entry in sorted(legend, key=lambda e: int(e["value"])):
        if entry.get("nodata"):
            continue  # the raster's nodata value is transparent already
        r, g, b, a = legend_rgba(entry)
        ET.SubElement(palette, "paletteEntry", value=str(int(entry["value"])), color=f"#{r:02x}{g:02x}{b:02x}",
                      alpha=str(a), label=str(entry["description"]))  # fmt: skip
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "huesaturation", saturation="0", colorizeOn="0", grayscaleMode="0")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(root, "blendMode").text = "0"
    ET.indent(root)
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(root, encoding="unicode") + "\n"
