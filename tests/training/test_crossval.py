"""The training recipe's parts (folds, label rule, modality dropout, soft targets, class weights) and the
cross-validation harness with its per-pixel GBM peer."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from cloudlulc_edge.contract import IGNORE_INDEX, S2_BANDS
from cloudlulc_edge.data.augment import ModalityDropout
from cloudlulc_edge.data.bigearthnet import BigEarthNetDW, patch_group
from cloudlulc_edge.data.cloudlulc_set import Sample
from cloudlulc_edge.data.folds import assign_folds, fold_names
from cloudlulc_edge.data.label_rules import water_rule
from cloudlulc_edge.models.losses import segmentation_ce
from cloudlulc_edge.training.crossval import summarise
from cloudlulc_edge.training.objectives import class_weights
from cloudlulc_edge.training.peers import PixelGBM
from tests.conftest import shared_data


def test_folds_keep_each_spatial_group_together_and_cover_every_patch_once() -> None:
    patches = BigEarthNetDW(shared_data(), "all").patches
    assignment = assign_folds(patches, 5)
    assert len(patches) == 52 and set(assignment.values()) == set(range(5))
    by_group: dict[str, set[int]] = {}
    for p in patches:
        by_group.setdefault(patch_group(p), set()).add(assignment[p.name])
    assert all(len(folds) == 1 for folds in by_group.values())  # no group on both sides of a split
    held = [n for k in range(5) for n in fold_names(patches, 5, k, held_out=True)]
    assert sorted(held) == sorted(p.name for p in patches)  # every patch held out exactly once
    assert set(fold_names(patches, 5, 2, held_out=False)).isdisjoint(fold_names(patches, 5, 2, held_out=True))
    assert assign_folds(patches, 5) == assignment  # deterministic, no seed


def _sample(h: int = 8, w: int = 8) -> Sample:
    s2 = np.full((12, h, w), 0.2, np.float32)
    return Sample("x", s2, s2.copy(), np.full((2, h, w), 0.5, np.float32), np.ones((h, w), bool),
                  np.ones((h, w), bool), np.ones((h, w), np.int64), 0.0)  # fmt: skip


def test_the_water_rule_needs_both_sensors() -> None:
    label = np.full((6, 6), 1, np.int64)  # Forest, as the teacher labels dark lakes
    label[0, 0] = IGNORE_INDEX
    refl = np.full((12, 6, 6), 0.05, np.float32)
    refl[S2_BANDS.index("B03")], refl[S2_BANDS.index("B08")] = 0.06, 0.02  # NDWI = 0.5: water-bright
    refl[S2_BANDS.index("B08"), :, 3:] = 0.30  # right half: vegetation-bright NIR (NDWI < 0)
    db = np.stack([np.full((6, 6), -22.0), np.full((6, 6), -28.0)])  # dark in VV and VH everywhere
    db[:, 3:, :3] = -8.0  # bottom-left: bright backscatter (a boat, a town)
    fixed, soft, changed = water_rule(label, np.full((6, 6, 6), 1 / 6, np.float32), refl, db, np.ones((6, 6), bool))
    expected = np.zeros((6, 6), bool)
    expected[:2, :3] = True  # dark S1 and NDWI > 0 (rows 0–1: the 3 × 3 mean stays dark)
    expected[0, 0] = False  # ignored stays ignored
    assert np.array_equal(fixed == 0, expected) and changed == expected.sum()
    assert fixed[0, 0] == IGNORE_INDEX and (fixed[:, 3:] == 1).all()  # NDWI < 0: unchanged
    assert soft is not None and np.allclose(soft[0][expected], 1.0) and np.allclose(soft[1:, expected], 0.0)


def test_modality_dropout_trains_the_missing_and_partial_paths() -> None:
    sample, rng = _sample(), np.random.default_rng(0)
    s1_lost = ModalityDropout(s1_drop=1.0)(sample, rng)
    assert not s1_lost.s1_valid.any() and not s1_lost.s1.any() and s1_lost.s2_valid.all()
    s2_lost = ModalityDropout(s2_drop=1.0, s1_drop=1.0)(sample, rng)
    assert not s2_lost.s2_valid.any() and s2_lost.s1_valid.all()  # never both
    part = ModalityDropout(s1_partial_drop=1.0)(sample, rng)
    rows, cols = np.nonzero(~part.s1_valid)
    assert (
        0 < (~part.s1_valid).mean() < 1
        and (~part.s1_valid)[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all()
    )
    assert sample.s1_valid.all()  # the input is not modified


def test_soft_targets_and_class_weights_enter_the_ce_as_specified() -> None:
    torch.manual_seed(0)
    logits = torch.randn(1, 6, 3, 3)
    labels = torch.randint(0, 6, (1, 3, 3))
    labels[0, 0, 0] = IGNORE_INDEX
    soft = torch.softmax(torch.randn(1, 6, 3, 3), dim=1)
    weight = torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0, 1.0])
    got = segmentation_ce(logits, labels, weight, soft=soft, soft_weight=0.25)
    keep = labels[0] != IGNORE_INDEX
    target = 0.75 * torch.nn.functional.one_hot(labels[0].clamp(0, 5), 6).permute(2, 0, 1) + 0.25 * soft[0]
    per_pixel = -(target * torch.log_softmax(logits[0], 0)).sum(0)
    w = weight[labels[0].clamp(0, 5)]
    assert math.isclose(float(got), float((per_pixel * w)[keep].sum() / w[keep].sum()), rel_tol=1e-5)
    assert math.isclose(float(segmentation_ce(logits, labels, weight)),
                        float(torch.nn.functional.cross_entropy(logits, labels, weight, ignore_index=IGNORE_INDEX)),
                        rel_tol=1e-5)  # fmt: skip
    counts = torch.tensor([4000, 1000, 250, 0, 1000, 4000])
    w = class_weights(counts, "inverse_sqrt")
    freq = counts.double() / counts.sum()
    assert w is not None and w[3] == 1.0  # an absent class keeps weight 1
    assert math.isclose(float((freq * w.double()).sum()), 1.0, rel_tol=1e-6)  # the loss keeps its scale
    assert math.isclose(float(w[2] / w[0]), 4.0, rel_tol=1e-6)  # 1/√f: 16× rarer → 4× the weight
    rare = class_weights(torch.tensor([10**6, 1, 10**6, 10**6, 10**6, 10**6]), "inverse_sqrt")
    assert rare is not None and float(rare[1]) == 10.0  # capped


def test_summarise_pools_held_out_pixels_and_averages_seeds() -> None:
    def confusion(correct: int, wrong: int) -> list[list[int]]:
        m = np.zeros((6, 6), int)
        m[0, 0], m[1, 1], m[0, 1] = correct, correct, wrong
        return m.tolist()

    results = [
        {"seed": seed, "records": [{"row": "m", "patch": f"p{i}", "cover": 0.0, "labels": "raw",
                                    "confusion": confusion(10 + i + seed, 2)} for i in range(4)]}
        for seed in (0, 1)
    ]  # fmt: skip
    cell = summarise(results, boot=200)["rows"]["m"]["raw"]["0"]
    per_seed = []
    for seed in (0, 1):
        total = np.sum([np.asarray(confusion(10 + i + seed, 2)) for i in range(4)], axis=0)
        per_seed.append(np.trace(total) / total.sum())
    assert math.isclose(cell["oa"], float(np.mean(per_seed)), rel_tol=1e-9)
    lo, hi = cell["oa_ci"]
    assert lo <= cell["oa"] <= hi and lo < hi  # a bootstrap over the 4 patches
    assert cell["patches"] == 4 and cell["seeds"] == 2


def test_the_gbm_peer_fits_and_predicts_real_patches() -> None:
    data = BigEarthNetDW(shared_data(), "all", label_rule="water")
    patches = [data[i] for i in range(4)]
    gbm = PixelGBM("s2+s1", max_iter=30, draws=1, pixels=1500).fit(patches, lambda s, rng: s)
    predicted = gbm.predict(patches[0])
    label = patches[0].label
    assert predicted.shape == label.shape and predicted.dtype == np.int64
    ok = label != IGNORE_INDEX
    assert (predicted[ok] == label[ok]).mean() > 0.6  # fits its own training patch
    s2_only = PixelGBM("s2", max_iter=5, draws=1, pixels=500).fit(patches, lambda s, rng: replace(s, s1=s.s1 * 0))
    assert s2_only.predict(patches[1]).shape == label.shape
    with pytest.raises(Exception, match="before fit"):
        PixelGBM().predict(patches[0])


def test_one_job_of_the_harness_trains_on_the_other_folds_and_scores_its_own(tmp_path) -> None:
    from cloudlulc_edge.bench.crossval import _CONFIG
    from cloudlulc_edge.training.crossval import EVAL_COVERS, LABEL_SETS, Job, PeerSpec, run_job

    root = shared_data()
    donor = shared_data("s2-l2a-safe", "S2A_MSIL2A_20221005T115411_N0400_R023_T29UNU_20221005T164454.SAFE")
    peer = PeerSpec("tiny", "network", "test_tiny_local", ("epochs=1", "batch_size=8", "crop=64"),
                    (("cloudy_s2+s1", "tiny"), ("cloudy_s2", "tiny, S1 removed")))  # fmt: skip
    result = run_job(Job(peer, 0, 1), _CONFIG, 5, tmp_path, (f"data_root={root}", f"cloud_donor={donor}"))
    held_out = fold_names(BigEarthNetDW(root, "all").patches, 5, 1, held_out=True)
    records = result["records"]
    assert {r["patch"] for r in records} == set(held_out)  # scored on its own fold only
    assert len(records) == 2 * len(held_out) * len(EVAL_COVERS) * len(LABEL_SETS)
    assert all(np.asarray(r["confusion"]).sum() > 0 for r in records)
    assert (tmp_path / "tiny_s0_f1" / "final").is_dir()  # the last epoch, not a best-of-validation pick


def test_a_job_result_is_reused_only_when_it_was_made_with_the_same_settings(tmp_path) -> None:
    from cloudlulc_edge.bench.crossval import _CONFIG, PEERS
    from cloudlulc_edge.training.crossval import Job, finished_result, job_settings

    job = Job(PEERS[0], 1, 2)
    here = job_settings(job, _CONFIG, 5, ("data_root=/a", "cloud_donor=/a/donor.SAFE"))
    elsewhere = job_settings(job, _CONFIG, 5, ("data_root=/b", "cloud_donor=/b/donor.SAFE"))
    assert here == elsewhere  # where the data lies is not a setting
    assert here["config"]["seed"] == 1 and here["config"]["cv_fold"] == 2 and "data_root" not in here["config"]
    other_recipe = job_settings(job, _CONFIG, 5, ("data_root=/a", "cloud_donor=/a/d.SAFE", "epochs=3"))
    assert other_recipe != here and job_settings(job, _CONFIG, 4, ("data_root=/a", "cloud_donor=/a/d")) != here

    path = tmp_path / "job.json"
    assert finished_result(path, here) is None  # not run yet
    path.write_text(json.dumps({"peer": "cloudlulc_edge", "records": []}))
    assert finished_result(path, here) is None  # a result that records no settings is run again
    path.write_text(json.dumps({"settings": other_recipe, "records": []}))
    assert finished_result(path, here) is None
    path.write_text("{ truncated")
    assert finished_result(path, here) is None
    path.write_text(json.dumps({"settings": here, "records": [1]}))
    assert finished_result(path, here) == {"settings": here, "records": [1]}
