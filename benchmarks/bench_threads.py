"""Training throughput against the thread count, with busy neighbours and
with other thread pools in the process: cnnc against PyTorch, in one run,
each measurement in a fresh process.

    python benchmarks/bench_threads.py                       # everything, defaults
    python benchmarks/bench_threads.py --models mnist --threads 1 2 8 --busy 1 3
    python benchmarks/bench_threads.py --models resnet50 --threads 16 --sections scaling
    python benchmarks/bench_threads.py --sections pools --rounds 8

Sections:
- scaling: images per second training the classic MNIST CNN (batch 32, 28x28x1)
  and ResNet-18 (batch 32, 112x112x3, 10 classes) with Adam, at 1, 2, 4, ... up
  to os.cpu_count() threads and at 4x as many threads as cores
  (``resnet50``: batch 32 at 224x224x3 also exists as a model);
- busy: the same at the default thread count while k other processes spin on
  the CPU (k from ``--busy``; default 1 and 3 on 2 cores, half and all the
  cores elsewhere), as a share of the idle figure; cnnc also with its team
  kept whole (``CNNC_ADAPTIVE_TEAM=0``) instead of running on the CPUs the
  neighbours leave free;
- wait: cnnc at the default thread count, idle and with the most neighbours,
  with libgomp's own long spin (GOMP_SPINCOUNT=300000) instead of cnnc's
  bounded one;
- pools: ``cnnc.ops.matmul`` GFLOP/s (512^3, 1024^3) and MNIST training with
  NumPy's BLAS and PyTorch (and onnxruntime, where installed: its threads
  spinning after each run, its default, and sleeping with
  ``allow_spinning=0``) multiplying 768^3 matrices in the same process
  between cnnc's calls, each pool at the default thread count, as a share of
  cnnc alone; for each import order
  (which library loads the OpenMP runtime and OpenBLAS decides their wait
  policies) and with OpenBLAS's own long wait. Alone and mixed alternate in
  one process, call by call for the matmuls and in rounds of ``--pool-steps``
  training steps for MNIST, so that the machine's swings meet both alike;
  the table gives the best and the median. Three controls tell the causes
  apart: "sweep" copies as many bytes between the steps as the matrix
  products touch, with no thread pool (evicting cnnc's data from the caches),
  "small pools" makes the same products' thread pools wake, work and wait on
  256^3 matrices that stay in cache, as many of them as make the same work
  (the other pools' threads), and "wait" keeps the CPU in a loop touching no
  memory for as long as the products take (what cnnc's data loses to
  whatever else the machine runs meanwhile). The CPU time per image counts
  every thread of the process during cnnc's steps; "threads" is the mean
  running team (``cnnc.get_running_limit()``).

PyTorch runs channels_last with ``torch.set_num_threads`` equal to cnnc's.
Each figure is the best of ``--repeats`` timed runs after a warm-up (the
pools section: best and median of ``--rounds`` rounds).
"""
import argparse
import importlib
import json
import os
import subprocess
import sys
import time


def _import_in_worker_order():
    """A pools worker imports the libraries in the order it measures, before
    anything else: the first to load libgomp or OpenBLAS decides its wait."""
    if "--worker" in sys.argv and sys.argv[sys.argv.index("--worker") + 1:][:1] == ["pools"]:
        for name in sys.argv[sys.argv.index("--worker") + 2].split(","):
            importlib.import_module(name)


_import_in_worker_order()

import numpy as np  # noqa: E402

MODELS = {  # name: (image shape, classes, steps per timed run)
    "mnist": ((28, 28, 1), 10, 100),
    "resnet18": ((112, 112, 3), 10, 4),
    "resnet50": ((224, 224, 3), 10, 3),
}
BATCH = 32


# ---- workers (run in a fresh process each) ----------------------------------------------

def _data(model, steps):
    shape, classes, _ = MODELS[model]
    steps = max(steps, 2)  # the warm-up takes two batches
    rng = np.random.default_rng(0)
    x = rng.random((steps * BATCH, *shape), dtype=np.float32)
    y = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, steps * BATCH)]
    return x, y


