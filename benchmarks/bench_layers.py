"""Forward and backward time of cnnc kernels against PyTorch on the CPU.

Shapes are those of the small MNIST CNN in examples/, of ResNet-18
(batch 32) and of the best Fashion-MNIST recipe's 3x3 layers (batch 128). Each case times cnnc and PyTorch (channels_last tensors, same
thread count, same run) and prints the best of several repetitions with the
ratio torch / cnnc (above 1: cnnc is faster).

    python benchmarks/bench_layers.py [--quick] [--threads 1 2] [--filter maxpool]

With CNNC_ISA=avx2 on an AVX-512 machine, PyTorch still runs its AVX-512
kernels; for a like-for-like ratio limit it too:
ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 CNNC_ISA=avx2 python ...

Adding a case: write a function that takes (rng, quick) and returns a dict
with the callables "cnnc_forward", "torch_forward" and optionally
"cnnc_<phase>", "torch_<phase>" for the other PHASES (each taking no
argument), then list it in CASES with a name and a group. Inputs are built
once, outside the timing.
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


def conv2d_case(hw, cin, cout, k, stride=1, pad=0, batch=None, groups=1):
    """Conv2D with bias on an (hw x hw x cin) input, explicit symmetric padding
    (the torch convention, so both sides compute the same shapes); the
    backward passes are timed separately: data (dx) and weights (dw, db).
    groups == cin is a depthwise convolution."""
    def setup(rng, quick):
        n = batch or _batch(quick)
        x = _nhwc(rng, (n, hw, hw, cin))
        fan_in = k * k * cin // groups
        w = (rng.standard_normal((k, k, cin // groups, cout), dtype=np.float32) / np.sqrt(fan_in)).astype(np.float32)
        b = rng.standard_normal(cout, dtype=np.float32)
        opts = dict(strides=stride, padding=pad, groups=groups)
        y = cnnc.ops.conv2d(x, w, b, **opts)
        dy = _nhwc(rng, y.shape)
        out = {
            "cnnc_forward": lambda: cnnc.ops.conv2d(x, w, b, **opts),
            "cnnc_backward_data": lambda: cnnc.ops.conv2d_backward(x, w, dy, need_dw=False, **opts),
            "cnnc_backward_weights": lambda: cnnc.ops.conv2d_backward(x, w, dy, need_dx=False, **opts),
        }
        if torch is not None:
            tx, tdy = _torch_nhwc(x), _torch_nhwc(dy)
            tw = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))
            tb = torch.from_numpy(b)
            conv_args = ([cout], [stride] * 2, [pad] * 2, [1, 1], False, [0, 0], groups)

            def torch_forward():
                with torch.no_grad():
                    return F.conv2d(tx, tw, tb, stride=stride, padding=pad, groups=groups)

            out["torch_forward"] = torch_forward
            out["torch_backward_data"] = lambda: torch.ops.aten.convolution_backward(
                tdy, tx, tw, *conv_args, [True, False, False])
            out["torch_backward_weights"] = lambda: torch.ops.aten.convolution_backward(
                tdy, tx, tw, *conv_args, [False, True, True])
        return out
    return setup


def _autograd_backward(forward, tx, tdy):
    """A callable timing only the backward of forward(tx)."""
    def run():
        tx.grad = None
        y = forward(tx)
        y.backward(tdy)
    return run


# ---- losses and optimizer updates ------------------------------------------

def softmax_xent_case(classes):
    """forward: the per-sample loss alone; backward: loss and gradient of the
    batch mean together (cnnc's fused call against torch's forward+backward)."""
    def setup(rng, quick):
        n = _batch(quick)
        x = rng.standard_normal((n, classes), dtype=np.float32)
        y = rng.integers(0, classes, n)
        out = {
            "cnnc_forward": lambda: cnnc.ops.softmax_cross_entropy(x, y, need_grad=False),
            "cnnc_backward": lambda: cnnc.ops.softmax_cross_entropy(x, y, grad_scale=1.0 / n),
        }
        if torch is not None:
            tx, ty = torch.from_numpy(x), torch.from_numpy(y)
            tg = tx.detach().requires_grad_(True)

            def both():
                tg.grad = None
                F.cross_entropy(tg, ty).backward()
            out["torch_forward"] = lambda: F.cross_entropy(tx, ty, reduction="none")
            out["torch_backward"] = both
        return out
    return setup


def mnist_cnn_params():
    """Parameter shapes of the classic MNIST CNN (PyTorch example): 1.2M."""
    return [(3, 3, 1, 32), (32,), (3, 3, 32, 64), (64,), (9216, 128), (128,), (128, 10), (10,)]


def resnet18_params():
    """Parameter shapes of ResNet-18 (convolutions, batch-norm scale and
    offset, classifier): 11.7M in 62 arrays."""
    shapes = [(7, 7, 3, 64), (64,), (64,)]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for block in range(2):
            first_in = cin if block == 0 else cout
            shapes += [(3, 3, first_in, cout), (cout,), (cout,), (3, 3, cout, cout), (cout,), (cout,)]
            if block == 0 and (stride != 1 or cin != cout):
                shapes += [(1, 1, cin, cout), (cout,), (cout,)]
        cin = cout
    return shapes + [(512, 1000), (1000,)]


def optimizer_case(kind, shapes, torch_impl):
    """One update of every parameter array: cnnc's fused kernel called per
    array against torch.optim's step (torch_impl "foreach" or "fused")."""
    def setup(rng, quick):
        params = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
        grads = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
        state = [[np.zeros_like(p) for _ in range(2)] for p in params]
        if kind == "adam":
            def mine():
                for p, g, (m, v) in zip(params, grads, state):
                    cnnc.ops.adam_update(p, g, m, v, 1, 1e-3)
        else:
            def mine():
                for p, g, (v, _) in zip(params, grads, state):
                    cnnc.ops.sgd_update(p, g, v, 1e-3, momentum=0.9)
        out = {"cnnc_forward": mine}
        if torch is not None:
            tp = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in params]
            for p, g in zip(tp, grads):
                p.grad = torch.from_numpy(g)
            opts = {torch_impl: True}
            if kind == "adam":
                opt = torch.optim.Adam(tp, lr=1e-3, **opts)
            else:
                opt = torch.optim.SGD(tp, lr=1e-3, momentum=0.9, **opts)
            out["torch_forward"] = opt.step
        return out
    return setup


