"""Hierarchical training of a ``MultimodalTransferNet`` for one style (or one painting per level).

Read top to bottom:

1. ``TrainConfig``   -- every setting, stored in checkpoints and in the final model file.
2. ``ContentPhotos`` -- training photos in memory; random crops with scale jitter and flips, chosen from a seed and
   the step number, so a resumed run draws exactly the images the interrupted one would have.
3. ``StyleTargets``  -- VGG Gram matrices of the painting(s) at 256 / 512 / 1024 px (short side), one per level.
4. ``level_loss`` / ``hierarchical_loss`` -- L_H = sum_k lambda_k (alpha L_content + beta_k L_style + tv), with
   lambda = 1, 0.5, 0.25; the content target of a level is the photo at that level's size.  All subnets receive
   the gradients of their own and of every later output (one Adam over the whole stack).
5. ``train``         -- the loop, in two phases:
   * phase "style": the style subnet alone at 256 px with small batches (cheap: it learns the painting's colours
     and strokes, which is most of the look);
   * phase "hierarchical": the whole stack on 512 px crops (style at 256, enhance at 512; the refine level on a
     random 512 window of the x2-upsampled enhance output, the scale it sees at test time, against the 1024 Gram;
     ``refine_window=False`` is the paper's and the first models' way: refine on the enhance output itself).
   Checkpoints every N steps (atomic write) and on exit; ``resume=True`` continues from the last one.
   With ``init_from`` (``warm_start``) every subnet starts from a trained model's weights, not random ones.
   Precision: ``impasto.precision``'s policy for training (bf16 + channels_last where the CPU or GPU has native
   bf16; fp16 with dynamic loss scaling on older tensor-core GPUs; fp32 otherwise; ``IMPASTO_PRECISION``).
   Under ``torchrun`` (WORLD_SIZE > 1) it wraps the trained module in DistributedDataParallel (gloo on CPU,
   NCCL on CUDA); each rank draws different photos; rank 0 writes checkpoints and the model file.

The paper trains ~10k iterations at batch 1 on COCO on a GPU (minutes to an hour there).  The defaults here are
sized for a 2-core CPU (about 90 minutes): see ``cpu_schedule`` and docs/mt.md.
"""
from __future__ import annotations

import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from PIL import Image

from ...device import default_device
from ...errors import ImpastoError
from ...precision import loss_scaler, policy
from ...vgg import get_vgg, gram_matrix
from .network import LEVELS, MTConfig, MultimodalTransferNet, resize, window_of
from .warm_start import init_from_model

log = logging.getLogger(__name__)

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
CONTENT_LAYER = "relu4_2"      # default; FeliMe's port uses relu2_1 (tighter content), TrainConfig.content_layer
LAMBDAS = (1.0, 0.5, 0.25)
STYLE_TARGET_SIZES = (256, 512, 1024)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


class TrainError(ImpastoError):
    """Bad training input (no photos, unreadable painting, incompatible checkpoint)."""


# ------------------------------------------------------------------------------------------------ 1. settings

