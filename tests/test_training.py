"""End-to-end training with the real layers: the Keras example of the issue,
overfitting, loss decrease, callbacks in fit, reproducibility, progress
output, regularization, freezing, sparse/binary losses, datasets."""
import numpy as np
import pytest

from cnnc import callbacks, layers, optimizers, regularizers
from cnnc.layers import Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D
from cnnc.models import Model, Sequential
from cnnc.utils import set_random_seed, to_categorical


def _images(rng, n, classes=10):
    """Learnable synthetic digits: a bright 6x6 square whose position is the
    class, plus noise."""
    labels = rng.integers(0, classes, n)
    x = rng.random((n, 28, 28, 1), dtype=np.float32) * 0.3
    for i, c in enumerate(labels):
        r, col = divmod(int(c), 4)
        x[i, 2 + 8 * r:8 + 8 * r, 2 + 6 * col:8 + 6 * col, 0] += 0.7
    return x, labels


def test_keras_example_runs_unchanged(rng):
    set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = _images(rng, 256), _images(rng, 64)
    y_train, y_test = to_categorical(y_train, 10), to_categorical(y_test, 10)
    # --- the example, imports changed only ---
    model = Sequential([
        Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)),
        MaxPooling2D(pool_size=(2, 2)),
        Conv2D(64, (3, 3), activation='relu'),
        MaxPooling2D(pool_size=(2, 2)),
        Flatten(),
        Dense(128, activation='relu'),
        Dense(10, activation='softmax'),
    ])
    model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])
    history = model.fit(x_train, y_train, epochs=5, batch_size=32,
                        validation_data=(x_test, y_test), verbose=0)
    # ---
    assert model.count_params() == 225_034
    assert sorted(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert history.epoch == [0, 1, 2, 3, 4]
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["val_accuracy"][-1] > 0.9
    assert model._compiled_outputs[0].fused_step is not None  # softmax fused with the loss


def test_small_cnn_overfits_a_batch(rng):
    set_random_seed(1)
    x = rng.standard_normal((16, 12, 12, 3)).astype(np.float32)
    y = rng.integers(0, 4, 16)
    model = Sequential([Input((12, 12, 3)), Conv2D(8, 3, activation="relu"), MaxPooling2D(),
                        Flatten(), Dense(32, activation="relu"), Dense(4, activation="softmax")])
    model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    for _ in range(150):
        loss, acc = model.train_on_batch(x, y)
    assert loss < 0.01 and acc == 1.0
    probs = model.predict(x, verbose=0)
    np.testing.assert_array_equal(probs.argmax(1), y)


def test_sgd_reduces_loss_on_separable_problem(rng):
    set_random_seed(2)
    x = rng.standard_normal((200, 10)).astype(np.float32)
    w = rng.standard_normal(10)
    y = (x @ w > 0).astype(np.float32)[:, None]
    model = Sequential([Input((10,)), Dense(8, activation="tanh"), Dense(1, activation="sigmoid")])
    model.compile(optimizers.SGD(0.5, momentum=0.9), "binary_crossentropy",
                  metrics=["accuracy", "precision", "recall"])
    assert model._compiled_outputs[0].fused_step is not None  # sigmoid fused too
    first = model.evaluate(x, y, verbose=0, return_dict=True)
    history = model.fit(x, y, epochs=15, batch_size=20, verbose=0, validation_split=0.25)
    last = model.evaluate(x, y, verbose=0, return_dict=True)
    assert last["loss"] < 0.5 * first["loss"] and last["accuracy"] > 0.9
    assert set(history.history) == {"loss", "accuracy", "precision", "recall", "val_loss",
                                    "val_accuracy", "val_precision", "val_recall"}
    assert 0.8 < last["precision"] <= 1 and 0.8 < last["recall"] <= 1


def test_predict_evaluate_batching_consistency(rng):
    set_random_seed(3)
    model = Sequential([Input((8, 8, 1)), Conv2D(4, 3), Flatten(), Dense(3, activation="softmax")])
    model.compile("sgd", "categorical_crossentropy", metrics=["accuracy"])
    x = rng.standard_normal((37, 8, 8, 1)).astype(np.float32)
    y = to_categorical(rng.integers(0, 3, 37), 3)
    full = model.predict_on_batch(x)
    for bs in (1, 5, 32, 100):
        np.testing.assert_allclose(model.predict(x, batch_size=bs, verbose=0), full, rtol=1e-5,
                                   atol=1e-6)
    loss, acc = model.evaluate(x, y, batch_size=37, verbose=0)
    tloss, tacc = model.test_on_batch(x, y)
    assert loss == pytest.approx(tloss) and acc == pytest.approx(tacc)
    ref = -np.mean(np.log(np.clip((full * y).sum(1), 1e-7, 1)))
    assert loss == pytest.approx(ref, rel=1e-4)
    # Batches of 5 give the same sample-weighted mean.
    assert model.evaluate(x, y, batch_size=5, verbose=0)[0] == pytest.approx(loss, rel=1e-5)


def test_progress_output(rng, capsys):
    set_random_seed(4)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    y = rng.standard_normal((64, 2)).astype(np.float32)
    model = Sequential([Input((6,)), Dense(2)])
    model.compile("adam", "mse", metrics=["mae"])
    model.fit(x, y, epochs=3, batch_size=8, verbose=2, validation_data=(x, y))
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 1/3" and len(out) == 6
    assert all(key in out[1] for key in ("8/8", "img/s", "loss:", "mae:", "val_loss:", "val_mae:"))
    model.fit(x, y, epochs=2, batch_size=8, verbose=1)
    out = capsys.readouterr().out
    assert "\r" not in out and len(out.splitlines()) == 4  # not a terminal: no redraws
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    model.predict(x, verbose=0)
    model.evaluate(x, y, verbose=0)
    assert capsys.readouterr().out == ""


def test_callbacks_in_fit(rng, tmp_path):
    set_random_seed(5)
    x = rng.standard_normal((40, 4)).astype(np.float32)
    y = (x[:, :1] * 2).astype(np.float32)
    model = Sequential([Input((4,)), Dense(1)])
    model.compile(optimizers.SGD(0.05), "mse")
    log = tmp_path / "log.csv"
    seen = []

    class Recorder(callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(("train_begin", self.params["epochs"], self.params["steps"]))

        def on_epoch_begin(self, epoch, logs=None):
            seen.append(("epoch_begin", epoch))

        def on_train_batch_end(self, batch, logs=None):
            seen.append(("batch", batch, round(logs["loss"], 6) >= 0))

        def on_test_begin(self, logs=None):
            seen.append(("test",))

    hist = model.fit(x, y, epochs=3, batch_size=20, verbose=0, validation_data=(x, y),
                     callbacks=[Recorder(), callbacks.ReduceLROnPlateau(patience=1, factor=0.5),
                                callbacks.CSVLogger(log)])
    assert seen[:5] == [("train_begin", 3, 2), ("epoch_begin", 0), ("batch", 0, True),
                        ("batch", 1, True), ("test",)]
    lines = log.read_text().splitlines()
    assert lines[0] == "epoch,learning_rate,loss,val_loss" and len(lines) == 4
    assert hist.history["learning_rate"][0] == pytest.approx(0.05)
    # EarlyStopping stops and restores; TerminateOnNaN stops at once.
    stop = callbacks.EarlyStopping(monitor="loss", patience=0, restore_best_weights=True)
    model.compile(optimizers.SGD(0.0), "mse")  # no progress: stops after epoch 2
    hist = model.fit(x, y, epochs=10, verbose=0, callbacks=[stop])
    assert len(hist.epoch) == 2
    model.compile(optimizers.SGD(1e6), "mse")
    x[0, 0] = np.inf
    hist = model.fit(x, y, epochs=5, batch_size=4, verbose=0, callbacks=[callbacks.TerminateOnNaN()])
    assert len(hist.epoch) == 1


def test_seeded_runs_are_bit_identical(rng):
    x, labels = _images(rng, 96)

    def run():
        set_random_seed(42)
        model = Sequential([Input((28, 28, 1)), Conv2D(4, 3, activation="relu"), MaxPooling2D(),
                            Flatten(), Dropout(0.3), Dense(10, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, labels, epochs=2, batch_size=16, verbose=0, shuffle=True)
        return model.get_weights()

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


def test_regularization_in_loss_and_gradient(rng):
    set_random_seed(6)
    x = rng.standard_normal((10, 3)).astype(np.float32)
    y = rng.standard_normal((10, 2)).astype(np.float32)
    model = Sequential([Input((3,)), Dense(2, kernel_regularizer=regularizers.l1_l2(0.1, 0.2))])
    model.compile(optimizers.SGD(0.1), "mse")
    k, b = (w.astype(np.float64) for w in model.get_weights())
    data = np.mean(np.mean((x @ k + b - y) ** 2, axis=1))
    penalty = 0.1 * np.abs(k).sum() + 0.2 * (k ** 2).sum()
    assert model.evaluate(x, y, verbose=0) == pytest.approx(data + penalty, rel=1e-5)
    model.train_on_batch(x, y)
    grad = 2 * x.T @ (x @ k + b - y) / (10 * 2) + 0.1 * np.sign(k) + 0.4 * k
    np.testing.assert_allclose(model.get_weights()[0], k - 0.1 * grad, rtol=1e-4, atol=1e-6)


def test_frozen_layers_do_not_change(rng):
    set_random_seed(7)
    base = Dense(4, activation="relu", name="base")
    model = Sequential([Input((5,)), base, Dense(1, name="head")])
    base.trainable = False
    model.compile("adam", "mse")
    before = base.get_weights()
    head_before = model.get_layer("head").get_weights()[0].copy()
    model.fit(rng.standard_normal((32, 5)).astype(np.float32),
              rng.standard_normal((32, 1)).astype(np.float32), epochs=2, verbose=0)
    for a, b in zip(before, base.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(head_before, model.get_layer("head").get_weights()[0])
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 2


def test_sample_and_class_weights(rng):
    set_random_seed(8)
    x = rng.standard_normal((20, 3)).astype(np.float32)
    y = rng.integers(0, 2, 20)
    model = Sequential([Input((3,)), Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    sw = np.where(np.arange(20) < 10, 1.0, 0.0).astype(np.float32)
    full = model.evaluate(x[:10], y[:10], verbose=0)
    weighted = model.evaluate(x, y, sample_weight=sw, verbose=0)
    assert weighted == pytest.approx(full / 2, rel=1e-5)  # sum(w l) / N with N = 20
    # class_weight scales the gradient of each class.
    w0 = model.get_weights()
    model.fit(x, y, batch_size=20, epochs=1, class_weight={0: 0.0, 1: 0.0}, shuffle=False,
              verbose=0)
    for a, b in zip(w0, model.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("prefetch", [0, 1])
def test_fit_starts_one_dataset_epoch_per_epoch(rng, prefetch):
    """fit iterates a re-iterable source once per epoch and nothing more: a
    Dataset's epochs 0, 1, 2 train epochs 0, 1, 2, and its augmentation (run
    ahead in the prefetch thread) sees exactly the batches trained on, so a
    seeded run does not depend on how far a thread got."""
    from cnnc.data import Dataset
    x, labels = _images(rng, 40, classes=3)
    seen = []

    def recording(xb):
        seen.append(xb.copy())
        return xb

    data = Dataset(x, labels, batch_size=16, seed=3, augment=recording, prefetch=prefetch)
    model = Sequential([Input((28, 28, 1)), Flatten(), Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(data, epochs=3, verbose=0)
    assert data.epoch == 3
    expected = [x[data.order(e)[b * 16:(b + 1) * 16]] for e in range(3) for b in range(len(data))]
    assert len(seen) == len(expected)
    for got, want in zip(seen, expected):
        np.testing.assert_array_equal(got, want)


def test_training_from_a_dataset(rng):
    from cnnc.data import Dataset
    set_random_seed(9)
    x, labels = _images(rng, 128)
    data = Dataset(x, labels, batch_size=32, shuffle=True, seed=1)
    model = Sequential([Input((28, 28, 1)), Conv2D(8, 3, activation="relu"), MaxPooling2D(),
                        Flatten(), Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    hist = model.fit(data, epochs=3, verbose=0, validation_data=Dataset(x, labels, batch_size=64,
                                                                        shuffle=False))
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert "val_accuracy" in hist.history
    preds = model.predict(Dataset(x, None, batch_size=50, shuffle=False), verbose=0)
    np.testing.assert_allclose(preds, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_residual_cnn_and_two_input_functional_models(rng):
    set_random_seed(10)
    inp = Input((10, 10, 3))
    h = Conv2D(8, 3, padding="same", activation="relu")(inp)
    r = Conv2D(8, 3, padding="same", activation="relu")(h)
    r = Conv2D(8, 3, padding="same")(r)
    h = layers.Add()([h, r])
    h = layers.GlobalAveragePooling2D()(h)
    aux = Input((4,))
    both = layers.Concatenate()([h, Dense(4, activation="relu")(aux)])
    out = Dense(3, activation="softmax")(both)
    model = Model([inp, aux], out)
    model.compile(optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    x1 = rng.standard_normal((24, 10, 10, 3)).astype(np.float32)
    x2 = rng.standard_normal((24, 4)).astype(np.float32)
    y = rng.integers(0, 3, 24)
    hist = model.fit([x1, x2], y, epochs=25, batch_size=8, verbose=0)
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]


def test_predict_flip_tta_averages_the_mirror_images(rng):
    """tta="flip": the mean of the outputs for the images and for their
    mirror images along the width, computed here image by image."""
    set_random_seed(4)
    model = Sequential([Input((6, 7, 2)), Conv2D(3, 3), Flatten(), Dense(4, activation="softmax")])
    x = rng.standard_normal((9, 6, 7, 2)).astype(np.float32)
    mirrored = x[:, :, ::-1].copy()
    expected = (model.predict_on_batch(x) + model.predict_on_batch(mirrored)) / 2
    got = model.predict(x, batch_size=4, verbose=0, tta="flip")
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert got.dtype == np.float32 and not np.allclose(got, model.predict(x, verbose=0))
    with pytest.raises(ValueError, match="tta must be"):
        model.predict(x, tta="rotate")
    flat = Sequential([Input((5,)), Dense(2)])
    with pytest.raises(ValueError, match="mirrors or shifts images"):
        flat.predict(rng.standard_normal((3, 5)).astype(np.float32), tta="flip")


def _moved_by_one_pixel(image, rows, cols):
    """One (H, W, C) image moved down by ``rows`` and right by ``cols``
    pixels, pixel by pixel, zeros where nothing moves in."""
    height, width = image.shape[:2]
    out = np.zeros_like(image)
    for r in range(height):
        for c in range(width):
            if 0 <= r - rows < height and 0 <= c - cols < width:
                out[r, c] = image[r - rows, c - cols]
    return out


@pytest.mark.parametrize("mode", ["shift", "flip+shift"])
def test_predict_shift_tta_averages_the_moved_images(rng, mode):
    """tta="shift": the mean over the image and the image moved one pixel up,
    down, left and right; "flip+shift" adds the mirror image of each. The
    reference builds every view pixel by pixel and predicts it alone."""
    set_random_seed(5)
    model = Sequential([Input((5, 6, 2)), Conv2D(3, 3), Flatten(), Dense(4, activation="softmax")])
    x = rng.uniform(0.5, 1.5, (7, 5, 6, 2)).astype(np.float32)  # no zeros: a moved-in zero shows
    moves = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]
    mirrors = [False, True] if mode == "flip+shift" else [False]
    expected = np.zeros((7, 4))
    for i in range(len(x)):
        for mirror in mirrors:
            for rows, cols in moves:
                view = _moved_by_one_pixel(x[i], rows, cols)
                if mirror:
                    view = view[:, ::-1]
                expected[i] += model.predict_on_batch(np.ascontiguousarray(view[None]))[0]
    expected /= len(moves) * len(mirrors)
    got = model.predict(x, batch_size=3, verbose=0, tta=mode)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert got.dtype == np.float32 and got.shape == (7, 4)
    flip_only = model.predict(x, batch_size=3, verbose=0, tta="flip")
    assert not np.allclose(got, flip_only, rtol=1e-4, atol=1e-5)
    readonly = x.copy()
    readonly.setflags(write=False)
    np.testing.assert_array_equal(model.predict(readonly, batch_size=3, verbose=0, tta=mode), got)


def test_shift_tta_needs_images_of_at_least_one_pixel_margin(rng):
    """A 1x1 image moved by a pixel is all fill: the views are still
    well defined (zeros), not an error or garbage."""
    model = Sequential([Input((1, 1, 2)), Flatten(), Dense(3)])
    x = rng.standard_normal((4, 1, 1, 2)).astype(np.float32)
    expected = (model.predict_on_batch(x) + 4 * model.predict_on_batch(np.zeros_like(x))) / 5
    np.testing.assert_allclose(model.predict(x, verbose=0, tta="shift"), expected, rtol=1e-5, atol=1e-6)
