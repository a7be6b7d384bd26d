"""The Adadelta, Adamax, Nadam, Lion and EMA kernels against float64 NumPy
references of the documented rules (written here, after the papers and
Keras's formulas), and against torch.optim where PyTorch has the optimizer;
every ISA, 1 and 2 threads."""
import numpy as np
import pytest

from cnnc import ops
from test_optim import problem, ref_grad

STEPS = 20


# ------------------------------------------------------------ references
def ref_adadelta(p, g, s, t, lr, rho=0.95, eps=1e-7, **kw):
    g, p = ref_grad(p, g, lr=lr, **kw)
    ag = rho * s["ag"] + (1 - rho) * g * g
    delta = np.sqrt(s["ad"] + eps) / np.sqrt(ag + eps) * g
    ad = rho * s["ad"] + (1 - rho) * delta * delta
    return p - lr * delta, {"ag": ag, "ad": ad}


def ref_adamax(p, g, s, t, lr, b1=0.9, b2=0.999, eps=1e-7, torch_style=False, **kw):
    g, p = ref_grad(p, g, lr=lr, **kw)
    m = b1 * s["m"] + (1 - b1) * g
    if torch_style:
        u = np.maximum(b2 * s["u"], np.abs(g) + eps)
        p = p - lr / (1 - b1**t) * m / u
    else:
        u = np.maximum(b2 * s["u"], np.abs(g))
        p = p - lr / (1 - b1**t) * m / (u + eps)
    return p, {"m": m, "u": u}


def nadam_mu(b1, t, decay=1.0):
    return b1 * (1 - 0.5 * 0.96 ** (t * decay))


def ref_nadam(p, g, s, t, lr, b1=0.9, b2=0.999, eps=1e-7, decay=1.0, **kw):
    """Keras's Nadam (decay 1) written as Keras writes it: m_hat, v_hat."""
    g, p = ref_grad(p, g, lr=lr, **kw)
    prod = s["prod"] * nadam_mu(b1, t, decay)
    u_t, u_next = nadam_mu(b1, t, decay), nadam_mu(b1, t + 1, decay)
    m = s["m"] + (g - s["m"]) * (1 - b1)
    v = s["v"] + (g * g - s["v"]) * (1 - b2)
    m_hat = u_next * m / (1 - prod * u_next) + (1 - u_t) * g / (1 - prod)
    v_hat = v / (1 - b2**t)
    return p - m_hat * lr / (np.sqrt(v_hat) + eps), {"m": m, "v": v, "prod": prod}


def ref_lion(p, g, s, t, lr, b1=0.9, b2=0.99, **kw):
    g, p = ref_grad(p, g, lr=lr, **kw)
    p = p - lr * np.sign(s["m"] * b1 + g * (1 - b1))
    return p, {"m": s["m"] * b2 + g * (1 - b2)}


REFS = {"adadelta": (ref_adadelta, ("ag", "ad")), "adamax": (ref_adamax, ("m", "u")),
        "nadam": (ref_nadam, ("m", "v")), "lion": (ref_lion, ("m",))}
RENAME = {"wd": "weight_decay", "decoupled": "decoupled", "scale": "grad_scale", "clip": "clipvalue",
          "l1": "l1", "l2": "l2", "torch_style": "torch_style", "b1": "beta_1", "b2": "beta_2",
          "eps": "epsilon", "rho": "rho", "decay": "momentum_decay"}


def ours_step(kind, p, g, st, t, lr, **kw):
    if kind == "adadelta":
        ops.adadelta_update(p, g, st[0], st[1], lr, **kw)
    elif kind == "adamax":
        ops.adamax_update(p, g, st[0], st[1], t, lr, **kw)
    elif kind == "nadam":
        ops.nadam_update(p, g, st[0], st[1], t, lr, **kw)
    else:
        ops.lion_update(p, g, st[0], lr, **kw)


def run(kind, p0, grads, lrs, **opts):
    ref, names = REFS[kind]
    p = p0.astype(np.float32).copy()
    st = [np.zeros_like(p) for _ in names]
    ref_p = p0.astype(np.float64)
    ref_s = {name: np.zeros_like(ref_p) for name in names}
    ref_s["prod"] = 1.0
    ours = {RENAME[k]: v for k, v in opts.items()}
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        g32 = g.astype(np.float32)
        ours_step(kind, p, g32, st, t, lr, **ours)
        ref_p, ref_s = ref(ref_p, g32.astype(np.float64), dict(ref_s, prod=ref_s.get("prod", 1.0)), t, lr,
                           **opts)
    return p, ref_p


