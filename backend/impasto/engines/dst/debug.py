"""Overlays for artists and reviewers: keypoints on both images, the warp as a deformed grid.

All functions take and return (1, 3, H, W) float tensors in [0, 1] (CPU); points are (K, 2) pixel coordinates
(x, y) in the image they are drawn on.  Pair i has the same colour and number in the content and the style image.
"""
from __future__ import annotations

import colorsys

import numpy as np
import torch
from PIL import Image, ImageDraw

from .tps import sample_backward


def pair_colour(i: int) -> tuple[int, int, int]:
    """Distinct, saturated colours: hues spaced by the golden ratio."""
    r, g, b = colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.9, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def _to_pil(img: torch.Tensor) -> Image.Image:
    arr = (img[0, :3].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def _to_tensor(im: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)


def draw_keypoints(image: torch.Tensor, points: torch.Tensor, targets: torch.Tensor | None = None, *,
                   numbers: bool = True, radius: float | None = None) -> torch.Tensor:
    """Discs at ``points`` (numbered when ``numbers``); with ``targets`` also a line from each point to its
    target and a small cross there (where the warp moves that point)."""
    im = _to_pil(image)
    w, h = im.size
    r = radius if radius is not None else max(3.0, max(w, h) / 90)
    draw = ImageDraw.Draw(im)
    pts = points.detach().double().cpu().tolist()
    tgs = targets.detach().double().cpu().tolist() if targets is not None else [None] * len(pts)
    for i, (p, t) in enumerate(zip(pts, tgs)):
        col = pair_colour(i)
        if t is not None:
            draw.line([tuple(p), tuple(t)], fill=col, width=max(1, int(r / 2)))
            draw.line([(t[0] - r, t[1] - r), (t[0] + r, t[1] + r)], fill=col, width=max(1, int(r / 2)))
            draw.line([(t[0] - r, t[1] + r), (t[0] + r, t[1] - r)], fill=col, width=max(1, int(r / 2)))
        draw.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], fill=col, outline=(0, 0, 0))
        if numbers:
            draw.text((p[0] + r + 1, p[1] - r - 1), str(i + 1), fill=col, stroke_width=1, stroke_fill=(0, 0, 0))
    return _to_tensor(im)


def grid_image(height: int, width: int, spacing: int | None = None, line: int = 1) -> torch.Tensor:
    """(1, 1, H, W) mask of a regular grid of lines (1 on the lines)."""
    spacing = spacing or max(8, max(height, width) // 16)
    g = torch.zeros(1, 1, height, width)
    g[:, :, spacing // 2::spacing, :] = 1.0
    g[:, :, :, spacing // 2::spacing] = 1.0
    if line > 1:
        g = torch.nn.functional.max_pool2d(g, line, stride=1, padding=line // 2)[:, :, :height, :width]
    return g


def draw_warp_grid(image: torch.Tensor, flow: torch.Tensor, colour: tuple[float, float, float] = (1.0, 0.1, 0.6),
                   opacity: float = 0.85) -> torch.Tensor:
    """``image`` with a regular grid deformed by the backward ``flow`` (1, 2, H, W; output(q) = input(q − flow))
    drawn over it: straight lines where nothing moves, bent ones where the warp acts."""
    h, w = image.shape[2:]
    if tuple(flow.shape[2:]) != (h, w):
        fh, fw = flow.shape[2:]
        flow = torch.nn.functional.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
        flow = flow * torch.tensor([w / fw, h / fh], dtype=flow.dtype).view(1, 2, 1, 1)
    grid = sample_backward(grid_image(h, w, line=max(1, max(h, w) // 256)).to(flow.dtype), flow.cpu())
    grid = grid.clamp(0, 1).float() * opacity
    col = torch.tensor(colour).view(1, 3, 1, 1)
    return image[:, :3].detach().float().cpu() * (1 - grid) + col * grid


# ------------------------------------------------------------------------------ transparent overlays (editor layers)

def keypoint_overlay(height: int, width: int, points: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(1, 4, H, W) RGBA, transparent but for each keypoint (a numbered disc in its pair's colour), a line to its
    target and a cross there: what ``draw_keypoints`` draws, on nothing, for a layer over the result."""
    im = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    r = max(3.0, max(width, height) / 90)
    draw = ImageDraw.Draw(im)
    for i, (p, t) in enumerate(zip(points.detach().double().cpu().tolist(), targets.detach().double().cpu().tolist())):
        col = (*pair_colour(i), 255)
        lw = max(1, int(r / 2))
        draw.line([tuple(p), tuple(t)], fill=col, width=lw)
        draw.line([(t[0] - r, t[1] - r), (t[0] + r, t[1] + r)], fill=col, width=lw)
        draw.line([(t[0] - r, t[1] + r), (t[0] + r, t[1] - r)], fill=col, width=lw)
        draw.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], fill=col, outline=(0, 0, 0, 255))
        draw.text((p[0] + r + 1, p[1] - r - 1), str(i + 1), fill=col, stroke_width=1, stroke_fill=(0, 0, 0, 255))
    arr = np.asarray(im, dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0)


def grid_overlay(height: int, width: int, flow: torch.Tensor, colour: tuple[float, float, float] = (1.0, 0.1, 0.6),
                 opacity: float = 0.85) -> torch.Tensor:
    """(1, 4, H, W) RGBA: the regular grid deformed by the backward ``flow`` (as ``draw_warp_grid``), transparent
    between the lines."""
    if tuple(flow.shape[2:]) != (height, width):
        fh, fw = flow.shape[2:]
        flow = torch.nn.functional.interpolate(flow.float(), size=(height, width), mode="bilinear",
                                               align_corners=False)
        flow = flow * torch.tensor([width / fw, height / fh], dtype=flow.dtype).view(1, 2, 1, 1)
    lines = sample_backward(grid_image(height, width, line=max(1, max(height, width) // 256)).to(flow.dtype),
                            flow.cpu()).clamp(0, 1).float()
    col = torch.tensor(colour, dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, height, width)
    return torch.cat([col, lines * opacity], dim=1)
