"""Callbacks (``cnnc.callbacks``): hooks into fit/evaluate/predict with the
Keras hook names.

``logs`` are dicts of floats: batch hooks get the running means of the
epoch so far (``loss`` and each metric), ``on_epoch_end`` also the
``val_*`` values when there is validation data.
"""
import csv
import math
import os
import sys
import warnings

import numpy as np

from cnnc._progbar import Progbar, RunClock

__all__ = ["Callback", "CallbackList", "History", "ProgbarLogger", "EarlyStopping",
           "ModelCheckpoint", "LearningRateScheduler", "ReduceLROnPlateau", "CSVLogger",
           "TerminateOnNaN", "LambdaCallback"]


class Callback:
    """Base class; override any hook. ``self.model`` and ``self.params``
    (epochs, steps, verbose, samples, batch_size) are set by the model."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_params(self, params):
        self.params = params

    def set_model(self, model):
        self.model = model

    def on_batch_begin(self, batch, logs=None):
        """Alias kept for Keras compatibility: called with on_train_batch_begin."""

    def on_batch_end(self, batch, logs=None):
        """Alias kept for Keras compatibility: called with on_train_batch_end."""

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch, logs=None):
        pass

    def on_test_batch_end(self, batch, logs=None):
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        pass

    def on_predict_batch_end(self, batch, logs=None):
        pass

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
        pass

    def on_predict_begin(self, logs=None):
        pass

    def on_predict_end(self, logs=None):
        pass


_HOOKS = ("on_epoch_begin", "on_epoch_end", "on_train_batch_begin", "on_train_batch_end",
          "on_test_batch_begin", "on_test_batch_end", "on_predict_batch_begin",
          "on_predict_batch_end", "on_train_begin", "on_train_end", "on_test_begin",
          "on_test_end", "on_predict_begin", "on_predict_end")


class CallbackList:
    """Calls each hook on every callback in order."""

    def __init__(self, callbacks=None, model=None, params=None):
        self.callbacks = list(callbacks or [])
        for callback in self.callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"callbacks must be cnnc.callbacks.Callback instances, "
                                f"got {type(callback).__name__}")
            if model is not None:
                callback.set_model(model)
            if params is not None:
                callback.set_params(params)
        # Only hooks some callback overrides are dispatched, to keep the
        # per-batch cost of the training loop minimal; the others stay the
        # class's no-ops, so a predict call without callbacks sets nothing.
        for hook in _HOOKS:
            bound = [getattr(c, hook) for c in self.callbacks
                     if _overrides(c, hook)]
            if bound:
                setattr(self, hook, _dispatcher(bound))

    def __iter__(self):
        return iter(self.callbacks)


def _nothing(*args, **kwargs):
    return None


for _hook in _HOOKS:
    setattr(CallbackList, _hook, staticmethod(_nothing))
del _hook


def _overrides(callback, hook):
    def defined(name):
        return name in vars(callback) or getattr(type(callback), name) is not getattr(Callback, name)
    if defined(hook):
        return True
    if hook == "on_train_batch_begin":
        return defined("on_batch_begin")
    if hook == "on_train_batch_end":
        return defined("on_batch_end")
    return False


def _dispatcher(bound):
    def dispatch(*args, **kwargs):
        for hook in bound:
            hook(*args, **kwargs)
    return dispatch


class History(Callback):
    """Records the epoch logs: ``history[key]`` is the list of values per
    epoch, ``epoch`` the epoch indices. ``fit`` returns it."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self


