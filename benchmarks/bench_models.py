"""Whole-model training and inference, cnnc against PyTorch: the MNIST CNN,
ResNet-18, ResNet-50 and VGG16 (224x224x3, 1000 classes), step time and
peak memory, each library and each measurement in its own process.

    python benchmarks/bench_models.py [--batch 8] [--threads 2] [--steps 3]
        [--models mnist resnet18 resnet50 vgg16] [--predict-batches 1 32]
        [--size 224] [--recompute] [--no-train]

Training: SGD with momentum on random data, ``model.train_on_batch`` for
cnnc and the zero_grad/forward/backward/step loop for PyTorch (channels_last,
the same architectures written out below: same convolutions, batch norms,
paddings and classifier); the median of ``steps`` steps after one warm-up
step; with ``--recompute`` also a row ("train+rc") where cnnc is compiled
with ``recompute=True`` (PyTorch trains as in "train"). Inference:
``model.predict`` for cnnc (its C runtime) and eager ``torch.no_grad()``
forward for PyTorch, batches of 1 and 32 (the MNIST CNN's 28x28x1 input, the
others ``--size``).

Memory columns: "peak" is the process's peak RSS (VmHWM) minus its RSS once
the library is imported and the model built, i.e. what the step or pass
adds to the model's weights ("+"), and "total" the peak RSS above the RSS
after importing the library (weights, gradients and everything a step
holds). For cnnc the estimate of ``cnnc.utils.estimate_memory`` sits beside
it (its total, and the part beyond weights and gradients).
Timings on a shared machine are noisy; ratios from one run still compare.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

MiB = 1 << 20


def _status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak():
    """Restart the peak-RSS count from the current RSS (Linux)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


# -- PyTorch equivalents of the zoo models ------------------------------------------
def torch_model(name, size):
    from torch import nn

    def bn(c, eps, mom):
        return nn.BatchNorm2d(c, eps=eps, momentum=1.0 - mom)

    class Basic(nn.Module):
        def __init__(self, cin, c, stride):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(cin, c, 3, stride, 1, bias=False), bn(c, 1e-5, .9),
                                      nn.ReLU(), nn.Conv2d(c, c, 3, 1, 1, bias=False),
                                      bn(c, 1e-5, .9))
            self.short = (nn.Sequential(nn.Conv2d(cin, c, 1, stride, bias=False), bn(c, 1e-5, .9))
                          if stride != 1 or cin != c else nn.Identity())
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.short(x) + self.body(x))

    class Bottleneck(nn.Module):
        def __init__(self, cin, c, stride, conv_shortcut):
            super().__init__()
            e, m = 1.001e-5, 0.99
            self.body = nn.Sequential(nn.Conv2d(cin, c, 1, stride), bn(c, e, m), nn.ReLU(),
                                      nn.Conv2d(c, c, 3, 1, 1), bn(c, e, m), nn.ReLU(),
                                      nn.Conv2d(c, 4 * c, 1), bn(4 * c, e, m))
            self.short = (nn.Sequential(nn.Conv2d(cin, 4 * c, 1, stride), bn(4 * c, e, m))
                          if conv_shortcut else nn.Identity())
            self.relu = nn.ReLU()

        def forward(self, x):
            return self.relu(self.short(x) + self.body(x))

    if name == "mnist":
        return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))
    if name == "vgg16":
        seq, cin = [], 3
        for convs, c in zip((2, 2, 3, 3, 3), (64, 128, 256, 512, 512)):
            for _ in range(convs):
                seq += [nn.Conv2d(cin, c, 3, padding=1), nn.ReLU()]
                cin = c
            seq.append(nn.MaxPool2d(2))
        side = size // 32
        return nn.Sequential(*seq, nn.Flatten(), nn.Linear(512 * side * side, 4096), nn.ReLU(),
                             nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000))
    bottleneck = name == "resnet50"
    eps, mom = (1.001e-5, 0.99) if bottleneck else (1e-5, 0.9)
    seq = [nn.Conv2d(3, 64, 7, 2, 3, bias=bottleneck), bn(64, eps, mom), nn.ReLU(),
           nn.MaxPool2d(3, 2, 1)]
    cin = 64
    counts = (3, 4, 6, 3) if bottleneck else (2, 2, 2, 2)
    for stage, (count, c) in enumerate(zip(counts, (64, 128, 256, 512))):
        for i in range(count):
            stride = 2 if i == 0 and stage > 0 else 1
            if bottleneck:
                seq.append(Bottleneck(cin, c, stride, i == 0))
                cin = 4 * c
            else:
                seq.append(Basic(cin, c, stride))
                cin = c
    return nn.Sequential(*seq, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1000))


def cnnc_model(name, size):
    from cnnc import applications
    if name == "mnist":
        return applications.MnistCNN()
    build = {"resnet18": applications.ResNet18, "resnet50": applications.ResNet50,
             "vgg16": applications.VGG16}[name]
    return build(input_shape=(size, size, 3))


