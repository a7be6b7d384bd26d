"""Deterministic corruptions of a saved model file, shared by the fuzz test
(tests/test_model_files.py) and the large campaign
(benchmarks/fuzz_model_files.py).

``corrupted(raw, rng, scale)`` alters bytes as storage or transfer would, and
as a hand-edited header would (checksums not refreshed): every variant must be
refused. ``hostile(tensors, metadata, rng, count)`` rewrites the JSON
documents with hostile values and refreshed checksums, as a malicious writer
would: each must be refused or load as the (valid) model it describes, with
no other exception.
"""
import json


def split(raw):
    """(header dict, data bytes) of a file's bytes."""
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def assemble(header_text, data, length=None):
    """File bytes from a header (str or bytes) and data; ``length`` overrides
    the header length field."""
    blob = header_text.encode() if isinstance(header_text, str) else header_text
    return (len(blob) if length is None else length).to_bytes(8, "little") + blob + data


def corrupted(raw, rng, scale=1):
    """Yield ``(kind, bytes)`` variants of ``raw`` (all different from it)."""
    header, data = split(raw)
    n = len(raw) - len(data) - 8
    size = len(raw)
    edges = {0, 7, 8, 9, 8 + n - 1, 8 + n, 8 + n + 1, size - 1}
    for cut in sorted(edges | set(rng.integers(0, size, 60 * scale).tolist())):
        yield "truncation", raw[:cut]
    for pos in rng.integers(0, 8 + n, 150 * scale).tolist():
        b = bytearray(raw)
        b[pos] = (b[pos] + int(rng.integers(1, 256))) % 256
        yield "header byte", bytes(b)
    for pos in rng.integers(8 + n, size, 150 * scale).tolist():
        b = bytearray(raw)
        b[pos] ^= 1 << int(rng.integers(0, 8))
        yield "data bit", bytes(b)
    for _ in range(40 * scale):
        b = bytearray(raw)
        for pos in rng.integers(0, size, int(rng.integers(2, 9))).tolist():
            b[pos] = int(rng.integers(0, 256))
        if bytes(b) != raw:
            yield "several bytes", bytes(b)
    for delta in (-9, -8, -2, -1, 1, 2, 8, 2**32, 2**63):
        yield "length field", ((n + delta) % 2**64).to_bytes(8, "little") + raw[8:]
    names = [k for k in header if k != "__metadata__"]
    for name in names:
        end = header[name]["data_offsets"][1]
        for field, values in (("data_offsets", ([0, 4], [-4, 0], [4, 0], [0], [0, 2**64],
                                                [end, end + 4], [0.0, 4.0], "0")),
                              ("shape", ([], [0], [2**31, 2**31], [-1], [1] * 100, [True],
                                         [2**64], None)),
                              ("dtype", ("F16", "F64", "I32", "U32", "BF16", "", None, 32))):
            for value in values:
                edited = json.loads(json.dumps(header))
                edited[name][field] = value
                yield f"entry {field}", assemble(json.dumps(edited), data)
    text = json.dumps(header)
    for i in range(1, len(names)):
        yield "duplicate name", assemble(text.replace(f'"{names[i]}"', f'"{names[0]}"', 1), data)
    yield "duplicate metadata key", assemble(
        text.replace('"__metadata__": {', '"__metadata__": {"format": "cnnc", ', 1), data)
    for depth in (100, 5_000, 500_000):
        nested = "[" * depth + "]" * depth
        yield "nesting", assemble(text[:-1] + f', "x": {nested}}}', data)
        yield "nesting", assemble(f'{{"x": {nested}}}', b"")
    for junk in (b"\0", b" ", b"\0" * 1024, raw):
        yield "trailing data", raw + junk
    for claim in (len(raw), 2**27, 2**31, 2**40, 2**63):
        yield "huge claim", claim.to_bytes(8, "little") + raw[8:]
    big = json.loads(text)
    big[names[0]]["shape"] = [2**20, 2**20]
    big[names[0]]["data_offsets"] = [0, 2**42]
    yield "huge claim", assemble(json.dumps(big), data)


def _hostile_value(rng):
    choices = [10**12, 2**63, -(2**63), -1, 0, 1e308, float("nan"), "x" * 1000, "", None, True,
               [], {}, [10**9] * 8, {"class_name": "Dense"}, "[" * 10]
    return choices[int(rng.integers(0, len(choices)))]


def _mutate(document, rng):
    """Replace one random leaf or entry of a JSON document in place; returns
    the new document (which may be the replacement itself)."""
    path = []
    node = document
    while isinstance(node, (dict, list)) and node and rng.random() < 0.85:
        key = (list(node)[int(rng.integers(0, len(node)))] if isinstance(node, dict)
               else int(rng.integers(0, len(node))))
        path.append((node, key))
        node = node[key]
    if not path:
        return _hostile_value(rng)
    parent, key = path[-1]
    if isinstance(parent, dict) and rng.random() < 0.1:
        del parent[key]
    else:
        parent[key] = _hostile_value(rng)
    return document


def hostile(tensors, metadata, rng, count):
    """Yield ``(kind, tensors, metadata)``: the JSON documents of the
    metadata with hostile values, to be written with fresh checksums."""
    keys = [k for k in ("model_config", "training_config", "optimizer_state", "random_state")
            if k in metadata]
    for _ in range(count):
        key = keys[int(rng.integers(0, len(keys)))]
        document = _mutate(json.loads(metadata[key]), rng)
        meta = dict(metadata)
        meta[key] = json.dumps(document)
        yield f"hostile {key}", tensors, meta

