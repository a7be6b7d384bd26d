"""Command line: ``cnnc <command>`` (or ``python -m cnnc <command>``).

Each command is one function taking the parsed arguments and returning the
exit status; add a command by writing one and registering it in COMMANDS.
"""
import argparse
import sys
import time

from cnnc import config as _config
from cnnc.cli import predict as _predict
from cnnc.cli import train as _train


def cmd_info(args):
    """Print the version, the instruction-set path and the thread count."""
    import cnnc

    print(f"cnnc {cnnc.__version__}")
    print(f"isa: {cnnc.isa()} (best on this CPU: {cnnc.max_isa()}; force a lower one with CNNC_ISA=scalar|avx2)")
    print(f"threads: {cnnc.get_num_threads()} (set with cnnc.set_num_threads(n) or OMP_NUM_THREADS)")
    print(f"C headers: {cnnc.get_include()}")
    print(f"C library: {cnnc.get_library_dir()}")
    return 0


def _best_time(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def cmd_demo(args):
    """Run the C kernels on a few inputs and time them against NumPy."""
    import numpy as np

    import cnnc
    from cnnc import ops

    x = np.linspace(-3, 3, 7, dtype=np.float32)
    print(f"cnnc {cnnc.__version__} on the {cnnc.isa()} path, {cnnc.get_num_threads()} thread(s)\n")
    print("x        " + " ".join(f"{v:8.3f}" for v in x))
    for name, fn in (("relu", ops.relu), ("elu", ops.elu), ("sigmoid", ops.sigmoid), ("tanh", ops.tanh),
                     ("gelu", ops.gelu)):
        print(f"{name:8s} " + " ".join(f"{v:8.3f}" for v in fn(x)))
    logits = np.array([[2.0, 1.0, 0.1], [-np.inf, 0.0, 0.0]], np.float32)
    print("\nsoftmax of", logits.tolist())
    print(ops.softmax(logits).round(4))

    n = args.size
    rng = np.random.default_rng(0)
    big = rng.standard_normal(n).astype(np.float32)
    print(f"\n{n:,} elements, best of {args.repeat} (ms):")
    print(f"{'op':10s} {'cnnc':>8s} {'numpy':>8s} {'speed-up':>9s}")
    rows = (
        ("sigmoid", lambda: ops.sigmoid(big), lambda: 1 / (1 + np.exp(-big))),
        ("tanh", lambda: ops.tanh(big), lambda: np.tanh(big)),
        ("softmax", lambda: ops.softmax(big.reshape(-1, 1000)),
         lambda: (lambda e: e / e.sum(-1, keepdims=True))(
             np.exp(big.reshape(-1, 1000) - big.reshape(-1, 1000).max(-1, keepdims=True)))),
    )
    with np.errstate(over="ignore"):
        for name, ours, theirs in rows:
            t_ours, t_np = _best_time(ours, args.repeat), _best_time(theirs, args.repeat)
            print(f"{name:10s} {t_ours * 1e3:8.2f} {t_np * 1e3:8.2f} {t_np / t_ours:8.1f}x")
    return 0


COMMANDS = {
    "info": (cmd_info, None),
    "demo": (cmd_demo, lambda p: (p.add_argument("--size", type=int, default=1_000_000,
                                                 help="elements for the timing (default 1e6)"),
                                  p.add_argument("--repeat", type=int, default=5))),
    "train": (_train.run, _train.add_arguments),
    "predict": (_predict.run, _predict.add_arguments),
    "config": (_config.run, _config.add_arguments),
}


def build_parser():
    parser = argparse.ArgumentParser(prog="cnnc", description="cnnc: convolutional networks on the CPU.")
    sub = parser.add_subparsers(dest="command", metavar="command")
    for name, (fn, add_arguments) in COMMANDS.items():
        p = sub.add_parser(name, help=fn.__doc__.strip().splitlines()[0], description=fn.__doc__)
        if add_arguments:
            add_arguments(p)
        p.set_defaults(func=fn)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
