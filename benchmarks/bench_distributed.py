"""Data-parallel training over MPI on this machine, and what it predicts
for ResNet-50 on a cluster.

    python benchmarks/bench_distributed.py [--steps 8] [--batch 32] [--size 64]

Measures, on synthetic data, training throughput (images/s) of ResNet-18
(10 classes, SIZExSIZE RGB inputs, global batch BATCH, SGD) for
    1 process x 1 thread, 1 process x 2 threads (plain fit, no MPI),
    1 rank x 1 thread, 2 ranks x 1 thread (DataParallel under the launcher),
the speed-up and scaling efficiency of each against 1 process x 1 thread,
the ratio of 2 ranks to 2 threads, the share of each step a rank waits for
the gradient allreduce, and the allreduce bandwidth between 2 ranks (4 to
64 MiB). Then the time of a ResNet-50 training image here, and from all of
these a ring-allreduce estimate of ResNet-50 (100 MB of float32 gradients)
on 2, 8 and 32 machines over 10 and 100 Gbit/s networks.

The ranks run on the MPI that the running Python's mpi4py uses, started
with that MPI's launcher (Open MPI's mpirun or MPICH's mpiexec, found by
cnnc.distributed.launcher); run it with another environment's Python to
measure another MPI. Figures on a shared machine vary with the load of the
other processes (the load average is printed before and after): compare
the rows of one run.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

RESNET50_GRADIENT_BYTES = 100e6     # 25.6 M float32 parameters, rounded
RING_LATENCY = {10: 30e-6, 100: 5e-6}  # seconds per ring step: TCP 10 GbE, RDMA 100 Gb/s


def worker(args):
    """One configuration (under mpirun or alone): prints one JSON line."""
    import cnnc
    from cnnc.applications import ResNet18
    from cnnc.callbacks import Callback
    from cnnc.utils import set_random_seed

    strategy = None
    if args.launched:
        import cnnc.distributed
        strategy = cnnc.distributed.DataParallel(threads=args.threads)
    else:
        cnnc.set_num_threads(args.threads)
    set_random_seed(0)
    import contextlib
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = ResNet18(input_shape=(args.size, args.size, 3), classes=10)
        model.compile(cnnc.optimizers.SGD(0.01, momentum=0.9), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    steps = args.steps + 2  # the first two warm up
    x = rng.standard_normal((steps * args.batch, args.size, args.size, 3)).astype(np.float32)
    y = rng.integers(0, 10, len(x))

    class Clock(Callback):
        def __init__(self):
            super().__init__()
            self.ends, self.waits = [], []

        def on_train_batch_end(self, batch, logs=None):
            self.ends.append(time.perf_counter())
            self.waits.append(strategy.comm_wait_seconds if strategy else 0.0)

    clock = Clock()
    model.fit(x, y, batch_size=args.batch, epochs=1, verbose=0, shuffle=False, callbacks=[clock])
    seconds = clock.ends[-1] - clock.ends[1]
    result = {"ranks": args.ranks, "threads": args.threads, "launched": args.launched,
              "images_per_second": args.steps * args.batch / seconds,
              "step_seconds": seconds / args.steps,
              "wait_share": (clock.waits[-1] - clock.waits[1]) / seconds,
              "gradient_bytes": 4 * sum(w.value.size for w in model.trainable_weights)}
    if strategy is not None and strategy.size > 1:
        result["allreduce"] = allreduce_bandwidth(strategy)
    if strategy is None or strategy.rank == 0:
        print("RESULT " + json.dumps(result), flush=True)


def allreduce_bandwidth(strategy):
    """(MiB, seconds, bus GB/s) of in-place float32 allreduces; bus
    bandwidth = 2 (P-1)/P x bytes / time, what each link carries in a ring."""
    out = []
    p = strategy.size
    for mib in (4, 16, 64):
        buffer = np.ones(mib * (1 << 20) // 4, np.float32)
        strategy.allreduce(buffer, "bandwidth test")
        times = []
        for _ in range(5):
            strategy.comm.barrier("bandwidth test")
            start = time.perf_counter()
            strategy.allreduce(buffer, "bandwidth test")
            times.append(time.perf_counter() - start)
        best = min(times)
        out.append([mib, best, 2 * (p - 1) / p * buffer.nbytes / best / 1e9])
    return out


def resnet50_image_seconds(threads, batch=4):
    """Seconds per training image of ResNet-50 at 224x224 (one process)."""
    import cnnc
    from cnnc.applications import ResNet50
    cnnc.set_num_threads(threads)
    model = ResNet50()
    model.compile(cnnc.optimizers.SGD(0.01), "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).standard_normal((batch, 224, 224, 3)).astype(np.float32)
    y = np.arange(batch) % 1000
    model.train_on_batch(x, y)
    start = time.perf_counter()
    model.train_on_batch(x, y)
    return (time.perf_counter() - start) / batch


def run_config(args, ranks, threads, launch):
    """One configuration in a child process (under the launcher when
    ``launch``, even for one rank): its RESULT line, parsed."""
    command = [sys.executable, os.path.abspath(__file__), "--worker", "--ranks", str(ranks),
               "--threads", str(threads), "--steps", str(args.steps), "--batch", str(args.batch),
               "--size", str(args.size)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if launch:
        from cnnc.distributed.launcher import local_launch
        try:
            prefix, extra = local_launch(ranks)
        except RuntimeError as exc:
            sys.exit(f"cannot start MPI ranks: {exc}")
        command = prefix + command + ["--launched"]
        env.update(extra)
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    sys.exit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")


def ring_estimate(step_compute, machines, gbit, overlap):
    """Seconds of one data-parallel step: compute, plus the part of a ring
    allreduce of the ResNet-50 gradients that backward does not hide."""
    link = gbit * 1e9 / 8
    p = machines
    allreduce = 2 * (p - 1) / p * RESNET50_GRADIENT_BYTES / link + 2 * (p - 1) * RING_LATENCY[gbit]
    exposed = max(allreduce - overlap * step_compute, 0.0)
    return step_compute + exposed, allreduce


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=8, help="timed steps (after 2 warm-up steps)")
    p.add_argument("--batch", type=int, default=32, help="global batch")
    p.add_argument("--size", type=int, default=64, help="input height and width")
    p.add_argument("--local-batch", type=int, default=32,
                   help="ResNet-50 images per machine and step in the estimate")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--ranks", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--launched", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return

    from cnnc.distributed.launcher import library_version
    library = " ".join((library_version() or "mpi4py not importable").splitlines()[0].split())
    print(f"ResNet-18, {args.size}x{args.size}x3, global batch {args.batch}, SGD; "
          f"{args.steps} timed steps; MPI: {library.split(', package')[0]}")
    print("load average before: {:.2f} {:.2f} {:.2f}\n".format(*os.getloadavg()))
    runs = [run_config(args, 1, 1, False), run_config(args, 1, 2, False),
            run_config(args, 1, 1, True), run_config(args, 2, 1, True)]
    one, two_threads = runs[0]["images_per_second"], runs[1]["images_per_second"]
    print(f"{'configuration':<28}{'img/s':>8}{'step ms':>9}{'vs 1x1':>8}{'efficiency':>12}"
          f"{'vs 1x2':>8}{'comm wait':>11}")
    labels = ["1 process x 1 thread", "1 process x 2 threads", "1 rank x 1 thread (MPI)",
              "2 ranks x 1 thread (MPI)"]
    for label, r in zip(labels, runs):
        workers = r["ranks"] * r["threads"]
        speedup = r["images_per_second"] / one
        wait = f"{r['wait_share']:11.1%}" if r["launched"] else f"{'-':>11}"
        print(f"{label:<28}{r['images_per_second']:8.1f}{1e3 * r['step_seconds']:9.1f}"
              f"{speedup:8.2f}{speedup / workers:12.0%}"
              f"{r['images_per_second'] / two_threads:8.2f}{wait}")
    print("(efficiency: speed-up over 1 process x 1 thread, per core used; vs 1x2: "
          "throughput over 1 process x 2 threads)")
    two = runs[3]
    print(f"\ngradients: {two['gradient_bytes'] / 1e6:.1f} MB per step; allreduce between 2 "
          f"ranks on this machine:")
    for mib, seconds, bus in two["allreduce"]:
        print(f"  {mib:3d} MiB: {1e3 * seconds:7.2f} ms, bus bandwidth {bus:6.2f} GB/s")

    # The part of the allreduce that backward hides in the 2-rank run (for 2
    # ranks a ring moves the whole buffer once: time = bytes / bus bandwidth),
    # at the bandwidth of the size the gradients travel in (4 MiB buckets).
    bus = two["allreduce"][0][2]
    measured_allreduce = two["gradient_bytes"] / (bus * 1e9)
    waited = two["wait_share"] * two["step_seconds"]
    hidden = min(max(1.0 - waited / measured_allreduce, 0.0), 1.0) if measured_allreduce else 0.0
    print(f"  one step's gradients take {1e3 * measured_allreduce:.1f} ms to reduce in 4 MiB "
          f"buckets; ranks "
          f"waited {1e3 * waited:.1f} ms per step ({hidden:.0%} hidden behind backward)")

    cores = max(1, os.cpu_count() or 1)
    image = resnet50_image_seconds(1)
    print(f"\nResNet-50 224x224 here: {image:.2f} s per training image on 1 thread")
    # Backward is about 2/3 of a step; the allreduce can overlap it, except
    # for the last bucket.
    overlap = 2.0 / 3.0
    print(f"\nEstimate: ResNet-50, {args.local_batch} images per machine and step, ring "
          f"allreduce of {RESNET50_GRADIENT_BYTES / 1e6:.0f} MB, up to 2/3 of the step "
          f"(backward) overlapped")
    nodes = ((args.local_batch * image / cores, f"machines like this one ({cores} cores)"),
             (args.local_batch * image / 64, "64-core nodes (this core's speed x 64: optimistic)"),
             (args.local_batch / 400.0, "nodes training 400 img/s (accelerator class)"))
    for compute, label in nodes:
        print(f"\n{label}: {compute:.2f} s of compute per step")
        print(f"{'machines':>9}{'network':>10}{'allreduce':>11}{'step':>9}{'efficiency':>12}"
              f"{'no overlap':>12}{'img/s':>9}")
        for gbit in (10, 100):
            for machines in (2, 8, 32):
                step, allreduce = ring_estimate(compute, machines, gbit, overlap)
                print(f"{machines:9d}{gbit:>6} Gb/s{1e3 * allreduce:9.0f} ms{step:9.2f}"
                      f"{compute / step:12.0%}{compute / (compute + allreduce):12.0%}"
                      f"{machines * args.local_batch / step:9.0f}")
    print("\nload average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
