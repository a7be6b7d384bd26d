"""Optimizer classes against NumPy references of Keras's update rules, over
several steps, with schedules, clipping, weight decay and regularization."""
import numpy as np
import pytest

from cnnc import optimizers, regularizers
from cnnc.layers.base import Weight
from cnnc.optimizers import schedules

STEPS = 4


def _problem(rng, regularizer=None):
    w = Weight("w", rng.standard_normal((5, 7)).astype(np.float32), regularizer=regularizer)
    grads = [rng.standard_normal((5, 7)).astype(np.float32) * 3 for _ in range(STEPS)]
    return w, grads


def _run(opt, w, grads, regularize=False):
    for g in grads:
        w.grad[...] = g
        if regularize:
            opt.apply([w])
        else:
            opt.apply_gradients([(g.copy(), w)])
    return w.value


def sgd_ref(p, grads, lr, momentum=0.0, nesterov=False):
    p = p.astype(np.float64)
    v = np.zeros_like(p)
    for i, g in enumerate(grads):
        rate = lr(i) if callable(lr) else lr
        if momentum:
            v = momentum * v - rate * g
            p = p + (momentum * v - rate * g if nesterov else v)
        else:
            p = p - rate * g
    return p


def adam_ref(p, grads, lr, b1=0.9, b2=0.999, eps=1e-7, amsgrad=False, wd=0.0):
    p = p.astype(np.float64)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    vhat = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        p = p * (1 - lr * wd)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vhat = np.maximum(vhat, v)
        rate = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        p = p - rate * m / (np.sqrt(vhat if amsgrad else v) + eps)
    return p


