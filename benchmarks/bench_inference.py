"""Inference speed: cnnc's predict (the C model runtime, which folds batch
norm, packs the weights once, fuses residual adds and activations into the
layers' output stage and plans its buffers), the same runtime called
directly as a C program calls it (cnnc_model_predict: no Python batching and
no check of the Python weights for changes), the same model run layer by
layer in Python, PyTorch eager, and onnxruntime on the same architecture
exported from PyTorch, all on the same number of threads. ResNet-50 and a
MobileNet (224 x 224 x 3), and the MNIST CNN; ratios are onnxruntime's time
over cnnc's (> 1: cnnc is faster).

Usage: python -P benchmarks/bench_inference.py [--threads N] [--batches 1 8 32] [--repeats 5]
       [--rounds 5] [--settle 0.2] [--models resnet50 mobilenet mnist] [--cpu-time]
       [--skip layers torch] [--profile]

How the libraries are timed: in alternating blocks, never call by call.
Each round runs a block of --repeats calls of predict, then of the C API,
PyTorch and onnxruntime, --rounds times; each column is the best call of
all rounds, and the last two columns are the ratios of the median calls.
Alternating spreads the machine's slow minutes over every library, and the
median shows whether the best calls tell the typical story. Before each
block the process sleeps --settle seconds: a runtime's worker threads keep
spinning on their cores after its last call (onnxruntime's for about 30 ms
of CPU time; cnnc's libgomp workers for some microseconds), and a block
started in that time shares its cores with them (measured: call by call
interleaved, cnnc at 2 threads ran about 2x slower next to onnxruntime's
spinning workers). The Python layers column is slow and is timed apart,
best of --repeats. A note under a row says how many of cnnc's calls its
adaptive team (README, "Busy cores") ran on fewer threads than asked,
having seen other work on the cores: those calls time the load, not the
code (cnnc.set_adaptive_team(False) keeps the whole team).

--cpu-time (1 thread only) times each call by the CPU time of the calling
thread instead of the wall clock: on a machine other jobs load, the wall
clock counts the time they hold the core, the thread's CPU time does not
(caches shared with them still slow everyone). Every library runs the
single-threaded work on the calling thread, so the comparison stays fair.
--skip leaves out the slow columns that do not enter the onnxruntime ratios
(the Python layers, PyTorch eager); they print as nan.

--profile prints, after each model and batch, the time of every node of
cnnc's runtime (cnnc_model_predict_profile) beside onnxruntime's own
profile of the same network (SessionOptions.enable_profiling), the k-th
convolution or dense node of one paired with the k-th of the other; both
the best of --repeats runs per node. cnnc's column is the calling thread's
CPU time with --cpu-time, else the wall clock; onnxruntime's profile has
only the wall clock, so on a loaded machine its column also counts the
time other jobs held the core (best-of keeps that small). The sum of the
best time of each node is below any one call's time (each node's best
comes from a different call), the more so the noisier the machine.
"""
import argparse
import json
import os
import tempfile
import time

import numpy as np

import cnnc
from cnnc import applications
from cnnc.models import inference


CLOCK = time.perf_counter


def best_ms(fn, repeats):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = CLOCK()
        fn()
        best = min(best, CLOCK() - t0)
    return best * 1e3


def alternating_ms(fns, repeats, rounds, settle):
    """{name: (best ms, median ms)} of the callables in ``fns``, run in
    alternating blocks of ``repeats`` calls, ``rounds`` times, each block
    after ``settle`` seconds of sleep (see the module docstring)."""
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # first calls pack, allocate and start threads
    for _ in range(rounds):
        for name, fn in fns.items():
            time.sleep(settle)
            for _ in range(repeats):
                t0 = CLOCK()
                fn()
                times[name].append(CLOCK() - t0)
    return {name: (min(t) * 1e3, float(np.median(t)) * 1e3) for name, t in times.items()}


