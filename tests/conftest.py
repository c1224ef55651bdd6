"""Test-wide settings: CPU only, 2 threads, a private cache dir per session, deterministic algorithms."""
import os
import tempfile

os.environ.setdefault("IMPASTO_CACHE_DIR", os.path.join(tempfile.gettempdir(), "impasto-test-cache"))
os.environ.setdefault("IMPASTO_DEVICE", "cpu")
# Idle OpenMP threads sleep instead of spinning: tests run daemons and editors beside pytest on 2 cores, where
# spinning threads slowed every op 5-10x (measured by the DST work).  Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)
