"""Writes the small synthetic Sentinel products of the default test suite (TorchGeo's ``data.py`` habit).

Run from the repository root to regenerate (the outputs are committed beside this script):

    python tests/data/sentinel/data.py

Everything is deterministic (``numpy.random.default_rng(0)``) and tiny, so any clone exercises every
reader without ``../shared/data``. The metadata follows the real formats' structure — the S2 MTD
and tile XML of PSD 14, the S1 manifest, annotation, calibration and noise XML of IPF 3.x — with
values invented here (the real products stay in ``../shared/data``, read only by the ``realdata``
tier). The scene is a 1.92 km square over Rome (EPSG:32633), 2023-06-12:

* ``S2B_MSIL2A_…T32TQM….SAFE``: L2A, processing baseline 05.09 (``BOA_ADD_OFFSET`` −1000), the
  60 m layers only (32 × 32 px: the 12 model bands, B10 absent as in L2A, SCL), JP2.
* ``S2A_MSIL1C_…T32TQM….SAFE``: L1C, baseline 03.01 (no offset), the flat ``IMG_DATA/`` layout, all 13
  bands at their native 10/20/60 m resolution (192/96/32 px), JP2.
* ``S1A_IW_GRDH_1SDV_….SAFE``: GRD, VV + VH, 160 lines × 200 samples of 10 m uint16 DN, a 4 × 5
  geolocation grid, calibration and (range + azimuth) noise LUTs, measurement GeoTIFFs.
* ``bigearthnet/``: one BigEarthNet-style S1 + S2 patch pair (GeoTIFF per band, ``*_labels_metadata.json``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import transform

HERE = Path(__file__).resolve().parent
CRS_UTM = CRS.from_epsg(32633)
ULX, ULY = 290040.0, 4650000.0  # upper-left corner in UTM 33N (≈ 12.49 E, 41.98 N: Rome)
SIDE_M = 1920.0
S2_BANDS_ALL = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
NATIVE = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20, "B08": 10, "B8A": 20,
          "B09": 60, "B10": 60, "B11": 20, "B12": 20}  # fmt: skip
L2A_ID = "S2B_MSIL2A_20230612T100559_N0509_R022_T32TQM_20230612T131422"
L1C_ID = "S2A_MSIL1C_20230612T100601_N0301_R022_T32TQM_20230612T121014"
S1_ID = "S1A_IW_GRDH_1SDV_20230612T050512_20230612T050537_048954_05E32B_1A2F"
S1_LINES, S1_SAMPLES = 160, 200


def _field(rng: np.random.Generator, size: int, base: float, spread: float) -> np.ndarray:
    """A smooth, land-like field: fields and a river (low-pass noise plus a band of low values)."""
    noise = rng.normal(0.0, 1.0, (size // 4 + 2, size // 4 + 2))
    smooth = np.kron(noise, np.ones((4, 4)))[:size, :size]
    kernel = np.ones(5) / 5.0
    smooth = np.apply_along_axis(lambda r: np.convolve(r, kernel, "same"), 1, smooth)
    smooth = np.apply_along_axis(lambda c: np.convolve(c, kernel, "same"), 0, smooth)
    y, x = np.mgrid[0:size, 0:size] / size
    river = np.exp(-(((y - 0.35 - 0.2 * x) / 0.05) ** 2))
    return base + spread * smooth - 0.8 * base * river


def _lonlat_corners() -> list[tuple[float, float]]:
    xs = [ULX, ULX + SIDE_M, ULX + SIDE_M, ULX]
    ys = [ULY, ULY, ULY - SIDE_M, ULY - SIDE_M]
    lons, lats = transform(CRS_UTM, "EPSG:4326", xs, ys)
    return list(zip(lons, lats, strict=True))


def _write_raster(path: Path, data: np.ndarray, res: float, driver: str = "JP2OpenJPEG", **extra: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {"driver": driver, "width": data.shape[-1], "height": data.shape[-2], "count": 1, "dtype": data.dtype,
               "crs": CRS_UTM, "transform": from_origin(ULX, ULY, res, res), **extra}  # fmt: skip
    if driver == "JP2OpenJPEG":
        profile["QUALITY"] = 100
        profile["REVERSIBLE"] = "YES"
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
    aux = path.with_name(path.name + ".aux.xml")
    if aux.exists():
        aux.unlink()


def _manifest_s2(root: Path, files: list[Path]) -> None:
    streams = "\n".join(
        f'    <dataObject ID="{p.stem}"><byteStream mimeType="application/octet-stream" size="{p.stat().st_size}">'
        f'<fileLocation locatorType="URL" href="./{p.relative_to(root).as_posix()}"/></byteStream></dataObject>'
        for p in files
    )
    (root / "manifest.safe").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1">\n'
        f"  <dataObjectSection>\n{streams}\n  </dataObjectSection>\n</xfdu:XFDU>\n"
    )


def _s2_product(level: str, product_id: str, baseline: str, offset: float, rng: np.random.Generator) -> Path:
    root = HERE / f"{product_id}.SAFE"
    shutil.rmtree(root, ignore_errors=True)
    tile = "T32TQM"
    granule = f"GRANULE/{level}_{tile}_A041234_20230612T100556"
    stamp = product_id.split("_")[2]
    sensing = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}.024Z"
    if level == "L2A":
        bands = {b: 60 for b in S2_BANDS_ALL if b not in ("B08", "B10")}  # L2A R60m: no B08, no B10
        files = {b: f"{granule}/IMG_DATA/R60m/{tile}_{stamp}_{b}_60m" for b in bands}
        files["SCL"] = f"{granule}/IMG_DATA/R60m/{tile}_{stamp}_SCL_60m"
    else:
        bands = dict(NATIVE)
        files = {b: f"{granule}/IMG_DATA/{tile}_{stamp}_{b}" for b in bands}
    reflect = {"B01": 0.06, "B02": 0.05, "B03": 0.08, "B04": 0.06, "B05": 0.12, "B06": 0.25, "B07": 0.3,
               "B08": 0.32, "B8A": 0.33, "B09": 0.1, "B10": 0.01, "B11": 0.2, "B12": 0.11}  # fmt: skip
    written = []
    for band, res in bands.items():
        size = int(SIDE_M // res)
        dn = np.clip(_field(rng, size, reflect[band] * 10000, 400) - offset, 1, 30000).astype(np.uint16)
        dn[-2:, -6:] = 0  # a corner of nodata (outside the swath)
        path = root / f"{files[band]}.jp2"
        _write_raster(path, dn, res)
        written.append(path)
    if level == "L2A":
        scl = np.full((32, 32), 4, np.uint8)
        scl[:8, :10] = 9  # a cloud
        scl[8:12, 10:16] = 3  # its shadow
        scl[-2:, -6:] = 0
        path = root / f"{files['SCL']}.jp2"
        _write_raster(path, scl, 60)
        written.append(path)
    corners = _lonlat_corners()
    pos = " ".join(f"{lat:.6f} {lon:.6f}" for lon, lat in [*corners, corners[0]])
    qtag, otag = ("BOA_QUANTIFICATION_VALUE", "BOA_ADD_OFFSET") if level == "L2A" else ("QUANTIFICATION_VALUE",
                                                                                          "RADIO_ADD_OFFSET")  # fmt: skip
    offsets = "".join(f'<{otag} band_id="{i}">{offset:g}</{otag}>' for i in range(13)) if offset else ""
    images = "".join(f"<IMAGE_FILE>{rel}</IMAGE_FILE>" for rel in files.values())
    (root / f"MTD_MSI{level}.xml").write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<n1:Level-{level[1:]}_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-{level[1:]}.xsd">\n'
        f"<n1:General_Info><Product_Info><PRODUCT_START_TIME>{sensing}</PRODUCT_START_TIME>"
        f"<PRODUCT_TYPE>S2MSI{level[1:]}</PRODUCT_TYPE><PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>"
        f"<Datatake><SPACECRAFT_NAME>Sentinel-2{product_id[2]}</SPACECRAFT_NAME>"
        f"<SENSING_ORBIT_NUMBER>22</SENSING_ORBIT_NUMBER></Datatake>"
        f"<Product_Organisation><Granule_List><Granule>{images}</Granule></Granule_List></Product_Organisation>"
        f'</Product_Info><Product_Image_Characteristics><QUANTIFICATION_VALUES_LIST><{qtag} unit="none">10000'
        f"</{qtag}></QUANTIFICATION_VALUES_LIST><Radiometric_Offset_List>{offsets}</Radiometric_Offset_List>"
        f"</Product_Image_Characteristics></n1:General_Info>\n"
        f"<n1:Geometric_Info><Product_Footprint><Product_Footprint><Global_Footprint><EXT_POS_LIST>{pos}"
        f"</EXT_POS_LIST></Global_Footprint></Product_Footprint></Product_Footprint></n1:Geometric_Info>\n"
        f"<n1:Quality_Indicators_Info><Cloud_Coverage_Assessment>9.8</Cloud_Coverage_Assessment>"
        f"<NODATA_PIXEL_PERCENTAGE>1.2</NODATA_PIXEL_PERCENTAGE></n1:Quality_Indicators_Info>\n"
        f"</n1:Level-{level[1:]}_User_Product>\n"
    )
    sizes = "".join(f'<Size resolution="{r}"><NROWS>{int(SIDE_M // r)}</NROWS><NCOLS>{int(SIDE_M // r)}</NCOLS></Size>'
                    f'<Geoposition resolution="{r}"><ULX>{ULX:.0f}</ULX><ULY>{ULY:.0f}</ULY><XDIM>{r}</XDIM>'
                    f"<YDIM>-{r}</YDIM></Geoposition>" for r in (10, 20, 60))  # fmt: skip
    tl = root / granule / "MTD_TL.xml"
    tl.write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<n1:Level-{level[1:]}_Tile_ID xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-{level[1:]}_Tile_Metadata.xsd">\n'
        f"<n1:Geometric_Info><Tile_Geocoding><HORIZONTAL_CS_NAME>WGS84 / UTM zone 33N</HORIZONTAL_CS_NAME>"
        f"<HORIZONTAL_CS_CODE>EPSG:32633</HORIZONTAL_CS_CODE>{sizes}</Tile_Geocoding></n1:Geometric_Info>\n"
        f"</n1:Level-{level[1:]}_Tile_ID>\n"
    )
    _manifest_s2(root, [*written, tl, root / f"MTD_MSI{level}.xml"])
    return root


def _gcp_grid() -> list[tuple[float, float, float, float, float]]:
    """(line, pixel, lon, lat, height) of a 4 × 5 geolocation grid covering the scene with a margin.

    The radar image is the scene's square rotated by 10° (a descending pass's heading) and
    mirrored left-right (right-looking, descending: far range to the west), at 10 m spacing,
    so the GCP thin-plate spline has real work to do.
    """
    points = []
    angle = np.radians(10.0)
    for line in np.linspace(0, S1_LINES - 1, 4):
        for pixel in np.linspace(0, S1_SAMPLES - 1, 5):
            along, across = (line - 20) * 10.0, (S1_SAMPLES - 1 - pixel - 20) * 10.0
            x = ULX + across * np.cos(angle) + along * np.sin(angle)
            y = ULY - along * np.cos(angle) + across * np.sin(angle)
            lon, lat = transform(CRS_UTM, "EPSG:4326", [x], [y])
            points.append((float(line), float(pixel), lon[0], lat[0], 40.0))
    return points


def _s1_product(rng: np.random.Generator) -> Path:
    root = HERE / f"{S1_ID}.SAFE"
    shutil.rmtree(root, ignore_errors=True)
    (root / "annotation" / "calibration").mkdir(parents=True)
    (root / "measurement").mkdir(parents=True)
    gcps = _gcp_grid()
    corner_idx = (0, 4, 19, 15)
    footprint = " ".join(f"{gcps[i][3]:.6f},{gcps[i][2]:.6f}" for i in corner_idx)
    start, stop = "2023-06-12T05:05:12.431000", "2023-06-12T05:05:37.430000"
    files = []
    for number, pol in ((1, "vv"), (2, "vh")):
        stem = f"s1a-iw-grd-{pol}-20230612t050512-20230612t050537-048954-05e32b-00{number}"
        sigma_nought = 600.0
        level = {"vv": 0.05, "vh": 0.008}[pol]  # linear σ⁰ of the land (≈ −13 dB VV, −21 dB VH)
        field = np.clip(_field(rng, max(S1_LINES, S1_SAMPLES), level, 0.3 * level)[:S1_LINES, :S1_SAMPLES],
                        1e-4, None)  # fmt: skip
        dn = np.clip(np.sqrt(field * sigma_nought**2 + 60.0), 1, 65535).astype(np.uint16)  # DN² = σ⁰·A² + η
        dn[:, :6] = 0  # no-value columns at the swath edge
        tiff = root / "measurement" / f"{stem}.tiff"
        with rasterio.open(tiff, "w", driver="GTiff", width=S1_SAMPLES, height=S1_LINES, count=1, dtype="uint16",
                           compress="deflate") as ds:  # fmt: skip
            ds.write(dn, 1)
        points = "".join(
            f"<geolocationGridPoint><azimuthTime>{start}</azimuthTime><slantRangeTime>5.4e-03</slantRangeTime>"
            f"<line>{line:.0f}</line><pixel>{pixel:.0f}</pixel><latitude>{lat:.8f}</latitude>"
            f"<longitude>{lon:.8f}</longitude><height>{h:.3f}</height><incidenceAngle>35.0</incidenceAngle>"
            f"<elevationAngle>31.0</elevationAngle></geolocationGridPoint>"
            for line, pixel, lon, lat, h in gcps
        )
        (root / "annotation" / f"{stem}.xml").write_text(
            f'<?xml version="1.0" encoding="UTF-8"?>\n<product><adsHeader><polarisation>{pol.upper()}</polarisation>'
            f"<startTime>{start}</startTime><stopTime>{stop}</stopTime></adsHeader>"
            f"<imageAnnotation><imageInformation><rangePixelSpacing>1.000000e+01</rangePixelSpacing>"
            f"<azimuthPixelSpacing>1.000000e+01</azimuthPixelSpacing><numberOfSamples>{S1_SAMPLES}</numberOfSamples>"
            f"<numberOfLines>{S1_LINES}</numberOfLines></imageInformation></imageAnnotation>"
            f'<geolocationGrid><geolocationGridPointList count="{len(gcps)}">{points}</geolocationGridPointList>'
            f"</geolocationGrid></product>\n"
        )
        pixels = " ".join(str(p) for p in range(0, S1_SAMPLES, 40)) + f" {S1_SAMPLES - 1}"
        n = len(pixels.split())
        vectors = "".join(
            f"<calibrationVector><azimuthTime>{start}</azimuthTime><line>{line}</line>"
            f'<pixel count="{n}">{pixels}</pixel><sigmaNought count="{n}">{" ".join([f"{sigma_nought:.4e}"] * n)}'
            f'</sigmaNought><betaNought count="{n}">{" ".join(["5.2e+02"] * n)}</betaNought>'
            f'<gamma count="{n}">{" ".join(["7.1e+02"] * n)}</gamma><dn count="{n}">{" ".join(["5.2e+02"] * n)}</dn>'
            f"</calibrationVector>"
            for line in (0, 80, S1_LINES - 1)
        )
        (root / "annotation" / "calibration" / f"calibration-{stem}.xml").write_text(
            f'<?xml version="1.0" encoding="UTF-8"?>\n<calibration><calibrationInformation>'
            f"<absoluteCalibrationConstant>1.0</absoluteCalibrationConstant></calibrationInformation>"
            f'<calibrationVectorList count="3">{vectors}</calibrationVectorList></calibration>\n'
        )
        noise = "".join(
            f'<noiseRangeVector><azimuthTime>{start}</azimuthTime><line>{line}</line><pixel count="{n}">{pixels}'
            f'</pixel><noiseRangeLut count="{n}">{" ".join(["6.0e+01"] * n)}</noiseRangeLut></noiseRangeVector>'
            for line in (0, 80, S1_LINES - 1)
        )
        azimuth = "".join(
            f"<noiseAzimuthVector><swath>IW{k + 1}</swath><firstAzimuthLine>0</firstAzimuthLine>"
            f"<firstRangeSample>{first}</firstRangeSample><lastAzimuthLine>{S1_LINES - 1}</lastAzimuthLine>"
            f'<lastRangeSample>{last}</lastRangeSample><line count="2">0 {S1_LINES - 1}</line>'
            f'<noiseAzimuthLut count="2">1.0 1.0</noiseAzimuthLut></noiseAzimuthVector>'
            for k, (first, last) in enumerate(((0, 99), (100, S1_SAMPLES - 1)))
        )
        (root / "annotation" / "calibration" / f"noise-{stem}.xml").write_text(
            f'<?xml version="1.0" encoding="UTF-8"?>\n<noise><noiseRangeVectorList count="3">{noise}'
            f'</noiseRangeVectorList><noiseAzimuthVectorList count="2">{azimuth}</noiseAzimuthVectorList></noise>\n'
        )
        files += [tiff, root / "annotation" / f"{stem}.xml"]
    streams = "".join(
        f'<dataObject ID="{p.stem}"><byteStream mimeType="application/octet-stream" size="{p.stat().st_size}">'
        f'<fileLocation locatorType="URL" href="./{p.relative_to(root).as_posix()}"/></byteStream></dataObject>'
        for p in files
    )
    (root / "manifest.safe").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1" xmlns:safe="http://www.esa.int/safe/sentinel-1.0" '
        'xmlns:s1sarl1="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-1">\n<metadataSection>'
        '<metadataObject ID="processing"><metadataWrap><xmlData><safe:processing><safe:facility>'
        '<safe:software name="Sentinel-1 IPF" version="003.61"/></safe:facility></safe:processing></xmlData>'
        "</metadataWrap></metadataObject>"
        '<metadataObject ID="platform"><metadataWrap><xmlData><safe:platform><safe:familyName>SENTINEL-1'
        "</safe:familyName><safe:number>A</safe:number><safe:instrument><safe:extension>"
        "<s1sarl1:instrumentMode><s1sarl1:mode>IW</s1sarl1:mode></s1sarl1:instrumentMode></safe:extension>"
        "</safe:instrument></safe:platform></xmlData></metadataWrap></metadataObject>"
        '<metadataObject ID="generalProductInformation"><metadataWrap><xmlData><s1sarl1:standAloneProductInformation>'
        "<s1sarl1:productType>GRD</s1sarl1:productType><s1sarl1:sliceNumber>3</s1sarl1:sliceNumber>"
        "<s1sarl1:transmitterReceiverPolarisation>VV</s1sarl1:transmitterReceiverPolarisation>"
        "<s1sarl1:transmitterReceiverPolarisation>VH</s1sarl1:transmitterReceiverPolarisation>"
        "</s1sarl1:standAloneProductInformation></xmlData></metadataWrap></metadataObject>"
        '<metadataObject ID="acquisitionPeriod"><metadataWrap><xmlData><safe:acquisitionPeriod>'
        f"<safe:startTime>{start}</safe:startTime><safe:stopTime>{stop}</safe:stopTime></safe:acquisitionPeriod>"
        "</xmlData></metadataWrap></metadataObject>"
        '<metadataObject ID="measurementOrbitReference"><metadataWrap><xmlData><safe:orbitReference>'
        '<safe:orbitNumber type="start">48954</safe:orbitNumber><safe:extension><s1:orbitProperties '
        'xmlns:s1="http://www.esa.int/safe/sentinel-1.0/sentinel-1"><s1:pass>DESCENDING</s1:pass>'
        "</s1:orbitProperties></safe:extension></safe:orbitReference></xmlData></metadataWrap></metadataObject>"
        '<metadataObject ID="measurementFrameSet"><metadataWrap><xmlData><safe:frameSet><safe:frame><safe:footPrint>'
        f'<gml:coordinates xmlns:gml="http://www.opengis.net/gml">{footprint}</gml:coordinates></safe:footPrint>'
        "</safe:frame></safe:frameSet></xmlData></metadataWrap></metadataObject>"
        '<metadataObject ID="missionDataTake"><metadataWrap><xmlData><s1sarl1:missionDataTakeID>385835'
        "</s1sarl1:missionDataTakeID></xmlData></metadataWrap></metadataObject>"
        f"</metadataSection>\n<dataObjectSection>{streams}</dataObjectSection>\n</xfdu:XFDU>\n"
    )
    return root


def _bigearthnet_pair(rng: np.random.Generator) -> Path:
    root = HERE / "bigearthnet"
    shutil.rmtree(root, ignore_errors=True)
    s2_name, s1_name = "S2A_MSIL2A_20170613T101031_0_0", "S1A_IW_GRDH_1SDV_20170613T165043_33TUG_0_0"
    s2_dir, s1_dir = root / "S2" / s2_name, root / "S1" / s1_name
    reflect = {"B01": 0.05, "B02": 0.04, "B03": 0.07, "B04": 0.05, "B05": 0.11, "B06": 0.24, "B07": 0.29,
               "B08": 0.31, "B8A": 0.32, "B09": 0.09, "B11": 0.19, "B12": 0.1}  # fmt: skip
    for band, value in reflect.items():
        res = NATIVE[band]
        size = int(1200 // res)
        dn = np.clip(_field(rng, size, value * 10000, 300), 1, 20000).astype(np.uint16)
        _write_raster(s2_dir / f"{s2_name}_{band}.tif", dn, res, driver="GTiff")
    for pol, level in (("VV", -11.0), ("VH", -18.0)):
        db = _field(rng, 120, level, 1.5).astype(np.float32)
        _write_raster(s1_dir / f"{s1_name}_{pol}.tif", db, 10, driver="GTiff")
    meta = {"labels": ["Non-irrigated arable land"], "coordinates": {"ulx": ULX, "uly": ULY, "lrx": ULX + 1200,
            "lry": ULY - 1200}, "projection": CRS_UTM.to_wkt()}  # fmt: skip
    (s2_dir / f"{s2_name}_labels_metadata.json").write_text(json.dumps({**meta, "acquisition_date": "2017-06-13 10:10:31",
                                                                      "tile_source": "S2A_MSIL1C_20170613T101031"}))  # fmt: skip
    (s1_dir / f"{s1_name}_labels_metadata.json").write_text(json.dumps({**meta, "acquisition_time": "2017-06-13T16:50:43",
                                                                      "corresponding_s2_patch": s2_name,
                                                                      "scene_source": "S1A_IW_GRDH_1SDV_20170613T165043"}))  # fmt: skip
    return root


def main() -> None:
    """Regenerates every fixture."""
    _s2_product("L2A", L2A_ID, "05.09", -1000.0, np.random.default_rng(0))
    _s2_product("L1C", L1C_ID, "03.01", 0.0, np.random.default_rng(1))
    _s1_product(np.random.default_rng(2))
    _bigearthnet_pair(np.random.default_rng(3))
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(f"fixtures written under {HERE} ({total / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
