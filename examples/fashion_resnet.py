"""The best recipe, written with the Python API (``cnnc train --recipe best``
runs the same): a CompactResNet (width 64, two residual blocks per stage)
trained on Fashion-MNIST with flips, crops and random erasing (prepared in
a background thread by cnnc.data.Dataset), SGD with Nesterov momentum, a
warm-up then cosine learning rate, label smoothing and a moving average of
the weights, evaluated with test-time augmentation (flips and one-pixel
shifts); deterministic, so
the same seed gives the same weights at any thread count. Measured results
on two cores: docs/recipes.md.

    python examples/fashion_resnet.py [--epochs 35] [--out runs/fashion_resnet]
    python examples/fashion_resnet.py --quick
"""
import argparse
import os
import time

import numpy as np

import cnnc
from cnnc import layers, losses, visualize
from cnnc.applications import CompactResNet
from cnnc.data import Dataset
from cnnc.datasets import fashion_mnist
from cnnc.models import Model
from cnnc.optimizers import SGD
from cnnc.optimizers.schedules import CosineDecay
from cnnc.utils import set_random_seed


class Augment:
    """Random horizontal flips, 2-pixel pad-and-crop shifts and random
    erasing of half the images, in training."""

    def __init__(self, seed=0):
        self.layers = [layers.RandomFlip("horizontal", seed=seed),
                       layers.RandomCrop(28, 28, padding=2, seed=seed + 101),
                       layers.RandomErasing(0.5, scale=(0.02, 0.25), seed=seed + 202)]

    def __call__(self, x, training=True):
        for layer in self.layers:
            x = layer(x, training=True)
        return x


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=35)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1, help="peak learning rate")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--blocks", type=int, nargs=2, default=(2, 2), help="residual blocks per stage")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny run (smoke test)")
    parser.add_argument("--out", default="runs/fashion_resnet")
    args = parser.parse_args()
    set_random_seed(args.seed)
    cnnc.set_deterministic(True)

    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    if args.quick:
        x_train, y_train, x_test, y_test = x_train[:256], y_train[:256], x_test[:128], y_test[:128]
        args.epochs, args.width = 1, 8
    x_train, x_test = x_train[..., None], x_test[..., None]   # uint8 (N, 28, 28, 1)

    train = Dataset(x_train, y_train, batch_size=args.batch_size, seed=args.seed, augment=Augment(args.seed))
    warmup = len(train) if args.epochs > 1 else 0      # one epoch of linear warm-up
    schedule = CosineDecay(args.lr / 10, decay_steps=args.epochs * len(train) - warmup,
                           warmup_target=args.lr, warmup_steps=warmup, alpha=0.01)
    inputs = layers.Input(shape=(28, 28, 1))
    x = layers.Rescaling(1 / 255.0)(inputs)            # the model takes raw pixels 0..255
    model = Model(inputs, CompactResNet(width=args.width, blocks=args.blocks)(x), name="fashion_resnet")
    model.summary()
    model.compile(optimizer=SGD(learning_rate=schedule, momentum=0.9, nesterov=True, weight_decay=5e-3,
                                use_ema=True, ema_momentum=0.998),
                  loss=losses.SparseCategoricalCrossentropy(label_smoothing=0.1), metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(train, epochs=args.epochs, verbose=2 if args.quick else "auto")
    minutes = (time.perf_counter() - start) / 60
    probs = model.predict(x_test, batch_size=256, verbose=0, tta="flip+shift")   # ends with the averaged weights
    accuracy = float(np.mean(probs.argmax(1) == y_test))
    print(f"test accuracy {accuracy:.4f} with flip+shift TTA after {args.epochs} epochs, {minutes:.1f} min of training")
    os.makedirs(args.out, exist_ok=True)
    model.save(os.path.join(args.out, "model.safetensors"))
    names = fashion_mnist.CLASS_NAMES
    paths = [visualize.plot_history(history, os.path.join(args.out, "curves.png")),
             visualize.plot_confusion_matrix(y_test, probs, os.path.join(args.out, "confusion.png"),
                                             class_names=names),
             visualize.plot_misclassified(x_test, y_test, probs, os.path.join(args.out, "misclassified.png"),
                                          class_names=names)]
    print("wrote", ", ".join(paths), "and", os.path.join(args.out, "model.safetensors"))


if __name__ == "__main__":
    main()
