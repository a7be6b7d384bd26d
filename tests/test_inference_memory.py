"""What the C runtime holds for predict: the kernels are read in place from
the Python arrays (no second full copy; batch norm folded where they are
packed), with the same bits as the runtime loaded from a file or from copied
arrays, on every ISA path, at batches that take either Winograd variant,
and when the ISA changes after the load."""
import numpy as np
import pytest

import cnnc
from cnnc import layers as L
from cnnc._model import LoadedModel
from cnnc.models import Model, inference
from cnnc.saving import inference_file_bytes, inference_parts

ISAS = ["scalar", "avx2", "avx512"]


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if w.name.endswith("moving_variance"):
            w.value[...] = rng.uniform(0.5, 2.0, w.value.shape)
        else:
            w.value[...] = rng.standard_normal(w.value.shape) * 0.3
    return model


def _folding_model():
    """Batch norm after every kind of convolution the runtime packs
    differently (Winograd 3x3, pointwise GEMM, implicit GEMM 3x3 / 2,
    depthwise), twice after one convolution, and after a dense layer."""
    x = L.Input((16, 16, 24))
    a = L.Conv2D(32, 3, padding="same", use_bias=False)(x)  # Winograd
    a = L.BatchNormalization()(a)
    a = L.ReLU()(a)
    b = L.Conv2D(32, 1)(x)  # pointwise
    b = L.BatchNormalization()(b)
    a = L.Add()([a, b])
    a = L.DepthwiseConv2D(3, padding="same")(a)
    a = L.BatchNormalization()(a)
    a = L.Conv2D(48, 3, strides=2, padding="same")(a)  # implicit GEMM
    a = L.BatchNormalization()(a)
    a = L.BatchNormalization(epsilon=0.01)(a)  # a second fold into the same kernel
    a = L.GlobalAveragePooling2D()(a)
    a = L.Dense(40)(a)
    a = L.BatchNormalization()(a)
    return _randomize(Model(x, L.Dense(7)(a)), seed=3)


def _dense_model():
    x = L.Input((96,))
    a = L.Dense(128, activation="relu")(x)
    a = L.Dense(64)(a)
    a = L.BatchNormalization()(a)
    return _randomize(Model(x, L.Dense(64)(a)), seed=4)


def _inputs(model, batch, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch,) + tuple(model._input_tensors[0].shape[1:])).astype(np.float32)


def test_runtime_holds_no_second_copy_of_the_kernels():
    """Against the runtime loaded from copies, predict's holds the lent
    kernels' bytes less (but the batch norm scales it folds while packing,
    8 bytes per channel): all kernels but the depthwise one, which a batch
    norm folds into and every call reads, the one with two folds, which
    round one after the other, and the pointwise one, whose copy the
    copying runtime frees once its panels hold it."""
    model = _folding_model()
    model.predict(_inputs(model, 2), verbose=0)
    borrowed = inference.loaded_model(model)
    copied = LoadedModel.from_tensors(*inference_parts(model))
    lent = sum(w.nbytes for layer in model.layers if isinstance(layer, (L.Conv2D, L.Dense))
               and not isinstance(layer, L.DepthwiseConv2D) and tuple(getattr(layer, "strides", (1, 1))) != (2, 2)
               for w in layer.weights if w.name.endswith("kernel"))
    folds = 8 * (32 + 32 + 40)
    pointwise = 24 * 32 * 4
    assert copied.weight_bytes - borrowed.weight_bytes == lent - folds - pointwise


