"""Registered model variants: CloudLULC-Net profiles and the baselines.

| name | D | D_t | O | N | L | SHOI | use |
|---|---|---|---|---|---|---|---|
| ``cloudlulc_net`` | 64 | 256 | 4 | 3 | 4 | full (SHIP) | paper-scale reconstruction |
| ``cloudlulc_edge`` | 32 | 128 | 4 | 2 | 2 | generalised, depthwise | Jetson FP16/INT8 |
| ``test_tiny`` | 8 | 16 | 2 | 1 | 1 | full | fast CPU tests |

``cloudlulc_edge`` halves the width, which quarters the cost of every dense convolution (most of
the FLOPs sit in the encoders and decoder at full and half resolution), keeps the paper's O = 4
orders but in the generalised SHOI (reduced to 16 channels, depthwise φ/ψ), uses N = 2 blocks,
depthwise χ and 1×1 InvBlock sub-networks, and two transformer blocks at D_t = 128. Its spectral
term uses the DFT-as-matmul implementation so the same graph builds on TensorRT 10.x (JetPack 6/7,
which cannot parse ONNX ``DFT``). The memory and FLOP figures behind this choice are produced by
``python -m cloudlulc_edge.bench.model_cost`` and tabulated in the README.

Baselines (`model.md` §13), trained and evaluated with the same loop, cards and pipeline:

| name | what |
|---|---|
| ``unet_s2`` | UNet on the 12 cloudy S2 bands (W = 32, depth 4) |
| ``unet_s1`` | UNet on S1 [VV, VH] |
| ``unet_early`` | UNet on S2 + S1 concatenated (14 channels) |
| ``recon_first`` | DSen2-CR-style cloud removal (W = 64, 8 blocks), then a UNet on its output |
"""

from __future__ import annotations

from typing import Any, TypeVar

from cloudlulc_edge.models._registry import register_model
from cloudlulc_edge.models.base import LULCModel, ModelConfig
from cloudlulc_edge.models.config import CloudLULCNetConfig
from cloudlulc_edge.models.net import CloudLULCNet
from cloudlulc_edge.models.recon_first import ReconstructionFirst, ReconstructionFirstConfig
from cloudlulc_edge.models.unet import UNet, UNetConfig

__all__ = ["VARIANT_CONFIGS", "cloudlulc_edge", "cloudlulc_net", "recon_first", "test_tiny", "unet_early",
           "unet_s1", "unet_s2"]  # fmt: skip

#: Default configuration of each variant (what the model card records before overrides).
VARIANT_CONFIGS: dict[str, ModelConfig] = {
    "cloudlulc_net": CloudLULCNetConfig(),
    "cloudlulc_edge": CloudLULCNetConfig(
        width=32,
        token_dim=128,
        order=4,
        num_blocks=2,
        usmt_depth=2,
        usmt_heads=4,
        encoder_blocks=1,
        decoder_blocks=1,
        shoi="generalised",
        depthwise_chi=True,
        invblock_subnet="conv1x1",
        spectral_impl="matmul",
    ),
    "test_tiny": CloudLULCNetConfig(
        width=8,
        token_dim=16,
        order=2,
        num_blocks=1,
        usmt_depth=1,
        usmt_heads=2,
        mlp_ratio=2.0,
        encoder_blocks=1,
        decoder_blocks=1,
        invblock_subnet="conv1x1",
    ),
    "unet_s2": UNetConfig(inputs="s2"),
    "unet_s1": UNetConfig(inputs="s1"),
    "unet_early": UNetConfig(inputs="early"),
    "recon_first": ReconstructionFirstConfig(),
}


_Model = TypeVar("_Model", bound=LULCModel)


def _build(name: str, model_type: type[_Model], overrides: dict[str, Any]) -> _Model:
    model = model_type(VARIANT_CONFIGS[name], **overrides)
    model.variant = name  # recorded in the model card
    return model


@register_model
def cloudlulc_net(**overrides: Any) -> CloudLULCNet:
    """Paper-scale reconstruction: D = 64, D_t = 256, O = 4, N = 3, L = 4 (`model.md` §2)."""
    return _build("cloudlulc_net", CloudLULCNet, overrides)


@register_model
def cloudlulc_edge(**overrides: Any) -> CloudLULCNet:
    """Jetson profile: D = 32, generalised SHOI with O = 4, N = 2, L = 2, DFT-as-matmul."""
    return _build("cloudlulc_edge", CloudLULCNet, overrides)


@register_model
def test_tiny(**overrides: Any) -> CloudLULCNet:
    """Toy widths for CPU tests: D = 8, O = 2, N = 1, L = 1."""
    return _build("test_tiny", CloudLULCNet, overrides)


@register_model
def unet_s2(**overrides: Any) -> UNet:
    """S2-only baseline: UNet on the 12 (cloudy) optical bands."""
    return _build("unet_s2", UNet, overrides)


@register_model
def unet_s1(**overrides: Any) -> UNet:
    """S1-only baseline: UNet on [VV, VH]."""
    return _build("unet_s1", UNet, overrides)


@register_model
def unet_early(**overrides: Any) -> UNet:
    """Early-fusion baseline: UNet on the 14 concatenated S2 + S1 channels."""
    return _build("unet_early", UNet, overrides)


@register_model
def recon_first(**overrides: Any) -> ReconstructionFirst:
    """Reconstruction-first baseline: SAR-assisted cloud removal, then a UNet on its output."""
    return _build("recon_first", ReconstructionFirst, overrides)
