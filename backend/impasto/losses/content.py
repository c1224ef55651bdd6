"""Content loss: mean squared error between feature maps (Gatys et al.)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def content_loss(features: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                 layers: list[str] | tuple[str, ...]) -> torch.Tensor:
    """Sum over ``layers`` of the mean squared difference of the features (computed in fp32)."""
    return sum(F.mse_loss(features[l].float(), targets[l].float()) for l in layers)