# ------------------------------------------------------------ vs NumPy reference
CASES = [
    ("adadelta", {}),
    ("adadelta", {"rho": 0.9, "eps": 1e-6, "wd": 0.01}),
    ("adadelta", {"l1": 0.01, "l2": 0.01, "wd": 0.05, "decoupled": True, "scale": 0.5, "clip": 1.0}),
    ("adamax", {}),
    ("adamax", {"b1": 0.8, "b2": 0.95, "torch_style": True, "eps": 1e-8}),
    ("adamax", {"wd": 0.004, "decoupled": True, "clip": 1.5}),
    ("nadam", {}),
    ("nadam", {"decay": 0.004, "eps": 1e-8, "wd": 0.01}),
    ("nadam", {"b1": 0.8, "b2": 0.99, "l2": 0.01, "wd": 0.004, "decoupled": True, "scale": 0.7}),
    ("lion", {}),
    ("lion", {"b1": 0.5, "b2": 0.9, "wd": 0.1, "decoupled": True}),
    ("lion", {"b1": 1.0, "b2": 0.0, "l1": 0.01, "clip": 0.5}),
]


@pytest.mark.parametrize("kind, opts", CASES, ids=lambda c: c if isinstance(c, str) else "-".join(c))
def test_matches_reference(isa, threads, rng, kind, opts):
    p0, grads = problem(rng, n=1003)
    lrs = [0.01 * (1 - t / 40) for t in range(STEPS)]
    p, ref = run(kind, p0, grads, lrs, **opts)
    if kind == "lion":
        # sign() flips where the interpolation is near 0: compare all but the
        # few elements within rounding of a tie.
        close = np.isclose(p, ref, rtol=1e-5, atol=1e-6)
        assert close.mean() > 0.995, close.mean()
    else:
        np.testing.assert_allclose(p, ref, rtol=2e-5, atol=2e-6)


def test_lion_sign_of_zero_and_exact_steps(isa):
    """Each Lion step moves every element by exactly lr, or 0 where the
    interpolated momentum is 0."""
    p = np.zeros(37, np.float32)
    g = np.linspace(-1, 1, 37).astype(np.float32)
    g[18] = 0.0
    m = np.zeros_like(p)
    ops.lion_update(p, g, m, 0.125)
    np.testing.assert_array_equal(p, -0.125 * np.sign(g))
    np.testing.assert_allclose(m, 0.01 * g, rtol=1e-6)


def test_nadam_mu_product():
    want, b1 = 1.0, float(np.float32(0.9))  # the kernel takes beta_1 as a float
    for t in range(1, 50):
        want *= nadam_mu(b1, t)
        assert ops.nadam_mu_product(t, 0.9) == pytest.approx(want, rel=1e-12)
    # Continuing from an earlier product is bitwise the same as starting over.
    assert ops.nadam_mu_product(30, 0.9, 1.0, 10, ops.nadam_mu_product(10, 0.9)) == \
        ops.nadam_mu_product(30, 0.9)
    assert ops.nadam_mu_product(10 ** 6, 0.999) == 0.0  # underflow floor, quickly
    assert ops.nadam_mu_product(0, 0.9) == 1.0
    with pytest.raises(ValueError, match="from_step"):
        ops.nadam_mu_product(3, 0.9, 1.0, 5, 0.5)
    with pytest.raises(ValueError, match="beta_1"):
        ops.nadam_mu_product(3, 1.5)


def test_ema(isa, threads, rng):
    n = 70_001
    avg = rng.standard_normal(n).astype(np.float32)
    p = rng.standard_normal(n).astype(np.float32)
    want = 0.99 * avg.astype(np.float64) + 0.01 * p
    ops.ema_update(avg, p, 0.99)
    np.testing.assert_allclose(avg, want, rtol=1e-6, atol=1e-7)
    ops.ema_update(avg, p, 0.0)
    np.testing.assert_array_equal(avg, p)


