import numpy as np
import pytest

import cnnc


def test_version_and_settings():
    assert cnnc.__version__ == "0.1.0"
    assert cnnc.isa() in ("scalar", "avx2", "avx512")
    before = cnnc.get_num_threads()
    cnnc.set_num_threads(1)
    assert cnnc.get_num_threads() == 1
    cnnc.set_num_threads(before)
    with pytest.raises(ValueError, match="threads"):
        cnnc.set_num_threads(0)
    with pytest.raises(TypeError):
        cnnc.set_num_threads(1.5)
    with pytest.raises(ValueError, match="isa"):
        cnnc.set_isa("sse9")


def test_available_isas_follow_the_architecture():
    import platform
    paths = cnnc.available_isas()
    assert paths[0] == "scalar" and cnnc.max_isa() == paths[-1] and cnnc.isa() in paths
    other = "neon" if platform.machine() in ("x86_64", "AMD64") else "avx2"
    assert other not in paths
    with pytest.raises(Exception, match="not supported"):
        cnnc.set_isa(other)


def test_relu_matches_numpy(isa, threads, rng):
    for n in (1, 7, 1023, 1_000_003):
        x = rng.standard_normal(n).astype(np.float32)
        dy = rng.standard_normal(n).astype(np.float32)
        np.testing.assert_array_equal(cnnc.ops.relu(x), np.maximum(x, 0))
        np.testing.assert_array_equal(cnnc.ops.relu_backward(x, dy), np.where(x > 0, dy, 0))


def test_relu_input_checks():
    x = np.arange(12, dtype=np.float64).reshape(3, 4) - 5
    np.testing.assert_array_equal(cnnc.ops.relu(x), np.maximum(x, 0))  # converted
    np.testing.assert_array_equal(cnnc.ops.relu(x.T), np.maximum(x.T, 0))  # non-contiguous copied
    with pytest.raises(ValueError, match="empty"):
        cnnc.ops.relu(np.zeros((0, 3), np.float32))
    with pytest.raises(TypeError):
        cnnc.ops.relu(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="shape"):
        cnnc.ops.relu_backward(np.ones(3, np.float32), np.ones(4, np.float32))
    with pytest.raises(TypeError, match="float32"):
        cnnc.ops.relu(np.ones(3, np.float32), out=np.ones(3))
