from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="needs the 'export' extra")

from cloudlulc_edge.bench.export_accuracy import confusion, miou, render, run

pytestmark = [
    pytest.mark.export,
    pytest.mark.filterwarnings("ignore:.*assuming offset 0:UserWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def test_confusion_and_miou():
    ref = np.array([0, 0, 1, 1, 2, 2])
    other = np.array([0, 1, 1, 1, 2, 0])
    m = confusion(ref, other, 4)
    assert m.sum() == 6 and m[0, 1] == 1 and m[2, 0] == 1 and np.trace(m) == 4
    # IoU: class0 1/3, class1 2/3, class2 1/2; class 3 absent from both maps is ignored.
    assert miou(m) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert miou(confusion(ref, ref, 4)) == 1.0


def test_run_reports_every_precision(bigearthnet_v1, tmp_path):
    result = run({"variant": "test_tiny", "checkpoint": None}, bigearthnet_v1, bigearthnet_v1, 64, None, 6, tmp_path)
    rows = {r["precision"]: r for r in result["rows"]}
    assert set(rows) == {"fp32", "fp16", "int8"}
    assert rows["fp32"]["agreement_pct"] == 100.0 and rows["fp32"]["miou_vs_fp32"] == 1.0
    assert 0 < rows["int8"]["agreement_pct"] <= 100 and rows["int8"]["gate_pct"] == 97.0
    assert result["trained"] is False and result["evaluation"]["tiles"] == 24
    text = render(result)
    assert "untrained" in text and text.count("\n|") == 5  # header, rule, 3 rows
