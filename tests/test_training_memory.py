"""Training-step memory: liveness (tensors and gradients freed once dead),
activations and residual sums written in place, the step arena (a warm step
allocates no large buffer), lazily made weight gradients; gradients stay
bit-identical to a step that does none of it."""
import numpy as np
import pytest

import cnnc
from cnnc import _memory, layers
from cnnc.utils import estimate_memory


def _resnet_like(seed=0):
    cnnc.utils.set_random_seed(seed)
    inp = layers.Input((10, 10, 3))
    x = layers.Conv2D(6, 3, padding="same", use_bias=False)(inp)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    y = layers.Conv2D(6, 3, padding="same")(x)
    y = layers.BatchNormalization()(y)
    y = layers.Activation("relu")(y)
    y = layers.Conv2D(6, 1)(y)
    y = layers.BatchNormalization()(y)
    s = layers.Conv2D(6, 1)(x)
    s = layers.BatchNormalization()(s)
    z = layers.Add()([s, y])
    z = layers.ReLU()(z)
    w = layers.Conv2D(6, 3, padding="same")(z)
    w = layers.BatchNormalization()(w)
    z = layers.Add()([z, w, s])  # three inputs, one of them read twice
    z = layers.ReLU()(z)
    z = layers.Dropout(0.25)(z)
    z = layers.GlobalAveragePooling2D()(z)
    out = layers.Dense(4, activation="softmax")(z)
    return cnnc.Model(inp, out)


def _gradients(model, x, y, in_place=True):
    if not in_place:
        for step in model._steps:
            step.overwrite = ()
    model.compile(cnnc.optimizers.SGD(0.0), "sparse_categorical_crossentropy")
    model._compiled()
    outs = model._run_forward([x], training=True, logits_steps=model._fused_steps)
    _, _, grads = model._losses_and_grads(outs, [y], None, True)
    model._run_backward(grads)
    model.release_backward_state()
    return [o.copy() for o in outs], [w.grad.copy() for w in model.trainable_weights], \
        [w.value.copy() for w in model.non_trainable_weights]


def test_in_place_layers_give_bit_identical_gradients():
    x = np.random.default_rng(3).standard_normal((5, 10, 10, 3)).astype(np.float32)
    y = np.arange(5) % 4
    model = _resnet_like()
    planned = [s.layer.name for s in model._steps if s.overwrite]
    # the activations after batch norm and after the sums, and the sums
    # (into a batch norm's output, never into the tensor read twice)
    assert sum(name.startswith("re_lu") or name.startswith("activation") for name in planned) >= 4
    assert sum(name.startswith("add") for name in planned) == 2
    reference = _resnet_like()
    for a, b in zip(reference.weights, model.weights):
        np.testing.assert_array_equal(a.value, b.value)
    got = _gradients(model, x, y)
    want = _gradients(reference, x, y, in_place=False)
    for g, w in zip(got, want):
        for a, b in zip(g, w):
            np.testing.assert_array_equal(a, b)  # to the bit


