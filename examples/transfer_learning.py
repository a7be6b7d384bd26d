"""Transfer learning on Fashion-MNIST: train a CNN on five classes (tops,
trousers, pullovers, dresses, coats), freeze its convolutional base, and
fine-tune a new head on the five other classes (sandals, shirts, sneakers,
bags, ankle boots) from only a few labelled images each; compare with the
same network trained from scratch on those few images.

    python examples/transfer_learning.py [--per-class 50] [--quick]
"""
import argparse

import numpy as np

from cnnc.applications import MnistCNN
from cnnc.datasets import fashion_mnist
from cnnc.layers import Dense, Input
from cnnc.models import Model
from cnnc.utils import set_random_seed


def subset(x, y, classes, per_class=None, seed=0):
    """Images of ``classes`` relabelled 0..len(classes)-1 (``per_class`` of each)."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        keep.append(idx if per_class is None else rng.choice(idx, per_class, replace=False))
    keep = np.sort(np.concatenate(keep))
    relabel = {c: i for i, c in enumerate(classes)}
    return ((x[keep] / 255.0).astype("float32")[..., None],
            np.array([relabel[c] for c in y[keep]], "int64"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=50, help="labelled images per new class")
    parser.add_argument("--base-epochs", type=int, default=2)
    parser.add_argument("--head-epochs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="tiny run (smoke test)")
    args = parser.parse_args()
    set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    old, new = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]
    xa, ya = subset(x_train, y_train, old, per_class=100 if args.quick else None)
    xb, yb = subset(x_train, y_train, new, per_class=args.per_class)
    xb_test, yb_test = subset(x_test, y_test, new, per_class=50 if args.quick else None)
    if args.quick:
        args.base_epochs, args.head_epochs = 1, 2

    # 1. A CNN trained on the five old classes.
    base = MnistCNN(input_shape=(28, 28, 1), classes=len(old), name="base")
    base.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    base.fit(xa, ya, epochs=args.base_epochs, batch_size=32, verbose=2)

    # 2. Its layers up to the 128-unit dense layer, frozen, under a new head.
    features = Model(base.inputs, base.get_layer("dense").output, name="features")
    features.trainable = False
    inputs = Input(shape=(28, 28, 1))
    outputs = Dense(len(new), activation="softmax", name="new_head")(features(inputs))
    transfer = Model(inputs, outputs, name="transfer")
    transfer.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    transfer.summary()
    frozen_before = [w.copy() for w in features.get_weights()]
    transfer.fit(xb, yb, epochs=args.head_epochs, batch_size=16, verbose=2 if args.quick else 0)
    assert all(np.array_equal(a, b) for a, b in zip(frozen_before, features.get_weights()))
    _, transfer_acc = transfer.evaluate(xb_test, yb_test, verbose=0)

    # 3. The same network from scratch on the same few images.
    scratch = MnistCNN(input_shape=(28, 28, 1), classes=len(new), name="scratch")
    scratch.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    scratch.fit(xb, yb, epochs=args.head_epochs, batch_size=16, verbose=0)
    _, scratch_acc = scratch.evaluate(xb_test, yb_test, verbose=0)

    print(f"{args.per_class} labelled images per new class, test accuracy on the new classes:")
    print(f"  frozen base + new head: {transfer_acc:.4f}")
    print(f"  from scratch:           {scratch_acc:.4f}")


if __name__ == "__main__":
    main()