def test_dense_kernels_packed_by_the_first_call_of_many_rows():
    """Dense layers called on one or two rows read the lent kernels in
    place: the runtime holds the biases and the fold's scales alone (8 bytes
    per channel). The first call of more rows packs them (whole 64-column
    panels: their own size), once; the outputs of the few-row calls are
    those rows of the packed product, bit for bit. The copying loader holds
    its copies, then the packed panels too."""
    model = _dense_model()
    kernels = sum(w.nbytes for w in model.weights if w.name.endswith("kernel"))
    biases = sum(w.nbytes for w in model.weights if w.name.endswith("bias"))
    x = _inputs(model, 5)
    small = [model.predict(x[i:i + 2], verbose=0, batch_size=2) for i in (0, 2)]
    small.append(model.predict(x[4:], verbose=0, batch_size=1))
    loaded = inference.loaded_model(model)
    assert loaded.weight_bytes == biases + 64 * 8
    copied = LoadedModel.from_tensors(*inference_parts(model))
    assert copied.weight_bytes == kernels + biases
    many = model.predict(x, verbose=0, batch_size=5)
    assert loaded.weight_bytes == kernels + biases + 64 * 8
    model.predict(x, verbose=0, batch_size=5)
    assert loaded.weight_bytes == kernels + biases + 64 * 8  # packed once
    np.testing.assert_array_equal(np.concatenate(small), many)
    np.testing.assert_array_equal(copied.predict([x])[0], many)
    assert copied.weight_bytes == 2 * kernels + biases
    np.testing.assert_array_equal(model.predict(x[:1], verbose=0), many[:1])


def test_dense_packing_under_concurrent_predict():
    """Calls of many rows from several threads at once on a fresh runtime,
    beside calls of one row: one packed form is kept (the first published),
    every output equals the single-threaded run's bits."""
    import threading
    model = _dense_model()
    x = _inputs(model, 6, seed=2)
    expected = LoadedModel.from_tensors(*inference_parts(model)).predict([x])[0]
    kernels = sum(w.nbytes for w in model.weights if w.name.endswith("kernel"))
    for _ in range(3):
        fresh = LoadedModel.from_tensors(*inference_parts(model), borrow=True)
        before = fresh.weight_bytes
        results = [None] * 8

        def run(i):
            rows = x if i % 2 == 0 else x[i % 6:i % 6 + 1]
            results[i] = (rows, fresh.predict([rows])[0])

        threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for rows, got in results:
            start = int(np.flatnonzero((x == rows[0]).all(axis=1))[0])
            np.testing.assert_array_equal(got, expected[start:start + len(rows)])
        assert fresh.weight_bytes == before + kernels


@pytest.mark.parametrize("isa", ISAS)
def test_borrowed_runtime_equals_the_c_api_to_the_bit(isa, tmp_path):
    """predict (lent arrays, batch norm folded while packing) equals the C
    API's file loader and the copying loader bit for bit, at batch 1 and at
    batch 12 (where the 3x3 layer takes the other Winograd variant than the
    one packed), and leaves the arrays untouched."""
    if isa not in cnnc.available_isas():
        pytest.skip(f"{isa} not available on this CPU")
    original = cnnc.isa()
    try:
        cnnc.set_isa(isa)
        for make in (_folding_model, _dense_model):
            model = make()
            before = [w.numpy().copy() for w in model.weights]
            path = tmp_path / f"{make.__name__}.cnnc"
            model.save(path)
            from_file = LoadedModel.from_file(path)
            copied = LoadedModel.from_tensors(*inference_parts(model))
            for batch in (1, 12):
                x = _inputs(model, batch, seed=batch)
                got = model.predict(x, verbose=0, batch_size=batch)
                np.testing.assert_array_equal(got, from_file.predict([x])[0], err_msg=f"{make.__name__} {batch}")
                np.testing.assert_array_equal(got, copied.predict([x])[0])
                ref = model._run_forward([x], training=False)[0]
                np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(ref).max())))
            for w, b in zip(model.weights, before):
                np.testing.assert_array_equal(w.numpy(), b)
    finally:
        cnnc.set_isa(original)


def test_isa_changed_after_the_load():
    """A runtime packed for one ISA and run under another reads the kernels
    with the batch norm folded per call (or unpacked from the panels that
    alone hold them): the same bits as a runtime loaded under that ISA."""
    available = [isa for isa in ISAS if isa in cnnc.available_isas()]
    if len(available) < 2:
        pytest.skip("needs two ISA paths")
    original = cnnc.isa()
    model = _folding_model()
    x = _inputs(model, 3)
    try:
        cnnc.set_isa(available[-1])
        stale = LoadedModel.from_tensors(*inference_parts(model), borrow=True)
        # its pointwise kernel is held by the panels alone, unpacked per call
        stale_copy = LoadedModel.from_bytes(inference_file_bytes(model))
        cnnc.set_isa(available[0])
        fresh = LoadedModel.from_bytes(inference_file_bytes(model))
        np.testing.assert_array_equal(stale.predict([x])[0], fresh.predict([x])[0])
        np.testing.assert_array_equal(stale_copy.predict([x])[0], fresh.predict([x])[0])
    finally:
        cnnc.set_isa(original)


