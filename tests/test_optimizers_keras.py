"""The optimizer classes with Keras 3's arguments: Adagrad, Adadelta, Adamax,
Nadam and Lion against float64 NumPy references of Keras's formulas and
torch.optim where the rules coincide; weight decay, clipping (against
torch.nn.utils.clip_grad_norm_ / clip_grad_value_) and the moving average
of the weights on every optimizer; configs, saving and exact resumption."""
import numpy as np
import pytest

from cnnc import optimizers
from cnnc.layers import Dense, Input
from cnnc.layers.base import Weight
from cnnc.models import Model, load_model
from cnnc.saving import CorruptFileError
from cnnc.utils import set_random_seed
from test_optim import ref_adagrad
from test_optim_adaptive import ref_adadelta, ref_adamax, ref_lion, ref_nadam

STEPS = 5
SHAPES = [(5, 7), (11,)]
ALL = ["sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "lion"]


def _problem(rng):
    weights = [Weight(f"w{i}", rng.standard_normal(s).astype(np.float32)) for i, s in enumerate(SHAPES)]
    grads = [[(rng.standard_normal(s) * 3).astype(np.float32) for s in SHAPES] for _ in range(STEPS)]
    return weights, grads


def _run(opt, weights, grads):
    for step in grads:
        opt.apply_gradients([(g.copy(), w) for g, w in zip(step, weights)])
    return [w.value for w in weights]


def _keras_ref(kind, p0, grads, lr, wd, **hp):
    """Keras's update of one weight over the steps, in float64; weight decay
    is Keras's: w -= lr * wd * w before each step."""
    p = p0.astype(np.float64)
    if kind == "adagrad":
        s = {"acc": np.full_like(p, hp.pop("init", 0.1))}
    else:
        s = {k: np.zeros_like(p) for k in ("ag", "ad", "m", "u", "v")}
        s["prod"] = 1.0
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        kw = dict(hp, wd=wd, decoupled=True)
        if kind == "adagrad":
            p, s = ref_adagrad(p, g, s, lr, **kw)
        else:
            ref = {"adadelta": ref_adadelta, "adamax": ref_adamax, "nadam": ref_nadam, "lion": ref_lion}[kind]
            p, new = ref(p, g, s, t, lr, **kw)
            s = dict(s, **new)
    return p


NEW = [
    ("adagrad", optimizers.Adagrad, {}, {}),
    ("adagrad", optimizers.Adagrad, {"initial_accumulator_value": 0.5, "epsilon": 1e-4},
     {"init": 0.5, "eps": 1e-4}),
    ("adadelta", optimizers.Adadelta, {}, {}),
    ("adadelta", optimizers.Adadelta, {"rho": 0.8, "epsilon": 1e-5}, {"rho": 0.8, "eps": 1e-5}),
    ("adamax", optimizers.Adamax, {}, {}),
    ("adamax", optimizers.Adamax, {"beta_1": 0.7, "beta_2": 0.9}, {"b1": 0.7, "b2": 0.9}),
    ("nadam", optimizers.Nadam, {}, {}),
    ("nadam", optimizers.Nadam, {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-5},
     {"b1": 0.8, "b2": 0.99, "eps": 1e-5}),
    ("lion", optimizers.Lion, {}, {}),
    ("lion", optimizers.Lion, {"beta_1": 0.5, "beta_2": 0.9}, {"b1": 0.5, "b2": 0.9}),
]


@pytest.mark.parametrize("wd", [None, 0.1])
@pytest.mark.parametrize("kind, cls, args, hp", NEW, ids=lambda c: c if isinstance(c, str) else None)
def test_new_optimizers_match_keras_formulas(rng, kind, cls, args, hp, wd):
    weights, grads = _problem(rng)
    p0 = [w.value.copy() for w in weights]
    lr = 0.05 if kind == "adadelta" else 0.01
    opt = cls(lr, weight_decay=wd, **args)
    got = _run(opt, weights, grads)
    for i, p in enumerate(got):
        want = _keras_ref(kind, p0[i], [step[i] for step in grads], lr, wd or 0.0, **hp)
        if kind == "lion":  # unit steps: compare all but ties of the sign within rounding
            assert np.isclose(p, want, rtol=1e-5, atol=1e-6).mean() > 0.99
        else:
            np.testing.assert_allclose(p, want, rtol=2e-5, atol=2e-6)
    assert opt.iterations == STEPS


def _torch_run(torch, make, p0s, grads, clip=None):
    params = [torch.nn.Parameter(torch.tensor(p, dtype=torch.float32)) for p in p0s]
    opt = make(params)
    for step in grads:
        for pt, g in zip(params, step):
            pt.grad = torch.tensor(g, dtype=torch.float32)
        if clip is not None:
            clip(torch, params)
        opt.step()
    return [pt.detach().numpy() for pt in params]


# Where Keras's rule and PyTorch's coincide: same arguments give the same steps.
TORCH_SAME = [
    ("Adagrad", lambda: optimizers.Adagrad(0.1, initial_accumulator_value=0.1, epsilon=0.0),
     lambda t, ps: t.optim.Adagrad(ps, lr=0.1, initial_accumulator_value=0.1, eps=0.0)),
    ("Adadelta", lambda: optimizers.Adadelta(1.0, rho=0.9, epsilon=1e-6),
     lambda t, ps: t.optim.Adadelta(ps, lr=1.0, rho=0.9, eps=1e-6)),
    ("Adamax", lambda: optimizers.Adamax(0.01, epsilon=0.0),
     lambda t, ps: t.optim.Adamax(ps, lr=0.01, eps=0.0)),
    ("Nadam", lambda: optimizers.Nadam(0.01, epsilon=1e-7),
     lambda t, ps: t.optim.NAdam(ps, lr=0.01, eps=1e-7, momentum_decay=1.0)),
    ("Nadam-wd", lambda: optimizers.Nadam(0.01, epsilon=1e-7, weight_decay=0.1),
     lambda t, ps: t.optim.NAdam(ps, lr=0.01, eps=1e-7, momentum_decay=1.0, weight_decay=0.1,
                                 decoupled_weight_decay=True)),
    ("SGD-wd", lambda: optimizers.SGD(0.1, momentum=0.9, weight_decay=0.1),
     None),  # Keras's decoupled SGD decay has no torch.optim twin; see test_weight_decay
    ("AdamW", lambda: optimizers.AdamW(0.01, weight_decay=0.1, epsilon=1e-8),
     None),  # Keras's Adam epsilon differs from PyTorch's (test_optim covers torch_style)
]


@pytest.mark.parametrize("name, ours, theirs", [c for c in TORCH_SAME if c[2] is not None],
                         ids=lambda c: c if isinstance(c, str) else None)
def test_matches_torch_where_rules_coincide(rng, name, ours, theirs):
    torch = pytest.importorskip("torch")
    weights, grads = _problem(rng)
    want = _torch_run(torch, lambda ps: theirs(torch, ps), [w.value.copy() for w in weights], grads)
    for got, w in zip(_run(ours(), weights, grads), want):
        np.testing.assert_allclose(got, w, rtol=2e-5, atol=2e-6)


CLIPS = [
    ({"clipnorm": 1.0},
     lambda t, ps: [t.nn.utils.clip_grad_norm_([p], 1.0) for p in ps]),
    ({"global_clipnorm": 2.0},
     lambda t, ps: t.nn.utils.clip_grad_norm_(ps, 2.0)),
    ({"clipvalue": 0.5},
     lambda t, ps: t.nn.utils.clip_grad_value_(ps, 0.5)),
]
CLIPPED = [
    (lambda **c: optimizers.SGD(0.1, momentum=0.9, **c), lambda t, ps: t.optim.SGD(ps, lr=0.1, momentum=0.9)),
    (lambda **c: optimizers.Adam(0.01, epsilon=1e-8, **c), None),
    (lambda **c: optimizers.Adadelta(1.0, rho=0.9, epsilon=1e-6, **c),
     lambda t, ps: t.optim.Adadelta(ps, lr=1.0, rho=0.9, eps=1e-6)),
    (lambda **c: optimizers.Nadam(0.01, **c),
     lambda t, ps: t.optim.NAdam(ps, lr=0.01, eps=1e-7, momentum_decay=1.0)),
    (lambda **c: optimizers.Adagrad(0.1, epsilon=0.0, **c),
     lambda t, ps: t.optim.Adagrad(ps, lr=0.1, initial_accumulator_value=0.1, eps=0.0)),
]


@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: next(iter(c[0])))
@pytest.mark.parametrize("which", [0, 2, 3, 4])
def test_clipping_matches_torch_utils(rng, clip, which):
    """clip_grad_norm_ divides by norm + 1e-6, Keras by max(norm, clipnorm):
    the difference is far below the tolerance for these norms (> 3)."""
    torch = pytest.importorskip("torch")
    ours, theirs = CLIPPED[which]
    args, clip_fn = clip
    weights, grads = _problem(rng)
    want = _torch_run(torch, lambda ps: theirs(torch, ps), [w.value.copy() for w in weights], grads, clip_fn)
    for got, w in zip(_run(ours(**args), weights, grads), want):
        np.testing.assert_allclose(got, w, rtol=2e-5, atol=2e-6)


