"""Callbacks driven by hand-made epoch logs (the training loop's use of
them is covered in test_training.py)."""
import csv
import io
import math

import numpy as np
import pytest

from cnnc import callbacks, optimizers
from cnnc._progbar import Progbar


class FakeModel:
    def __init__(self):
        self.optimizer = optimizers.SGD(learning_rate=0.1)
        self.stop_training = False
        self.value = np.zeros(1)
        self.saved = []

    def get_weights(self):
        return [self.value.copy()]

    def set_weights(self, weights):
        self.value[...] = weights[0]

    def save(self, path):
        self.saved.append(("model", path))

    def save_weights(self, path):
        self.saved.append(("weights", path))


def run(cb, values, key="val_loss", model=None):
    """Feed one epoch log per value; the fake weights hold the epoch index.
    Returns the number of epochs run."""
    model = model or FakeModel()
    cb.set_model(model)
    cb.on_train_begin({})
    epochs = 0
    for epoch, value in enumerate(values):
        model.value[...] = epoch
        cb.on_epoch_begin(epoch, {})
        cb.on_epoch_end(epoch, {key: value})
        epochs += 1
        if model.stop_training:
            break
    cb.on_train_end({})
    return epochs, model


def test_early_stopping_patience_and_restore():
    values = [1.0, 0.5, 0.6, 0.4, 0.45, 0.41, 0.42, 0.1]
    epochs, model = run(callbacks.EarlyStopping(patience=2), values)
    assert epochs == 6  # best at epoch 3, no improvement on epochs 4 and 5
    assert model.value[0] == 5  # weights of the last epoch
    cb = callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    epochs, model = run(cb, values)
    assert epochs == 6 and model.value[0] == 3 and cb.best == 0.4 and cb.stopped_epoch == 5


def test_early_stopping_min_delta_mode_and_baseline():
    # Improvements smaller than min_delta do not count.
    epochs, _ = run(callbacks.EarlyStopping(patience=1, min_delta=0.1), [1.0, 0.95, 0.92, 0.5])
    assert epochs == 2
    # Accuracy is maximized ("auto" mode).
    cb = callbacks.EarlyStopping(monitor="val_accuracy", patience=1)
    epochs, _ = run(cb, [0.5, 0.6, 0.55, 0.7], key="val_accuracy")
    assert epochs == 3 and cb.best == 0.6
    # Epochs that do not beat the baseline count towards the patience.
    epochs, _ = run(callbacks.EarlyStopping(patience=2, baseline=0.1), [0.5, 0.6, 0.3, 0.2])
    assert epochs == 2
    epochs, _ = run(callbacks.EarlyStopping(patience=2), [0.5, 0.6, 0.3, 0.2])
    assert epochs == 4


def test_early_stopping_missing_monitor_warns():
    with pytest.warns(UserWarning, match="val_loss"):
        epochs, _ = run(callbacks.EarlyStopping(patience=0), [1.0, 2.0], key="loss")
    assert epochs == 2


def test_reduce_lr_on_plateau():
    model = FakeModel()
    cb = callbacks.ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.02)
    lrs = []
    cb.set_model(model)
    cb.on_train_begin()
    for epoch, value in enumerate([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]):
        logs = {"val_loss": value}
        cb.on_epoch_end(epoch, logs)
        lrs.append(model.optimizer.learning_rate)
        assert logs["learning_rate"] == pytest.approx(lrs[-2] if len(lrs) > 1 else 0.1)
    # Reduced at epoch 2 (2 epochs without improvement); the cooldown epoch
    # resets the wait but, as in Keras, the same epoch already counts again;
    # the floor min_lr is reached at epoch 6.
    assert lrs == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02, 0.02, 0.02])


def test_learning_rate_scheduler():
    model = FakeModel()
    seen = []
    cb = callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr)
    cb.set_model(model)
    for epoch in range(3):
        cb.on_epoch_begin(epoch)
        seen.append(model.optimizer.learning_rate)
        logs = {}
        cb.on_epoch_end(epoch, logs)
        assert logs["learning_rate"] == seen[-1]
    assert seen == pytest.approx([0.1, 0.05, 0.025])
    one_arg = callbacks.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))
    one_arg.set_model(model)
    one_arg.on_epoch_begin(4)
    assert model.optimizer.learning_rate == pytest.approx(0.05)


def test_csv_logger(tmp_path):
    path = tmp_path / "log.csv"
    cb = callbacks.CSVLogger(path)
    model = FakeModel()
    cb.set_model(model)
    cb.on_train_begin()
    cb.on_epoch_end(0, {"loss": 0.5, "accuracy": 0.75, "val_loss": 0.625})
    cb.on_epoch_end(1, {"loss": 0.25, "accuracy": 0.875, "val_loss": 0.5})
    cb.on_train_end()
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows == [["epoch", "accuracy", "loss", "val_loss"],
                    ["0", "0.75", "0.5", "0.625"], ["1", "0.875", "0.25", "0.5"]]
    appended = callbacks.CSVLogger(path, append=True, separator=";")
    appended.set_model(model)
    appended.on_train_begin()
    appended.on_epoch_end(2, {"loss": 0.125, "accuracy": 1.0, "val_loss": 0.25})
    appended.on_train_end()
    lines = path.read_text().splitlines()
    assert len(lines) == 4 and lines[-1] == "2;1.0;0.125;0.25"