def rmsprop_ref(p, grads, lr, rho=0.9, momentum=0.0, eps=1e-7, centered=False):
    p = p.astype(np.float64)
    ms = np.zeros_like(p)
    mg = np.zeros_like(p)
    mom = np.zeros_like(p)
    for g in grads:
        ms = rho * ms + (1 - rho) * g * g
        d = ms
        if centered:
            mg = rho * mg + (1 - rho) * g
            d = ms - mg * mg
        u = lr * g / np.sqrt(d + eps)
        if momentum:
            mom = momentum * mom + u
            p = p - mom
        else:
            p = p - u
    return p


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd(rng, momentum, nesterov):
    w, grads = _problem(rng)
    expected = sgd_ref(w.value, grads, 0.05, momentum, nesterov)
    got = _run(optimizers.SGD(0.05, momentum=momentum, nesterov=nesterov), w, grads)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_and_adamw(rng, amsgrad):
    w, grads = _problem(rng)
    p0 = w.value.copy()
    opt = optimizers.Adam(0.01, beta_1=0.8, beta_2=0.99, amsgrad=amsgrad)
    np.testing.assert_allclose(_run(opt, w, grads), adam_ref(p0, grads, 0.01, 0.8, 0.99,
                                                            amsgrad=amsgrad), rtol=1e-5, atol=1e-6)
    assert opt.iterations == STEPS
    w, grads = _problem(rng)
    p0 = w.value.copy()
    opt = optimizers.AdamW(0.01, weight_decay=0.1, amsgrad=amsgrad)
    np.testing.assert_allclose(_run(opt, w, grads), adam_ref(p0, grads, 0.01, wd=0.1,
                                                            amsgrad=amsgrad), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("momentum, centered", [(0.0, False), (0.5, False), (0.0, True),
                                                (0.5, True)])
def test_rmsprop(rng, momentum, centered):
    w, grads = _problem(rng)
    p0 = w.value.copy()
    opt = optimizers.RMSprop(0.01, rho=0.8, momentum=momentum, centered=centered)
    np.testing.assert_allclose(_run(opt, w, grads), rmsprop_ref(p0, grads, 0.01, 0.8, momentum,
                                                               centered=centered),
                               rtol=1e-5, atol=1e-6)
    assert sorted(opt.slots(w)) == sorted(["velocity"] + (["momentum"] if momentum else [])
                                          + (["average_gradient"] if centered else []))


def test_schedule_drives_learning_rate(rng):
    w, grads = _problem(rng)
    sched = schedules.PiecewiseConstantDecay([1, 2], [0.1, 0.05, 0.01])
    expected = sgd_ref(w.value, grads, sched)
    opt = optimizers.SGD(sched)
    assert opt.learning_rate == 0.1
    np.testing.assert_allclose(_run(opt, w, grads), expected, rtol=1e-5, atol=1e-6)
    assert opt.learning_rate == 0.01
    with pytest.raises(TypeError, match="schedule"):
        opt.learning_rate = 0.5


def test_clipping(rng):
    w, grads = _problem(rng)
    clipped = []
    for g in grads:
        norm = np.linalg.norm(g.astype(np.float64))
        clipped.append(g * min(1.0, 0.5 / norm))
    expected = sgd_ref(w.value, clipped, 0.1)
    np.testing.assert_allclose(_run(optimizers.SGD(0.1, clipnorm=0.5), w, grads), expected,
                               rtol=1e-5, atol=1e-6)

    w, grads = _problem(rng)
    expected = sgd_ref(w.value, [np.clip(g, -0.3, 0.3) for g in grads], 0.1)
    np.testing.assert_allclose(_run(optimizers.SGD(0.1, clipvalue=0.3), w, grads), expected,
                               rtol=1e-5, atol=1e-6)

    # global_clipnorm scales two weights together by their joint norm.
    a = Weight("a", rng.standard_normal(6).astype(np.float32))
    b = Weight("b", rng.standard_normal(3).astype(np.float32))
    ga, gb = rng.standard_normal(6).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    norm = np.sqrt(np.sum(ga.astype(np.float64) ** 2) + np.sum(gb.astype(np.float64) ** 2))
    scale = min(1.0, 0.4 / norm)
    a0, b0 = a.value.copy(), b.value.copy()
    optimizers.SGD(1.0, global_clipnorm=0.4).apply_gradients([(ga, a), (gb, b)])
    np.testing.assert_allclose(a.value, a0 - scale * ga, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b.value, b0 - scale * gb, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="at most one"):
        optimizers.SGD(clipnorm=1.0, global_clipnorm=1.0)


@pytest.mark.parametrize("clipnorm", [None, 1.0])
def test_regularization_added_by_apply(rng, clipnorm):
    reg = regularizers.l1_l2(l1=0.01, l2=0.02)
    w, grads = _problem(rng, regularizer=reg)
    p = w.value.astype(np.float64)
    for g in grads:
        full = g + 0.01 * np.sign(p) + 2 * 0.02 * p
        if clipnorm:
            full = full * min(1.0, clipnorm / np.linalg.norm(full))
        p = p - 0.1 * full
    got = _run(optimizers.SGD(0.1, clipnorm=clipnorm), w, grads, regularize=True)
    np.testing.assert_allclose(got, p, rtol=1e-5, atol=1e-5)


def test_custom_regularizer_gradient_is_used(rng):
    class Quartic(regularizers.Regularizer):
        def __call__(self, w):
            return float(np.sum(np.asarray(w, np.float64) ** 4))

        def gradient(self, w):
            return (4 * np.asarray(w) ** 3).astype(np.float32)
    w, grads = _problem(rng, regularizer=Quartic())
    p = w.value.astype(np.float64)
    for g in grads:
        p = p - 0.01 * (g + 4 * p ** 3)
    np.testing.assert_allclose(_run(optimizers.SGD(0.01), w, grads, regularize=True), p,
                               rtol=1e-4, atol=1e-5)


def test_weight_decay_of_sgd(rng):
    w, grads = _problem(rng)
    p = w.value.astype(np.float64)
    for g in grads:
        p = p * (1 - 0.1 * 0.05) - 0.1 * g
    np.testing.assert_allclose(_run(optimizers.SGD(0.1, weight_decay=0.05), w, grads), p,
                               rtol=1e-5, atol=1e-6)


def test_names_configs_and_errors():
    assert isinstance(optimizers.get("adam"), optimizers.Adam)
    assert isinstance(optimizers.get("SGD"), optimizers.SGD)
    assert isinstance(optimizers.get("RMSprop"), optimizers.RMSprop)
    assert isinstance(optimizers.get("adamw"), optimizers.AdamW)
    assert optimizers.get("sgd").learning_rate == 0.01
    with pytest.raises(ValueError, match="unknown optimizer"):
        optimizers.get("adagrad9")
    for opt in (optimizers.SGD(0.2, momentum=0.5, nesterov=True, clipnorm=2.0),
                optimizers.Adam(schedules.ExponentialDecay(0.1, 10, 0.5), amsgrad=True),
                optimizers.AdamW(weight_decay=0.01, clipvalue=1.0),
                optimizers.RMSprop(centered=True, momentum=0.3, global_clipnorm=1.0)):
        back = optimizers.deserialize(optimizers.serialize(opt))
        assert type(back) is type(opt) and back.get_config() == opt.get_config()
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(momentum=1.5)
    with pytest.raises(ValueError, match="beta_1"):
        optimizers.Adam(beta_1=1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.SGD(learning_rate=-1)
    w = Weight("w", np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="shape"):
        optimizers.SGD().apply_gradients([(np.zeros(3, np.float32), w)])
