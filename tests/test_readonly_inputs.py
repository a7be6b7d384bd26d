"""Read-only inputs: every function of ``cnnc.ops`` and every layer accepts
arrays it may not write (``np.frombuffer``, read-only memmaps, tensors read
from files), gives the same result as with writable copies, and leaves them
unchanged.

The functions and layers are found by iterating over ``cnnc.ops`` and the
layer registry, so ones added later are covered too: a function whose
parameters follow the usual names (``x``, ``dy``, ``a``, ``b``, ...) needs no
entry here; one that does not must get a case in ``OP_CASES`` (or, with no
array input at all, a place in ``NO_ARRAY_INPUT``), or the test fails and
says so.
"""
import inspect

import numpy as np
import pytest

import cnnc
import cnnc.layers as L
from cnnc import ops

# Functions of cnnc.ops that take no array at all (sizes, seeds).
NO_ARRAY_INPUT = {"conv_output_length", "same_padding", "random_affine_matrices", "has_symbolic"}

_R = np.random.default_rng(7)


def _f(*shape, low=-1.0, high=1.0):
    return _R.uniform(low, high, shape).astype(np.float32)


def _probs(n, c):
    p = _f(n, c, low=0.1, high=1.0)
    return p / p.sum(axis=1, keepdims=True)


