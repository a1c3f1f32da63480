from __future__ import annotations

import numpy as np
import pytest

from cloudlulc_edge.contract import (
    CLASSES,
    DEFAULT_CONTRACT,
    S2_BANDS,
    InputContract,
    encode_classes,
    linear_to_db,
    normalise_s1_db,
    normalise_s2_reflectance,
    output_valid_mask,
    s2_dn_to_reflectance,
)


def test_band_order_and_classes():
    assert S2_BANDS == ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12")
    assert "B10" not in S2_BANDS
    assert [c.name for c in CLASSES] == ["Water", "Forest", "Grassland", "Barren land", "Built-up land", "Cropland"]


def test_processing_baseline_offset_is_applied_per_band():
    dn = np.full((12, 2, 2), 1430, dtype=np.uint16)
    dn[:, 0, 0] = 0  # nodata
    refl, valid = s2_dn_to_reflectance(dn, [-1000.0] * 12)
    assert np.allclose(refl[:, 1, 1], 0.043)
    assert not valid[0, 0] and valid[1, 1]
    refl_old, _ = s2_dn_to_reflectance(dn, [0.0] * 12)
    assert np.allclose(refl_old[:, 1, 1], 0.143)


def test_s2_normalisation_clips_and_fills_invalid():
    x = np.full((12, 3, 3), 0.5, dtype=np.float32)
    x[0, 0, 0] = np.nan
    x[1, 1, 1] = 1.7
    x[2, 2, 2] = -0.2
    out, valid = normalise_s2_reflectance(x)
    assert not valid[0, 0] and out[:, 0, 0].max() == 0
    assert out[1, 1, 1] == 1.0 and out[2, 2, 2] == 0.0
    assert out.dtype == np.float32


def test_s1_normalisation_ranges():
    db = np.stack([np.array([[-30.0, -25.0, -12.5, 3.0]]), np.array([[-40.0, -32.5, -16.25, 0.0]])])
    out, valid = normalise_s1_db(db)
    np.testing.assert_allclose(out[0], [[0, 0, 0.5, 1]])
    np.testing.assert_allclose(out[1], [[0, 0, 0.5, 1]])
    assert valid.all()
    db[0, 0, 0] = np.inf
    out, valid = normalise_s1_db(db, valid=np.array([[True, True, False, True]]))
    assert valid.tolist() == [[False, True, False, True]] and out[:, 0, 2].max() == 0


def test_s1_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match=r"\(2, H, W\)"):
        normalise_s1_db(np.zeros((3, 4, 4)))


def test_linear_to_db_floor():
    np.testing.assert_allclose(linear_to_db(np.array([1.0, 0.1, 0.0, -1.0])), [0, -10, -60, -60], atol=1e-5)


def test_class_schemes():
    idx = np.array([[0, 1, 2], [3, 4, 5]])
    valid = np.array([[True, True, True], [True, True, False]])
    assert encode_classes(idx, valid).tolist() == [[80, 10, 30], [60, 50, 0]]
    assert encode_classes(idx, valid, "native").tolist() == [[0, 1, 2], [3, 4, 255]]
    assert encode_classes(idx, valid, "dynamicworld").tolist() == [[0, 1, 2], [7, 6, 255]]
    with pytest.raises(KeyError, match="worldcover"):
        encode_classes(idx, valid, "corine")
    with pytest.raises(ValueError):
        encode_classes(idx + 1, valid)


def test_output_mask_follows_optical_footprint():
    s2_valid = np.array([[True, False]])
    assert output_valid_mask(s2_valid).tolist() == [[True, False]]


def test_contract_round_trip():
    assert InputContract.from_dict(DEFAULT_CONTRACT.to_dict()) == DEFAULT_CONTRACT
