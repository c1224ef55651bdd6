"""The precision policy: which dtype each kind of job computes in on each device, and how its gradients survive.

This module is the only place in Impasto that decides a compute dtype.  Engines, the tiler, the MT
trainer and the daemon ask it, per device and per job kind:

* ``inference``    -- forward passes only (MT stylization, tiled MT, NBB-style feature extraction);
* ``optimization`` -- pixels (and DST's warp) optimized through VGG19 (Gatys, STROTSS, DST, the tiled full-resolution
  pass);
* ``training``     -- network weights optimized (MT training).

Automatic choice (``IMPASTO_PRECISION`` unset or ``auto``):

============================  ==========  ==============================  ====================================
device                        inference   optimization / training         why
============================  ==========  ==============================  ====================================
CUDA, native bf16 (sm80+)     bf16        bf16                            fp32's exponent range, tensor cores
CUDA sm70-sm75 (no bf16)      fp16        fp16 + dynamic loss scaling     see below
CUDA before sm70              fp32        fp32                            no tensor cores; fp16 is slow there
CPU with AVX512-BF16 / AMX    bf16        bf16                            faster VGG fwd+bwd (docs/gpu.md)
other CPUs, other devices     fp32        fp32                            nothing faster is known to be safe
============================  ==========  ==============================  ====================================

Lower precision always comes with ``channels_last`` (what the CPU's bf16 kernels and the tensor cores want).

Why fp16 needs loss scaling here: the Gram loss is normalised by C·H·W and VGG's activations are Caffe scale, so
∂L/∂F is tiny -- below fp16's smallest normal, most of it below its smallest subnormal (the figures: docs/gpu.md).
Unscaled fp16 backprop rounds them to zero and the optimization silently stalls.  Multiplying the loss by S (2^24
to start) before ``backward`` lifts them into fp16's normal range; the gradients are divided by S again in fp32
before the optimizer sees them (``LossScaler``).  bf16 has fp32's exponent range and needs none.

``IMPASTO_PRECISION`` (or a ``mode=`` argument) overrides the automatic choice, for every kind:

* ``auto``           -- the table above (default);
* ``fp32``           -- no autocast;
* ``bf16``           -- bf16 autocast;
* ``fp16``           -- fp16 autocast, dynamic loss scaling for optimization and training (on the CPU this emulates
  the CUDA sm70-75 path: torch's CPU autocast supports float16; the tests run it so);
* ``fp16-unscaled``  -- fp16 autocast with no loss scaling: the negative control.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
from dataclasses import dataclass
from typing import Callable, Literal, Optional

import torch

from .device import cpu_has_bf16
from .errors import ImpastoError

log = logging.getLogger(__name__)

Kind = Literal["inference", "optimization", "training"]
KINDS: tuple[str, ...] = ("inference", "optimization", "training")
MODES: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16", "fp16-unscaled")
ENV = "IMPASTO_PRECISION"
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16, "fp16-unscaled": torch.float16}


class PrecisionError(ImpastoError):
    """An unknown precision mode, or one the device cannot run."""


@dataclass(frozen=True)
class LossScaling:
    """Dynamic loss scaling settings: the rule of ``torch.amp.GradScaler`` (back off on a non-finite gradient, grow
    after ``growth_interval`` finite steps), except that until the first finite step the scale backs off
    ``search_factor`` at a time, so a badly placed start costs a few steps, not dozens.

    The start is per job kind, from measured gradients.  Optimization (pixels through VGG): the Gatys gradients
    are 1e-10..1e-5 (module docstring); 2^24 puts the 10th percentile at relu3_3 at 512² (2e-10) at 3e-3 and the
    largest (1.4e-6) at 23, far from fp16's 65504.  Training (MT): the opposite -- its un-normalised Gram losses
    are ~1e9 at the start and the gradients overflow fp16 unless the loss is scaled *down* (finite at 2^-20, not at
    2^-10, measured on the tiny net at 32 px); 2^-8 reaches that range after three searched steps, and growth
    then finds the largest scale that fits."""
    init_scale: float = 2.0 ** 24
    growth_factor: float = 2.0
    backoff_factor: float = 0.5
    search_factor: float = 1.0 / 16
    growth_interval: int = 100
    min_scale: float = 2.0 ** -40
    max_scale: float = 2.0 ** 40
    closure_retries: int = 24          # re-evaluations of a closure (L-BFGS) after an overflow


SCALING = {"optimization": LossScaling(), "training": LossScaling(init_scale=2.0 ** -8, growth_interval=200)}


@dataclass(frozen=True)
class Precision:
    """The precision a job of ``kind`` runs in on a device of ``device_type``: what the policy decided and why."""
    device_type: str
    kind: str
    mode: str                                   # "fp32" | "bf16" | "fp16" | "fp16-unscaled" (resolved, never "auto")
    requested: str                              # what was asked: "auto" or the override
    reason: str

    @property
    def dtype(self) -> Optional[torch.dtype]:
        """The autocast dtype (None: fp32, no autocast)."""
        return _DTYPES[self.mode]

    @property
    def loss_scaling(self) -> bool:
        """True when backward must go through a ``LossScaler`` (fp16 with gradients)."""
        return self.mode == "fp16" and self.kind != "inference"

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.dtype is not None else torch.contiguous_format

    @property
    def label(self) -> str:
        """Short human/wire name: ``bf16``, ``fp16+loss-scaling``, ``fp16-unscaled``, ``fp32``."""
        if self.mode == "fp16":
            return "fp16+loss-scaling" if self.loss_scaling else "fp16"
        return self.mode

    def autocast(self):
        """A context manager running the enclosed ops in this precision (a null context for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)