# name -> () -> (kwargs, names of the arguments the function updates in place)
OP_CASES = {
    "matmul": lambda: (dict(x1=_f(5, 7), x2=_f(7, 3)), ()),
    "dot": lambda: (dict(x1=_f(5, 7), x2=_f(7, 3)), ()),
    "bias_add": lambda: (dict(x=_f(2, 4, 4, 3), b=_f(3)), ()),
    "concatenate": lambda: (dict(arrays=[_f(2, 3, 2), _f(2, 3, 4)]), ()),
    "split_channels": lambda: (dict(dy=_f(2, 3, 6), sizes=[2, 4]), ()),
    "global_norm_sq": lambda: (dict(arrays=[_f(5), _f(2, 3)]), ()),
    "dropout": lambda: (dict(x=_f(4, 6), rate=0.5, seed=3), ()),
    "dropout_backward": lambda: (dict(dy=_f(4, 6), mask=(_f(4, 6) > 0).astype(np.uint8),
                                      rate=0.5), ()),
    "conv1d": lambda: (dict(x=_f(2, 9, 3), w=_f(3, 3, 4), b=_f(4)), ()),
    "conv1d_backward": lambda: (dict(x=_f(2, 9, 3), w=_f(3, 3, 4), dy=_f(2, 7, 4)), ()),
    "conv2d": lambda: (dict(x=_f(2, 6, 6, 3), w=_f(3, 3, 3, 4), b=_f(4)), ()),
    "conv2d_backward": lambda: (dict(x=_f(2, 6, 6, 3), w=_f(3, 3, 3, 4), dy=_f(2, 4, 4, 4)), ()),
    "conv2d_transpose": lambda: (dict(x=_f(2, 4, 4, 3), w=_f(3, 3, 5, 3), b=_f(5)), ()),
    "conv2d_transpose_backward": lambda: (dict(x=_f(2, 4, 4, 3), w=_f(3, 3, 5, 3),
                                               dy=_f(2, 6, 6, 5)), ()),
    "avg_pool1d_backward": lambda: (dict(dy=_f(2, 4, 3), input_shape=(2, 8, 3)), ()),
    "avg_pool2d_backward": lambda: (dict(dy=_f(2, 2, 2, 3), input_shape=(2, 4, 4, 3)), ()),
    "global_avg_pool1d_backward": lambda: (dict(dy=_f(2, 3), input_shape=(2, 5, 3)), ()),
    "global_avg_pool2d_backward": lambda: (dict(dy=_f(2, 3), input_shape=(2, 4, 4, 3)), ()),
    "global_max_pool1d_backward": lambda: (dict(x=_f(2, 5, 3), dy=_f(2, 3)), ()),
    "global_max_pool2d_backward": lambda: (dict(x=_f(2, 4, 4, 3), dy=_f(2, 3)), ()),
    "max_pool1d_backward": lambda: (dict(x=_f(2, 8, 3), dy=_f(2, 4, 3)), ()),
    "max_pool2d_backward": lambda: (dict(x=_f(2, 4, 4, 3), dy=_f(2, 2, 2, 3)), ()),
    "batch_norm_train": lambda: (dict(x=_f(8, 3), gamma=_f(3), beta=_f(3),
                                      moving_mean=_f(3), moving_var=_f(3, low=0.5)),
                                 ("moving_mean", "moving_var")),
    "batch_norm_inference": lambda: (dict(x=_f(8, 3), gamma=_f(3), beta=_f(3),
                                          moving_mean=_f(3), moving_var=_f(3, low=0.5)), ()),
    "batch_norm_backward": lambda: (dict(x=_f(8, 3), dy=_f(8, 3), gamma=_f(3), mean=_f(3),
                                         inv_std=_f(3, low=0.5)), ()),
    "binary_cross_entropy": lambda: (dict(probs=_f(4, 3, low=0.1, high=0.9),
                                          targets=_f(4, 3, low=0.0)), ()),
    "categorical_cross_entropy": lambda: (dict(probs=_probs(4, 3), targets=_probs(4, 3)), ()),
    "sigmoid_cross_entropy": lambda: (dict(logits=_f(4, 3), targets=_f(4, 3, low=0.0)), ()),
    "softmax_cross_entropy": lambda: (dict(logits=_f(4, 3), labels=np.array([0, 2, 1, 2])), ()),
    "mean_squared_error": lambda: (dict(pred=_f(4, 3), target=_f(4, 3)), ()),
    "mean_absolute_error": lambda: (dict(pred=_f(4, 3), target=_f(4, 3)), ()),
    "sgd_update": lambda: (dict(param=_f(6), grad=_f(6), velocity=_f(6), lr=0.1,
                                momentum=0.9), ("param", "velocity")),
    "adam_update": lambda: (dict(param=_f(6), grad=_f(6), m=_f(6), v=_f(6, low=0.0), step=1,
                                 lr=0.1), ("param", "m", "v")),
    "rmsprop_update": lambda: (dict(param=_f(6), grad=_f(6), ms=_f(6, low=0.0), lr=0.1),
                               ("param", "ms")),
    "adagrad_update": lambda: (dict(param=_f(6), grad=_f(6), accumulator=_f(6, low=0.1), lr=0.1),
                               ("param", "accumulator")),
    "affine_warp": lambda: (dict(x=_f(2, 5, 5, 3),
                                 matrices=np.tile(np.array([1, 0, 0.5, 0, 1, -0.5],
                                                           np.float32), (2, 1))), ()),
    "random_crop": lambda: (dict(x=_f(2, 6, 6, 3), height=4, width=4, seed=1), ()),
    "random_brightness": lambda: (dict(x=_f(2, 5, 5, 3), lower=-0.2, upper=0.2, seed=1), ()),
    "random_contrast": lambda: (dict(x=_f(2, 5, 5, 3), lower=0.5, upper=1.5, seed=1), ()),
    "random_affine": lambda: (dict(x=_f(2, 5, 5, 3), rotation=0.1, seed=1), ()),
    "random_erasing": lambda: (dict(x=_f(2, 5, 5, 3), probability=1.0, seed=1), ()),
    "random_flip": lambda: (dict(x=_f(2, 5, 5, 3), seed=1), ()),
    "augment_uniform": lambda: (dict(seed=3, image=2, stream=1), ()),
}

# Parameter names that take an array, and the array a generic case gives them
# (the same shape for all, as elementwise functions need).
_ARRAY_PARAMS = {"x", "dy", "y", "a", "b", "pred", "target", "logits", "probs", "targets", "x1", "x2"}

# Keras's ops in cnnc.ops (NumPy on arrays, traced inside call()): covered
# where the generic case can build their arguments, skipped (with the reason)
# where it cannot; the C kernels' wrappers must always be covered.
KERAS_OPS = getattr(ops, "_KERAS_OPS", frozenset())


def _generic_case(name, fn):
    kwargs = {}
    for p in inspect.signature(fn).parameters.values():
        if p.default is not inspect.Parameter.empty:
            continue
        if p.name not in _ARRAY_PARAMS:
            if name in KERAS_OPS:
                pytest.skip(f"Keras op {name}: required parameter {p.name!r} needs a case in OP_CASES")
            pytest.fail(f"cnnc.ops.{name} has a required parameter {p.name!r} this test cannot "
                        f"guess: add a case to OP_CASES in {__file__}")
        low = 0.1 if p.name in ("probs", "targets") else -1.0
        shape = (2, 8, 3) if "1d" in name else (2, 4, 4, 3)
        kwargs[p.name] = _f(*shape, low=low, high=0.9)
    return kwargs, ()


