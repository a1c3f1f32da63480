from __future__ import annotations

import pytest

from cloudlulc_edge.models import CloudLULCNet, CloudLULCNetConfig, create_model, is_model, list_models


def test_list_models_filters():
    assert list_models("test_*") == ["test_tiny", "test_tiny_local"]
    assert is_model("cloudlulc_net") and not is_model("nope")


def test_unknown_model_lists_registered():
    with pytest.raises(KeyError, match="cloudlulc_edge"):
        create_model("cloudlulc_xl")


def test_overrides_reach_the_config():
    model = create_model("test_tiny", order=3, num_blocks=2)
    assert isinstance(model, CloudLULCNet)
    assert model.variant == "test_tiny"
    assert (model.config.order, model.config.num_blocks) == (3, 2)
    assert len(model.hiaa.blocks) == 2
    assert model.hiaa.blocks[0].shoi.order == 3


def test_unknown_override_is_rejected():
    with pytest.raises(TypeError, match="unknown model option"):
        create_model("test_tiny", depth=3)


@pytest.mark.parametrize(
    "bad", [{"width": 10}, {"order": 0}, {"num_blocks": 0}, {"token_dim": 18, "usmt_heads": 4}, {"shoi": "x"}]
)
def test_invalid_configs_fail_at_construction(bad):
    with pytest.raises(ValueError):
        CloudLULCNetConfig(**bad)


def test_paper_scale_defaults():
    cfg = create_model("cloudlulc_net").config
    assert (cfg.width, cfg.token_dim, cfg.order, cfg.num_blocks, cfg.usmt_depth) == (64, 256, 4, 3, 4)
