"""Two builds of the C library, op by op: which one is faster, and by how much.

    python benchmarks/bench_ab.py BEFORE/libcnnc.so AFTER/libcnnc.so [--isa avx2] [--threads 1]
                                  [--rounds 40] [--filter 'soft*' adam] [--offset 16] [--deterministic]
                                  [--list]

Build each tree's C library on its own (the README shows how) and pass the
two libcnnc.so; each runs its best ISA path unless --isa names one. Both are loaded into this one process (ctypes, each with its
own symbols) and called alternately on the same 64-byte-aligned buffers, the
order swapped every round, so that whatever else runs on the machine meets
both alike; each op keeps its best time over the rounds. With one thread the
clock is the calling thread's CPU time (time taken from us by other processes
does not count), else wall time. Ratios within about 2% are noise even so.

This compares the library against itself; bench_activation.py, bench_layers.py
and bench_optimizers.py compare it with PyTorch.
"""
import argparse
import ctypes
import fnmatch
import time

import numpy as np

F32P = ctypes.POINTER(ctypes.c_float)
I64 = ctypes.c_int64
ISAS = {"scalar": 0, "avx2": 1, "avx512": 2, "neon": 3}

ACTIVATIONS = ["relu", "leaky_relu", "elu", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu", "softplus",
               "relu6", "hard_sigmoid", "hard_swish", "selu"]


class PoolParams(ctypes.Structure):
    _fields_ = [(name, I64) for name in ("n", "h", "w", "c", "pool_h", "pool_w", "stride_h", "stride_w",
                                         "pad_top", "pad_bottom", "pad_left", "pad_right")]


class ConvDesc(ctypes.Structure):
    _fields_ = [(name, I64) for name in ("batch", "in_h", "in_w", "in_channels", "out_channels", "kernel_h",
                                         "kernel_w", "stride_h", "stride_w", "dilation_h", "dilation_w",
                                         "pad_top", "pad_bottom", "pad_left", "pad_right", "groups")]


class OptimCommon(ctypes.Structure):
    _fields_ = [("lr", ctypes.c_float), ("l1", ctypes.c_float), ("l2", ctypes.c_float),
                ("weight_decay", ctypes.c_float), ("decoupled", ctypes.c_int), ("grad_scale", ctypes.c_float),
                ("clip_value", ctypes.c_float), ("torch_style", ctypes.c_int)]


OFFSET = 0  # bytes past a 64-byte boundary where every array starts (--offset)


def aligned(shape, rng, scale=1.0, positive=False):
    """A float32 array OFFSET bytes past a 64-byte boundary, filled with
    normal (or uniform positive) values."""
    count = int(np.prod(shape))
    raw = np.empty(count + 32, np.float32)
    start = ((-raw.ctypes.data % 64) + OFFSET) // 4
    a = raw[start:start + count].reshape(shape)
    a[...] = rng.uniform(0.05, 1.0, shape) if positive else rng.standard_normal(shape) * scale
    return a


def ptr(a):
    return a.ctypes.data_as(F32P) if a is not None else None