def _public_ops():
    return sorted(n for n in dir(ops) if not n.startswith("_") and callable(getattr(ops, n))
                  and getattr(getattr(ops, n), "__module__", "").startswith("cnnc"))


def _read_only(value):
    """The same data in a buffer NumPy may not write, as np.frombuffer gives."""
    if isinstance(value, np.ndarray):
        ro = np.frombuffer(value.tobytes(), dtype=value.dtype).reshape(value.shape)
        assert not ro.flags.writeable
        return ro
    if isinstance(value, list):
        return [_read_only(v) for v in value]
    return value


def _copy(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _flatten(result):
    if isinstance(result, np.ndarray):
        return [result]
    if isinstance(result, (tuple, list)):
        return [a for r in result for a in _flatten(r)]
    if isinstance(result, dict):
        return [a for k in sorted(result) for a in _flatten(result[k])]
    return [np.asarray(result)]


def test_every_op_has_a_case_or_a_reason():
    names = set(_public_ops())
    assert len(names) >= 40
    stale = (set(OP_CASES) | NO_ARRAY_INPUT) - names
    assert not stale, f"cases for functions cnnc.ops no longer has: {sorted(stale)}"


@pytest.mark.parametrize("name", [n for n in _public_ops() if n not in NO_ARRAY_INPUT])
def test_op_accepts_read_only_inputs(name):
    fn = getattr(ops, name)
    case = OP_CASES[name]() if name in OP_CASES else None
    if case is None or not set(case[0]) <= set(inspect.signature(fn).parameters):
        case = _generic_case(name, fn)  # no case, or one for another signature (a Keras op)
    kwargs, in_place = case
    writable = {k: _copy(v) for k, v in kwargs.items()}
    expected = _flatten(fn(**writable))
    read_only = {k: (_copy(v) if k in in_place else _read_only(v)) for k, v in kwargs.items()}
    frozen = {k: _copy(v) for k, v in read_only.items()}
    got = _flatten(fn(**read_only))
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g, e)
    for k in kwargs:
        if k in in_place:
            np.testing.assert_array_equal(read_only[k], writable[k])
        else:
            for a, b in zip(_flatten(read_only[k]), _flatten(frozen[k])):
                np.testing.assert_array_equal(a, b)


def test_ops_accept_read_only_memmaps(tmp_path):
    x = _f(2, 6, 6, 3)
    w = _f(3, 3, 3, 4)
    path = tmp_path / "x.bin"
    x.tofile(path)
    xm = np.memmap(path, dtype=np.float32, mode="r", shape=x.shape)
    assert not xm.flags.writeable
    np.testing.assert_array_equal(ops.conv2d(xm, w), ops.conv2d(x, w))
    np.testing.assert_array_equal(ops.relu(xm), ops.relu(x))
    np.testing.assert_array_equal(ops.matmul(xm.reshape(-1, 3), w[0, 0]),
                                  ops.matmul(x.reshape(-1, 3), w[0, 0]))


def test_read_only_output_is_refused():
    x = _f(3, 4)
    out = np.zeros_like(x)
    out.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        ops.relu(x, out=out)


