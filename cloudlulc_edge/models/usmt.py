"""USMT: Unified Semantic Mapping Transformer (`model.md` §7).

Tokenises the fused map G with two Restormer downsamplers (C → 2C → 4C at 1/4 of G's side, e.g.
(B, 64, 128, 128) → (B, 256, 32, 32) = 1024 tokens), adds a depthwise-convolution positional
encoding (resolution-agnostic, unlike a learned table, so one model serves any tile size), and
runs L pre-norm transformer blocks. The output Z is the LULC-oriented semantic latent that the
semantic-anchor loss regularises. Optionally K learnable class-query tokens attend jointly with
the spatial tokens ("unified" option); their final states can serve as class prototypes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cloudlulc_edge.models.layers import Downsample, conv1x1, conv3x3

__all__ = ["SemanticMappingTransformer", "TransformerBlock"]


class _Attention(nn.Module):
    """Multi-head self-attention on (B, N, D) tokens via ``scaled_dot_product_attention``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"token width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, d/heads)
        out: Tensor = self.proj(y.transpose(1, 2).reshape(b, n, d))
        return out


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x += MHSA(LN(x))``; ``x += FFN(LN(x))`` (GELU).

    Args:
        dim: Token width D_t.
        heads: Attention heads.
        mlp_ratio: FFN hidden width / D_t.

    Shape:
        (B, N, D_t) → (B, N, D_t).
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        """Applies attention then the feed-forward network."""
        x = x + self.attn(self.norm1(x))
        out: Tensor = x + self.ffn(self.norm2(x))
        return out


class SemanticMappingTransformer(nn.Module):
    """Tokeniser + L transformer blocks producing the semantic latent Z.

    Args:
        channels: Width C of the fused map G.
        token_dim: Token width D_t (4C is native; otherwise a 1×1 projection is added).
        depth: L (0 = tokeniser only: the "without USMT" ablation).
        heads: Attention heads.
        mlp_ratio: FFN ratio.
        num_class_queries: K learnable class tokens (0 disables the unified option).

    Shape:
        G (B, C, h, w) → (Z (B, D_t, h/4, w/4), class states (B, K, D_t) or None).
    """

    def __init__(
        self,
        channels: int,
        token_dim: int,
        depth: int = 4,
        heads: int = 8,
        mlp_ratio: float = 4.0,
        num_class_queries: int = 0,
    ) -> None:
        super().__init__()
        native = 4 * channels
        self.tokenise = nn.Sequential(
            Downsample(channels),
            Downsample(2 * channels),
            *([conv1x1(native, token_dim)] if token_dim != native else []),
        )
        self.pos = conv3x3(token_dim, token_dim, groups=token_dim)
        self.blocks = nn.ModuleList([TransformerBlock(token_dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(token_dim) if depth > 0 else nn.Identity()
        self.class_queries = (
            nn.Parameter(torch.randn(1, num_class_queries, token_dim) * 0.02) if num_class_queries > 0 else None
        )

    def forward(self, g: Tensor) -> tuple[Tensor, Tensor | None]:
        """Maps the fused feature to the semantic latent."""
        t = self.tokenise(g)
        t = t + self.pos(t)
        b, d, h, w = t.shape
        tokens = t.flatten(2).transpose(1, 2)  # (B, h·w, D_t)
        n_cls = 0
        if self.class_queries is not None:
            n_cls = self.class_queries.shape[1]
            tokens = torch.cat([self.class_queries.expand(b, -1, -1).to(tokens.dtype), tokens], dim=1)
        for block in self.blocks:
            tokens = block(tokens)
        tokens = self.norm(tokens)
        z = tokens[:, n_cls:].transpose(1, 2).reshape(b, d, h, w)
        return z, (tokens[:, :n_cls] if n_cls else None)