@dataclass
class TrainConfig:
    name: str
    style_paths: tuple[str, str, str]            # painting per level (style, enhance, refine); usually all equal
    content_dir: str
    out_dir: str = "scratch/mt_train"           # checkpoints land in out_dir/name/
    style_steps: int = 1200                     # phase 1: style subnet alone at 256
    hier_steps: int = 400                       # phase 2: whole stack at 512
    style_batch: int = 4
    hier_batch: int = 1
    crop: int = 512                             # phase-2 content size (phase 1 uses crop // 2)
    lr: float = 1e-3
    style_lr_in_hier: float = 2e-4              # the already-trained style subnet moves slowly in phase 2
    content_weight: float = 1.0
    style_weights: tuple[float, float, float] = (5.0, 2.0, 5.0)   # beta per level, level_style_weights; (Gram normalised by C*H*W)
    tv_weight: float = 1e-6
    checkpoint_every: int = 100
    seed: int = 0
    net: dict = field(default_factory=lambda: MTConfig().to_dict())
    max_photos: int = 0                         # 0 = all photos in content_dir
    photo_cache_side: int = 640                 # photos are kept in memory with this short side
    style_sizes: tuple[int, int, int] = STYLE_TARGET_SIZES   # painting short side per level (tests use smaller)
    content_layer: str = CONTENT_LAYER          # VGG layer of the content loss (see CONTENT_LAYER)
    init_from: str = ""                         # model file to start from instead of random weights (warm_start)
    refine_window: bool = True                  # refine level trained at its test-time scale (module docstring)

    @property
    def total_steps(self) -> int:
        return self.style_steps + self.hier_steps

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def cpu_schedule() -> dict:
    """The defaults above: 1200 style steps at 256 batch 4 (~0.9 s/step with bf16 on 2 idle cores, ~1.8 s with
    one core) and 400 hierarchical steps at 512 batch 1 (~2.5 s/step; ~3 s on one core) -- about 35 minutes of
    2 idle cores, or ~55 minutes each for two styles trained side by side.  On a GPU use the paper's schedule
    instead: style_steps=0, hier_steps=10000, hier_batch=4, style_lr_in_hier=lr."""
    return {"style_steps": TrainConfig.style_steps, "hier_steps": TrainConfig.hier_steps}


def warm_schedule() -> dict:
    """The default schedule from a trained model (``--init-from``): no style phase, 400 hierarchical steps (about
    20 minutes of 2 idle bf16 cores).  The style phase alone does not move the 1024 output (a scratch run stayed at
    strength 1.06 through its 1200 style steps), while from a trained model the whole stack reaches the
    60-minute-from-scratch strength within 10 minutes (docs/mt.md, "Warm starts: measured")."""
    return {"style_steps": 0, "hier_steps": 400}


def split_steps(total: int) -> tuple[int, int]:
    """A total step budget split like the CPU schedule (3 style-subnet steps per hierarchical step)."""
    style = round(total * 3 / 4)
    return style, total - style


def level_style_weights(beta: float) -> tuple[float, float, float]:
    """One style weight -> per level (beta, 0.4 beta, beta).  The enhance level starts from the identity and only
    adds texture at its scale (at equal weight it overwrote content, docs/mt.md, hierarchy bench); the refine
    level, trained at its test-time scale, gets the style level's weight: at 0.2 beta it learned to restore the
    photo's statistics and took most of the style back (docs/mt.md, "The refine recipe on every shipped style")."""
    return beta, 0.4 * beta, beta


# ------------------------------------------------------------------------------------------------ 2. photos

def _load_rgb(path: Path, short_side: int | None = None) -> torch.Tensor:
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if short_side:
                s = short_side / min(im.size)
                if s < 1:
                    im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.BICUBIC)
            arr = np.asarray(im, dtype=np.uint8).copy()
    except (OSError, ValueError) as e:
        raise TrainError(f"cannot read image {path}: {e}") from e
    return torch.from_numpy(arr).permute(2, 0, 1)   # uint8 (3, H, W)


class ContentPhotos:
    """Training photos kept as uint8 tensors; ``batch(step, rank, n, size)`` draws a deterministic random batch."""

    def __init__(self, directory: str | Path, cache_side: int = 640, max_photos: int = 0):
        directory = Path(directory)
        if not directory.is_dir():
            raise TrainError(f"content directory {directory} does not exist")
        paths = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if max_photos:
            paths = paths[:max_photos]
        if not paths:
            raise TrainError(f"no photos (*.jpg, *.png, ...) in {directory}")
        self.photos = [_load_rgb(p, cache_side) for p in paths]
        log.info("loaded %d training photos from %s", len(self.photos), directory)

    def __len__(self) -> int:
        return len(self.photos)

    def batch(self, seed: int, step: int, rank: int, n: int, size: int) -> torch.Tensor:
        """(n, 3, size, size) float [0,1]: random photo, random scale (crop covers 50-100 % of the short side),
        random position, random horizontal flip."""
        rng = random.Random(f"{seed}/{step}/{rank}")
        out = []
        for _ in range(n):
            img = self.photos[rng.randrange(len(self.photos))]
            h, w = img.shape[1:]
            side = max(8, round(min(h, w) * rng.uniform(0.5, 1.0)))
            y, x = rng.randint(0, h - side), rng.randint(0, w - side)
            crop = img[:, y:y + side, x:x + side].unsqueeze(0).float() / 255.0
            crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False,
                                 antialias=side > size)
            if rng.random() < 0.5:
                crop = crop.flip(-1)
            out.append(crop)
        return torch.cat(out).clamp_(0, 1)


