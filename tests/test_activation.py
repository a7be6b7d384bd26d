"""Activations and softmax against float64 NumPy references written here,
finite-difference gradient checks, special values, every ISA path and 1 and
2 threads (fixtures in conftest.py)."""
import math

import numpy as np
import pytest

import cnnc
from cnnc import ops

SIZES = (1, 7, 1023, 1_000_003)
K0, K1 = math.sqrt(2 / math.pi), 0.044715
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805
KINKS = (-3.0, 0.0, 3.0, 6.0)
_erfc = np.frompyfunc(math.erfc, 1, 1)


def erfc(x):
    return np.asarray(_erfc(np.asarray(x, np.float64)), np.float64)


def sigmoid64(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


# name -> (forward(x, alpha), derivative(x, alpha)), float64, written from the maths.
REFERENCES = {
    "relu": (lambda x, a: np.maximum(x, 0), lambda x, a: (x > 0).astype(np.float64)),
    "leaky_relu": (lambda x, a: np.where(x > 0, x, a * x), lambda x, a: np.where(x > 0, 1.0, a)),
    "elu": (lambda x, a: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))),
            lambda x, a: np.where(x > 0, 1.0, a * np.exp(np.minimum(x, 0)))),
    "sigmoid": (lambda x, a: sigmoid64(x),
                lambda x, a: np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))) ** 2),
    "tanh": (lambda x, a: np.tanh(x), lambda x, a: 1 / np.cosh(np.minimum(np.abs(x), 300)) ** 2),
    "gelu": (lambda x, a: 0.5 * x * erfc(-x / math.sqrt(2)),
             lambda x, a: 0.5 * erfc(-x / math.sqrt(2)) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)),
    # (1 + tanh v) / 2 = sigmoid(2v) and (1 - tanh^2 v) / 2 = 2 sigmoid(2v) sigmoid(-2v),
    # which do not cancel in float64 either.
    "gelu_tanh": (lambda x, a: x * sigmoid64(2 * K0 * (x + K1 * x ** 3)),
                  lambda x, a: gelu_tanh_terms(x)[0] + gelu_tanh_terms(x)[1]),
    "silu": (lambda x, a: x * sigmoid64(x), lambda x, a: sigmoid64(x) + x * sigmoid64(x) * sigmoid64(-x)),
    "softplus": (lambda x, a: np.logaddexp(0.0, x), lambda x, a: sigmoid64(x)),
    "relu6": (lambda x, a: np.clip(x, 0, 6), lambda x, a: ((x > 0) & (x < 6)).astype(np.float64)),
    "hard_sigmoid": (lambda x, a: np.clip(x / 6 + 0.5, 0, 1), lambda x, a: ((x > -3) & (x < 3)) / 6.0),
    "hard_swish": (lambda x, a: np.where(x < -3, 0.0, x * np.clip(x / 6 + 0.5, 0, 1)),
                   lambda x, a: np.where(x <= -3, 0.0, np.where(x < 3, x / 3 + 0.5, 1.0))),
    "selu": (lambda x, a: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0))),
             lambda x, a: SELU_SCALE * np.where(x > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(x, 0)))),
}
ALPHA = {"leaky_relu": 0.3, "elu": 1.0}


def gelu_tanh_terms(x):
    w = 2 * K0 * (x + K1 * x ** 3)
    s, s_neg = sigmoid64(w), sigmoid64(-w)
    return s, x * 2 * s * s_neg * K0 * (1 + 3 * K1 * x * x)


def forward_condition(name, x):
    """Relative error that float32 rounding of intermediate arguments alone
    implies, in units of the tolerance: the tanh-form GELU evaluates
    sigmoid(w) at w = 2 sqrt(2/pi)(x + 0.044715 x^3), rounded to float, and
    sigmoid's relative condition number at w < 0 is |w|."""
    if name != "gelu_tanh":
        return 1.0
    x = np.where(np.isfinite(x), x, 0.0).astype(np.float64)
    return 1.0 + np.abs(2 * K0 * (x + K1 * x ** 3))


