"""Peak-memory estimates (cnnc.utils.estimate_memory) against measured RSS,
the MemoryError raised before a batch that cannot fit, and inference and
finished training steps holding nothing for a backward pass."""
import json
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import cnnc
from cnnc import applications, layers
from cnnc.models import memory
from cnnc.utils import estimate_memory

MiB = 1 << 20

# Runs one configuration in a fresh process: the high-water mark is reset
# once the model is built, so the peak is what the run itself adds.
_CHILD = r"""
import json, sys
import numpy as np
import cnnc
from cnnc import applications
name, batch, size, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if name == "mnist":
    model, shape = applications.MnistCNN(), (28, 28, 1)
else:
    model, shape = applications.ResNet18(input_shape=(size, size, 3), classes=10), (size, size, 3)
model.compile(cnnc.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy",
              recompute=mode == "train_recompute")
x = np.random.default_rng(0).random((batch,) + shape, dtype=np.float32)
y = np.arange(batch) % 10

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024

est = cnnc.utils.estimate_memory(model, batch, training=mode.startswith("train"),
                                 runtime=mode == "predict")
if mode == "predict":
    # The runtime's buffers come from malloc, which would first reuse the
    # heap the model's construction freed: give that back, so that the
    # peak counts them.
    import ctypes
    ctypes.CDLL(None).malloc_trim(0)
if mode == "evaluate":
    # NumPy reports its arrays to tracemalloc: their peak is the tensors the
    # pass holds at once, apart from the C kernels' scratch.
    import tracemalloc
    tracemalloc.start()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
base = status("VmRSS:")
if mode.startswith("train"):
    model.fit(x, y, batch_size=batch, epochs=2, verbose=0)
elif mode == "predict":
    model.predict(x, batch_size=batch, verbose=0)
else:
    model.evaluate(x, y, batch_size=batch, verbose=0)
result = {"measured": status("VmHWM:") - base, "estimate": est.working_set}
if mode == "evaluate":
    result["arrays"] = tracemalloc.get_traced_memory()[1]
print(json.dumps(result))
"""


def _measure(name, batch, size, mode):
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pytest.skip("resetting the RSS high-water mark needs Linux /proc/self/clear_refs")
    out = subprocess.run([sys.executable, "-c", _CHILD, name, str(batch), str(size), mode],
                         capture_output=True, text=True, timeout=600, cwd=tempfile.gettempdir())
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name,batch,size,mode", [
    ("mnist", 256, 28, "train"), ("resnet18", 8, 64, "train"),
    # large enough for the activations, not the optimizer's packing, to set the peak
    ("resnet18", 16, 128, "train_recompute")])
def test_training_estimate_within_15_percent_of_measured_peak(name, batch, size, mode):
    r = _measure(name, batch, size, mode)
    ratio = r["estimate"] / r["measured"]
    assert 0.85 <= ratio <= 1.15, (r, ratio)


def test_inference_estimate_tracks_measured_peak():
    r = _measure("resnet18", 8, 64, "evaluate")
    # Weights and gradients (85 MiB here) exist before the run; the total
    # counts them on both sides.
    model = applications.ResNet18(input_shape=(64, 64, 3), classes=10)
    est = estimate_memory(model, 8, training=False)
    resident = est.weights + est.gradients
    ratio = (resident + r["estimate"]) / (resident + r["measured"])
    assert 0.85 <= ratio <= 1.15, (r, ratio)
    # The arrays alive at once are the inference tensors, not a training
    # step's activations kept for a backward pass (about 4x as many here).
    train = estimate_memory(model, 8, training=True)
    assert r["arrays"] <= 1.15 * est.activations < 0.5 * train.activations, (r, est, train)


@pytest.mark.parametrize("batch,size", [(1, 224), (8, 64)])
def test_predict_estimate_within_15_percent_of_measured_peak(batch, size):
    """predict's working set: the C runtime's packed kernels (the Python
    arrays are read in place), its activations and scratch."""
    r = _measure("resnet18", batch, size, "predict")
    ratio = r["estimate"] / r["measured"]
    assert 0.85 <= ratio <= 1.15, (r, ratio)


