"""The vertical-edge filter [[1, 0, -1], [1, 0, -1], [1, 0, -1]] applied to
a real image by a Conv2D layer with fixed weights, and shown.

    python examples/edge_filter.py [--index 0] [--out runs/edge_filter]

Writes a PNG with the image, the filter response (bright where the image
gets darker from left to right, dark where it gets lighter) and its
magnitude.
"""
import argparse
import os

import numpy as np

from cnnc.datasets import fashion_mnist
from cnnc.layers import Conv2D
from cnnc.visualize import save_image_grid


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=int, default=0, help="which test image")
    parser.add_argument("--quick", action="store_true", help="same as the default run (it is fast)")
    parser.add_argument("--out", default="runs/edge_filter")
    args = parser.parse_args()

    _, (x_test, y_test) = fashion_mnist.load_data()
    image = x_test[args.index].astype("float32") / 255.0        # (28, 28)

    kernel = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]], "float32")
    conv = Conv2D(1, (3, 3), padding="same", use_bias=False)
    conv.build((None, 28, 28, 1))
    conv.set_weights([kernel.reshape(3, 3, 1, 1)])              # (kh, kw, in, out), Keras layout
    edges = conv(image[None, :, :, None])[0, :, :, 0]

    # Check against the definition: y[i, j] = sum_uv x[i+u-1, j+v-1] k[u, v].
    padded = np.pad(image, 1)
    reference = sum(padded[u:u + 28, v:v + 28] * kernel[u, v] for u in range(3) for v in range(3))
    assert np.allclose(edges, reference, atol=1e-5)

    os.makedirs(args.out, exist_ok=True)
    path = save_image_grid(np.stack([image, edges, np.abs(edges)]), os.path.join(args.out, "edges.png"),
                           ncols=3, cmap="gray",
                           title=f"{fashion_mnist.CLASS_NAMES[y_test[args.index]]}: image, "
                                 f"vertical edges, |edges|")
    print(f"response range [{edges.min():.2f}, {edges.max():.2f}]; wrote {path}")


if __name__ == "__main__":
    main()