def pool_case(h, c, k, s, p, kind="max"):
    """k x k pooling with stride s; p = symmetric padding (TensorFlow's same
    padding equals it for these shapes)."""
    padding = "valid" if p == 0 else ((p, p), (p, p))

    def setup(rng, quick):
        x = _nhwc(rng, (_batch(quick), h, h, c))
        fwd = cnnc.ops.max_pool2d if kind == "max" else cnnc.ops.avg_pool2d
        y = fwd(x, k, s, padding)
        dy = _nhwc(rng, y.shape)
        if kind == "max":
            back = lambda: cnnc.ops.max_pool2d_backward(x, dy, k, s, padding)
        else:
            back = lambda: cnnc.ops.avg_pool2d_backward(dy, x.shape, k, s, padding)
        out = {"cnnc_forward": lambda: fwd(x, k, s, padding), "cnnc_backward": back}
        if torch is not None:
            tx, tdy = _torch_nhwc(x), _torch_nhwc(dy)
            if kind == "max":
                # Training needs the indices; the backward uses them.
                _, idx = torch.ops.aten.max_pool2d_with_indices(tx, [k, k], [s, s], [p, p])
                out["torch_forward"] = lambda: torch.ops.aten.max_pool2d_with_indices(tx, [k, k], [s, s], [p, p])
                out["torch_backward"] = lambda: torch.ops.aten.max_pool2d_with_indices_backward(
                    tdy, tx, [k, k], [s, s], [p, p], [1, 1], False, idx)
            else:
                out["torch_forward"] = lambda: F.avg_pool2d(tx, k, s, p, count_include_pad=False)
                out["torch_backward"] = lambda: torch.ops.aten.avg_pool2d_backward(
                    tdy, tx, [k, k], [s, s], [p, p], False, False, None)
        return out
    return setup


