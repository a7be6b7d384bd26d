"""GFLOP/s of cnnc.ops.matmul against NumPy (OpenBLAS) on the same shapes.

Shapes: square 64..2048, and the GEMMs of im2col convolutions and dense
layers of the classic MNIST CNN and of ResNet-18 (batch 32, 224 x 224),
each as forward (M = N*OH*OW, N = Cout, K = KH*KW*Cin), backward-data
(dX_col = dY @ W^T) and backward-weights (dW = X_col^T @ dY).

    python benchmarks/bench_gemm.py [--quick] [--threads 1 2] [--filter resnet]

Each thread count runs in its own subprocess, with OPENBLAS_NUM_THREADS and
OMP_NUM_THREADS set before NumPy loads (and threadpoolctl limits applied
when it is installed), so both libraries use the same number of threads.
Every case reports the best of several repetitions (the machine may be
shared), the ratio cnnc / NumPy (above 1: cnnc is faster) and cnnc's
fraction of the machine's peak:

    peak = threads x clock x 2 FMA pipes x 16 float lanes x 2 flops per FMA

for AVX-512 (8 lanes for AVX2, 1 FMA pipe x 1 lane for the scalar path is
not meaningful and is not reported). The clock is measured by timing a
chain of dependent integer additions (one per cycle) against the thread's
CPU time, in a small C function compiled on the spot; without a C compiler
the figure from /proc/cpuinfo is used instead.

Timing: ``--clock wall`` (default) takes the best wall-clock time of the
repetitions. On a machine shared with other busy processes wall time
partly measures the scheduler; ``--clock cpu`` then times calls by the
process's CPU time (all threads, spinning at barriers included), for both
libraries alike: at 1 thread that is the time on an idle machine, at 2
threads the figures are GFLOP per CPU-second (efficiency, not speed-up).
The load average is printed with the table.
"""
import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time

SQUARE = [64, 128, 256, 384, 512, 768, 1024, 1536, 2048]
BATCH = 32


def conv_cases(group, name, n, oh, ow, kh, kw, cin, cout, first=False):
    """(label, M, N, K, trans_a, trans_b) of one convolution's three GEMMs."""
    pix, kk = n * oh * ow, kh * kw * cin
    cases = [(group, f"{name} fwd", pix, cout, kk, False, False)]
    if not first:  # the input of the first layer needs no gradient
        cases.append((group, f"{name} bwd-data", pix, kk, cout, False, True))
    cases.append((group, f"{name} bwd-weights", kk, cout, pix, True, False))
    return cases


def dense_cases(group, name, n, fin, fout):
    return [(group, f"{name} fwd", n, fout, fin, False, False),
            (group, f"{name} bwd-data", n, fin, fout, False, True),
            (group, f"{name} bwd-weights", fin, fout, n, True, False)]


def all_cases():
    cases = [("square", f"{n}", n, n, n, False, False) for n in SQUARE]
    b = BATCH
    cases += conv_cases("mnist", "conv1 3x3 1->32", b, 26, 26, 3, 3, 1, 32, first=True)
    cases += conv_cases("mnist", "conv2 3x3 32->64", b, 11, 11, 3, 3, 32, 64)
    cases += dense_cases("mnist", "dense 1600->128", b, 1600, 128)
    cases += dense_cases("mnist", "dense 128->10", b, 128, 10)
    cases += conv_cases("resnet18", "conv1 7x7/2 3->64", b, 112, 112, 7, 7, 3, 64, first=True)
    cases += conv_cases("resnet18", "layer1 3x3 64->64", b, 56, 56, 3, 3, 64, 64)
    cases += conv_cases("resnet18", "layer2 3x3/2 64->128", b, 28, 28, 3, 3, 64, 128)
    cases += conv_cases("resnet18", "layer2 3x3 128->128", b, 28, 28, 3, 3, 128, 128)
    cases += conv_cases("resnet18", "layer2 down 1x1/2", b, 28, 28, 1, 1, 64, 128)
    cases += conv_cases("resnet18", "layer3 3x3 256->256", b, 14, 14, 3, 3, 256, 256)
    cases += conv_cases("resnet18", "layer3 down 1x1/2", b, 14, 14, 1, 1, 128, 256)
    cases += conv_cases("resnet18", "layer4 3x3 512->512", b, 7, 7, 3, 3, 512, 512)
    cases += conv_cases("resnet18", "layer4 down 1x1/2", b, 7, 7, 1, 1, 256, 512)
    cases += dense_cases("resnet18", "fc 512->1000", b, 512, 1000)
    return cases


QUICK_SQUARE = {"64", "256", "512", "1024"}
QUICK_SKIP = ("layer2 3x3/2", "layer2 down", "layer3 down", "layer4 down")


def best_time(fn, budget, clock):
    """Best time of one call over repetitions. By CPU time, calls are timed
    in batches of at least 20 ms, since the process CPU clock of other
    threads advances in scheduler ticks."""
    fn()
    batch = 1
    if clock == "cpu":
        t0 = time.perf_counter()
        fn()
        batch = max(1, int(0.02 / max(time.perf_counter() - t0, 1e-7)))
    best, spent, reps = float("inf"), 0.0, 0
    while reps < 3 or (spent < budget and reps < 200):
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(batch):
            fn()
        w1, c1 = time.perf_counter(), time.process_time()
        dt = ((c1 - c0) if clock == "cpu" else (w1 - w0)) / batch
        best = min(best, dt)
        spent += (w1 - w0)
        reps += 1
    return best


