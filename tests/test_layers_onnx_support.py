"""Layer parameters that ONNX models need, against PyTorch: explicit
(asymmetric) padding on the convolutions, pooling with ceil_mode and
count_include_pad, PReLU, Clip, HardSigmoid, hard_silu, Pad, Divide and
ConstantArithmetic; forward, input gradient and weight gradients."""
import numpy as np
import pytest

import cnnc.layers as L
from layer_checks import check_config_round_trip, seeded_weights  # noqa: F401

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _nchw(x):
    return torch.tensor(np.moveaxis(x, -1, 1).copy(), dtype=torch.float64, requires_grad=True)


def _forward_backward(layer, x, reference, atol=1e-4):
    """Compare layer(x) and its input gradient with ``reference`` (a torch
    function of an NCHW float64 tensor, returning NCHW)."""
    rng = np.random.default_rng(0)
    y = layer(x, training=True)
    r = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(r)
    xt = _nchw(x)
    yt = reference(xt)
    np.testing.assert_allclose(y, np.moveaxis(yt.detach().numpy(), 1, -1), atol=atol, rtol=1e-4)
    (yt * torch.tensor(np.moveaxis(r, -1, 1).copy(), dtype=torch.float64)).sum().backward()
    np.testing.assert_allclose(dx, np.moveaxis(xt.grad.numpy(), 1, -1), atol=atol, rtol=1e-4)
    return r


CONV_PADDINGS = [2, (1, 2), ((1, 0), (2, 1)), ((0, 3), (1, 1))]


@pytest.mark.parametrize("padding", CONV_PADDINGS)
@pytest.mark.parametrize("strides,dilation,groups", [(1, 1, 1), (2, 1, 2), (1, 2, 1)])
def test_conv2d_explicit_padding(padding, strides, dilation, groups):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 7, 8, 4)).astype(np.float32)
    layer = L.Conv2D(6, 3, strides=strides, padding=padding, dilation_rate=dilation,
                     groups=groups, bias_initializer="random_uniform")
    layer.build(x.shape)
    w = torch.tensor(layer.kernel.value.transpose(3, 2, 0, 1).astype(np.float64),
                     requires_grad=True)
    b = torch.tensor(layer.bias.value.astype(np.float64), requires_grad=True)
    pairs = layer.padding

    def reference(xt):
        xt = F.pad(xt, (pairs[1][0], pairs[1][1], pairs[0][0], pairs[0][1]))
        return F.conv2d(xt, w, b, stride=strides, dilation=dilation, groups=groups)

    _forward_backward(layer, x, reference)
    np.testing.assert_allclose(layer.kernel.grad, w.grad.numpy().transpose(2, 3, 1, 0),
                               atol=1e-3, rtol=1e-4)
    np.testing.assert_allclose(layer.bias.grad, b.grad.numpy(), atol=1e-3, rtol=1e-4)
    clone = check_config_round_trip(layer, x)
    assert clone.padding == layer.padding


@pytest.mark.parametrize("padding", [(2, 0), 1])
def test_conv1d_explicit_padding(padding):
    x = np.random.default_rng(2).standard_normal((2, 9, 3)).astype(np.float32)
    layer = L.Conv1D(4, 3, strides=2, padding=padding, use_bias=False)
    layer.build(x.shape)
    w = torch.tensor(layer.kernel.value.transpose(2, 1, 0).astype(np.float64))
    (left, right), = layer.padding
    _forward_backward(layer, x, lambda xt: F.conv1d(F.pad(xt, (left, right)), w, stride=2))
    check_config_round_trip(layer, x)


def test_depthwise_explicit_padding():
    x = np.random.default_rng(3).standard_normal((2, 6, 7, 3)).astype(np.float32)
    layer = L.DepthwiseConv2D(3, padding=((1, 0), (0, 2)), depth_multiplier=2, use_bias=False)
    layer.build(x.shape)
    kh, kw, c, m = layer.kernel.value.shape
    w = torch.tensor(layer.kernel.value.reshape(kh, kw, 1, c * m).transpose(3, 2, 0, 1)
                     .astype(np.float64))
    _forward_backward(layer, x, lambda xt: F.conv2d(F.pad(xt, (0, 2, 1, 0)), w, groups=3))
    check_config_round_trip(layer, x)


