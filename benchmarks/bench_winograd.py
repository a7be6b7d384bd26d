"""Winograd F(2x2, 3x3) against F(4x4, 3x3) and the GEMM paths, per pass:
speed (one thread, CPU time) and float32 rounding error.

    python benchmarks/bench_winograd.py [--speed] [--error] [--step] [--filter 7x7] [--rounds 5]

--speed (the default) times each 3x3 stride-1 case of SHAPES with every
algorithm forced through CNNC_WINOGRAD (0: the GEMM paths, 2: F(2x2), 4:
F(4x4)) and with the default choice, which it names by comparing its bits
with the forced ones; PyTorch (one thread, channels_last) runs alongside for
scale. Times are the best call's CPU time of the calling thread, at one
thread, so other processes on a busy machine do not count; the algorithms
run in turn, round after round, so that changes of load meet them alike.

--error prints, for 64, 128 and 512 channels, each pass's error against a
float64 direct convolution: the largest |error| / max |reference| (relative
to the output's scale) and the largest |error| / (the same sum over |x| |w|)
in float32 epsilons (relative to each output's own magnitudes).

--step times a training step (train_on_batch) of the best Fashion-MNIST
recipe's network, CompactResNet(width=64, blocks=(2, 2)) at batch 128, SGD
with Nesterov momentum, deterministic mode, one thread: CPU milliseconds per
step with the default choice (run it with another build on PYTHONPATH for a
before / after).
"""
import argparse
import os
import time

import numpy as np

import cnnc

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # the table then shows cnnc alone
    torch = None

MODES = {"gemm": "0", "F2": "2", "F4": "4"}
PASSES = ("forward", "backward_data", "backward_weights")

# (name, batch, size, cin, cout): the best Fashion-MNIST recipe's 3x3
# layers at batch 128, ResNet-18/50's 3x3 stride-1 layers at batch 8 and 1.
SHAPES = [
    ("fashion 64->64 @14", 128, 14, 64, 64),
    ("fashion 128->128 @7", 128, 7, 128, 128),
    ("resnet 64->64 @56", 8, 56, 64, 64),
    ("resnet 128->128 @28", 8, 28, 128, 128),
    ("resnet 256->256 @14", 8, 14, 256, 256),
    ("resnet 512->512 @7", 8, 7, 512, 512),
    ("resnet 256->256 @14 b1", 1, 14, 256, 256),
    ("resnet 512->512 @7 b1", 1, 7, 512, 512),
    ("mnist 32->64 @13", 32, 13, 32, 64),
    ("small 32->32 @8", 8, 8, 32, 32),
    ("small 16->32 @5", 16, 5, 16, 32),
]


def calls(x, w, dy):
    return {
        "forward": lambda: cnnc.ops.conv2d(x, w, padding="same"),
        "backward_data": lambda: cnnc.ops.conv2d_backward(x, w, dy, padding="same", need_dw=False)[0],
        "backward_weights": lambda: cnnc.ops.conv2d_backward(x, w, dy, padding="same", need_dx=False)[1],
    }


def torch_calls(x, w, dy):
    tx = torch.from_numpy(x).permute(0, 3, 1, 2)
    tw = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))
    tdy = torch.from_numpy(dy).permute(0, 3, 1, 2)
    args = (None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1)
    return {
        "forward": lambda: F.conv2d(tx, tw, None, padding=1),
        "backward_data": lambda: torch.ops.aten.convolution_backward(tdy, tx, tw, *args, [True, False, False]),
        "backward_weights": lambda: torch.ops.aten.convolution_backward(tdy, tx, tw, *args, [False, True, False]),
    }


def cpu_time(fn):
    t0 = time.thread_time()
    fn()
    return time.thread_time() - t0


def best_interleaved(fns, rounds):
    """{label: best CPU time} of (label, mode, fn) run one after the other,
    round after round, so that a change of load meets all of them alike."""
    best = {label: float("inf") for label, _, _ in fns}
    for label, mode, fn in fns:
        with_mode(mode, fn)  # warm up: workspaces, first touch
    for _ in range(rounds):
        for label, mode, fn in fns:
            best[label] = min(best[label], with_mode(mode, lambda: cpu_time(fn)))
    return best


def with_mode(mode, fn):
    previous = os.environ.get("CNNC_WINOGRAD")
    if mode is None:
        os.environ.pop("CNNC_WINOGRAD", None)
    else:
        os.environ["CNNC_WINOGRAD"] = mode
    try:
        return fn()
    finally:
        if previous is None:
            os.environ.pop("CNNC_WINOGRAD", None)
        else:
            os.environ["CNNC_WINOGRAD"] = previous