def cases(size, rng):
    """(name, make) pairs; make(lib) returns a zero-argument call of lib."""
    x = aligned(size, rng, 3.0)
    dy = aligned(size, rng)
    out = aligned(size, rng)
    probs = aligned(size, rng, positive=True)
    result = []
    for kind, name in enumerate(ACTIVATIONS):
        alpha = 0.3 if name == "leaky_relu" else 1.0
        result.append((f"{name}", lambda L, k=kind, a=alpha: (lambda: L.cnnc_activation_forward(
            k, size, ptr(x), ptr(out), ctypes.c_float(a)))))
        result.append((f"{name}_bwd", lambda L, k=kind, a=alpha: (lambda: L.cnnc_activation_backward(
            k, size, ptr(x), ptr(dy), ptr(out), ctypes.c_float(a)))))
    cols = 1000
    rows = size // cols
    for name, fn in (("softmax", "cnnc_softmax_forward"), ("log_softmax", "cnnc_log_softmax_forward")):
        result.append((name, lambda L, fn=fn: (lambda: getattr(L, fn)(rows, cols, ptr(x), ptr(out)))))
    for name, fn in (("softmax_bwd", "cnnc_softmax_backward"), ("log_softmax_bwd", "cnnc_log_softmax_backward")):
        result.append((name, lambda L, fn=fn: (lambda: getattr(L, fn)(rows, cols, ptr(probs), ptr(dy),
                                                                        ptr(out)))))

    # Elementwise and dropout.
    mask = np.empty(size, np.uint8)
    result += [
        ("add", lambda L: (lambda: L.cnnc_add_forward(size, ptr(x), ptr(dy), ptr(out)))),
        ("multiply", lambda L: (lambda: L.cnnc_multiply_forward(size, ptr(x), ptr(dy), ptr(out)))),
        ("bias_add", lambda L: (lambda: L.cnnc_bias_add_forward(size // 256, 256, ptr(x), ptr(dy), ptr(out)))),
        ("bias_add_bwd", lambda L: (lambda: L.cnnc_bias_add_backward(size // 256, 256, ptr(x), ptr(out)))),
        ("dropout", lambda L: (lambda: L.cnnc_dropout_forward(size, ctypes.c_float(0.3), ctypes.c_uint64(1),
                                                              ctypes.c_uint64(0), ptr(x), ptr(out),
                                                              mask.ctypes.data_as(ctypes.c_void_p)))),
        ("dropout_bwd", lambda L: (lambda: L.cnnc_dropout_backward(size, ctypes.c_float(0.3), ptr(dy),
                                                                   mask.ctypes.data_as(ctypes.c_void_p),
                                                                   ptr(out)))),
    ]

    # Pooling on (32, 64, 64, 32), about 4M elements.
    n, h, w, c = 32, 64, 64, 32
    px = aligned((n, h, w, c), rng)
    pdx = aligned((n, h, w, c), rng)
    pdy = aligned((n, h // 2, w // 2, c), rng)
    py = aligned((n, h // 2, w // 2, c), rng)
    gy = aligned((n, c), rng)
    pool = PoolParams(n, h, w, c, 2, 2, 2, 2, 0, 0, 0, 0)
    pool3 = PoolParams(n, h, w, c, 3, 3, 2, 2, 0, 1, 0, 1)
    for label, p in (("2x2", pool), ("3x3s2", pool3)):
        result += [
            (f"maxpool{label}", lambda L, p=p: (lambda: L.cnnc_max_pool2d_forward(ctypes.byref(p), ptr(px), ptr(py)))),
            (f"maxpool{label}_bwd", lambda L, p=p: (lambda: L.cnnc_max_pool2d_backward(
                ctypes.byref(p), ptr(px), ptr(pdy), ptr(pdx)))),
            (f"avgpool{label}", lambda L, p=p: (lambda: L.cnnc_avg_pool2d_forward(ctypes.byref(p), ptr(px), ptr(py)))),
            (f"avgpool{label}_bwd", lambda L, p=p: (lambda: L.cnnc_avg_pool2d_backward(
                ctypes.byref(p), ptr(pdy), ptr(pdx)))),
        ]
    result += [
        ("global_avgpool", lambda L: (lambda: L.cnnc_global_avg_pool2d_forward(n, h, w, c, ptr(px), ptr(gy)))),
        ("global_avgpool_bwd", lambda L: (lambda: L.cnnc_global_avg_pool2d_backward(n, h, w, c, ptr(gy), ptr(pdx)))),
        ("global_maxpool", lambda L: (lambda: L.cnnc_global_max_pool2d_forward(n, h, w, c, ptr(px), ptr(gy)))),
        ("global_maxpool_bwd", lambda L: (lambda: L.cnnc_global_max_pool2d_backward(
            n, h, w, c, ptr(px), ptr(gy), ptr(pdx)))),
    ]

    # Convolutions: depthwise 3x3 (its own template), 3x3 stride 1 with 64
    # channels (Winograd where chosen), 1x1 (the GEMM tiles), all at batch 8;
    # the best Fashion-MNIST recipe's 3x3 layers at its batch, 128 (F(4x4)).
    convs = {
        "depthwise3x3": ConvDesc(8, 56, 56, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 64),
        "depthwise3x3s2": ConvDesc(8, 56, 56, 64, 64, 3, 3, 2, 2, 1, 1, 0, 1, 0, 1, 64),
        "conv3x3": ConvDesc(8, 28, 28, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
        "conv1x1": ConvDesc(8, 28, 28, 128, 128, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1),
        "recipe3x3@14": ConvDesc(128, 14, 14, 64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
        "recipe3x3@7": ConvDesc(128, 7, 7, 128, 128, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1),
    }
    for name, d in convs.items():
        oh = (d.in_h + d.pad_top + d.pad_bottom - d.kernel_h) // d.stride_h + 1
        ow = (d.in_w + d.pad_left + d.pad_right - d.kernel_w) // d.stride_w + 1
        cx = aligned((d.batch, d.in_h, d.in_w, d.in_channels), rng)
        cdx = aligned(cx.shape, rng)
        cw = aligned((d.kernel_h, d.kernel_w, d.in_channels // d.groups, d.out_channels), rng, 0.1)
        cdw = aligned(cw.shape, rng)
        cb = aligned(d.out_channels, rng)
        cy = aligned((d.batch, oh, ow, d.out_channels), rng)
        cdy = aligned(cy.shape, rng)
        result += [
            (name, lambda L, d=d, cx=cx, cw=cw, cb=cb, cy=cy: (lambda: L.cnnc_conv2d_forward(
                ctypes.byref(d), ptr(cx), ptr(cw), ptr(cb), ptr(cy)))),
            (f"{name}_bwd_data", lambda L, d=d, cw=cw, cdy=cdy, cdx=cdx: (lambda: L.cnnc_conv2d_backward_data(
                ctypes.byref(d), ptr(cw), ptr(cdy), ptr(cdx)))),
            (f"{name}_bwd_weights", lambda L, d=d, cx=cx, cdy=cdy, cdw=cdw, cb=cb: (
                lambda: L.cnnc_conv2d_backward_weights(ctypes.byref(d), ptr(cx), ptr(cdy), ptr(cdw), ptr(cb)))),
        ]

    # Losses on (4096, 1000) rows of logits or probabilities.
    ln, lc = size // 1000, 1000
    labels = rng.integers(0, lc, ln).astype(np.int64)
    loss = aligned(ln, rng)
    lab = labels.ctypes.data_as(ctypes.POINTER(I64))
    f = ctypes.c_float
    result += [
        ("softmax_xent", lambda L: (lambda: L.cnnc_softmax_cross_entropy(
            ln, 1, lc, ptr(x), lab, None, f(0), I64(-100), None, f(1), ptr(loss), ptr(out)))),
        ("sigmoid_xent", lambda L: (lambda: L.cnnc_sigmoid_cross_entropy(
            ln, lc, ptr(x), ptr(probs), f(0), None, f(1), ptr(loss), ptr(out)))),
        ("categorical_xent", lambda L: (lambda: L.cnnc_categorical_cross_entropy(
            ln, 1, lc, ptr(probs), lab, None, f(0), I64(-100), f(1e-7), None, f(1), ptr(loss), ptr(out)))),
        ("binary_xent", lambda L: (lambda: L.cnnc_binary_cross_entropy(
            ln, lc, ptr(probs), ptr(probs), f(0), f(1e-7), None, f(1), ptr(loss), ptr(out)))),
        ("mse", lambda L: (lambda: L.cnnc_mean_squared_error(ln, lc, ptr(x), ptr(dy), None, f(1), ptr(loss), ptr(out)))),
        ("mae", lambda L: (lambda: L.cnnc_mean_absolute_error(ln, lc, ptr(x), ptr(dy), None, f(1), ptr(loss), ptr(out)))),
    ]

    # Optimizer updates of `size` parameters (the state stays finite: tiny lr).
    param = aligned(size, rng)
    s1 = aligned(size, rng, 0.01)
    s2 = aligned(size, rng, positive=True)
    s3 = aligned(size, rng, positive=True)
    common = OptimCommon(1e-9, 0, 0, 0, 0, 1, 0, 0)
    cp = ctypes.byref(common)
    result += [
        ("sgd", lambda L: (lambda: L.cnnc_sgd_update(size, ptr(param), ptr(dy), ptr(s1), cp, f(0.9), 0))),
        ("adam", lambda L: (lambda: L.cnnc_adam_update(size, ptr(param), ptr(dy), ptr(s1), ptr(s2), None, I64(10),
                                                       cp, f(0.9), f(0.999), f(1e-7)))),
        ("rmsprop", lambda L: (lambda: L.cnnc_rmsprop_update(size, ptr(param), ptr(dy), ptr(s2), None, None, cp,
                                                             f(0.9), f(0.0), f(1e-7), 0))),
        ("adagrad", lambda L: (lambda: L.cnnc_adagrad_update(size, ptr(param), ptr(dy), ptr(s2), cp, f(1e-7)))),
        ("adadelta", lambda L: (lambda: L.cnnc_adadelta_update(size, ptr(param), ptr(dy), ptr(s2), ptr(s3), cp,
                                                               f(0.95), f(1e-7)))),
        ("adamax", lambda L: (lambda: L.cnnc_adamax_update(size, ptr(param), ptr(dy), ptr(s1), ptr(s2), I64(10),
                                                           cp, f(0.9), f(0.999), f(1e-7)))),
        ("lion", lambda L: (lambda: L.cnnc_lion_update(size, ptr(param), ptr(dy), ptr(s1), cp, f(0.9), f(0.99)))),
    ]
    return result


def load(path, isa, threads, deterministic):
    lib = ctypes.CDLL(path, mode=ctypes.RTLD_LOCAL)
    lib.cnnc_set_deterministic(int(deterministic))
    lib.cnnc_last_error.restype = ctypes.c_char_p
    if isa is not None and lib.cnnc_set_isa(ISAS[isa]) != 0:
        raise SystemExit(f"{path}: {lib.cnnc_last_error().decode()}")
    if lib.cnnc_set_num_threads(threads) != 0:
        raise SystemExit(f"{path}: {lib.cnnc_last_error().decode()}")
    lib.cnnc_isa_name.restype = ctypes.c_char_p
    return lib


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="libcnnc.so of the first build (the reference)")
    parser.add_argument("after", help="libcnnc.so of the second build")
    parser.add_argument("--isa", choices=sorted(ISAS), help="the path both run (default: each one's best)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--size", type=int, default=1 << 22, help="elements of the elementwise and optimizer ops")
    parser.add_argument("--filter", nargs="+", default=["*"], help="shell patterns of op names")
    parser.add_argument("--offset", type=int, default=0, choices=range(0, 64, 4), metavar="BYTES",
                        help="start every array this many bytes past a 64-byte boundary (NumPy's own "
                             "large arrays often start 16 bytes past one)")
    parser.add_argument("--deterministic", action="store_true",
                        help="run both in deterministic mode (cnnc_set_deterministic)")
    parser.add_argument("--list", action="store_true", help="print the op names and stop")
    args = parser.parse_args()
    global OFFSET
    OFFSET = args.offset

    all_cases = cases(args.size, np.random.default_rng(0))
    if args.list:
        print(" ".join(name for name, _ in all_cases))
        return
    picked = [(name, make) for name, make in all_cases if any(fnmatch.fnmatch(name, p) for p in args.filter)]
    libs = [load(path, args.isa, args.threads, args.deterministic) for path in (args.before, args.after)]
    clock = time.thread_time_ns if args.threads == 1 else time.perf_counter_ns
    calls = []
    for name, make in picked:
        pair = []
        for lib in libs:
            fn = make(lib)
            try:
                status = fn()
            except AttributeError as error:  # an entry point the older build lacks
                status, why = -1, str(error)
            else:
                why = lib.cnnc_last_error().decode() if status != 0 else ""
            if status != 0:
                pair = None
                print(f"{name}: skipped ({why})")
                break
            pair.append(fn)
        if pair:
            calls.append((name, pair))

    best = {name: [float("inf"), float("inf")] for name, _ in calls}
    for r in range(args.rounds):
        order = (0, 1) if r % 2 == 0 else (1, 0)
        for name, pair in calls:
            for side in order:
                start = clock()
                pair[side]()
                best[name][side] = min(best[name][side], clock() - start)

    isa_names = " / ".join(lib.cnnc_isa_name().decode() for lib in libs)
    print(f"{isa_names}, {args.threads} thread(s), best of {args.rounds} alternating rounds "
          f"({'thread CPU' if args.threads == 1 else 'wall'} time), ms")
    print(f"{'op':26s} {'before':>9s} {'after':>9s} {'after/before':>12s}")
    for name, _ in calls:
        a, b = best[name]
        print(f"{name:26s} {a / 1e6:9.4g} {b / 1e6:9.4g} {b / a:12.3f}")


if __name__ == "__main__":
    main()
