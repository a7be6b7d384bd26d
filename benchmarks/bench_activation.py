"""Activations and softmax: cnnc against PyTorch (CPU) and NumPy, forward and
backward, best of several runs, printed side by side with ratios.

    python -P benchmarks/bench_activation.py [--size N] [--threads T] [--repeat R]
"""
import argparse
import time

import numpy as np

import cnnc
from cnnc import ops


def best(fn, repeat):
    fn()
    result = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        result = min(result, time.perf_counter() - start)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1 << 22)
    parser.add_argument("--cols", type=int, default=1000, help="row length for softmax")
    parser.add_argument("--threads", type=int, default=cnnc.get_num_threads())
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    cnnc.set_num_threads(args.threads)
    try:
        import torch
        torch.set_num_threads(args.threads)
        F = torch.nn.functional
    except ImportError:
        torch = None

    rng = np.random.default_rng(0)
    x = (rng.standard_normal(args.size) * 3).astype(np.float32)
    dy = rng.standard_normal(args.size).astype(np.float32)
    out = np.empty_like(x)
    rows = x.reshape(-1, args.cols) if args.size % args.cols == 0 else x[: args.size // args.cols * args.cols].reshape(-1, args.cols)
    drows = dy[: rows.size].reshape(rows.shape)
    y_soft = ops.softmax(rows)

    cases = [
        ("relu", lambda: ops.relu(x, out=out), lambda t: torch.relu(t), lambda: np.maximum(x, 0)),
        ("leaky_relu", lambda: ops.leaky_relu(x, 0.3, out=out), lambda t: F.leaky_relu(t, 0.3), None),
        ("elu", lambda: ops.elu(x, out=out), lambda t: F.elu(t), None),
        ("sigmoid", lambda: ops.sigmoid(x, out=out), lambda t: torch.sigmoid(t), lambda: 1 / (1 + np.exp(-x))),
        ("tanh", lambda: ops.tanh(x, out=out), lambda t: torch.tanh(t), lambda: np.tanh(x)),
        ("gelu", lambda: ops.gelu(x, out=out), lambda t: F.gelu(t), None),
        ("gelu_tanh", lambda: ops.gelu(x, approximate=True, out=out), lambda t: F.gelu(t, approximate="tanh"), None),
        ("silu", lambda: ops.silu(x, out=out), lambda t: F.silu(t), None),
        ("softplus", lambda: ops.softplus(x, out=out), lambda t: F.softplus(t), None),
        ("hard_swish", lambda: ops.hard_swish(x, out=out), lambda t: F.hardswish(t), None),
        # PyTorch's backward kernels, called directly (they take the forward output
        # for sigmoid and tanh, which cnnc recomputes from x).
        ("sigmoid_bwd", lambda: ops.sigmoid_backward(x, dy, out=out),
         lambda t: torch.ops.aten.sigmoid_backward(tdy, ts), None),
        ("tanh_bwd", lambda: ops.tanh_backward(x, dy, out=out),
         lambda t: torch.ops.aten.tanh_backward(tdy, tt), None),
        ("gelu_bwd", lambda: ops.gelu_backward(x, dy, out=out),
         lambda t: torch.ops.aten.gelu_backward(tdy, t), None),
        ("silu_bwd", lambda: ops.silu_backward(x, dy, out=out),
         lambda t: torch.ops.aten.silu_backward(tdy, t), None),
        ("softmax", lambda: ops.softmax(rows), lambda t: torch.softmax(t, -1), None),
        ("log_softmax", lambda: ops.log_softmax(rows), lambda t: torch.log_softmax(t, -1), None),
        ("softmax_bwd", lambda: ops.softmax_backward(y_soft, drows), None, None),
    ]
    tx = torch.from_numpy(x) if torch else None
    tdy = torch.from_numpy(dy) if torch else None
    ts = torch.sigmoid(tx) if torch else None
    tt = torch.tanh(tx) if torch else None
    trows = torch.from_numpy(rows) if torch else None
    print(f"cnnc {cnnc.__version__} [{cnnc.isa()}], {args.threads} thread(s), {args.size:,} elements "
          f"(softmax: rows of {args.cols}); best of {args.repeat}, ms")
    print(f"{'op':12s} {'cnnc':>8s} {'torch':>8s} {'torch/cnnc':>10s} {'numpy':>8s} {'numpy/cnnc':>10s}")
    for name, ours, theirs, numpy_fn in cases:
        t_ours = best(ours, args.repeat)
        t_torch = t_np = None
        if torch and theirs:
            arg = trows if name.startswith(("softmax", "log_softmax")) else tx
            with torch.no_grad():
                t_torch = best(lambda: theirs(arg), args.repeat)
        if numpy_fn:
            with np.errstate(over="ignore"):
                t_np = best(numpy_fn, args.repeat)
        fmt = lambda t: f"{t * 1e3:8.3f}" if t else f"{'-':>8s}"
        ratio = lambda t: f"{t / t_ours:9.2f}x" if t else f"{'-':>10s}"
        print(f"{name:12s} {fmt(t_ours)} {fmt(t_torch)} {ratio(t_torch)} {fmt(t_np)} {ratio(t_np)}")


if __name__ == "__main__":
    main()