# ------------------------------------------------------------ vs torch.optim
@pytest.mark.parametrize("case", [
    ("adadelta", {"rho": 0.9, "epsilon": 1e-6}, {"rho": 0.9, "eps": 1e-6}),
    ("adadelta", {"rho": 0.95, "epsilon": 1e-6, "weight_decay": 0.1},
     {"rho": 0.95, "eps": 1e-6, "weight_decay": 0.1}),
    ("adamax", {"epsilon": 1e-8, "torch_style": True}, {"eps": 1e-8}),
    ("adamax", {"epsilon": 1e-8, "torch_style": True, "weight_decay": 0.1, "beta_1": 0.8},
     {"eps": 1e-8, "weight_decay": 0.1, "betas": (0.8, 0.999)}),
    ("nadam", {"epsilon": 1e-8, "momentum_decay": 0.004}, {"eps": 1e-8}),
    ("nadam", {"epsilon": 1e-8, "momentum_decay": 1.0, "weight_decay": 0.1},
     {"eps": 1e-8, "momentum_decay": 1.0, "weight_decay": 0.1}),
    ("nadam", {"epsilon": 1e-8, "momentum_decay": 1.0, "weight_decay": 0.1, "decoupled": True},
     {"eps": 1e-8, "momentum_decay": 1.0, "weight_decay": 0.1, "decoupled_weight_decay": True}),
], ids=lambda c: c[0] + "-" + "-".join(sorted(c[1])))
def test_matches_torch_optim(isa, threads, rng, case):
    torch = pytest.importorskip("torch")
    kind, ours, theirs = case
    lr = 0.01
    p0, grads = problem(rng, n=300, steps=5)
    make = {"adadelta": torch.optim.Adadelta, "adamax": torch.optim.Adamax, "nadam": torch.optim.NAdam}[kind]
    pt = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float32))
    opt = make([pt], lr=lr, **theirs)
    p = p0.astype(np.float32).copy()
    st = [np.zeros_like(p), np.zeros_like(p)]
    for t, g in enumerate(grads, start=1):
        pt.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
        ours_step(kind, p, g.astype(np.float32), st, t, lr, **ours)
    np.testing.assert_allclose(p, pt.detach().numpy(), rtol=2e-5, atol=2e-6)


# ------------------------------------------------------------ bad input
def test_bad_input():
    p = np.ones(10, np.float32)
    g = np.ones(10, np.float32)
    z = lambda: np.zeros(10, np.float32)
    with pytest.raises(ValueError, match="rho"):
        ops.adadelta_update(p, g, z(), z(), 0.1, rho=1.0)
    with pytest.raises(ValueError, match="overlap"):
        a = z()
        ops.adadelta_update(p, g, a, a, 0.1)
    with pytest.raises(ValueError, match="acc_delta"):
        ops.adadelta_update(p, g, z(), None, 0.1)
    with pytest.raises(ValueError, match="step"):
        ops.adamax_update(p, g, z(), z(), 0, 0.1)
    with pytest.raises(ValueError, match="beta_2"):
        ops.adamax_update(p, g, z(), z(), 1, 0.1, beta_2=float("nan"))
    with pytest.raises(ValueError, match="u"):
        ops.adamax_update(p, g, z(), np.zeros(9, np.float32), 1, 0.1)
    with pytest.raises(ValueError, match="mu_product"):
        ops.nadam_update(p, g, z(), z(), 1, 0.1, mu_product=1.0)
    with pytest.raises(ValueError, match="momentum_decay"):
        ops.nadam_update(p, g, z(), z(), 1, 0.1, momentum_decay=-1.0)
    with pytest.raises(ValueError, match="step"):
        ops.nadam_update(p, g, z(), z(), 0, 0.1)
    with pytest.raises(ValueError, match="beta_1"):
        ops.lion_update(p, g, z(), 0.1, beta_1=1.5)
    with pytest.raises(ValueError, match="overlaps"):
        ops.lion_update(p, g, p, 0.1)
    with pytest.raises(ValueError, match="momentum"):
        ops.ema_update(z(), p, 1.5)
    with pytest.raises(ValueError, match="shape"):
        ops.ema_update(z(), np.ones(11, np.float32), 0.5)
    with pytest.raises(TypeError, match="average"):
        ops.ema_update(None, p, 0.5)
    with pytest.raises(ValueError, match="read-only"):
        ro = z()
        ro.flags.writeable = False
        ops.ema_update(ro, p, 0.5)
    assert np.all(p == 1)  # nothing was updated by the failed calls