# ------------------------------------------------------------------------------------------------ 3. style targets

def load_style_image(path: str | Path, short_side: int) -> torch.Tensor:
    """(1, 3, h, w) float [0,1] with the given short side (up- or down-sampled)."""
    img = _load_rgb(Path(path)).unsqueeze(0).float() / 255.0
    h, w = img.shape[-2:]
    s = short_side / min(h, w)
    return F.interpolate(img, size=(round(h * s), round(w * s)), mode="bicubic", align_corners=False,
                         antialias=s < 1).clamp_(0, 1)


@torch.no_grad()
def style_grams(vgg, image: torch.Tensor) -> dict[str, torch.Tensor]:
    feats = vgg(image, STYLE_LAYERS)
    return {k: gram_matrix(v)[0] for k, v in feats.items()}


def painting_grams(path: str | Path, short_side: int = STYLE_TARGET_SIZES[2]) -> dict[str, torch.Tensor]:
    """A painting's Grams as a model file stores them (the refine level's target); ``warm_start.nearest_style``
    compares these."""
    return style_grams(get_vgg("cpu"), load_style_image(path, short_side))


class StyleTargets:
    """Gram targets per level: the level's painting at 256 / 512 / 1024 short side."""

    def __init__(self, vgg, style_paths: tuple[str, str, str], device: torch.device,
                 sizes: tuple[int, int, int] = STYLE_TARGET_SIZES):
        self.grams: list[dict[str, torch.Tensor]] = []
        for path, size in zip(style_paths, sizes):
            self.grams.append(style_grams(vgg, load_style_image(path, size).to(device)))


# ------------------------------------------------------------------------------------------------ 4. losses

def total_variation(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def level_loss(vgg, output: torch.Tensor, content: torch.Tensor, grams: dict[str, torch.Tensor],
               cfg: TrainConfig, level: int) -> tuple[torch.Tensor, float, float]:
    """alpha * L_content + beta_k * L_style + tv; returns (loss, content part, style part) for logging."""
    cl = cfg.content_layer
    layers = STYLE_LAYERS + (cl,)
    out_f = vgg(output, layers)
    with torch.no_grad():
        target_f = vgg(content, (cl,))[cl]
    l_content = F.mse_loss(out_f[cl].float(), target_f.float())
    l_style = sum(F.mse_loss(gram_matrix(out_f[k]), grams[k].expand(output.shape[0], -1, -1)) for k in STYLE_LAYERS)
    c = cfg.content_weight * l_content
    s = cfg.style_weights[level] * l_style
    return c + s + cfg.tv_weight * total_variation(output.float()), c.item(), s.item()


def hierarchical_loss(vgg, outputs: list[torch.Tensor], content: torch.Tensor, targets: StyleTargets,
                      cfg: TrainConfig, refine_window: Optional[tuple[int, int]] = None
                      ) -> tuple[torch.Tensor, dict[str, float]]:
    """L_H = sum_k lambda_k * L_k over the given outputs; content targets are ``content`` at each output's size,
    or for a refine level run on a window (``refine_window``) the same window of the x2-upsampled content."""
    total = outputs[0].new_zeros((), dtype=torch.float32)
    logs: dict[str, float] = {}
    for k, out in enumerate(outputs):
        if k == 2 and refine_window is not None:
            target = window_of(content, refine_window)
        else:
            target = resize(content, tuple(out.shape[-2:]))
        loss, c, s = level_loss(vgg, out, target, targets.grams[k], cfg, k)
        total = total + LAMBDAS[k] * loss
        logs[f"{LEVELS[k]}_c"], logs[f"{LEVELS[k]}_s"] = c, s
    logs["total"] = total.item()
    return total, logs


# ------------------------------------------------------------------------------------------------ 5. the loop

@dataclass
class TrainProgress:
    step: int
    total_steps: int
    phase: str
    losses: dict
    seconds_per_step: float
    net: Optional[MultimodalTransferNet] = field(default=None, repr=False)   # the net being trained (snapshots)


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: torch.device) -> bool:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1). Returns True when distributed."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return True