def worker(threads, cases, budget, clock):
    import numpy as np
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
    except ImportError:
        pass
    import cnnc
    cnnc.set_num_threads(threads)
    rng = np.random.default_rng(0)
    for group, label, M, N, K, ta, tb in cases:
        a = rng.standard_normal((K, M) if ta else (M, K), dtype=np.float32)
        b = rng.standard_normal((N, K) if tb else (K, N), dtype=np.float32)
        c1 = np.empty((M, N), np.float32)
        c2 = np.empty((M, N), np.float32)
        opa, opb = (a.T if ta else a), (b.T if tb else b)
        t_cnnc = best_time(lambda: cnnc.ops.matmul(a, b, trans_a=ta, trans_b=tb, out=c1), budget, clock)
        t_np = best_time(lambda: np.matmul(opa, opb, out=c2), budget, clock)
        err = float(np.abs(c1 - c2).max() / max(1.0, float(np.abs(c2).max())))
        flops = 2.0 * M * N * K
        print(json.dumps({"label": label, "group": group, "threads": threads,
                          "cnnc": flops / t_cnnc / 1e9, "numpy": flops / t_np / 1e9, "err": err}),
              flush=True)


CLOCK_C = r"""
#include <stdint.h>
#include <time.h>
double ghz(void) {
    const long n = 200000000;
    struct timespec t0, t1;
    uint64_t x = 0;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    for (long i = 0; i < n; i += 8)
        __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                         "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    return n / ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec));
}
"""


def measure_clock_ghz():
    """Core clock under load, and how it was obtained."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src, lib = os.path.join(tmp, "clock.c"), os.path.join(tmp, "clock.so")
            with open(src, "w") as f:
                f.write(CLOCK_C)
            subprocess.run(["cc", "-O1", "-shared", "-fPIC", src, "-o", lib], check=True,
                           capture_output=True)
            fn = ctypes.CDLL(lib).ghz
            fn.restype = ctypes.c_double
            return max(fn() for _ in range(3)), "measured: dependent add chain, 1 add/cycle"
    except Exception:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            mhz = [float(l.split(":")[1]) for l in f if l.startswith("cpu MHz")]
        return max(mhz) / 1000.0, "read from /proc/cpuinfo (may be the base clock)"
    except Exception:
        return float("nan"), "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer shapes, shorter timing")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--filter", default="", help="only cases whose group or label contains this")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, help="seconds of timing per case and library")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="time calls by wall clock or by process CPU time (shared machines)")
    args = parser.parse_args()
    budget = args.budget if args.budget is not None else (0.05 if args.quick else 0.3)
    cases = [c for c in all_cases() if args.filter in c[0] or args.filter in c[1]]
    if args.quick:
        cases = [c for c in cases if (c[0] != "square" or c[1] in QUICK_SQUARE)
                 and not c[1].startswith(QUICK_SKIP)]
    if args.worker:
        worker(args.worker, cases, budget, args.clock)
        return

    import cnnc
    isa = cnnc.isa()
    lanes = {"avx512": 16, "avx2": 8}.get(isa)
    ghz, how = measure_clock_ghz()
    print(f"cnnc {cnnc.__version__}, ISA {isa}; clock {ghz:.2f} GHz ({how})")
    if lanes:
        print(f"peak per core = {ghz:.2f} GHz x 2 FMA pipes x {lanes} lanes x 2 = "
              f"{ghz * 2 * lanes * 2:.0f} GFLOP/s")
    load = os.getloadavg()
    print(f"timing: best of repetitions by {args.clock} clock; load average before the run "
          f"{load[0]:.1f} on {os.cpu_count()} CPUs")
    results = {}
    for t in args.threads:
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(t), OMP_NUM_THREADS=str(t),
                   MKL_NUM_THREADS=str(t))
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(t), "--budget", str(budget),
               "--filter", args.filter, "--clock", args.clock] + (["--quick"] if args.quick else [])
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"worker for {t} threads failed:\n{proc.stderr}")
        for line in proc.stdout.splitlines():
            r = json.loads(line)
            results[(r["label"], r["group"], t)] = r

    header = (f"{'group':9} {'case':30} {'M':>7} {'N':>6} {'K':>7} {'op':>3} {'thr':>3} "
              f"{'cnnc GF/s':>9} {'numpy GF/s':>10} {'ratio':>6} {'%peak':>6} {'2t/1t':>6}")
    print(header)
    print("-" * len(header))
    for group, label, M, N, K, ta, tb in cases:
        for t in args.threads:
            r = results.get((label, group, t))
            if r is None:
                continue
            peak = t * ghz * 2 * lanes * 2 if lanes else float("nan")
            one = results.get((label, group, 1))
            scaling = f"{r['cnnc'] / one['cnnc']:6.2f}" if (t > 1 and one) else ""
            op = ("T" if ta else "N") + ("T" if tb else "N")
            print(f"{group:9} {label:30} {M:7d} {N:6d} {K:7d} {op:>3} {t:3d} {r['cnnc']:9.1f} "
                  f"{r['numpy']:10.1f} {r['cnnc'] / r['numpy']:6.2f} "
                  f"{100 * r['cnnc'] / peak:5.1f}% {scaling:>6}")
            if r["err"] > 1e-3:
                print(f"  !! results differ from NumPy: relative error {r['err']:.2e}")


if __name__ == "__main__":
    main()
