"""The registered model variants, one table (`VARIANT_CONFIGS`): CloudLULC-Net profiles and the baselines.

| name | D | D_t | O | N | L | SHOI | use |
|---|---|---|---|---|---|---|---|
| ``cloudlulc_net`` | 64 | 256 | 4 | 3 | 4 | full (SHIP) | paper-scale reconstruction |
| ``cloudlulc_edge`` | 32 | 128 | 4 | 2 | 2 | generalised, depthwise, local forms | Jetson FP16/INT8, the default |
| ``test_tiny`` | 8 | 16 | 2 | 1 | 1 | full | fast CPU tests |
| ``test_tiny_local`` | 8 | 16 | 2 | 1 | 1 | full, local forms | fast CPU tests of the tile-independent forms |

``cloudlulc_edge`` halves the width, which quarters the cost of every dense convolution (most of
the FLOPs sit in the encoders and decoder at full and half resolution), keeps the paper's O = 4
orders but in the generalised SHOI (reduced to 16 channels, depthwise φ/ψ), uses N = 2 blocks,
depthwise χ and 1×1 InvBlock sub-networks, and two transformer blocks at D_t = 128. It is also
**tile-independent** (`CloudLULCNetConfig.tile_independent`): per-pixel LayerNorm instead of
InstanceNorm/GroupNorm, CHOI's channel descriptor over a 7 × 7 window, the windowed (``local``)
spectral term instead of the circular FFT convolution, and 5 × 5 neighbourhood attention in USMT,
so a map does not change with where the tile grid falls (`cloudlulc_edge.tile_dependence`
measures it). The local spectral term is plain Slice/Mul/Add, so the graph builds on TensorRT 10.x
(JetPack 6/7, which cannot parse ONNX ``DFT``) without the DFT-as-matmul detour. The memory and
FLOP figures behind these choices are produced by ``python -m cloudlulc_edge.bench.model_cost``.
``cloudlulc_net`` and ``test_tiny`` keep the paper's forms for training and evaluation on
CloudLULC-Set; ``test_tiny_local`` is ``test_tiny`` in the local forms.

Baselines (`model.md` §13), trained and evaluated with the same loop, cards and pipeline:

| name | what |
|---|---|
| ``unet_s2`` | UNet on the 12 cloudy S2 bands (W = 32, depth 4) |
| ``unet_s1`` | UNet on S1 [VV, VH] |
| ``unet_early`` | UNet on S2 + S1 concatenated (14 channels) |
| ``recon_first`` | DSen2-CR-style cloud removal (W = 64, 8 blocks), then a UNet on its output |
"""

from __future__ import annotations

from dataclasses import replace

from cloudlulc_edge.models._registry import register_variant
from cloudlulc_edge.models.base import ModelConfig
from cloudlulc_edge.models.config import CloudLULCNetConfig
from cloudlulc_edge.models.recon_first import ReconstructionFirstConfig
from cloudlulc_edge.models.unet import UNetConfig

__all__ = ["VARIANT_CONFIGS"]

_TEST_TINY = CloudLULCNetConfig(width=8, token_dim=16, order=2, num_blocks=1, usmt_depth=1, usmt_heads=2, mlp_ratio=2.0,
                                encoder_blocks=1, decoder_blocks=1, invblock_subnet="conv1x1")  # fmt: skip
#: test_tiny in the tile-independent forms of the edge profile.
_TEST_TINY_LOCAL = replace(_TEST_TINY, spectral="local", spectral_window=3, norm="layer", choi_descriptor="local",
                           choi_window=3, usmt_attention="neighbourhood", usmt_window=3)  # fmt: skip

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
        spectral="local",
        spectral_window=7,
        norm="layer",
        choi_descriptor="local",
        choi_window=7,
        usmt_attention="neighbourhood",
        usmt_window=5,
    ),
    "test_tiny": _TEST_TINY,
    "test_tiny_local": _TEST_TINY_LOCAL,
    "unet_s2": UNetConfig(inputs="s2"),
    "unet_s1": UNetConfig(inputs="s1"),
    "unet_early": UNetConfig(inputs="early"),
    "recon_first": ReconstructionFirstConfig(),
}


for _name, _config in VARIANT_CONFIGS.items():
    register_variant(_name, _config)
