"""The training step of the best Fashion-MNIST recipe (``cnnc train --recipe
best``): its speed, and its bits against another install.

    python benchmarks/bench_step.py [--threads 1] [--steps 20] [--rounds 3]
    python benchmarks/bench_step.py --compare BEFORE_SITE AFTER_SITE [--rounds 6]
    python benchmarks/bench_step.py --compare BEFORE_SITE AFTER_SITE --threads 2 --wall
    python benchmarks/bench_step.py --digest [--threads 1 2] [--steps 8]
    python benchmarks/bench_step.py --compare BEFORE_SITE AFTER_SITE --digest

The step is the recipe's own: its model (Rescaling, then CompactResNet
width 64, blocks (2, 2)), batch 128, its optimizer (SGD, Nesterov momentum,
weight decay, warm-up then cosine decay, the moving average of the weights),
label smoothing and deterministic mode, through ``train_on_batch``.

Time is the process's CPU milliseconds per step (``time.process_time``),
best and median over rounds of ``--steps`` steps each, after three warm-up
steps: at one thread (the default) the time other processes take from the
machine does not count, so a busy machine still compares builds fairly.
--wall times wall-clock milliseconds per step instead, what a run at
several threads waits for (also the time the threads wait on each other and
on other processes: compare builds with it on a quiet machine, or over many
alternating rounds).

--compare runs each install (a directory holding an installed ``cnnc``, as
``pip install --target`` makes) in its own process, put first on
PYTHONPATH, one process per round, alternating and swapping the order each
round, and prints each one's times and their ratio.

--digest trains ``--steps`` steps on fixed random batches at each thread
count of ``--threads`` and prints a SHA-256 of the losses, every weight
(batch-norm statistics included) and every optimizer slot (velocity and
average); deterministic mode promises the same digest at every thread count.
With --compare, it says whether the two installs agree bit for bit.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

import numpy as np

BATCH = 128


def _model():
    import cnnc
    from cnnc import losses
    from cnnc.cli import train as cli_train
    from cnnc.cli.recipes import RECIPES
    options = argparse.Namespace(**RECIPES["best"]["options"])
    model = cli_train.build_model(options.model, (28, 28, 1), 10, 1 / 255.0, options.width,
                                  list(options.blocks))
    model.compile(optimizer=cli_train.make_optimizer(options, steps_per_epoch=100, epochs=2),
                  loss=losses.SparseCategoricalCrossentropy(label_smoothing=options.label_smoothing),
                  metrics=["accuracy"])
    cnnc.set_deterministic(bool(options.deterministic))
    return model


def _batch(rng):
    x = np.floor(rng.random((BATCH, 28, 28, 1)) * 256).astype(np.float32)
    return x, rng.integers(0, 10, BATCH)


def child_time(threads, steps, seed, wall=False):
    import cnnc
    from cnnc.utils import set_random_seed
    set_random_seed(seed)
    cnnc.set_num_threads(threads)
    model = _model()
    x, y = _batch(np.random.default_rng(seed))
    for _ in range(3):
        model.train_on_batch(x, y)
    clock = time.perf_counter if wall else time.process_time
    start = clock()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return {"ms": (clock() - start) / steps * 1e3}


def child_digest(threads, steps, seed):
    import cnnc
    from cnnc.utils import set_random_seed
    set_random_seed(seed)
    cnnc.set_num_threads(threads)
    model = _model()
    rng = np.random.default_rng(seed)
    digest = hashlib.sha256()
    for _ in range(steps):
        x, y = _batch(rng)
        loss = model.train_on_batch(x, y)
        digest.update(np.float64(loss if np.isscalar(loss) else loss[0]).tobytes())
    for weight in model.weights:
        digest.update(np.ascontiguousarray(weight.value).tobytes())
    optimizer = model.optimizer
    for weight in model.trainable_weights:
        for name, slot in sorted(optimizer.slots(weight).items()):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(slot).tobytes())
    return {"sha256": digest.hexdigest(), "weights": len(model.weights)}


def _run_child(site, what, threads, steps, seed, wall=False):
    """One child process's result (a dict) with ``site`` first on PYTHONPATH
    (None: this process's own path)."""
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join([os.path.abspath(site)] +
                                            ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    command = [sys.executable, os.path.abspath(__file__), "--child", what, "--threads", str(threads),
               "--steps", str(steps), "--seed", str(seed)] + (["--wall"] if wall else [])
    # Outside the source tree, so that its unbuilt cnnc/ does not shadow the install.
    out = subprocess.run(command, env=env, cwd=os.path.dirname(os.path.abspath(__file__)),
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{site or 'this install'}: {what} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_table(sites, args):
    threads = args.threads[0]
    times = {site: [] for site in sites}
    for r in range(args.rounds):
        order = sites if r % 2 == 0 else sites[::-1]
        for site in order:
            times[site].append(_run_child(site, "time", threads, args.steps, args.seed, args.wall)["ms"])
        print(f"round {r + 1}: " + "  ".join(f"{_name(s)} {times[s][-1]:.1f}" for s in sites), flush=True)
    print(f"\nrecipe 'best' training step, batch {BATCH}, {threads} thread(s), "
          f"{'wall-clock' if args.wall else 'CPU'} ms per step "
          f"({args.steps} steps per round, {args.rounds} rounds)")
    print(f"{'install':40s} {'best':>8s} {'median':>8s} {'img/s (best)':>13s}")
    for site in sites:
        t = times[site]
        print(f"{_name(site):40s} {min(t):8.1f} {np.median(t):8.1f} {BATCH / min(t) * 1e3:13.0f}")
    if len(sites) == 2:
        a, b = (times[s] for s in sites)
        print(f"ratio first / second: best {min(a) / min(b):.3f}, median {np.median(a) / np.median(b):.3f}")


def digest_table(sites, args):
    digests = {}
    for threads in args.threads:
        for site in sites:
            digests[site, threads] = _run_child(site, "digest", threads, args.steps, args.seed)["sha256"]
            print(f"{_name(site):40s} {threads} thread(s): {digests[site, threads]}", flush=True)
    same = len(set(digests.values())) == 1
    print(f"\nafter {args.steps} steps: " + ("the same bits everywhere" if same else "DIFFERENT bits"))
    return same


def _name(site):
    return site if site is not None else "(this install)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="thread count (timing: the first; digest: each, default 1 and 2)")
    parser.add_argument("--steps", type=int, default=None, help="steps per round (20) or digest (8)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per install")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare", nargs=2, metavar="SITE", help="two install directories to set against each other")
    parser.add_argument("--digest", action="store_true", help="the bits of the trained state instead of the time")
    parser.add_argument("--wall", action="store_true", help="time wall-clock ms per step, not CPU ms")
    parser.add_argument("--child", choices=("time", "digest"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads is None:
        args.threads = [1, 2] if args.digest else [1]
    if args.steps is None:
        args.steps = 8 if args.digest else 20
    if args.child:
        if args.child == "time":
            print(json.dumps(child_time(args.threads[0], args.steps, args.seed, args.wall)))
        else:
            print(json.dumps(child_digest(args.threads[0], args.steps, args.seed)))
        return
    sites = list(args.compare) if args.compare else [None]
    if args.digest:
        sys.exit(0 if digest_table(sites, args) else 1)
    time_table(sites, args)


if __name__ == "__main__":
    main()
