"""Training losses: supervised contrastive (stage 1) and CDNet's cluster loss (stage 2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def supervised_contrastive_loss(embeddings: torch.Tensor, labels: torch.Tensor,
                                temperature: float = 0.07) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al., 2020) on cosine similarities.

    For each anchor with at least one positive (same label, not itself): the mean over its positives of
    ``−log(exp(s_ap / τ) / Σ_{k ≠ a} exp(s_ak / τ))``; averaged over those anchors (0 when there are none).
    """
    z = F.normalize(embeddings.float(), dim=1)
    logits = z @ z.T / temperature
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    counts = positives.sum(1)
    has_positive = counts > 0
    if not has_positive.any():
        return embeddings.sum() * 0.0
    per_anchor = -(log_prob.masked_fill(~positives, 0.0).sum(1)[has_positive] / counts[has_positive])
    return per_anchor.mean()


def cluster_loss(embeddings: torch.Tensor, labels: torch.Tensor, center_real: torch.Tensor,
                 center_fake: torch.Tensor, beta: float = 0.4) -> torch.Tensor:
    """CDNet eq. (2)–(3): hinge on the squared distance to the own centre, margin ``β·‖C_F − C_R‖²``,
    summed and divided by ``N · ‖C_F − C_R‖²``."""
    spread = (center_fake - center_real).pow(2).sum().clamp_min(1e-12)
    own = torch.where(labels[:, None] == 1, center_fake, center_real)
    hinge = torch.relu((embeddings - own).pow(2).sum(1) - beta * spread)
    return hinge.sum() / (len(embeddings) * spread)