def checkpoint_path(cfg: TrainConfig) -> Path:
    return Path(cfg.out_dir) / cfg.name / "checkpoint.pt"


def save_checkpoint(path: Path, step: int, net: MultimodalTransferNet, opt: torch.optim.Optimizer, phase: str,
                    cfg: TrainConfig) -> None:
    """Atomic: write to a temporary file, then rename (a kill -9 leaves the previous checkpoint intact).
    Tensors and plain types only, so it loads with ``weights_only=True``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"step": step, "phase": phase, "model": net.state_dict(), "optimizer": opt.state_dict(),
                "config": cfg.to_dict()}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure means the file is not a usable checkpoint
        raise TrainError(f"cannot read checkpoint {path}: {e}") from e


def _make_optimizer(net: MultimodalTransferNet, phase: str, cfg: TrainConfig) -> torch.optim.Optimizer:
    if phase == "style":
        return torch.optim.Adam(net.style.parameters(), lr=cfg.lr)
    return torch.optim.Adam([
        {"params": net.style.parameters(), "lr": cfg.style_lr_in_hier},
        {"params": list(net.enhance.parameters()) + list(net.refine.parameters()), "lr": cfg.lr},
    ])


def train(cfg: TrainConfig, *, resume: bool = False, device: Optional[torch.device] = None,
          on_progress: Optional[Callable[[TrainProgress], None]] = None,
          stop_after: Optional[int] = None) -> MultimodalTransferNet:
    """Train and return the net (unwrapped, on ``device``).  ``stop_after`` ends the run after that many steps of
    this call (tests use it to simulate an interruption)."""
    device = device or default_device()
    distributed = init_distributed(device)
    rank, world = _dist_info()
    torch.manual_seed(cfg.seed)              # same initial weights on every rank
    net = MultimodalTransferNet(MTConfig.from_dict(cfg.net))
    if cfg.init_from:                        # before a checkpoint: a style-phase checkpoint holds only the style subnet
        init_from_model(net, cfg.init_from)
    net = net.to(device)
    prec = policy(device, "training")
    net = net.to(memory_format=prec.memory_format)
    vgg = get_vgg(device)
    targets = StyleTargets(vgg, cfg.style_paths, device, cfg.style_sizes)
    photos = ContentPhotos(cfg.content_dir, cfg.photo_cache_side, cfg.max_photos)

    if rank == 0:
        log.info("training %s on %d process(es), device %s, precision %s (%s)", cfg.name, world, device,
                 prec.label, prec.reason)
    step, phase = 0, ("style" if cfg.style_steps > 0 else "hierarchical")
    ckpt_file = checkpoint_path(cfg)
    ckpt = None
    if resume and ckpt_file.exists():
        ckpt = load_checkpoint(ckpt_file)
        if ckpt["phase"] == "style":
            # phase 1 trains only the style subnet: the upper levels keep their (seeded) initial weights
            net.style.load_state_dict({k[len("style."):]: v for k, v in ckpt["model"].items()
                                       if k.startswith("style.")})
        else:
            net.load_state_dict(ckpt["model"])
        step, phase = int(ckpt["step"]), ckpt["phase"]
        if rank == 0:
            log.info("resuming %s from step %d (%s phase)", cfg.name, step, phase)
    scaler = loss_scaler(device, "training")
    done_this_call = 0
    t_last = time.perf_counter()

    while step < cfg.total_steps:
        phase = "style" if step < cfg.style_steps else "hierarchical"
        opt = _make_optimizer(net, phase, cfg)
        if ckpt is not None and ckpt["phase"] == phase:
            opt.load_state_dict(ckpt["optimizer"])
        ckpt = None
        module = net.style if phase == "style" else net
        if distributed:
            module = torch.nn.parallel.DistributedDataParallel(module)
        module.train()
        phase_end = cfg.style_steps if phase == "style" else cfg.total_steps
        while step < phase_end:
            if phase == "style":
                x = photos.batch(cfg.seed, step, rank, cfg.style_batch, cfg.crop // 2).to(device)
            else:
                x = photos.batch(cfg.seed, step, rank, cfg.hier_batch, cfg.crop).to(device)
            x = x.contiguous(memory_format=prec.memory_format)
            window = None
            if phase == "hierarchical" and cfg.refine_window:
                draw = random.Random(f"{cfg.seed}/{step}/{rank}/window")   # a function of the step, as the photos
                window = (draw.randrange(x.shape[-2] + 1), draw.randrange(x.shape[-1] + 1))
            with prec.autocast():
                if phase == "style":
                    outputs = [module(x)]
                else:
                    outputs = module(x, levels=3, upsample_refine=False, refine_window=window)
                loss, logs = hierarchical_loss(vgg, outputs, x, targets, cfg, window)
            opt.zero_grad(set_to_none=True)
            scaler.backward(loss)
            scaler.step(opt)
            step += 1
            done_this_call += 1
            now = time.perf_counter()
            if on_progress is not None and rank == 0:
                on_progress(TrainProgress(step, cfg.total_steps, phase, logs, now - t_last, net))
            t_last = now
            last = step == cfg.total_steps
            stopping = stop_after is not None and done_this_call >= stop_after
            if step % cfg.checkpoint_every == 0 or last or stopping:
                if rank == 0:
                    save_checkpoint(ckpt_file, step, net, opt, phase, cfg)
                if distributed:
                    dist.barrier()
            if stopping:
                return net
    return net


# ------------------------------------------------------------------------------------------------ 6. export

def export_model(net: MultimodalTransferNet, cfg: TrainConfig, out_path: str | Path, *, title: str = "",
                 artist: str = "", year: str = "", step: int | None = None) -> Path:
    """Write the trained net as a style model file (fp16 safetensors + metadata, thumbnail of the painting)."""
    from .model_file import StyleMetadata, make_thumbnail, save_model

    paintings = [{"file": Path(p).name} for p in cfg.style_paths]
    if len(set(cfg.style_paths)) == 1:
        paintings = paintings[:1]
    thumb = make_thumbnail(load_style_image(cfg.style_paths[0], 128))
    training = cfg.to_dict()
    training.pop("out_dir", None)
    training["content_dir"] = Path(cfg.content_dir).name
    training["style_paths"] = [Path(p).name for p in cfg.style_paths]
    training["init_from"] = Path(cfg.init_from).stem if cfg.init_from else ""
    training["steps_done"] = cfg.total_steps if step is None else step
    training["lambdas"] = list(LAMBDAS)
    training["style_layers"] = list(STYLE_LAYERS)
    meta = StyleMetadata(name=cfg.name, title=title, artist=artist, year=str(year), paintings=paintings,
                         training=training, thumbnail_png=thumb)
    vgg = get_vgg("cpu")
    grams = style_grams(vgg, load_style_image(cfg.style_paths[2], cfg.style_sizes[2]))
    return save_model(out_path, net, meta, style_grams=grams)


def net_from_checkpoint(path: str | Path) -> tuple[MultimodalTransferNet, TrainConfig, int]:
    ckpt = load_checkpoint(Path(path))
    c = dict(ckpt["config"])
    c.setdefault("content_layer", CONTENT_LAYER)  # checkpoints from before the setting existed (its default then)
    c.setdefault("refine_window", False)          # likewise
    for k in ("style_paths", "style_weights", "style_sizes"):
        if k in c:
            c[k] = tuple(c[k])
    cfg = TrainConfig(**c)
    net = MultimodalTransferNet(MTConfig.from_dict(cfg.net))
    net.load_state_dict(ckpt["model"])
    return net.eval(), cfg, int(ckpt["step"])