class ProgbarLogger(Callback):
    """Prints progress (``verbose`` 1: bar per epoch; 2: one line per epoch).
    In training, each line also shows the time left for the whole run (all
    epochs, validation included) as "run ETA"."""

    def __init__(self, stream=None):
        super().__init__()
        self.stream = stream
        self.progbar = None
        self._mode = "train"
        self._clock = None

    def _stream(self):
        return self.stream if self.stream is not None else sys.stdout

    def _start(self, target, mode):
        self._mode = mode
        self.progbar = Progbar(target, verbose=self.params.get("verbose", 1), stream=self._stream())
        self._seen = 0

    def _samples(self, batch):
        return getattr(self.model, "_samples_seen", None)

    def on_train_begin(self, logs=None):
        self._clock = RunClock(self.params.get("epochs") or 1, self.params.get("steps"))

    def on_epoch_begin(self, epoch, logs=None):
        if self.params.get("verbose", 1):
            self._stream().write(f"Epoch {epoch + 1}/{self.params.get('epochs')}\n")
        self._start(self.params.get("steps"), "train")
        if self._clock is not None:
            self._clock.begin_epoch(epoch)

    def on_train_batch_end(self, batch, logs=None):
        if self.progbar is not None:
            self._last = (batch + 1, logs)
            left = self._clock.remaining(batch + 1) if self._clock is not None else None
            self.progbar.update(batch + 1, logs, samples=self._samples(batch), finalize=False,
                                run_remaining=left)
            if self._clock is not None and batch + 1 == self.params.get("steps"):
                self._clock.end_training()

    def on_epoch_end(self, epoch, logs=None):
        if self.progbar is not None:
            steps = getattr(self, "_last", (self.params.get("steps") or 0, None))[0]
            left = None
            if self._clock is not None:
                self._clock.end_epoch()
                left = self._clock.remaining()
            # Validation has run since the last batch and counted its own
            # samples: the rate comes from the training batches' updates.
            self.progbar.update(steps, logs, samples=None, finalize=True, run_remaining=left)

    def on_test_begin(self, logs=None):
        if self.model is not None and getattr(self.model, "_in_fit", False):
            self.progbar_test = None
            return
        self._start(self.params.get("steps"), "test")
        self._last = (0, None)

    def on_test_batch_end(self, batch, logs=None):
        if self.model is not None and getattr(self.model, "_in_fit", False):
            return
        self._last = (batch + 1, logs)
        self.progbar.update(batch + 1, logs, samples=self._samples(batch), finalize=False)

    def on_test_end(self, logs=None):
        if self.model is not None and getattr(self.model, "_in_fit", False):
            return
        steps = self._last[0]
        self.progbar.update(steps, logs, samples=self._samples(steps - 1), finalize=True)

    def on_predict_begin(self, logs=None):
        self._start(self.params.get("steps"), "test")
        self._last = (0, None)

    def on_predict_batch_end(self, batch, logs=None):
        self._last = (batch + 1, None)
        self.progbar.update(batch + 1, None, samples=self._samples(batch), finalize=False)

    def on_predict_end(self, logs=None):
        steps = self._last[0]
        self.progbar.update(steps, None, samples=self._samples(steps - 1), finalize=True)


class _MonitorMixin:
    """Shared 'is this value better' logic of the monitoring callbacks."""

    def _set_mode(self, mode, monitor, min_delta):
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"{type(self).__name__}: mode {mode!r} is unknown, using 'auto'")
            mode = "auto"
        if mode == "auto":
            name = monitor[4:] if monitor.startswith("val_") else monitor
            mode = "max" if (name.endswith("acc") or "accuracy" in name or name == "auc"
                             or name.startswith("auc") or name in ("precision", "recall")) else "min"
        self.mode = mode
        self.min_delta = abs(min_delta)

    def _better(self, current, reference):
        if reference is None:
            return True
        if self.mode == "min":
            return current < reference - self.min_delta
        return current > reference + self.min_delta

    def _get_monitor(self, logs):
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(f"{type(self).__name__}: the monitored value {self.monitor!r} is not "
                          f"available; available: {sorted(logs or {})}", stacklevel=3)
        return value


