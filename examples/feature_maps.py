"""What a CNN sees: train the classic MNIST CNN briefly on Fashion-MNIST,
then write PNG grids of its first layer's filters and of the feature maps
one image produces in each convolution layer (through a feature extractor
``Model(model.inputs, layer.output)``, as in Keras).

    python examples/feature_maps.py [--epochs 1] [--out runs/feature_maps]
"""
import argparse
import os

from cnnc import visualize
from cnnc.applications import MnistCNN
from cnnc.datasets import fashion_mnist
from cnnc.layers import Conv2D
from cnnc.utils import set_random_seed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny run (smoke test)")
    parser.add_argument("--out", default="runs/feature_maps")
    args = parser.parse_args()
    set_random_seed(0)

    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    if args.quick:
        x_train, y_train = x_train[:512], y_train[:512]
    x_train = (x_train / 255.0).astype("float32")[..., None]
    image = (x_test[0] / 255.0).astype("float32")[..., None]

    model = MnistCNN(input_shape=(28, 28, 1), classes=10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, verbose=2)

    os.makedirs(args.out, exist_ok=True)
    written = [visualize.save_image_grid(image[None], os.path.join(args.out, "input.png"), cmap="gray",
                                         title=fashion_mnist.CLASS_NAMES[y_test[0]])]
    convs = [layer for layer in model.layers if isinstance(layer, Conv2D)]
    written.append(visualize.plot_filters(convs[0], os.path.join(args.out, "filters.png")))
    for layer in convs:
        extractor = visualize.feature_extractor(model, layer)      # Model(inputs, layer.output)
        maps = extractor.predict(image[None], verbose=0)[0]
        print(f"{layer.name}: feature maps {maps.shape}")
        written.append(visualize.plot_feature_maps(model, layer, image,
                                                   os.path.join(args.out, f"{layer.name}_maps.png")))
    print("wrote " + ", ".join(written))


if __name__ == "__main__":
    main()
