"""The buffer cache the trainer allocates through (cnnc._memory)."""
import threading

import numpy as np
import pytest

import cnnc
from cnnc._memory import cache_info, release, reuse_buffers, set_cache_limit

try:
    from numpy._core.multiarray import get_handler_name
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import get_handler_name

BIG = 1 << 16  # float32 elements: 256 KiB, above the caching threshold


def cached_blocks():
    return cache_info()[0]


def test_freed_block_is_reused_and_64_byte_aligned():
    with reuse_buffers():
        a = np.empty(BIG, np.float32)
        assert get_handler_name(a) == "cnnc_buffer_cache"
        assert a.ctypes.data % 64 == 0
        address = a.ctypes.data
        del a
        assert cached_blocks() == 1
        hits = cache_info()[2]
        b = np.empty(BIG, np.float32)
        assert b.ctypes.data == address
        assert cache_info()[2] == hits + 1
        assert cached_blocks() == 0
        c = np.empty(BIG + 1, np.float32)  # another size: a fresh block
        assert c.ctypes.data != address
    assert cached_blocks() == 0


def test_outside_the_block_numpy_allocates_as_usual():
    a = np.empty(BIG, np.float32)
    assert get_handler_name(a) != "cnnc_buffer_cache"


def test_arrays_outlive_the_block_and_are_not_cached_afterwards():
    with reuse_buffers():
        a = np.arange(BIG, dtype=np.float32)
    assert cached_blocks() == 0
    np.testing.assert_array_equal(a, np.arange(BIG, dtype=np.float32))
    del a
    assert cached_blocks() == 0  # freed outside any block: back to the C library


def test_zeros_are_zero_in_a_reused_dirty_block():
    with reuse_buffers():
        a = np.full(BIG, 7.0, np.float32)
        del a
        z = np.zeros(BIG, np.float32)
        assert not z.any()


def test_resize_keeps_the_contents():
    with reuse_buffers():
        a = np.arange(BIG, dtype=np.float32)
        a.resize(2 * BIG, refcheck=False)
        np.testing.assert_array_equal(a[:BIG], np.arange(BIG, dtype=np.float32))
        assert not a[BIG:].any()
        a.resize(BIG // 4, refcheck=False)
        np.testing.assert_array_equal(a, np.arange(BIG // 4, dtype=np.float32))
        small = np.arange(10, dtype=np.float64)
        small.resize(10000, refcheck=False)
        np.testing.assert_array_equal(small[:10], np.arange(10))


def test_nesting_drains_only_at_the_outermost_block():
    with reuse_buffers():
        with reuse_buffers():
            a = np.empty(BIG, np.float32)
            del a
        assert cached_blocks() == 1
    assert cached_blocks() == 0


def test_non_draining_block_keeps_the_cache_until_release():
    with reuse_buffers(drain=False):
        a = np.empty(BIG, np.float32)
        del a
    assert cached_blocks() == 1
    with reuse_buffers(drain=False):
        b = np.empty(BIG, np.float32)
        assert cached_blocks() == 0
        del b
    release()
    assert cache_info()[:2] == (0, 0)


def test_cache_limit_bounds_the_cached_bytes():
    set_cache_limit(3 * 4 * BIG)
    try:
        with reuse_buffers():
            arrays = [np.empty(BIG, np.float32) for _ in range(5)]
            del arrays
            assert cached_blocks() == 3
            assert cache_info()[1] == 3 * 4 * BIG
    finally:
        set_cache_limit(1 << 30)
    with pytest.raises(ValueError, match="limit_bytes"):
        set_cache_limit(-1)


def test_threads_share_the_cache_safely():
    errors = []

    def work(seed):
        try:
            rng = np.random.default_rng(seed)
            with reuse_buffers():
                for _ in range(200):
                    n = int(rng.integers(BIG, 2 * BIG))
                    a = np.full(n, seed, np.float32)
                    b = np.full(n, seed + 1, np.float32)
                    if not (a == seed).all() or not (b == seed + 1).all():
                        errors.append(seed)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cache_info()[:2] == (0, 0) and cache_info()[4] == 0


def test_fit_reuses_the_buffers_of_earlier_steps():
    cnnc.random.set_seed(0)
    model = cnnc.models.Sequential([
        cnnc.layers.Input((12, 12, 3)),
        cnnc.layers.Conv2D(16, 3, activation="relu"),
        cnnc.layers.Flatten(),
        cnnc.layers.Dense(4),
    ])
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(0)
    x = rng.random((64, 12, 12, 3), dtype=np.float32)
    y = rng.random((64, 4), dtype=np.float32)
    hits = cache_info()[2]
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    assert cache_info()[2] > hits  # later steps got their arrays from the cache
    assert cache_info()[:2] == (0, 0)  # and nothing is held after fit


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_can_allocate():
    import os
    with reuse_buffers():
        a = np.empty(BIG, np.float32)
        del a
        pid = os.fork()
        if pid == 0:  # the child: exit status 0 only if allocation works
            b = np.full(BIG, 3.0, np.float32)
            os._exit(0 if b.sum() == 3.0 * BIG else 1)
        _, status = os.waitpid(pid, 0)
    assert status == 0


# A child process starts from a fresh C heap. Freeing a 24 MiB array first
# raises glibc's adaptive mmap threshold to its size, so the later 8 MiB
# arrays come from the heap, where a 16 KiB block allocated after them
# keeps the heap from shrinking when they are freed.
_HEAP_CHILD = r"""
import json, sys
import numpy as np
from cnnc._memory import StepArena, reuse_buffers

def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024

np.ones(6 << 20, np.float32)
what = sys.argv[1]
if what == "arena":
    arena = StepArena()
    with reuse_buffers(), arena.step():
        blocks = [np.ones(2 << 20, np.float32) for _ in range(12)]
        pin = np.ones(4096, np.float32)
        before = rss()
        del blocks
        freed = before - rss()
else:
    from cnnc import optimizers
    from cnnc.layers.base import Weight
    weights = [Weight(f"w{i}", np.ones(2 << 20, np.float32)) for i in range(12)]
    pin = np.ones(4096, np.float32)
    before = rss()
    optimizers.SGD(0.1).build(weights)
    freed = before + 96 * 2**20 - rss()  # the flat copy is 96 MiB
print(json.dumps({"freed": freed}))
"""


@pytest.mark.skipif(__import__("platform").libc_ver()[0] != "glibc",
                    reason="reproduces glibc's heap behaviour")
@pytest.mark.parametrize("what", ["arena", "optimizer"])
def test_freed_step_blocks_and_packed_weights_leave_the_process(what):
    """A recorded step's blocks (the arena's first step) and the per-weight
    arrays an optimizer packs into its flat buffers give their 96 MiB back
    to the system when freed, instead of staying resident in the C heap."""
    import json
    import subprocess
    import sys
    import tempfile
    out = subprocess.run([sys.executable, "-c", _HEAP_CHILD, what], capture_output=True,
                         text=True, timeout=120, cwd=tempfile.gettempdir())
    assert out.returncode == 0, out.stderr[-3000:]
    freed = json.loads(out.stdout.strip().splitlines()[-1])["freed"]
    assert freed > 80 * 2**20, freed / 2**20
