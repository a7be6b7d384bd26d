"""Corrupted and hostile model files: a large campaign against load_model.

    python benchmarks/fuzz_model_files.py [--scale 8] [--hostile 1500] [--seed 0]

Saves a small trained CNN (Conv2D, BatchNormalization, Dropout, RandomFlip,
Dense; Adam state), then loads thousands of variants of its file:

* corrupted: truncations, altered header bytes, flipped data bits, several
  random bytes, length fields, tensor entries (offsets, shapes, dtypes),
  duplicate names and keys, deep nesting, trailing data, huge claims; the
  checksums are left as they were, so every variant must be refused;
* hostile: the JSON documents (architecture, training configuration,
  optimizer and random state) with hostile values and fresh checksums; each
  must be refused or load as the valid model it describes.

Prints the cases, the outcomes by exception class (target: CorruptFileError
only), the silent loads of corrupted files (target 0), and the peak memory
of the worst case (traced by tracemalloc, which sees NumPy's buffers) against
2x the file size plus the model's real size. Then the cost of the checksums:
reading a larger file with and without verifying them, next to the
``safetensors`` package reading the same file.
"""
import argparse
import collections
import json
import os
import sys
import tempfile
import time
import tracemalloc
import zlib

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from cnnc import _safetensors, layers, optimizers  # noqa: E402
from cnnc.models import Model, load_model  # noqa: E402
from cnnc.utils import set_random_seed  # noqa: E402
from file_corruptions import assemble, corrupted, hostile, split  # noqa: E402


def saved_model(directory):
    set_random_seed(0)
    inp = layers.Input((16, 16, 3), name="image")
    h = layers.RandomFlip("horizontal", name="flip")(inp)
    h = layers.Conv2D(32, 3, name="conv1")(h)
    h = layers.BatchNormalization(name="bn")(h)
    h = layers.ReLU(name="relu")(h)
    h = layers.Conv2D(64, 3, strides=2, activation="relu", name="conv2")(h)
    h = layers.Dropout(0.3, name="drop")(h)
    h = layers.GlobalAveragePooling2D(name="pool")(h)
    model = Model(inp, layers.Dense(10, activation="softmax", name="dense")(h), name="fuzzed")
    model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 16, 16, 3)).astype(np.float32)
    model.fit(x, rng.integers(0, 10, 32), epochs=1, batch_size=16, verbose=0)
    path = os.path.join(directory, "model.cnnc")
    model.save(path)
    # What the loaded model occupies: its weights and their gradients.
    real = sum(w.value.nbytes + w.grad.nbytes for w in model.weights)
    return path, real


def attempt(path):
    """(outcome, peak traced bytes) of one load."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        load_model(path)
        outcome = "loaded"
    except Exception as exc:  # noqa: BLE001 - the campaign counts every class
        outcome = type(exc).__name__
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return outcome, peak


def campaign(path, real, scale, n_hostile, seed):
    raw = open(path, "rb").read()
    with open(os.path.join(os.path.dirname(path), "variant.cnnc"), "wb") as f:
        f.write(raw)
    outcome, legit_peak = attempt(os.path.join(os.path.dirname(path), "variant.cnnc"))
    assert outcome == "loaded", outcome
    rng = np.random.default_rng(seed)
    target = os.path.join(os.path.dirname(path), "variant.cnnc")
    by_kind = collections.defaultdict(collections.Counter)
    silent = []
    worst = (0.0, None, 0, 0)  # (ratio to the bound, kind, peak, size)
    start = time.perf_counter()

    def record(kind, family):
        nonlocal worst
        size = os.path.getsize(target)
        outcome, peak = attempt(target)
        by_kind[family][outcome] += 1
        if family == "corrupted" and outcome == "loaded":
            silent.append(kind)
        bound = 2 * size + real
        if peak / bound > worst[0]:
            worst = (peak / bound, kind, peak, size)

    for kind, variant in corrupted(raw, rng, scale):
        with open(target, "wb") as f:
            f.write(variant)
        record(kind, "corrupted")
    tensors, metadata = _safetensors.read(path)
    for kind, t, meta in hostile(tensors, metadata, rng, n_hostile):
        _safetensors.write(target, t, meta)
        record(kind, "hostile")
    elapsed = time.perf_counter() - start

    print(f"model file: {len(raw)} bytes; loaded model (weights and gradients): {real} bytes; "
          f"peak of loading the intact file: {legit_peak} bytes "
          f"({legit_peak / (2 * len(raw) + real):.2f} x (2 x file + model))")
    for family, counts in by_kind.items():
        total = sum(counts.values())
        print(f"\n{family}: {total} cases")
        for outcome, count in counts.most_common():
            print(f"  {outcome:<20} {count:6d}")
    print(f"\nsilent loads of corrupted files: {len(silent)}"
          + (f" ({collections.Counter(silent).most_common(5)})" if silent else ""))
    ratio, kind, peak, size = worst
    print(f"worst peak memory of a variant: {peak} bytes ({kind}, file {size} bytes) = "
          f"{ratio:.2f} x (2 x file + model = {2 * size + real} bytes); target < 1")
    print(f"campaign time: {elapsed:.1f} s")
    others = {o for counts in by_kind.values() for o in counts} - {"CorruptFileError", "loaded"}
    return not silent and not others and ratio < 1


def checksum_cost(directory, megabytes):
    """Reading a file of float32 tensors with and without the checksums."""
    rng = np.random.default_rng(1)
    tensors = {f"layer{i}/kernel": rng.standard_normal((megabytes * 1024 * 1024 // 4 // 16,))
               .astype(np.float32) for i in range(16)}
    path = os.path.join(directory, "big.safetensors")
    _safetensors.write(path, tensors, {"format": "none"})
    # The same file without the checksum entries: what reading costs without them.
    header, data = split(open(path, "rb").read())
    del header["__metadata__"]["checksums"], header["__metadata__"]["metadata_checksum"]
    plain = os.path.join(directory, "plain.safetensors")
    text = json.dumps(header)
    with open(plain, "wb") as f:
        f.write(assemble(text + " " * (-(8 + len(text)) % 8), data))
    del data

    def best(fn, repeats=5):
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return min(times)

    with_crc = best(lambda: _safetensors.read(path))
    without = best(lambda: _safetensors.read(plain))
    chunk = np.ones(megabytes * 1024 * 1024 // 16, np.uint8)
    crc = best(lambda: [zlib.crc32(chunk) for _ in range(16)])
    rows = [("cnnc read, checksums verified", with_crc),
            ("cnnc read, same file without checksums", without),
            ("CRC-32 alone over the same bytes", crc)]
    try:
        from safetensors.numpy import load_file
        rows.append(("safetensors.numpy.load_file", best(lambda: load_file(path))))
    except ImportError:
        pass
    print(f"\nchecksum cost, {megabytes} MB file in the page cache (best of 5):")
    for name, seconds in rows:
        print(f"  {name:<40} {seconds * 1e3:8.1f} ms  {megabytes / 1024 / seconds:6.2f} GB/s")
    print(f"  verifying adds {with_crc / without - 1:+.0%} to the read")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=8, help="random cases per kind, x base")
    parser.add_argument("--hostile", type=int, default=1500, help="hostile-document cases")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--megabytes", type=int, default=256, help="checksum-cost file size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path, real = saved_model(directory)
        ok = campaign(path, real, args.scale, args.hostile, args.seed)
        checksum_cost(directory, args.megabytes)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