def _small_model():
    inp = layers.Input((12, 12, 3))
    a = layers.Conv2D(8, 3, padding="same")(inp)
    a = layers.BatchNormalization()(a)
    a = layers.ReLU()(a)
    b = layers.Conv2D(8, 1)(inp)
    c = layers.Add()([a, b])
    c = layers.Activation("elu")(c)
    c = layers.MaxPooling2D()(c)
    c = layers.Flatten()(c)
    c = layers.Dropout(0.3)(c)
    out = layers.Dense(5, activation="softmax")(c)
    return cnnc.Model(inp, out)


def test_estimate_counts_graph_tensors_and_optimizer_slots():
    model = _small_model()
    batch = 6
    # conv, bn, relu, conv, add, elu; pool, flatten, dropout; dense
    outputs = 4 * batch * (12 * 12 * 8 * 6 + 6 * 6 * 8 * 3 + 5)
    est = estimate_memory(model, batch, training=True)
    weights = sum(w.value.nbytes for w in model.weights)
    trainable = sum(w.value.nbytes for w in model.trainable_weights)
    assert est.weights == weights and est.gradients == trainable
    assert est.optimizer_slots == 0  # not compiled
    # at worst every tensor and its gradient, and dropout's byte mask
    assert 0 < est.activations <= outputs + batch * 6 * 6 * 8
    assert 0 < est.gradients_of_activations <= outputs
    assert est.total == sum(v for k, v in est.as_dict().items() if k != "total")  # no packing

    model.compile(cnnc.optimizers.Adam(), "categorical_crossentropy")
    est = estimate_memory(model, batch)
    assert est.optimizer_slots == 2 * trainable
    assert est.packing == trainable  # the values copied into flat buffers (no gradients yet)
    # the copy takes the place of the gradient buffer it makes (zeros, not
    # resident before the backward writes them): the step sets the peak
    step = est.activations + est.gradients_of_activations + est.workspace
    assert est.total == est.weights + est.optimizer_slots + est.gradients + step
    # gradient arrays that exist already are copied too, beside their old ones
    model.train_on_batch(np.zeros((batch, 12, 12, 3), np.float32), np.zeros((batch, 5), np.float32))
    model.compile(cnnc.optimizers.Adam(), "categorical_crossentropy")
    est = estimate_memory(model, batch)
    assert est.packing == 2 * trainable and est.working_set == est.total - weights - trainable
    assert est.total == est.weights + est.optimizer_slots + max(
        est.gradients + step, trainable + est.packing)
    model.optimizer.build(model.trainable_weights)
    assert estimate_memory(model, batch).packing == 0
    model.compile(cnnc.optimizers.SGD(momentum=0.9), "categorical_crossentropy")
    assert estimate_memory(model, batch).optimizer_slots == trainable

    infer = estimate_memory(model, batch, training=False)
    assert infer.gradients_of_activations == 0 and infer.optimizer_slots == 0
    # the widest point: the three 12x12x8 maps alive at the add
    assert infer.activations == 4 * batch * 12 * 12 * 8 * 3
    assert estimate_memory(model, 2 * batch).activations == 2 * est.activations
    with pytest.raises(ValueError):
        estimate_memory(model, 0)


