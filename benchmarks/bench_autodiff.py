"""What automatic differentiation costs: the MNIST CNN of bench_train.py
(batch 32, Adam, model.fit) written three ways, in one run:

* ``fused``: the zoo's Sequential of built-in layers (hand-written backward);
* ``subclassed``: a subclassed model calling the same built-in layers in
  ``call()`` (one tape node per layer call, each with the layer's fused
  backward);
* ``ops only``: a subclassed model creating its weights with ``add_weight``
  and computing with ``cnnc.ops`` (conv, relu, max_pool, matmul, softmax
  cross-entropy through the tape: every gradient from autodiff).

    python benchmarks/bench_autodiff.py [--steps 100] [--repeats 3] [--threads 1]

Images per second, best of ``repeats``; the ratio is against ``fused``.
"""
import argparse
import time

import numpy as np

import cnnc
from cnnc import layers, ops
from cnnc.applications import MnistCNN


class LayersCNN(cnnc.Model):
    def __init__(self):
        super().__init__()
        self.conv1 = layers.Conv2D(32, 3, activation="relu")
        self.pool1 = layers.MaxPooling2D()
        self.conv2 = layers.Conv2D(64, 3, activation="relu")
        self.pool2 = layers.MaxPooling2D()
        self.flatten = layers.Flatten()
        self.dense1 = layers.Dense(128, activation="relu")
        self.dense2 = layers.Dense(10)

    def call(self, x):
        x = self.pool1(self.conv1(x))
        x = self.pool2(self.conv2(x))
        return self.dense2(self.dense1(self.flatten(x)))


class OpsCNN(cnnc.Model):
    def build(self, input_shape):
        def weight(*shape):
            return self.add_weight(shape=shape, initializer="glorot_uniform")
        self.k1, self.b1 = weight(3, 3, 1, 32), self.add_weight(shape=(32,), initializer="zeros")
        self.k2, self.b2 = weight(3, 3, 32, 64), self.add_weight(shape=(64,), initializer="zeros")
        self.w1, self.c1 = weight(1600, 128), self.add_weight(shape=(128,), initializer="zeros")
        self.w2, self.c2 = weight(128, 10), self.add_weight(shape=(10,), initializer="zeros")

    def call(self, x):
        x = ops.max_pool(ops.relu(ops.conv2d(x, self.k1, self.b1)), 2)
        x = ops.max_pool(ops.relu(ops.conv2d(x, self.k2, self.b2)), 2)
        x = ops.relu(ops.matmul(ops.reshape(x, (x.shape[0], -1)), self.w1) + self.c1)
        return ops.matmul(x, self.w2) + self.c2


def images_per_second(model, loss, x, y, batch_size, repeats):
    model.compile(optimizer="adam", loss=loss)
    model.fit(x[:batch_size * 5], y[:batch_size * 5], batch_size=batch_size, verbose=0)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
        best = max(best, len(x) / (time.perf_counter() - start))
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    cnnc.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    n = args.steps * args.batch_size
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]
    logits = cnnc.losses.CategoricalCrossentropy(from_logits=True)
    rows = [("fused", images_per_second(MnistCNN(), "categorical_crossentropy", x, y,
                                        args.batch_size, args.repeats)),
            ("subclassed", images_per_second(LayersCNN(), logits, x, y, args.batch_size,
                                             args.repeats)),
            ("ops only", images_per_second(OpsCNN(), logits, x, y, args.batch_size,
                                           args.repeats))]
    print(f"MNIST CNN, batch {args.batch_size}, Adam, {n} images per run, best of "
          f"{args.repeats}, {args.threads} thread(s); cnnc isa {cnnc.isa()}")
    print(f"{'model':>12} | {'img/s':>8} | {'vs fused':>8}")
    print("-" * 34)
    for name, rate in rows:
        print(f"{name:>12} | {rate:>8.0f} | {rate / rows[0][1]:>7.2f}x")


if __name__ == "__main__":
    main()
