from __future__ import annotations

import pytest

from cloudlulc_edge.bench.model_cost import count_flops, measure_variant
from cloudlulc_edge.bench.utils import markdown_table, replace_between_markers
from cloudlulc_edge.models import create_model


def test_fft_flops_are_counted():
    with_fft = count_flops(create_model("test_tiny").eval(), 64)
    without = count_flops(create_model("test_tiny", use_shoi=False).eval(), 64)
    assert with_fft > without > 0


def test_conv_flops_scale_with_tile_area():
    model = create_model("test_tiny").eval()
    ratio = count_flops(model, 128) / count_flops(model, 64)
    assert 3.5 < ratio < 4.6


def test_measure_variant_row():
    row = measure_variant("test_tiny", 64, memory=False)
    assert row["variant"] == "test_tiny" and row["params_m"] > 0 and row["gflops"] >= 0
    assert "O=2" in row["shape"]


def test_markdown_and_markers():
    table = markdown_table([{"a": 1, "b": 2}], [("a", "A"), ("b", "B")])
    assert table.splitlines()[0] == "| A | B |"
    text = "x\n<!-- t:start -->\nold\n<!-- t:end -->\ny"
    assert replace_between_markers(text, "t", "new\n") == "x\n<!-- t:start -->\nnew\n<!-- t:end -->\ny"
    with pytest.raises(ValueError):
        replace_between_markers("none", "t", "")


def test_proc_field(tmp_path):
    from cloudlulc_edge.bench.utils import proc_field

    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmHWM:\t  720160 kB\nmodel name\t: AMD EPYC 7B13\n")
    assert proc_field(str(status), "VmHWM") == "720160 kB"
    assert proc_field(str(status), "model name") == "AMD EPYC 7B13"
    assert proc_field(str(status), "VmRSS") is None
    assert proc_field(str(tmp_path / "missing"), "VmHWM") is None
