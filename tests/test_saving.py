"""model.save / load_model / save_weights / load_weights: identical
predictions, exact resumption of training, clear errors on bad files."""
import json

import numpy as np
import pytest

from cnnc import callbacks
from cnnc.utils import set_random_seed
from cnnc import _safetensors, optimizers
from cnnc.layers import Input
from cnnc.models import Model, Sequential, load_model
from nplayers import NpAdd, NpDense

CUSTOM = {"NpDense": NpDense, "NpAdd": NpAdd}


def _model():
    inp = Input((6,), name="x")
    h = NpDense(8, "tanh", name="d1")(inp)
    h2 = NpDense(8, "tanh", name="d2")(h)
    s = NpAdd(name="add")([h, h2])
    return Model(inp, NpDense(3, "softmax", name="head")(s), name="res")


def _data(rng, n=64):
    x = rng.standard_normal((n, 6)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[(x[:, 0] > 0).astype(int) + (x[:, 1] > 1)]
    return x, y


def test_save_load_predict_identical(tmp_path, rng):
    model = _model()
    model.compile(optimizers.Adam(0.01), "categorical_crossentropy", metrics=["accuracy"])
    x, y = _data(rng)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    path = tmp_path / "model.cnnc"
    model.save(path)
    loaded = load_model(path, custom_objects=CUSTOM)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    assert isinstance(loaded.optimizer, optimizers.Adam)
    assert loaded.optimizer.iterations == model.optimizer.iterations == 8
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)
    # The file is plain safetensors with the documented metadata.
    tensors, meta = _safetensors.read(path)
    assert meta["format"] == "cnnc" and meta["kind"] == "model"
    assert json.loads(meta["model_config"])["class_name"] == "Functional"
    assert "optimizer/d1/kernel/m" in tensors and "d1/kernel" in tensors
    assert json.loads(meta["optimizer_state"]) == {"iterations": 8}


def test_resume_from_checkpoint_matches_uninterrupted_run(tmp_path, rng):
    x, y = _data(rng)
    set_random_seed(3)
    straight = _model()
    straight.compile(optimizers.Adam(0.01), "categorical_crossentropy")
    straight.fit(x, y, epochs=4, batch_size=10, verbose=0)

    set_random_seed(3)
    first = _model()
    first.compile(optimizers.Adam(0.01), "categorical_crossentropy")
    ckpt = tmp_path / "ckpt-{epoch}.cnnc"
    first.fit(x, y, epochs=2, batch_size=10, verbose=0,
              callbacks=[callbacks.ModelCheckpoint(str(ckpt))])
    resumed = load_model(tmp_path / "ckpt-2.cnnc", custom_objects=CUSTOM)
    resumed.fit(x, y, epochs=4, initial_epoch=2, batch_size=10, verbose=0)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_weights_roundtrip_and_mismatch_errors(tmp_path, rng):
    model = _model()
    path = tmp_path / "w.safetensors"
    model.save_weights(path)
    other = _model()
    other.load_weights(path)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    _, meta = _safetensors.read(path)
    assert meta["kind"] == "weights"
    with pytest.raises(ValueError, match="weights only"):
        load_model(path, custom_objects=CUSTOM)

    inp = Input((6,), name="x")
    h = NpDense(5, "tanh", name="d1")(inp)  # 5 units instead of 8
    wrong = Model(inp, NpDense(3, name="head")(h))
    with pytest.raises(ValueError, match="d1/kernel.*shape"):
        wrong.load_weights(path)
    wrong.load_weights(path, skip_mismatch=True)  # head/bias matches and is loaded
    np.testing.assert_array_equal(wrong.get_layer("head").get_weights()[1],
                                  model.get_layer("head").get_weights()[1])
    with pytest.raises(FileExistsError):
        model.save_weights(path, overwrite=False)


def test_corrupt_and_truncated_model_files(tmp_path, rng):
    model = _model()
    model.compile("sgd", "categorical_crossentropy")
    x, y = _data(rng, 8)
    model.fit(x, y, verbose=0)
    path = tmp_path / "m.cnnc"
    model.save(path)
    raw = path.read_bytes()
    (tmp_path / "cut.cnnc").write_bytes(raw[:-10])
    with pytest.raises(ValueError, match="truncated"):
        load_model(tmp_path / "cut.cnnc", custom_objects=CUSTOM)
    (tmp_path / "junk.cnnc").write_bytes(b"\x00" * 3)
    with pytest.raises(ValueError, match="not a valid"):
        load_model(tmp_path / "junk.cnnc")
    tensors, meta = _safetensors.read(path)
    meta["model_config"] = "{broken"
    _safetensors.write(tmp_path / "badjson.cnnc", tensors, meta)
    with pytest.raises(ValueError, match="model_config.*JSON"):
        load_model(tmp_path / "badjson.cnnc", custom_objects=CUSTOM)
    meta = dict(_safetensors.read(path)[1], format_version="99")
    _safetensors.write(tmp_path / "future.cnnc", tensors, meta)
    with pytest.raises(ValueError, match="version"):
        load_model(tmp_path / "future.cnnc", custom_objects=CUSTOM)
    del tensors["d2/bias"]
    _safetensors.write(tmp_path / "missing.cnnc", tensors, _safetensors.read(path)[1])
    with pytest.raises(ValueError, match="missing weight 'd2/bias'"):
        load_model(tmp_path / "missing.cnnc", custom_objects=CUSTOM)
    with pytest.raises(ValueError, match="unknown layer class"):
        load_model(path)  # custom layers not given


def test_sequential_and_nested_roundtrip(tmp_path, rng):
    seq = Sequential([Input((4,)), NpDense(5, "tanh", name="s1"), NpDense(2, name="s2")],
                     name="seq")
    x = rng.standard_normal((3, 4)).astype(np.float32)
    seq.save(tmp_path / "seq.cnnc")
    back = load_model(tmp_path / "seq.cnnc", custom_objects=CUSTOM)
    assert isinstance(back, Sequential) and back.name == "seq"
    np.testing.assert_array_equal(back.predict(x, verbose=0), seq.predict(x, verbose=0))

    inner_in = Input((4,), name="inner_in")
    inner = Model(inner_in, NpDense(3, "tanh", name="inner_d")(inner_in), name="inner")
    outer_in = Input((4,), name="outer_in")
    outer = Model(outer_in, NpDense(2, name="outer_d")(inner(outer_in)), name="outer")
    outer.save(tmp_path / "nested.cnnc")
    tensors, _ = _safetensors.read(tmp_path / "nested.cnnc")
    assert "inner/inner_d/kernel" in tensors
    back = load_model(tmp_path / "nested.cnnc", custom_objects=CUSTOM)
    np.testing.assert_array_equal(back.predict(x, verbose=0), outer.predict(x, verbose=0))
    assert isinstance(back.get_layer("inner"), Model)
