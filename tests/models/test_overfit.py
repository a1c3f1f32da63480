"""30 optimisation steps on a tiny generated batch drive the loss down (test_tiny, CPU)."""

from __future__ import annotations

import torch

from cloudlulc_edge.models import CloudLULCLoss, create_model


def _generated_batch(seed=0):
    gen = torch.Generator().manual_seed(seed)
    s2 = torch.rand(2, 12, 32, 32, generator=gen)
    s1 = torch.rand(2, 2, 32, 32, generator=gen)
    # Labels that depend on the inputs: class from NIR (B08) and VV brightness quantiles.
    score = s2[:, 7] * 3 + s1[:, 0] * 3
    labels = torch.bucketize(score, torch.quantile(score, torch.tensor([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6])))
    return s2, s1, labels


def test_thirty_steps_overfit_a_tiny_batch():
    model = create_model("test_tiny")
    criterion = CloudLULCLoss(model.config.token_dim)
    optimiser = torch.optim.AdamW([*model.parameters(), *criterion.parameters()], lr=1e-2)
    s2, s1, labels = _generated_batch()
    losses, ce = [], []
    for _ in range(30):
        out = model.forward_with_latent(s2, s1)
        terms = criterion(out.logits, out.latent, labels)
        optimiser.zero_grad()
        terms.total.backward()
        optimiser.step()
        losses.append(terms.total.item())
        ce.append(terms.ce.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.6 * losses[0], losses
    assert ce[-1] < 0.7 * ce[0], ce  # the segmentation term itself falls, not only the anchor term
