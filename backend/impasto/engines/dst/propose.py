"""Proposing DST keypoints without running DST: what the editors' *Propose keypoints* asks for."""
from __future__ import annotations

import dataclasses
from typing import Optional

import torch
import torch.nn.functional as F

from impasto_protocol.options import StylizeOptions, scale_pairs

from .. import output_size
from ..base import CancelCheck, EngineError, Progress, ProgressFn, check_cancel, never_cancel, no_progress
from ..optim.common import prepare
from .engine import resolve_keypoints
from .keypoints import tensors_to_pairs


def propose_keypoints(content: torch.Tensor, style: torch.Tensor, options: StylizeOptions, *,
                      progress: ProgressFn = no_progress, cancel: CancelCheck = never_cancel,
                      device: Optional[torch.device] = None) -> dict:
    """The keypoint pairs a DST job with ``keypoint_mode="auto"`` and these ``options`` would use: NBB + cleaning
    only (seconds).

    The content is resized exactly as ``engines.stylize`` resizes it before the engine runs, and the pairs are
    mapped back to the content as given, so proposing and then running DST from the unchanged pairs as markers uses
    the same pairs as *Automatic*.  Returns ``{"keypoints": [KeypointPair], "targets": (K, 2) tensor}`` in pixels
    of the given content (targets: where DST pulls each content point, in the content's frame)."""
    options = dataclasses.replace(options, engine="dst", keypoint_mode="auto", keypoints=[]).validate()
    if style is None:
        raise EngineError("proposing keypoints needs a style image")
    out_h, out_w = output_size(content.shape[2], content.shape[3], options)
    kp_scale = (out_w / content.shape[3], out_h / content.shape[2])         # as ``stylize`` computes it
    back = (1 / kp_scale[0], 1 / kp_scale[1])
    if (out_h, out_w) != tuple(content.shape[2:]):
        content = F.interpolate(content, size=(out_h, out_w), mode="bicubic", align_corners=False,
                                antialias=True).clamp_(0, 1)
    check_cancel(cancel)
    device, _fmt, vgg = prepare(device)
    kp = resolve_keypoints(content[:, :3].float(), style[:, :3].float(), options, device=device, vgg=vgg,
                           progress=progress)
    check_cancel(cancel)
    pairs = tensors_to_pairs(kp.content, kp.style)
    if back != (1.0, 1.0):
        pairs = scale_pairs(pairs, back)
    targets = kp.targets.double() * torch.tensor(back, dtype=torch.float64)
    progress(Progress(1.0, f"{len(pairs)} keypoints"))
    return {"keypoints": pairs, "targets": targets.float().cpu()}
