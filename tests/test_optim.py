"""Optimizer updates against float64 NumPy references of the documented rules
(written here), and against torch.optim where installed; every ISA, 1 and 2
threads."""
import numpy as np
import pytest

import cnnc
from cnnc import ops

STEPS = 20


# ------------------------------------------------------------ references
def ref_grad(p, g, l1=0.0, l2=0.0, wd=0.0, decoupled=False, lr=0.0, scale=1.0, clip=None):
    """The documented gradient transform; returns (g, p after decoupled decay)."""
    g = g + l1 * np.sign(p) + 2 * l2 * p
    g = g * scale
    if clip is not None:
        g = np.clip(g, -clip, clip)
    if decoupled:
        return g, p * (1 - lr * wd)
    return g + wd * p, p


def ref_sgd(p, g, s, lr, momentum=0.0, nesterov=False, torch_style=False, **kw):
    g, p = ref_grad(p, g, lr=lr, **kw)
    if momentum == 0:
        return p - lr * g, s
    if not torch_style:
        v = momentum * s["v"] - lr * g
        p = p + (momentum * v - lr * g if nesterov else v)
    else:
        v = momentum * s["v"] + g
        p = p - lr * (g + momentum * v if nesterov else v)
    return p, {"v": v}


def ref_adam(p, g, s, t, lr, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False, torch_style=False, **kw):
    g, p = ref_grad(p, g, lr=lr, **kw)
    m = b1 * s["m"] + (1 - b1) * g
    v = b2 * s["v"] + (1 - b2) * g * g
    s = {"m": m, "v": v, "vhat": s["vhat"]}
    if amsgrad:
        s["vhat"] = v = np.maximum(s["vhat"], v)
    bc1, bc2 = 1 - b1**t, 1 - b2**t
    if torch_style:
        p = p - lr / bc1 * m / (np.sqrt(v) / np.sqrt(bc2) + eps)
    else:
        p = p - lr * np.sqrt(bc2) / bc1 * m / (np.sqrt(v) + eps)
    return p, s


def ref_rmsprop(p, g, s, lr, rho=0.9, momentum=0.0, eps=1e-7, centered=False, torch_style=False, **kw):
    g, p = ref_grad(p, g, lr=lr, **kw)
    s = dict(s)
    s["ms"] = rho * s["ms"] + (1 - rho) * g * g
    d = s["ms"]
    if centered:
        s["mg"] = rho * s["mg"] + (1 - rho) * g
        d = d - s["mg"] ** 2
    u = g / (np.sqrt(d) + eps) if torch_style else lr * g / np.sqrt(d + eps)
    if momentum > 0:
        s["mom"] = momentum * s["mom"] + u
        u = s["mom"]
    return (p - lr * u if torch_style else p - u), s


def ref_adagrad(p, g, s, lr, eps=1e-7, torch_style=False, **kw):
    g, p = ref_grad(p, g, lr=lr, **kw)
    acc = s["acc"] + g * g
    denom = np.sqrt(acc) + eps if torch_style else np.sqrt(acc + eps)
    return p - lr * g / denom, {"acc": acc}


def run(kind, p0, grads, lrs, shape=None, **opts):
    """cnnc and the float64 reference over len(grads) steps; returns both."""
    shape = shape or p0.shape
    p = p0.astype(np.float32).reshape(shape).copy()
    z = lambda: np.zeros(shape, np.float32)
    ref_p = p0.astype(np.float64).reshape(shape)
    if kind == "sgd":
        st, ref_s = z(), {"v": np.zeros(shape)}
    elif kind == "adam":
        st = (z(), z(), z() if opts.get("amsgrad") else None)
        ref_s = {"m": np.zeros(shape), "v": np.zeros(shape), "vhat": np.zeros(shape)}
    elif kind == "adagrad":
        st, ref_s = np.full(shape, 0.1, np.float32), {"acc": np.full(shape, 0.1)}
    else:
        st = (z(), z() if opts.get("momentum", 0) > 0 else None, z() if opts.get("centered") else None)
        ref_s = {"ms": np.zeros(shape), "mom": np.zeros(shape), "mg": np.zeros(shape)}
    rename = {"l1": "l1", "l2": "l2", "wd": "weight_decay", "decoupled": "decoupled", "scale": "grad_scale",
              "clip": "clipvalue", "momentum": "momentum", "nesterov": "nesterov", "torch_style": "torch_style",
              "b1": "beta_1", "b2": "beta_2", "eps": "epsilon", "rho": "rho", "centered": "centered"}
    ours = {rename[k]: v for k, v in opts.items() if k != "amsgrad"}
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        g32 = g.astype(np.float32).reshape(shape)
        if kind == "sgd":
            ops.sgd_update(p, g32, st, lr, **ours)
            ref_p, ref_s = ref_sgd(ref_p, g32.astype(np.float64), ref_s, lr, **opts)
        elif kind == "adam":
            ops.adam_update(p, g32, st[0], st[1], t, lr, vhat=st[2], **ours)
            ref_p, ref_s = ref_adam(ref_p, g32.astype(np.float64), ref_s, t, lr, **opts)
        elif kind == "adagrad":
            ops.adagrad_update(p, g32, st, lr, **ours)
            ref_p, ref_s = ref_adagrad(ref_p, g32.astype(np.float64), ref_s, lr, **opts)
        else:
            ops.rmsprop_update(p, g32, st[0], lr, mom=st[1], mg=st[2], **ours)
            ref_p, ref_s = ref_rmsprop(ref_p, g32.astype(np.float64), ref_s, lr, **opts)
    return p, ref_p