def global_avg_pool_case(h, c):
    def setup(rng, quick):
        x = _nhwc(rng, (_batch(quick), h, h, c))
        dy = rng.standard_normal((x.shape[0], c), dtype=np.float32)
        out = {"cnnc_forward": lambda: cnnc.ops.global_avg_pool2d(x),
               "cnnc_backward": lambda: cnnc.ops.global_avg_pool2d_backward(dy, x.shape)}
        if torch is not None:
            tx = _torch_nhwc(x)
            tdy = torch.from_numpy(dy)[:, :, None, None]
            out["torch_forward"] = lambda: F.adaptive_avg_pool2d(tx, 1)
            out["torch_backward"] = lambda: torch.ops.aten._adaptive_avg_pool2d_backward(tdy, tx)
        return out
    return setup


def batch_norm_relu_case(h, c):
    """Training-mode batch norm followed by ReLU, as in every ResNet block."""
    def setup(rng, quick):
        x = _nhwc(rng, (_batch(quick), h, h, c))
        dy = _nhwc(rng, x.shape)
        gamma = np.ones(c, np.float32)
        beta = np.zeros(c, np.float32)
        mm, mv = np.zeros(c, np.float32), np.ones(c, np.float32)
        # The fused form: one pass normalizes and rectifies, and the backward
        # applies the ReLU mask inside its two passes.
        y, mean, inv_std = cnnc.ops.batch_norm_train(x, gamma, beta, mm, mv, activation="relu")

        def forward():
            return cnnc.ops.batch_norm_train(x, gamma, beta, mm, mv, activation="relu")

        def backward():
            return cnnc.ops.batch_norm_backward(x, dy, gamma, mean, inv_std, relu_output=y)

        out = {"cnnc_forward": forward, "cnnc_backward": backward}
        if torch is not None:
            tx, tdy = _torch_nhwc(x), _torch_nhwc(dy)
            tg, tb = torch.from_numpy(gamma), torch.from_numpy(beta)
            rm, rv = torch.zeros(c), torch.ones(c)
            ty, save_mean, save_invstd = torch.ops.aten.native_batch_norm(tx, tg, tb, rm, rv, True, 0.01, 1e-3)
            ty = torch.relu(ty)

            def torch_forward():
                z = torch.ops.aten.native_batch_norm(tx, tg, tb, rm, rv, True, 0.01, 1e-3)[0]
                return torch.relu_(z)

            def torch_backward():
                g = torch.ops.aten.threshold_backward(tdy, ty, 0.0)
                return torch.ops.aten.native_batch_norm_backward(g, tx, tg, rm, rv, save_mean, save_invstd,
                                                                 True, 1e-3, [True, True, True])

            out["torch_forward"] = torch_forward
            out["torch_backward"] = torch_backward
        return out
    return setup


def add_case(h, c):
    def setup(rng, quick):
        a = _nhwc(rng, (_batch(quick), h, h, c))
        b = _nhwc(rng, a.shape)
        out = {"cnnc_forward": lambda: cnnc.ops.add(a, b)}
        if torch is not None:
            ta, tb = _torch_nhwc(a), _torch_nhwc(b)
            out["torch_forward"] = lambda: ta + tb
        return out
    return setup


def grid_sample_case(h, c, out_h):
    """Bilinear sampling at a random affine grid: forward, and the backward
    to both the image and the grid (torch: autograd of grid_sample)."""
    def setup(rng, quick):
        n = _batch(quick)
        x = _nhwc(rng, (n, h, h, c))
        theta = (np.eye(2, 3)[None] + 0.2 * rng.standard_normal((n, 2, 3))).astype(np.float32)
        grid = cnnc.ops.affine_grid(theta, (n, out_h, out_h, c))
        dy = _nhwc(rng, (n, out_h, out_h, c))
        out = {"cnnc_forward": lambda: cnnc.ops.grid_sample(x, grid),
               "cnnc_backward": lambda: cnnc.ops.grid_sample_backward(x, grid, dy)}
        if torch is not None:
            tx, tg = _torch_nhwc(x, True), torch.from_numpy(grid).requires_grad_(True)
            tdy = _torch_nhwc(dy)

            def forward(t):
                return F.grid_sample(t, tg, mode="bilinear", padding_mode="zeros",
                                     align_corners=False)

            def backward():
                tx.grad = tg.grad = None
                forward(tx).backward(tdy)
            out["torch_forward"] = lambda: forward(tx.detach())
            out["torch_backward"] = backward
        return out
    return setup


