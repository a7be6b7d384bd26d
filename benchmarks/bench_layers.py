"""Forward and backward time of cnnc kernels against PyTorch on the CPU.

Shapes are those of the small MNIST CNN in examples/ and of ResNet-18
(batch 32). Each case times cnnc and PyTorch (channels_last tensors, same
thread count, same run) and prints the best of several repetitions with the
ratio torch / cnnc (above 1: cnnc is faster).

    python benchmarks/bench_layers.py [--quick] [--threads 1 2] [--filter maxpool]

Adding a case: write a function that takes (rng, quick) and returns a dict
with the callables "cnnc_forward", "torch_forward" and optionally
"cnnc_backward", "torch_backward" (each taking no argument), then list it in
CASES with a name and a group. Inputs are built once, outside the timing.
"""
import argparse
import time

import numpy as np

import cnnc

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the table then shows cnnc alone
    torch = None

BATCH = 32


def _nhwc(rng, shape):
    return rng.standard_normal(shape, dtype=np.float32)


def _torch_nhwc(x, requires_grad=False):
    """A channels_last NCHW torch view sharing the NHWC data layout."""
    t = torch.from_numpy(x).permute(0, 3, 1, 2)  # NCHW shape, NHWC memory
    assert t.is_contiguous(memory_format=torch.channels_last)
    if requires_grad:
        t = t.detach().requires_grad_(True)
    return t


def _batch(quick):
    return 8 if quick else BATCH


# ---- cases ------------------------------------------------------------------

def relu_case(shape):
    def setup(rng, quick):
        n = _batch(quick)
        x = _nhwc(rng, (n,) + shape)
        dy = _nhwc(rng, x.shape)
        out = {
            "cnnc_forward": lambda: cnnc.ops.relu(x),
            "cnnc_backward": lambda: cnnc.ops.relu_backward(x, dy),
        }
        if torch is not None:
            tx, tdy = _torch_nhwc(x), _torch_nhwc(dy)
            out["torch_forward"] = lambda: torch.relu(tx)
            out["torch_backward"] = lambda: torch.ops.aten.threshold_backward(tdy, tx, 0.0)
        return out
    return setup


def _autograd_backward(forward, tx, tdy):
    """A callable timing only the backward of forward(tx)."""
    def run():
        tx.grad = None
        y = forward(tx)
        y.backward(tdy)
    return run


CASES = [
    # (group, name, setup)
    ("relu", "relu 112x112x64", relu_case((112, 112, 64))),
    ("relu", "relu 56x56x64", relu_case((56, 56, 64))),
]


# ---- timing and table ---------------------------------------------------------

def best_time(fn, quick):
    fn()  # warm up: workspaces, page faults, first-touch
    repeats, min_total = (3, 0.05) if quick else (7, 0.2)
    best = float("inf")
    for _ in range(repeats):
        count, start = 0, time.perf_counter()
        while True:
            fn()
            count += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_total / repeats or count >= 200:
                break
        best = min(best, elapsed / count)
    return best


def set_threads(n):
    cnnc.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 8, fewer repetitions")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--filter", default="", help="run only cases whose group or name contains this")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    print(f"cnnc {cnnc.__version__} isa={cnnc.isa()}; torch {torch.__version__ if torch else 'absent'}; "
          f"batch {_batch(args.quick)}")
    header = f"{'case':34s} {'thr':>3s} {'pass':8s} {'cnnc ms':>9s} {'torch ms':>9s} {'torch/cnnc':>10s}"
    print(header)
    print("-" * len(header))
    for group, name, setup in CASES:
        if args.filter and args.filter not in group and args.filter not in name:
            continue
        calls = setup(rng, args.quick)
        for threads in args.threads:
            set_threads(threads)
            for phase in ("forward", "backward"):
                mine = calls.get(f"cnnc_{phase}")
                if mine is None:
                    continue
                t_cnnc = best_time(mine, args.quick)
                theirs = calls.get(f"torch_{phase}")
                if theirs is not None:
                    t_torch = best_time(theirs, args.quick)
                    ratio = f"{t_torch / t_cnnc:10.2f}"
                    torch_ms = f"{t_torch * 1e3:9.3f}"
                else:
                    ratio, torch_ms = f"{'-':>10s}", f"{'-':>9s}"
                print(f"{name:34s} {threads:3d} {phase:8s} {t_cnnc * 1e3:9.3f} {torch_ms} {ratio}", flush=True)


if __name__ == "__main__":
    main()
