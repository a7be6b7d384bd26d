"""Permute and the 1-D padding, cropping and
upsampling layers."""
import numpy as np
import pytest

import cnnc.layers as L
from layer_checks import (assert_close, check_config_round_trip, numeric_grads, run_layer,  # noqa: F401
                          seeded_weights)


def test_permute(rng):
    layer = L.Permute((3, 1, 2))
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    y, r, dx, _ = run_layer(layer, x, rng)
    np.testing.assert_array_equal(y, x.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(dx, r.transpose(0, 2, 3, 1))
    assert layer.compute_output_shape((None, 3, 4, 5)) == (None, 5, 3, 4)
    check_config_round_trip(layer, x)
    with pytest.raises(ValueError, match="permutation"):
        L.Permute((1, 1))


def test_sequence_padding_cropping_upsampling(rng):
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    pad = L.ZeroPadding1D((1, 2))
    y, r, dx, _ = run_layer(pad, x, rng)
    np.testing.assert_array_equal(y, np.pad(x, ((0, 0), (1, 2), (0, 0))))
    np.testing.assert_array_equal(dx, r[:, 1:6])
    assert pad.compute_output_shape((None, 5, 3)) == (None, 8, 3)
    crop = L.Cropping1D((1, 2))
    z, r2, dz, _ = run_layer(crop, y, rng)
    np.testing.assert_array_equal(z, x)
    np.testing.assert_array_equal(dz, np.pad(r2, ((0, 0), (1, 2), (0, 0))))
    up = L.UpSampling1D(3)
    u, r3, du, _ = run_layer(up, x, rng)
    np.testing.assert_array_equal(u, x.repeat(3, axis=1))
    (expected,) = numeric_grads(lambda x: x.repeat(3, axis=1), [x], r3)
    assert_close(du, expected, rtol=1e-5, atol=1e-5)
    for layer in (pad, crop, up):
        check_config_round_trip(layer)
    with pytest.raises(ValueError, match="leaves nothing"):
        L.Cropping1D(3)(L.Input((5, 2)))
    with pytest.raises(ValueError, match="rank 3"):
        L.UpSampling1D()(L.Input((5,)))
