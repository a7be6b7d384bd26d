"""Training throughput against the thread count, with busy neighbours and
with other thread pools in the process: cnnc against PyTorch, in one run,
each measurement in a fresh process.

    python benchmarks/bench_threads.py                       # everything, defaults
    python benchmarks/bench_threads.py --models mnist --threads 1 2 8 --busy 1 3
    python benchmarks/bench_threads.py --models resnet50 --threads 16 --sections scaling

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
  NumPy's BLAS and PyTorch multiplying matrices in the same process, between
  cnnc's calls, each pool at the default thread count; as a share of cnnc
  alone; with OpenBLAS's own long wait and with the bounded one that
  ``import cnnc`` gives it.

PyTorch runs channels_last with ``torch.set_num_threads`` equal to cnnc's.
Each figure is the best of ``--repeats`` timed runs after a warm-up.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

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


def cnnc_worker(model, threads, steps, repeats, between=None):
    """Images per second of cnnc's training; ``between()`` runs before each batch."""
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
            if between is not None:
                between()
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


def pools_worker(threads, repeats):
    """cnnc matmul GFLOP/s and MNIST img/s alone and with NumPy and PyTorch
    matrix products between cnnc's calls."""
    import cnnc
    cnnc.set_num_threads(threads)
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    others = [rng.random((768, 768), dtype=np.float32) for _ in range(2)]

    def neighbours():
        np.matmul(others[0], others[1])
        if torch is not None:
            torch.from_numpy(others[0]) @ torch.from_numpy(others[1])

    result = {}
    for n in (512, 1024):
        a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
        out = np.empty((n, n), np.float32)
        for label, between in (("alone", None), ("mixed", neighbours)):
            best = 0.0
            for _ in range(repeats * 5):
                if between is not None:
                    between()
                start = time.perf_counter()
                cnnc.ops.matmul(a, b, out=out)
                best = max(best, 2 * n ** 3 / (time.perf_counter() - start) / 1e9)
            result[f"matmul {n}^3 GFLOP/s, {label}"] = best
    steps = MODELS["mnist"][2]
    result["MNIST CNN img/s, alone"] = cnnc_worker("mnist", threads, steps, repeats)
    result["MNIST CNN img/s, mixed"] = cnnc_worker("mnist", threads, steps, repeats, between=neighbours)
    return result


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
    parser.add_argument("--steps-scale", type=float, default=1.0, help="multiply the steps per timed run")
    parser.add_argument("--no-torch", action="store_true", help="cnnc alone")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        kind = args.worker[0]
        if kind == "pools":
            print(json.dumps(pools_worker(int(args.worker[1]), int(args.worker[2]))))
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
        # The workers import NumPy before cnnc (the usual order): import cnnc
        # then gives the loaded OpenBLAS the bounded wait (cnnc/_wait_policy.py)
        # unless the user chose a wait; OpenBLAS's own is 2**28 cycles.
        cases = [("OpenBLAS's own wait (OPENBLAS_THREAD_TIMEOUT=28 set by the user)",
                  {"OPENBLAS_THREAD_TIMEOUT": "28"}),
                 ("default: import cnnc bounds OpenBLAS's wait", {})]
        for label, env in cases:
            print(f"\ncnnc with NumPy{' and PyTorch' if have_torch else ''} matrix products between its calls, "
                  f"{default} threads each; {label}")
            r = _run_worker(["pools", default, args.repeats], env) or {}
            for name in [n for n in r if n.endswith("alone")]:
                base = name[:-len("alone")]
                mixed = r.get(base + "mixed")
                print(f"{base[:-2]:>26} | alone {r[name]:>8.0f} | mixed {mixed:>8.0f} | {mixed / r[name]:>5.0%}",
                      flush=True)


if __name__ == "__main__":
    main()