def gradient_scale(name, x):
    """Size of the terms that make up f'(x): the GELU derivatives are sums
    of terms that cancel near x = -0.75, where only absolute accuracy relative
    to the terms is possible."""
    x = np.where(np.isfinite(x), x, 0.0)
    if name == "gelu":
        return 0.5 * erfc(-x / math.sqrt(2)) + np.abs(x) * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    if name == "gelu_tanh":
        first, second = gelu_tanh_terms(x)
        return first + np.abs(second)
    if name == "silu":
        return sigmoid64(x) + np.abs(x * sigmoid64(x) * sigmoid64(-x))
    if name == "hard_swish":
        return np.where(x <= -3, 0.0, np.where(x < 3, np.abs(x) / 3 + 0.5, 1.0))
    return np.abs(REFERENCES[name][1](x, ALPHA.get(name, 0)))


def call_forward(name, x, alpha=None, **kw):
    if name == "gelu_tanh":
        return ops.gelu(x, approximate=True, **kw)
    if name in ALPHA:
        return getattr(ops, name)(x, alpha=ALPHA[name] if alpha is None else alpha, **kw)
    return getattr(ops, name)(x, **kw)


def call_backward(name, x, dy, alpha=None, **kw):
    if name == "gelu_tanh":
        return ops.gelu_backward(x, dy, approximate=True, **kw)
    if name in ALPHA:
        return getattr(ops, name + "_backward")(x, dy, alpha=ALPHA[name] if alpha is None else alpha, **kw)
    return getattr(ops, name + "_backward")(x, dy, **kw)


