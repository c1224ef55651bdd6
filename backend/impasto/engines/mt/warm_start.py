"""Warm starts: a new style's training begins from an existing trained model instead of random weights.

A trained MT network already knows how to keep a photo's content and how to lay strokes at each level; a new
painting mostly changes palette and texture, which the network relearns far faster than from scratch.  The model to
start from is named by the artist, or chosen as the *nearest* installed style: the one whose stored painting Gram
matrices (``model_file.read_style_grams``, the 1024-level targets) are closest to the new painting's.
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F

from ...errors import ImpastoError
from .model_file import ModelFileError, load_model, read_net_config, read_style_grams
from .network import MTConfig, MultimodalTransferNet
from .styles import StyleInfo, find_style, list_styles

log = logging.getLogger(__name__)

NEAREST = "nearest"


class WarmStartError(ImpastoError):
    """The model to start from is missing, unreadable, or has other widths than the net being trained."""


def resolve_init_model(name_or_path: str) -> Path:
    """A style name (user or shipped) or a ``.safetensors`` path -> the model file's path."""
    info = find_style(name_or_path)
    if info is None:
        raise WarmStartError(f"no style or model file {name_or_path!r} to start training from "
                             "(impasto styles lists them)")
    if not info.ok:
        raise WarmStartError(f"cannot start from {name_or_path!r}: {info.error}")
    return info.path


def init_from_model(net: MultimodalTransferNet, path: str | Path) -> None:
    """Copy a model file's weights into ``net`` (same widths required)."""
    try:
        source, meta = load_model(path)
    except ModelFileError as e:
        raise WarmStartError(f"cannot start from {path}: {e}") from e
    if source.config != net.config:
        raise WarmStartError(f"cannot start from {meta.name!r}: its network widths {source.config.to_dict()} differ "
                             f"from the ones being trained {net.config.to_dict()}")
    net.load_state_dict(source.state_dict())
    log.info("starting from the weights of %s (%s)", meta.name, path)


def model_config(path: str | Path) -> MTConfig:
    """The network widths stored in a model file (a warm-started training uses them)."""
    try:
        return read_net_config(path)
    except ModelFileError as e:
        raise WarmStartError(f"cannot start from {path}: {e}") from e


def gram_distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Sum over the layers both have of the MSE between two sets of Gram matrices."""
    layers = sorted(set(a) & set(b))
    if not layers:
        raise WarmStartError("no common Gram layers to compare")
    return float(sum(F.mse_loss(a[k].float(), b[k].float()) for k in layers))


def nearest_style(painting_grams: dict[str, torch.Tensor],
                  candidates: list[StyleInfo] | None = None) -> tuple[StyleInfo, float]:
    """The installed style whose stored 1024-level painting Grams are closest to ``painting_grams`` (computed the
    same way: ``train.painting_grams``), with its distance."""
    best: tuple[StyleInfo, float] | None = None
    for info in candidates if candidates is not None else list_styles():
        if not info.ok:
            continue
        try:
            stored = read_style_grams(info.path)
        except ModelFileError:
            continue
        if not stored:
            continue
        d = gram_distance(painting_grams, stored)
        log.debug("style %s: Gram distance %.4g", info.name, d)
        if best is None or d < best[1]:
            best = (info, d)
    if best is None:
        raise WarmStartError("no installed style with stored painting Grams to start from; name one, or train "
                             "from scratch")
    return best
