"""The classic Keras MNIST CNN, trained on Fashion-MNIST.

    python examples/fashion_mnist_cnn.py            # 5 epochs, batch 32, Adam (~0.91)
    python examples/fashion_mnist_cnn.py --quick    # a few seconds, on a slice

Uses the full Fashion-MNIST when it is installed (dataset-fashion-mnist,
$CNNC_DATA) and the sample bundled with cnnc otherwise.
"""
import argparse
import os
import time

from cnnc.datasets import fashion_mnist
from cnnc.layers import Conv2D, Dense, Flatten, MaxPooling2D
from cnnc.models import Sequential
from cnnc.utils import set_random_seed, to_categorical


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny run (smoke test)")
    parser.add_argument("--out", default="runs/fashion_mnist_cnn")
    args = parser.parse_args()
    set_random_seed(0)

    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    if args.quick:
        x_train, y_train, x_test, y_test = x_train[:512], y_train[:512], x_test[:256], y_test[:256]
        args.epochs = 1
    # Keras's preprocessing: [0, 1] floats with a channel axis, one-hot labels.
    x_train = (x_train / 255.0).astype("float32").reshape(-1, 28, 28, 1)
    x_test = (x_test / 255.0).astype("float32").reshape(-1, 28, 28, 1)
    y_train, y_test = to_categorical(y_train, 10), to_categorical(y_test, 10)

    model = Sequential([
        Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)),
        MaxPooling2D(pool_size=(2, 2)),
        Conv2D(64, (3, 3), activation='relu'),
        MaxPooling2D(pool_size=(2, 2)),
        Flatten(),
        Dense(128, activation='relu'),
        Dense(10, activation='softmax'),
    ])
    model.summary()
    model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, validation_data=(x_test, y_test),
              verbose=2 if args.quick else "auto")
    seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy {accuracy:.4f} (loss {loss:.4f}) after {args.epochs} epochs, "
          f"{seconds / args.epochs:.1f} s per epoch")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "model.safetensors")
    model.save(path)
    print(f"saved {path}")


if __name__ == "__main__":
    main()