def assert_close(got, want, rtol, atol, what=""):
    """|got - want| <= atol + rtol |want| elementwise, NaN exactly where want is NaN."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan, err_msg=f"{what}: NaN positions")
    same_inf = np.isinf(want) & (got == want)
    err = np.where(nan | same_inf, 0.0, np.abs(got - want)).ravel()
    bound = np.broadcast_to(atol + rtol * np.abs(np.where(np.isinf(want), 0.0, want)), want.shape).ravel()
    worst = int(np.argmax(err - bound))
    assert err[worst] <= bound[worst], (
        f"{what}: element {worst} got {got.flat[worst]!r}, want {want.flat[worst]!r}")


@pytest.fixture(scope="module")
def data():
    """Inputs and float64 references, computed once for every ISA x threads case."""
    rng = np.random.default_rng(2024)
    cases = {}
    for n in SIZES:
        x = (rng.standard_normal(n) * 4).astype(np.float32)
        dy = rng.standard_normal(n).astype(np.float32)
        x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
        refs = {name: (f(x64, ALPHA.get(name, 0)), dy64 * g(x64, ALPHA.get(name, 0)),
                       np.abs(dy64) * gradient_scale(name, x64))
                for name, (f, g) in REFERENCES.items()}
        cases[n] = (x, dy, refs)
    return cases


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_elementwise_matches_reference(name, data, isa, threads):
    for n, (x, dy, refs) in data.items():
        y_ref, dx_ref, dx_scale = refs[name]
        y = call_forward(name, x)
        assert y.dtype == np.float32 and y.shape == x.shape
        assert_close(y, y_ref, 2e-6 * forward_condition(name, x), 1e-30, f"{name} n={n}")
        # The gradient is dy * f'(x): relative accuracy of f' plus a floor
        # for the tiny values where f' underflows float.
        assert_close(call_backward(name, x, dy), dx_ref, 0,
                     4e-6 * dx_scale * forward_condition(name, x) + 1e-30, f"{name}_backward n={n}")


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_gradient_by_finite_differences(name, isa):
    rng = np.random.default_rng(7)
    # Stay away from the kinks of the piecewise functions.
    x = rng.uniform(-8, 8, 1023)
    x = x[np.min(np.abs(x[:, None] - np.array(KINKS)), axis=1) > 1e-3].astype(np.float32)
    x64 = x.astype(np.float64)
    f = REFERENCES[name][0]
    a = ALPHA.get(name, 0)
    h = 1e-6
    fd = (f(x64 + h, a) - f(x64 - h, a)) / (2 * h)
    dx = call_backward(name, x, np.ones_like(x))
    assert_close(dx, fd, 0, 1e-5 * gradient_scale(name, x64) + 1e-7, name)


def test_alpha_parameters(isa):
    x = np.array([-2.0, -0.5, 0.0, 0.5, 3.0], np.float32)
    x64 = x.astype(np.float64)
    for alpha in (0.01, 0.3, 2.5):
        assert_close(ops.leaky_relu(x, alpha=alpha), np.where(x64 > 0, x64, alpha * x64), 1e-7, 0)
        assert_close(ops.leaky_relu_backward(x, np.ones_like(x), alpha=alpha),
                     np.where(x64 > 0, 1, alpha), 1e-7, 0)
        assert_close(ops.elu(x, alpha=alpha), np.where(x64 > 0, x64, alpha * np.expm1(x64)), 2e-7, 0)
        assert_close(ops.elu_backward(x, np.ones_like(x), alpha=alpha),
                     np.where(x64 > 0, 1, alpha * np.exp(x64)), 2e-7, 0)
    # Left derivative at the kink, as PyTorch: relu'(0) = 0, leaky'(0) = alpha, elu'(0) = alpha.
    zero, one = np.zeros(1, np.float32), np.ones(1, np.float32)
    assert ops.relu_backward(zero, one)[0] == 0
    assert ops.leaky_relu_backward(zero, one, alpha=0.2)[0] == np.float32(0.2)
    assert ops.elu_backward(zero, one, alpha=0.7)[0] == np.float32(0.7)


SPECIAL = np.array([-np.inf, -1e30, -1e4, -104, -89, -88, -20, -1e-30, -0.0, 0.0, 1e-30,
                    20, 88, 89, 104, 1e4, 1e30, np.inf], np.float32)
# Exact limits for the special inputs above, per function (None: check with the reference).
LIMITS = {
    "relu": (0.0, np.inf), "leaky_relu": (-np.inf, np.inf), "elu": (-1.0, np.inf),
    "sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "gelu": (0.0, np.inf), "gelu_tanh": (0.0, np.inf),
    "silu": (0.0, np.inf), "softplus": (0.0, np.inf), "relu6": (0.0, 6.0), "hard_sigmoid": (0.0, 1.0),
    "hard_swish": (0.0, np.inf), "selu": (np.float32(-SELU_SCALE * SELU_ALPHA), np.inf),
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_special_values(name, isa):
    x = SPECIAL
    y = call_forward(name, x)
    lo, hi = LIMITS[name]
    assert y[0] == lo and y[-1] == hi, (y[0], y[-1])
    finite = np.isfinite(x) & (np.abs(x) < 1e4)
    f, g = REFERENCES[name]
    with np.errstate(all="ignore"):
        assert_close(y[finite], f(x[finite].astype(np.float64), ALPHA.get(name, 0)),
                     2e-6 * forward_condition(name, x[finite]), 1e-35, name)
    dx = call_backward(name, x, np.ones_like(x))
    assert np.all(np.isfinite(dx)), dx
    with np.errstate(all="ignore"):
        xf = x[finite].astype(np.float64)
        assert_close(dx[finite], g(xf, ALPHA.get(name, 0)), 0,
                     4e-6 * gradient_scale(name, xf) * forward_condition(name, xf) + 1e-35, name)
    # NaN propagates through every forward, and through every backward but
    # the piecewise-linear ones (whose gradient does not depend on x's value).
    nan = np.array([np.nan, 1.0, np.nan], np.float32)
    assert np.isnan(call_forward(name, nan)[[0, 2]]).all()
    if name not in ("relu", "leaky_relu", "relu6", "hard_sigmoid", "hard_swish"):
        assert np.isnan(call_backward(name, nan, np.ones(3, np.float32))[[0, 2]]).all()
    assert_close(call_forward(name, nan)[1:2], f(np.ones(1), ALPHA.get(name, 0)), 2e-6, 0, name)


def test_sigmoid_tanh_named_edges():
    assert ops.sigmoid(np.float32([-100]))[0] == 0.0
    assert ops.sigmoid(np.float32([100]))[0] == 1.0
    np.testing.assert_array_equal(ops.tanh(np.float32([-np.inf, np.inf])), [-1, 1])
    # Small arguments keep full relative accuracy (no 1 - exp cancellation).
    x = np.float32([1e-3, 1e-5, -1e-7])
    assert_close(ops.tanh(x), np.tanh(x.astype(np.float64)), 2e-7, 0)
    assert_close(ops.elu(x), np.expm1(np.minimum(x.astype(np.float64), 0)) + np.maximum(x, 0), 2e-7, 0)


def test_in_place_and_out(isa):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 37)).astype(np.float32)
    want = ops.gelu(x)
    buf = x.copy()
    assert ops.gelu(buf, out=buf) is buf
    np.testing.assert_array_equal(buf, want)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    want = ops.tanh_backward(x, dy)
    g = dy.copy()
    ops.tanh_backward(x, g, out=g)
    np.testing.assert_array_equal(g, want)
    s = x.copy()
    ops.softmax(s, out=s)
    np.testing.assert_array_equal(s, ops.softmax(x))


def test_input_checks():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(TypeError):
        ops.sigmoid(np.array(["a"]))
    with pytest.raises(ValueError, match="empty"):
        ops.tanh(np.zeros(0, np.float32))
    with pytest.raises(ValueError, match="shape"):
        ops.elu_backward(x, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="shape"):
        ops.gelu(x, out=np.empty((3, 2), np.float32))
    with pytest.raises(TypeError):
        ops.leaky_relu(x, alpha="big")
    with pytest.raises(ValueError, match="approximate"):
        ops.gelu(x, approximate="fast")
    np.testing.assert_array_equal(ops.gelu(x, approximate="tanh"), ops.gelu(x, approximate=True))
    np.testing.assert_array_equal(ops.sigmoid(x.astype(np.float64)), ops.sigmoid(x))  # converted
    with pytest.raises(ValueError, match="axis"):
        ops.softmax(x, axis=2)
    with pytest.raises(ValueError, match="shape"):
        ops.softmax_backward(x, np.ones((3, 2), np.float32))


# ---- softmax ---------------------------------------------------------------

def softmax64(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax64(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


SOFTMAX_SHAPES = [(1, 1), (3, 7), (2, 1023), (2, 1_000_003), (4001, 7), (1, 5)]


@pytest.fixture(scope="module")
def softmax_data():
    rng = np.random.default_rng(99)
    cases = []
    for shape in SOFTMAX_SHAPES:
        x = (rng.standard_normal(shape) * 5).astype(np.float32)
        dy = rng.standard_normal(shape).astype(np.float32)
        x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
        s, ls = softmax64(x64), log_softmax64(x64)
        # Backward references from float32 forward outputs, as the API takes them.
        s32, ls32 = s.astype(np.float32), ls.astype(np.float32)
        ds = s32 * (dy64 - (dy64 * s32).sum(-1, keepdims=True))
        dls = dy64 - np.exp(ls32.astype(np.float64)) * dy64.sum(-1, keepdims=True)
        cases.append((x, dy, s, ls, s32, ls32, ds, dls))
    return cases


def test_softmax_matches_reference(softmax_data, isa, threads):
    for x, dy, s, ls, s32, ls32, ds, dls in softmax_data:
        cols = x.shape[-1]
        y = ops.softmax(x)
        assert_close(y, s, 4e-6, 1e-12, f"softmax {x.shape}")
        np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-5 * max(1, math.log2(cols)))
        assert_close(ops.log_softmax(x), ls, 1e-6, 2e-6, f"log_softmax {x.shape}")
        scale = np.abs(dy).max()
        assert_close(ops.softmax_backward(s32, dy), ds, 1e-5, 2e-7 * scale, f"softmax_backward {x.shape}")
        atol = 1e-6 * scale * max(1.0, math.sqrt(cols) / 10)
        assert_close(ops.log_softmax_backward(ls32, dy), dls, 1e-5, atol, f"log_softmax_backward {x.shape}")


def test_softmax_gradient_by_finite_differences(isa):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 6)) * 2
    dy = rng.standard_normal((3, 6))
    h = 1e-6
    for forward, backward, ref in ((ops.softmax, ops.softmax_backward, softmax64),
                                   (ops.log_softmax, ops.log_softmax_backward, log_softmax64)):
        fd = np.zeros_like(x)
        for idx in np.ndindex(*x.shape):
            e = np.zeros_like(x)
            e[idx] = h
            fd[idx] = ((ref(x + e) * dy).sum() - (ref(x - e) * dy).sum()) / (2 * h)
        y = forward(x.astype(np.float32))
        assert_close(backward(y, dy.astype(np.float32)), fd, 1e-5, 1e-5, forward.__name__)


def test_softmax_special_rows(isa):
    inf = np.inf
    x = np.array([[-inf, 0.0, 1.0, -inf], [-inf] * 4, [inf, 0, 1, 2], [np.nan, 0, 1, 2],
                  [1e30, -1e30, 0, 1e30], [-1e4, -1e4 + 1, -1e4, -1e4]], np.float32)
    y = ops.softmax(x)
    assert_close(y[0], [0, 1 / (1 + math.e), math.e / (1 + math.e), 0], 1e-6, 0)
    assert np.isnan(y[1:4]).all()  # as PyTorch: no finite answer exists
    np.testing.assert_allclose(y[4], [0.5, 0, 0, 0.5], rtol=1e-6)
    assert_close(y[5], softmax64(x[5].astype(np.float64)), 1e-6, 0)
    ly = ops.log_softmax(x)
    assert ly[0, 0] == -inf and ly[0, 3] == -inf
    assert_close(ly[0, 1:3], log_softmax64(np.array([0.0, 1.0])), 1e-6, 0)
    assert_close(ly[5], log_softmax64(x[5].astype(np.float64)), 1e-6, 1e-6)
    assert np.isnan(ly[1:4]).all()


def test_softmax_axis(isa):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    for axis in (0, 1, -2, 2):
        s = softmax64(x.astype(np.float64), axis=axis)
        y = ops.softmax(x, axis=axis)
        assert y.flags.c_contiguous
        assert_close(y, s, 2e-6, 1e-9)
        want = y * (dy - (dy * y).sum(axis, keepdims=True))
        assert_close(ops.softmax_backward(y, dy, axis=axis), want, 1e-5, 1e-6)
        ly = ops.log_softmax(x, axis=axis)
        assert_close(ly, log_softmax64(x.astype(np.float64), axis=axis), 1e-6, 1e-6)
        want = dy - np.exp(ly.astype(np.float64)) * dy.sum(axis, keepdims=True)
        assert_close(ops.log_softmax_backward(ly, dy, axis=axis), want, 1e-5, 1e-6)
        out = np.empty_like(x)
        assert ops.softmax(x, axis=axis, out=out) is out
        np.testing.assert_array_equal(out, y)


def test_against_torch(isa):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(17)
    x = (rng.standard_normal((64, 33)) * 3).astype(np.float32)
    x[0, :9] = [-3, 0, 3, 6, -6, -1e-3, 25, -25, 1e-3]  # kinks and saturation, as PyTorch defines them
    dy = rng.standard_normal(x.shape).astype(np.float32)
    cases = {
        "relu": (F.relu, ops.relu, ops.relu_backward),
        "leaky_relu": (lambda t: F.leaky_relu(t, 0.3), ops.leaky_relu, ops.leaky_relu_backward),
        "elu": (F.elu, ops.elu, ops.elu_backward),
        "sigmoid": (torch.sigmoid, ops.sigmoid, ops.sigmoid_backward),
        "tanh": (torch.tanh, ops.tanh, ops.tanh_backward),
        "gelu": (F.gelu, ops.gelu, ops.gelu_backward),
        "gelu_tanh": (lambda t: F.gelu(t, approximate="tanh"), lambda a: ops.gelu(a, approximate=True),
                      lambda a, g: ops.gelu_backward(a, g, approximate=True)),
        "silu": (F.silu, ops.silu, ops.silu_backward),
        "softplus": (F.softplus, ops.softplus, ops.softplus_backward),
        "relu6": (F.relu6, ops.relu6, ops.relu6_backward),
        "hard_sigmoid": (F.hardsigmoid, ops.hard_sigmoid, ops.hard_sigmoid_backward),
        "hard_swish": (F.hardswish, ops.hard_swish, ops.hard_swish_backward),
        "selu": (F.selu, ops.selu, ops.selu_backward),
        "softmax": (lambda t: torch.softmax(t, -1), ops.softmax, None),
        "log_softmax": (lambda t: torch.log_softmax(t, -1), ops.log_softmax, None),
    }
    for name, (tf, fwd, bwd) in cases.items():
        t = torch.from_numpy(x.copy()).requires_grad_(True)
        ty = tf(t)
        ty.backward(torch.from_numpy(dy))
        y = fwd(x)
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
        dx = bwd(x, dy) if bwd else getattr(ops, name + "_backward")(y, dy)
        np.testing.assert_allclose(dx, t.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
