"""Hostile and corrupted model files: every defect raises the one documented
CorruptFileError, no altered byte loads silently, no small file drives a
large allocation; temporaries of killed saves are cleaned up; a resumed run
with random layers equals an uninterrupted one bit for bit."""
import json
import os
import subprocess
import sys
import tracemalloc
import zlib

import numpy as np
import pytest

from cnnc import _safetensors, layers, optimizers
from cnnc.models import Model, load_model
from cnnc.saving import CorruptFileError
from cnnc.utils import set_random_seed
from file_corruptions import assemble as _assemble, corrupted, hostile, split as _split


def _model(units=4):
    inp = layers.Input((6, 6, 1), name="image")
    h = layers.RandomFlip("horizontal", name="flip")(inp)
    h = layers.Conv2D(3, 3, activation="relu", name="conv")(h)
    h = layers.Dropout(0.4, name="drop")(h)
    h = layers.Flatten(name="flat")(h)
    return Model(inp, layers.Dense(units, activation="softmax", name="dense")(h), name="net")


def _data(n=24, units=4):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, 6, 6, 1)).astype(np.float32)
    y = np.eye(units, dtype=np.float32)[rng.integers(0, units, n)]
    return x, y


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(path, raw bytes) of a trained model file with optimizer state."""
    set_random_seed(1)
    model = _model()
    model.compile(optimizers.Adam(0.01), "categorical_crossentropy")
    model.fit(*_data(), epochs=1, batch_size=8, verbose=0)
    path = tmp_path_factory.mktemp("saved") / "m.cnnc"
    model.save(path)
    return path, path.read_bytes()


def _load(tmp_path, raw, name="bad.cnnc"):
    path = tmp_path / name
    path.write_bytes(raw)
    return load_model(path)


def _refused(tmp_path, raw, match=None):
    with pytest.raises(CorruptFileError, match=match):
        _load(tmp_path, raw)


def _rewrite(saved_raw, edit):
    """A file whose JSON header went through ``edit(header)`` (checksums
    kept as they were, so the header alone is altered)."""
    header, data = _split(saved_raw)
    edit(header)
    return _assemble(json.dumps(header), data)


# -- layout -----------------------------------------------------------------------------
def test_exception_class_is_a_value_error_exported_from_saving():
    import cnnc.saving
    assert issubclass(CorruptFileError, ValueError)
    assert CorruptFileError is _safetensors.CorruptFileError
    assert "CorruptFileError" in cnnc.saving.__all__


def test_header_length_one_byte_short_is_refused(tmp_path, saved):
    _, raw = saved
    n = int.from_bytes(raw[:8], "little")
    # The last header byte is padding or '}': one byte short either breaks
    # the JSON or shifts every tensor by a byte.
    for delta in (-1, 1, -8, 8):
        _refused(tmp_path, (n + delta).to_bytes(8, "little") + raw[8:])


def test_trailing_junk_and_gaps_are_refused(tmp_path, saved):
    _, raw = saved
    _refused(tmp_path, raw + b"\0" * 1024, "after the last tensor")
    _refused(tmp_path, raw + b"x", "after the last tensor")
    header, data = _split(raw)
    first = min((k for k in header if k != "__metadata__"),
                key=lambda k: header[k]["data_offsets"][0])
    for entry in header.values():
        if "data_offsets" in entry:
            entry["data_offsets"] = [o + 4 for o in entry["data_offsets"]]
    _refused(tmp_path, _assemble(json.dumps(header), b"\0" * 4 + data),
             f"4 bytes before tensor '{first}'")


def test_unsorted_tiling_is_accepted(tmp_path):
    # Tensors in the header need not be in data order, as long as they tile.
    a, b = np.arange(3, dtype=np.float32), np.arange(5, dtype=np.float32)
    header = {"b": {"dtype": "F32", "shape": [5], "data_offsets": [12, 32]},
              "a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}}
    path = tmp_path / "unsorted.safetensors"
    path.write_bytes(_assemble(json.dumps(header), a.tobytes() + b.tobytes()))
    tensors, _ = _safetensors.read(path)
    assert list(tensors) == ["b", "a"]
    np.testing.assert_array_equal(tensors["a"], a)
    np.testing.assert_array_equal(tensors["b"], b)


def test_duplicate_keys_are_refused(tmp_path, saved):
    _, raw = saved
    header, data = _split(raw)
    text = json.dumps(header)
    entry = json.dumps(header["dense/bias"])
    dup = text.replace('"dense/bias": ', f'"dense/bias": {entry}, "dense/bias": ', 1)
    _refused(tmp_path, _assemble(dup, data), "twice")
    meta_dup = text.replace('"__metadata__": {', '"__metadata__": {"kind": "weights", ', 1)
    _refused(tmp_path, _assemble(meta_dup, data), "twice")


def test_deep_nesting_is_refused(tmp_path, saved):
    _, raw = saved
    header, data = _split(raw)
    deep = "[" * 100_000 + "]" * 100_000
    text = json.dumps(header)[:-1] + ', "deep": ' + deep + "}"
    _refused(tmp_path, _assemble(text, data))
    # Deep nesting inside a metadata document (re-checksummed so that only
    # the content is hostile).
    tensors, meta = _safetensors.read(saved[0])
    meta["model_config"] = deep
    _safetensors.write(tmp_path / "deep.cnnc", tensors, meta)
    with pytest.raises(CorruptFileError):
        load_model(tmp_path / "deep.cnnc")


def test_huge_header_claims_are_refused_before_reading(tmp_path, saved):
    _, raw = saved
    tracemalloc.start()
    try:
        for claim in (2**31, 2**62, _safetensors.MAX_HEADER_BYTES, 2**26, len(raw)):
            _refused(tmp_path, claim.to_bytes(8, "little") + raw[8:])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(raw) + (1 << 20)


def test_small_file_cannot_drive_a_huge_allocation(tmp_path, saved):
    # The architecture claims Dense(units=5_000_000) (a 2.2 GB model with
    # its gradients), the file holds the tensors of a 4-unit one.
    tensors, meta = _safetensors.read(saved[0])
    config = json.loads(meta["model_config"])
    for layer in config["config"]["layers"]:
        if layer["name"] == "dense":
            layer["config"]["units"] = 5_000_000
    meta["model_config"] = json.dumps(config)
    path = tmp_path / "huge.cnnc"
    _safetensors.write(path, tensors, meta)
    assert path.stat().st_size < 16_000
    tracemalloc.start()
    try:
        with pytest.raises(CorruptFileError, match="dense/kernel"):
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20


def test_hostile_tensor_entries_are_refused(tmp_path, saved):
    _, raw = saved
    cases = {
        "shape overflow": lambda h: h["dense/bias"].update(shape=[2**40, 2**40, 2**40]),
        "huge offsets": lambda h: h["dense/bias"].update(data_offsets=[2**70, 2**70 + 16]),
        "bool shape": lambda h: h["dense/bias"].update(shape=[True, 4]),
        "float shape": lambda h: h["dense/bias"].update(shape=[4.0]),
        "string offsets": lambda h: h["dense/bias"].update(data_offsets="0,16"),
        "dtype list": lambda h: h["dense/bias"].update(dtype=["F32"]),
        "same-size dtype": lambda h: h["dense/bias"].update(dtype="I32"),
        "permuted shape": lambda h: h["conv/kernel"].update(
            shape=h["conv/kernel"]["shape"][::-1]),
        "entry not an object": lambda h: h.update({"dense/bias": 5}),
        "metadata not strings": lambda h: h["__metadata__"].update(kind=1),
        "swapped offsets": lambda h: h.update({
            "dense/bias": dict(h["dense/bias"], data_offsets=h["optimizer/dense/bias/m"]
                               ["data_offsets"]),
            "optimizer/dense/bias/m": dict(h["optimizer/dense/bias/m"],
                                           data_offsets=h["dense/bias"]["data_offsets"])}),
    }
    for name, edit in cases.items():
        with pytest.raises(CorruptFileError):
            _load(tmp_path, _rewrite(raw, edit), name.replace(" ", "_") + ".cnnc")


# -- checksums ----------------------------------------------------------------------------
def test_flipped_data_byte_fails_the_checksum(tmp_path, saved):
    _, raw = saved
    header, data = _split(raw)
    begin = len(raw) - len(data) + header["dense/kernel"]["data_offsets"][0]
    altered = bytearray(raw)
    altered[begin + 5] ^= 0x01  # a float's low mantissa bit: a plausible value
    _refused(tmp_path, bytes(altered), "'dense/kernel' fails its checksum")


def test_checksums_must_match_the_tensors_exactly(tmp_path, saved):
    _, raw = saved

    def with_checksums(edit):
        def apply(header):
            meta = header["__metadata__"]
            sums = json.loads(meta["checksums"])
            edit(sums)
            meta["checksums"] = json.dumps(sums)
            meta["metadata_checksum"] = _safetensors.metadata_crc(meta)
        return _rewrite(raw, apply)

    _refused(tmp_path, with_checksums(lambda s: s.pop("dense/bias")), "no checksum for")
    _refused(tmp_path, with_checksums(lambda s: s.update(ghost="00000000")), "absent tensors")
    _refused(tmp_path, with_checksums(lambda s: s.update({"dense/bias": "0" * 8})), "checksum")
    _refused(tmp_path, with_checksums(lambda s: s.update({"dense/bias": "ABCDEF12"})), "hex")
    _refused(tmp_path, with_checksums(lambda s: s.update({"dense/bias": 12345678})), "hex")

    def drop(key):
        def apply(header):
            meta = header["__metadata__"]
            del meta[key]
            if key != "metadata_checksum":
                meta["metadata_checksum"] = _safetensors.metadata_crc(meta)
        return _rewrite(raw, apply)

    _refused(tmp_path, drop("checksums"), "'checksums'")
    _refused(tmp_path, drop("metadata_checksum"), "'metadata_checksum'")


def test_checksums_verified_on_the_helper_thread_path(tmp_path, monkeypatch):
    # Large files overlap the CRC with reading, chunk by chunk: same verdicts.
    monkeypatch.setattr(_safetensors, "_OVERLAP_BYTES", 0)
    monkeypatch.setattr(_safetensors, "_READ_CHUNK", 40)
    rng = np.random.default_rng(3)
    tensors = {"a": rng.standard_normal(1000).astype(np.float32),
               "b": rng.standard_normal((7, 9)).astype(np.float32),
               "e": np.zeros(0, np.float32)}
    path = tmp_path / "chunks.safetensors"
    _safetensors.write(path, tensors)
    back, _ = _safetensors.read(path)
    for key in tensors:
        np.testing.assert_array_equal(back[key], tensors[key])
    raw = bytearray(path.read_bytes())
    for pos in (len(raw) - 1, len(raw) - 7 * 9 * 4 - 1, len(raw) - 3000):
        altered = bytearray(raw)
        altered[pos] ^= 0x80
        path.write_bytes(bytes(altered))
        with pytest.raises(CorruptFileError, match="fails its checksum"):
            _safetensors.read(path)


def test_nested_random_layers_are_saved_under_their_path(tmp_path):
    inner_in = layers.Input((4,), name="inner_in")
    inner = Model(inner_in, layers.Dropout(0.5, name="drop")(inner_in), name="inner")
    outer_in = layers.Input((4,), name="outer_in")
    h = layers.Dropout(0.2, seed=3, name="drop")(inner(outer_in))
    model = Model(outer_in, layers.Dense(2, name="dense")(h), name="outer")
    model.compile("sgd", "mse")
    x = np.ones((6, 4), np.float32)
    model.fit(x, np.zeros((6, 2), np.float32), batch_size=3, verbose=0)
    model.save(tmp_path / "nested.cnnc")
    state = json.loads(_safetensors.read(tmp_path / "nested.cnnc")[1]["random_state"])
    assert set(state["layers"]) == {"inner/drop", "drop"}
    assert state["layers"]["drop"] == {"seed": 3, "offset": 24}
    back = load_model(tmp_path / "nested.cnnc")
    assert back.get_layer("inner").get_layer("drop").random_state() == \
        model.get_layer("inner").get_layer("drop").random_state()


def test_altered_metadata_fails_its_checksum(tmp_path, saved):
    _, raw = saved
    # A changed dropout rate is valid JSON and a valid architecture.
    altered = raw.replace(b'\\"rate\\": 0.4', b'\\"rate\\": 0.7', 1)
    assert altered != raw
    _refused(tmp_path, altered, "metadata fails its checksum")


def test_version_1_files_without_checksums_still_load(tmp_path, saved):
    path, raw = saved
    header, data = _split(raw)
    meta = header["__metadata__"]
    del meta["checksums"], meta["metadata_checksum"], meta["random_state"]
    meta["format_version"] = "1"
    model = _load(tmp_path, _assemble(json.dumps(header), data), "v1.cnnc")
    reference = load_model(path)
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer.iterations == reference.optimizer.iterations == 3
    meta["format_version"] = "2"
    _refused(tmp_path, _assemble(json.dumps(header), data), "must have")


def test_files_stay_readable_by_the_safetensors_package(saved):
    st = pytest.importorskip("safetensors.numpy")
    path, raw = saved
    loaded = st.load_file(str(path))
    ours, meta = _safetensors.read(path)
    assert set(loaded) == set(ours)
    for key in ours:
        np.testing.assert_array_equal(loaded[key], ours[key])
        assert "%08x" % zlib.crc32(loaded[key].tobytes()) == json.loads(meta["checksums"])[key]


# -- optimizer state ---------------------------------------------------------------------
def _resaved(saved_path, tmp_path, edit_tensors=None, edit_meta=None):
    tensors, meta = _safetensors.read(saved_path)
    if edit_tensors:
        edit_tensors(tensors)
    if edit_meta:
        edit_meta(meta)
    path = tmp_path / "resaved.cnnc"
    _safetensors.write(path, tensors, meta)
    return path


def test_missing_optimizer_tensor_is_refused(tmp_path, saved):
    path = _resaved(saved[0], tmp_path, lambda t: t.pop("optimizer/dense/kernel/v"))
    with pytest.raises(CorruptFileError, match="'dense/kernel' has the slots \\['m'\\]"):
        load_model(path)


def test_optimizer_tensors_without_their_metadata_are_refused(tmp_path, saved):
    path = _resaved(saved[0], tmp_path, edit_meta=lambda m: m.pop("optimizer_state"))
    with pytest.raises(CorruptFileError, match="no optimizer_state"):
        load_model(path)
    path = _resaved(saved[0], tmp_path, edit_meta=lambda m: m.pop("training_config"))
    with pytest.raises(CorruptFileError, match="no training_config"):
        load_model(path)


@pytest.mark.parametrize("steps", ["-5", "2.7", "1e300", "true", '"3"', "null", "18446744073709551616"])
def test_invalid_step_counts_are_refused(tmp_path, saved, steps):
    path = _resaved(saved[0], tmp_path,
                    edit_meta=lambda m: m.update(optimizer_state=f'{{"iterations": {steps}}}'))
    with pytest.raises(CorruptFileError, match="step count|optimizer_state"):
        load_model(path)


def test_hostile_configs_raise_the_one_exception(tmp_path, saved):
    tensors, meta = _safetensors.read(saved[0])
    config = json.loads(meta["model_config"])
    edits = [
        lambda c: c["config"].update(layers=5),
        lambda c: c["config"].update(layers=[5]),
        lambda c: c["config"]["layers"][2]["config"].update(filters="many"),
        lambda c: c["config"]["layers"][2]["config"].update(kernel_size=[10**30, 1]),
        lambda c: c["config"]["layers"][2]["config"].update(strides=[0, 0]),
        lambda c: c["config"]["layers"][3].update(inbound_nodes=[[["nowhere", 0, 0]]]),
        lambda c: c["config"].update(output_layers=[["dense", 0, 99]]),
        lambda c: c.update(config=None),
        lambda c: c.update(class_name=["Functional"]),
    ]
    for i, edit in enumerate(edits):
        hostile = json.loads(json.dumps(config))
        edit(hostile)
        path = _resaved(saved[0], tmp_path,
                        edit_meta=lambda m: m.update(model_config=json.dumps(hostile)))
        with pytest.raises(CorruptFileError):
            load_model(path)
    for key, value in [("training_config", '{"optimizer": 3}'),
                       ("training_config", '{"optimizer": {"class_name": "Adam", '
                                           '"config": {"learning_rate": "fast"}}, "loss": 2}'),
                       ("random_state", '{"layers": {"drop": {"seed": -1, "offset": 0}}}'),
                       ("random_state", '{"layers": {}}'),
                       ("random_state", "[]")]:
        path = _resaved(saved[0], tmp_path, edit_meta=lambda m: m.update({key: value}))
        with pytest.raises(CorruptFileError):
            load_model(path)


# -- fuzz ------------------------------------------------------------------------------------
def test_fuzz_corrupted_model_files(tmp_path, saved):
    """Every corrupted variant of a saved model raises CorruptFileError; none
    loads."""
    _, raw = saved
    rng = np.random.default_rng(2024)
    outcomes = {}
    silent = []
    for i, (label, variant) in enumerate(corrupted(raw, rng)):
        assert variant != raw
        try:
            _load(tmp_path, variant)
        except CorruptFileError:
            outcomes[label] = outcomes.get(label, 0) + 1
        except Exception as exc:  # noqa: BLE001 - the point is to catch anything else
            pytest.fail(f"variant {i} ({label}) raised {type(exc).__name__}: {exc}")
        else:
            silent.append((i, label))
    assert not silent, f"altered files loaded silently: {silent}"
    assert sum(outcomes.values()) > 700


def test_fuzz_hostile_documents_with_valid_checksums(tmp_path, saved):
    """Hostile JSON documents (fresh checksums): refused with CorruptFileError
    or loaded as the valid model they describe, never another exception."""
    tensors, meta = _safetensors.read(saved[0])
    rng = np.random.default_rng(7)
    refused = 0
    for i, (label, tensors, meta) in enumerate(hostile(tensors, meta, rng, 150)):
        path = tmp_path / "hostile.cnnc"
        _safetensors.write(path, tensors, meta)
        try:
            load_model(path)
        except CorruptFileError:
            refused += 1
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"hostile variant {i} ({label}) raised {type(exc).__name__}: {exc}")
    assert refused > 75


# -- temporaries of killed saves ---------------------------------------------------------------
def test_stale_temporaries_of_the_target_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    target = tmp_path / "m.cnnc"
    host = _safetensors._host_tag()
    other_host = "%08x" % (int(host, 16) ^ 1)
    stale = tmp_path / f".m.cnnc.{dead.pid}.{host}.0123456789abcdef.tmp"
    kept = [tmp_path / f".m.cnnc.{os.getppid()}.{host}.0123456789abcdef.tmp",  # live writer
            tmp_path / f".m.cnnc.{dead.pid}.{other_host}.0123456789abcdef.tmp",  # another host
            tmp_path / f".n.cnnc.{dead.pid}.{host}.0123456789abcdef.tmp",  # another target
            tmp_path / f".m.cnnc.{dead.pid}.{host}.notours.tmp",
            tmp_path / f".m.cnnc.{dead.pid}.0123456789abcdef.tmp"]
    for path in [stale] + kept:
        path.write_bytes(b"partial")
    _safetensors.write(target, {"a": np.ones(2, np.float32)})
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["m.cnnc"] + [p.name for p in kept])


def test_killed_save_leaves_a_temporary_that_the_next_save_removes(tmp_path):
    target = tmp_path / "big.cnnc"
    script = (
        "import os, sys, numpy as np\n"
        "from cnnc import _safetensors\n"
        "os.fsync = lambda fd: os._exit(9)  # dies after writing, before the rename\n"
        f"_safetensors.write({str(target)!r}, {{'a': np.ones(1000, np.float32)}})\n")
    # cwd outside the repository, so that the child imports the installed package
    result = subprocess.run([sys.executable, "-c", script], env=dict(os.environ), cwd=tmp_path)
    assert result.returncode == 9
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1 and not target.exists()
    _safetensors.write(target, {"a": np.zeros(3, np.float32)})
    assert [p.name for p in tmp_path.iterdir()] == ["big.cnnc"]


# -- exact resume ------------------------------------------------------------------------------------
def test_resume_with_dropout_and_random_layers_is_exact(tmp_path):
    x, y = _data(40)
    set_random_seed(7)
    straight = _model()
    straight.compile(optimizers.Adam(0.01), "categorical_crossentropy")
    straight.fit(x, y, epochs=3, batch_size=8, verbose=0)

    set_random_seed(7)
    first = _model()
    first.compile(optimizers.Adam(0.01), "categorical_crossentropy")
    first.fit(x, y, epochs=1, batch_size=8, verbose=0)
    first.save(tmp_path / "ckpt.cnnc")
    set_random_seed(99)  # the resumed run must not depend on the global state
    resumed = load_model(tmp_path / "ckpt.cnnc")
    resumed.fit(x, y, epochs=3, initial_epoch=1, batch_size=8, verbose=0)
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    state = json.loads(_safetensors.read(tmp_path / "ckpt.cnnc")[1]["random_state"])
    assert state["layers"]["drop"]["offset"] == 40 * 4 * 4 * 3
    assert state["layers"]["flip"]["calls"] == 5
    assert state["shuffle_root"] == 7


def test_resume_in_a_new_process_continues_the_shuffling(tmp_path):
    # No global seed: the shuffling root is per process, and saved.
    x, y = _data(40)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    first = _model()
    first.compile(optimizers.SGD(0.05, momentum=0.9), "categorical_crossentropy")
    first.fit(x, y, epochs=1, batch_size=8, verbose=0)
    first.save(tmp_path / "ckpt.cnnc")
    first.fit(x, y, epochs=2, initial_epoch=1, batch_size=8, verbose=0)
    script = (
        "import numpy as np\n"
        "from cnnc.models import load_model\n"
        f"d = np.load({str(tmp_path / 'data.npz')!r})\n"
        f"m = load_model({str(tmp_path / 'ckpt.cnnc')!r})\n"
        "m.fit(d['x'], d['y'], epochs=2, initial_epoch=1, batch_size=8, verbose=0)\n"
        f"m.save_weights({str(tmp_path / 'resumed.cnnc')!r})\n")
    subprocess.run([sys.executable, "-c", script], check=True, env=dict(os.environ), cwd=tmp_path)
    resumed, _ = _safetensors.read(tmp_path / "resumed.cnnc")
    for key, weight in [(w.name, w.value) for w in first.weights]:
        np.testing.assert_array_equal(resumed[key], weight)
