from __future__ import annotations

import torch

from cloudlulc_edge.contract import IGNORE_INDEX
from cloudlulc_edge.models.losses import CloudLULCLoss, SemanticAnchorLoss, class_proportions


def _labels(b=2, hw=64):
    return torch.randint(0, 6, (b, hw, hw))


def test_class_proportions_exclude_ignore_and_renormalise():
    labels = torch.full((1, 4, 4), IGNORE_INDEX)
    labels[0, :2, :2] = torch.tensor([[1, 1], [2, IGNORE_INDEX]])
    props = class_proportions(labels, (2, 2), 6, IGNORE_INDEX)
    torch.testing.assert_close(props[0, :, 0, 0], torch.tensor([0, 2 / 3, 1 / 3, 0, 0, 0]))
    assert props[0, :, 1, 1].sum() == 0  # a fully unlabelled cell


def test_anchor_loss_is_zero_when_latent_equals_its_anchor():
    loss = SemanticAnchorLoss(16)
    labels = _labels()
    anchor, _ = loss.anchor(labels, (4, 4))
    l_anc, l_proto = loss(anchor * 3.0, labels)  # cosine alignment: scale does not matter
    assert abs(l_anc.item()) < 1e-6 and l_proto.item() == 0


def test_anchor_loss_is_positive_for_unaligned_latent_and_bounded():
    loss = SemanticAnchorLoss(16)
    l_anc, _ = loss(torch.randn(2, 16, 4, 4), _labels())
    assert 0.1 < l_anc.item() <= 2.0


def test_anchor_is_stop_gradient_and_latent_gets_gradient():
    loss = SemanticAnchorLoss(16, learnable=True)
    z = torch.randn(2, 16, 4, 4, requires_grad=True)
    l_anc, l_proto = loss(z, _labels())
    l_anc.backward(retain_graph=True)
    assert z.grad.abs().sum() > 0 and loss.anchors.grad is None
    l_proto.backward()
    assert loss.anchors.grad.abs().sum() > 0


def test_frozen_anchors_are_orthonormal_and_not_trained():
    loss = SemanticAnchorLoss(32)
    e = loss.anchors
    assert not e.requires_grad
    torch.testing.assert_close(e @ e.T, torch.eye(6), atol=1e-5, rtol=0)


def test_all_ignore_batch_gives_finite_zero_loss():
    criterion = CloudLULCLoss(16)
    labels = torch.full((1, 64, 64), IGNORE_INDEX)
    terms = criterion(torch.randn(1, 6, 64, 64, requires_grad=True), torch.randn(1, 16, 4, 4), labels)
    assert torch.isfinite(terms.total) and terms.total.item() == 0


def test_total_combines_weighted_terms():
    criterion = CloudLULCLoss(16, anchor_weight=0.5, learnable_anchors=True, proto_weight=0.25)
    logits, z, labels = torch.randn(2, 6, 64, 64), torch.randn(2, 16, 4, 4), _labels()
    terms = criterion(logits, z, labels)
    torch.testing.assert_close(terms.total, terms.ce + 0.5 * terms.anchor + 0.25 * terms.proto)
    torch.testing.assert_close(terms.ce, torch.nn.functional.cross_entropy(logits, labels))


def test_ce_ignores_ignore_index():
    criterion = CloudLULCLoss(16, anchor_weight=0.0)
    logits, labels = torch.randn(1, 6, 64, 64), _labels(1)
    masked = labels.clone()
    masked[:, :32] = IGNORE_INDEX
    expected = torch.nn.functional.cross_entropy(logits[..., 32:, :], labels[:, 32:])
    torch.testing.assert_close(criterion(logits, torch.zeros(1, 16, 4, 4), masked).total, expected)