# Layers: constructor arguments and the input shape (batch included) where the
# defaults do not do; a list of shapes for layers taking several inputs.
LAYER_CASES = {
    "Dense": (dict(units=4), (2, 5)),
    "Conv1D": (dict(filters=4, kernel_size=3), (2, 9, 3)),
    "Conv2D": (dict(filters=4, kernel_size=3), (2, 6, 6, 3)),
    "DepthwiseConv2D": (dict(kernel_size=3), (2, 6, 6, 3)),
    "Conv2DTranspose": (dict(filters=4, kernel_size=3), (2, 5, 5, 3)),
    "AveragePooling1D": (dict(), (2, 8, 3)),
    "MaxPooling1D": (dict(), (2, 8, 3)),
    "GlobalAveragePooling1D": (dict(), (2, 8, 3)),
    "GlobalMaxPooling1D": (dict(), (2, 8, 3)),
    "Reshape": (dict(target_shape=(36, 3)), (2, 6, 6, 3)),
    "Dropout": (dict(rate=0.5, seed=1), (2, 6, 6, 3)),
    "SpatialDropout1D": (dict(rate=0.5, seed=1), (2, 8, 3)),
    "SpatialDropout2D": (dict(rate=0.5, seed=1), (2, 6, 6, 3)),
    "Activation": (dict(activation="gelu"), (2, 6, 6, 3)),
    "ZeroPadding1D": (dict(), (2, 8, 3)),
    "Cropping1D": (dict(), (2, 8, 3)),
    "UpSampling1D": (dict(), (2, 8, 3)),
    "Permute": (dict(dims=(2, 1, 3)), (2, 6, 5, 3)),
    "Cropping2D": (dict(cropping=1), (2, 6, 6, 3)),
    "RandomCrop": (dict(height=4, width=4, seed=1), (2, 6, 6, 3)),
    "RandomContrast": (dict(factor=0.3, seed=1), (2, 6, 6, 3)),
    "RandomBrightness": (dict(factor=0.3, seed=1), (2, 6, 6, 3)),
    "RandomRotation": (dict(factor=0.1, seed=1), (2, 6, 6, 3)),
    "RandomTranslation": (dict(height_factor=0.1, width_factor=0.1, seed=1), (2, 6, 6, 3)),
    "RandomZoom": (dict(height_factor=0.1, seed=1), (2, 6, 6, 3)),
    "RandomFlip": (dict(seed=1), (2, 6, 6, 3)),
    "Rescaling": (dict(scale=0.5), (2, 6, 6, 3)),
    "Normalization": (dict(mean=0.5, variance=2.0), (2, 6, 6, 3)),
}
MERGE_LAYERS = {"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Divide"}
LAYER_CASES.update({
    "Pad": (dict(paddings=((1, 1), (1, 1), (0, 0))), (2, 6, 6, 3)),
    "Lambda": (dict(function=lambda x: x * 2.0), (2, 6, 6, 3)),
})
# Layers that take no array of their own, or wrap one op given at
# construction (OpLayer, ConstantArithmetic: their ops are covered above).
NO_LAYER_INPUT = {"InputLayer", "OpLayer", "ConstantArithmetic"}


def _layer_classes():
    return sorted(name for name in L._LAYER_CLASSES if name not in NO_LAYER_INPUT)


def _make_layer(name):
    kwargs, shape = LAYER_CASES.get(name, (dict(), (2, 6, 6, 3)))
    if name in MERGE_LAYERS:
        shape = [(2, 6, 6, 3), (2, 6, 6, 3)]
    try:
        layer = L._LAYER_CLASSES[name](**kwargs)
    except TypeError as error:
        pytest.fail(f"{name}() needs arguments: add a case to LAYER_CASES in {__file__} ({error})")
    if isinstance(shape, list):
        return layer, [_f(*s) for s in shape]
    return layer, _f(*shape)


@pytest.mark.parametrize("name", _layer_classes())
@pytest.mark.parametrize("training", [False, True])
def test_layer_accepts_read_only_inputs(name, training):
    layer, x = _make_layer(name)
    ro = _read_only(x)
    frozen = _copy(ro)
    y_ro = layer(ro, training=training)
    if training:
        dy = _read_only(np.ones_like(y_ro) * 0.5)
        dx = layer.backward(dy)
        for d in _flatten(dx):
            assert np.all(np.isfinite(d))
    for a, b in zip(_flatten(ro), _flatten(frozen)):
        np.testing.assert_array_equal(a, b)
    if not training:
        np.testing.assert_array_equal(_flatten(y_ro)[0], _flatten(layer(_copy(x)))[0])


def test_model_trains_and_predicts_on_read_only_data(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 6, 6, 1)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    x.tofile(tmp_path / "x.bin")
    xm = np.memmap(tmp_path / "x.bin", dtype=np.float32, mode="r", shape=x.shape)
    ym = np.frombuffer(y.astype(np.int64).tobytes(), dtype=np.int64)
    model = cnnc.models.Sequential([L.Input((6, 6, 1)), L.Conv2D(2, 3, activation="relu"),
                             L.BatchNormalization(), L.Flatten(), L.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(xm, ym, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    np.testing.assert_allclose(model.predict(xm, verbose=0), model.predict(x, verbose=0))
    model.evaluate(xm, ym, verbose=0)