def torch_resnet50(torch):
    """Keras's ResNet50 layout in PyTorch (stride on the first 1x1, biased convs)."""
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, cin, filters, stride, shortcut):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, filters, 1, stride), nn.BatchNorm2d(filters, eps=1.001e-5), nn.ReLU(),
                nn.Conv2d(filters, filters, 3, 1, 1), nn.BatchNorm2d(filters, eps=1.001e-5), nn.ReLU(),
                nn.Conv2d(filters, 4 * filters, 1), nn.BatchNorm2d(4 * filters, eps=1.001e-5))
            self.shortcut = (nn.Sequential(nn.Conv2d(cin, 4 * filters, 1, stride),
                                           nn.BatchNorm2d(4 * filters, eps=1.001e-5)) if shortcut else nn.Identity())

        def forward(self, x):
            return torch.relu(self.body(x) + self.shortcut(x))

    mods = [nn.ZeroPad2d(3), nn.Conv2d(3, 64, 7, 2), nn.BatchNorm2d(64, eps=1.001e-5), nn.ReLU(),
            nn.ZeroPad2d(1), nn.MaxPool2d(3, 2)]
    cin = 64
    for stage, (count, filters) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
        for i in range(count):
            mods.append(Block(cin, filters, 2 if i == 0 and stage > 0 else 1, i == 0))
            cin = 4 * filters
    mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000), nn.Softmax(dim=1)]
    return nn.Sequential(*mods).eval()


def torch_mnist(torch):
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10),
                         nn.Softmax(dim=1)).eval()


MOBILENET_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [
    (1024, 2), (1024, 1)]


def cnnc_mobilenet():
    """MobileNet (v1, width 1): depthwise-separable blocks, BN + ReLU6."""
    from cnnc import layers
    from cnnc.models import Model

    def bn_relu6(x):
        return layers.ReLU(max_value=6.0)(layers.BatchNormalization()(x))

    inputs = layers.Input((224, 224, 3))
    x = bn_relu6(layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False)(inputs))
    for filters, stride in MOBILENET_BLOCKS:
        x = bn_relu6(layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x))
        x = bn_relu6(layers.Conv2D(filters, 1, use_bias=False)(x))
    x = layers.GlobalAveragePooling2D()(x)
    return Model(inputs, layers.Dense(1000, activation="softmax")(x))


def torch_mobilenet(torch):
    nn = torch.nn

    def unit(cin, cout, k, stride, groups):
        return [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU6()]

    mods, cin = unit(3, 32, 3, 2, 1), 32
    for filters, stride in MOBILENET_BLOCKS:
        mods += unit(cin, cin, 3, stride, cin) + unit(cin, filters, 1, 1, 1)
        cin = filters
    mods += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, 1000), nn.Softmax(dim=1)]
    return nn.Sequential(*mods).eval()


# Nodes that do a layer's arithmetic, paired in order between the two profiles.
CNNC_ANCHORS = ("conv", "depthwise_conv", "dense")
ORT_ANCHORS = ("Conv", "FusedConv", "NhwcFusedConv", "Gemm", "FusedGemm", "MatMul", "FusedMatMul")


def cnnc_node_times(loaded, x, repeats, cpu_time):
    """[(name, kind, best seconds)] of loaded's nodes that run something."""
    nodes = loaded.nodes()
    best = np.full(len(nodes), np.inf)
    for _ in range(repeats + 1):
        _, wall, cpu = loaded.profile([x])
        best = np.minimum(best, cpu if cpu_time else wall)
    return [(name, kind, t) for (name, kind), t in zip(nodes, best) if kind != "folded"]