def test_clip_options_are_exclusive_as_in_keras():
    with pytest.raises(ValueError, match="at most one"):
        optimizers.Lion(clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="at most one"):
        optimizers.Adagrad(global_clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="clipvalue"):
        optimizers.Nadam(clipvalue=0.0)


@pytest.mark.parametrize("name", ALL)
def test_weight_decay_is_decoupled_on_every_optimizer(rng, name):
    """Keras: w -= lr * wd * w, then the optimizer's step on the same
    gradient; so with decay the result is the step taken from the decayed
    weight. Checked by one step from p against one step from p (1 - lr wd)."""
    cls = type(optimizers.get(name))
    w = Weight("w", rng.standard_normal(40).astype(np.float32))
    g = rng.standard_normal(40).astype(np.float32)
    p0 = w.value.copy()
    kwargs = {} if name == "adamw" else {"weight_decay": 0.5}
    opt = cls(0.1, **kwargs) if name != "adamw" else cls(0.1, weight_decay=0.5)
    opt.apply_gradients([(g, w)])
    plain = Weight("w", (p0.astype(np.float64) * (1 - 0.1 * 0.5)).astype(np.float32))
    other = cls(0.1) if name != "adamw" else optimizers.Adam(0.1)
    other.apply_gradients([(g, plain)])
    np.testing.assert_allclose(w.value, plain.value, rtol=1e-5, atol=1e-6)
    assert np.abs(w.value - p0).max() > 1e-3