CASES = [
    # (group, name, setup)
    ("conv", "mnist conv 3x3 1->32 @28", conv2d_case(28, 1, 32, 3)),
    ("conv", "mnist conv 3x3 32->64 @13", conv2d_case(13, 32, 64, 3)),
    ("conv", "cifar conv 3x3 3->32 @32 same", conv2d_case(32, 3, 32, 3, 1, 1)),
    ("conv", "fashion 3x3 64->64 @14 b128", conv2d_case(14, 64, 64, 3, 1, 1, batch=128)),
    ("conv", "fashion 3x3 128->128 @7 b128", conv2d_case(7, 128, 128, 3, 1, 1, batch=128)),
    ("conv", "resnet18 conv1 7x7/2 3->64 @224", conv2d_case(224, 3, 64, 7, 2, 3)),
    ("conv", "resnet18 3x3 64->64 @56", conv2d_case(56, 64, 64, 3, 1, 1)),
    ("conv", "resnet18 3x3/2 64->128 @56", conv2d_case(56, 64, 128, 3, 2, 1)),
    ("conv", "resnet18 1x1/2 64->128 @56", conv2d_case(56, 64, 128, 1, 2, 0)),
    ("conv", "resnet18 3x3 128->128 @28", conv2d_case(28, 128, 128, 3, 1, 1)),
    ("conv", "resnet18 3x3/2 128->256 @28", conv2d_case(28, 128, 256, 3, 2, 1)),
    ("conv", "resnet18 1x1/2 128->256 @28", conv2d_case(28, 128, 256, 1, 2, 0)),
    ("conv", "resnet18 3x3 256->256 @14", conv2d_case(14, 256, 256, 3, 1, 1)),
    ("conv", "resnet18 3x3/2 256->512 @14", conv2d_case(14, 256, 512, 3, 2, 1)),
    ("conv", "resnet18 1x1/2 256->512 @14", conv2d_case(14, 256, 512, 1, 2, 0)),
    ("conv", "resnet18 3x3 512->512 @7", conv2d_case(7, 512, 512, 3, 1, 1)),
    ("conv", "resnet50 3x3/2 128->128 @56", conv2d_case(56, 128, 128, 3, 2, 1)),
    ("conv", "resnet50 3x3/2 256->256 @28", conv2d_case(28, 256, 256, 3, 2, 1)),
    ("conv", "resnet50 3x3/2 512->512 @14", conv2d_case(14, 512, 512, 3, 2, 1)),
    ("conv", "resnet50 1x1/2 512->1024 @28", conv2d_case(28, 512, 1024, 1, 2, 0)),
    ("conv", "resnet50 1x1/2 1024->2048 @14", conv2d_case(14, 1024, 2048, 1, 2, 0)),
    ("conv", "resnet50 1x1 2048->512 @7", conv2d_case(7, 2048, 512, 1, 1, 0)),
    ("depthwise", "depthwise 3x3 @56x56x128", conv2d_case(56, 128, 128, 3, 1, 1, groups=128)),
    ("depthwise", "depthwise 3x3 @28x28x256", conv2d_case(28, 256, 256, 3, 1, 1, groups=256)),
    ("depthwise", "depthwise 3x3 @112x112x32", conv2d_case(112, 32, 32, 3, 1, 1, groups=32)),
    ("depthwise", "depthwise 3x3/2 @56x56x128", conv2d_case(56, 128, 128, 3, 2, 1, groups=128)),
    ("depthwise", "depthwise 5x5 @14x14x512", conv2d_case(14, 512, 512, 5, 1, 2, groups=512)),
    ("relu", "relu 112x112x64", relu_case((112, 112, 64))),
    ("relu", "relu 56x56x64", relu_case((56, 56, 64))),
    ("pool", "mnist maxpool 2 @26x26x32", pool_case(26, 32, 2, 2, 0)),
    ("pool", "mnist maxpool 2 @11x11x64", pool_case(11, 64, 2, 2, 0)),
    ("pool", "resnet18 maxpool 3/2 @112x112x64", pool_case(112, 64, 3, 2, 1)),
    ("pool", "avgpool 2 @56x56x64", pool_case(56, 64, 2, 2, 0, "avg")),
    ("pool", "resnet18 global avgpool @7x7x512", global_avg_pool_case(7, 512)),
    ("bn", "resnet18 bn+relu @112x112x64", batch_norm_relu_case(112, 64)),
    ("bn", "resnet18 bn+relu @56x56x64", batch_norm_relu_case(56, 64)),
    ("bn", "resnet18 bn+relu @28x28x128", batch_norm_relu_case(28, 128)),
    ("bn", "resnet18 bn+relu @14x14x256", batch_norm_relu_case(14, 256)),
    ("bn", "resnet18 bn+relu @7x7x512", batch_norm_relu_case(7, 512)),
    ("add", "resnet18 residual add @56x56x64", add_case(56, 64)),
    ("loss", "softmax-CE 32x10", softmax_xent_case(10)),
    ("spatial", "grid_sample 42->28 c=1 (STN example)", grid_sample_case(42, 1, 28)),
    ("spatial", "grid_sample 32->32 c=64", grid_sample_case(32, 64, 32)),
    ("loss", "softmax-CE 32x1000", softmax_xent_case(1000)),
    ("optim", "adam mnist-cnn 1.2M vs fused", optimizer_case("adam", mnist_cnn_params(), "fused")),
    ("optim", "adam mnist-cnn 1.2M vs foreach", optimizer_case("adam", mnist_cnn_params(), "foreach")),
    ("optim", "adam resnet18 11.7M vs fused", optimizer_case("adam", resnet18_params(), "fused")),
    ("optim", "sgd-mom resnet18 11.7M vs fused", optimizer_case("sgd", resnet18_params(), "fused")),
]


