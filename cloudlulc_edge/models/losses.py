"""Training losses: cross-entropy with ignore index, the semantic anchor loss, and their total.

Semantic anchor-guided optimisation (`model.md` §9, option A, the default because it cannot
collapse): a label-derived anchor pulls the USMT latent Z towards class-consistent directions.

    ŷ     = AvgPool_s(onehot(Y))        (B, K, h, w) class proportions per latent cell, ignore excluded
    E     ∈ ℝ^{K×D_t}                   rows L2-normalised, orthogonal init; learnable or frozen
    A     = normalise(ŷᵀE)              (B, D_t, h, w) the anchor
    Ẑ     = normalise(Proj1x1(Z))       Proj initialised to the identity
    L_anc = mean_p(1 − ⟨Ẑ_p, sg(A_p)⟩)  over cells with at least one labelled pixel

With learnable anchors, ``L_proto = CE(ẐᵀE/τ, majority class of the cell)`` keeps them
discriminative. The anchor branch is training-only: it lives in the loss, not in the model, so the
exported graph is unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cloudlulc_edge.contract import IGNORE_INDEX, NUM_CLASSES

__all__ = ["CloudLULCLoss", "LossTerms", "SemanticAnchorLoss", "class_proportions", "segmentation_ce"]


def class_proportions(labels: Tensor, size: tuple[int, int], num_classes: int, ignore_index: int) -> Tensor:
    """Soft class proportions of each latent cell.

    Args:
        labels: (B, H, W) int64 class ids, ``ignore_index`` for unlabelled pixels.
        size: Latent grid (h, w); H and W must be multiples of it.
        num_classes: K.
        ignore_index: Label value to exclude.

    Returns:
        (B, K, h, w) float32 proportions summing to 1 in cells with labelled pixels and to 0 in
        cells without any.
    """
    valid = labels != ignore_index
    onehot = F.one_hot(torch.where(valid, labels, 0), num_classes).permute(0, 3, 1, 2).float()
    onehot = onehot * valid.unsqueeze(1)
    counts = F.adaptive_avg_pool2d(onehot, size)
    total = counts.sum(dim=1, keepdim=True)
    return torch.where(total > 0, counts / total.clamp_min(1e-12), torch.zeros_like(counts))


class SemanticAnchorLoss(nn.Module):
    """Class-anchor alignment loss on the semantic latent (option A).

    Args:
        latent_dim: D_t.
        num_classes: K.
        learnable: Learn the anchors E (adds the prototype term); False freezes them.
        temperature: τ of the prototype term.
        ignore_index: Label value to exclude.

    Shape:
        latent (B, D_t, h, w), labels (B, H, W) → (alignment loss, prototype loss), scalars.
    """

    def __init__(
        self,
        latent_dim: int,
        num_classes: int = NUM_CLASSES,
        learnable: bool = False,
        temperature: float = 0.1,
        ignore_index: int = IGNORE_INDEX,
    ) -> None:
        super().__init__()
        if latent_dim < num_classes:
            raise ValueError(f"latent_dim {latent_dim} < num_classes {num_classes}: anchors cannot be orthogonal")
        q, _ = torch.linalg.qr(torch.randn(latent_dim, num_classes))  # orthonormal columns
        self.anchors = nn.Parameter(q.T.contiguous(), requires_grad=learnable)  # (K, D_t)
        self.proj = nn.Conv2d(latent_dim, latent_dim, 1)
        with torch.no_grad():  # identity start: the anchor pulls Z itself
            self.proj.weight.copy_(torch.eye(latent_dim).view(latent_dim, latent_dim, 1, 1))
            assert self.proj.bias is not None
            self.proj.bias.zero_()
        self.learnable = learnable
        self.temperature = temperature
        self.ignore_index = ignore_index
        self.num_classes = num_classes

    def anchor(self, labels: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """Builds the label-derived anchor.

        Args:
            labels: (B, H, W) class ids.
            size: Latent grid (h, w).

        Returns:
            ``(anchor, has_label)``: (B, D_t, h, w) unit vectors and (B, h, w) bool.
        """
        return self._anchor_from(class_proportions(labels, size, self.num_classes, self.ignore_index))

    def _anchor_from(self, props: Tensor) -> tuple[Tensor, Tensor]:
        a = torch.einsum("bkhw,kd->bdhw", props, F.normalize(self.anchors, dim=1))
        return F.normalize(a, dim=1), props.sum(dim=1) > 0

    def forward(self, latent: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Returns ``(L_anc, L_proto)``; ``L_proto`` is 0 with frozen anchors."""
        props = class_proportions(labels, (latent.shape[-2], latent.shape[-1]), self.num_classes, self.ignore_index)
        target, has_label = self._anchor_from(props)
        z = F.normalize(self.proj(latent.float()), dim=1)
        cosine = (z * target.detach()).sum(dim=1)  # sg(A): the anchor is a target
        if not bool(has_label.any()):
            zero = latent.sum() * 0.0
            return zero, zero
        l_anc = (1.0 - cosine)[has_label].mean()
        if not self.learnable:
            return l_anc, l_anc.new_zeros(())
        majority = torch.where(has_label, props.argmax(dim=1), self.ignore_index)
        sims = torch.einsum("bdhw,kd->bkhw", z, F.normalize(self.anchors, dim=1)) / self.temperature
        return l_anc, F.cross_entropy(sims, majority, ignore_index=self.ignore_index)


