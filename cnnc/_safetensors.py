"""Reading and writing the safetensors container that holds every cnnc file.

Layout (see docs/format.md): an unsigned 64-bit little-endian header length
``N``, ``N`` bytes of UTF-8 JSON (padded with spaces so that the tensor data
starts at a multiple of 8 bytes), then the raw little-endian tensor bytes,
packed without gaps. Each header entry maps a tensor name to
``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets relative to the
start of the data); the optional ``"__metadata__"`` entry maps strings to
strings. cnnc adds two metadata entries: ``"checksums"``, a JSON object
mapping every tensor name to the CRC-32 of its bytes, and
``"metadata_checksum"``, the CRC-32 of the other metadata entries (see
:func:`metadata_crc`); both as 8 lowercase hex digits.

Reading is strict: the data starts at byte ``8 + N``, the tensors tile the
data exactly and the file ends where the last tensor ends; every size is
checked against the file's size before anything is read or allocated, so a
small file can never make the reader allocate much more than its own size.
Any defect raises :class:`CorruptFileError`.

Writes are atomic: the file is written to a temporary name in the same
directory, flushed to disk, then renamed over the destination, so a crash
leaves either the old file or the new one, never a mixture. Temporaries left
by writers that were killed are removed by the next write to the same path.
"""
import json
import os
import re
import secrets
import zlib

import numpy as np

__all__ = ["CorruptFileError", "read", "write", "encode", "CHECKSUMS_KEY", "METADATA_CHECKSUM_KEY",
           "MAX_HEADER_BYTES"]

# safetensors dtype names <-> little-endian NumPy dtypes.
_DTYPES = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_NAMES = {dtype: name for name, dtype in _DTYPES.items()}

MAX_HEADER_BYTES = 100 * 1024 * 1024  # as the reference implementation
MAX_RANK = 64  # no tensor format goes beyond; bounds the work per shape
CHECKSUMS_KEY = "checksums"
METADATA_CHECKSUM_KEY = "metadata_checksum"
_ALIGN = 8
_CRC_PATTERN = re.compile(r"[0-9a-f]{8}\Z")
# Tensors are read in chunks; above _OVERLAP_BYTES of data, the CRC of each
# chunk runs on a helper thread while the next chunk is read (zlib releases
# the GIL), so verifying costs about max(read, CRC) instead of their sum.
_READ_CHUNK = 8 * 1024 * 1024
_OVERLAP_BYTES = 32 * 1024 * 1024


class CorruptFileError(ValueError):
    """A file that is not a valid cnnc/safetensors file: truncated, altered,
    inconsistent or hostile. Raised for every defect a reader detects, so one
    ``except CorruptFileError`` covers them all (it is a ValueError)."""


def _corrupt(path, why):
    return CorruptFileError(f"{path}: not a valid cnnc/safetensors file ({why})")


def _dtype_name(array):
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype
    for known, name in _NAMES.items():
        if dtype == known:
            return name, known
    raise TypeError(f"cannot store arrays of dtype {array.dtype} in a safetensors file")


def crc32_hex(data):
    """The checksum as stored in the ``checksums`` metadata: zlib's CRC-32
    (the IEEE 802.3 polynomial) as 8 lowercase hex digits."""
    return f"{zlib.crc32(data) & 0xFFFFFFFF:08x}"


def metadata_crc(metadata):
    """The ``metadata_checksum`` of a metadata dict: the CRC-32 of, for each
    entry but ``metadata_checksum`` in increasing order of key (code points,
    which is the order of their UTF-8 bytes), the UTF-8 key, a NUL byte, the
    UTF-8 value and a NUL byte."""
    crc = 0
    for key in sorted(metadata):
        if key != METADATA_CHECKSUM_KEY:
            crc = zlib.crc32(key.encode("utf-8") + b"\0" + metadata[key].encode("utf-8") + b"\0",
                             crc)
    return f"{crc & 0xFFFFFFFF:08x}"


# -- writing ----------------------------------------------------------------------------
def _temporary_prefix(path):
    return "." + os.path.basename(path) + "."


def _host_tag():
    # Process ids mean something on one host only: a directory shared between
    # machines must not see one machine remove another's live temporaries.
    import socket
    return f"{zlib.crc32(socket.gethostname().encode('utf-8', 'replace')) & 0xFFFFFFFF:08x}"


def _process_alive(pid):
    if pid == os.getpid():
        return True  # maybe another thread of this process writing the same file
    if os.name != "posix":
        return True  # os.kill(pid, 0) is a probe on POSIX only (elsewhere it signals)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError, OSError):
        return True  # exists under another user, or unknowable: leave its file alone
    return True


