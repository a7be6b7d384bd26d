"""The Python work of one training step of the MNIST CNN in ``fit``: CPU
time per step at batch 1 (where the kernels are a small part) and at a
normal batch, Python function calls per step (a count that does not depend
on the machine's load), and the functions called most often per step.

    python benchmarks/bench_step_overhead.py [--steps 400] [--batch-size 32] [--top 15]

Compare two installs (e.g. before and after a change to the training loop)
by running it with each on the PYTHONPATH; the call counts compare exactly
even on a busy machine, the times only on a quiet one.
"""
import argparse
import cProfile
import pstats
import time

import numpy as np

import cnnc
from cnnc.applications import MnistCNN


def _model_and_data(batch, steps, rng):
    x = rng.random((batch * steps, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch * steps)]
    model = MnistCNN()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:batch * 20], y[:batch * 20], batch_size=batch, epochs=1, verbose=0)
    return model, x, y


def cpu_per_step(batch, steps, repeats, rng):
    """Best CPU seconds per step over ``repeats`` epochs of ``steps`` steps."""
    model, x, y = _model_and_data(batch, steps, rng)
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        best = min(best, (time.process_time() - start) / steps)
    return best


def calls_per_step(steps, rng):
    """Python function calls per step at batch 1, and per function."""
    model, x, y = _model_and_data(1, steps, rng)
    profile = cProfile.Profile()
    profile.enable()
    model.fit(x, y, batch_size=1, epochs=1, verbose=0)
    profile.disable()
    per_function = {}
    for (path, line, name), (_, calls, _, _, _) in pstats.Stats(profile).stats.items():
        where = path.rsplit("cnnc/", 1)[-1] if "cnnc/" in path else path
        key = f"{where}:{name}"
        per_function[key] = per_function.get(key, 0) + calls / steps
    return sum(per_function.values()), per_function


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    cnnc.set_num_threads(1)
    rng = np.random.default_rng(0)
    small = cpu_per_step(1, args.steps, args.repeats, rng)
    large = cpu_per_step(args.batch_size, max(args.steps // 4, 10), args.repeats, rng)
    total, per_function = calls_per_step(args.steps, rng)
    print(f"MNIST CNN, fit, Adam, 1 thread, cnnc from {cnnc.__file__}")
    print(f"{'batch':>5} | {'CPU us/step':>11}")
    print(f"{1:>5} | {small * 1e6:>11.1f}")
    print(f"{args.batch_size:>5} | {large * 1e6:>11.1f}")
    print(f"Python function calls per step (batch 1): {total:.1f}")
    for key, calls in sorted(per_function.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"{calls:>8.1f}  {key}")


if __name__ == "__main__":
    main()
