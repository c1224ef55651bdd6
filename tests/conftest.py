"""Test-wide settings: CPU only, 2 threads, a private cache dir per session, deterministic algorithms."""
import os
import tempfile

os.environ.setdefault("IMPASTO_CACHE_DIR", os.path.join(tempfile.gettempdir(), "impasto-test-cache"))
os.environ.setdefault("IMPASTO_DEVICE", "cpu")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)
