"""Gram style loss (Gatys et al.): squared distance of feature Gram matrices normalized by C·H·W."""
from __future__ import annotations

import torch

from ..vgg import gram_matrix


def gram_targets(features: dict[str, torch.Tensor], layers: list[str] | tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The style image's Gram matrices (fp32, detached)."""
    return {l: gram_matrix(features[l]).detach() for l in layers}


def gram_style_loss(features: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                    weights: dict[str, float] | None = None) -> torch.Tensor:
    """Σ_l w_l · mean((G(F_l) − G_l^target)²) over the target layers (w_l = 1 by default)."""
    total = 0.0
    for layer, g_target in targets.items():
        w = 1.0 if weights is None else weights.get(layer, 1.0)
        total = total + w * (gram_matrix(features[layer]) - g_target).pow(2).mean()
    return total