def test_a_batch_that_cannot_fit_raises_memory_error_before_any_work(monkeypatch):
    model = _small_model()
    model.compile(cnnc.optimizers.SGD(0.1), "categorical_crossentropy")
    x = np.random.default_rng(1).random((64, 12, 12, 3), dtype=np.float32)
    y = np.eye(5, dtype=np.float32)[np.arange(64) % 5]
    before = [w.value.copy() for w in model.weights]
    need = estimate_memory(model, 64).working_set
    monkeypatch.setattr(memory, "available_memory", lambda: need - 1)
    with pytest.raises(MemoryError, match="estimated") as info:
        model.fit(x, y, batch_size=64, verbose=0)
    assert memory.format_bytes(estimate_memory(model, 64).total) in str(info.value)
    for w, b in zip(model.weights, before):
        np.testing.assert_array_equal(w.value, b)
    assert model.optimizer.iterations == 0
    # a smaller batch fits; inference needs less than training
    model.fit(x, y, batch_size=16, verbose=0, epochs=1)
    model.evaluate(x, y, batch_size=64, verbose=0)
    infer = estimate_memory(model, 64, training=False).working_set
    monkeypatch.setattr(memory, "available_memory", lambda: infer - 1)
    with pytest.raises(MemoryError, match="evaluate"):
        model.evaluate(x, y, batch_size=64, verbose=0)
    monkeypatch.setenv("CNNC_SKIP_MEMORY_CHECK", "1")
    model.evaluate(x, y, batch_size=64, verbose=0)


def test_available_memory_is_positive_and_below_total():
    available = memory.available_memory()
    with open("/proc/meminfo") as f:
        total = int(next(line for line in f if line.startswith("MemTotal:")).split()[1]) * 1024
    assert available is not None and 0 < available <= total


def test_summary_shows_the_estimates():
    model = _small_model()
    lines = []
    model.summary(print_fn=lines.append, batch_size=6)
    train = memory.format_bytes(estimate_memory(model, 6).total)
    infer = memory.format_bytes(estimate_memory(model, 6, training=False).total)
    assert any("batch_size=6" in s and train in s and infer in s for s in lines), lines


def _held_arrays(model, batch):
    """Arrays with the batch on their first axis held by the model or its layers."""
    found = []

    def walk(value, path, depth):
        if isinstance(value, np.ndarray):
            if value.ndim and value.shape[0] == batch:
                found.append(path)
        elif isinstance(value, (list, tuple)) and depth < 3:
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]", depth + 1)
        elif isinstance(value, dict) and depth < 3:
            for k, v in value.items():
                walk(v, f"{path}[{k}]", depth + 1)

    for owner in [model] + list(model.layers):
        for key, value in vars(owner).items():
            walk(value, f"{owner.name}.{key}", 0)
    return found


def test_nothing_is_held_for_backward_after_training_steps_and_inference():
    model = _small_model()
    model.compile(cnnc.optimizers.SGD(0.1), "categorical_crossentropy")
    batch = 7
    x = np.random.default_rng(2).random((batch, 12, 12, 3), dtype=np.float32)
    y = np.eye(5, dtype=np.float32)[np.arange(batch) % 5]
    model.fit(x, y, batch_size=batch, epochs=2, verbose=0)
    assert _held_arrays(model, batch) == []
    model.train_on_batch(x, y)
    assert _held_arrays(model, batch) == []
    model.evaluate(x, y, batch_size=batch, verbose=0)
    model.predict(x, batch_size=batch, verbose=0)
    model(x, training=False)
    assert _held_arrays(model, batch) == []
    # a training forward does keep them, and a backward without one is refused
    model(x, training=True)
    assert _held_arrays(model, batch)
    model.release_backward_state()
    assert _held_arrays(model, batch) == []
    with pytest.raises(RuntimeError, match="forward"):
        model.layers[-1].backward(np.ones((batch, 5), np.float32))


def test_inference_outputs_unchanged_by_freeing_dead_tensors():
    model = _small_model()
    x = np.random.default_rng(3).random((5, 12, 12, 3), dtype=np.float32)
    ref = model(x, training=False)
    again = model._run_forward([x], training=False)[0]
    np.testing.assert_array_equal(ref, again)
    # the same outputs as a training-mode forward without dropout noise
    np.testing.assert_allclose(model.predict(x, verbose=0), ref, rtol=1e-5, atol=1e-6)
