"""The spatial transformer: ops.affine_grid / ops.grid_sample and their
backward against PyTorch and float64 finite differences of a NumPy
reference; the AffineGridGenerator and BilinearSampler layers in a model."""
import numpy as np
import pytest

import cnnc.layers as L
from cnnc import ops
from cnnc.models import Model, load_model
from layer_checks import check_config_round_trip, numeric_grads, seeded_weights  # noqa: F401


def ref_affine_grid(theta, h, w):
    """float64 reference: theta (N, 2, 3) -> grid (N, h, w, 2)."""
    xs = (2 * np.arange(w) + 1) / w - 1
    ys = (2 * np.arange(h) + 1) / h - 1
    base = np.stack(np.broadcast_arrays(xs[None, :], ys[:, None], np.ones((h, w))), -1)
    return np.einsum("hwk,nrk->nhwr", base, theta)


def ref_grid_sample(x, grid):
    """float64 reference of bilinear sampling with zero padding, NHWC."""
    n, h, w, c = x.shape
    u = ((grid[..., 0] + 1) * w - 1) / 2
    v = ((grid[..., 1] + 1) * h - 1) / 2
    u0, v0 = np.floor(u), np.floor(v)
    fx, fy = u - u0, v - v0
    out = np.zeros(grid.shape[:3] + (c,))
    for du, dv, wt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                       (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = (u0 + du).astype(int), (v0 + dv).astype(int)
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        vals = x[np.arange(n)[:, None, None], np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
        out += np.where(inside, wt, 0.0)[..., None] * vals
    return out


def _theta(rng, n, scale=0.3):
    return (np.eye(2, 3)[None] + scale * rng.standard_normal((n, 2, 3))).astype(np.float32)


@pytest.mark.parametrize("shape,out_hw", [((2, 5, 7, 3), (6, 4)), ((1, 9, 9, 70), (9, 9)),
                                          ((3, 4, 3, 1), (11, 13))])
def test_matches_torch_forward_and_backward(isa, threads, rng, shape, out_hw):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    n, h, w, c = shape
    x = rng.standard_normal(shape).astype(np.float32)
    theta = _theta(rng, n, 0.5)
    grid = ops.affine_grid(theta, (n,) + out_hw + (c,))
    t_theta = torch.tensor(theta, requires_grad=True)
    t_grid = F.affine_grid(t_theta, (n, c) + out_hw, align_corners=False)
    np.testing.assert_allclose(grid, t_grid.detach().numpy(), rtol=1e-5, atol=1e-6)

    y = ops.grid_sample(x, grid)
    t_x = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_()
    t_g = torch.tensor(grid, requires_grad=True)
    t_y = F.grid_sample(t_x, t_g, mode="bilinear", padding_mode="zeros", align_corners=False)
    np.testing.assert_allclose(y, t_y.permute(0, 2, 3, 1).detach().numpy(), rtol=1e-5, atol=1e-5)

    dy = rng.standard_normal(y.shape).astype(np.float32)
    t_y.backward(torch.tensor(dy).permute(0, 3, 1, 2))
    dx, dgrid = ops.grid_sample_backward(x, grid, dy)
    np.testing.assert_allclose(dx, t_x.grad.permute(0, 2, 3, 1).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dgrid, t_g.grad.numpy(), rtol=1e-4, atol=1e-3)
    t_grid.backward(torch.tensor(dgrid))
    np.testing.assert_allclose(ops.affine_grid_backward(dgrid), t_theta.grad.numpy(),
                               rtol=1e-4, atol=1e-3)


def test_backward_matches_float64_finite_differences(isa, rng):
    n, h, w, c, oh, ow = 2, 4, 5, 3, 3, 4
    x = rng.standard_normal((n, h, w, c))
    theta = _theta(rng, n, 0.6).astype(np.float64)
    grid = ref_affine_grid(theta, oh, ow)
    # keep every sample away from pixel boundaries, where the surface has kinks
    u = ((grid[..., 0] + 1) * w - 1) / 2
    v = ((grid[..., 1] + 1) * h - 1) / 2
    grid[..., 0] += np.where(np.abs(u - np.round(u)) < 0.05, 0.1 / w, 0.0)
    grid[..., 1] += np.where(np.abs(v - np.round(v)) < 0.05, 0.1 / h, 0.0)
    np.testing.assert_allclose(ops.grid_sample(x, grid), ref_grid_sample(x, grid), atol=2e-6)
    r = rng.standard_normal((n, oh, ow, c))
    want_dx, want_dgrid = numeric_grads(ref_grid_sample, [x, grid], r)
    dx, dgrid = ops.grid_sample_backward(x, grid, r)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dgrid, want_dgrid, rtol=1e-4, atol=1e-4)
    rg = rng.standard_normal((n, oh, ow, 2))
    (want_dtheta,) = numeric_grads(lambda t: ref_affine_grid(t, oh, ow), [theta], rg)
    np.testing.assert_allclose(ops.affine_grid_backward(rg), want_dtheta, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ops.affine_grid(theta, (n, oh, ow, c)), ref_affine_grid(theta, oh, ow),
                               atol=1e-6)


def test_identity_out_of_range_and_non_finite(rng):
    x = rng.standard_normal((2, 6, 5, 4)).astype(np.float32)
    grid = ops.affine_grid(np.tile(np.eye(2, 3, dtype=np.float32), (2, 1, 1)), x.shape)
    np.testing.assert_allclose(ops.grid_sample(x, grid), x, atol=1e-5)
    far = np.full((2, 3, 3, 2), 5.0, np.float32)
    far[0, 0, 0] = np.nan
    far[0, 0, 1] = [np.inf, 0.0]
    far[0, 0, 2] = [-1e30, 0.0]
    assert not ops.grid_sample(x, far).any()
    dx, dgrid = ops.grid_sample_backward(x, far, np.ones((2, 3, 3, 4), np.float32))
    assert not dx.any() and not dgrid.any()


def test_bad_arguments(rng):
    x = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    grid = np.zeros((2, 3, 3, 2), np.float32)
    with pytest.raises(ValueError, match=r"\(N, 2, 3\)"):
        ops.affine_grid(np.zeros((2, 3, 2)), (2, 4, 4, 3))
    with pytest.raises(ValueError, match="batch"):
        ops.affine_grid(np.zeros((2, 2, 3)), (3, 4, 4, 3))
    with pytest.raises(ValueError, match="positive"):
        ops.affine_grid(np.zeros((2, 2, 3)), (2, 0, 4, 3))
    with pytest.raises((ValueError, MemoryError), match="too big|allocate"):
        ops.affine_grid(np.zeros((2, 2, 3)), (2, 2**62, 2**3, 3))
    with pytest.raises(ValueError, match="batch"):
        ops.grid_sample(x, grid[:1])
    with pytest.raises(ValueError, match=r"\(N, H, W, 2\)"):
        ops.grid_sample(x, np.zeros((2, 3, 3, 3)))
    with pytest.raises(ValueError, match="images"):
        ops.grid_sample(x[0], grid)
    with pytest.raises(ValueError, match="dy"):
        ops.grid_sample_backward(x, grid, np.zeros((2, 3, 3, 2)))
    with pytest.raises(TypeError):
        ops.grid_sample(x.astype(object), grid)
    # read-only and non-contiguous inputs are accepted
    x.flags.writeable = False
    strided = np.zeros((2, 3, 6, 2), np.float32)[:, :, ::2]
    assert ops.grid_sample(x, strided).shape == (2, 3, 3, 3)


def _transformer_model(h=12, w=12, c=2):
    images = L.Input((h, w, c))
    loc = L.Flatten()(L.Conv2D(4, 3, strides=2, activation="relu")(images))
    head = L.Dense(6, kernel_initializer="zeros")
    theta = head(loc)
    head.bias.value[...] = [1, 0, 0, 0, 1, 0]  # start from the identity transform
    grid = L.AffineGridGenerator(h - 2, w - 2)(theta)
    sampled = L.BilinearSampler()([images, grid])
    out = L.Dense(3)(L.Flatten()(sampled))
    return Model(images, out)


def test_layers_match_torch_in_a_model(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    gen = L.AffineGridGenerator(5, 6)
    sampler = L.BilinearSampler()
    theta = _theta(rng, 3).reshape(3, 6)
    x = rng.standard_normal((3, 7, 8, 2)).astype(np.float32)
    grid = gen(theta, training=True)
    y = sampler([x, grid], training=True)
    t_theta = torch.tensor(theta, requires_grad=True)
    t_x = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_()
    t_y = F.grid_sample(t_x, F.affine_grid(t_theta.view(3, 2, 3), (3, 2, 5, 6), align_corners=False),
                        align_corners=False)
    np.testing.assert_allclose(y, t_y.permute(0, 2, 3, 1).detach().numpy(), rtol=1e-5, atol=1e-5)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    t_y.backward(torch.tensor(dy).permute(0, 3, 1, 2))
    dx, dgrid = sampler.backward(dy)
    dtheta = gen.backward(dgrid)
    assert dtheta.shape == (3, 6)
    np.testing.assert_allclose(dx, t_x.grad.permute(0, 2, 3, 1).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dtheta, t_theta.grad.numpy(), rtol=1e-4, atol=1e-3)
    check_config_round_trip(gen, theta)
    check_config_round_trip(sampler)
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        L.AffineGridGenerator(4, 4)(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"\[images, grid\]"):
        sampler(x)


def test_model_trains_and_round_trips(tmp_path, rng):
    model = _transformer_model()
    assert model.output_shape == (None, 3)
    x = rng.standard_normal((8, 12, 12, 2)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    model.compile("adam", "sparse_categorical_crossentropy")
    theta_layer = [l for l in model.layers if isinstance(l, L.Dense)][0]
    before = theta_layer.get_weights()[0].copy()
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    # the localization head learns: gradients reached it through the sampler and grid
    assert not np.array_equal(theta_layer.get_weights()[0], before)
    path = tmp_path / "stn.cnnc"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_one_channel_kernels_agree_bit_for_bit(rng):
    """With one channel, the forward pass and dgrid run per-ISA gather
    kernels: every path, and the several-channel driver, give the same
    results, with invalid points among them."""
    import cnnc
    n, h, w, oh, ow = 3, 17, 19, 23, 29       # widths that leave vector tails
    x = rng.standard_normal((n, h, w, 1)).astype(np.float32)
    grid = ops.affine_grid(_theta(rng, n, 0.8), (n, oh, ow, 1))
    flat = grid.reshape(-1)
    flat[::7], flat[::11], flat[::13] = np.nan, 1e30, -1.0
    dy = rng.standard_normal((n, oh, ow, 1)).astype(np.float32)
    previous = cnnc.isa()
    try:
        outs, dgrids = [], []
        for isa in ("scalar", "avx2", "avx512")[: ("scalar", "avx2", "avx512").index(cnnc.max_isa()) + 1]:
            cnnc.set_isa(isa)
            outs.append(ops.grid_sample(x, grid))
            dgrids.append(ops.grid_sample_backward(x, grid, dy, need_dx=False)[1])
    finally:
        cnnc.set_isa(previous)
    for out, dgrid in zip(outs[1:], dgrids[1:]):
        np.testing.assert_array_equal(out, outs[0])
        np.testing.assert_array_equal(dgrid, dgrids[0])
    np.testing.assert_array_equal(ops.grid_sample(np.repeat(x, 2, axis=-1), grid)[..., :1], outs[0])
    # two channels with dy on the first only: the same dgrid through the generic loop
    dy2 = np.concatenate([dy, np.zeros_like(dy)], axis=-1)
    _, dgrid2 = ops.grid_sample_backward(np.repeat(x, 2, axis=-1), grid, dy2, need_dx=False)
    np.testing.assert_allclose(dgrid2, dgrids[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(outs[0], np.nan_to_num(ref_grid_sample(
        x.astype(np.float64), np.where(np.isfinite(grid) & (np.abs(grid) < 1e3), grid, 9.0))),
        atol=1e-5)
