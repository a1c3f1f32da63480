"""Hyper-parameters of CloudLULC-Net, one frozen dataclass recorded verbatim in the model card.

Defaults are the paper-scale reconstruction of `model.md` §2 (D = 64, D_t = 256, O = 4, N = 3,
L = 4). Every field is a tunable reconstruction choice, not a value from the paper.

Four fields choose between the paper-faithful form of a component and a tile-independent one
(`tile_independent`): ``norm`` (InstanceNorm/GroupNorm over the tile vs a per-pixel LayerNorm),
``choi_descriptor`` (global average pool vs a windowed mean), ``spectral`` (circular or linear
convolution over the whole tile vs a windowed one) and ``usmt_attention`` (global vs
neighbourhood attention). With every tile-independent form the network's output at a pixel
depends only on a bounded neighbourhood, so a tiled map agrees with a whole-scene map wherever
the tile overlap exceeds that neighbourhood.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudlulc_edge.models.base import ModelConfig, raise_first_failure
from cloudlulc_edge.models.choi import ChoiDescriptor
from cloudlulc_edge.models.hiaa import ShoiKind
from cloudlulc_edge.models.invblock import SubnetKind
from cloudlulc_edge.models.layers import NormKind
from cloudlulc_edge.models.spectral import SpectralForm, SpectralImpl
from cloudlulc_edge.models.usmt import AttentionKind

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
        spectral_impl: ``fft`` (torch.fft) or ``matmul`` (DFT matrices, for TensorRT 10.x); used by
            the ``circular`` and ``linear`` spectral forms.
        spectral: Form of SHOI's spectral term: ``circular`` (SHIP), ``linear`` (zero-padded, still
            tile-global) or ``local`` (windowed, tile-independent); see `spectral`.
        spectral_window: Window side of the ``local`` spectral term (odd, at 1/4 resolution).
        norm: Normalisation of the HinRes blocks and of the generalised SHOI fusion: ``instance``
            (the paper's HINet blocks), ``layer`` (per-pixel LayerNorm) or ``batch``.
        choi_descriptor: CHOI's channel descriptor: ``global`` (GAP) or ``local`` (windowed mean).
        choi_window: Window side of the ``local`` descriptor (odd, at 1/4 resolution).
        usmt_attention: ``global`` or ``neighbourhood`` attention in USMT.
        usmt_window: Neighbourhood side in tokens (odd, at 1/16 resolution).
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
    spectral: SpectralForm = "circular"
    spectral_window: int = 7
    norm: NormKind = "instance"
    choi_descriptor: ChoiDescriptor = "global"
    choi_window: int = 7
    usmt_attention: AttentionKind = "global"
    usmt_window: int = 7
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
            (
                self.spectral in ("circular", "linear", "local"),
                f"spectral must be circular, linear or local, got {self.spectral!r}",
            ),
            (self.norm in ("instance", "layer", "batch"), f"norm must be instance, layer or batch, got {self.norm!r}"),
            (
                self.choi_descriptor in ("global", "local"),
                f"choi_descriptor must be global or local, got {self.choi_descriptor!r}",
            ),
            (
                self.usmt_attention in ("global", "neighbourhood"),
                f"usmt_attention must be global or neighbourhood, got {self.usmt_attention!r}",
            ),
            *(
                (window >= 1 and window % 2 == 1, f"{name} must be a positive odd number, got {window}")
                for name, window in (
                    ("spectral_window", self.spectral_window),
                    ("choi_window", self.choi_window),
                    ("usmt_window", self.usmt_window),
                )
            ),
            (
                not (self.class_queries and self.usmt_attention == "neighbourhood"),
                "class_queries need usmt_attention='global'",
            ),
        ]
        super().__post_init__()
        raise_first_failure(checks)

    @property
    def tile_independent(self) -> bool:
        """True when no component computes statistics over the whole tile at inference.

        Then the output at a pixel depends only on a bounded neighbourhood of it (the receptive
        field), never on where the tile grid falls.
        """
        return (
            self.norm != "instance"
            and (not self.use_choi or self.choi_descriptor == "local")
            and (not self.use_shoi or self.spectral == "local")
            and (self.usmt_depth == 0 or self.usmt_attention == "neighbourhood")
        )

    def summary(self) -> str:
        """D, D_t, O, N, L, SHOI kind, spectral form and whether the forms are tile-independent."""
        forms = "tile-independent" if self.tile_independent else "paper forms (tile-global)"
        return (f"D={self.width} D_t={self.token_dim} O={self.order} N={self.num_blocks} L={self.usmt_depth} "
                f"SHOI={self.shoi} spectral={self.spectral} {forms}")  # fmt: skip
