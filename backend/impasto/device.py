"""Device choice and the hardware facts the precision policy reads (``impasto.precision`` decides the dtypes)."""
from __future__ import annotations

import functools
import logging
import os

import torch

log = logging.getLogger(__name__)


def default_device() -> torch.device:
    """``IMPASTO_DEVICE`` if set, else the first CUDA device, else the CPU."""
    want = os.environ.get("IMPASTO_DEVICE")
    if want:
        return torch.device(want)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@functools.lru_cache(maxsize=None)
def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AVX512-BF16 or AMX-BF16)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
        return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        return False
