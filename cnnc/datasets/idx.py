"""The IDX file format of MNIST, Fashion-MNIST, EMNIST and KMNIST.

An IDX file is a 4-byte magic number ``00 00 TT NN`` (``TT`` the element
type, ``NN`` the number of dimensions), ``NN`` big-endian uint32 sizes, then
the elements in C order, big-endian. Files may be gzip-compressed (detected
from the content, not the name).
"""
import gzip
import os
import zlib

import numpy as np

# Element type byte -> big-endian NumPy dtype.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in IDX_DTYPES.items()}

# Files larger than this are refused rather than read into memory: a corrupt
# header cannot make us allocate absurd amounts.
MAX_BYTES = 1 << 34


def _read_bytes(path):
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head == b"\x1f\x8b":
            try:
                with gzip.GzipFile(fileobj=f) as g:
                    return g.read()
            except (OSError, EOFError, zlib.error) as exc:
                raise ValueError(f"{path}: corrupt or truncated gzip data ({exc})") from None
        return f.read()


def parse_idx(data, name="<bytes>"):
    """Decode IDX bytes into a native-endian ndarray (a copy-free view when
    the elements are single bytes). ``name`` is used in error messages."""
    if len(data) < 4:
        raise ValueError(f"{name}: not an IDX file: {len(data)} bytes, too short for the magic number")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{name}: not an IDX file: bad magic number 0x{bytes(data[:4]).hex()} "
                         f"(expected 0x0000TTNN)")
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        raise ValueError(f"{name}: not an IDX file: unknown element type 0x{code:02x} in the magic "
                         f"number (expected one of {', '.join(f'0x{c:02x}' for c in IDX_DTYPES)})")
    if ndim == 0:
        raise ValueError(f"{name}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated IDX header: {len(data)} bytes, the {ndim} sizes need {header}")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = header + int(np.prod(shape, dtype=object)) * dtype.itemsize
    if expected > MAX_BYTES:
        raise ValueError(f"{name}: IDX header declares shape {shape}, which is implausibly large")
    if len(data) < expected:
        raise ValueError(f"{name}: truncated IDX file: shape {shape} needs {expected} bytes, "
                         f"found {len(data)}")
    if len(data) > expected:
        raise ValueError(f"{name}: IDX file has {len(data) - expected} bytes beyond the "
                         f"{expected} that shape {shape} accounts for")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=dtype.itemsize > 1)


def read_idx(path):
    """Read an IDX file (plain or gzip) into a NumPy array.

    Raises FileNotFoundError if the file is missing and ValueError naming the
    file if it is not a well-formed IDX file (wrong magic number, unknown
    element type, truncated, trailing bytes, corrupt gzip stream).
    """
    path = os.fspath(path)
    return parse_idx(_read_bytes(path), path)


def write_idx(path, array, compress=None):
    """Write ``array`` as an IDX file; gzip-compressed if ``compress`` is true
    or (when None) if ``path`` ends in ``.gz``. The write is atomic."""
    path = os.fspath(path)
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"IDX cannot store dtype {array.dtype}")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"IDX stores 1 to 255 dimensions, got {array.ndim}")
    payload = (bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
               + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes())
    if compress is None:
        compress = path.endswith(".gz")
    if compress:
        payload = gzip.compress(payload, compresslevel=9, mtime=0)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(payload)
    os.replace(tmp, path)