# ---- timing and table ---------------------------------------------------------

PHASES = ("forward", "backward", "backward_data", "backward_weights")

CLOCK = time.perf_counter


def best_time(fn, quick):
    """Fastest single call, in seconds: on a shared machine the minimum is
    the run least disturbed by other processes."""
    fn()  # warm up: workspaces, page faults, first-touch
    min_calls, budget, max_calls = (3, 0.05, 50) if quick else (7, 0.3, 200)
    best, calls, start = float("inf"), 0, time.perf_counter()
    while calls < min_calls or (time.perf_counter() - start < budget and calls < max_calls):
        t0 = CLOCK()
        fn()
        best = min(best, CLOCK() - t0)
        calls += 1
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
    parser.add_argument("--cpu-time", action="store_true",
                        help="time with the calling thread's CPU time (only with --threads 1; both libraries "
                             "then run on the calling thread), which ignores time spent descheduled on a busy "
                             "machine")
    args = parser.parse_args()
    if args.cpu_time:
        if args.threads != [1]:
            parser.error("--cpu-time needs --threads 1")
        global CLOCK
        CLOCK = time.thread_time

    rng = np.random.default_rng(0)
    print(f"cnnc {cnnc.__version__} isa={cnnc.isa()}; torch {torch.__version__ if torch else 'absent'}; "
          f"batch {_batch(args.quick)}")
    header = f"{'case':34s} {'thr':>3s} {'pass':16s} {'cnnc ms':>9s} {'torch ms':>9s} {'torch/cnnc':>10s}"
    print(header)
    print("-" * len(header))
    for group, name, setup in CASES:
        if args.filter and args.filter not in group and args.filter not in name:
            continue
        calls = setup(rng, args.quick)
        for threads in args.threads:
            set_threads(threads)
            for phase in PHASES:
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
                print(f"{name:34s} {threads:3d} {phase:16s} {t_cnnc * 1e3:9.3f} {torch_ms} {ratio}", flush=True)


if __name__ == "__main__":
    main()