def speed(args):
    cnnc.set_num_threads(1)
    if torch is not None:
        torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print(f"cnnc isa={cnnc.isa()}, 1 thread, CPU ms (best of {args.rounds})")
    header = (f"{'case':26s} {'pass':17s} {'gemm':>8s} {'F2':>8s} {'F4':>8s} {'torch':>8s} "
              f"{'F2/F4':>6s} {'default':>7s}")
    print(header)
    print("-" * len(header))
    for name, n, hw, cin, cout in SHAPES:
        if args.filter and args.filter not in name:
            continue
        x = rng.standard_normal((n, hw, hw, cin), dtype=np.float32)
        w = (rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin)).astype(np.float32)
        dy = rng.standard_normal((n, hw, hw, cout), dtype=np.float32)
        mine = calls(x, w, dy)
        theirs = torch_calls(x, w, dy) if torch is not None else {}
        for phase in PASSES:
            bits = {label: with_mode(mode, mine[phase]) for label, mode in MODES.items()}
            chosen = with_mode(None, mine[phase])
            default = next((label for label, b in bits.items() if np.array_equal(b, chosen)), "?")
            fns = [(label, mode, mine[phase]) for label, mode in MODES.items()]
            if phase in theirs:
                fns.append(("torch", None, theirs[phase]))
            times = best_interleaved(fns, args.rounds)
            t_torch = times.get("torch", float("nan"))
            print(f"{name:26s} {phase:17s} {times['gemm'] * 1e3:8.2f} {times['F2'] * 1e3:8.2f} "
                  f"{times['F4'] * 1e3:8.2f} {t_torch * 1e3:8.2f} {times['F2'] / times['F4']:6.2f} {default:>7s}",
                  flush=True)


def ref_forward(x, w):
    """The direct 'same' 3x3 convolution in float64."""
    n, h, wd, _ = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    y = np.zeros((n, h, wd, w.shape[3]))
    for i in range(3):
        for j in range(3):
            y += xp[:, i:i + h, j:j + wd] @ w[i, j]
    return y


def ref_weights(x, dy):
    n, h, wd, cin = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    dw = np.zeros((3, 3, cin, dy.shape[3]))
    for i in range(3):
        for j in range(3):
            dw[i, j] = xp[:, i:i + h, j:j + wd].reshape(-1, cin).T @ dy.reshape(-1, dy.shape[3])
    return dw


def error(args):
    rng = np.random.default_rng(1)
    eps = np.finfo(np.float32).eps
    print("error against float64: max |err| / max |ref|, and max |err| / sum |x| |w| in float32 epsilons")
    header = f"{'channels':>8s} {'pass':17s}" + "".join(f" {m + ' rel':>10s} {m + ' eps':>8s}" for m in MODES)
    print(header)
    print("-" * len(header))
    for c, n, hw in [(64, 8, 14), (128, 8, 14), (512, 2, 14)]:
        x = rng.standard_normal((n, hw, hw, c)).astype(np.float32)
        w = (rng.standard_normal((3, 3, c, c)) / np.sqrt(9 * c)).astype(np.float32)
        dy = rng.standard_normal((n, hw, hw, c)).astype(np.float32)
        x64, w64, dy64 = (a.astype(np.float64) for a in (x, w, dy))
        flipped = w64[::-1, ::-1].transpose(0, 1, 3, 2)
        refs = {
            "forward": (ref_forward(x64, w64), ref_forward(np.abs(x64), np.abs(w64))),
            "backward_data": (ref_forward(dy64, flipped), ref_forward(np.abs(dy64), np.abs(flipped))),
            # A weight-gradient entry's error scales with its channel pair's
            # largest tap (a sum over tiles), as in the tests.
            "backward_weights": (ref_weights(x64, dy64),
                                 np.broadcast_to(ref_weights(np.abs(x64), np.abs(dy64)).max(axis=(0, 1)),
                                                 (3, 3, c, c))),
        }
        mine = calls(x, w, dy)
        for phase in PASSES:
            ref, bound = refs[phase]
            row = f"{c:8d} {phase:17s}"
            for mode in MODES.values():
                err = np.abs(with_mode(mode, mine[phase]).astype(np.float64) - ref)
                row += f" {err.max() / np.abs(ref).max():10.2e} {(err / bound).max() / eps:8.2f}"
            print(row, flush=True)


def step(args):
    from cnnc.applications import CompactResNet
    cnnc.set_num_threads(1)
    cnnc.set_deterministic(True)
    rng = np.random.default_rng(2)
    model = CompactResNet(width=64, blocks=(2, 2))
    model.compile(optimizer=cnnc.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
                  loss=cnnc.losses.SparseCategoricalCrossentropy(label_smoothing=0.1))
    x = rng.random((128, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 128)
    for _ in range(2):
        model.train_on_batch(x, y)
    times = []
    for _ in range(args.rounds):
        t0 = time.process_time()
        model.train_on_batch(x, y)
        times.append(time.process_time() - t0)
    print(f"CompactResNet(64, (2, 2)) train step, batch 128, 1 thread, deterministic: "
          f"best {min(times) * 1e3:.1f} ms, median {np.median(times) * 1e3:.1f} ms CPU "
          f"({128 / min(times):.0f} img/s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", action="store_true", help="the speed table (the default)")
    parser.add_argument("--error", action="store_true", help="the error table")
    parser.add_argument("--step", action="store_true", help="the training step of the best recipe's network")
    parser.add_argument("--filter", default="", help="only the speed cases whose name contains this")
    parser.add_argument("--rounds", type=int, default=5, help="timed calls per algorithm and pass")
    args = parser.parse_args()
    if args.error:
        error(args)
    if args.step:
        step(args)
    if args.speed or not (args.error or args.step):
        speed(args)


if __name__ == "__main__":
    main()
