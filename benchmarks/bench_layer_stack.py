"""Forward + backward of the classic MNIST CNN's layers chained by hand
(no model, optimizer or loss): cnnc layers vs the same PyTorch modules, per
batch, best of several repeats. Shows the cost of the layer API over the
kernels.

Usage: python -P benchmarks/bench_layer_stack.py [--batch 32] [--threads N]
"""
import argparse
import time

import numpy as np

import cnnc
import cnnc.layers as L


def best_ms(fn, repeats=30, inner=3):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best * 1e3


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=cnnc.get_num_threads())
    args = parser.parse_args()
    cnnc.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.random((args.batch, 28, 28, 1), dtype=np.float32)
    layers = [L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(), L.Conv2D(64, 3, activation="relu"),
              L.MaxPooling2D(), L.Flatten(), L.Dense(128, activation="relu"), L.Dense(10)]
    layers[0].need_input_gradient = False
    dy = rng.standard_normal((args.batch, 10)).astype(np.float32)

    def cnnc_step():
        h = x
        for layer in layers:
            h = layer(h, training=True)
        g = dy
        for layer in reversed(layers):
            g = layer.backward(g)

    rows = [("cnnc layers", best_ms(cnnc_step))]
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(args.threads)
        nn = torch.nn
        model = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3),
                              nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128),
                              nn.ReLU(), nn.Linear(128, 10))
        tx = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
        tdy = torch.from_numpy(dy)

        def torch_step():
            model.zero_grad(set_to_none=True)
            model(tx).backward(tdy)
        rows.append(("torch", best_ms(torch_step)))
    base = rows[-1][1]
    print(f"MNIST CNN layers, forward + backward, batch {args.batch}, {args.threads} thread(s)")
    print(f"{'':14s} {'ms/batch':>10s} {'images/s':>10s} {'vs torch':>9s}")
    for name, ms in rows:
        print(f"{name:14s} {ms:10.3f} {args.batch / ms * 1e3:10.0f} {base / ms:8.2f}x")


if __name__ == "__main__":
    main()
