"""Training throughput of the classic Keras MNIST CNN (batch 32, Adam):
cnnc against the same model in PyTorch on the CPU (channels_last, same
thread count), in one run.

    python benchmarks/bench_train.py [--steps 150] [--repeats 3] [--threads 1 2]
    python benchmarks/bench_train.py --deterministic-cost --repeats 10

Both train on the same synthetic 28x28x1 images for ``steps`` batches after
a warm-up; cnnc through ``model.fit`` (data batching, loss, metrics and the
optimizer included), PyTorch through the usual zero_grad/forward/backward/step
loop. The best of ``repeats`` runs is reported, in images per second.
``--deterministic-cost`` instead times cnnc with and without
``cnnc.set_deterministic(True)`` (the same bits at any thread count), the
two alternating run by run so that a change of machine load hits both.
PyTorch runs twice: as it comes, then with glibc's malloc tuned to keep
freed memory (its best case; see ``tune_glibc_malloc``).
"""
import argparse
import time

import numpy as np

import cnnc
from cnnc.applications import MnistCNN


def cnnc_images_per_second(x, y, batch_size, repeats):
    model = MnistCNN()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:batch_size * 10], y[:batch_size * 10], batch_size=batch_size, epochs=1,
              verbose=0)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=True)
        best = max(best, len(x) / (time.perf_counter() - start))
    return best


def torch_images_per_second(x, y, batch_size, repeats, threads):
    import torch
    from torch import nn
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10),
    ).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    yt = torch.from_numpy(y.argmax(axis=1))

    def epoch(count):
        perm = torch.randperm(count)
        for start in range(0, count, batch_size):
            idx = perm[start:start + batch_size]
            xb = xt[idx].contiguous(memory_format=torch.channels_last)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yt[idx])
            loss.backward()
            optimizer.step()

    epoch(batch_size * 10)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        epoch(len(x))
        best = max(best, len(x) / (time.perf_counter() - start))
    return best


def deterministic_cost(x, y, batch_size, repeats, threads_list):
    """cnnc img/s with deterministic mode off and on, alternating runs."""
    print(f"MNIST CNN, batch {batch_size}, Adam, {len(x)} images per run, best of {repeats} alternating runs; "
          f"cnnc isa {cnnc.isa()}")
    print(f"{'threads':>7} | {'default':>10} | {'deterministic':>13} | {'cost':>6}")
    for threads in threads_list:
        cnnc.set_num_threads(threads)
        models, best = {}, {False: 0.0, True: 0.0}
        for mode in (False, True):
            cnnc.set_deterministic(mode)
            models[mode] = MnistCNN()
            models[mode].compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
            models[mode].fit(x[:batch_size * 10], y[:batch_size * 10], batch_size=batch_size, epochs=1, verbose=0)
        for run in range(repeats):
            for mode in ((False, True) if run % 2 == 0 else (True, False)):
                cnnc.set_deterministic(mode)
                start = time.perf_counter()
                models[mode].fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=True)
                best[mode] = max(best[mode], len(x) / (time.perf_counter() - start))
        cost = 1 - best[True] / best[False]
        print(f"{threads:>7} | {best[False]:>10.0f} | {best[True]:>13.0f} | {cost:>6.1%}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="batches per timed run")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-tuned-malloc", dest="tuned_malloc", action="store_false",
                        help="skip the PyTorch run with glibc tuned to keep freed memory")
    parser.add_argument("--deterministic-cost", action="store_true",
                        help="cnnc alone, with and without cnnc.set_deterministic(True)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n = args.steps * args.batch_size
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    if args.deterministic_cost:
        deterministic_cost(x, y, args.batch_size, args.repeats, args.threads)
        return
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False

    rows = []
    for threads in args.threads:
        cnnc.set_num_threads(threads)
        ours = cnnc_images_per_second(x, y, args.batch_size, args.repeats)
        theirs = (torch_images_per_second(x, y, args.batch_size, args.repeats, threads)
                  if have_torch else None)
        rows.append([threads, ours, theirs, None])
    # PyTorch allocates every step's tensors afresh through malloc; glibc
    # returns blocks above its mmap threshold to the kernel, so each step
    # faults its pages in again. Its speed then depends on what ran before
    # in the process. Tuning glibc to keep freed memory gives PyTorch its
    # best case, shown as a second column (cnnc keeps its own buffers).
    if have_torch and args.tuned_malloc and tune_glibc_malloc():
        for row in rows:
            row[3] = torch_images_per_second(x, y, args.batch_size, args.repeats, row[0])

    print(f"MNIST CNN (225,034 params), batch {args.batch_size}, Adam, {n} images per run, "
          f"best of {args.repeats}; cnnc isa {cnnc.isa()}")
    print(f"{'threads':>7} | {'cnnc img/s':>10} | {'torch img/s':>11} | {'cnnc/torch':>10} | "
          f"{'torch, tuned malloc':>19} | {'cnnc/torch':>10}")
    print("-" * 86)
    for threads, ours, theirs, tuned in rows:
        cells = [f"{threads:>7}", f"{ours:>10.0f}"]
        cells += ([f"{theirs:>11.0f}", f"{ours / theirs:>9.2f}x"] if theirs else
                  [f"{'n/a':>11}", f"{'n/a':>10}"])
        cells += ([f"{tuned:>19.0f}", f"{ours / tuned:>9.2f}x"] if tuned else
                  [f"{'n/a':>19}", f"{'n/a':>10}"])
        print(" | ".join(cells))


def tune_glibc_malloc():
    """Keep freed memory in the process (no mmap for big blocks, no trimming);
    False where the C library is not glibc."""
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    return bool(mallopt(m_mmap_threshold, 32 << 20) and mallopt(m_trim_threshold, (1 << 31) - 1)
                and mallopt(m_top_pad, 256 << 20))

if __name__ == "__main__":
    main()