def remove_stale_temporaries(path):
    """Delete the temporaries of ``path`` left by writers that died (killed
    or crashed before the rename): files named
    ``.<name>.<pid>.<host>.<random>.tmp`` in the same directory, written on
    this host, whose ``pid`` is no longer running. Files of a live process,
    of another host, and files of any other name are never touched."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    prefix = _temporary_prefix(path)
    host = _host_tag()
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    removed = []
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        parts = name[len(prefix):-len(".tmp")].split(".")
        if (len(parts) != 3 or not parts[0].isdigit() or parts[1] != host
                or not re.fullmatch(r"[0-9a-f]{16}", parts[2])):
            continue
        if _process_alive(int(parts[0])):
            continue
        try:
            os.unlink(os.path.join(directory, name))
            removed.append(name)
        except OSError:
            pass
    return removed


def _open_temporary(path, directory):
    while True:
        name = f"{_temporary_prefix(path)}{os.getpid()}.{_host_tag()}.{secrets.token_hex(8)}.tmp"
        tmp = os.path.join(directory, name)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
        except FileExistsError:
            continue
        return fd, tmp


def encode(tensors, metadata=None):
    """The file's bytes for ``tensors`` (name -> ndarray, in this order) and
    ``metadata`` (str -> str), with the ``checksums`` and ``metadata_checksum``
    entries computed (any given ones are replaced), as a list of chunks: the
    length and header, then each non-empty tensor's bytes."""
    header = {}
    arrays = []
    checksums = {}
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
        raw = memoryview(array.reshape(-1)).cast("B") if array.nbytes else b""
        checksums[name] = crc32_hex(raw)
        arrays.append(raw)
    metadata = dict(metadata or {})
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("safetensors metadata keys and values must be strings")
    metadata[CHECKSUMS_KEY] = json.dumps(checksums, separators=(",", ":"), ensure_ascii=False)
    metadata.pop(METADATA_CHECKSUM_KEY, None)
    metadata[METADATA_CHECKSUM_KEY] = metadata_crc(metadata)
    header["__metadata__"] = metadata
    blob = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    blob += b" " * (-(8 + len(blob)) % _ALIGN)
    return [len(blob).to_bytes(8, "little") + blob] + [raw for raw in arrays if len(raw)]


def write(path, tensors, metadata=None):
    """Atomically write ``tensors`` (name -> ndarray, in this order) and
    ``metadata`` (str -> str) to ``path`` (see :func:`encode`)."""
    path = os.fspath(path)
    chunks = encode(tensors, metadata)
    directory = os.path.dirname(os.path.abspath(path))
    remove_stale_temporaries(path)
    fd, tmp = _open_temporary(path, directory)
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


# -- reading ----------------------------------------------------------------------------
class _DuplicateKey(Exception):
    pass


def _unique_object(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def parse_json(text, path, what):
    """``json.loads`` for text from a file: duplicate keys, invalid JSON and
    nesting deep enough to exhaust the recursion limit are CorruptFileError."""
    try:
        return json.loads(text, object_pairs_hook=_unique_object)
    except _DuplicateKey as exc:
        raise _corrupt(path, f"{what} has the key {exc.args[0]!r} twice") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        # JSONDecodeError, UnicodeDecodeError and out-of-range numbers are ValueErrors.
        raise _corrupt(path, f"{what} is not valid JSON: {type(exc).__name__}: "
                             f"{str(exc)[:200]}") from None


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_entry(path, name, entry, data_len):
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise _corrupt(path, f"entry {name!r} must have exactly dtype, shape and data_offsets")
    dtype = _DTYPES.get(entry["dtype"]) if isinstance(entry["dtype"], str) else None
    if dtype is None:
        raise _corrupt(path, f"tensor {name!r} has unknown dtype {str(entry['dtype'])[:40]!r}")
    shape = entry["shape"]
    offsets = entry["data_offsets"]
    if (not isinstance(shape, list) or len(shape) > MAX_RANK
            or not all(_is_int(s) and s >= 0 for s in shape)):
        raise _corrupt(path, f"tensor {name!r} has an invalid shape {str(shape)[:80]}")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(_is_int(o) for o in offsets) or not 0 <= offsets[0] <= offsets[1]):
        raise _corrupt(path, f"tensor {name!r} has invalid data_offsets {str(offsets)[:80]}")
    count = 1
    for s in shape:  # Python ints: no overflow, however large the claim
        count *= s
    nbytes = count * dtype.itemsize
    if offsets[1] - offsets[0] != nbytes:
        raise _corrupt(path, f"tensor {name!r}: data_offsets span {offsets[1] - offsets[0]} "
                             f"bytes but dtype and shape need {nbytes}")
    if offsets[1] > data_len:
        raise _corrupt(path, f"truncated: tensor {name!r} ends at byte {offsets[1]} of the data, "
                             f"which has only {data_len} bytes")
    return dtype, tuple(shape), offsets[0], offsets[1]


def _check_tiling(path, spans, data_len):
    end = 0
    for begin, stop, name in sorted(spans):
        if begin < end:
            raise _corrupt(path, f"tensor {name!r} overlaps another tensor")
        if begin > end:
            raise _corrupt(path, f"{begin - end} bytes before tensor {name!r} belong to no tensor")
        end = stop
    if end != data_len:
        raise _corrupt(path, f"{data_len - end} bytes after the last tensor belong to no "
                             f"tensor (trailing data, or a wrong header length)")