@pytest.mark.parametrize("padding,output_padding,groups", [
    (((1, 0), (0, 2)), None, 1), (1, 1, 2), ((2, 1), None, 1)])
def test_conv2d_transpose_explicit_padding(padding, output_padding, groups):
    x = np.random.default_rng(4).standard_normal((2, 5, 4, 4)).astype(np.float32)
    layer = L.Conv2DTranspose(6, 3, strides=2, padding=padding, output_padding=output_padding,
                              groups=groups, use_bias=False)
    layer.build(x.shape)
    # Keras (KH, KW, filters / g, Cin) -> PyTorch (Cin, filters / g, KH, KW)
    w = torch.tensor(layer.kernel.value.transpose(3, 2, 0, 1).astype(np.float64))
    (t, b), (lft, rgt) = layer.padding
    op = output_padding or 0

    def reference(xt):
        full = F.conv_transpose2d(xt, w, stride=2, groups=groups, output_padding=op)
        return full[:, :, t:full.shape[2] - b, lft:full.shape[3] - rgt]

    _forward_backward(layer, x, reference)
    assert layer.compute_output_shape(x.shape) == layer(x).shape
    check_config_round_trip(layer, x)


def test_conv_padding_errors():
    for bad in [-1, (1, 2, 3), ((1,), (2, 3)), "full", ((1, 2), (3, -1))]:
        with pytest.raises(ValueError):
            L.Conv2D(2, 3, padding=bad)
    with pytest.raises(ValueError):
        L.Conv1D(2, 3, padding=((1, 2), (3, 4)))


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("count_include_pad", [False, True])
@pytest.mark.parametrize("pool,strides,padding", [(3, 2, 1), (3, 2, 0), (2, 2, 1), (3, 3, 1),
                                                  ((3, 2), (2, 1), (1, 0))])
def test_avg_pool_ceil_and_count_include_pad(ceil_mode, count_include_pad, pool, strides,
                                             padding):
    x = np.random.default_rng(5).standard_normal((2, 9, 10, 3)).astype(np.float32)
    layer = L.AveragePooling2D(pool, strides, padding=padding, ceil_mode=ceil_mode,
                               count_include_pad=count_include_pad)
    _forward_backward(layer, x, lambda xt: F.avg_pool2d(
        xt, pool, strides, padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad))
    assert layer.compute_output_shape((None,) + x.shape[1:])[1:] == layer(x).shape[1:]
    check_config_round_trip(layer, x)


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("pool,strides,padding", [(3, 2, 1), (2, 2, 0), (3, 3, 1)])
def test_max_pool_ceil_mode(ceil_mode, pool, strides, padding):
    x = np.random.default_rng(6).standard_normal((2, 9, 10, 3)).astype(np.float32)
    layer = L.MaxPooling2D(pool, strides, padding=padding, ceil_mode=ceil_mode)
    _forward_backward(layer, x, lambda xt: F.max_pool2d(xt, pool, strides, padding,
                                                        ceil_mode=ceil_mode))
    check_config_round_trip(layer, x)


def test_pool1d_ceil_and_asymmetric_padding():
    x = np.random.default_rng(7).standard_normal((2, 10, 3)).astype(np.float32)
    layer = L.AveragePooling1D(3, 2, padding=(1, 1), ceil_mode=True, count_include_pad=True)
    _forward_backward(layer, x, lambda xt: F.avg_pool1d(xt, 3, 2, 1, ceil_mode=True,
                                                        count_include_pad=True))
    asym = L.MaxPooling1D(3, 2, padding=(2, 0))
    _forward_backward(asym, x, lambda xt: F.max_pool1d(F.pad(xt, (2, 0), value=-np.inf), 3, 2))


def test_prelu_per_channel_and_full():
    x = np.random.default_rng(8).standard_normal((3, 4, 5, 2)).astype(np.float32)
    for shared in ([1, 2], None):
        layer = L.PReLU(alpha_initializer="random_uniform", shared_axes=shared)
        layer.build(x.shape)
        alpha = layer.alpha.value
        a = torch.tensor(np.moveaxis(alpha, -1, 0).astype(np.float64), requires_grad=True)
        _forward_backward(layer, x, lambda xt: torch.where(xt >= 0, xt, a * xt))
        np.testing.assert_allclose(layer.alpha.grad, np.moveaxis(a.grad.numpy(), 0, -1),
                                   atol=1e-4, rtol=1e-4)
        check_config_round_trip(layer, x)