def test_model_checkpoint_best_only(tmp_path):
    cb = callbacks.ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{val_loss:.2f}.cnnc"),
                                   save_best_only=True)
    _, model = run(cb, [1.0, 0.5, 0.7, 0.25])
    assert model.saved == [("model", str(tmp_path / "m-01-1.00.cnnc")),
                           ("model", str(tmp_path / "m-02-0.50.cnnc")),
                           ("model", str(tmp_path / "m-04-0.25.cnnc"))]
    every = callbacks.ModelCheckpoint(str(tmp_path / "w.cnnc"), save_weights_only=True)
    _, model = run(every, [1.0, 2.0])
    assert model.saved == [("weights", str(tmp_path / "w.cnnc"))] * 2
    bad = callbacks.ModelCheckpoint(str(tmp_path / "{nope}.cnnc"))
    with pytest.raises(KeyError, match="nope"):
        run(bad, [1.0])


def test_terminate_on_nan():
    model = FakeModel()
    cb = callbacks.TerminateOnNaN()
    cb.set_model(model)
    cb.on_train_batch_end(0, {"loss": 1.0})
    assert not model.stop_training
    cb.on_train_batch_end(1, {"loss": math.nan})
    assert model.stop_training


def test_callback_list_dispatch_and_lambda():
    calls = []

    class Custom(callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            calls.append(("batch_end", batch))

        def on_predict_end(self, logs=None):
            calls.append(("predict_end",))

    lam = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: calls.append(("epoch", epoch)))
    cbs = callbacks.CallbackList([Custom(), lam], model=FakeModel(), params={"epochs": 1})
    cbs.on_train_batch_end(3, {})
    cbs.on_epoch_end(0, {})
    cbs.on_predict_end()
    cbs.on_test_begin()  # no callback overrides it
    assert calls == [("batch_end", 3), ("epoch", 0), ("predict_end",)]
    with pytest.raises(TypeError):
        callbacks.CallbackList([object()])
    with pytest.raises(TypeError, match="unknown hook"):
        callbacks.LambdaCallback(on_nothing=print)


def test_history():
    h = callbacks.History()
    run(h, [0.5, 0.25], key="loss")
    assert h.epoch == [0, 1] and h.history == {"loss": [0.5, 0.25]}


class FakeStream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_progbar_terminal_and_log_file():
    tty = FakeStream(True)
    bar = Progbar(100, stream=tty, interval=0.0)
    for step in range(1, 101):
        bar.update(step, {"loss": 0.5, "accuracy": 0.9}, samples=step * 32)
    text = tty.getvalue()
    assert "\r" in text and "ETA" in text and "img/s" in text and "loss: 0.5000" in text
    assert text.endswith("\n") and text.count("\n") == 1
    assert "100/100 [" + "=" * 30 + "]" in text
    # Not a terminal: no carriage returns and no per-step lines.
    log = FakeStream(False)
    bar = Progbar(1000, stream=log, interval=0.0)
    for step in range(1, 1001):
        bar.update(step, [("loss", 0.25)], samples=step)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 1
    assert lines[0].startswith("1000/1000") and "loss: 0.2500" in lines[0]
    # verbose=2: the final line only, without a bar.
    quiet = FakeStream(True)
    bar = Progbar(10, stream=quiet, verbose=2)
    for step in range(1, 11):
        bar.update(step, {"loss": 1.0})
    assert quiet.getvalue().count("\n") == 1 and "[" not in quiet.getvalue()


def test_progbar_epoch_rate_counts_training_samples_only(monkeypatch):
    """The closing line of an epoch is written after validation; its img/s is
    the training rate, not the validation count over the whole epoch."""
    import io

    from cnnc import _progbar
    clock = iter([0.0, 1.0, 3.0])
    monkeypatch.setattr(_progbar.time, "perf_counter", lambda: next(clock))
    stream = io.StringIO()
    bar = _progbar.Progbar(2, verbose=2, stream=stream)
    bar.update(2, {"loss": 0.5}, samples=1000, finalize=False)   # training ends at t = 1 s
    bar.update(2, {"val_loss": 0.5}, samples=None, finalize=True)  # validation ends at t = 3 s
    assert "1000 img/s" in stream.getvalue()


def test_run_clock_estimates_the_whole_run():
    """3 epochs of 10 steps: each step takes 1 s and validation 4 s. The
    estimate covers this epoch's remaining steps, its validation and the
    later epochs (measured ones once an epoch has finished)."""
    from cnnc._progbar import RunClock
    now = [0.0]
    clock = RunClock(epochs=3, steps=10, clock=lambda: now[0])
    clock.begin_epoch(0)
    now[0] = 4.0
    # First epoch: no validation measured yet, later epochs at the step rate.
    assert clock.remaining(4) == pytest.approx(6 + 2 * 10)
    now[0] = 10.0
    clock.end_training()
    now[0] = 14.0
    clock.end_epoch()
    assert clock.remaining() == pytest.approx(2 * 14)
    clock.begin_epoch(1)
    now[0] = 19.0
    assert clock.remaining(5) == pytest.approx(5 + 4 + 14)
    assert clock.remaining(0) is None


def test_progbar_logger_shows_accuracy_and_run_eta():
    """Each epoch's line carries its accuracy and, but for the last epoch,
    the time left for the whole run."""
    from cnnc import layers
    from cnnc.models import Sequential
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = Sequential([layers.Input((4,)), layers.Dense(2, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    stream = io.StringIO()
    model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[_Verbose2Logger(stream)])
    lines = [ln for ln in stream.getvalue().splitlines() if not ln.startswith("Epoch")]
    assert len(lines) == 3 and all("accuracy:" in ln for ln in lines)
    assert all("run ETA:" in ln for ln in lines[:2]) and "run ETA" not in lines[2]


class _Verbose2Logger(callbacks.ProgbarLogger):
    """One line per epoch whatever fit's verbose (fit adds no logger of its own at 0)."""

    def set_params(self, params):
        super().set_params(dict(params, verbose=2))
