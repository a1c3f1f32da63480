"""Every registered variant: full-size forward, backward and torch.export (issue 'Must show')."""

from __future__ import annotations

import gc

import pytest
import torch

from cloudlulc_edge.export import example_inputs, export_program
from cloudlulc_edge.models import create_model, list_models

VARIANTS = list_models()
#: Parts of each architecture the gradient must reach.
PARTS = {
    "cloudlulc_net": ("optical_encoder", "sar_encoder", "orm", "hiaa", "usmt", "decoder"),
    "unet": ("body.down.0", "body.down.4", "body.up", "body.head"),
    "recon_first": ("reconstructor.head", "reconstructor.trunk", "reconstructor.tail", "segmenter"),
}


def test_registered_variants():
    assert {"cloudlulc_net", "cloudlulc_edge", "test_tiny", "unet_s2", "unet_s1", "unet_early", "recon_first"} <= set(
        VARIANTS
    )


@pytest.mark.parametrize("name", VARIANTS)
def test_forward_backward_512(name):
    model = create_model(name)
    s2, s1 = example_inputs(2, 512)
    logits = model(s2, s1)
    assert logits.shape == (2, 6, 512, 512)
    assert torch.isfinite(logits).all()
    logits.float().pow(2).mean().backward()
    # Every parameter gets a finite gradient, except the missing-SAR embeddings (unused when S1 is given).
    for n, p in model.named_parameters():
        if not n.startswith("sar_missing"):
            assert p.grad is not None and torch.isfinite(p.grad).all(), n
    # The gradient reaches every part (CloudLULC-Net: both encoders, the fusion and the transformer).
    for prefix in PARTS[model.architecture]:
        assert any(p.grad.abs().sum() > 0 for n, p in model.named_parameters() if n.startswith(prefix)), prefix
    del model, logits
    gc.collect()


@pytest.mark.export
@pytest.mark.parametrize("name", VARIANTS)
def test_torch_export_512(name):
    model = create_model(name).eval()
    program = export_program(model, tile=512)
    s2, s1 = example_inputs(1, 512, seed=3)
    with torch.no_grad():
        expected = model(s2, s1)
        actual = program.module()(s2, s1)
    assert actual.shape == (1, 6, 512, 512)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)