@pytest.mark.parametrize("low,high", [(-0.5, 0.7), (0.0, None), (None, 0.2)])
def test_clip(low, high):
    x = np.random.default_rng(9).standard_normal((2, 4, 3)).astype(np.float32)
    _forward_backward(L.Clip(low, high), x, lambda xt: torch.clamp(xt, low, high))
    check_config_round_trip(L.Clip(low, high), x)


@pytest.mark.parametrize("alpha,beta", [(0.2, 0.5), (1 / 6, 0.5), (0.7, 0.1)])
def test_hard_sigmoid(alpha, beta):
    x = np.random.default_rng(10).uniform(-4, 4, (2, 5, 3)).astype(np.float32)
    _forward_backward(L.HardSigmoid(alpha, beta), x,
                      lambda xt: torch.clamp(alpha * xt + beta, 0.0, 1.0))
    check_config_round_trip(L.HardSigmoid(alpha, beta), x)


def test_hard_silu_activation():
    x = np.random.default_rng(11).uniform(-5, 5, (2, 6, 3)).astype(np.float32)
    x[0, 0, :] = [-3.0 + 1e-3, 3.0 - 1e-3, 0.0]
    _forward_backward(L.Activation("hard_silu"), x, F.hardswish)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_modes(mode):
    x = np.random.default_rng(12).standard_normal((2, 4, 5, 3)).astype(np.float32)
    layer = L.Pad([(1, 2), (2, 1), (0, 0)], mode=mode, constant_value=0.5)
    torch_mode = {"edge": "replicate"}.get(mode, mode)
    kwargs = dict(value=0.5) if mode == "constant" else {}
    _forward_backward(layer, x, lambda xt: F.pad(xt, (2, 1, 1, 2), mode=torch_mode, **kwargs))
    check_config_round_trip(layer, x)


@pytest.mark.parametrize("operation", ["add", "subtract", "multiply", "divide"])
@pytest.mark.parametrize("reverse", [False, True])
def test_constant_arithmetic(operation, reverse):
    rng = np.random.default_rng(13)
    x = rng.uniform(0.5, 2.0, (2, 4, 5, 3)).astype(np.float32)
    c = rng.uniform(0.5, 2.0, (5, 1)).astype(np.float32)
    layer = L.ConstantArithmetic(operation, constant=c, reverse=reverse)
    ops = {"add": torch.add, "subtract": torch.sub, "multiply": torch.mul, "divide": torch.div}

    def reference(xt):
        # the constant broadcasts on the NHWC tensor: do the maths there
        h = xt.permute(0, 2, 3, 1)
        const = torch.tensor(c.astype(np.float64))
        y = ops[operation](const, h) if reverse else ops[operation](h, const)
        return y.permute(0, 3, 1, 2)

    _forward_backward(layer, x, reference)
    clone = check_config_round_trip(layer, x)
    assert clone.constant_shape == (5, 1)


def test_constant_arithmetic_refuses_enlarging():
    with pytest.raises(ValueError, match="broadcast"):
        L.ConstantArithmetic("add", constant=np.ones((4, 3), np.float32))(
            np.ones((2, 1, 3), np.float32))


def test_divide_merge():
    rng = np.random.default_rng(14)
    a = rng.uniform(0.5, 2, (2, 3, 4)).astype(np.float32)
    b = rng.uniform(0.5, 2, (2, 3, 4)).astype(np.float32)
    layer = L.Divide()
    y = layer([a, b], training=True)
    r = rng.standard_normal(y.shape).astype(np.float32)
    da, db = layer.backward(r)
    at = torch.tensor(a.astype(np.float64), requires_grad=True)
    bt = torch.tensor(b.astype(np.float64), requires_grad=True)
    (at / bt * torch.tensor(r.astype(np.float64))).sum().backward()
    np.testing.assert_allclose(y, a / b, rtol=1e-6)
    np.testing.assert_allclose(da, at.grad.numpy(), rtol=1e-4)
    np.testing.assert_allclose(db, bt.grad.numpy(), rtol=1e-4)