# ------------------------------------------------------------------------------------------------- the decision

def requested_mode(mode: Optional[str] = None) -> str:
    """``mode`` if given, else ``IMPASTO_PRECISION``, else ``auto``; validated."""
    m = (mode if mode is not None else os.environ.get(ENV, "")).strip().lower() or "auto"
    if m not in MODES:
        raise PrecisionError(f"{ENV}={m!r} is not a precision; use one of {', '.join(MODES)}")
    return m


@functools.lru_cache(maxsize=None)
def cuda_capability(index: int) -> tuple[tuple[int, int], bool]:
    """((major, minor), native bf16) of CUDA device ``index``.  Native only: torch's default
    ``is_bf16_supported()`` also says yes where bf16 is merely emulated (slowly) on pre-sm80 parts."""
    cap = torch.cuda.get_device_capability(index)
    try:
        native = bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:                       # older torch: no including_emulation argument
        native = bool(torch.cuda.is_bf16_supported())
    return cap, native and cap >= (8, 0)


def _auto(device: torch.device, kind: str) -> tuple[str, str]:
    if device.type == "cuda":
        cap, bf16 = cuda_capability(device.index if device.index is not None else torch.cuda.current_device())
        sm = f"sm{cap[0]}{cap[1]}"
        if bf16:
            return "bf16", f"CUDA {sm} has native bf16"
        if cap >= (7, 0):
            return "fp16", f"CUDA {sm}: no native bf16, fp16 tensor cores" + (
                "" if kind == "inference" else " with dynamic loss scaling")
        return "fp32", f"CUDA {sm}: no tensor cores, fp16/bf16 would be slower or unsafe"
    if device.type == "cpu":
        if cpu_has_bf16():
            return "bf16", "CPU has native bf16 (AVX512-BF16/AMX)"
        return "fp32", "CPU without native bf16"
    return "fp32", f"{device.type}: no validated lower precision"


