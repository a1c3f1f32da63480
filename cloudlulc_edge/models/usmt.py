"""USMT: Unified Semantic Mapping Transformer (`model.md` §7).

Tokenises the fused map G with two Restormer downsamplers (C → 2C → 4C at 1/4 of G's side, e.g.
(B, 64, 128, 128) → (B, 256, 32, 32) = 1024 tokens), adds a depthwise-convolution positional
encoding (resolution-agnostic, unlike a learned table, so one model serves any tile size), and
runs L pre-norm transformer blocks. The output Z is the LULC-oriented semantic latent that the
semantic-anchor loss regularises. Optionally K learnable class-query tokens attend jointly with
the spatial tokens ("unified" option); their final states can serve as class prototypes.

Attention has two forms (``usmt_attention``): ``global`` (every token attends to every token of
the tile: the paper's form, whose output at a pixel depends on the whole tile) and
``neighbourhood`` (each token attends to the ``window × window`` tokens centred on it, zero-padded
keys masked out at the map border; Hassani et al., "Neighborhood Attention Transformer", CVPR
2023). The neighbourhood form is translation-equivariant with a bounded receptive field, the
tile-independent choice of the edge profile; it is written as shifted slices, so it exports to
plain ONNX (Slice/Mul/ReduceSum/Softmax) for every runtime.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cloudlulc_edge.models.layers import Downsample, conv1x1, conv3x3

__all__ = ["AttentionKind", "SemanticMappingTransformer", "TransformerBlock", "neighbourhood_attention"]

AttentionKind = Literal["global", "neighbourhood"]


def neighbourhood_attention(q: Tensor, k: Tensor, v: Tensor, window: int) -> Tensor:
    """Each query attends to the ``window × window`` keys centred on its own position.

    Keys beyond the map border are masked out (not zero keys that would still take softmax
    weight), so a border token attends to the tokens that exist. Memory stays at one logit map per
    shift: the window is walked as shifted slices, never gathered into a (…, window², …) tensor of
    keys.

    Args:
        q: (B, heads, h, w, d) queries.
        k: (B, heads, h, w, d) keys.
        v: (B, heads, h, w, d) values.
        window: Odd window side.

    Returns:
        (B, heads, h, w, d) attention output.

    Raises:
        ValueError: The window is not a positive odd number.
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"the attention window must be a positive odd number, got {window}")
    r = window // 2
    h, w, d = q.shape[-3:]
    scale = d**-0.5
    pad = (0, 0, r, r, r, r)  # d, then w, then h
    k_pad, v_pad = F.pad(k, pad), F.pad(v, pad)
    inside = F.pad(torch.ones(h, w, dtype=q.dtype, device=q.device), (r, r, r, r))
    shifts = [(dy, dx) for dy in range(window) for dx in range(window)]
    logits = []
    for dy, dx in shifts:
        score = (q * k_pad[..., dy : dy + h, dx : dx + w, :]).sum(-1) * scale  # (B, heads, h, w)
        # Keys outside the map get a large negative logit (finite, so fp16 stays NaN-free).
        logits.append(torch.where(inside[dy : dy + h, dx : dx + w] > 0, score, torch.full_like(score, -1e4)))
    weights = torch.softmax(torch.stack(logits, dim=-1), dim=-1)  # (B, heads, h, w, window²)
    out = torch.zeros_like(q)
    for s, (dy, dx) in enumerate(shifts):
        out = out + weights[..., s, None] * v_pad[..., dy : dy + h, dx : dx + w, :]
    return out


class _Attention(nn.Module):
    """Multi-head self-attention on (B, N, D) tokens: global (``scaled_dot_product_attention``) or windowed."""

    def __init__(self, dim: int, heads: int, window: int | None = None) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"token width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.window = window
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, grid: tuple[int, int]) -> Tensor:
        b, n, d = x.shape
        if self.window is None:
            q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
            y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2)  # (B, N, heads, d/heads)
        else:
            h, w = grid
            q, k, v = self.qkv(x).reshape(b, h, w, 3, self.heads, d // self.heads).permute(3, 0, 4, 1, 2, 5)
            y = neighbourhood_attention(q, k, v, self.window).permute(0, 2, 3, 1, 4)  # (B, h, w, heads, d/heads)
        out: Tensor = self.proj(y.reshape(b, n, d))
        return out


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x += MHSA(LN(x))``; ``x += FFN(LN(x))`` (GELU).

    Args:
        dim: Token width D_t.
        heads: Attention heads.
        mlp_ratio: FFN hidden width / D_t.
        window: Neighbourhood window side (None: global attention).

    Shape:
        (B, N, D_t) tokens of an (h, w) grid → (B, N, D_t).
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, window: int | None = None) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = _Attention(dim, heads, window)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, grid: tuple[int, int]) -> Tensor:
        """Applies attention over the ``grid`` = (h, w) token map, then the feed-forward network."""
        x = x + self.attn(self.norm1(x), grid)
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
        num_class_queries: K learnable class tokens (0 disables the unified option; global
            attention only: class tokens have no position in a neighbourhood).
        attention: ``global`` or ``neighbourhood`` (see the module docstring).
        window: Neighbourhood window side.

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
        attention: AttentionKind = "global",
        window: int = 7,
    ) -> None:
        super().__init__()
        if attention not in ("global", "neighbourhood"):
            raise ValueError(f"unknown USMT attention {attention!r}; use global or neighbourhood")
        if attention == "neighbourhood" and num_class_queries:
            raise ValueError("class queries need global attention (they have no place in a neighbourhood)")
        native = 4 * channels
        self.tokenise = nn.Sequential(
            Downsample(channels),
            Downsample(2 * channels),
            *([conv1x1(native, token_dim)] if token_dim != native else []),
        )
        self.pos = conv3x3(token_dim, token_dim, groups=token_dim)
        block_window = window if attention == "neighbourhood" else None
        self.blocks = nn.ModuleList([TransformerBlock(token_dim, heads, mlp_ratio, block_window) for _ in range(depth)])
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
            tokens = block(tokens, (h, w))
        tokens = self.norm(tokens)
        z = tokens[:, n_cls:].transpose(1, 2).reshape(b, d, h, w)
        return z, (tokens[:, :n_cls] if n_cls else None)
