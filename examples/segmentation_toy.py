"""A fully convolutional network segmenting generated shapes: every pixel
is classified as shape or background. Conv2D and pooling halve the
resolution, Conv2DTranspose and UpSampling2D bring it back, a 1x1
convolution gives a per-pixel probability.

    python examples/segmentation_toy.py [--quick] [--out runs/segmentation]
"""
import argparse
import os

import numpy as np

from cnnc import visualize
from cnnc.layers import Concatenate, Conv2D, Conv2DTranspose, Input, MaxPooling2D, UpSampling2D
from cnnc.models import Model
from cnnc.utils import set_random_seed


def make_shapes(n, size=32, seed=0):
    """Noisy images of 1-3 filled discs and rectangles, and their masks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    masks = np.zeros((n, size, size), bool)
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.integers(4, size - 4, 2)
            r = rng.integers(3, 8)
            if rng.random() < 0.5:
                masks[i] |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            else:
                masks[i] |= (abs(yy - cy) <= r) & (abs(xx - cx) <= rng.integers(2, 8))
    images = masks * rng.uniform(0.5, 1.0, (n, 1, 1)) + rng.normal(0, 0.25, masks.shape)
    return images.astype("float32")[..., None], masks.astype("float32")[..., None]


def build(size=32):
    inputs = Input(shape=(size, size, 1))
    c1 = Conv2D(16, 3, padding="same", activation="relu")(inputs)
    p1 = MaxPooling2D(2)(c1)                                          # size / 2
    c2 = Conv2D(32, 3, padding="same", activation="relu")(p1)
    p2 = MaxPooling2D(2)(c2)                                          # size / 4
    c3 = Conv2D(32, 3, padding="same", activation="relu")(p2)
    u2 = Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(c3)   # size / 2
    m2 = Concatenate()([u2, c2])
    c4 = Conv2D(16, 3, padding="same", activation="relu")(UpSampling2D(2)(m2))    # size
    m1 = Concatenate()([c4, c1])
    outputs = Conv2D(1, 1, activation="sigmoid")(m1)
    return Model(inputs, outputs, name="tiny_unet")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny run (smoke test)")
    parser.add_argument("--out", default="runs/segmentation")
    args = parser.parse_args()
    set_random_seed(0)
    x_train, y_train = make_shapes(200 if args.quick else 3000, seed=1)
    x_test, y_test = make_shapes(50 if args.quick else 500, seed=2)

    model = build()
    model.summary()
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=1 if args.quick else args.epochs, batch_size=16, verbose=2)
    pred = model.predict(x_test, verbose=0) > 0.5
    truth = y_test > 0.5
    iou = (pred & truth).sum() / max(1, (pred | truth).sum())
    print(f"pixel accuracy {(pred == truth).mean():.4f}, IoU {iou:.4f} on {len(x_test)} test images")
    os.makedirs(args.out, exist_ok=True)
    tiles = np.concatenate([x_test[:4, ..., 0], y_test[:4, ..., 0], pred[:4, ..., 0].astype("float32")])
    path = visualize.save_image_grid(tiles, os.path.join(args.out, "segmentation.png"), ncols=4,
                                     cmap="gray", title="images / true masks / predicted masks")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