def policy(device: torch.device | str, kind: Kind = "optimization", mode: Optional[str] = None) -> Precision:
    """The precision for a ``kind`` job on ``device``; ``mode`` (else ``IMPASTO_PRECISION``) overrides the table."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    device = torch.device(device)
    requested = requested_mode(mode)
    if requested == "auto":
        resolved, reason = _auto(device, kind)
    else:
        resolved, reason = requested, f"{ENV}={requested}" if mode is None else f"precision={requested}"
        if resolved == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise PrecisionError(f"{device} cannot run bf16; use {ENV}=fp16 or fp32")
    return Precision(device.type, kind, resolved, requested, reason)


# ------------------------------------------------------------------------------------------------- call-site API

def autocast(device: torch.device | str, kind: Kind = "optimization", enabled: bool = True, mode: Optional[str] = None):
    """Autocast context for a ``kind`` job on ``device`` (a null context for fp32 or ``enabled=False``)."""
    if not enabled:
        return contextlib.nullcontext()
    return policy(device, kind, mode).autocast()


def autocast_dtype(device: torch.device | str, kind: Kind = "optimization",
                   mode: Optional[str] = None) -> Optional[torch.dtype]:
    """The autocast dtype of a ``kind`` job on ``device`` (None = fp32)."""
    return policy(device, kind, mode).dtype


def memory_format(device: torch.device | str, kind: Kind = "optimization",
                  mode: Optional[str] = None) -> torch.memory_format:
    """channels_last under lower precision, contiguous in fp32."""
    return policy(device, kind, mode).memory_format


class Autocasting:
    """``module`` called under the policy's autocast, everything else about it (attributes) passed through.

    For code that calls a network *and* does arithmetic of its own on the result in one place (``StrotssStyle``:
    VGG features, then 5000-sample covariances): only the network runs in reduced precision, the statistics in
    fp32 (covariances of Caffe-scale hypercolumns reach ~1e6, past fp16's 65504)."""

    def __init__(self, module, device: torch.device | str, kind: Kind = "optimization", mode: Optional[str] = None):
        self.module, self.precision = module, policy(device, kind, mode)

    def __call__(self, *args, **kwargs):
        with self.precision.autocast():
            return self.module(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.module, name)


def autocasting(module, device: torch.device | str, kind: Kind = "optimization", mode: Optional[str] = None):
    """``module`` wrapped so that each call runs under the policy's autocast (see ``Autocasting``)."""
    return Autocasting(module, device, kind, mode)


def autocast_reductions(device: torch.device | str, kind: Kind = "optimization", mode: Optional[str] = None):
    """Autocast for a block that also does long reductions of its own (covariances, Gram sums): the policy's
    autocast where its dtype keeps fp32's exponent range (bf16, as on the CPU: faster, and measured accurate
    enough), none under fp16, whose 65504 such sums overflow.  Pair it with ``autocasting(module)`` so that the
    network inside the block still runs in reduced precision."""
    p = policy(device, kind, mode)
    return p.autocast() if p.dtype == torch.bfloat16 else contextlib.nullcontext()


def product_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a long reduction over features of ``dtype`` (the Gram matrix FᵀF) is multiplied in, autocast off.

    bf16 stays bf16 (fp32 accumulation inside the kernel; 2.5x faster than converting on the CPU, 0.4 % relative
    error from rounding the output), fp64 stays fp64 (gradcheck); everything else -- fp16 above all, whose sums of
    squared Caffe-scale activations pass 65504 -- is multiplied in fp32."""
    return dtype if dtype in (torch.bfloat16, torch.float64) else torch.float32


def describe(device: torch.device | str, mode: Optional[str] = None) -> dict:
    """The policy in force on ``device`` for every kind, as plain data (``impasto doctor``, the daemon's hello)."""
    device = torch.device(device)
    out: dict = {"device": str(device), "requested": requested_mode(mode)}
    for kind in KINDS:
        p = policy(device, kind, mode)
        out[kind] = p.label
    p = policy(device, "optimization", mode)
    out["memory_format"] = "channels_last" if p.memory_format == torch.channels_last else "contiguous"
    out["reason"] = p.reason
    return out


# ------------------------------------------------------------------------------------------------- loss scaling

class LossScaler:
    """``backward`` / ``step`` for an optimization or training loop, scaling the loss where the policy says so.

    Disabled (bf16, fp32, fp16-unscaled, inference): ``backward(loss)`` is ``loss.backward()`` and ``step(opt)`` is
    ``opt.step()``.  Enabled (fp16): ``backward`` multiplies the loss by ``scale`` first; ``step`` divides the
    gradients by ``scale`` in place (fp32), and if any is inf/NaN (the scale was too big) skips that one optimizer
    step (the loop's step count and progress go on unchanged; the parameters just keep their values) and halves the
    scale; after ``growth_interval`` clean steps it doubles the scale.  With a closure (L-BFGS) an overflow re-runs
    the closure at half the scale instead, so no step is lost.  ``skipped`` counts the skipped steps.
    """

    def __init__(self, enabled: bool, settings: LossScaling = LossScaling()):
        self.enabled = enabled
        self.settings = settings
        self.scale = float(settings.init_scale) if enabled else 1.0
        self.skipped = 0
        self.overflows = 0
        self._good = 0
        self._found = False                 # a finite step has happened: back off gently from now on

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        if not self.enabled:
            loss.backward(**kwargs)
            return
        (loss.float() * self.scale).backward(**kwargs)

    def step(self, optimizer: torch.optim.Optimizer, closure: Optional[Callable[[], torch.Tensor]] = None):
        """``optimizer.step()`` (or ``optimizer.step(closure)``) on unscaled gradients; see the class docstring."""
        if not self.enabled:
            return optimizer.step() if closure is None else optimizer.step(closure)
        if closure is not None:
            return optimizer.step(self._wrap(optimizer, closure))
        if self._unscale(optimizer):
            optimizer.step()
            self._grow()
        else:
            self._skip(optimizer)
        return None

    # -- internals
    def _params(self, optimizer):
        return [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]

    def _unscale(self, optimizer) -> bool:
        """Divide the gradients by the scale; True when all are finite."""
        params = self._params(optimizer)
        if not params:
            return True
        inv = 1.0 / self.scale
        flags = []
        for p in params:
            p.grad.mul_(inv)
            flags.append(torch.isfinite(p.grad).all())
        return bool(torch.stack(flags).all())

    def _back_off(self) -> None:
        self.overflows += 1
        self._good = 0
        factor = self.settings.backoff_factor if self._found else self.settings.search_factor
        self.scale = max(self.settings.min_scale, self.scale * factor)
        log.debug("loss scaling: non-finite gradient, scale -> %g", self.scale)

    def _skip(self, optimizer) -> None:
        self._back_off()
        self.skipped += 1
        for p in self._params(optimizer):
            p.grad = None

    def _grow(self) -> None:
        self._found = True
        self._good += 1
        if self._good >= self.settings.growth_interval:
            self._good = 0
            self.scale = min(self.settings.max_scale, self.scale * self.settings.growth_factor)

    def _wrap(self, optimizer, closure):
        stepped = [False]

        def scaled_closure():
            for _ in range(self.settings.closure_retries + 1):
                loss = closure()
                if self._unscale(optimizer):
                    if not stepped[0]:
                        stepped[0] = True
                        self._grow()
                    return loss
                if not math.isfinite(float(loss.detach())):
                    break                   # the loss itself diverged: no scale helps
                self._back_off()
            self.skipped += 1               # no usable gradient: a zero one makes L-BFGS return without a step
            for p in self._params(optimizer):
                p.grad.zero_()
            return loss

        return scaled_closure


def loss_scaler(device: torch.device | str, kind: Kind = "optimization", mode: Optional[str] = None) -> LossScaler:
    """The ``LossScaler`` for a ``kind`` loop on ``device``: enabled exactly when the policy's mode is fp16."""
    p = policy(device, kind, mode)
    return LossScaler(p.loss_scaling, SCALING.get(kind, LossScaling()))