def test_exclude_from_weight_decay(rng):
    kernel = Weight("dense/kernel", np.ones(4, np.float32))
    bias = Weight("dense/bias", np.ones(4, np.float32))
    other = Weight("other", np.ones(4, np.float32))
    opt = optimizers.SGD(0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_list=[other], var_names=["bias"])
    zero = np.zeros(4, np.float32)
    opt.apply_gradients([(zero, kernel), (zero, bias), (zero, other)])
    np.testing.assert_allclose(kernel.value, 0.95)
    np.testing.assert_array_equal(bias.value, 1.0)
    np.testing.assert_array_equal(other.value, 1.0)


# ------------------------------------------------------------ moving average
@pytest.mark.parametrize("freq", [None, 3])
@pytest.mark.parametrize("name", ["sgd", "nadam", "lion"])
def test_ema_matches_numpy_reference(rng, name, freq):
    """The weights follow the optimizer alone; the average follows Keras's
    rule (average = w after the first update, then momentum averaging), and
    every freq-th update copies the average into the weight."""
    weights, grads = _problem(rng)
    cls = type(optimizers.get(name))
    opt = cls(0.05, use_ema=True, ema_momentum=0.8, ema_overwrite_frequency=freq)
    twin = cls(0.05)  # the same updates, replayed on copies to get each step's weights
    copies = [Weight(w.name, w.value.copy()) for w in weights]
    averages = [None, None]
    for it, step in enumerate(grads):
        opt.apply_gradients([(g.copy(), w) for g, w in zip(step, weights)])
        twin.apply_gradients([(g.copy(), w) for g, w in zip(step, copies)])
        for i, c in enumerate(copies):
            v = c.value.astype(np.float64)
            averages[i] = v if it == 0 else 0.8 * averages[i] + 0.2 * v
            if freq and (it + 1) % freq == 0:
                c.value[...] = averages[i]
        for i, w in enumerate(weights):
            np.testing.assert_allclose(opt.slots(w)["average"], averages[i], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(w.value, copies[i].value, rtol=1e-5, atol=1e-6)
    before = [w.value.copy() for w in weights]
    opt.finalize_variable_values(weights)
    for i, w in enumerate(weights):
        np.testing.assert_allclose(w.value, averages[i], rtol=1e-5, atol=1e-6)
        assert freq or np.abs(before[i] - w.value).max() > 1e-4


def _model():
    inp = Input((6,), name="x")
    h = Dense(8, "tanh", name="d1")(inp)
    return Model(inp, Dense(3, "softmax", name="head")(h), name="m")


def _data(rng, n=48):
    x = rng.standard_normal((n, 6)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[(x[:, 0] > 0).astype(int) + (x[:, 1] > 1)]
    return x, y


def test_fit_swaps_in_the_moving_average_at_the_end(rng):
    x, y = _data(rng)
    results = []
    for use_ema in (False, True):
        set_random_seed(5)
        model = _model()
        model.compile(optimizers.Adam(0.05, use_ema=use_ema, ema_momentum=0.9), "categorical_crossentropy")
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
        results.append(model)
    plain, ema = results
    for w in ema.trainable_weights:
        np.testing.assert_array_equal(w.value, ema.optimizer.slots(w)["average"])
    assert any(np.abs(a.value - b.value).max() > 1e-3
               for a, b in zip(plain.trainable_weights, ema.trainable_weights))


# ------------------------------------------------------------ configs, names, saving
def _configured(name):
    cls = type(optimizers.get(name))
    extra = {"weight_decay": 0.01} if name != "adamw" else {}
    return cls(0.02, use_ema=True, ema_momentum=0.95, ema_overwrite_frequency=7, clipnorm=1.5, **extra)


@pytest.mark.parametrize("name", ALL)
def test_config_round_trip(name):
    opt = _configured(name)
    back = optimizers.deserialize(optimizers.serialize(opt))
    assert type(back) is type(opt) and back.get_config() == opt.get_config()
    config = opt.get_config()
    assert config["use_ema"] is True and config["ema_momentum"] == 0.95
    assert config["ema_overwrite_frequency"] == 7 and config["clipnorm"] == 1.5
    assert type(optimizers.get(name.upper())) is type(opt)


def test_keras_defaults_and_refusals():
    assert optimizers.Adagrad().get_config()["initial_accumulator_value"] == 0.1
    assert optimizers.Adadelta().get_config()["rho"] == 0.95
    assert optimizers.Lion().get_config()["beta_2"] == 0.99
    for opt in (optimizers.Adagrad(), optimizers.Adadelta(), optimizers.Adamax(), optimizers.Nadam(),
                optimizers.Lion()):
        assert opt.learning_rate == 0.001 and opt.use_ema is False and opt.ema_momentum == 0.99
    with pytest.raises(ValueError, match="beta_1"):
        optimizers.Lion(beta_1=0.0)
    with pytest.raises(ValueError, match="rho"):
        optimizers.Adadelta(rho=1.0)
    with pytest.raises(ValueError, match="beta_2"):
        optimizers.Adamax(beta_2=float("nan"))
    with pytest.raises(ValueError, match="initial_accumulator_value"):
        optimizers.Adagrad(initial_accumulator_value=-1)
    with pytest.raises(ValueError, match="ema_momentum"):
        optimizers.SGD(use_ema=True, ema_momentum=1.5)
    with pytest.raises(ValueError, match="ema_overwrite_frequency"):
        optimizers.Adam(use_ema=True, ema_overwrite_frequency=0)
    with pytest.raises(TypeError):
        optimizers.Nadam(momentum=0.9)


@pytest.mark.parametrize("name", ["adagrad", "adadelta", "adamax", "nadam", "lion", "sgd"])
def test_resume_is_exact_with_the_new_slots(tmp_path, rng, name):
    from cnnc import callbacks
    x, y = _data(rng)

    def make():
        set_random_seed(7)
        model = _model()
        model.compile(_configured(name), "categorical_crossentropy")
        return model

    straight = make()
    straight.fit(x, y, epochs=4, batch_size=8, verbose=0)
    first = make()
    first.fit(x, y, epochs=2, batch_size=8, verbose=0,
              callbacks=[callbacks.ModelCheckpoint(str(tmp_path / "ckpt-{epoch}.cnnc"))])
    resumed = load_model(tmp_path / "ckpt-2.cnnc")
    assert sorted(resumed.optimizer.slots(resumed.trainable_weights[0])) == \
        sorted(first.optimizer.slots(first.trainable_weights[0]))
    resumed.fit(x, y, epochs=4, initial_epoch=2, batch_size=8, verbose=0)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("slot", ["average", "accumulated_delta_var"])
def test_missing_slot_is_refused(tmp_path, rng, slot):
    from cnnc import _safetensors
    x, y = _data(rng)
    model = _model()
    model.compile(optimizers.Adadelta(use_ema=True), "categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "m.cnnc"
    model.save(path)
    tensors, meta = _safetensors.read(path)
    assert f"optimizer/d1/kernel/{slot}" in tensors
    del tensors[f"optimizer/d1/kernel/{slot}"]
    _safetensors.write(tmp_path / "bad.cnnc", tensors, meta)
    with pytest.raises((CorruptFileError, ValueError), match=slot):
        load_model(tmp_path / "bad.cnnc")