def _cnnc_model(model):
    from cnnc import applications
    shape, classes, _ = MODELS[model]
    if model == "mnist":
        net = applications.MnistCNN()
    elif model == "resnet18":
        net = applications.ResNet18(input_shape=shape, classes=classes)
    else:
        net = applications.ResNet50(input_shape=shape, classes=classes)
    net.compile(optimizer="adam", loss="categorical_crossentropy")
    return net


def cnnc_worker(model, threads, steps, repeats):
    """Images per second of cnnc's training."""
    import cnnc
    cnnc.set_num_threads(threads)
    x, y = _data(model, steps)
    net = _cnnc_model(model)
    net.train_on_batch(x[:BATCH], y[:BATCH])
    net.train_on_batch(x[BATCH:2 * BATCH], y[BATCH:2 * BATCH])
    best, spent = 0.0, 0.0
    for _ in range(repeats):
        spent = 0.0
        for s in range(steps):
            start = time.perf_counter()
            net.train_on_batch(x[s * BATCH:(s + 1) * BATCH], y[s * BATCH:(s + 1) * BATCH])
            spent += time.perf_counter() - start
        best = max(best, steps * BATCH / spent)
    return best


def _torch_resnet(model, classes):
    import torch
    from torch import nn

    def conv_bn(cin, cout, k, stride, relu=True):
        mods = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
        return nn.Sequential(*(mods + [nn.ReLU()] if relu else mods))

    class Block(nn.Module):
        def __init__(self, cin, filters, stride, bottleneck):
            super().__init__()
            cout = filters * (4 if bottleneck else 1)
            if bottleneck:  # Keras's ResNet50: the stride on the first 1x1
                self.body = nn.Sequential(conv_bn(cin, filters, 1, stride), conv_bn(filters, filters, 3, 1),
                                          conv_bn(filters, cout, 1, 1, relu=False))
            else:
                self.body = nn.Sequential(conv_bn(cin, filters, 3, stride),
                                          conv_bn(filters, filters, 3, 1, relu=False))
            self.short = (conv_bn(cin, cout, 1, stride, relu=False) if stride != 1 or cin != cout
                          else nn.Identity())

        def forward(self, x):
            return torch.relu(self.short(x) + self.body(x))

    bottleneck = model == "resnet50"
    counts = (3, 4, 6, 3) if bottleneck else (2, 2, 2, 2)
    layers, cin = [conv_bn(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)], 64
    for stage, (count, filters) in enumerate(zip(counts, (64, 128, 256, 512))):
        for i in range(count):
            layers.append(Block(cin, filters, 2 if i == 0 and stage > 0 else 1, bottleneck))
            cin = filters * (4 if bottleneck else 1)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def torch_worker(model, threads, steps, repeats):
    import torch
    from torch import nn
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    shape, classes, _ = MODELS[model]
    if model == "mnist":
        net = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, classes))
    else:
        net = _torch_resnet(model, classes)
    net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    x, y = _data(model, steps)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    yt = torch.from_numpy(y.argmax(axis=1))

    def step(s):
        opt.zero_grad(set_to_none=True)
        loss_fn(net(xt[s * BATCH:(s + 1) * BATCH]), yt[s * BATCH:(s + 1) * BATCH]).backward()
        opt.step()

    step(0)
    step(1)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        for s in range(steps):
            step(s)
        best = max(best, steps * BATCH / (time.perf_counter() - start))
    return best


POOL_SIZE = 768  # the other libraries' matrices: n^3 multiply-adds between cnnc's calls


