"""The safetensors container of cnnc files: layout, atomic writes, and clear
errors for truncated or corrupt files."""
import json
import os
import zlib

import numpy as np
import pytest

from cnnc import _safetensors


def _tensors(rng):
    return {"conv/kernel": rng.standard_normal((3, 3, 1, 4)).astype(np.float32),
            "conv/bias": np.arange(4, dtype=np.float32),
            "step": np.array(7, dtype=np.int64),
            "empty": np.zeros((0, 3), np.float32)}


def test_roundtrip_and_layout(tmp_path, rng):
    path = tmp_path / "w.safetensors"
    tensors = _tensors(rng)
    _safetensors.write(path, tensors, {"format": "cnnc", "x": json.dumps([1, 2])})
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert (8 + n) % 8 == 0
    header = json.loads(raw[8:8 + n])
    meta = dict(header["__metadata__"])
    checksums = json.loads(meta.pop("checksums"))
    meta_crc = meta.pop("metadata_checksum")
    assert meta == {"format": "cnnc", "x": json.dumps([1, 2])}
    # CRC-32 (zlib) of each tensor's bytes, and of the other metadata entries.
    data = raw[8 + n:]
    assert checksums == {k: "%08x" % zlib.crc32(data[slice(*header[k]["data_offsets"])])
                         for k in tensors}
    assert checksums["empty"] == "00000000"
    covered = dict(header["__metadata__"])
    del covered["metadata_checksum"]
    assert meta_crc == "%08x" % zlib.crc32(b"".join(
        k.encode() + b"\0" + covered[k].encode() + b"\0" for k in sorted(covered)))
    assert header["conv/kernel"] == {"dtype": "F32", "shape": [3, 3, 1, 4],
                                     "data_offsets": [0, 144]}
    assert header["step"]["dtype"] == "I64" and header["step"]["shape"] == []
    # Raw little-endian bytes at the stated offsets.
    begin, end = header["conv/bias"]["data_offsets"]
    np.testing.assert_array_equal(np.frombuffer(raw[8 + n + begin:8 + n + end], "<f4"),
                                  tensors["conv/bias"])
    back, meta = _safetensors.read(path)
    assert list(back) == list(tensors)
    for key in tensors:
        np.testing.assert_array_equal(back[key], tensors[key])
        assert back[key].dtype == tensors[key].dtype
        assert back[key].flags.writeable
    assert meta["format"] == "cnnc"
    assert [p for p in os.listdir(tmp_path)] == ["w.safetensors"]  # no temp file left


def test_big_endian_input_written_little_endian(tmp_path):
    path = tmp_path / "be.safetensors"
    x = np.arange(5, dtype=">f4")
    _safetensors.write(path, {"x": x})
    back, _ = _safetensors.read(path)
    np.testing.assert_array_equal(back["x"], np.arange(5, dtype=np.float32))


def test_readable_by_the_safetensors_package(tmp_path, rng):
    st = pytest.importorskip("safetensors.numpy")
    path = tmp_path / "w.safetensors"
    tensors = _tensors(rng)
    _safetensors.write(path, tensors, {"format": "cnnc"})
    loaded = st.load_file(str(path))
    for key in tensors:
        np.testing.assert_array_equal(loaded[key], tensors[key])
    other = tmp_path / "other.safetensors"
    st.save_file({"a": np.ones((2, 3), np.float32)}, str(other), metadata={"k": "v"})
    back, meta = _safetensors.read(other)
    np.testing.assert_array_equal(back["a"], np.ones((2, 3)))
    assert meta == {"k": "v"}


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    _safetensors.write(path, {"a": np.ones(3, np.float32)})
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        _safetensors.write(path, {"a": np.zeros(1000, np.float32)})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["w.safetensors"]


@pytest.mark.parametrize("cut", [0, 5, 8, 20, -1, -4])
def test_truncated_files(tmp_path, rng, cut):
    path = tmp_path / "w.safetensors"
    _safetensors.write(path, _tensors(rng))
    raw = path.read_bytes()
    path.write_bytes(raw[:cut] if cut >= 0 else raw[:len(raw) + cut])
    with pytest.raises(ValueError, match="not a valid cnnc/safetensors file"):
        _safetensors.read(path)


def _with_header(path, header, data=b""):
    blob = json.dumps(header).encode()
    path.write_bytes(len(blob).to_bytes(8, "little") + blob + data)


@pytest.mark.parametrize("header, why", [
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, "span"),
    ({"a": {"dtype": "Q8", "shape": [2], "data_offsets": [0, 2]}}, "dtype"),
    ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, "shape"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, "data_offsets"),
    ({"a": {"dtype": "F32", "shape": [1]}}, "exactly"),
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
      "b": {"dtype": "F32", "shape": [1], "data_offsets": [2, 6]}}, "overlaps"),
    ({"__metadata__": {"k": 1}}, "metadata"),
    ([1, 2], "JSON object"),
])
def test_corrupt_headers(tmp_path, header, why):
    path = tmp_path / "bad.safetensors"
    _with_header(path, header, bytes(8))
    with pytest.raises(ValueError, match=why):
        _safetensors.read(path)


def test_garbage_and_huge_header(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes((12).to_bytes(8, "little") + b"not json at all")
    with pytest.raises(ValueError, match="JSON"):
        _safetensors.read(path)
    path.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    with pytest.raises(ValueError, match="implausibly large"):
        _safetensors.read(path)


def test_write_rejects_bad_input(tmp_path):
    with pytest.raises(TypeError, match="dtype"):
        _safetensors.write(tmp_path / "x", {"a": np.array(["s"])})
    with pytest.raises(TypeError, match="strings"):
        _safetensors.write(tmp_path / "x", {"a": np.ones(1)}, {"k": 1})
    with pytest.raises(ValueError, match="name"):
        _safetensors.write(tmp_path / "x", {"__metadata__": np.ones(1)})
