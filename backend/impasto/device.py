"""Device choice and the mixed-precision policy shared by engines.

CUDA: autocast fp16 (AMP).  CPU: channels_last + bf16 autocast when the CPU has native bf16 (measured 2.5× faster
for VGG19 fwd+bwd at 512 on the AVX512-BF16 machines here), fp32 otherwise.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os

import torch

log = logging.getLogger(__name__)


def default_device() -> torch.device:
    want = os.environ.get("IMPASTO_DEVICE")
    if want:
        return torch.device(want)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@functools.lru_cache(maxsize=None)
def cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        return False


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The dtype engines autocast to on ``device`` (None = stay in fp32). IMPASTO_PRECISION=fp32 forces fp32."""
    if os.environ.get("IMPASTO_PRECISION", "").lower() == "fp32":
        return None
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return None


def autocast(device: torch.device, enabled: bool = True):
    dtype = autocast_dtype(device) if enabled else None
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def memory_format(device: torch.device) -> torch.memory_format:
    return torch.channels_last if autocast_dtype(device) is not None else torch.contiguous_format
