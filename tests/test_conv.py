"""Convolutions against naive NumPy loops (float64), finite differences and
PyTorch, on every ISA path and at 1 and 2 threads."""
import numpy as np
import pytest

import cnnc
from team_runs import on_one_and_two_threads

# ---- float64 references ----------------------------------------------------------


def tf_same(length, k, s, d):
    out = -(-length // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - length, 0)
    return total // 2, total - total // 2


def resolve_pads(padding, size, kernel, strides, dilation):
    if padding == "valid":
        return ((0, 0), (0, 0))
    if padding == "same":
        return tuple(tf_same(size[i], kernel[i], strides[i], dilation[i]) for i in range(2))
    return padding


def ref_conv2d(x, w, b, strides, pads, dilation, groups):
    """y[n, oh, ow, o] = b[o] + sum x_padded[n, oh*s + kh*d, ow*s + kw*d, c] w[kh, kw, c, o]."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    n, h, wd, cin = x.shape
    kh, kw, cin_g, cout = w.shape
    (pt, pb), (pl, pr) = pads
    (sh, sw), (dh, dw) = strides, dilation
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow = (wd + pl + pr - (kw - 1) * dw - 1) // sw + 1
    cout_g = cout // groups
    y = np.zeros((n, oh, ow, cout))
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, i * dh: i * dh + (oh - 1) * sh + 1: sh, j * dw: j * dw + (ow - 1) * sw + 1: sw,
                           g * cin_g: (g + 1) * cin_g]
                y[..., g * cout_g: (g + 1) * cout_g] += patch @ w[i, j, :, g * cout_g: (g + 1) * cout_g]
    if b is not None:
        y += b
    return y


def ref_conv2d_grads(x, w, dy, strides, pads, dilation, groups):
    """(dx, dw, db) of sum(ref_conv2d * dy), by the same loops run backward."""
    x, w, dy = x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64)
    n, h, wd, cin = x.shape
    kh, kw, cin_g, cout = w.shape
    (pt, pb), (pl, pr) = pads
    (sh, sw), (dh, dw_) = strides, dilation
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    dxp = np.zeros_like(xp)
    dwt = np.zeros_like(w)
    oh, ow = dy.shape[1:3]
    cout_g = cout // groups
    for g in range(groups):
        cs, os_ = slice(g * cin_g, (g + 1) * cin_g), slice(g * cout_g, (g + 1) * cout_g)
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + (oh - 1) * sh + 1, sh)
                cols = slice(j * dw_, j * dw_ + (ow - 1) * sw + 1, sw)
                dxp[:, rows, cols, cs] += dy[..., os_] @ w[i, j, :, os_].T
                dwt[i, j, :, os_] = np.einsum("nhwc,nhwo->co", xp[:, rows, cols, cs], dy[..., os_])
    dx = dxp[:, pt: pt + h, pl: pl + wd]
    return dx, dwt, dy.sum(axis=(0, 1, 2))


def keras_deconv_length(size, k, s, d, padding, op):
    span = (k - 1) * d + 1
    if op is None:
        return size * s + max(span - s, 0) if padding == "valid" else size * s
    pad = 0 if padding == "valid" else span // 2
    return (size - 1) * s + span - 2 * pad + op


def ref_conv2d_transpose(x, w, b, strides, padding, output_padding, dilation, groups=1):
    """Scatter every input pixel through the kernel into the full output, then
    crop as TensorFlow does (the conv it transposes pads the TF way)."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    n, h, wd, cin = x.shape
    kh, kw, filt_g, _ = w.shape
    (sh, sw), (dh, dw) = strides, dilation
    full = np.zeros((n, (h - 1) * sh + (kh - 1) * dh + 1, (wd - 1) * sw + (kw - 1) * dw + 1, filt_g * groups))
    cin_g = cin // groups
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                full[:, i * dh: i * dh + (h - 1) * sh + 1: sh, j * dw: j * dw + (wd - 1) * sw + 1: sw,
                     g * filt_g: (g + 1) * filt_g] += \
                    x[..., g * cin_g: (g + 1) * cin_g] @ w[i, j, :, g * cin_g: (g + 1) * cin_g].T
    ops = output_padding if output_padding is not None else (None, None)
    out = []
    for axis, (size, k, s, d) in enumerate(zip((h, wd), (kh, kw), strides, dilation)):
        length = keras_deconv_length(size, k, s, d, padding, ops[axis])
        span = (k - 1) * d + 1
        top = 0 if padding == "valid" else max((size - 1) * s + span - length, 0) // 2
        out.append((top, length))
    (t, lh), (l, lw) = out
    y = np.zeros((n, lh, lw, full.shape[3]))
    crop = full[:, t: t + lh, l: l + lw]
    y[:, : crop.shape[1], : crop.shape[2]] = crop
    if b is not None:
        y += b
    return y


def assert_close(actual, expected, scale=None, rtol=2e-5):
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = scale if scale is not None else max(1.0, float(np.abs(expected).max()))
    err = np.abs(actual.astype(np.float64) - expected).max()
    assert err <= rtol * scale * 10, f"max error {err} (scale {scale})"


def check_gradients(rng, x, wt, y_shape, s, padding, pads, d, groups):
    """conv2d_backward for a random dy against the float64 reference;
    returns dy and the gradients."""
    dy = rng.standard_normal(y_shape).astype(np.float32)
    dx, dw, db = cnnc.ops.conv2d_backward(x, wt, dy, strides=s, padding=padding, dilation=d, groups=groups)
    rdx, rdw, rdb = ref_conv2d_grads(x, wt, dy, s, pads, d, groups)
    assert_close(dx, rdx)
    assert_close(dw, rdw)
    assert_close(db, rdb)
    return dy, dx, dw, db


# ---- Conv2D against the reference ---------------------------------------------------

# (batch, h, w, cin, cout, kernel, strides, padding, dilation, groups)
CONV2D_CASES = [
    (2, 9, 11, 5, 7, (3, 3), (1, 1), "valid", (1, 1), 1),
    (2, 9, 11, 5, 7, (3, 3), (1, 1), "same", (1, 1), 1),
    (3, 10, 9, 4, 6, (3, 3), (2, 2), "same", (1, 1), 1),           # stride 2, scatter backward
    (1, 10, 12, 4, 6, (4, 4), (2, 2), "same", (1, 1), 1),          # even kernel, batch 1: shared backward
    (2, 8, 8, 3, 5, (2, 2), (1, 1), "same", (1, 1), 1),            # even kernel, stride 1
    (2, 7, 13, 6, 8, (1, 1), (1, 1), "valid", (1, 1), 2),          # pointwise, groups
    (2, 7, 13, 6, 8, (1, 1), (2, 3), "valid", (1, 1), 1),          # strided 1x1 downsample
    (1, 6, 6, 3, 4, (1, 1), (1, 1), ((1, 0), (2, 1)), (1, 1), 1),  # padded 1x1
    (2, 12, 11, 4, 6, (3, 2), (1, 2), ((2, 0), (1, 3)), (2, 3), 2),  # asymmetric, dilation, groups
    (2, 9, 9, 6, 6, (3, 3), (1, 1), "same", (1, 1), 6),            # depthwise
    (2, 9, 8, 4, 12, (3, 3), (2, 1), "same", (2, 1), 4),           # depthwise, multiplier 3
    (2, 6, 7, 70, 70, (3, 3), (2, 1), "same", (1, 2), 70),         # depthwise, register block + tail
    (3, 30, 30, 1, 8, (3, 3), (1, 1), "valid", (1, 1), 1),         # single input channel
    (3, 48, 48, 3, 5, (3, 3), (1, 1), "same", (1, 1), 1),          # several im2col tiles
    (2, 5, 5, 3, 4, (3, 3), (1, 1), ((4, 3), (3, 4)), (1, 1), 1),  # padding beyond the kernel
    (1, 5, 7, 2, 3, (5, 7), (3, 2), "valid", (1, 1), 1),           # kernel = input
    (2, 13, 31, 4, 6, (3, 3), (2, 1), ((1, 2), (2, 1)), (1, 2), 2),  # wide rows, per-tap implicit GEMM
    (1, 9, 40, 16, 8, (3, 3), (1, 1), "same", (1, 1), 1),         # wide rows, stride-1 gather backward
    (2, 6, 33, 40, 36, (2, 3), (1, 1), ((0, 1), (3, 0)), (2, 1), 1),  # several weight panels, crop
    # Few input channels: forward tiles run all the taps at once (rows at
    # least one micro-tile wide), dW tiles stream over bands with db fused.
    (2, 9, 30, 1, 32, (3, 3), (1, 1), "valid", (1, 1), 1),         # MNIST-like, 1 channel
    (1, 7, 29, 1, 5, (3, 3), (1, 1), "same", (1, 1), 1),           # batch 1, odd width, Cout 5
    (2, 8, 31, 3, 17, (3, 3), (1, 1), "same", (1, 1), 1),          # CIFAR-like, Cout 17
    (2, 9, 37, 2, 33, (5, 5), (1, 1), "same", (1, 1), 1),          # 5x5, two weight panels
    (2, 11, 45, 3, 20, (7, 7), (2, 2), ((3, 3), (3, 3)), (1, 1), 1),  # ResNet-stem-like, 147 dW rows
    (2, 10, 40, 2, 17, (3, 3), (2, 1), "same", (2, 2), 1),         # dilation: per-tap tiles
    (2, 9, 33, 4, 34, (3, 3), (1, 1), "valid", (1, 1), 2),         # groups, 17 outputs per group
    (1, 6, 50, 3, 9, (1, 1), (1, 1), "valid", (1, 1), 1),          # pointwise on 3 channels
    (2, 8, 20, 6, 7, (7, 7), (1, 1), "same", (1, 1), 1),           # 294 dW rows in 25 register blocks
    (1, 6, 9, 70, 8, (3, 3), (1, 1), "same", (1, 1), 1),           # 630 dW rows: GEMM weight gradient
    (2, 5, 6, 40, 130, (2, 2), (1, 1), "valid", (1, 1), 1),        # 130 outputs, 40 inputs: GEMM dW
    (2, 6, 9, 40, 20, (1, 1), (2, 2), "valid", (1, 1), 1),         # 1x1 / 2 on 40 channels: GEMM dW
    (2, 5, 9, 30, 20, (3, 3), (1, 1), "valid", (1, 1), 1),         # narrow rows, 90 per kernel row: packed
    (2, 7, 8, 1, 6, (3, 3), (2, 1), ((2, 1), (0, 2)), (1, 1), 1),   # narrow rows, few channels: tiles
    (2, 5, 24, 12, 12, (2, 7), (1, 1), "valid", (1, 1), 1),        # 84 per kernel row: per-row GEMM calls
    (1, 3, 100, 3, 40, (3, 3), (1, 3), ((0, 0), (1, 1)), (1, 1), 1),  # one output row, wide stride
    (4, 34, 66, 3, 33, (3, 3), (1, 1), "same", (1, 1), 1),         # enough work for two threads
    (3, 20, 60, 4, 66, (5, 5), (1, 1), "same", (1, 1), 2),         # two threads, groups
]


def _case_arrays(rng, case):
    n, h, w, cin, cout, k, s, pad, d, groups = case
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    wt = rng.standard_normal(k + (cin // groups, cout)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    return x, wt, b


@pytest.mark.parametrize("case", CONV2D_CASES, ids=[str(i) for i in range(len(CONV2D_CASES))])
def test_conv2d_matches_reference(isa, threads, rng, case):
    n, h, w, cin, cout, k, s, padding, d, groups = case
    x, wt, b = _case_arrays(rng, case)
    pads = resolve_pads(padding, (h, w), k, s, d)
    expected = ref_conv2d(x, wt, b, s, pads, d, groups)
    y = cnnc.ops.conv2d(x, wt, b, strides=s, padding=padding, dilation=d, groups=groups)
    assert_close(y, expected)
    if padding == "same":
        assert y.shape[1:3] == (-(-h // s[0]), -(-w // s[1]))
    dy, _, dw, db = check_gradients(rng, x, wt, y.shape, s, padding, pads, d, groups)
    none_dx, dw2, db2 = cnnc.ops.conv2d_backward(x, wt, dy, strides=s, padding=padding, dilation=d,
                                                 groups=groups, need_dx=False)
    assert none_dx is None
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(db2, db)


# Depthwise (groups == channels) through the kernels' own paths: rows that
# are not whole 8-pixel tiles, channel tails and vector pairs, sliding kernel
# rows (stride == dilation) and the general tap lists, borders, multipliers.
# (batch, h, w, channels, multiplier, kernel, strides, padding, dilation)
DEPTHWISE_CASES = [
    (1, 11, 21, 37, 1, (3, 3), (1, 1), "same", (1, 1)),            # 2 tiles + 5, pair + tail vectors
    (2, 9, 19, 48, 1, (5, 5), (1, 1), "same", (1, 1)),             # 5x5 sliding rows
    (1, 10, 23, 20, 1, (7, 7), (1, 1), "same", (1, 1)),            # 7x7 sliding rows
    (2, 8, 17, 33, 1, (3, 5), (2, 2), ((1, 2), (0, 3)), (1, 1)),   # 3x5, stride 2, asymmetric
    (2, 9, 30, 21, 1, (3, 3), (2, 2), "same", (1, 1)),             # 3x3 stride 2, edge tiles both sides
    (1, 13, 26, 19, 1, (3, 3), (3, 3), "same", (1, 1)),            # stride 3: three backward phases
    (2, 12, 20, 24, 1, (3, 3), (1, 1), "same", (2, 2)),            # dilation 2, stride 1
    (1, 12, 20, 24, 1, (3, 3), (2, 2), "same", (2, 2)),            # stride == dilation == 2
    (2, 7, 9, 5, 3, (3, 3), (1, 2), "same", (1, 1)),               # multiplier 3
    (1, 6, 10, 16, 2, (5, 5), (1, 1), ((2, 1), (3, 0)), (2, 1)),   # multiplier 2, dilation, asymmetric
    (2, 9, 14, 17, 1, (1, 1), (1, 1), "valid", (1, 1)),            # 1x1
    (1, 3, 3, 40, 1, (3, 3), (1, 1), "valid", (1, 1)),             # one output pixel
    (1, 5, 5, 18, 1, (3, 3), (1, 1), ((4, 3), (3, 4)), (1, 1)),    # rows and columns without taps
    (1, 4, 30, 3, 1, (3, 3), (1, 1), "same", (1, 1)),              # fewer channels than a vector
]


@pytest.mark.parametrize("case", DEPTHWISE_CASES, ids=[str(i) for i in range(len(DEPTHWISE_CASES))])
def test_depthwise_matches_reference(isa, threads, rng, case):
    n, h, w, c, m, k, s, padding, d = case
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    wt = rng.standard_normal(k + (1, c * m)).astype(np.float32)
    b = rng.standard_normal(c * m).astype(np.float32)
    pads = resolve_pads(padding, (h, w), k, s, d)
    y = cnnc.ops.conv2d(x, wt, b, strides=s, padding=padding, dilation=d, groups=c)
    assert_close(y, ref_conv2d(x, wt, b, s, pads, d, c))
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, db = cnnc.ops.conv2d_backward(x, wt, dy, strides=s, padding=padding, dilation=d, groups=c)
    rdx, rdw, rdb = ref_conv2d_grads(x, wt, dy, s, pads, d, c)
    assert_close(dx, rdx)
    assert_close(dw, rdw)
    assert_close(db, rdb)


# Few output rows and enough channels for two threads (at least two work
# grains each): the forward pass splits the channels too, in groups of
# whole cache lines, the last group with a channel tail; stride 2 with odd
# sizes, 'same' and 'valid', dilation, a multiplier.
DEPTHWISE_SPLIT_CASES = [
    (1, 14, 14, 1300, 1, (3, 3), (2, 2), "same", (1, 1)),    # MobileNet's 7x7 stage, stride 2, tail of 4
    (1, 13, 15, 1500, 1, (3, 3), (2, 2), "valid", (1, 1)),   # odd sizes: 6 x 7 outputs
    (1, 7, 9, 1100, 1, (3, 3), (1, 1), "same", (1, 1)),      # 7 rows, stride 1
    (1, 13, 11, 1400, 1, (3, 3), (2, 2), "same", (2, 2)),    # dilation 2: the general tap lists
    (1, 7, 9, 620, 2, (3, 3), (1, 1), "same", (1, 1)),       # multiplier 2: groups of input channels
    (3, 5, 5, 1030, 1, (5, 5), (2, 2), "same", (1, 1)),      # 3 images of 3 rows, 5x5
]


@pytest.mark.parametrize("case", DEPTHWISE_SPLIT_CASES, ids=[str(i) for i in range(len(DEPTHWISE_SPLIT_CASES))])
def test_depthwise_forward_split_over_channels(isa, rng, case):
    """Against float64 NumPy (and PyTorch where installed) on 1 and 2
    threads, and the two thread counts bit for bit: each output is computed
    whole by one thread, whichever way the work is split."""
    n, h, w, c, m, k, s, padding, d = case
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    wt = rng.standard_normal(k + (1, c * m)).astype(np.float32)
    b = rng.standard_normal(c * m).astype(np.float32)
    pads = resolve_pads(padding, (h, w), k, s, d)
    expected = ref_conv2d(x, wt, b, s, pads, d, c)
    ys = on_one_and_two_threads(
        lambda: cnnc.ops.conv2d(x, wt, b, strides=s, padding=padding, dilation=d, groups=c))
    for y in ys:
        assert_close(y, expected)
    np.testing.assert_array_equal(ys[0], ys[1])
    torch = pytest.importorskip("torch")
    (pt, pb), (pl, pr) = pads
    xt = torch.nn.functional.pad(torch.from_numpy(x.astype(np.float64)).permute(0, 3, 1, 2), (pl, pr, pt, pb))
    wt_t = torch.from_numpy(wt.astype(np.float64)).permute(3, 2, 0, 1)
    yt = torch.nn.functional.conv2d(xt, wt_t, torch.from_numpy(b.astype(np.float64)), stride=s, dilation=d, groups=c)
    assert_close(ys[1], yt.permute(0, 2, 3, 1).numpy())


def test_depthwise_deterministic(rng):
    """Two threads, bias gradient fused with the weight gradient: bit-identical from run to run."""
    x = rng.standard_normal((3, 17, 19, 40)).astype(np.float32)
    w = rng.standard_normal((3, 3, 1, 40)).astype(np.float32)
    dy = rng.standard_normal((3, 17, 19, 40)).astype(np.float32)
    previous = cnnc.get_num_threads()
    try:
        cnnc.set_num_threads(2)
        first = cnnc.ops.conv2d_backward(x, w, dy, padding="same", groups=40)
        for _ in range(3):
            again = cnnc.ops.conv2d_backward(x, w, dy, padding="same", groups=40)
            for a, b in zip(first, again):
                np.testing.assert_array_equal(a, b)
    finally:
        cnnc.set_num_threads(previous)


def test_conv2d_no_bias_and_conversion(rng):
    x = rng.standard_normal((2, 6, 6, 3))
    w = rng.standard_normal((3, 3, 3, 4))
    y = cnnc.ops.conv2d(x, w)  # float64 input converted
    assert y.dtype == np.float32
    assert_close(y, ref_conv2d(x.astype(np.float32), w.astype(np.float32), None, (1, 1), ((0, 0), (0, 0)),
                               (1, 1), 1))
    xt = np.asfortranarray(x.astype(np.float32))
    np.testing.assert_allclose(cnnc.ops.conv2d(xt, w, strides=1, padding=1),
                               cnnc.ops.conv2d(x, w, strides=(1, 1), padding=((1, 1), (1, 1))), rtol=1e-6)


@pytest.mark.parametrize("shape", [(2, 9, 30, 1, 32, 3), (1, 6, 33, 3, 17, 5), (2, 5, 40, 2, 5, 7)])
def test_conv2d_few_channels_without_bias(isa, rng, shape):
    """The forward tiles start from zeros without a bias; dW without db."""
    n, h, wd, cin, cout, k = shape
    x = rng.standard_normal((n, h, wd, cin)).astype(np.float32)
    w = rng.standard_normal((k, k, cin, cout)).astype(np.float32)
    pads = resolve_pads("same", (h, wd), (k, k), (1, 1), (1, 1))
    y = cnnc.ops.conv2d(x, w, padding="same")
    assert_close(y, ref_conv2d(x, w, None, (1, 1), pads, (1, 1), 1))
    dy = rng.standard_normal(y.shape).astype(np.float32)
    _, rdw, rdb = ref_conv2d_grads(x, w, dy, (1, 1), pads, (1, 1), 1)
    _, dw, db = cnnc.ops.conv2d_backward(x, w, dy, padding="same", need_dx=False)
    assert_close(dw, rdw)
    assert_close(db, rdb)


# (batch, size, cin, cout, kernel, stride): Winograd (3x3 stride 1, db a
# separate pass), the tiles (db summed alongside dW), a 1x1 GEMM, im2col.
NO_BIAS_CASES = [(4, 14, 64, 64, 3, 1), (8, 28, 32, 64, 3, 2), (3, 9, 16, 24, 1, 1), (2, 11, 5, 7, 5, 2)]


@pytest.mark.parametrize("case", NO_BIAS_CASES, ids=["winograd", "tiled", "1x1", "5x5"])
def test_conv2d_backward_without_db(isa, threads, rng, case):
    """need_db=False returns no db and dW with the bits of need_db=True
    (which the reference checks), on every weight-gradient path."""
    n, size, cin, cout, k, s = case
    x = rng.standard_normal((n, size, size, cin)).astype(np.float32)
    w = (rng.standard_normal((k, k, cin, cout)) / k).astype(np.float32)
    pads = resolve_pads("same", (size, size), (k, k), (s, s), (1, 1))
    oh = -(-size // s)
    dy = rng.standard_normal((n, oh, oh, cout)).astype(np.float32)
    dx, dw, db = cnnc.ops.conv2d_backward(x, w, dy, strides=s, padding="same")
    dx0, dw0, db0 = cnnc.ops.conv2d_backward(x, w, dy, strides=s, padding="same", need_db=False)
    assert db0 is None
    np.testing.assert_array_equal(dx0, dx)
    np.testing.assert_array_equal(dw0, dw)
    _, rdw, rdb = ref_conv2d_grads(x, w, dy, (s, s), pads, (1, 1), 1)
    assert_close(dw, rdw)
    assert_close(db, rdb)
    _, dw1, db1 = cnnc.ops.conv1d_backward(x[:, 0], w[0], dy[:, 0], stride=s, padding="same", need_dx=False,
                                           need_db=False)
    assert db1 is None
    np.testing.assert_array_equal(dw1, cnnc.ops.conv1d_backward(x[:, 0], w[0], dy[:, 0], stride=s, padding="same",
                                                                need_dx=False)[1])


@pytest.mark.parametrize("use_bias", [False, True])
def test_conv2d_layer_asks_for_db_only_with_bias(rng, monkeypatch, use_bias):
    """A Conv2D asks for db only when it has a bias, and its kernel gradient
    is the full backward pass's, to the bit."""
    from cnnc import _kernels, layers
    asked = []
    full = _kernels.conv2d_backward

    def spy(*args, **kwargs):
        asked.append(kwargs.get("need_db", True))
        return full(*args, **kwargs)

    monkeypatch.setattr(_kernels, "conv2d_backward", spy)
    x = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    layer = layers.Conv2D(4, 3, padding="same", use_bias=use_bias)
    layer.build(x.shape)
    y = layer.forward(x, training=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    layer.backward(dy)
    assert asked == [use_bias]
    _, dw, db = full(x, layer.kernel.value, dy, padding="same")
    np.testing.assert_array_equal(layer.kernel.grad, dw)
    if use_bias:
        np.testing.assert_array_equal(layer.bias.grad, db)


@pytest.mark.parametrize("shape", [(5, 20, 20, 8, 16), (8, 40, 40, 1, 32)], ids=["gemm", "tiled"])
def test_backward_deterministic(rng, shape):
    """Fixed thread count: bit-identical gradients from run to run."""
    n, h, wd, cin, cout = shape
    x = rng.standard_normal((n, h, wd, cin)).astype(np.float32)
    w = rng.standard_normal((3, 3, cin, cout)).astype(np.float32)
    dy = rng.standard_normal((n, h // 2, wd // 2, cout)).astype(np.float32)
    previous = cnnc.get_num_threads()
    try:
        cnnc.set_num_threads(2)
        first = cnnc.ops.conv2d_backward(x, w, dy, strides=2, padding="same")
        for _ in range(3):
            again = cnnc.ops.conv2d_backward(x, w, dy, strides=2, padding="same")
            for a, b in zip(first, again):
                np.testing.assert_array_equal(a, b)
    finally:
        cnnc.set_num_threads(previous)


# ---- Conv1D -------------------------------------------------------------------------

# (batch, length, cin, cout, kernel, stride, padding, dilation, groups)
CONV1D_CASES = [
    (2, 17, 3, 5, 3, 1, "valid", 1, 1),
    (2, 17, 4, 6, 4, 2, "same", 1, 2),
    (3, 16, 4, 4, 3, 1, "causal", 2, 1),
    (1, 15, 6, 12, 5, 3, (3, 1), 1, 6),
    (2, 40, 1, 4, 1, 1, "valid", 1, 1),
    (2, 60, 2, 9, 5, 1, "same", 1, 1),  # wide rows, few channels: the tile kernels
]


def _pads_1d(padding, length, k, s, d):
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        return tf_same(length, k, s, d)
    if padding == "causal":
        return ((k - 1) * d, 0)
    return padding


@pytest.mark.parametrize("case", CONV1D_CASES, ids=[str(i) for i in range(len(CONV1D_CASES))])
def test_conv1d_matches_reference(isa, threads, rng, case):
    n, length, cin, cout, k, s, padding, d, groups = case
    x = rng.standard_normal((n, length, cin)).astype(np.float32)
    w = rng.standard_normal((k, cin // groups, cout)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    pads = ((0, 0), _pads_1d(padding, length, k, s, d))
    args = ((1, s), pads, (1, d), groups)
    expected = ref_conv2d(x[:, None], w[None], b, *args)[:, 0]
    y = cnnc.ops.conv1d(x, w, b, stride=s, padding=padding, dilation=d, groups=groups)
    assert_close(y, expected)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, db = cnnc.ops.conv1d_backward(x, w, dy, stride=s, padding=padding, dilation=d, groups=groups)
    rdx, rdw, rdb = ref_conv2d_grads(x[:, None], w[None], dy[:, None], *args)
    assert_close(dx, rdx[:, 0])
    assert_close(dw, rdw[0])
    assert_close(db, rdb)


# ---- Conv2DTranspose ------------------------------------------------------------------

# (batch, h, w, cin, filters, kernel, strides, padding, output_padding, dilation, groups)
TRANSPOSE_CASES = [
    (2, 5, 6, 4, 3, (3, 3), (2, 2), "valid", None, (1, 1), 1),
    (2, 5, 6, 4, 3, (3, 3), (2, 2), "same", None, (1, 1), 1),
    (1, 4, 5, 3, 5, (4, 4), (2, 2), "same", None, (1, 1), 1),   # batch 1: shared col2im
    (2, 4, 5, 3, 2, (3, 2), (3, 2), "valid", (2, 1), (1, 1), 1),
    (2, 4, 4, 2, 3, (3, 3), (2, 2), "same", (1, 0), (1, 1), 1),
    (2, 6, 5, 4, 6, (3, 3), (1, 1), "same", None, (2, 2), 2),   # stride 1: gather path, groups
    (2, 3, 3, 2, 3, (2, 2), (3, 3), "valid", None, (1, 1), 1),  # kernel < stride
    (2, 5, 5, 6, 4, (1, 1), (1, 1), "valid", None, (1, 1), 1),  # pointwise
    (2, 5, 6, 12, 12, (3, 3), (2, 2), "same", None, (1, 1), 12),  # depthwise: phased gather with bias
    (1, 4, 5, 8, 4, (3, 3), (3, 2), "valid", None, (1, 1), 4),   # depthwise, multiplier 2
    (2, 4, 20, 5, 3, (3, 3), (2, 2), "same", None, (1, 1), 1),  # 3 filters, wide: the tile kernels
]


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=[str(i) for i in range(len(TRANSPOSE_CASES))])
def test_conv2d_transpose_matches_reference(isa, threads, rng, case):
    n, h, w, cin, filters, k, s, padding, op, d, groups = case
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    wt = rng.standard_normal(k + (filters // groups, cin)).astype(np.float32)
    b = rng.standard_normal(filters).astype(np.float32)
    expected = ref_conv2d_transpose(x, wt, b, s, padding, op, d, groups)
    y = cnnc.ops.conv2d_transpose(x, wt, b, strides=s, padding=padding, output_padding=op, dilation=d,
                                  groups=groups)
    assert_close(y, expected)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dw, db = cnnc.ops.conv2d_transpose_backward(x, wt, dy, strides=s, padding=padding, output_padding=op,
                                                    dilation=d, groups=groups)
    # The gradients of the transposed convolution are the forward and
    # weight-gradient maps of the convolution it transposes (with dy as that
    # convolution's input), checked with the independent conv reference.
    pads, full = [], []
    for axis, (size, kk, ss, dd) in enumerate(zip((h, w), k, s, d)):
        length = y.shape[1 + axis]
        span = (kk - 1) * dd + 1
        top = 0 if padding == "valid" else max((size - 1) * ss + span - length, 0) // 2
        bottom = max((size - 1) * ss + span - length - top, 0)
        pads.append((top, bottom))
        full.append((length + top + bottom - span) // ss + 1)
    rdx = ref_conv2d(dy, wt, None, s, pads, d, groups)[:, :h, :w]
    assert_close(dx, rdx)
    x_full = np.zeros((n, full[0], full[1], cin), np.float32)
    x_full[:, :h, :w] = x
    _, rdw, _ = ref_conv2d_grads(dy, wt, x_full, s, pads, d, groups)
    assert_close(dw, rdw)
    assert_close(db, dy.astype(np.float64).sum(axis=(0, 1, 2)))


def test_conv2d_transpose_output_sizes():
    x = np.ones((1, 7, 5, 2), np.float32)
    for k, s, padding, op in [(3, 2, "valid", None), (3, 2, "same", None), (2, 3, "valid", None),
                              (3, 2, "valid", 1), (4, 2, "same", 1), (5, 3, "same", 2), (1, 2, "same", 1)]:
        w = np.ones((k, k, 3, 2), np.float32)
        y = cnnc.ops.conv2d_transpose(x, w, strides=s, padding=padding, output_padding=op)
        assert y.shape == (1, keras_deconv_length(7, k, s, 1, padding, op),
                           keras_deconv_length(5, k, s, 1, padding, op), 3)


# ---- finite differences (float64 reference forward) ----------------------------------------


def _numeric_grad(f, a, eps=1e-6):
    g = np.zeros_like(a)
    for idx in np.ndindex(*a.shape):
        old = a[idx]
        a[idx] = old + eps
        up = f()
        a[idx] = old - eps
        down = f()
        a[idx] = old
        g[idx] = (up - down) / (2 * eps)
    return g


@pytest.mark.parametrize("kind", ["conv2d", "depthwise", "conv1d", "transpose"])
def test_gradients_finite_differences(rng, kind):
    if kind == "conv1d":
        x = rng.standard_normal((2, 7, 4))
        w = rng.standard_normal((3, 2, 4))
        b = rng.standard_normal(4)
        opts = dict(stride=2, padding="same", dilation=1, groups=2)
        fwd, bwd = cnnc.ops.conv1d, cnnc.ops.conv1d_backward

        def objective_f64():
            pads = ((0, 0), tf_same(7, 3, 2, 1))
            return float((ref_conv2d(x[:, None], w[None], b, (1, 2), pads, (1, 1), 2)[:, 0] * dy64).sum())
    elif kind == "transpose":
        x = rng.standard_normal((1, 3, 4, 2))
        w = rng.standard_normal((3, 3, 3, 2))
        b = rng.standard_normal(3)
        opts = dict(strides=(2, 2), padding="same", output_padding=(1, 1))
        fwd, bwd = cnnc.ops.conv2d_transpose, cnnc.ops.conv2d_transpose_backward

        def objective_f64():
            return float((ref_conv2d_transpose(x, w, b, (2, 2), "same", (1, 1), (1, 1)) * dy64).sum())
    else:
        groups = 3 if kind == "depthwise" else 1
        x = rng.standard_normal((2, 6, 5, 3))
        w = rng.standard_normal((3, 2, 3 // groups, 6))
        b = rng.standard_normal(6)
        opts = dict(strides=(2, 1), padding="same", dilation=(1, 2), groups=groups)
        fwd, bwd = cnnc.ops.conv2d, cnnc.ops.conv2d_backward
        pads = resolve_pads("same", (6, 5), (3, 2), (2, 1), (1, 2))

        def objective_f64():
            return float((ref_conv2d(x, w, b, (2, 1), pads, (1, 2), groups) * dy64).sum())
    y = fwd(x, w, b, **opts)
    dy64 = rng.standard_normal(y.shape)
    dx, dw, db = bwd(x, w, dy64, **opts)
    assert_close(dx, _numeric_grad(objective_f64, x), rtol=1e-4)
    assert_close(dw, _numeric_grad(objective_f64, w), rtol=1e-4)
    assert_close(db, _numeric_grad(objective_f64, b), rtol=1e-4)


# ---- PyTorch on random configurations -----------------------------------------------------


def _torch():
    return pytest.importorskip("torch")


def test_conv2d_matches_torch_random(threads):
    torch = _torch()
    F = torch.nn.functional
    rng = np.random.default_rng(7)
    for trial in range(25):
        groups = int(rng.choice([1, 1, 2, 3]))
        cin = groups * int(rng.integers(1, 5))
        cout = groups * int(rng.integers(1, 5))
        if trial % 5 == 4:  # depthwise with a multiplier
            groups, cin = cin, cin
            cout = cin * int(rng.integers(1, 3))
        k = tuple(int(v) for v in rng.integers(1, 5, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        d = tuple(int(v) for v in rng.integers(1, 3, 2))
        pads = tuple(tuple(int(v) for v in rng.integers(0, 3, 2)) for _ in range(2))
        n = int(rng.integers(1, 4))
        h = int(rng.integers((k[0] - 1) * d[0] + 1, 14))
        w = int(rng.integers((k[1] - 1) * d[1] + 1, 14))
        x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
        wt = rng.standard_normal(k + (cin // groups, cout)).astype(np.float32)
        b = rng.standard_normal(cout).astype(np.float32)
        y = cnnc.ops.conv2d(x, wt, b, strides=s, padding=pads, dilation=d, groups=groups)
        tx = torch.tensor(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), dtype=torch.float64, requires_grad=True)
        tw = torch.tensor(np.ascontiguousarray(wt.transpose(3, 2, 0, 1)), dtype=torch.float64, requires_grad=True)
        tb = torch.tensor(b, dtype=torch.float64, requires_grad=True)
        xp = F.pad(tx, (pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
        ty = F.conv2d(xp, tw, tb, stride=s, dilation=d, groups=groups)
        assert_close(y, ty.detach().numpy().transpose(0, 2, 3, 1))
        dy = rng.standard_normal(y.shape).astype(np.float32)
        ty.backward(torch.tensor(dy.transpose(0, 3, 1, 2), dtype=torch.float64))
        dx, dw, db = cnnc.ops.conv2d_backward(x, wt, dy, strides=s, padding=pads, dilation=d, groups=groups)
        assert_close(dx, tx.grad.numpy().transpose(0, 2, 3, 1))
        assert_close(dw, tw.grad.numpy().transpose(2, 3, 1, 0))
        assert_close(db, tb.grad.numpy())


def test_conv1d_matches_torch_random():
    torch = _torch()
    F = torch.nn.functional
    rng = np.random.default_rng(8)
    for _ in range(15):
        groups = int(rng.choice([1, 2]))
        cin, cout = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
        k, s, d = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 3))
        length = int(rng.integers((k - 1) * d + 1, 30))
        x = rng.standard_normal((2, length, cin)).astype(np.float32)
        w = rng.standard_normal((k, cin // groups, cout)).astype(np.float32)
        y = cnnc.ops.conv1d(x, w, stride=s, padding="causal", dilation=d, groups=groups)
        tx = torch.tensor(x.transpose(0, 2, 1), dtype=torch.float64)
        tw = torch.tensor(w.transpose(2, 1, 0), dtype=torch.float64)
        ty = F.conv1d(F.pad(tx, ((k - 1) * d, 0)), tw, stride=s, dilation=d, groups=groups)
        assert_close(y, ty.numpy().transpose(0, 2, 1))


def test_conv2d_transpose_matches_torch_random(threads):
    torch = _torch()
    F = torch.nn.functional
    rng = np.random.default_rng(9)
    for _ in range(15):
        k = tuple(int(v) for v in rng.integers(1, 5, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        d = tuple(int(v) for v in rng.integers(1, 3, 2))
        op = tuple(int(rng.integers(0, si)) for si in s)
        p = tuple(int(rng.integers(0, ((ki - 1) * di) // 2 + 1)) for ki, di in zip(k, d))
        groups = int(rng.choice([1, 2]))
        cin, filters = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
        n, h, w = int(rng.integers(1, 3)), int(rng.integers(1, 7)), int(rng.integers(1, 7))
        x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
        wt = rng.standard_normal(k + (filters // groups, cin)).astype(np.float32)
        b = rng.standard_normal(filters).astype(np.float32)
        # torch's symmetric padding p is explicit ((p, p - op), ...) here:
        # output (H - 1) * s + k_eff - 2p + op.
        padding = tuple((pi, pi) for pi in p)
        y = cnnc.ops.conv2d_transpose(x, wt, b, strides=s, padding=padding, output_padding=op, dilation=d,
                                      groups=groups)
        tx = torch.tensor(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), dtype=torch.float64, requires_grad=True)
        tw = torch.tensor(np.ascontiguousarray(wt.transpose(3, 2, 0, 1)), dtype=torch.float64, requires_grad=True)
        tb = torch.tensor(b, dtype=torch.float64, requires_grad=True)
        ty = F.conv_transpose2d(tx, tw, tb, stride=s, padding=p, output_padding=op, groups=groups, dilation=d)
        assert_close(y, ty.detach().numpy().transpose(0, 2, 3, 1))
        dy = rng.standard_normal(y.shape).astype(np.float32)
        ty.backward(torch.tensor(dy.transpose(0, 3, 1, 2), dtype=torch.float64))
        dx, dw, db = cnnc.ops.conv2d_transpose_backward(x, wt, dy, strides=s, padding=padding, output_padding=op,
                                                        dilation=d, groups=groups)
        assert_close(dx, tx.grad.numpy().transpose(0, 2, 3, 1))
        assert_close(dw, tw.grad.numpy().transpose(2, 3, 1, 0))
        assert_close(db, tb.grad.numpy())


# ---- strided backward-data by phases, strided 1x1 read in place ----------------------

# (batch, h, w, cin, cout, kernel, strides, padding, dilation, groups). The
# phase decomposition is forced on (and off) below; the default rule takes
# it for the first cases (rows of whole micro-tiles, >= 32 dx channels).
PHASE_CASES = [
    (2, 8, 28, 40, 24, (3, 3), (2, 2), "same", (1, 1), 1),          # default rule: phases
    (1, 9, 56, 32, 16, (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 1),  # batch 1, two segments a row
    (2, 9, 11, 6, 5, (3, 3), (2, 2), "valid", (1, 1), 1),           # odd sizes: last row/column no tap
    (2, 10, 13, 4, 6, (2, 2), (2, 2), "valid", (1, 1), 1),          # 2x2 / 2: 1x1 phases
    (1, 11, 14, 5, 3, (4, 4), (2, 2), "same", (1, 1), 1),           # 4x4 / 2
    (2, 13, 12, 3, 4, (5, 5), (3, 3), ((2, 1), (0, 3)), (1, 1), 1),  # 5x5 / 3, asymmetric padding
    (2, 9, 10, 4, 6, (3, 1), (3, 1), "same", (1, 1), 2),            # 3x1 / (3, 1), groups
    (1, 8, 12, 6, 4, (3, 4), (2, 3), ((0, 2), (3, 1)), (1, 1), 2),  # unequal strides, groups
    (2, 9, 9, 4, 4, (3, 3), (2, 2), "same", (2, 1), 1),             # dilation: not by phases
    (2, 7, 29, 64, 32, (3, 2), (2, 1), ((0, 2), (1, 0)), (1, 1), 2),  # only the row tail reads padding
    (2, 8, 34, 36, 20, (1, 1), (2, 2), "valid", (1, 1), 1),         # 1x1 / 2: x in place, partial segment
    (2, 7, 35, 36, 20, (1, 1), (2, 2), "valid", (1, 1), 1),         # 1x1 / 2, odd: partial would run past x
    (1, 6, 29, 16, 12, (1, 1), (3, 2), "valid", (1, 1), 2),         # 1x1 / (3, 2), groups
    (2, 11, 10, 5, 7, (2, 1), (3, 2), ((1, 0), (0, 2)), (1, 1), 1),  # kernel < stride: tapless phases
    (2, 9, 9, 8, 6, (1, 1), (2, 2), ((1, 1), (0, 1)), (1, 1), 2),   # padded 1x1 / 2, groups
]


@pytest.mark.parametrize("phases", ["1", "0"])
@pytest.mark.parametrize("case", PHASE_CASES, ids=[str(i) for i in range(len(PHASE_CASES))])
def test_conv2d_strided_phases(isa, threads, rng, monkeypatch, case, phases):
    monkeypatch.setenv("CNNC_CONV_PHASES", phases)
    n, h, w, cin, cout, k, s, padding, d, groups = case
    x, wt, b = _case_arrays(rng, case)
    pads = resolve_pads(padding, (h, w), k, s, d)
    y = cnnc.ops.conv2d(x, wt, b, strides=s, padding=padding, dilation=d, groups=groups)
    assert_close(y, ref_conv2d(x, wt, b, s, pads, d, groups))
    check_gradients(rng, x, wt, y.shape, s, padding, pads, d, groups)


# The implicit GEMM's fully packed sweep (cache blocks of MC pixels x KC
# kernel columns), forced on and off (with the sub-pixel phases of the
# strided input gradients, whose outputs are not contiguous). Kernel columns span several KC blocks
# with taps straddling their edges, a thread's pixels several MC blocks.
# (batch, h, w, cin, cout, kernel, strides, padding, dilation, groups)
PACKED_CASES = [
    (2, 15, 13, 64, 40, (3, 3), (2, 2), ((1, 0), (0, 1)), (1, 1), 1),  # stride 2, odd, asymmetric
    (1, 9, 11, 72, 70, (3, 3), (1, 1), "same", (1, 1), 1),    # backward-data as the flipped forward
    (2, 12, 10, 48, 36, (3, 2), (1, 2), ((2, 1), (0, 0)), (2, 1), 2),  # groups, dilation
    (2, 34, 33, 8, 12, (3, 3), (2, 1), "valid", (1, 1), 1),   # several MC blocks per thread
    (3, 14, 14, 100, 24, (1, 1), (2, 2), "valid", (1, 1), 1),  # 1x1 / 2 to 7x7
    (2, 7, 7, 132, 20, (3, 3), (1, 1), "same", (1, 1), 1),    # 7-pixel rows, K 1188
    (2, 13, 13, 130, 36, (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 1),  # 3x3 / 2 to 7x7, K 1170
]


def _check_with_and_without_bias(rng, case):
    """The forward pass with and without a bias, and the gradients, of a
    case against the float64 references."""
    n, h, w, cin, cout, k, s, padding, d, groups = case
    x, wt, b = _case_arrays(rng, case)
    pads = resolve_pads(padding, (h, w), k, s, d)
    for bias in (b, None):
        y = cnnc.ops.conv2d(x, wt, bias, strides=s, padding=padding, dilation=d, groups=groups)
        assert_close(y, ref_conv2d(x, wt, bias, s, pads, d, groups))
    check_gradients(rng, x, wt, y.shape, s, padding, pads, d, groups)


@pytest.mark.parametrize("packed", ["1", "0"])
@pytest.mark.parametrize("case", PACKED_CASES, ids=[str(i) for i in range(len(PACKED_CASES))])
def test_conv2d_packed_sweep(isa, threads, rng, monkeypatch, case, packed):
    monkeypatch.setenv("CNNC_CONV_PACKED", packed)
    monkeypatch.setenv("CNNC_WINOGRAD", "0")
    # Strided input gradients by phases, whose outputs are strided subsets
    # of dx, through the packed sweep too.
    monkeypatch.setenv("CNNC_CONV_PHASES", packed)
    _check_with_and_without_bias(rng, case)


def test_conv2d_indirect_sweep_is_the_default_for_short_rows(rng, monkeypatch):
    """7-pixel rows on AVX2 take the indirect tiles by default: their sums
    run in the bands' order (the same bits as with the indirect tiles and
    the packed sweep both off) and differ from the packed sweep's, so the
    choice is the one the rule makes."""
    if "avx2" not in cnnc.available_isas():
        pytest.skip("no AVX2 path on this machine")
    previous = cnnc.isa()
    cnnc.set_isa("avx2")
    try:
        x = rng.standard_normal((2, 14, 14, 256)).astype(np.float32)
        wt = rng.standard_normal((3, 3, 256, 32)).astype(np.float32)
        runs = {}
        for name, env in (("default", {}), ("packed", {"CNNC_CONV_PACKED": "1"}),
                          ("bands", {"CNNC_CONV_PACKED": "0", "CNNC_CONV_INDIRECT": "0"})):
            for key in ("CNNC_CONV_PACKED", "CNNC_CONV_INDIRECT"):
                monkeypatch.delenv(key, raising=False)
            for key, value in env.items():
                monkeypatch.setenv(key, value)
            runs[name] = cnnc.ops.conv2d(x, wt, strides=2, padding=((1, 1), (1, 1)))
    finally:
        cnnc.set_isa(previous)
    assert np.array_equal(runs["default"], runs["bands"])
    assert not np.array_equal(runs["default"], runs["packed"])
    assert_close(runs["default"], ref_conv2d(x, wt, None, (2, 2), ((1, 1), (1, 1)), (1, 1), 1))


# The implicit GEMM's indirect tiles (AVX2 and the scalar path), forced on
# and off: tiles of consecutive output pixels across rows and images read x
# through a table, padded kernel rows read zeros or a zero-padded patch.
# (batch, h, w, cin, cout, kernel, strides, padding, dilation, groups)
INDIRECT_CASES = [
    (2, 28, 28, 12, 20, (3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 1),  # 14-pixel rows, tiles across rows
    (3, 13, 13, 8, 36, (3, 3), (2, 2), "same", (1, 1), 1),      # 7-pixel rows, tiles across images
    (2, 15, 11, 6, 17, (5, 3), (1, 2), ((2, 1), (0, 3)), (1, 1), 1),  # patches on both sides, asymmetric
    (1, 5, 4, 4, 8, (3, 3), (1, 1), ((2, 2), (3, 3)), (1, 1), 1),  # kernel rows wholly in the padding
    (2, 14, 15, 20, 24, (1, 1), (2, 2), "valid", (1, 1), 1),    # 1x1 / 2 in place
    (2, 9, 9, 70, 40, (3, 3), (1, 1), "same", (1, 1), 1),       # backward-data as the flipped forward
    (1, 6, 40, 9, 16, (3, 3), (2, 2), ((0, 1), (1, 1)), (2, 1), 1),  # dilation_h: rows apart
]


@pytest.mark.parametrize("indirect", ["1", "0"])
@pytest.mark.parametrize("case", INDIRECT_CASES, ids=[str(i) for i in range(len(INDIRECT_CASES))])
def test_conv2d_indirect_sweep(isa, threads, rng, monkeypatch, case, indirect):
    monkeypatch.setenv("CNNC_CONV_INDIRECT", indirect)
    monkeypatch.setenv("CNNC_WINOGRAD", "0")
    _check_with_and_without_bias(rng, case)


# Transposed convolutions whose forward is a strided backward-data.
# (batch, h, w, cin, filters, kernel, strides, padding, output_padding)
PHASE_TRANSPOSE_CASES = [
    (2, 4, 14, 24, 40, (3, 3), (2, 2), "same", (1, 1)),
    (1, 3, 14, 64, 40, (3, 3), (2, 2), "same", (1, 1)),   # 64 channels read per tap: GEMM bands + bias
    (2, 3, 5, 70, 33, (4, 3), (2, 3), "valid", (1, 2)),   # the same, rows narrower than a tile
    (1, 5, 6, 3, 4, (3, 3), (2, 2), "valid", None),
    (2, 4, 5, 3, 2, (4, 4), (2, 2), "same", (1, 0)),
    (1, 3, 4, 2, 3, (5, 3), (3, 3), "valid", (2, 1)),
    (2, 3, 5, 4, 3, (3, 2), (3, 2), "same", None),
    (2, 4, 5, 6, 5, (1, 1), (2, 2), "valid", None),       # kernel < stride: tapless phases hold the bias
    (1, 3, 4, 4, 6, (2, 1), (3, 2), "valid", (1, 1)),
]


@pytest.mark.parametrize("case", PHASE_TRANSPOSE_CASES, ids=[str(i) for i in range(len(PHASE_TRANSPOSE_CASES))])
def test_conv2d_transpose_phases(isa, threads, rng, monkeypatch, case):
    monkeypatch.setenv("CNNC_CONV_PHASES", "1")
    n, h, w, cin, filters, k, s, padding, op = case
    x = rng.standard_normal((n, h, w, cin)).astype(np.float32)
    wt = rng.standard_normal(k + (filters, cin)).astype(np.float32)
    b = rng.standard_normal(filters).astype(np.float32)
    y = cnnc.ops.conv2d_transpose(x, wt, b, strides=s, padding=padding, output_padding=op)
    assert_close(y, ref_conv2d_transpose(x, wt, b, s, padding, op, (1, 1)))


# ---- bad input ------------------------------------------------------------------------


def test_conv_validation():
    ops = cnnc.ops
    x = np.ones((2, 8, 8, 4), np.float32)
    w = np.ones((3, 3, 4, 6), np.float32)
    with pytest.raises(ValueError, match="x must be 4-D"):
        ops.conv2d(np.ones((8, 8, 4), np.float32), w)
    with pytest.raises(ValueError, match="w has shape"):
        ops.conv2d(x, np.ones((3, 3, 3, 6), np.float32))
    with pytest.raises(ValueError, match="strides"):
        ops.conv2d(x, w, strides=(0, 1))
    with pytest.raises(ValueError, match="strides"):
        ops.conv2d(x, w, strides=-1)
    with pytest.raises(ValueError, match="dilation"):
        ops.conv2d(x, w, dilation=(1, 0))
    with pytest.raises(ValueError, match="groups"):
        ops.conv2d(x, np.ones((3, 3, 4, 6), np.float32), groups=3)
    with pytest.raises(ValueError, match="groups"):
        ops.conv2d(x, np.ones((3, 3, 2, 5), np.float32), groups=2)
    with pytest.raises(ValueError, match="groups"):
        ops.conv2d(x, w, groups=0)
    with pytest.raises(ValueError, match="larger than the padded input"):
        ops.conv2d(x, np.ones((9, 3, 4, 6), np.float32))
    with pytest.raises(ValueError, match="larger than the padded input"):
        ops.conv2d(x, w, dilation=(4, 1))
    with pytest.raises(ValueError, match="padding"):
        ops.conv2d(x, w, padding="full")
    with pytest.raises(ValueError, match="padding"):
        ops.conv2d(x, w, padding=((1, -1), (0, 0)))
    with pytest.raises(ValueError, match="b has shape"):
        ops.conv2d(x, w, np.ones(5, np.float32))
    with pytest.raises(ValueError, match="dy has shape"):
        ops.conv2d_backward(x, w, np.ones((2, 6, 6, 5), np.float32))
    with pytest.raises(TypeError):
        ops.conv2d(x, w, strides=1.5)
    with pytest.raises(ValueError, match="empty"):
        ops.conv2d(np.ones((0, 8, 8, 4), np.float32), w)
    with pytest.raises(ValueError, match="padding"):
        ops.conv1d(np.ones((2, 8, 4), np.float32), np.ones((3, 4, 2), np.float32), padding="full")
    with pytest.raises(ValueError, match="larger than the padded input"):
        ops.conv1d(np.ones((2, 3, 4), np.float32), np.ones((5, 4, 2), np.float32))
    with pytest.raises(ValueError, match="output_padding"):
        ops.conv2d_transpose(x, np.ones((3, 3, 2, 4), np.float32), strides=2, output_padding=2)
    with pytest.raises(ValueError, match="w has shape"):
        ops.conv2d_transpose(x, np.ones((3, 3, 2, 5), np.float32))
    with pytest.raises(ValueError, match="dy has shape"):
        ops.conv2d_transpose_backward(x, np.ones((3, 3, 2, 4), np.float32), np.ones((2, 8, 8, 2), np.float32))
