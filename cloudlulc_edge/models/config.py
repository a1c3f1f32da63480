"""Hyper-parameters of CloudLULC-Net, one frozen dataclass recorded verbatim in the model card.

Defaults are the paper-scale reconstruction of `model.md` §2 (D = 64, D_t = 256, O = 4, N = 3,
L = 4). Every field is a tunable reconstruction choice, not a value from the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudlulc_edge.models.base import ModelConfig, raise_first_failure
from cloudlulc_edge.models.hiaa import ShoiKind
from cloudlulc_edge.models.invblock import SubnetKind
from cloudlulc_edge.models.spectral import SpectralImpl

__all__ = ["CloudLULCNetConfig"]


@dataclass(frozen=True)
class CloudLULCNetConfig(ModelConfig):
    """Constructor arguments of `CloudLULCNet`.

    Attributes:
        s2_channels: Optical input bands (12).
        s1_channels: SAR input channels (2).
        num_classes: Output classes K (6).
        width: Fusion width D (divisible by 4).
        token_dim: USMT token width D_t (divisible by 4 and by ``usmt_heads``).
        order: Maximum interaction order O of SHOI and CHOI (≥ 1).
        num_blocks: Stacked HIAA blocks N (≥ 1).
        usmt_depth: Transformer blocks L (0 = "without USMT" ablation).
        usmt_heads: Attention heads.
        mlp_ratio: Transformer FFN ratio.
        encoder_blocks: HinRes blocks per encoder stage.
        decoder_blocks: HinRes blocks at decoder step 1.
        shoi: ``ship`` (full width) or ``generalised`` (edge profile, `model.md` §6.5).
        depthwise_chi: Depthwise 3×3 in CHOI's χ transforms.
        invblock_subnet: ``conv`` or ``conv1x1`` sub-networks in InvBlocks.
        spectral_impl: ``fft`` (torch.fft) or ``matmul`` (DFT matrices, for TensorRT 10.x).
        spectral_linear: Zero-pad the spectral term (no wrap-around).
        use_orm: Optical reliability modulation on (False = ablation).
        use_shoi: SHOI on (False = ablation).
        use_choi: CHOI on (False = ablation).
        orm_gate_bias: Initial bias of the reliability logits.
        orm_sar_alpha: SAR mixing weight α of the ORM gate (0 = plain modulation).
        orm_boost_sar: Feed ρ = 1 − mean_c(R) to HIAA as ``F_s ← F_s ⊙ (1 + ρ)``.
        class_queries: Prepend K class-query tokens in USMT (the "unified" option).
    """

    width: int = 64
    token_dim: int = 256
    order: int = 4
    num_blocks: int = 3
    usmt_depth: int = 4
    usmt_heads: int = 8
    mlp_ratio: float = 4.0
    encoder_blocks: int = 2
    decoder_blocks: int = 2
    shoi: ShoiKind = "ship"
    depthwise_chi: bool = False
    invblock_subnet: SubnetKind = "conv"
    spectral_impl: SpectralImpl = "fft"
    spectral_linear: bool = False
    use_orm: bool = True
    use_shoi: bool = True
    use_choi: bool = True
    orm_gate_bias: float = 2.0
    orm_sar_alpha: float = 0.0
    orm_boost_sar: bool = False
    class_queries: bool = False

    def __post_init__(self) -> None:
        """Validates the combination of values.

        Raises:
            ValueError: A value is out of range; the message names the field.
        """
        checks = [
            (self.width >= 8 and self.width % 4 == 0, f"width must be a multiple of 4 and >= 8, got {self.width}"),
            (self.token_dim % 4 == 0, f"token_dim must be a multiple of 4, got {self.token_dim}"),
            (self.token_dim % self.usmt_heads == 0, f"token_dim {self.token_dim} not divisible by {self.usmt_heads}"),
            (self.order >= 1, f"order must be >= 1, got {self.order}"),
            (self.num_blocks >= 1, f"num_blocks must be >= 1, got {self.num_blocks}"),
            (self.usmt_depth >= 0, f"usmt_depth must be >= 0, got {self.usmt_depth}"),
            (self.encoder_blocks >= 0, f"encoder_blocks must be >= 0, got {self.encoder_blocks}"),
            (self.shoi in ("ship", "generalised"), f"shoi must be 'ship' or 'generalised', got {self.shoi!r}"),
            (self.invblock_subnet in ("conv", "conv1x1"), f"invalid invblock_subnet {self.invblock_subnet!r}"),
            (
                self.spectral_impl in ("fft", "matmul"),
                f"spectral_impl must be 'fft' or 'matmul', got {self.spectral_impl!r}",
            ),
        ]
        super().__post_init__()
        raise_first_failure(checks)

    def summary(self) -> str:
        """D, D_t, O, N, L, SHOI kind and spectral implementation."""
        return (f"D={self.width} D_t={self.token_dim} O={self.order} N={self.num_blocks} L={self.usmt_depth} "
                f"SHOI={self.shoi} spectral={self.spectral_impl}")  # fmt: skip
