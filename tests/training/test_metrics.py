"""Metric code against a hand-computed confusion matrix and against scikit-learn on random data."""

from __future__ import annotations

import numpy as np
import pytest

from cloudlulc_edge.contract import IGNORE_INDEX
from cloudlulc_edge.training import ConfusionMatrix, StratifiedMetrics


def test_hand_computed_example():
    ref = np.array([[0, 0, 1, 1], [2, 2, IGNORE_INDEX, 1]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 2]])
    cm = ConfusionMatrix(num_classes=4)
    cm.update(pred, ref)
    # ref 0: pred 0,1 | ref 1: pred 1,1,2 | ref 2: pred 2,0 ; the ignored pixel is not counted.
    assert cm.matrix.tolist() == [[1, 1, 0, 0], [0, 2, 1, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    m = cm.metrics()
    assert m["pixels"] == 7 and m["oa"] == pytest.approx(4 / 7)
    # IoU: c0 1/(2+2-1)=1/3, c1 2/(3+3-2)=1/2, c2 1/(2+2-1)=1/3; class 3 absent from both → left out.
    assert m["iou"][:3] == pytest.approx([1 / 3, 1 / 2, 1 / 3]) and m["iou"][3] is None
    assert m["miou"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 3) / 3)
    assert m["f1"][:3] == pytest.approx([2 / 4, 4 / 6, 2 / 4])
    assert m["macro_f1"] == pytest.approx((0.5 + 4 / 6 + 0.5) / 3)


def test_agrees_with_scikit_learn_on_random_data():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 6, size=(4, 64, 64))
    pred = np.where(rng.random(ref.shape) < 0.7, ref, rng.integers(0, 6, size=ref.shape))
    ref[:, :3] = IGNORE_INDEX
    cm = ConfusionMatrix()
    for p, r in zip(pred, ref, strict=True):
        cm.update(p, r)
    keep = ref != IGNORE_INDEX
    y, yhat = ref[keep], pred[keep]
    m = cm.metrics()
    np.testing.assert_array_equal(cm.matrix, sk.confusion_matrix(y, yhat, labels=range(6)))
    assert m["oa"] == pytest.approx(sk.accuracy_score(y, yhat))
    assert m["iou"] == pytest.approx(list(sk.jaccard_score(y, yhat, average=None, labels=range(6))))
    assert m["miou"] == pytest.approx(sk.jaccard_score(y, yhat, average="macro"))
    assert m["f1"] == pytest.approx(list(sk.f1_score(y, yhat, average=None)))
    assert m["macro_f1"] == pytest.approx(sk.f1_score(y, yhat, average="macro"))
    assert m["precision"] == pytest.approx(list(sk.precision_score(y, yhat, average=None)))
    assert m["recall"] == pytest.approx(list(sk.recall_score(y, yhat, average=None)))


def test_stratified_report_and_bad_input():
    strata = StratifiedMetrics(("<10%", "10-30%"), num_classes=3)
    strata.update("<10%", np.array([0, 1]), np.array([0, 1]))
    strata.update("10-30%", np.array([2, 2]), np.array([2, 1]))
    report = strata.report()
    assert report["overall"]["pixels"] == 4 and report["strata"]["<10%"]["oa"] == 1.0
    assert report["strata"]["10-30%"]["oa"] == 0.5
    with pytest.raises(KeyError):
        strata.update(">70%", np.array([0]), np.array([0]))
    with pytest.raises(ValueError, match="sizes differ"):
        ConfusionMatrix().update(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="class indices"):
        ConfusionMatrix(num_classes=2).update(np.array([5]), np.array([0]))
