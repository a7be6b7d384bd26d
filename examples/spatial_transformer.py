"""A spatial transformer network (Jaderberg et al., 2015) on distorted
Fashion-MNIST: each 28x28 image is placed in a 42x42 canvas, rotated by up
to 45 degrees, scaled and shifted. A small localization network predicts an
affine transform per image, AffineGridGenerator and BilinearSampler resample
the canvas into a 28x28 view, and a CNN classifies that view; everything is
trained end to end, the transform from the classification loss alone.

    python examples/spatial_transformer.py            # 5 epochs on 20,000 images
    python examples/spatial_transformer.py --quick    # seconds, on a slice

Writes the distorted inputs and what the transformer made of them to
OUT/stn.png.
"""
import argparse
import os
import time

import numpy as np

from cnnc import ops, visualize
from cnnc.datasets import fashion_mnist
from cnnc.layers import (AffineGridGenerator, BilinearSampler, Conv2D, Dense, Flatten, Input,
                         MaxPooling2D)
from cnnc.models import Model
from cnnc.utils import set_random_seed

CANVAS = 42


def distort(images, seed):
    """28x28 images -> 42x42 canvases, randomly rotated, zoomed and shifted."""
    pad = (CANVAS - 28) // 2
    canvas = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    return ops.random_affine(canvas, rotation=np.pi / 4, translate_y=0.12, translate_x=0.12,
                             zoom_y=(-0.15, 0.25), fill_mode="constant", seed=seed)


def build():
    images = Input((CANVAS, CANVAS, 1), name="canvas")
    # localization network: where is the garment and how is it turned?
    h = MaxPooling2D(2)(images)
    h = Conv2D(16, 5, activation="relu")(h)
    h = MaxPooling2D(2)(h)
    h = Conv2D(32, 3, activation="relu")(h)
    h = Dense(32, activation="relu")(Flatten()(h))
    head = Dense(6, kernel_initializer="zeros", name="theta")
    theta = head(h)
    head.bias.value[...] = [1, 0, 0, 0, 1, 0]   # start from the identity transform
    grid = AffineGridGenerator(28, 28, name="grid")(theta)
    view = BilinearSampler(name="sampler")([images, grid])
    # classifier on the 28x28 view
    c = Conv2D(32, 3, activation="relu")(view)
    c = MaxPooling2D(2)(c)
    c = Conv2D(64, 3, activation="relu")(c)
    c = MaxPooling2D(2)(c)
    c = Dense(128, activation="relu")(Flatten()(c))
    outputs = Dense(10, activation="softmax")(c)
    return Model(images, outputs, name="spatial_transformer")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train-size", type=int, default=20000)
    parser.add_argument("--quick", action="store_true", help="tiny run (smoke test)")
    parser.add_argument("--out", default="runs/spatial_transformer")
    args = parser.parse_args()
    set_random_seed(0)

    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    train_size, test_size = (512, 256) if args.quick else (args.train_size, 2000)
    if args.quick:
        args.epochs = 1
    x_train = distort((x_train[:train_size] / 255.0).astype("float32")[..., None], seed=1)
    x_test = distort((x_test[:test_size] / 255.0).astype("float32")[..., None], seed=2)
    y_train, y_test = y_train[:train_size], y_test[:test_size]

    model = build()
    model.summary()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=64, verbose=2)
    seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy {accuracy:.4f} (loss {loss:.4f}) on {len(x_test)} distorted images, "
          f"{seconds / args.epochs:.1f} s per epoch")

    sampler = Model(model.inputs, model.get_layer("sampler").output)
    views = sampler.predict(x_test[:8], verbose=0)
    os.makedirs(args.out, exist_ok=True)
    tiles = np.concatenate([x_test[:8, 7:35, 7:35, 0], views[..., 0]])
    path = visualize.save_image_grid(tiles, os.path.join(args.out, "stn.png"), ncols=8, cmap="gray",
                                     title="distorted inputs (centre crop) / transformer output")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