def _check_checksums(path, metadata, names):
    checksums = parse_json(metadata[CHECKSUMS_KEY], path, "the checksums metadata")
    if not isinstance(checksums, dict):
        raise _corrupt(path, "the checksums metadata is not a JSON object")
    if set(checksums) != set(names):
        missing = sorted(set(names) - set(checksums))[:3]
        extra = sorted(set(checksums) - set(names))[:3]
        raise _corrupt(path, f"the checksums do not match the tensors (no checksum for "
                             f"{missing}, checksums of absent tensors {extra})")
    for name, value in checksums.items():
        if not isinstance(value, str) or not _CRC_PATTERN.match(value):
            raise _corrupt(path, f"checksum of {name!r} is not 8 lowercase hex digits")
    return checksums


def _read_exact(f, view, path, name):
    done = 0
    while done < len(view):
        got = f.readinto(view[done:])
        if not got:
            raise _corrupt(path, f"truncated while reading tensor {name!r}")
        done += got


def _read_tensors(f, path, entries, data_start, checksums):
    """Allocate and read every tensor (in file order), verifying checksums."""
    crcs = {}

    def crc_chunk(name, chunk):
        crcs[name] = zlib.crc32(chunk, crcs[name])

    total = sum(end - begin for _, _, begin, end in entries.values())
    pool = None
    if checksums is not None and total > _OVERLAP_BYTES:
        from concurrent.futures import ThreadPoolExecutor
        pool = ThreadPoolExecutor(1, thread_name_prefix="cnnc-crc")  # one worker: chunks in order
    jobs = []
    tensors = {}
    try:
        for name, (dtype, shape, begin, end) in sorted(entries.items(), key=lambda e: e[1][2]):
            array = np.empty(shape, dtype)
            view = memoryview(array.reshape(-1)).cast("B") if end > begin else memoryview(b"")
            crcs[name] = 0
            f.seek(data_start + begin)
            for lo in range(0, len(view), _READ_CHUNK):
                chunk = view[lo:lo + _READ_CHUNK]
                _read_exact(f, chunk, path, name)
                if pool is not None:
                    jobs.append(pool.submit(crc_chunk, name, chunk))
                elif checksums is not None:
                    crc_chunk(name, chunk)
            tensors[name] = array
        for job in jobs:
            job.result()
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    if checksums is not None:
        for name in tensors:
            if f"{crcs[name] & 0xFFFFFFFF:08x}" != checksums[name]:
                raise _corrupt(path, f"tensor {name!r} fails its checksum: its bytes were altered")
    for name, (dtype, _, _, _) in entries.items():
        if not dtype.isnative:
            tensors[name] = tensors[name].astype(dtype.newbyteorder("="))
    return tensors


def read(path):
    """Read a file written by :func:`write` (or any safetensors file).

    Returns ``(tensors, metadata)``: an ordered dict name -> ndarray (native
    byte order, writable) in header order, and the metadata dict (empty if
    absent). When the metadata has ``checksums``, every tensor's CRC-32 is
    verified. Raises :class:`CorruptFileError` naming the problem for
    truncated, altered or inconsistent files.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        prefix = f.read(8)
        if len(prefix) < 8:
            raise _corrupt(path, f"file is {len(prefix)} bytes, shorter than the 8-byte "
                                 f"header length")
        header_len = int.from_bytes(prefix, "little")
        if header_len > MAX_HEADER_BYTES:
            raise _corrupt(path, f"header length {header_len} is implausibly large "
                                 f"(limit {MAX_HEADER_BYTES})")
        if 8 + header_len > size:
            raise _corrupt(path, f"truncated: the header needs {header_len} bytes, "
                                 f"the file has {size - 8}")
        blob = f.read(header_len)
        if len(blob) != header_len:
            raise _corrupt(path, "truncated while reading the header")
        if not blob.startswith(b"{") or not blob.rstrip(b" ").endswith(b"}"):
            raise _corrupt(path, "header is not a JSON object padded with spaces")
        try:
            text = blob.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _corrupt(path, f"header is not valid UTF-8 ({exc})") from None
        del blob
        header = parse_json(text, path, "header")
        del text
        if not isinstance(header, dict):
            raise _corrupt(path, "header is not a JSON object")
        metadata = header.pop("__metadata__", None)
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise _corrupt(path, "__metadata__ must map strings to strings")
        if METADATA_CHECKSUM_KEY in metadata:
            stored = metadata[METADATA_CHECKSUM_KEY]
            if not _CRC_PATTERN.match(stored) or stored != metadata_crc(metadata):
                raise _corrupt(path, "the metadata fails its checksum: it was altered")
        data_len = size - 8 - header_len
        entries = {}
        for name, entry in header.items():
            entries[name] = _check_entry(path, name, entry, data_len)
        _check_tiling(path, [(b, e, n) for n, (_, _, b, e) in entries.items()], data_len)
        checksums = (_check_checksums(path, metadata, entries)
                     if CHECKSUMS_KEY in metadata else None)

        # Sizes are now proven by the file's own length: allocate and read.
        tensors = _read_tensors(f, path, entries, 8 + header_len, checksums)
        if f.read(1):
            raise _corrupt(path, "the file grew while being read")
    return {name: tensors[name] for name in entries}, metadata
