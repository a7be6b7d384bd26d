"""A 1-D CNN classifying generated sequences: noisy sine, square and
sawtooth waves of random frequency, phase and amplitude.

    python examples/conv1d_sequences.py [--quick]
"""
import argparse

import numpy as np

from cnnc.layers import Conv1D, Dense, GlobalAveragePooling1D, MaxPooling1D
from cnnc.models import Sequential
from cnnc.utils import set_random_seed

CLASSES = ("sine", "square", "sawtooth")


def make_waves(n, length=128, seed=0):
    """(x (n, length, 1), y (n,)) with y the wave shape."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    t = np.arange(length)[None, :]
    freq = rng.uniform(1 / 40, 1 / 8, (n, 1))
    phase = rng.uniform(0, 1, (n, 1))
    cycle = (t * freq + phase) % 1.0
    waves = np.where(y[:, None] == 0, np.sin(2 * np.pi * cycle),
                     np.where(y[:, None] == 1, np.sign(cycle - 0.5), 2 * cycle - 1))
    x = waves * rng.uniform(0.5, 1.5, (n, 1)) + rng.normal(0, 0.3, (n, length))
    return x.astype("float32")[..., None], y


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny run (smoke test)")
    args = parser.parse_args()
    set_random_seed(0)
    n_train = 600 if args.quick else 6000
    x_train, y_train = make_waves(n_train, seed=1)
    x_test, y_test = make_waves(n_train // 4, seed=2)

    model = Sequential([
        Conv1D(16, 7, activation="relu", input_shape=(128, 1)),
        MaxPooling1D(2),
        Conv1D(32, 5, activation="relu"),
        MaxPooling1D(2),
        Conv1D(32, 3, activation="relu"),
        GlobalAveragePooling1D(),
        Dense(len(CLASSES), activation="softmax"),
    ])
    model.summary()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=1 if args.quick else args.epochs, batch_size=32,
              validation_data=(x_test, y_test), verbose=2)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy {accuracy:.4f} on {len(x_test)} generated sequences ({', '.join(CLASSES)})")


if __name__ == "__main__":
    main()