def _onnxruntime_matmul(n, threads, spinning=True):
    """An onnxruntime session multiplying two n x n matrices on ``threads``
    intra-op threads, which spin after each run (onnxruntime's default) or
    sleep; None without onnxruntime."""
    try:
        import onnxruntime
        from onnx import TensorProto, helper
    except ImportError:
        return None
    spec = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [n, n]) for name in "abc"]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul", spec[:2], spec[2:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _other_pools(threads):
    """{label: function} running other libraries' work between cnnc's calls:
    the mixed cases and the two controls (module docstring)."""
    torch = sys.modules.get("torch")  # imported by the worker's order, or not used
    if torch is not None:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(1)
    big = [rng.random((POOL_SIZE, POOL_SIZE), dtype=np.float32) for _ in range(2)]
    small_n = 256
    small = [rng.random((small_n, small_n), dtype=np.float32) for _ in range(2)]
    repeats_small = round((POOL_SIZE / small_n) ** 3)

    def products(a, b):
        np.matmul(a, b)
        if torch is not None:
            torch.from_numpy(a) @ torch.from_numpy(b)

    # Each product reads two matrices and writes a third.
    swept = np.ones((3 if torch is None else 6) * POOL_SIZE * POOL_SIZE * 4 // 2, np.uint8)
    swept_to = np.empty_like(swept)
    cases = {("numpy+torch" if torch is not None else "numpy"): lambda: products(*big)}
    feeds = {"a": big[0], "b": big[1]}
    for spinning, label in ((True, "onnxruntime"), (False, "onnxruntime, no spinning")):
        session = _onnxruntime_matmul(POOL_SIZE, threads, spinning)
        if session is not None:
            cases[label] = (lambda s: lambda: s.run(None, feeds))(session)
    cases["sweep (no pool)"] = lambda: np.copyto(swept_to, swept)
    cases[f"small pools ({repeats_small}x {small_n}^3)"] = lambda: [products(*small) for _ in range(repeats_small)]
    products(*big)
    start = time.perf_counter()
    products(*big)
    took = time.perf_counter() - start
    cases["wait (no work)"] = lambda: _busy_wait(took)
    return cases


def _busy_wait(seconds):
    """Keeps the CPU for ``seconds`` touching no memory: the time the other
    libraries' work keeps cnnc away from its data, without that work."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def pools_worker(threads, rounds, steps, controls):
    """cnnc alone and with other libraries' work between its calls, alternating
    in this process: {row: {label: [per-round figures]}}; each row's labels
    are "alone" and one mixed case, MNIST rows also "cpu <label>" (CPU
    microseconds per image, every thread of the process, cnnc's steps only)
    and "threads <label>" (the running threads after each step)."""
    import cnnc
    cnnc.set_num_threads(threads)
    others = _other_pools(threads)
    if not controls:
        others = {k: v for k, v in others.items() if k in ("numpy", "numpy+torch", "onnxruntime")}
    rng = np.random.default_rng(0)
    result = {}
    mixed = next(iter(others))
    for n in (512, 1024):
        a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
        out = np.empty((n, n), np.float32)
        figures = {"alone": [], "mixed": []}
        for _ in range(rounds * 5):
            for label, between in (("alone", None), ("mixed", others[mixed])):
                if between is not None:
                    between()
                start = time.perf_counter()
                cnnc.ops.matmul(a, b, out=out)
                figures[label].append(2 * n ** 3 / (time.perf_counter() - start) / 1e9)
        result[f"matmul {n}^3 GFLOP/s, {mixed}"] = figures

    x, y = _data("mnist", steps)
    net = _cnnc_model("mnist")
    net.train_on_batch(x[:BATCH], y[:BATCH])
    net.train_on_batch(x[BATCH:2 * BATCH], y[BATCH:2 * BATCH])
    for other, between in others.items():
        # Each case alternates with its own alone rounds: the adaptive team
        # carries what it learnt from one round into the next.
        figures = {label: [] for label in ("alone", other)}
        figures |= {f"{kind} {label}": [] for kind in ("cpu", "threads") for label in ("alone", other)}
        for _ in range(rounds):
            for label, work in (("alone", None), (other, between)):
                spent = cpu = 0.0
                for s in range(steps):
                    if work is not None:
                        work()
                    cpu_start, start = time.process_time(), time.perf_counter()
                    net.train_on_batch(x[s * BATCH:(s + 1) * BATCH], y[s * BATCH:(s + 1) * BATCH])
                    spent += time.perf_counter() - start
                    cpu += time.process_time() - cpu_start
                    figures[f"threads {label}"].append(cnnc.get_running_limit())
                figures[label].append(steps * BATCH / spent)
                figures[f"cpu {label}"].append(cpu / (steps * BATCH) * 1e6)
        result[f"MNIST CNN img/s, {other}"] = figures
    return result


def _print_pools(result):
    """The pools worker's figures: best and median, mixed as a share of alone."""
    def best_median(values):
        return max(values), float(np.median(values))

    print(f"{'':>40} | {'alone best':>10} {'median':>8} | {'mixed best':>10} {'median':>8} | "
          f"{'share best':>10} {'median':>6} | {'CPU us/img':>10} | {'threads':>7}")
    for row, figures in result.items():
        alone = best_median(figures["alone"])
        mixed_labels = [k for k in figures if k != "alone" and not k.startswith(("cpu ", "threads "))]
        for label in mixed_labels:
            mixed = best_median(figures[label])
            print(f"{row[:40]:>40} | {alone[0]:>10.0f} {alone[1]:>8.0f} | {mixed[0]:>10.0f} {mixed[1]:>8.0f} | "
                  f"{mixed[0] / alone[0]:>10.0%} {mixed[1] / alone[1]:>6.0%} | {_cpu_threads(figures, label)}"
                  f"{_cpu_threads(figures, 'alone', ' (alone:')}", flush=True)


def _cpu_threads(figures, label, prefix=""):
    """The median CPU time per image and the mean running threads of a label, where measured."""
    if f"cpu {label}" not in figures:
        return ""
    cpu, threads = np.median(figures[f"cpu {label}"]), np.mean(figures[f"threads {label}"])
    if prefix:
        return f"{prefix} {cpu:.1f}, {threads:.2f})"
    return f"{cpu:>10.1f} | {threads:>7.2f}"


# ---- the driver -----------------------------------------------------------------------------

def _run_worker(args, extra_env=None):
    env = dict(os.environ, **(extra_env or {}))
    cmd = [sys.executable, os.path.abspath(__file__), "--worker"] + [str(a) for a in args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-2000:])
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


class Neighbours:
    """k processes spinning on the CPU for the duration of a `with` block."""

    def __init__(self, count):
        self.count = count
        self.procs = []

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(self.count)]
        time.sleep(0.2)
        return self

    def __exit__(self, *exc):
        for proc in self.procs:
            proc.kill()
        for proc in self.procs:
            proc.wait()


