"""CloudLULC-Net: the assembled SAR-optical fusion network.

Reconstruction of CloudLULC-Net from its published description (arXiv 2606.17713; official code
and weights unreleased). Data flow (`model.md` §3)::

    S2 (B,12,H,W) ─E_o─► F_o (B,D,H/4,W/4) ─ORM─► F̃_o ┐
    S1 (B, 2,H,W) ─E_s─► F_s (B,D,H/4,W/4) ───────────┴─HIAA×N─► G ─USMT─► Z (B,D_t,H/16,W/16)
    Decoder(Z, G, encoder skips) ─► logits (B,6,H,W)

If you use this model in your research, please cite the paper: J. Xu, W. Xue, X. Yu, J. Pan,
X. Liang, M. Wang, "Heterogeneous SAR-optical fusion for near-real-time land use and land cover
mapping under cloud contamination: A novel framework and global benchmark dataset",
arXiv:2606.17713, 2026.

Missing and partial inputs:

* **No Sentinel-1** (S2-only scene, ``s1=None``): the SAR encoder is skipped and every SAR feature
  level (S¹_s, S²_s, F_s) is a learned "missing SAR" embedding. Train with SAR dropout for this
  path to be meaningful.
* **Partial S1 coverage** (``s1_valid``): SAR features are blended with the same embeddings by the
  covered fraction of each feature cell, ``f ← f·m + e·(1 − m)``.
* **S2 nodata** (``s2_valid``): ORM's reliability is multiplied by the valid fraction of each
  1/4-resolution cell, so optical features with no data are switched off and SAR carries the
  fusion. Readers fill nodata inputs with 0 (`contract`); writers mask the output with
  `contract.output_valid_mask`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cloudlulc_edge.models.base import LULCModel, ModelOutput
from cloudlulc_edge.models.config import CloudLULCNetConfig
from cloudlulc_edge.models.decoder import Decoder
from cloudlulc_edge.models.encoders import EncoderFeatures, ModalityEncoder
from cloudlulc_edge.models.hiaa import HIAA
from cloudlulc_edge.models.orm import OpticalReliabilityModulation
from cloudlulc_edge.models.usmt import SemanticMappingTransformer

__all__ = ["CloudLULCNet", "ModelOutput"]

_SCALES = (1, 2, 4)  # downsampling factor of skip1, skip2, feature


class CloudLULCNet(LULCModel):
    """CloudLULC-Net (reconstruction).

    Args:
        config: Hyper-parameters; `CloudLULCNetConfig` defaults are the paper-scale model.
        **overrides: Field overrides applied to ``config``.

    Shape:
        s2 (B, 12, H, W) float32 reflectance in [0, 1] (`contract.normalise_s2_reflectance`);
        s1 (B, 2, H, W) float32 [VV, VH] in [0, 1] (`contract.normalise_s1_db`) or None;
        s2_valid, s1_valid (B, 1, H, W) bool/float validity or None (all valid) →
        logits (B, 6, H, W). H and W must be multiples of 16.
    """

    _is_torch_exportable = True
    _is_onnx_exportable = True
    architecture = "cloudlulc_net"
    config: CloudLULCNetConfig

    def __init__(self, config: CloudLULCNetConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        cfg = (config or CloudLULCNetConfig()).override(**overrides)
        self.config = cfg
        d = cfg.width
        self.optical_encoder = ModalityEncoder(cfg.s2_channels, d, cfg.encoder_blocks, cfg.norm)
        self.sar_encoder = ModalityEncoder(cfg.s1_channels, d, cfg.encoder_blocks, cfg.norm)
        # Learned stand-ins for SAR features where S1 is absent (one per encoder level).
        self.sar_missing = nn.ParameterList([nn.Parameter(torch.zeros(1, c, 1, 1)) for c in (d // 2, d, d)])
        self.orm = (
            OpticalReliabilityModulation(d, cfg.orm_gate_bias, cfg.orm_sar_alpha, pooled=cfg.orm_boost_sar)
            if cfg.use_orm
            else None
        )
        self.hiaa = HIAA(
            d,
            cfg.num_blocks,
            subnet=cfg.invblock_subnet,
            order=cfg.order,
            shoi=cfg.shoi,
            use_shoi=cfg.use_shoi,
            use_choi=cfg.use_choi,
            depthwise_chi=cfg.depthwise_chi,
            spectral_impl=cfg.spectral_impl,
            spectral=cfg.spectral,
            spectral_window=cfg.spectral_window,
            norm=cfg.norm,
            choi_descriptor=cfg.choi_descriptor,
            choi_window=cfg.choi_window,
        )
        self.usmt = SemanticMappingTransformer(
            d,
            cfg.token_dim,
            cfg.usmt_depth,
            cfg.usmt_heads,
            cfg.mlp_ratio,
            num_class_queries=cfg.num_classes if cfg.class_queries else 0,
            attention=cfg.usmt_attention,
            window=cfg.usmt_window,
        )
        self.decoder = Decoder(d, cfg.token_dim, cfg.num_classes, cfg.decoder_blocks, cfg.norm)

    def _sar_features(self, s1: Tensor | None, s1_valid: Tensor | None, like: EncoderFeatures) -> EncoderFeatures:
        """SAR encoder output, with learned embeddings where S1 is missing (see module docstring)."""
        if s1 is None:
            return EncoderFeatures(
                *(
                    e.to(f.dtype).expand(f.shape[0], -1, f.shape[2], f.shape[3])
                    for e, f in zip(self.sar_missing, like, strict=True)
                )
            )
        feats: EncoderFeatures = self.sar_encoder(s1)
        if s1_valid is None:
            return feats
        m = s1_valid.to(feats.feature.dtype)
        blended = []
        for f, e, k in zip(feats, self.sar_missing, _SCALES, strict=True):
            mk = m if k == 1 else F.avg_pool2d(m, k)  # covered fraction of each feature cell
            blended.append(f * mk + e.to(f.dtype) * (1.0 - mk))
        return EncoderFeatures(*blended)

    def forward_with_latent(
        self,
        s2: Tensor,
        s1: Tensor | None = None,
        s2_valid: Tensor | None = None,
        s1_valid: Tensor | None = None,
    ) -> ModelOutput:
        """Runs the network and returns logits, semantic latent and class tokens.

        Args:
            s2: (B, 12, H, W) normalised optical input.
            s1: (B, 2, H, W) normalised SAR input, or None for S2-only scenes.
            s2_valid: (B, 1, H, W) optical validity, or None.
            s1_valid: (B, 1, H, W) SAR coverage, or None.

        Returns:
            `ModelOutput`.

        Raises:
            ValueError: Input shapes do not match the model (the message says how to fix them).
        """
        self.check_inputs(s2, s1)
        opt = self.optical_encoder(s2)
        sar = self._sar_features(s1, s1_valid, like=opt)
        f_o, f_s = opt.feature, sar.feature
        if self.orm is not None:
            valid_q = None if s2_valid is None else F.avg_pool2d(s2_valid.to(f_o.dtype), 4)
            f_o, rho = self.orm(f_o, valid_q, f_s)
            if rho is not None:
                f_s = f_s * (1.0 + rho)  # raise the SAR weight where optics are unreliable
        fused = self.hiaa(f_o, f_s)
        latent, class_tokens = self.usmt(fused)
        logits = self.decoder(latent, fused, opt, sar)
        return ModelOutput(logits, latent, class_tokens)
