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

    python benchmarks/bench_train.py --fusion-cost [--threads 1] [--repeats 3]
        [--builds SITE_A SITE_B]

``--fusion-cost`` times training steps of the best Fashion-MNIST recipe's
network (CompactResNet width 64, blocks (2, 2), batch 128, SGD) and of
ResNet-18 (112x112, batch 8) with and without the fused batch-norm/sum +
ReLU passes (cnnc.models.fusion), in CPU time of the process per step (so
that other load on the machine does not count), alternating the two; then
the passes themselves at the recipe's shapes. With ``--builds``, instead, the
same steps under two installed builds of cnnc (directories put first on
PYTHONPATH, each in its own processes, alternating), the first the
reference.
PyTorch runs twice: as it comes, then with glibc's malloc tuned to keep
freed memory (its best case; see ``tune_glibc_malloc``).
"""
import argparse
import json
import os
import subprocess
import sys
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


# -- the fused passes -------------------------------------------------------------------------
FUSION_MODELS = {"compact_resnet": ("CompactResNet w64 blocks (2, 2)", (28, 28, 1), 10, 128),
                 "resnet18": ("ResNet-18 112x112", (112, 112, 3), 1000, 8)}


def _fusion_model(name):
    from cnnc import applications
    _, shape, classes, _ = FUSION_MODELS[name]
    if name == "compact_resnet":
        model = applications.CompactResNet(width=64, blocks=(2, 2))
    else:
        model = applications.ResNet18(input_shape=shape)
    model.compile(cnnc.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
                  "sparse_categorical_crossentropy")
    return model


def _fusion_switch():
    try:
        from cnnc.models import fusion
    except ImportError:  # a build from before fusion
        return None
    return fusion


def _step_cpu_ms(model, x, y, steps):
    start = time.process_time()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return (time.process_time() - start) / steps * 1e3


def _fusion_data(name):
    _, shape, classes, batch = FUSION_MODELS[name]
    rng = np.random.default_rng(0)
    return (rng.random((batch,) + shape, dtype=np.float32),
            (np.arange(batch) % classes).astype(np.int64))


def fusion_step_costs(names, steps, repeats):
    """{name: (unfused ms, fused ms)}: CPU time per training step, the two
    modes on two models alternating in this process."""
    fusion = _fusion_switch()
    results = {}
    for name in names:
        x, y = _fusion_data(name)
        models, best = {}, {False: float("inf"), True: float("inf")}
        for fused in (False, True):
            fusion.set_enabled(fused)
            cnnc.utils.set_random_seed(0)
            models[fused] = _fusion_model(name)
            _step_cpu_ms(models[fused], x, y, 2)  # warm: the step's memory plan
        for run in range(repeats):
            for fused in ((False, True) if run % 2 == 0 else (True, False)):
                fusion.set_enabled(fused)
                best[fused] = min(best[fused], _step_cpu_ms(models[fused], x, y, steps))
        fusion.set_enabled(True)
        results[name] = (best[False], best[True])
    return results


def _best_cpu_ms(fn, repeats=7, inner=5):
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(inner):
            fn()
        best = min(best, (time.process_time() - start) / inner)
    return best * 1e3


def fusion_pass_costs():
    """Rows (what, shape, separate ms, fused ms) of the passes fused, at the
    recipe's activation shapes (batch 128)."""
    from cnnc import _kernels as ops
    rng = np.random.default_rng(1)
    rows = []
    for shape in ((128, 28, 28, 32), (128, 14, 14, 64), (128, 7, 7, 128)):
        c = shape[-1]
        x = rng.standard_normal(shape).astype(np.float32)
        dy = rng.standard_normal(shape).astype(np.float32)
        gamma = rng.uniform(0.5, 1.5, c).astype(np.float32)
        beta = rng.uniform(-0.5, 0.5, c).astype(np.float32)
        mm, mv = np.zeros(c, np.float32), np.ones(c, np.float32)
        y, mean, inv_std = ops.batch_norm_train(x, gamma, beta, mm, mv, activation="relu")

        def bn_then_relu():
            out = ops.batch_norm_train(x, gamma, beta, mm, mv)[0]
            ops.relu(out, out=out)
        rows.append(("BN + ReLU forward", shape, _best_cpu_ms(bn_then_relu), _best_cpu_ms(
            lambda: ops.batch_norm_train(x, gamma, beta, mm, mv, activation="relu"))))
        rows.append(("BN + ReLU backward", shape,
                     _best_cpu_ms(lambda: ops.batch_norm_backward(
                         x, ops.relu_backward(y, dy), gamma, mean, inv_std)),
                     _best_cpu_ms(lambda: ops.batch_norm_backward(
                         x, dy, gamma, mean, inv_std, relu_output=y))))
        if c > 32:
            b = rng.standard_normal(shape).astype(np.float32)
            out = np.empty_like(x)

            def add_then_relu():
                ops.add(x, b, out=out)
                ops.relu(out, out=out)
            rows.append(("add + ReLU forward", shape, _best_cpu_ms(add_then_relu),
                         _best_cpu_ms(lambda: ops.add(x, b, out=out, activation="relu"))))
    return rows