class EarlyStopping(Callback, _MonitorMixin):
    """Stops training when ``monitor`` has not improved by more than
    ``min_delta`` for ``patience`` epochs. ``baseline``: stop unless the
    monitor beats it within ``patience`` epochs. ``restore_best_weights``:
    at the end of training, the model gets the weights of the best epoch.
    Epochs before ``start_from_epoch`` never stop training."""

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        self.monitor = monitor
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self._set_mode(mode, monitor, min_delta)

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        current = self._get_monitor(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if self._better(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._better(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback, _MonitorMixin):
    """Saves the model (``model.save``) or its weights (``save_weights_only``)
    to ``filepath``, which may hold ``{epoch}`` and log keys as format fields
    (``"ckpt-{epoch:02d}-{val_loss:.2f}.cnnc"``). ``save_best_only``: save only
    when ``monitor`` improves. ``save_freq``: ``"epoch"`` or a number of
    batches."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.monitor = monitor
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq > 0):
            raise ValueError(f"save_freq must be 'epoch' or a positive integer, got {save_freq!r}")
        self.save_freq = save_freq
        self._set_mode(mode, monitor, 0)
        self.best = initial_value_threshold
        self._batches_seen = 0
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        self._batches_seen += 1
        if self._batches_seen % self.save_freq == 0:
            self._save(self._epoch, logs, batch)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, logs)

    def _save(self, epoch, logs, batch=None):
        logs = dict(logs or {})
        try:
            path = self.filepath.format(epoch=epoch + 1, batch=(batch or 0) + 1, **logs)
        except KeyError as exc:
            raise KeyError(f"ModelCheckpoint: filepath {self.filepath!r} names {exc}, which is "
                           f"not in the logs {sorted(logs)}") from None
        if self.save_best_only:
            current = self._get_monitor(logs)
            if current is None:
                return
            if not self._better(current, self.best):
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best}")
                return
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best} to "
                      f"{current}, saving model to {path}")
            self.best = current
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class LearningRateScheduler(Callback):
    """Sets the optimizer's learning rate at the start of each epoch to
    ``schedule(epoch, lr)`` (or ``schedule(epoch)``)."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        try:
            lr = self.schedule(epoch, float(optimizer.learning_rate))
        except TypeError:
            lr = self.schedule(epoch)
        lr = float(lr)
        if not math.isfinite(lr):
            raise ValueError(f"the learning-rate schedule returned {lr} at epoch {epoch}")
        optimizer.learning_rate = lr
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class ReduceLROnPlateau(Callback, _MonitorMixin):
    """Multiplies the learning rate by ``factor`` when ``monitor`` has not
    improved by more than ``min_delta`` for ``patience`` epochs, then waits
    ``cooldown`` epochs; never goes below ``min_lr``."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__()
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support factor >= 1.0, got {factor}")
        self.monitor = monitor
        self.factor = float(factor)
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.min_lr = float(min_lr)
        self._set_mode(mode, monitor, min_delta)

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.cooldown_counter = 0
        self.best = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        optimizer = self.model.optimizer
        logs["learning_rate"] = float(optimizer.learning_rate)
        current = self._get_monitor(logs)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._better(current, self.best):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(optimizer.learning_rate)
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    optimizer.learning_rate = new_lr
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                              f"to {new_lr}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class CSVLogger(Callback):
    """Writes one CSV row per epoch: ``epoch`` then the log keys in sorted
    order; ``append`` continues an existing file (header not repeated)."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self._file = None
        self._writer = None
        self._keys = None

    def on_train_begin(self, logs=None):
        has_header = (self.append and os.path.exists(self.filename)
                      and os.path.getsize(self.filename) > 0)
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._keys = None
        self._has_header = has_header

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = sorted(logs)
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self._keys,
                                          delimiter=self.sep)
            if not self._has_header:
                self._writer.writeheader()
        row = {"epoch": epoch}
        for key in self._keys:
            value = logs.get(key, "NA")
            row[key] = float(value) if isinstance(value, (float, np.floating)) else value
        self._writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


class TerminateOnNaN(Callback):
    """Stops training as soon as a batch loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=f, ...)``
    with the hook names as keywords."""

    def __init__(self, **hooks):
        super().__init__()
        for name, function in hooks.items():
            if name not in _HOOKS + ("on_batch_begin", "on_batch_end"):
                raise TypeError(f"LambdaCallback: unknown hook {name!r}")
            setattr(self, name, function)