def test_backward_frees_what_each_layer_kept():
    model = _resnet_like()
    x = np.random.default_rng(0).random((4, 10, 10, 3), dtype=np.float32)
    model.compile(cnnc.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    outs = model._run_forward([x], training=True)
    seen = []
    model._backward_hook = lambda layer: seen.append(
        all(layer.__dict__.get(k) is None for k in layer._backward_state))
    _, _, grads = model._losses_and_grads(outs, [np.arange(4) % 4], None, True)
    model._run_backward(grads)
    model._backward_hook = None
    assert seen and all(seen)


def test_a_warm_training_step_allocates_no_large_buffer():
    model = _resnet_like()
    model.compile(cnnc.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    x = np.random.default_rng(1).random((16, 10, 10, 3), dtype=np.float32)
    y = np.arange(16) % 4
    model.train_on_batch(x, y)  # records the step and plans its arena
    model.train_on_batch(x, y)
    arena = model._arenas[(x.shape,)]
    size, planned, hits, fallbacks = arena.info()
    assert size > 0 and planned > 0
    cache = _memory.cache_info()
    for _ in range(2):
        model.train_on_batch(x, y)
    after = arena.info()
    # every large array of the warm steps came from the arena's planned places
    assert after[2] - hits == 2 * planned and after[3] == fallbacks
    assert _memory.cache_info()[3] == cache[3]  # no cache miss: nothing new
    # the arena is about the step's peak of live bytes: less than every
    # tensor and gradient of the step together
    est = estimate_memory(model, 16)
    outputs = sum(4 * 16 * int(np.prod(s[1:])) for s in model._slot_shapes[1:])
    assert size < 2 * outputs
    assert est.activations + est.gradients_of_activations < 2 * outputs


def test_the_arena_never_hands_out_bytes_still_in_use():
    arena = _memory.StepArena()
    n = 1 << 16
    with _memory.reuse_buffers():
        with arena.step():
            a = np.ones(n, np.float32)
            del a
            b = np.ones(n, np.float32)  # planned on a's bytes
            del b
        size, planned, hits, fallbacks = arena.info()
        assert planned == 2 and 0 < size < 2 * 4 * n + 1024
        with arena.step():
            a = np.full(n, 1.0, np.float32)  # kept past its planned life
            b = np.full(n, 2.0, np.float32)
            assert not np.shares_memory(a, b)
        assert (a == 1).all() and (b == 2).all()
        assert arena.info()[3] > fallbacks  # b was served elsewhere
        del a, b
        before = arena.info()
        with arena.step():
            c = np.full(n, 3.0, np.float32)
            del c
            d = np.full(n, 4.0, np.float32)
            del d
        after = arena.info()
        assert after[2] == before[2] + 2 and after[3] == before[3]
        # A step that changed (other sizes) twice in a row is planned again.
        for _ in range(2):
            with arena.step():
                e = np.ones(2 * n, np.float32)
                del e
        assert arena.info() == (0, 0, 0, 0)
        with arena.step():
            e = np.ones(2 * n, np.float32)
            del e
        assert arena.info()[0] >= 8 * n
        # An exception in the recording step leaves no plan.
        arena = _memory.StepArena()
        with pytest.raises(KeyError):
            with arena.step():
                e = np.ones(n, np.float32)
                raise KeyError("cut short")
        assert arena.info() == (0, 0, 0, 0)


def _address(a):
    return a.__array_interface__["data"][0]


def test_arenas_of_a_group_share_their_bytes():
    """Two batch shapes of one model: the smaller plan takes the larger's
    bytes (its largest block at the same offset 0), a larger one grows the
    group and the other arena moves onto the new bytes; a block kept from
    one arena's step keeps the other's step off the plan."""
    n = 1 << 16
    group = _memory.ArenaGroup()
    big, small = _memory.StepArena(group), _memory.StepArena(group)
    with _memory.reuse_buffers():
        for _ in range(2):  # record, then replay
            with big.step():
                a = np.ones(n, np.float32)
                where_big = _address(a)
                del a
        assert group.nbytes >= 4 * n
        held = group.nbytes
        for _ in range(2):
            with small.step():
                b = np.ones(n // 2, np.float32)
                where_small = _address(b)
                del b
        assert where_small == where_big and group.nbytes == held
        assert small.info()[2] == 1  # the replayed block came from the plan
        # a block of the big step kept past it: the small step runs off
        # the plan, never on its bytes
        with big.step():
            kept = np.full(n, 7.0, np.float32)
        fallbacks = small.info()[3]
        with small.step():
            b = np.full(n // 2, 2.0, np.float32)
            assert not np.shares_memory(kept, b)
        assert small.info()[3] == fallbacks + 1 and (kept == 7).all() and (b == 2).all()
        del kept, b
        # a larger plan grows the group; the others follow at their next step
        larger = _memory.StepArena(group)
        for _ in range(2):
            with larger.step():
                c = np.ones(4 * n, np.float32)
                where_larger = _address(c)
                del c
        assert group.nbytes >= 16 * n
        hits = big.info()[2]
        with big.step():
            a = np.ones(n, np.float32)
            assert _address(a) == where_larger
            del a
        assert big.info()[2] == hits + 1
        with pytest.raises(TypeError):
            _memory.StepArena(group=object())


_RAGGED_CHILD = r"""
import json, sys
import numpy as np
import cnnc
from cnnc import applications
n, validate = int(sys.argv[1]), sys.argv[2] == "validate"
model = applications.ResNet18(input_shape=(64, 64, 3), classes=10)
model.compile(cnnc.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
x = np.random.default_rng(0).random((n, 64, 64, 3), dtype=np.float32)
y = np.arange(n) % 10
def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
model.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0)  # the weights' gradients and slots
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS:")
history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False,
                    validation_data=(x[:12], y[:12]) if validate else None)
print(json.dumps({"peak": status("VmHWM:") - base, "val_loss": history.history.get("val_loss"),
                  "evaluate": model.evaluate(x[:12], y[:12], batch_size=8, verbose=0)}))
"""


def test_a_shorter_last_batch_and_validation_add_no_second_arena():
    """fit over 31 samples in batches of 8 (the last of 7) peaks as over 32:
    the last batch's plan shares the full batches' bytes; so do the
    validation steps (batches of 8 and 4), whose loss is evaluate's."""
    import json
    import os
    import subprocess
    import sys
    import tempfile
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pytest.skip("resetting the RSS high-water mark needs Linux /proc/self/clear_refs")
    runs = {}
    # A team shrunk on a busy machine has its threads grow other workspaces
    # (10 MiB apart here): fixed teams compare the arenas alone.
    env = dict(os.environ, CNNC_ADAPTIVE_TEAM="0")
    for n, validate in ((32, "no"), (31, "no"), (32, "validate")):
        out = subprocess.run([sys.executable, "-c", _RAGGED_CHILD, str(n), validate],
                             capture_output=True, text=True, timeout=600,
                             cwd=tempfile.gettempdir(), env=env)
        assert out.returncode == 0, out.stderr[-3000:]
        runs[n, validate] = json.loads(out.stdout.strip().splitlines()[-1])
    peaks = {key: r["peak"] for key, r in runs.items()}
    # a second arena would add about 7/8 of the first (some 20 MiB here),
    # the validation steps their tensors (about 10 MiB)
    assert peaks[31, "no"] < peaks[32, "no"] + 4 * 2**20, peaks
    assert peaks[32, "validate"] < peaks[32, "no"] + 4 * 2**20, peaks
    validated = runs[32, "validate"]
    assert validated["val_loss"][-1] == validated["evaluate"]


def test_inference_makes_no_gradient_arrays():
    model = _resnet_like()
    x = np.random.default_rng(2).random((3, 10, 10, 3), dtype=np.float32)
    model.predict(x, verbose=0)
    assert not any(w.has_grad for w in model.weights)
    model.compile(cnnc.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    model.train_on_batch(x, np.arange(3))
    assert all(w.has_grad for w in model.trainable_weights)


def test_estimate_follows_the_step_liveness():
    model = cnnc.Sequential([layers.Input((8, 8, 4)), layers.Conv2D(4, 3, padding="same"),
                             layers.BatchNormalization(), layers.ReLU(), layers.Conv2D(4, 1)])
    batch = 3
    t = 4 * batch * 8 * 8 * 4
    est = estimate_memory(model, batch)
    # worst moment: the last conv's backward. Alive: the first conv's output
    # (batch norm's input), batch norm's output with ReLU written over it
    # (ReLU's mask, the last conv's input), the model's output; the output's
    # gradient and the gradient the last conv returns.
    assert est.activations == 3 * t
    assert est.gradients_of_activations == 2 * t


def _sequential_cnn(seed=0):
    cnnc.utils.set_random_seed(seed)
    return cnnc.Sequential([
        layers.Input((12, 12, 2)),
        layers.Conv2D(6, 3, padding="same"), layers.BatchNormalization(), layers.ReLU(),
        layers.Conv2D(6, 3, padding="same", activation="relu"), layers.Dropout(0.3),
        layers.BatchNormalization(), layers.MaxPooling2D(),
        layers.Conv2D(8, 3, padding="same"), layers.BatchNormalization(),
        layers.Activation("relu"), layers.SpatialDropout2D(0.2),
        layers.Conv2D(8, 3, padding="same", activation="relu"), layers.Flatten(),
        layers.Dropout(0.5), layers.Dense(4, activation="softmax")])


def _first_boundary(model, prefix):
    """The first layer named ``prefix...`` whose output bounds a block."""
    from cnnc.models import recompute as rc
    for step in model._steps:
        if step.layer.name.startswith(prefix):
            try:
                rc.plan(model, (step.layer.name,))
            except ValueError:
                continue
            return [step.layer.name]
    raise AssertionError(f"no {prefix} layer bounds a block")


@pytest.mark.parametrize("build,recompute", [
    (_resnet_like, True), (_sequential_cnn, True),
    (_resnet_like, "re_lu"), (_sequential_cnn, "batch_normalization")])
def test_recompute_gives_the_same_steps_to_the_bit(build, recompute):
    x = np.random.default_rng(5).standard_normal((6,) + build()._input_tensors[0].shape[1:])
    x = x.astype(np.float32)
    y = np.arange(6) % 4
    runs = []
    for spec in (False, recompute):
        model = build(seed=11)
        if isinstance(spec, str):
            spec = _first_boundary(model, spec)
        model.compile(cnnc.optimizers.SGD(0.05, momentum=0.9), "sparse_categorical_crossentropy",
                      recompute=spec)
        model._compiled()
        if spec:
            replayed = [type(step.layer).__name__ for seg in model._recompute_plan.ends.values()
                        for step in seg.steps]
            assert "BatchNormalization" in replayed
            if spec is True and build is _sequential_cnn:
                assert "Dropout" in replayed and "SpatialDropout2D" in replayed
        losses = [model.train_on_batch(x, y) for _ in range(3)]
        runs.append((losses, [w.value.copy() for w in model.weights],
                     [w.grad.copy() for w in model.trainable_weights]))
    (l0, w0, g0), (l1, w1, g1) = runs
    assert l0 == l1
    for a, b in zip(w0 + g0, w1 + g1):  # weights, moving statistics, gradients
        np.testing.assert_array_equal(a, b)


def test_recompute_keeps_less_for_backward():
    x = np.random.default_rng(6).random((4, 12, 12, 2), dtype=np.float32)
    kept = []
    for spec in (False, True):
        model = _sequential_cnn()
        model.compile(cnnc.optimizers.SGD(0.1), "sparse_categorical_crossentropy",
                      recompute=spec)
        model._compiled()
        model._run_forward([x], training=True, logits_steps=model._fused_steps)
        arrays = {}
        for layer in model.layers:
            for name in layer._backward_state:
                v = layer.__dict__.get(name)
                for a in (v if isinstance(v, (list, tuple)) else [v]):
                    if isinstance(a, np.ndarray):
                        arrays[id(a.base if a.base is not None else a)] = a.nbytes
        if model._recompute_plan is not None:
            for seg in model._recompute_plan.ends.values():
                for a in seg.inputs.values():
                    arrays[id(a.base if a.base is not None else a)] = a.nbytes
        kept.append(sum(arrays.values()))
        model.release_backward_state()
    assert kept[1] < 0.7 * kept[0], kept


def test_recompute_rejects_a_layer_inside_a_block():
    from cnnc.models import recompute as rc
    model = _resnet_like()
    inside = None
    for step in model._steps:
        try:
            rc.plan(model, (step.layer.name,))
        except ValueError:
            inside = step.layer.name
            break
    assert inside is not None
    with pytest.raises(ValueError, match="block boundary"):
        model.compile("sgd", "sparse_categorical_crossentropy", recompute=[inside])
    with pytest.raises(ValueError, match="not in model"):
        model.compile("sgd", "sparse_categorical_crossentropy", recompute=["no_such_layer"])
    with pytest.raises(ValueError, match="recompute must be"):
        model.compile("sgd", "sparse_categorical_crossentropy", recompute=3)
