"""LeNet-5 (LeCun et al., 1998) on Fashion-MNIST, from the model zoo.

    python examples/lenet5.py            # 10 epochs, SGD with momentum
    python examples/lenet5.py --quick    # a few seconds
"""
import argparse

from cnnc.applications import LeNet5
from cnnc.datasets import fashion_mnist
from cnnc.optimizers import SGD
from cnnc.utils import set_random_seed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="tiny run (smoke test)")
    args = parser.parse_args()
    set_random_seed(0)

    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    if args.quick:
        x_train, y_train, x_test, y_test = x_train[:512], y_train[:512], x_test[:256], y_test[:256]
        args.epochs = 1
    # Zero mean and unit variance suit tanh units better than [0, 1].
    mean, std = x_train.mean(), x_train.std()
    x_train = ((x_train - mean) / std).astype("float32")[..., None]
    x_test = ((x_test - mean) / std).astype("float32")[..., None]

    model = LeNet5(input_shape=(28, 28, 1), classes=10)
    model.summary()
    model.compile(optimizer=SGD(learning_rate=0.05, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=64,
              validation_data=(x_test, y_test), verbose=2 if args.quick else "auto")
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"LeNet-5 test accuracy {accuracy:.4f} (loss {loss:.4f})")


if __name__ == "__main__":
    main()
