"""The optimizer's flat buffer: a model's whole update in one kernel call,
with the same bits as weight-by-weight updates, and its state saved and
restored per weight."""
import numpy as np
import pytest

import cnnc
from cnnc import layers, models, optimizers, regularizers
from cnnc.layers.base import Weight

SHAPES = [(3, 3, 2, 5), (5,), (7, 11), (1,), (13, 17, 3)]


def _weights(seed, regularize=False):
    rng = np.random.default_rng(seed)
    out = []
    for i, shape in enumerate(SHAPES):
        reg = regularizers.L2(0.01) if regularize and i % 2 == 0 else None
        out.append(Weight(f"w{i}", rng.standard_normal(shape).astype(np.float32), regularizer=reg))
    return out


def _per_weight(cls):
    """The same optimizer, updated weight by weight (the reference)."""
    return type(f"PerWeight{cls.__name__}", (cls,), {"_elementwise_slots": False})


class _Counting:
    """Counts the calls of ``_update`` of an optimizer class."""

    def __init__(self, cls):
        self.calls = 0
        counter = self

        class Counted(cls):
            def _update(self, *args):
                counter.calls += 1
                return super()._update(*args)
        self.cls = Counted


CASES = [
    (optimizers.Adam, {}),
    (optimizers.Adam, {"amsgrad": True, "weight_decay": 0.01}),
    (optimizers.AdamW, {"weight_decay": 0.05}),
    (optimizers.SGD, {"momentum": 0.9, "nesterov": True}),
    (optimizers.SGD, {}),
    (optimizers.RMSprop, {"momentum": 0.5, "centered": True}),
    (optimizers.Adam, {"clipnorm": 0.5}),
    (optimizers.SGD, {"global_clipnorm": 1.0, "momentum": 0.5}),
    (optimizers.Adam, {"clipvalue": 0.3}),
    # The moving average: one call over the flat buffers.
    (optimizers.SGD, {"momentum": 0.9, "nesterov": True, "weight_decay": 5e-3, "use_ema": True,
                      "ema_momentum": 0.998}),
    (optimizers.Adam, {"use_ema": True, "ema_momentum": 0.9, "ema_overwrite_frequency": 3}),
]


@pytest.mark.parametrize("regularize", [False, True])
@pytest.mark.parametrize("cls, kwargs", CASES)
def test_flat_update_same_bits_as_per_weight(cls, kwargs, regularize):
    flat_w, ref_w = _weights(0, regularize), _weights(0, regularize)
    flat_opt = cls(learning_rate=0.01, **kwargs)
    ref_opt = _per_weight(cls)(learning_rate=0.01, **kwargs)
    rng = np.random.default_rng(1)
    for _ in range(4):
        for a, b in zip(flat_w, ref_w):
            a.grad[...] = b.grad[...] = rng.standard_normal(a.shape).astype(np.float32)
        flat_opt.apply(flat_w)
        ref_opt.apply(ref_w)
    for a, b in zip(flat_w, ref_w):
        np.testing.assert_array_equal(a.value, b.value, err_msg=a.name)
        for name, array in ref_opt.slots(b).items():
            np.testing.assert_array_equal(flat_opt.slots(a)[name], array, err_msg=f"{a.name}/{name}")
    # Packed: the weights and their slots are views of the flat buffers.
    assert all(w.value.base is flat_opt._flat.value for w in flat_w)
    assert all(w.value.base is None for w in ref_w)


def test_one_kernel_call_per_step_without_per_weight_options():
    counting = _Counting(optimizers.Adam)
    opt = counting.cls(learning_rate=0.01)
    weights = _weights(0)
    for _ in range(3):
        opt.apply(weights)
    assert counting.calls == 3
    counting.calls = 0
    opt = counting.cls(learning_rate=0.01, clipnorm=1e-3)  # every weight its own scale
    for w in weights:
        w.grad[...] = 1.0
    opt.apply(weights)
    assert counting.calls == sum(1 for s in SHAPES)


def test_repacking_keeps_state_and_follows_the_weights():
    weights, ref = _weights(3), _weights(3)
    first, ref_opt = optimizers.Adam(0.01), _per_weight(optimizers.Adam)(0.01)
    rng = np.random.default_rng(4)

    def step(opt, ws, grads):
        for w, g in zip(ws, grads):
            w.grad[...] = g
        opt.apply(ws)

    for _ in range(2):
        grads = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
        step(first, weights, grads)
        step(ref_opt, ref, grads)
    # Another optimizer packs a subset of the same weights into its buffers.
    other = optimizers.SGD(0.0)
    other.apply(weights[1:4])
    assert weights[1].value.base is other._flat.value
    for _ in range(2):
        grads = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
        step(first, weights, grads)
        step(ref_opt, ref, grads)
    for a, b in zip(weights, ref):
        np.testing.assert_array_equal(a.value, b.value)
        np.testing.assert_array_equal(first.slots(a)["v"], ref_opt.slots(b)["v"])


def test_slots_loaded_before_the_first_step_are_kept():
    weights, ref = _weights(5), _weights(5)
    opt, ref_opt = optimizers.RMSprop(0.01, momentum=0.3), _per_weight(optimizers.RMSprop)(0.01, momentum=0.3)
    rng = np.random.default_rng(6)
    for a, b in zip(weights, ref):  # as a loaded checkpoint does
        for name, array in ref_opt.slots(b).items():
            array[...] = rng.random(array.shape)
            opt.slots(a)[name][...] = array
        a.grad[...] = b.grad[...] = rng.standard_normal(a.shape)
    opt.apply(weights)
    ref_opt.apply(ref)
    for a, b in zip(weights, ref):
        np.testing.assert_array_equal(a.value, b.value)


def test_per_weight_optimizer_keeps_the_arrays():
    weights = _weights(0)
    arrays = [w.value for w in weights]
    opt = _per_weight(optimizers.Adam)(0.01)
    opt.build(weights)
    opt.apply(weights)
    assert all(w.value is a for w, a in zip(weights, arrays))


def test_model_resumes_exactly_from_a_saved_file(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((64, 8, 8, 2), dtype=np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 64)]

    def make():
        cnnc.utils.set_random_seed(7) if hasattr(cnnc.utils, "set_random_seed") else None
        model = models.Sequential([layers.Input((8, 8, 2)), layers.Conv2D(4, 3, activation="relu"),
                                   layers.Flatten(), layers.Dense(3, activation="softmax")])
        model.compile(optimizer=optimizers.Adam(0.01), loss="categorical_crossentropy")
        return model

    model = make()
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    path = tmp_path / "m.safetensors"
    model.save(path)
    resumed = models.load_model(path)
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    resumed.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.trainable_weights, resumed.trainable_weights):
        for name, array in model.optimizer.slots(a).items():
            np.testing.assert_array_equal(resumed.optimizer.slots(b)[name], array)