def segmentation_ce(
    logits: Tensor,
    labels: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
    soft: Tensor | None = None,
    soft_weight: float = 0.0,
) -> Tensor:
    """Cross-entropy over labelled pixels, in fp32; 0 (with a gradient path) for an all-ignore batch.

    With soft targets (distillation) the target of a labelled pixel is
    ``t = (1 − λ_s)·onehot(y) + λ_s·p`` and the loss ``Σ_pix w_y·(−Σ_k t_k log q_k) / Σ_pix w_y``:
    the hard-label CE at λ_s = 0 (PyTorch's weighted mean), the teacher's distribution at λ_s = 1.
    The class weight of the hard label weights the pixel in both cases.

    Args:
        logits: (B, K, H, W).
        labels: (B, H, W) int64, ``ignore_index`` for unlabelled pixels.
        weight: Optional (K,) class weights.
        ignore_index: Label value excluded.
        soft: Optional (B, K, H, W) teacher probabilities.
        soft_weight: λ_s in [0, 1] (ignored without ``soft``).
    """
    labelled = labels != ignore_index
    if not bool(labelled.any()):
        return logits.float().sum() * 0.0  # CE would be 0/0 = NaN
    if soft is None or soft_weight == 0.0:
        return F.cross_entropy(logits.float(), labels, weight=weight, ignore_index=ignore_index)
    safe = torch.where(labelled, labels, 0)
    onehot = F.one_hot(safe, logits.shape[1]).permute(0, 3, 1, 2).float()
    target = (1.0 - soft_weight) * onehot + soft_weight * soft.float()
    per_pixel = -(target * F.log_softmax(logits.float(), dim=1)).sum(dim=1)  # (B, H, W)
    pixel_weight = labelled.float() if weight is None else weight.float()[safe] * labelled
    return (per_pixel * pixel_weight).sum() / pixel_weight.sum().clamp_min(1e-12)


class LossTerms(NamedTuple):
    """Weighted total and its unweighted parts (for logging).

    Attributes:
        total: Scalar to back-propagate.
        ce: Segmentation cross-entropy.
        anchor: Semantic anchor alignment.
        proto: Anchor prototype term (0 with frozen anchors).
    """

    total: Tensor
    ce: Tensor
    anchor: Tensor
    proto: Tensor


class CloudLULCLoss(nn.Module):
    """``L = CE(logits, Y; ignore) + λ_a·L_anc + λ_p·L_proto``.

    Args:
        latent_dim: D_t of the model.
        num_classes: K.
        anchor_weight: λ_a (0.5 default; 0 = "without anchor loss" ablation).
        proto_weight: λ_p, used when anchors are learnable.
        learnable_anchors: Learn E.
        class_weights: Optional (K,) CE class weights.
        ignore_index: Label value excluded everywhere.
        soft_weight: λ_s of the distillation target (see `segmentation_ce`).

    Shape:
        logits (B, K, H, W), latent (B, D_t, h, w), labels (B, H, W) int64, soft (B, K, H, W) or
        None → `LossTerms`.
    """

    def __init__(
        self,
        latent_dim: int,
        num_classes: int = NUM_CLASSES,
        anchor_weight: float = 0.5,
        proto_weight: float = 1.0,
        learnable_anchors: bool = False,
        class_weights: Tensor | None = None,
        ignore_index: int = IGNORE_INDEX,
        soft_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.anchor_loss = SemanticAnchorLoss(latent_dim, num_classes, learnable_anchors, ignore_index=ignore_index)
        self.anchor_weight = anchor_weight
        self.soft_weight = soft_weight
        self.proto_weight = proto_weight
        self.ignore_index = ignore_index
        self.register_buffer("class_weights", class_weights)

    def forward(self, logits: Tensor, latent: Tensor, labels: Tensor, soft: Tensor | None = None) -> LossTerms:
        """Computes the weighted total loss."""
        weights = self.class_weights if isinstance(self.class_weights, Tensor) else None
        ce = segmentation_ce(logits, labels, weights, self.ignore_index, soft, self.soft_weight)
        if self.anchor_weight == 0.0:
            zero = ce.new_zeros(())
            return LossTerms(ce, ce, zero, zero)
        anchor, proto = self.anchor_loss(latent, labels)
        total = ce + self.anchor_weight * anchor + self.proto_weight * proto
        return LossTerms(total, ce, anchor, proto)
