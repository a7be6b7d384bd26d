"""Time of one optimizer step against torch.optim on the CPU.

The parameters are the weight shapes of ResNet-18 (11.7 M values in 62
tensors). Each row times one cnnc update (``apply_gradients``) and the
torch.optim step of the same rule (its default implementation, ``foreach``
where PyTorch picks it), same thread count, same run, and prints the best of
several repetitions with the ratio torch / cnnc (above 1: cnnc is faster).
Rows with ``+ema`` add Keras's moving average of the weights (PyTorch:
``torch.optim.swa_utils.get_ema_multi_avg_fn`` applied by hand after the step);
rows with ``+clip`` add global_clipnorm (PyTorch: ``clip_grad_norm_``).

    python benchmarks/bench_optimizers.py [--threads 1 2] [--repeat 5] [--filter nadam]
"""
import argparse
import time

import numpy as np

import cnnc
from cnnc import optimizers
from cnnc.layers.base import Weight

try:
    import torch
except ImportError:  # the table then shows cnnc alone
    torch = None


def resnet18_shapes():
    """Weight shapes of ResNet-18 (conv kernels, batch norm scales and
    shifts, the classifier)."""
    shapes = [(7, 7, 3, 64), (64,), (64,)]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for block in range(2):
            first = block == 0
            shapes += [(3, 3, cin if first else cout, cout), (cout,), (cout,),
                       (3, 3, cout, cout), (cout,), (cout,)]
            if first and (stride != 1 or cin != cout):
                shapes += [(1, 1, cin, cout), (cout,), (cout,)]
        cin = cout
    return shapes + [(512, 1000), (1000,)]


# name, cnnc optimizer factory, torch optimizer factory (None: PyTorch has none)
CASES = [
    ("sgd momentum", lambda **k: optimizers.SGD(0.01, momentum=0.9, **k),
     lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=0.9)),
    ("adam", lambda **k: optimizers.Adam(**k), lambda ps: torch.optim.Adam(ps, lr=0.001)),
    ("adamw", lambda **k: optimizers.AdamW(**k),
     lambda ps: torch.optim.AdamW(ps, lr=0.001, weight_decay=0.004)),
    ("rmsprop", lambda **k: optimizers.RMSprop(**k), lambda ps: torch.optim.RMSprop(ps, lr=0.001)),
    ("adagrad", lambda **k: optimizers.Adagrad(**k),
     lambda ps: torch.optim.Adagrad(ps, lr=0.001, initial_accumulator_value=0.1)),
    ("adadelta", lambda **k: optimizers.Adadelta(**k), lambda ps: torch.optim.Adadelta(ps, lr=0.001)),
    ("adamax", lambda **k: optimizers.Adamax(**k), lambda ps: torch.optim.Adamax(ps, lr=0.001)),
    ("nadam", lambda **k: optimizers.Nadam(**k),
     lambda ps: torch.optim.NAdam(ps, lr=0.001, momentum_decay=1.0)),
    ("lion", lambda **k: optimizers.Lion(**k), None),
]
VARIANTS = [("", {}), ("+ema", {"use_ema": True}), ("+clip", {"global_clipnorm": 1.0})]


def best(fn, repeat):
    fn()  # warm: creates the state
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def time_cnnc(make, options, shapes, rng, repeat):
    weights = [Weight(f"w{i}", rng.standard_normal(s, dtype=np.float32) * 0.1) for i, s in enumerate(shapes)]
    grads = [rng.standard_normal(s, dtype=np.float32) * 0.01 for s in shapes]
    opt = make(**options)
    pairs = list(zip(grads, weights))
    return best(lambda: opt.apply_gradients(pairs), repeat)


def time_torch(make, options, shapes, rng, repeat):
    params = [torch.nn.Parameter(torch.from_numpy(rng.standard_normal(s, dtype=np.float32) * 0.1))
              for s in shapes]
    for p in params:
        p.grad = torch.from_numpy(rng.standard_normal(p.shape, dtype=np.float32) * 0.01)
    opt = make(params)
    averages = [p.detach().clone() for p in params]

    def step():
        if "global_clipnorm" in options:
            torch.nn.utils.clip_grad_norm_(params, options["global_clipnorm"])
        opt.step()
        if options.get("use_ema"):
            with torch.no_grad():
                torch._foreach_lerp_(averages, [p.detach() for p in params], 1 - 0.99)
    return best(step, repeat)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--filter", default="")
    args = parser.parse_args()
    shapes = resnet18_shapes()
    total = sum(int(np.prod(s)) for s in shapes)
    print(f"ResNet-18 parameters: {total / 1e6:.2f} M in {len(shapes)} tensors; "
          f"isa {cnnc.isa()}; best of {args.repeat}")
    print(f"{'optimizer':<22}{'threads':>8}{'cnnc ms':>10}{'torch ms':>10}{'torch/cnnc':>12}")
    for threads in args.threads:
        cnnc.set_num_threads(threads)
        if torch is not None:
            torch.set_num_threads(threads)
        for name, ours, theirs in CASES:
            for suffix, options in VARIANTS:
                label = name + suffix
                if args.filter not in label:
                    continue
                rng = np.random.default_rng(0)
                c = time_cnnc(ours, options, shapes, rng, args.repeat)
                t = (time_torch(theirs, options, shapes, rng, args.repeat)
                     if torch is not None and theirs is not None else None)
                ratio = f"{t / c:12.2f}" if t else f"{'-':>12}"
                tms = f"{t * 1e3:10.2f}" if t else f"{'-':>10}"
                print(f"{label:<22}{threads:>8}{c * 1e3:10.2f}{tms}{ratio}")


if __name__ == "__main__":
    main()