def problem(rng, n=1000, steps=STEPS):
    p0 = rng.standard_normal(n)
    p0[:3] = 0.0  # sign(0) = 0 for L1
    grads = [rng.standard_normal(n) * (1 + t % 3) for t in range(steps)]
    return p0, grads


# ------------------------------------------------------------ vs NumPy reference
SGD_CASES = [
    {},
    {"momentum": 0.9},
    {"momentum": 0.9, "nesterov": True},
    {"momentum": 0.8, "torch_style": True},
    {"momentum": 0.8, "nesterov": True, "torch_style": True, "wd": 0.01},
    {"momentum": 0.5, "l1": 0.01, "l2": 0.02, "wd": 0.1, "decoupled": True, "scale": 0.5, "clip": 1.5},
]


@pytest.mark.parametrize("opts", SGD_CASES)
def test_sgd_matches_reference(isa, threads, rng, opts):
    p0, grads = problem(rng, n=1003)
    lrs = [0.05 * (1 - t / 40) for t in range(STEPS)]  # a decaying rate separates the two conventions
    p, ref = run("sgd", p0, grads, lrs, shape=(17, 59), **opts)
    np.testing.assert_allclose(p, ref, rtol=2e-5, atol=2e-6)


ADAM_CASES = [
    {},
    {"eps": 1e-8, "torch_style": True},
    {"amsgrad": True, "b1": 0.8, "b2": 0.99},
    {"amsgrad": True, "torch_style": True, "wd": 0.01},
    {"wd": 0.004, "decoupled": True},
    {"l1": 0.003, "l2": 0.01, "scale": 0.7, "clip": 2.0, "wd": 0.05, "decoupled": True, "torch_style": True},
]


@pytest.mark.parametrize("opts", ADAM_CASES)
def test_adam_matches_reference(isa, threads, rng, opts):
    p0, grads = problem(rng, n=777)
    p, ref = run("adam", p0, grads, [1e-2] * STEPS, **opts)
    np.testing.assert_allclose(p, ref, rtol=2e-5, atol=2e-6)


RMSPROP_CASES = [
    {},
    {"centered": True},
    {"momentum": 0.9},
    {"momentum": 0.9, "centered": True, "rho": 0.99, "eps": 1e-8, "torch_style": True},
    {"torch_style": True, "wd": 0.01},
    {"momentum": 0.5, "l1": 0.01, "l2": 0.01, "wd": 0.004, "decoupled": True, "clip": 1.0},
]


@pytest.mark.parametrize("opts", RMSPROP_CASES)
def test_rmsprop_matches_reference(isa, threads, rng, opts):
    p0, grads = problem(rng, n=501)
    p, ref = run("rmsprop", p0, grads, [1e-3] * STEPS, **opts)
    np.testing.assert_allclose(p, ref, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("opts", [{}, {"torch_style": True, "eps": 1e-10, "wd": 0.01},
                                  {"l2": 0.01, "wd": 0.004, "decoupled": True, "clip": 1.0}])
def test_adagrad_matches_reference(isa, threads, rng, opts):
    p0, grads = problem(rng, n=333)
    p, ref = run("adagrad", p0, grads, [1e-2] * STEPS, **opts)
    np.testing.assert_allclose(p, ref, rtol=2e-5, atol=2e-6)


def test_large_arrays_threads_deterministic(rng):
    """Big enough for two threads: the update is bitwise the same on 1 or 2."""
    n = 200_003
    p0 = rng.standard_normal(n).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    results = []
    previous = cnnc.get_num_threads()
    try:
        for nt in (1, 2):
            cnnc.set_num_threads(nt)
            p, m, v = p0.copy(), np.zeros(n, np.float32), np.zeros(n, np.float32)
            for t in range(1, 4):
                ops.adam_update(p, g, m, v, t, 1e-3)
            results.append((p, ops.sum_squares(g), ops.global_norm_sq([g, p0])))
    finally:
        cnnc.set_num_threads(previous)
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1] == results[1][1]
    assert results[0][2] == results[1][2]
    assert results[0][1] == pytest.approx(float((g.astype(np.float64) ** 2).sum()), rel=1e-6)
    p, ref = run("adam", p0[:5000].astype(np.float64), [g[:5000].astype(np.float64)] * 3, [1e-3] * 3)
    np.testing.assert_allclose(p, ref, rtol=2e-5, atol=1e-6)