def ort_node_times(ort, path, threads, xt, repeats):
    """[(node name, op, best seconds)] from onnxruntime's profile, in run order."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = os.path.join(tmp, "ort")
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        for _ in range(repeats + 1):
            session.run(None, {"x": xt})
        with open(session.end_profiling()) as f:
            events = json.load(f)
    order, best = [], {}
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        key = (e["name"][:-len("_kernel_time")], e.get("args", {}).get("op_name", "?"))
        if key not in best:
            order.append(key)
            best[key] = np.inf
        best[key] = min(best[key], e["dur"] * 1e-6)
    return [(name, op, best[(name, op)]) for name, op in order]


def print_profile(cnnc_nodes, ort_nodes, cnnc_clock):
    """Both profiles side by side, anchors (convolutions, dense) paired in order."""
    def groups(nodes, anchors):
        out, pending = [], []
        for node in nodes:
            if node[1] in anchors:
                out.append((pending, node))
                pending = []
            else:
                pending.append(node)
        out.append((pending, None))
        return out

    c_groups, o_groups = groups(cnnc_nodes, CNNC_ANCHORS), groups(ort_nodes, ORT_ANCHORS)
    print(f"  {'cnnc node':28s} {'kind':15s} {'ms (' + cnnc_clock + ')':>12s}   {'onnxruntime node':28s}"
          f" {'op':14s} {'ms (wall)':>9s} {'ort/cnnc':>8s}")

    def row(c, o):
        cs = f"{c[0][:28]:28s} {c[1][:15]:15s} {c[2] * 1e3:12.3f}" if c else " " * 57
        os_ = f"{o[0][:28]:28s} {o[1][:14]:14s} {o[2] * 1e3:9.3f}" if o else " " * 53
        ratio = f"{o[2] / c[2]:8.2f}" if c and o and c[2] > 0 else ""
        print(f"  {cs}   {os_} {ratio}")

    for k in range(max(len(c_groups), len(o_groups))):
        c_pre, c_anchor = c_groups[k] if k < len(c_groups) else ([], None)
        o_pre, o_anchor = o_groups[k] if k < len(o_groups) else ([], None)
        for j in range(max(len(c_pre), len(o_pre))):
            row(c_pre[j] if j < len(c_pre) else None, o_pre[j] if j < len(o_pre) else None)
        if c_anchor or o_anchor:
            row(c_anchor, o_anchor)
    c_total, o_total = sum(n[2] for n in cnnc_nodes), sum(n[2] for n in ort_nodes)
    print(f"  {'sum of nodes':44s} {c_total * 1e3:12.3f}   {'':43s} {o_total * 1e3:9.3f} {o_total / c_total:8.2f}")
    by_kind = {}
    for _, kind, t in cnnc_nodes:
        by_kind[kind] = by_kind.get(kind, 0.0) + t
    print("  cnnc by kind: " + ", ".join(f"{k} {t * 1e3:.3f} ms" for k, t in sorted(by_kind.items(), key=lambda kv: -kv[1])))


MODELS = {
    "resnet50": (lambda: applications.ResNet50(input_shape=(224, 224, 3)), torch_resnet50, (224, 224, 3)),
    "mobilenet": (cnnc_mobilenet, torch_mobilenet, (224, 224, 3)),
    "mnist": (lambda: applications.MnistCNN(), torch_mnist, (28, 28, 1)),
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=cnnc.get_num_threads())
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeats", type=int, default=5, help="calls per block")
    parser.add_argument("--rounds", type=int, default=5, help="blocks of each library, alternating")
    parser.add_argument("--settle", type=float, default=0.2,
                        help="seconds of sleep before each block, for the last block's spinning threads")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--cpu-time", action="store_true",
                        help="time by the calling thread's CPU time (needs --threads 1)")
    parser.add_argument("--skip", nargs="+", default=[], choices=["layers", "torch"],
                        help="columns not to measure")
    parser.add_argument("--profile", action="store_true",
                        help="print each node's time in cnnc's runtime beside onnxruntime's profile")
    args = parser.parse_args()
    if args.cpu_time:
        if args.threads != 1:
            parser.error("--cpu-time measures one thread: use it with --threads 1")
        global CLOCK
        CLOCK = time.thread_time
    cnnc.set_num_threads(args.threads)
    try:
        import torch
        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    clock = "thread CPU time" if args.cpu_time else "wall clock"
    print(f"threads {args.threads}, ISA {cnnc.isa()}; times in ms ({clock}, best call of {args.rounds} alternating"
          f" blocks of {args.repeats}; the last two columns are ratios of the median calls)")
    print(f"{'model':10s} {'batch':>5s} {'predict':>9s} {'C API':>9s} {'cnnc layers':>11s} {'torch':>9s}"
          f" {'ort':>9s} {'ort/cnnc':>8s} {'ort/C API':>9s} {'torch/cnnc':>10s} {'med o/cnnc':>9s} {'med o/C API':>10s}")
    rng = np.random.default_rng(0)
    for name in args.models:
        build, build_torch, shape = MODELS[name]
        model = build()
        tmodel = build_torch(torch) if torch else None
        session = None
        tmp = tempfile.TemporaryDirectory()
        path = os.path.join(tmp.name, f"{name}.onnx")
        if tmodel is not None and ort is not None:
            dummy = torch.zeros((1, shape[2], shape[0], shape[1]))
            torch.onnx.export(tmodel, dummy, path, input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        for batch in args.batches:
            x = rng.random((batch,) + shape, dtype=np.float32)
            xt = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
            # The threads cnnc may run after each of its calls: below the
            # team when its adaptive team saw busy cores (README, "Busy cores").
            limits = []

            def cnnc_call(fn):
                def call():
                    fn()
                    limits.append(cnnc.get_running_limit())
                return call
            fns = {"predict": cnnc_call(lambda: model.predict(x, batch_size=batch, verbose=0))}
            loaded = inference.loaded_model(model)
            if loaded is not None:
                fns["C API"] = cnnc_call(lambda: loaded.predict([x]))
            if tmodel is not None and "torch" not in args.skip:
                xtt = torch.from_numpy(xt)

                def torch_call():
                    with torch.inference_mode():
                        tmodel(xtt)
                fns["torch"] = torch_call
            if session is not None:
                fns["ort"] = lambda: session.run(None, {"x": xt})
            timed = alternating_ms(fns, args.repeats, args.rounds, args.settle)
            nan = (float("nan"), float("nan"))
            (c_ms, c_med), (api_ms, api_med) = timed["predict"], timed.get("C API", nan)
            t_ms, (o_ms, o_med) = timed.get("torch", nan)[0], timed.get("ort", nan)
            layers_ms = (float("nan") if "layers" in args.skip else
                         best_ms(lambda: model._run_forward([x], training=False), max(1, args.repeats // 2)))
            print(f"{name:10s} {batch:5d} {c_ms:9.2f} {api_ms:9.2f} {layers_ms:11.2f} {t_ms:9.2f}"
                  f" {o_ms:9.2f} {o_ms / c_ms:8.2f} {o_ms / api_ms:9.2f} {t_ms / c_ms:10.2f}"
                  f" {o_med / c_med:9.2f} {o_med / api_med:10.2f}", flush=True)
            fewer = sum(1 for n in limits if n < args.threads)
            if fewer:
                print(f"  (cnnc's adaptive team ran on fewer than {args.threads} threads after {fewer} of its"
                      f" {len(limits)} calls: other work held the cores)", flush=True)
            if args.profile and loaded is not None:
                # The last block was onnxruntime's: its workers may still spin.
                time.sleep(args.settle)
                cnnc_nodes = cnnc_node_times(loaded, x, args.repeats, args.cpu_time)
                time.sleep(args.settle)
                ort_nodes = ort_node_times(ort, path, args.threads, xt, args.repeats) if session else []
                print_profile(cnnc_nodes, ort_nodes, "CPU" if args.cpu_time else "wall")
        tmp.cleanup()


if __name__ == "__main__":
    main()
