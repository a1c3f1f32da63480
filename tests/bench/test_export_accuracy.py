from __future__ import annotations

import pytest

pytest.importorskip("onnxruntime", reason="needs the 'export' extra")

from cloudlulc_edge.bench.export_accuracy import render, run

pytestmark = [
    pytest.mark.export,
    pytest.mark.filterwarnings("ignore:.*assuming offset 0:UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def test_run_reports_every_precision(bigearthnet_v1, tmp_path):
    result = run({"variant": "test_tiny", "checkpoint": None}, bigearthnet_v1, bigearthnet_v1, 64, None, 6, tmp_path)
    rows = {r["precision"]: r for r in result["rows"]}
    assert set(rows) == {"fp32", "fp16", "int8"}
    assert rows["fp32"]["agreement_pct"] == 100.0 and rows["fp32"]["miou_vs_fp32"] == 1.0
    assert 0 < rows["int8"]["agreement_pct"] <= 100 and rows["int8"]["gate_pct"] == 97.0
    assert result["trained"] is False and result["evaluation"]["tiles"] == 24
    text = render(result)
    assert "untrained" in text and text.count("\n|") == 5  # header, rule, 3 rows
