"""Reading and writing the safetensors container that holds every cnnc file.

Layout (see docs/format.md): an unsigned 64-bit little-endian header length
``N``, ``N`` bytes of UTF-8 JSON (padded with spaces so that the tensor data
starts at a multiple of 8 bytes), then the raw little-endian tensor bytes,
packed in header order without gaps. Each header entry maps a tensor name to
``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets relative to the
start of the data); the optional ``"__metadata__"`` entry maps strings to
strings.

Writes are atomic: the file is written to a temporary name in the same
directory, flushed to disk, then renamed over the destination, so a crash
leaves either the old file or the new one, never a mixture.
"""
import json
import os
import tempfile

import numpy as np

# safetensors dtype names <-> little-endian NumPy dtypes.
_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAMES = {dtype: name for name, dtype in _DTYPES.items()}

_MAX_HEADER_BYTES = 100 * 1024 * 1024  # as the reference implementation
_ALIGN = 8


def _dtype_name(array):
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    for known, name in _NAMES.items():
        if dtype == known:
            return name, known
    raise TypeError(f"cannot store arrays of dtype {array.dtype} in a safetensors file")


def encode(tensors, metadata=None):
    """The file's bytes for ``tensors`` (name -> ndarray, in this order) and
    ``metadata`` (str -> str), as a list of byte chunks (header, then each
    tensor's data)."""
    header = {}
    arrays = []
    offset = 0
    for name, array in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"invalid tensor name {name!r}")
        array = np.asarray(array)
        dtype_name, dtype = _dtype_name(array)
        array = np.asarray(array, dtype=dtype, order="C")
        header[name] = {"dtype": dtype_name, "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
        arrays.append(array)
    if metadata:
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError("safetensors metadata keys and values must be strings")
        header["__metadata__"] = dict(metadata)
    blob = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    blob += b" " * (-(8 + len(blob)) % _ALIGN)
    chunks = [len(blob).to_bytes(8, "little") + blob]
    chunks += [memoryview(a.reshape(-1)).cast("B") for a in arrays if a.nbytes]
    return chunks


def write(path, tensors, metadata=None):
    """Atomically write ``tensors`` (name -> ndarray, in this order) and
    ``metadata`` (str -> str) to ``path``."""
    path = os.fspath(path)
    chunks = encode(tensors, metadata)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory):
    # Makes the rename itself durable; not every platform allows it.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _corrupt(path, why):
    return ValueError(f"{path}: not a valid cnnc/safetensors file ({why})")


def read(path):
    """Read a file written by :func:`write` (or any safetensors file).

    Returns ``(tensors, metadata)``: an ordered dict name -> ndarray (native
    byte order, writable copies) and the metadata dict (empty if absent).
    Raises ValueError naming the problem for truncated or corrupt files.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise _corrupt(path, f"file is {len(data)} bytes, shorter than the 8-byte header length")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > _MAX_HEADER_BYTES:
        raise _corrupt(path, f"header length {header_len} is implausibly large")
    if 8 + header_len > len(data):
        raise _corrupt(path, f"truncated: the header needs {header_len} bytes, "
                             f"the file has {len(data) - 8}")
    try:
        header = json.loads(data[8:8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _corrupt(path, f"header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise _corrupt(path, "header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise _corrupt(path, "__metadata__ must map strings to strings")
    body = memoryview(data)[8 + header_len:]
    tensors = {}
    spans = []
    for name, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise _corrupt(path, f"entry {name!r} must have exactly dtype, shape and data_offsets")
        dtype = _DTYPES.get(entry["dtype"])
        if dtype is None:
            raise _corrupt(path, f"tensor {name!r} has unknown dtype {entry['dtype']!r}")
        shape = entry["shape"]
        offsets = entry["data_offsets"]
        if (not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape)):
            raise _corrupt(path, f"tensor {name!r} has an invalid shape {shape!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) for o in offsets) or not 0 <= offsets[0] <= offsets[1]):
            raise _corrupt(path, f"tensor {name!r} has invalid data_offsets {offsets!r}")
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize if shape else dtype.itemsize
        if offsets[1] - offsets[0] != nbytes:
            raise _corrupt(path, f"tensor {name!r}: data_offsets span {offsets[1] - offsets[0]} "
                                 f"bytes but dtype and shape need {nbytes}")
        if offsets[1] > len(body):
            raise _corrupt(path, f"truncated: tensor {name!r} ends at byte {offsets[1]} of the data, "
                                 f"which has only {len(body)} bytes")
        spans.append((offsets[0], offsets[1], name))
        array = np.frombuffer(body[offsets[0]:offsets[1]], dtype=dtype).reshape(shape)
        tensors[name] = array.astype(dtype.newbyteorder("="), copy=True)
    spans.sort()
    end = 0
    for begin, stop, name in spans:
        if begin < end:
            raise _corrupt(path, f"tensor {name!r} overlaps another tensor")
        end = stop
    return tensors, metadata