def test_lent_arrays_stay_alive_with_the_loaded_model():
    """The loaded model keeps the arrays it reads: dropping every other
    reference changes nothing."""
    model = _folding_model()
    x = _inputs(model, 2)
    config, tensors = inference_parts(model)
    copies = {k: v.copy() for k, v in tensors.items()}
    expected = LoadedModel.from_tensors(config, tensors).predict([x])[0]
    loaded = LoadedModel.from_tensors(config, copies, borrow=True)
    del copies
    np.testing.assert_array_equal(loaded.predict([x])[0], expected)


def test_winograd_kernel_made_by_the_first_batch_that_takes_it():
    """A 3x3 layer on 7x7 images takes the implicit GEMM at batch 1 and
    Winograd F(2x2) from batch 3 on: its transformed kernel (16 planes of
    32 x 64) is made by the first such call, not at load, and the outputs
    equal the file loader's and the copying loader's to the bit, from
    several threads at once too."""
    import threading
    x = L.Input((7, 7, 32))
    y = L.Conv2D(64, 3, padding="same")(x)
    y = L.BatchNormalization()(y)
    model = _randomize(Model(x, L.ReLU()(y)), seed=6)
    small, big = _inputs(model, 1), _inputs(model, 4, seed=1)
    model.predict(small, verbose=0)
    loaded = inference.loaded_model(model)
    before = loaded.weight_bytes
    got = model.predict(big, verbose=0, batch_size=4)
    made = loaded.weight_bytes - before
    # (each plane's panels padded to whole cache lines)
    assert 16 * 32 * 64 * 4 <= made <= 16 * (32 * 64 * 4 + 256), made
    model.predict(big, verbose=0, batch_size=4)
    assert loaded.weight_bytes - before == made  # made once
    from_file = LoadedModel.from_bytes(inference_file_bytes(model))
    np.testing.assert_array_equal(got, from_file.predict([big])[0])
    np.testing.assert_array_equal(model.predict(small, verbose=0), from_file.predict([small])[0])
    fresh = LoadedModel.from_tensors(*inference_parts(model), borrow=True)
    results = [None] * 4

    def run(i):
        results[i] = fresh.predict([big])[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, got)
    assert fresh.weight_bytes == loaded.weight_bytes


def test_runtime_estimate_counts_the_weights_of_nested_models():
    """The runtime inlines a nested model, so its estimate of the weights it
    holds is the inner model's plus the outer layers' own."""
    from cnnc.models.memory import _runtime_weight_bytes
    inner = _folding_model()
    x = L.Input((16, 16, 24))
    head = L.Dense(5)
    outer = Model(x, head(inner(x)))
    own = sum(w.nbytes for w in head.weights)
    assert _runtime_weight_bytes(inner, 4) > 0
    assert _runtime_weight_bytes(outer, 4) == _runtime_weight_bytes(inner, 4) + own


@pytest.mark.parametrize("batch", [1, 2, 3, 8])
def test_runtime_estimate_counts_dense_kernels_once_packed(batch):
    """The estimate of the weights the runtime holds leaves the dense
    kernels out up to two rows per call and counts their packed panels
    beyond: what the runtime reports once it ran that batch."""
    from cnnc.models.memory import _runtime_weight_bytes
    model = _dense_model()
    model.predict(_inputs(model, batch), verbose=0, batch_size=batch)
    held = inference.loaded_model(model).weight_bytes
    kernels = sum(w.nbytes for w in model.weights if w.name.endswith("kernel"))
    estimate = _runtime_weight_bytes(model, batch)
    assert (held > kernels) == (batch > 2)
    assert abs(estimate - held) <= 0.05 * held + 2048, (estimate, held)