def input_shape(name, size):
    return (28, 28, 1) if name == "mnist" else (size, size, 3)


# -- one measurement, in a child process ----------------------------------------------
def child(lib, name, mode, batch, size, steps, threads):
    import numpy as np
    classes = 10 if name == "mnist" else 1000
    rng = np.random.default_rng(0)
    x = rng.random((batch,) + input_shape(name, size), dtype=np.float32)
    y = (np.arange(batch) % classes).astype(np.int64)
    if lib == "torch":
        import torch
        torch.set_num_threads(threads)
    else:
        import cnnc
        cnnc.set_num_threads(threads)
    imported = _status("VmRSS:")
    times = []
    result = {}
    if lib == "torch":
        from torch import nn
        model = torch_model(name, size).to(memory_format=torch.channels_last)
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        yt = torch.from_numpy(y)
        if mode.startswith("train"):
            model.train()
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            loss_fn = nn.CrossEntropyLoss()

            def run():
                opt.zero_grad(set_to_none=True)
                loss_fn(model(xt), yt).backward()
                opt.step()
        else:
            model.eval()

            def run():
                with torch.no_grad():
                    model(xt)
    else:
        import cnnc
        model = cnnc_model(name, size)
        if mode.startswith("train"):
            model.compile(cnnc.optimizers.SGD(0.01, momentum=0.9),
                          "sparse_categorical_crossentropy", recompute=mode == "train+rc")

            def run():
                model.train_on_batch(x, y)
            est = cnnc.utils.estimate_memory(model, batch, training=True)
        else:
            def run():
                model.predict(x, batch_size=batch, verbose=0)
            est = cnnc.utils.estimate_memory(model, batch, training=False, runtime=True)
        result["estimate"] = est.total
        result["estimate_added"] = est.working_set
    built = _status("VmRSS:")
    _reset_peak()
    for i in range(steps + 1):
        start = time.perf_counter()
        run()
        if i:
            times.append(time.perf_counter() - start)
    peak = _status("VmHWM:")
    result.update(seconds=statistics.median(times), added=peak - built, total=peak - imported)
    print(json.dumps(result))


def measure(lib, name, mode, batch, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", lib, name, mode, str(batch),
           "--size", str(args.size), "--steps", str(args.steps), "--threads", str(args.threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        reason = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode
        return {"error": str(reason)[:60]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs=4, metavar=("LIB", "MODEL", "MODE", "BATCH"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--models", nargs="+", default=["mnist", "resnet18", "resnet50", "vgg16"],
                        choices=["mnist", "resnet18", "resnet50", "vgg16"])
    parser.add_argument("--batch", type=int, default=8, help="training batch size")
    parser.add_argument("--predict-batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--size", type=int, default=224, help="image side (not the MNIST CNN)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--recompute", action="store_true",
                        help="also train cnnc with compile(recompute=True)")
    parser.add_argument("--no-train", action="store_true", help="predict rows only")
    args = parser.parse_args()
    if args.child:
        lib, name, mode, batch = args.child
        child(lib, name, mode, int(batch), args.size, args.steps, args.threads)
        return
    print(f"threads={args.threads}, image {args.size}x{args.size} (MNIST CNN 28x28), "
          f"median of {args.steps} steps; memory in MiB: + = peak RSS added by the run to the "
          f"built model, total = peak above the imported library; est = cnnc's estimate")
    header = (f"{'model':9s} {'what':12s} {'cnnc ms':>9s} {'torch ms':>9s} {'speed':>6s} "
              f"{'cnnc +':>8s} {'torch +':>8s} {'cnnc tot':>9s} {'torch tot':>9s} {'mem':>5s} "
              f"{'est tot':>8s} {'est +':>7s}")
    print(header)
    print("-" * len(header))
    runs = [] if args.no_train else [("train", args.batch)] + ([("train+rc", args.batch)] if args.recompute else [])
    runs += [("predict", b) for b in args.predict_batches]
    for name in args.models:
        for mode, batch in runs:
            c = measure("cnnc", name, mode, batch, args)
            t = measure("torch", name, mode, batch, args)
            what = f"{mode} b{batch}"
            if "error" in c or "error" in t:
                print(f"{name:9s} {what:12s} cnnc: {c.get('error', 'ok')}  "
                      f"torch: {t.get('error', 'ok')}", flush=True)
                continue
            print(f"{name:9s} {what:12s} {c['seconds'] * 1e3:9.1f} {t['seconds'] * 1e3:9.1f} "
                  f"{t['seconds'] / c['seconds']:5.2f}x {c['added'] / MiB:8.0f} "
                  f"{t['added'] / MiB:8.0f} {c['total'] / MiB:9.0f} {t['total'] / MiB:9.0f} "
                  f"{c['total'] / t['total']:4.2f}x {c['estimate'] / MiB:8.0f} "
                  f"{c['estimate_added'] / MiB:7.0f}", flush=True)


if __name__ == "__main__":
    main()
