"""Training runs that tests/test_distributed.py launches under mpirun (or
alone, as the one-process reference). Not collected by pytest.

    python distributed_worker.py CASE OUT [options]

writes its results (weights, seen samples) to OUT as .npz (rank 0, or
OUT.rank<r>.npz for ``--every-rank``).
"""
import argparse
import os
import signal
import sys
import time

import numpy as np

import cnnc
import cnnc.data
import cnnc.distributed
from cnnc import layers
from cnnc.callbacks import Callback, CSVLogger, ModelCheckpoint
from cnnc.utils import set_random_seed


def conv_model(norm, dropout):
    # No bias before a normalization: its gradient is zero up to rounding, and
    # comparing rounding noise says nothing.
    model = cnnc.models.Sequential([layers.Input((8, 8, 3)),
                                    layers.Conv2D(6, 3, padding="same", use_bias=norm == "none")])
    if norm == "bn":
        model.add(layers.BatchNormalization(momentum=0.9))
    elif norm == "syncbn":
        model.add(layers.SyncBatchNormalization(momentum=0.9))
    model.add(layers.ReLU())
    model.add(layers.MaxPooling2D())
    model.add(layers.Flatten())
    if dropout:
        model.add(layers.Dropout(0.3))
    if norm == "syncbn":
        model.add(layers.Dense(16, use_bias=False))
        model.add(layers.SyncBatchNormalization(momentum=0.9))
        model.add(layers.ReLU())
    else:
        model.add(layers.Dense(16, activation="relu"))
    model.add(layers.Dense(5, activation="softmax"))
    return model


class SubclassedConv(cnnc.models.Model):
    """conv_model's layers in a subclassed model's call(), the first Dense
    called twice (a shared layer: its gradients are summed over the calls)."""

    def __init__(self):
        super().__init__()
        self.conv = layers.Conv2D(6, 3, padding="same", activation="relu")
        self.pool = layers.MaxPooling2D()
        self.flatten = layers.Flatten()
        self.hidden = layers.Dense(16, activation="relu")
        self.mix = layers.Dense(16)
        self.out = layers.Dense(5, activation="softmax")

    def call(self, x):
        h = self.hidden(self.flatten(self.pool(self.conv(x))))
        return self.out(h + self.mix(h) * 0.5 + self.mix(h * 0.25))


def shared_functional():
    """The functional form: a Dense called twice in the graph."""
    x = layers.Input((8, 8, 3))
    h = layers.Dense(16, activation="relu")(layers.Flatten()(layers.MaxPooling2D()(
        layers.Conv2D(6, 3, padding="same", activation="relu")(x))))
    mix = layers.Dense(16)
    h = layers.Add()([h, mix(h), mix(layers.ReLU()(h))])
    return cnnc.models.Model(x, layers.Dense(5, activation="softmax")(h))


def model_for(args):
    if args.arch == "subclassed":
        return SubclassedConv()
    if args.arch == "shared":
        return shared_functional()
    return conv_model(args.norm, args.dropout)


def conv_data(samples):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((samples, 8, 8, 3)).astype(np.float32)
    y = rng.integers(0, 5, samples)
    return x, y