def measure(framework, model, threads, steps, repeats, busy=0, extra_env=None):
    with Neighbours(busy):
        return _run_worker([framework, model, threads, steps, repeats], extra_env)


def _fmt(value, spec=">10.0f"):
    return f"{value:{spec}}" if value is not None else f"{'n/a':>10}"


def _ratio(a, b):
    return f"{a / b:>9.2f}x" if a and b else f"{'n/a':>10}"


def main():
    cores = os.cpu_count() or 1
    default_threads = sorted({1 << i for i in range(cores.bit_length()) if 1 << i <= cores} | {cores, 4 * cores})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mnist", "resnet18"], choices=sorted(MODELS))
    parser.add_argument("--threads", type=int, nargs="+", default=default_threads)
    parser.add_argument("--busy", type=int, nargs="+",
                        default=[1, 3] if cores <= 2 else [cores // 2, cores])
    parser.add_argument("--sections", nargs="+", default=["scaling", "busy", "wait", "pools"],
                        choices=["scaling", "busy", "wait", "pools"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=6, help="pools: alternating alone/mixed rounds")
    parser.add_argument("--pool-steps", type=int, default=30, help="pools: MNIST training steps per round")
    parser.add_argument("--steps-scale", type=float, default=1.0, help="multiply the steps per timed run")
    parser.add_argument("--no-torch", action="store_true", help="cnnc alone")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        kind = args.worker[0]
        if kind == "pools":
            _, _, threads, rounds, steps, controls = args.worker
            print(json.dumps(pools_worker(int(threads), int(rounds), int(steps), controls == "1")))
        else:
            _, model, threads, steps, repeats = args.worker
            worker = cnnc_worker if kind == "cnnc" else torch_worker
            print(json.dumps(worker(model, int(threads), int(steps), int(repeats))))
        return

    import cnnc
    try:
        import torch
        have_torch = not args.no_torch
        torch_version = torch.__version__
    except ImportError:
        have_torch, torch_version = False, None
    frameworks = ["cnnc"] + (["torch"] if have_torch else [])
    default = cnnc.get_num_threads()
    print(f"cnnc {cnnc.__version__} ({cnnc.isa()}), PyTorch {torch_version}, {cores} CPUs, default "
          f"{default} threads, batch {BATCH}, Adam; images/s, best of {args.repeats}")
    steps = {m: max(1, round(MODELS[m][2] * args.steps_scale)) for m in args.models}

    if "scaling" in args.sections:
        for model in args.models:
            print(f"\n{model} {MODELS[model][0]}: threads scaling")
            print(f"{'threads':>7} | {'cnnc':>10} | {'torch':>10} | {'cnnc/torch':>10}")
            for threads in args.threads:
                r = {f: measure(f, model, threads, steps[model], args.repeats) for f in frameworks}
                print(f"{threads:>7} | {_fmt(r['cnnc'])} | {_fmt(r.get('torch'))} | "
                      f"{_ratio(r['cnnc'], r.get('torch'))}", flush=True)

    if "busy" in args.sections:
        for model in args.models:
            print(f"\n{model}: {default} threads with k busy neighbour processes (share of idle)")
            print(f"{'k':>3} | {'cnnc':>10} | {'share':>6} | {'whole team':>10} | {'share':>6} | {'torch':>10} | "
                  f"{'share':>6} | {'cnnc/torch':>10}")
            whole = {"CNNC_ADAPTIVE_TEAM": "0"}
            columns = frameworks + ["whole"]

            def row(k):
                r = {f: measure(f, model, default, steps[model], args.repeats, busy=k) for f in frameworks}
                r["whole"] = measure("cnnc", model, default, steps[model], args.repeats, busy=k, extra_env=whole)
                return r

            idle = row(0)
            for k in [0] + args.busy:
                r = idle if k == 0 else row(k)
                shares = {f: (r[f] / idle[f] if r.get(f) and idle.get(f) else None) for f in columns}
                print(f"{k:>3} | {_fmt(r['cnnc'])} | {_fmt(shares['cnnc'], '>6.0%')} | {_fmt(r['whole'])} | "
                      f"{_fmt(shares['whole'], '>6.0%')} | {_fmt(r.get('torch'))} | "
                      f"{_fmt(shares.get('torch'), '>6.0%')} | {_ratio(r['cnnc'], r.get('torch'))}", flush=True)

    if "wait" in args.sections:
        model = args.models[0]
        k = max(args.busy)
        print(f"\n{model}, cnnc at {default} threads: bounded spin (default) against libgomp's long spin")
        print(f"{'neighbours':>10} | {'bounded':>10} | {'long spin':>10} | {'ratio':>10}")
        for busy in (0, k):
            ours = measure("cnnc", model, default, steps[model], args.repeats, busy=busy)
            long_spin = measure("cnnc", model, default, steps[model], args.repeats, busy=busy,
                                extra_env={"GOMP_SPINCOUNT": "300000"})
            print(f"{busy:>10} | {_fmt(ours)} | {_fmt(long_spin)} | {_ratio(ours, long_spin)}", flush=True)

    if "pools" in args.sections:
        # The usual order imports NumPy first: import cnnc then gives the
        # loaded OpenBLAS the bounded wait (cnnc/_wait_policy.py) unless the
        # user chose a wait; OpenBLAS's own is 2**28 cycles. PyTorch's wheel
        # ships a libgomp of the same soname as cnnc's: the first library
        # imported loads it for both, with its wait policy.
        cases = [("NumPy, cnnc, then PyTorch imported (the usual order)", "numpy,cnnc,torch", {}, True),
                 ("the same with the adaptive team off (CNNC_ADAPTIVE_TEAM=0)", "numpy,cnnc,torch",
                  {"CNNC_ADAPTIVE_TEAM": "0"}, True),
                 ("the same with OpenBLAS's own wait (OPENBLAS_THREAD_TIMEOUT=28 set by the user)",
                  "numpy,cnnc,torch", {"OPENBLAS_THREAD_TIMEOUT": "28"}, False),
                 ("PyTorch imported before cnnc", "torch,cnnc", {}, False),
                 ("cnnc imported first", "cnnc,torch", {}, False)]
        for label, order, env, controls in cases:
            if not have_torch:
                order = ",".join(name for name in order.split(",") if name != "torch")
                if label.startswith("PyTorch"):
                    continue
            print(f"\ncnnc with other libraries' {POOL_SIZE}^3 matrix products between its calls, {default} "
                  f"threads each, {args.rounds} alternating rounds; {label}")
            r = _run_worker(["pools", order, default, args.rounds, args.pool_steps, int(controls)], env)
            if r:
                _print_pools(r)

if __name__ == "__main__":
    main()