def test_sum_squares(isa, threads, rng):
    for n in (1, 15, 1025, 70001):
        x = rng.standard_normal(n).astype(np.float32)
        assert ops.sum_squares(x) == pytest.approx(float((x.astype(np.float64) ** 2).sum()), rel=1e-6)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((3, 3), (100,), (7, 2, 5))]
    want = sum(float((a.astype(np.float64) ** 2).sum()) for a in arrays)
    assert ops.global_norm_sq(arrays) == pytest.approx(want, rel=1e-6)
    assert ops.sum_squares(np.zeros(0, np.float32)) == 0.0


# ------------------------------------------------------------ vs torch.optim
def torch_run(torch, make_opt, p0, grads):
    pt = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float32))
    opt = make_opt([pt])
    for g in grads:
        pt.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
    return pt.detach().numpy()


@pytest.mark.parametrize("case", [
    ("sgd", {"momentum": 0.9}, {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
     {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("sgd", {"momentum": 0.9, "nesterov": True, "torch_style": True, "weight_decay": 0.01},
     {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("adam", {"epsilon": 1e-8, "torch_style": True}, {"eps": 1e-8}),
    ("adam", {"epsilon": 1e-8, "torch_style": True, "weight_decay": 0.1, "beta_1": 0.8, "beta_2": 0.95},
     {"eps": 1e-8, "weight_decay": 0.1, "betas": (0.8, 0.95)}),
    ("adam", {"epsilon": 1e-8, "torch_style": True, "amsgrad": True}, {"eps": 1e-8, "amsgrad": True}),
    ("adamw", {"epsilon": 1e-8, "torch_style": True, "weight_decay": 0.01, "decoupled": True},
     {"eps": 1e-8, "weight_decay": 0.01}),
    ("adamw", {"epsilon": 1e-8, "torch_style": True, "weight_decay": 0.1, "decoupled": True, "amsgrad": True},
     {"eps": 1e-8, "weight_decay": 0.1, "amsgrad": True}),
    ("rmsprop", {"rho": 0.99, "epsilon": 1e-8, "torch_style": True}, {"alpha": 0.99, "eps": 1e-8}),
    ("adagrad", {"epsilon": 1e-10, "torch_style": True, "weight_decay": 0.01}, {"eps": 1e-10, "weight_decay": 0.01}),
    ("rmsprop", {"rho": 0.9, "epsilon": 1e-8, "torch_style": True, "centered": True, "momentum": 0.9},
     {"alpha": 0.9, "eps": 1e-8, "centered": True, "momentum": 0.9}),
    ("rmsprop", {"rho": 0.99, "epsilon": 1e-8, "torch_style": True, "momentum": 0.5, "weight_decay": 0.01},
     {"alpha": 0.99, "eps": 1e-8, "momentum": 0.5, "weight_decay": 0.01}),
], ids=lambda c: c[0] + "-" + "-".join(sorted(c[1])))
def test_matches_torch_optim(isa, threads, rng, case):
    torch = pytest.importorskip("torch")
    kind, ours, theirs = case
    lr = 0.01
    p0, grads = problem(rng, n=300)
    make = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
            "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad}[kind]
    want = torch_run(torch, lambda ps: make(ps, lr=lr, **theirs), p0, grads)
    p = p0.astype(np.float32).copy()
    st = [np.zeros_like(p) for _ in range(3)]
    opts = dict(ours)
    amsgrad = opts.pop("amsgrad", False)
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float32)
        if kind == "sgd":
            ops.sgd_update(p, g, st[0], lr, **opts)
        elif kind in ("adam", "adamw"):
            ops.adam_update(p, g, st[0], st[1], t, lr, vhat=st[2] if amsgrad else None, **opts)
        elif kind == "adagrad":
            ops.adagrad_update(p, g, st[0], lr, **opts)
        else:
            ops.rmsprop_update(p, g, st[0], lr, mom=st[1], mg=st[2], **opts)
    np.testing.assert_allclose(p, want, rtol=2e-5, atol=2e-6)


def test_keras_and_torch_conventions(rng):
    """The documented translations: Keras SGD equals PyTorch SGD for a constant
    lr and differs when it changes; Keras Adam equals PyTorch Adam at step t
    with eps_keras = eps_torch sqrt(1 - b2^t)."""
    p0, grads = problem(rng, n=64, steps=5)
    keras, _ = run("sgd", p0, grads, [0.1] * 5, momentum=0.9)
    torch_like, _ = run("sgd", p0, grads, [0.1] * 5, momentum=0.9, torch_style=True)
    np.testing.assert_allclose(keras, torch_like, rtol=1e-5, atol=1e-6)
    keras, _ = run("sgd", p0, grads, [0.1, 0.05, 0.02, 0.01, 0.1], momentum=0.9)
    torch_like, _ = run("sgd", p0, grads, [0.1, 0.05, 0.02, 0.01, 0.1], momentum=0.9, torch_style=True)
    assert np.abs(keras - torch_like).max() > 1e-3
    p = p0[:8].astype(np.float32)
    g = grads[0][:8].astype(np.float32) * 1e-6  # small gradients: where eps matters
    a, b = p.copy(), p.copy()
    ops.adam_update(a, g, np.zeros_like(p), np.zeros_like(p), 1, 0.1, epsilon=1e-8 * np.sqrt(1 - 0.999))
    ops.adam_update(b, g, np.zeros_like(p), np.zeros_like(p), 1, 0.1, epsilon=1e-8, torch_style=True)
    np.testing.assert_allclose(a, b, rtol=1e-6)


# ------------------------------------------------------------ bad input
def test_bad_input():
    p = np.ones(10, np.float32)
    g = np.ones(10, np.float32)
    z = lambda: np.zeros(10, np.float32)
    with pytest.raises(ValueError, match="lr"):
        ops.sgd_update(p, g, None, float("nan"))
    with pytest.raises(ValueError, match="lr"):
        ops.sgd_update(p, g, None, -0.1)
    with pytest.raises(ValueError, match="momentum"):
        ops.sgd_update(p, g, z(), 0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="velocity"):
        ops.sgd_update(p, g, None, 0.1, momentum=0.9)
    with pytest.raises(ValueError, match="grad"):
        ops.sgd_update(p, np.ones(11, np.float32), None, 0.1)
    with pytest.raises(ValueError, match="velocity"):
        ops.sgd_update(p, g, np.zeros(9, np.float32), 0.1, momentum=0.9)
    with pytest.raises(ValueError, match="overlaps"):
        ops.sgd_update(p, g, p, 0.1, momentum=0.9)
    with pytest.raises(TypeError, match="float32"):
        ops.sgd_update(np.ones(10), g, None, 0.1)
    with pytest.raises(ValueError, match="contiguous"):
        ops.sgd_update(np.ones(20, np.float32)[::2], g, None, 0.1)
    with pytest.raises(ValueError, match="step"):
        ops.adam_update(p, g, z(), z(), 0, 0.1)
    with pytest.raises(ValueError, match="beta_1"):
        ops.adam_update(p, g, z(), z(), 1, 0.1, beta_1=1.0)
    with pytest.raises(ValueError, match="beta_2"):
        ops.adam_update(p, g, z(), z(), 1, 0.1, beta_2=float("nan"))
    with pytest.raises(ValueError, match="epsilon"):
        ops.adam_update(p, g, z(), z(), 1, 0.1, epsilon=-1e-7)
    with pytest.raises(ValueError, match="weight_decay"):
        ops.adam_update(p, g, z(), z(), 1, 0.1, weight_decay=-0.01)
    with pytest.raises(ValueError, match="l2"):
        ops.adam_update(p, g, z(), z(), 1, 0.1, l2=-1.0)
    with pytest.raises(ValueError, match="clipvalue"):
        ops.adam_update(p, g, z(), z(), 1, 0.1, clipvalue=0.0)
    with pytest.raises(ValueError, match="mg"):
        ops.rmsprop_update(p, g, z(), 0.1, centered=True)
    with pytest.raises(ValueError, match="mom"):
        ops.rmsprop_update(p, g, z(), 0.1, momentum=0.9)
    with pytest.raises(ValueError, match="rho"):
        ops.rmsprop_update(p, g, z(), 0.1, rho=1.5)
    with pytest.raises(TypeError, match="lr"):
        ops.rmsprop_update(p, g, z(), "fast")
    with pytest.raises(ValueError, match="epsilon"):
        ops.adagrad_update(p, g, z(), 0.1, epsilon=-1.0)
    with pytest.raises(ValueError, match="accumulator"):
        ops.adagrad_update(p, g, None, 0.1)
    assert np.all(p == 1)  # nothing was updated by the failed calls