class Recorder(layers.Layer):
    """Identity that records the first feature (the sample index) of the
    real rows of each training batch."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def forward(self, x, training=False):
        from cnnc.distributed import _context
        if training:
            strategy = _context.running_strategy()
            if strategy is None or strategy.position.local_rows:
                self.seen.append(np.rint(x[:, 0]).astype(np.int64).copy())
        return x

    def backward(self, dy):
        return dy


class AtBatch(Callback):
    """Run ``action`` on rank ``rank`` at training batch ``batch``."""

    def __init__(self, rank, batch, action):
        super().__init__()
        self.rank, self.batch, self.action = rank, batch, action

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.batch and _rank() == self.rank:
            self.action()


def _rank():
    from mpi4py import MPI
    return MPI.COMM_WORLD.Get_rank()


def strategy_or_none(args, **kwargs):
    if args.single:
        return None
    return cnnc.distributed.DataParallel(**kwargs)


def compiled(strategy, build, optimizer="sgd"):
    import contextlib
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = build()
        opt = cnnc.optimizers.SGD(0.05, momentum=0.9) if optimizer == "sgd" else \
            cnnc.optimizers.Adam(0.01)
        model.compile(opt, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def save(args, model, extra=None, rank=0):
    if rank != 0 and not args.every_rank:
        return
    path = args.out if not args.every_rank else f"{args.out}.rank{rank}.npz"
    arrays = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    arrays.update(extra or {})
    np.savez(path, **arrays)


def case_equal(args):
    """Train ``--steps`` global batches of 64; save the weights."""
    set_random_seed(3)
    strategy = strategy_or_none(args, check_every=5)
    model = compiled(strategy, lambda: model_for(args))
    x, y = conv_data(args.samples)
    history = model.fit(x, y, batch_size=64, epochs=args.epochs, verbose=0,
                        validation_data=conv_data(37))
    rank = 0 if strategy is None else strategy.rank
    logs = np.array([history.history["loss"][-1], history.history["accuracy"][-1],
                     history.history["val_loss"][-1], history.history["val_accuracy"][-1]])
    evaluated = np.array(model.evaluate(*conv_data(45), batch_size=16, verbose=0))
    save(args, model, {"logs": logs, "evaluated": evaluated,
                       "steps": np.array(model.optimizer.iterations)}, rank)


def case_shards(args):
    """Record which samples each rank trains on, per epoch."""
    set_random_seed(5)
    strategy = strategy_or_none(args)
    recorder = Recorder()
    model = compiled(strategy, lambda: cnnc.models.Sequential(
        [layers.Input((2,)), recorder, layers.Dense(3, activation="softmax")]))
    n = args.samples
    x = np.stack([np.arange(n), np.ones(n)], axis=1).astype(np.float32)
    y = np.arange(n) % 3
    epochs = []
    dataset = cnnc.data.Dataset(x, y, batch_size=args.batch_size, seed=4, prefetch=2)
    for _ in range(args.epochs):
        recorder.seen = []
        if args.dataset:
            model.fit(dataset, epochs=1, verbose=0)
        else:
            model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)
        epochs.append(np.concatenate(recorder.seen))
    rank = 0 if strategy is None else strategy.rank
    arrays = {f"epoch{e}": seen for e, seen in enumerate(epochs)}
    np.savez(f"{args.out}.rank{rank}.npz", **arrays)


def case_syncbn(args):
    """One SyncBatchNormalization forward and backward on this rank's part
    of a fixed global batch; saves y, dx (rescaled to the global mean
    loss), and the dgamma, dbeta contributions."""
    from cnnc.distributed import _context
    from cnnc.distributed.sharding import BatchPosition, shard_bounds
    set_random_seed(4)  # the same gamma on every rank
    strategy = strategy_or_none(args)
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((10, 3, 2, 4)) * 2 + 1).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    lo, hi = shard_bounds(10, strategy.size, strategy.rank)
    layer = layers.SyncBatchNormalization(momentum=0.5, gamma_initializer="random_normal")
    layer.build(x.shape)
    position = BatchPosition(lo, hi, 10)
    strategy.position = position
    _context.set_running(strategy)
    try:
        y = layer.forward(x[lo:hi], training=True)
        # dy is the gradient of the global mean loss; the layer gets that of
        # this rank's mean loss, 10/(hi-lo) times larger.
        dx = layer.backward(dy[lo:hi] * np.float32(10 / (hi - lo)))
    finally:
        _context.set_running(None)
    share = position.weight
    np.savez(f"{args.out}.rank{strategy.rank}.npz", y=y, dx=dx * np.float32(share),
             dgamma=layer.gamma.grad * share, dbeta=layer.beta.grad * share,
             gamma=layer.gamma.value, moving_mean=layer.moving_mean.value,
             moving_variance=layer.moving_variance.value, x=x, dy=dy)


def case_resume(args):
    """--phase first: 2 epochs with checkpoints; --phase resume: load the
    checkpoint on every rank and train epochs 3-4; --phase whole: 4 epochs."""
    set_random_seed(11)
    strategy = strategy_or_none(args)
    x, y = conv_data(300)
    ckpt = os.path.join(args.dir, "ckpt.cnnc")
    if args.phase == "resume":
        with strategy.scope():
            model = cnnc.saving.load_model(ckpt)
        first = 2
    else:
        model = compiled(strategy, lambda: conv_model("syncbn", False), optimizer="adam")
        first = 0
    last = 2 if args.phase == "first" else 4
    callbacks = [ModelCheckpoint(ckpt), CSVLogger(os.path.join(args.dir, f"log-{args.phase}.csv"))]
    model.fit(x, y, batch_size=32, epochs=last, initial_epoch=first, verbose=2,
              callbacks=callbacks, validation_data=conv_data(40))
    save(args, model, rank=strategy.rank)


def case_fault(args):
    """A rank raises, dies or hangs in the middle of training."""
    set_random_seed(2)
    actions = {
        "raise": lambda: (_ for _ in ()).throw(ValueError("rank 1 failed on purpose")),
        "kill": lambda: os.kill(os.getpid(), signal.SIGKILL),
        "hang": lambda: time.sleep(3600),
    }
    strategy = strategy_or_none(args, timeout=args.timeout, check_every=2)
    model = compiled(strategy, lambda: conv_model("syncbn", False))
    actions["diverge"] = lambda: model.trainable_weights[0].value.__iadd__(1.0)
    x, y = conv_data(640)
    print("training started", flush=True)
    model.fit(x, y, batch_size=32, epochs=5, verbose=0,
              callbacks=[AtBatch(1, 3, actions[args.fault])])


def case_mismatch(args):
    """Rank 1 differs from rank 0 in its model, its data or its batch."""
    set_random_seed(2)
    strategy = strategy_or_none(args)
    rank = strategy.rank
    units = 7 if (args.what == "model" and rank == 1) else 5
    model = compiled(strategy, lambda: cnnc.models.Sequential(
        [layers.Input((4,)), layers.Dense(units), layers.Dense(3, activation="softmax")]))
    samples = 90 if (args.what == "data" and rank == 1) else 100
    batch = 24 if (args.what == "batch" and rank == 1) else 20
    x = np.random.default_rng(0).standard_normal((samples, 4)).astype(np.float32)
    try:
        model.fit(x, np.arange(samples) % 3, batch_size=batch, epochs=1, verbose=0)
    except ValueError as exc:
        print(f"rank {rank} refused: {exc}", flush=True)
        sys.exit(3)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case")
    p.add_argument("out")
    p.add_argument("--single", action="store_true", help="one process, no strategy")
    p.add_argument("--every-rank", action="store_true")
    p.add_argument("--norm", default="none", choices=("none", "bn", "syncbn"))
    p.add_argument("--dropout", action="store_true")
    p.add_argument("--arch", default="sequential", choices=("sequential", "subclassed",
                                                                    "shared"))
    p.add_argument("--samples", type=int, default=1280)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--dataset", action="store_true", help="feed a cnnc.data.Dataset")
    p.add_argument("--phase", default="whole")
    p.add_argument("--dir", default=".")
    p.add_argument("--fault", default="raise")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--what", default="model")
    args = p.parse_args()
    globals()["case_" + args.case](args)


if __name__ == "__main__":
    main()