def _fusion_child(name, steps, repeats):
    """One build's step time (its default mode), printed as JSON."""
    x, y = _fusion_data(name)
    cnnc.utils.set_random_seed(0)
    model = _fusion_model(name)
    _step_cpu_ms(model, x, y, 2)
    print(json.dumps(min(_step_cpu_ms(model, x, y, steps) for _ in range(repeats))))


def fusion_builds(sites, names, steps, repeats, threads):
    """{name: [ms under sites[0], ms under sites[1]]}, each run in its own
    process, the builds alternating."""
    results = {name: [float("inf"), float("inf")] for name in names}
    for run in range(repeats):
        order = (0, 1) if run % 2 == 0 else (1, 0)
        for name in names:
            for k in order:
                env = dict(os.environ, PYTHONPATH=sites[k], OMP_NUM_THREADS=str(threads))
                out = subprocess.run([sys.executable, "-P", os.path.abspath(__file__),
                                      "--fusion-child", name, "--steps", str(steps),
                                      "--threads", str(threads)],
                                     capture_output=True, text=True, env=env, check=True)
                results[name][k] = min(results[name][k], json.loads(out.stdout.splitlines()[-1]))
    return results


def fusion_cost(args):
    names = list(FUSION_MODELS)
    steps = args.steps if args.steps != 150 else 4
    threads = args.threads[0]
    if args.builds:
        print(f"training step, CPU ms per step at {threads} thread(s), best of {args.repeats} "
              f"alternating processes of {steps} steps; A = {args.builds[0]}, B = {args.builds[1]}")
        print(f"{'model':34} | {'batch':>5} | {'A ms':>8} | {'B ms':>8} | {'B / A':>6}")
        for name, (a, b) in fusion_builds(args.builds, names, steps, args.repeats, threads).items():
            label, _, _, batch = FUSION_MODELS[name]
            print(f"{label:34} | {batch:>5} | {a:>8.1f} | {b:>8.1f} | {b / a:>6.3f}", flush=True)
        return
    cnnc.set_num_threads(threads)
    print(f"training step, CPU ms per step at {threads} thread(s), best of {args.repeats} "
          f"alternating runs of {steps} steps; cnnc isa {cnnc.isa()}")
    print(f"{'model':34} | {'batch':>5} | {'unfused':>8} | {'fused':>8} | {'saved':>6}")
    for name, (plain, fused) in fusion_step_costs(names, steps, args.repeats).items():
        label, _, _, batch = FUSION_MODELS[name]
        print(f"{label:34} | {batch:>5} | {plain:>8.1f} | {fused:>8.1f} | "
              f"{1 - fused / plain:>6.1%}", flush=True)
    print(f"\nthe passes, CPU ms (best of 7), {threads} thread(s)")
    print(f"{'pass':20} | {'shape':18} | {'separate':>8} | {'fused':>8} | {'saved':>6}")
    for what, shape, plain, fused in fusion_pass_costs():
        print(f"{what:20} | {str(shape):18} | {plain:>8.2f} | {fused:>8.2f} | "
              f"{1 - fused / plain:>6.1%}", flush=True)


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
    parser.add_argument("--fusion-cost", action="store_true",
                        help="cnnc alone: ResNet training steps with and without the fused passes")
    parser.add_argument("--builds", nargs=2, metavar="SITE",
                        help="with --fusion-cost: the steps under these two builds instead")
    parser.add_argument("--fusion-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fusion_child:
        cnnc.set_num_threads(args.threads[0])
        _fusion_child(args.fusion_child, args.steps, 2)
        return
    if args.fusion_cost:
        fusion_cost(args)
        return

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
