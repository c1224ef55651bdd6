"""impasto.host_memory: freed blocks reused inside an engine run, glibc's defaults restored after it."""
import os
import subprocess
import sys

import pytest

from impasto import host_memory


_BEHAVIOUR = """
import resource, torch
from impasto import host_memory

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = torch.ones(16 * 2 ** 20)          # 64 MiB, every page written
    t.add_(1)
    del t
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2 ** 20

pages = 64 * 2 ** 20 // resource.getpagesize()
outside = [faults() for _ in range(3)]
with host_memory.reuse_freed_memory():
    for _ in range(3):                    # the first ones grow the heap
        faults()
    inside = sorted(faults() for _ in range(7))
    base = rss_mib()
    blocks = [torch.ones(16 * 2 ** 20) for _ in range(4)]     # 256 MiB more, then freed: kept for reuse
    del blocks
    kept = rss_mib() - base
given_back = base + kept - rss_mib()
assert min(outside) > pages // 2, outside           # glibc: fresh pages every time (mmap'd, then unmapped)
assert inside[3] < pages // 10, inside              # inside: mostly the same heap blocks again (median)
assert kept >= 128 and given_back >= 0.75 * kept, (kept, given_back)   # kept inside, returned on leaving
"""


@pytest.mark.skipif(host_memory._libc() is None, reason="this C library has no mallopt/malloc_trim")
def test_inside_the_block_freed_pages_are_reused_and_after_it_they_go_back():
    """In a fresh process, so that the heap's state is not whatever the tests before left."""
    env = dict(os.environ, IMPASTO_REUSE_FREED_MEMORY="1", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", _BEHAVIOUR], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_nested_and_concurrent_users_share_one_setting(monkeypatch):
    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append(("mallopt", param, value))
            return 1

        def malloc_trim(self, pad):
            calls.append(("trim", pad))
            return 1

    monkeypatch.setattr(host_memory, "_libc", lambda: FakeLibc())
    monkeypatch.setenv("IMPASTO_REUSE_FREED_MEMORY", "1")
    with host_memory.reuse_freed_memory():
        with host_memory.reuse_freed_memory():
            assert len(calls) == 2                    # set once, by the first user
        assert len(calls) == 2                        # the inner one leaving restores nothing
    assert calls[0] == ("mallopt", host_memory._M_MMAP_MAX, 0)
    assert calls[2:] == [("mallopt", host_memory._M_MMAP_MAX, host_memory._GLIBC_MMAP_MAX),
                         ("mallopt", host_memory._M_TRIM_THRESHOLD, host_memory._GLIBC_TRIM_THRESHOLD),
                         ("trim", 0)]


def test_the_setting_is_restored_when_the_engine_raises(monkeypatch):
    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))

        def malloc_trim(self, pad):
            calls.append(("trim", pad))

    monkeypatch.setattr(host_memory, "_libc", lambda: FakeLibc())
    monkeypatch.setenv("IMPASTO_REUSE_FREED_MEMORY", "1")

    @host_memory.reusing_freed_memory
    def failing_engine():
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        failing_engine()
    assert calls[-1] == ("trim", 0) and host_memory._users == 0


def test_off_by_default_glibc_is_left_alone(monkeypatch):
    calls = []
    monkeypatch.setattr(host_memory, "_libc", lambda: calls.append("libc used"))
    monkeypatch.delenv("IMPASTO_REUSE_FREED_MEMORY", raising=False)
    with host_memory.reuse_freed_memory():
        pass
    assert calls == [] and not host_memory.enabled()
