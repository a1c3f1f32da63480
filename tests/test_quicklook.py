"""Quicklooks: the spectral cloud proxy on real clouds and real snow, and the PNG itself."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cloudlulc_edge.data.bigearthnet import BigEarthNetDW
from cloudlulc_edge.data.cloud_sim import CloudDonor, CloudSimulator
from cloudlulc_edge.io.products import scan
from cloudlulc_edge.optics import cloud_proxy_mask
from cloudlulc_edge.pairing import pair_products
from cloudlulc_edge.pipeline import MapOptions, map_plan
from cloudlulc_edge.quicklook import read_preview, render_quicklook
from tests.conftest import shared_data

pytestmark = pytest.mark.filterwarnings("ignore:.*assuming offset 0:UserWarning")


def test_cloud_proxy_finds_opaque_real_clouds_and_leaves_snow_alone(s2_safe):
    patches = {s.name[-5:]: s for s in BigEarthNetDW(shared_data(), "train") if s.name[-5:] in ("87_48", "57_38")}
    clear = patches["87_48"]
    valid = np.ones(clear.label.shape, dtype=bool)
    sim = CloudSimulator(CloudDonor.from_safe(s2_safe))
    hits, opaque_total, false_alarms, clear_total = 0, 0, 0, 0
    for seed in range(8):
        cloudy = sim.simulate(clear.s2_clear, 0.5, np.random.default_rng(seed))
        mask = cloud_proxy_mask(cloudy.s2, valid)
        opaque, free = cloudy.alpha > 0.7, cloudy.alpha == 0
        hits, opaque_total = hits + int(mask[opaque].sum()), opaque_total + int(opaque.sum())
        false_alarms, clear_total = false_alarms + int(mask[free].sum()), clear_total + int(free.sum())
    assert opaque_total > 2000 and hits / opaque_total > 0.95
    assert false_alarms / clear_total < 0.02
    assert cloud_proxy_mask(clear.s2_clear, valid).mean() < 0.01
    snow = patches["57_38"]  # the snow-covered Finnish patch: bright in the visible, not cloud
    assert cloud_proxy_mask(snow.s2_clear, valid).mean() < 0.05


def test_quicklook_of_a_mapped_pair(bigearthnet_v1, tmp_path):
    from cloudlulc_edge.backends.torch_backend import TorchBackend
    from cloudlulc_edge.models.loading import load_model

    plan = pair_products(scan(bigearthnet_v1).products)
    pair = plan.pairs[0]
    options = MapOptions(tile=128, overlap=8, s2_offset=0.0, s2_quantification=10000.0)
    loaded = load_model("test_tiny", None, 128, allow_untrained=True)
    (report,) = map_plan([pair], TorchBackend(loaded.model, loaded.identity), tmp_path / "maps", options)
    preview = read_preview(pair, options, max_side=50)
    assert preview.step == 3 and preview.s2.shape == (12, 40, 40) and preview.s1 is not None
    png = render_quicklook(pair, tmp_path / "maps" / f"{pair.name}_lulc.tif", tmp_path / "q" / "a.png", options)
    with Image.open(png) as image:
        assert image.width > 3 * image.height and np.asarray(image).std() > 10
    assert report.status == "done" and not list((tmp_path / "q").glob(".*tmp"))
