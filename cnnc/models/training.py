"""Training and inference of models: compile, fit, evaluate, predict,
train_on_batch, test_on_batch, save/load.

One training step: forward with ``training=True`` (the output layer without
its softmax/sigmoid when that activation is fused with the loss), per-output
losses and their gradients (reduced as ``sum(loss_i * w_i) / N``), backward
through the graph, regularization penalties, one optimizer update of the
trainable weights. The loss reported in the logs includes the penalties.

fit, evaluate and predict run under ``cnnc._memory.reuse_buffers()``: the
arrays a step allocates are the same every step, so freed ones are kept
and handed back instead of faulting in fresh pages each step. A training
step also runs in a ``StepArena`` per batch shape: from the second step on,
its large arrays take places planned from the first step's lifetimes.

Threads: a model keeps per-call state (layer inputs saved for backward,
optimizer slots, metric totals), so one model runs one of fit, evaluate,
predict, train_on_batch, test_on_batch, predict_on_batch at a time. A call
from a second thread while one runs raises RuntimeError at once (the same
thread may nest them, as fit does for validation). Different models may run
in different threads at the same time; the C kernels are thread-safe.
"""
import contextlib
import functools
import os
import threading

import numpy as np

from cnnc import losses as losses_module
from cnnc._masks import sample_weights_with_mask
from cnnc._memory import ArenaGroup, StepArena, reuse_buffers
from cnnc import metrics as metrics_module
from cnnc import optimizers
from cnnc import random as cnnc_random
from cnnc.callbacks import CallbackList, History, ProgbarLogger
from cnnc.models import data_adapter
from cnnc.models.memory import check_fits

_PROCESS_SEED = None


def _shuffle_root():
    """The root of the per-epoch shuffling streams: the global seed when
    ``set_random_seed`` was called, else one random value per process."""
    global _PROCESS_SEED
    seed = cnnc_random.get_seed()
    if seed is not None:
        return seed
    if _PROCESS_SEED is None:
        _PROCESS_SEED = int.from_bytes(os.urandom(4), "little")
    return _PROCESS_SEED


class _CompiledOutput:
    """Loss, weight, metrics and fusion of one model output."""

    __slots__ = ("name", "loss", "weight", "metrics", "fused_step", "activation", "loss_tracker")

    def __init__(self, name, loss, weight, metrics):
        self.name = name
        self.loss = loss
        self.weight = weight
        self.metrics = metrics
        self.fused_step = None
        self.activation = None
        self.loss_tracker = metrics_module.Mean(name=f"{name}_loss")


def _per_output(spec, names, what):
    """Spread a compile argument over the outputs: a dict by output name, a
    list with one entry per output, or one value for every output."""
    if isinstance(spec, dict):
        unknown = set(spec) - set(names)
        if unknown:
            raise ValueError(f"{what} names unknown outputs {sorted(unknown)}; outputs: {names}")
        return [spec.get(n) for n in names]
    if isinstance(spec, (list, tuple)) and len(names) > 1:
        if len(spec) != len(names):
            raise ValueError(f"{what} has {len(spec)} entries for {len(names)} outputs")
        return list(spec)
    return [spec] * len(names)


def _one_thread_at_a_time(method):
    """Runs ``method`` holding the model's use lock; RuntimeError if another
    thread holds it (re-entry from the holding thread is allowed)."""
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        lock = self.__dict__.get("_use_lock") or self.__dict__.setdefault("_use_lock", threading.RLock())
        if not lock.acquire(blocking=False):
            raise RuntimeError(
                f"model {getattr(self, 'name', '')!r} is running {self.__dict__.get('_in_use')}() in "
                f"another thread; a model runs one fit/evaluate/predict at a time (use one model "
                f"per thread, or serialize the calls with a lock)")
        outer = self.__dict__.get("_in_use")
        self._in_use = outer or method.__name__
        try:
            return method(self, *args, **kwargs)
        finally:
            self._in_use = outer
            lock.release()
    return guarded


class Trainer:
    """The training API of Model (mixed into it)."""

    def __init__(self):
        self.optimizer = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self._compile_args = None
        self._compiled_outputs = None
        self._in_fit = False
        self._distribute = None
        self._shuffle_seed = None  # set by load_model: continue the saved run's stream

    def shuffle_root(self):
        """The root of the per-epoch shuffling streams of ``fit``: the one of
        the run this model was saved from (after ``load_model``), else the
        global seed when ``set_random_seed`` was called, else one random
        value per process. Saved with the model for exact resume."""
        if self._shuffle_seed is not None:
            return self._shuffle_seed
        return _shuffle_root()

    # -- compile ----------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=None, steps_per_execution=1,
                jit_compile=None, auto_scale_loss=None, recompute=False):
        """Configure training.

        optimizer: name or Optimizer. loss: name, Loss, or a list/dict with one
        per output. metrics: list of names/Metrics (for several outputs: a list
        per output or a dict). loss_weights: weights of the per-output losses.
        weighted_metrics: metrics that take the sample weights into account.
        recompute: True to keep only block boundaries of the forward pass and
        recompute the rest in backward (less memory, about one more forward
        pass of time, the same gradients to the bit), or a list of layer
        names whose outputs are the boundaries (see
        :mod:`cnnc.models.recompute`); functional and Sequential models.
        ``run_eagerly``, ``steps_per_execution``, ``jit_compile`` and
        ``auto_scale_loss`` are accepted for Keras compatibility; cnnc always
        runs its C kernels step by step.
        """
        from cnnc.models import recompute as recompute_module
        self._recompute_spec = recompute_module.check_spec(recompute)
        if self._recompute_spec and self._traced:
            raise ValueError(f"model {self.name!r}: recompute needs a graph model (functional or "
                             f"Sequential), not a subclassed one")
        self.optimizer = optimizers.get(optimizer)
        if loss is None:
            raise ValueError("compile needs a loss")
        self._compile_args = {"loss": loss, "metrics": metrics, "loss_weights": loss_weights,
                              "weighted_metrics": weighted_metrics}
        self._compiled_outputs = None
        self.compiled = True
        # Data parallel: a model compiled inside DataParallel.scope() trains with it.
        from cnnc.distributed import _context
        self._distribute = _context.current_strategy()
        if self._graph_ready:
            self._compiled()

    def _compiled(self):
        if not self.compiled:
            raise RuntimeError(f"model {self.name!r} must be compiled before training or "
                               f"evaluation: call model.compile(optimizer, loss, metrics)")
        if self._compiled_outputs is not None:
            return self._compiled_outputs
        self._require_graph()
        args = self._compile_args
        names = self.output_names
        loss_specs = _per_output(args["loss"], names, "loss")
        weights = _per_output(args["loss_weights"] if args["loss_weights"] is not None else 1.0,
                              names, "loss_weights")
        metric_specs = self._metric_specs(args["metrics"], names)
        weighted_specs = self._metric_specs(args["weighted_metrics"], names)
        outputs = []
        for k, name in enumerate(names):
            loss = None if loss_specs[k] is None else losses_module.get(loss_specs[k])
            shape = self._output_tensors[k].shape
            metrics = [(metrics_module.get(m, loss, shape), False) for m in metric_specs[k]]
            for m in weighted_specs[k]:
                metric = metrics_module.get(m, loss, shape)
                if any(existing.name == metric.name for existing, _ in metrics):
                    metric.name = "weighted_" + metric.name
                metrics.append((metric, True))
            out = _CompiledOutput(name, loss, float(weights[k] if weights[k] is not None else 1.0),
                                  metrics)
            self._find_fusion(k, out)
            outputs.append(out)
        if all(out.loss is None for out in outputs):
            raise ValueError("compile: every output's loss is None, nothing to train")
        self._compiled_outputs = outputs
        self._fused_steps = frozenset(out.fused_step for out in outputs
                                      if out.fused_step is not None)
        self._recompute_plan = None
        if getattr(self, "_recompute_spec", False):
            from cnnc.models import recompute
            self._recompute_plan = recompute.plan(self, self._recompute_spec, self._fused_steps)
        return outputs

    def _metric_specs(self, spec, names):
        if spec is None:
            return [[] for _ in names]
        if isinstance(spec, dict):
            return [list(_as_sequence(spec.get(n, []))) for n in names]
        spec = list(_as_sequence(spec))
        if len(names) > 1 and spec and all(isinstance(s, (list, tuple)) for s in spec):
            if len(spec) != len(names):
                raise ValueError(f"metrics has {len(spec)} lists for {len(names)} outputs")
            return [list(s) for s in spec]
        return [list(spec) for _ in names]

    def _find_fusion(self, k, out):
        """Fuse a final softmax/sigmoid with a matching cross-entropy on
        probabilities: the model then feeds logits to the loss."""
        loss = out.loss
        if loss is None or loss.fusable_activation is None or getattr(loss, "from_logits", True):
            return
        slot = self._output_slots[k]
        step = self._producer.get(slot)
        if step is None or step.multi_out or self._consumers[slot] or \
                self._output_slots.count(slot) > 1:
            return
        if getattr(step.layer, "activation_name", None) != loss.fusable_activation:
            return
        if not hasattr(step.layer, "forward_logits"):
            return
        from cnnc import activations
        out.fused_step = step.index
        out.activation = activations.get(loss.fusable_activation)

    def _metric_names(self):
        outputs = self._compiled()
        names = ["loss"]
        single = len(outputs) == 1
        if not single:
            names += [f"{o.name}_loss" for o in outputs if o.loss is not None]
        for o in outputs:
            for metric, _ in o.metrics:
                names.append(metric.name if single else f"{o.name}_{metric.name}")
        return names

    @property
    def metrics_names(self):
        return self._metric_names()

    # -- one batch ------------------------------------------------------------------
    def _losses_and_grads(self, outs, ys, sample_weight, with_grads):
        """Per-output losses (batch means) and gradients w.r.t. the outputs."""
        outputs = self._compiled_outputs
        masks = self._output_masks  # Keras's masks reaching the outputs (None: no mask)
        n = outs[0].shape[0]
        total = 0.0
        grads = []
        values = []
        for k, out in enumerate(outputs):
            if out.loss is None:
                grads.append(None)
                values.append(None)
                continue
            if ys is None or ys[k] is None:
                raise ValueError(f"targets are needed for output {out.name!r}")
            mask = masks[k] if masks is not None else None
            if mask is not None:
                per_sample, grad = out.loss.compute_masked(
                    ys[k], outs[k], mask, sample_weight=sample_weight, grad_scale=out.weight / n,
                    need_grad=with_grads, from_logits=out.fused_step is not None)
            else:
                compute = (out.loss.compute_from_logits if out.fused_step is not None
                           else out.loss.compute)
                per_sample, grad = compute(ys[k], outs[k], sample_weight=sample_weight,
                                           grad_scale=out.weight / n, need_grad=with_grads)
            value = float(np.sum(per_sample, dtype=np.float64)) / n
            values.append(value)
            total += out.weight * value
            grads.append(grad if with_grads else None)
        return total, values, grads

    def _regularization_penalty(self):
        penalty = 0.0
        for weight in self.trainable_weights:
            reg = weight.regularizer
            if reg is None:
                continue
            l1 = getattr(reg, "l1", None)
            l2 = getattr(reg, "l2", None)
            if l1 is None or l2 is None:
                penalty += float(reg(weight.value))
                continue
            flat = weight.value.reshape(-1)
            if l1:
                penalty += l1 * float(np.abs(flat).sum(dtype=np.float64))
            if l2:
                penalty += l2 * float(np.dot(flat.astype(np.float64, copy=False), flat))
        return penalty

    def _update_metrics(self, outs, ys, sample_weight, values, training_outputs=True):
        outputs = self._compiled_outputs
        masks = self._output_masks
        n = outs[0].shape[0]
        for k, out in enumerate(outputs):
            if values[k] is not None:
                out.loss_tracker.update_state(values[k], sample_weight=n)
            if not out.metrics or ys is None or ys[k] is None:
                continue
            pred = outs[k]
            if out.fused_step is not None:
                pred = out.activation.forward(pred)
            mask = masks[k] if masks is not None else None
            for metric, weighted in out.metrics:
                weights = sample_weight if weighted else None
                if mask is not None and isinstance(metric, metrics_module.MeanMetricWrapper):
                    # As Keras: a masked output's metric averages over the kept positions.
                    weights = sample_weights_with_mask(weights, mask)
                metric.update_state(ys[k], pred, weights)

    def _logs(self, prefix=""):
        if self._distribute is not None:  # data parallel: the metrics of all ranks
            with self._distribute.logs_context(self):
                return self._local_logs(prefix)
        return self._local_logs(prefix)

    def _local_logs(self, prefix):
        outputs = self._compiled_outputs
        single = len(outputs) == 1
        logs = {prefix + "loss": self._loss_tracker.result()}
        if not single:
            for out in outputs:
                if out.loss is not None:
                    logs[f"{prefix}{out.name}_loss"] = out.loss_tracker.result()
        for out in outputs:
            for metric, _ in out.metrics:
                name = metric.name if single else f"{out.name}_{metric.name}"
                logs[prefix + name] = float(metric.result())
        return logs

    def _reset_metrics(self):
        self._loss_tracker = metrics_module.Mean(name="loss")
        for out in self._compiled_outputs:
            out.loss_tracker.reset_state()
            for metric, _ in out.metrics:
                metric.reset_state()

    def reset_metrics(self):
        if self._compiled_outputs is not None:
            self._reset_metrics()

    def _train_batch(self, xs, ys, sample_weight):
        with self._step_arena(xs).step():
            return self._train_batch_planned(xs, ys, sample_weight)

    def _step_arena(self, xs, kind="_arenas"):
        """The planned memory of training steps (``kind`` "_test_arenas":
        fit's validation steps) on batches of these shapes (see
        cnnc._memory.StepArena); the two latest shapes of a kind keep
        theirs (a last, shorter batch of an epoch), all on the same bytes
        (ArenaGroup): no two of these steps run at the same time."""
        arenas = self.__dict__.setdefault(kind, {})
        group = self.__dict__.get("_arena_group")
        if group is None:
            group = self._arena_group = ArenaGroup()
        key = tuple(x.shape for x in xs)
        arena = arenas.pop(key, None) or StepArena(group)
        arenas[key] = arena
        while len(arenas) > 2:
            del arenas[next(iter(arenas))]
        return arena

    def _train_batch_planned(self, xs, ys, sample_weight):
        outputs = self._compiled_outputs
        outs = self._run_forward(xs, training=True, logits_steps=self._fused_steps)
        total, values, grads = self._losses_and_grads(outs, ys, sample_weight, True)
        self._run_backward(grads, need_input_gradients=False)
        if self._distribute is not None:  # data parallel: the averaged gradients
            self._distribute.finish_gradients()
        weights = self._trainable_for_update()
        if self._has_regularizers:
            total += self._regularization_penalty()
        self.optimizer.apply(weights)
        self.release_backward_state()  # nothing held for backward between steps
        n = outs[0].shape[0]
        self._loss_tracker.update_state(total, sample_weight=n)
        if any(out.metrics for out in outputs) or len(outputs) > 1:
            self._update_metrics(outs, ys, sample_weight, values)
        return total

    def _trainable_for_update(self):
        key = self._backward_key
        if getattr(self, "_update_key", None) != key:
            self._update_weights = self.trainable_weights
            self._has_regularizers = any(w.regularizer is not None for w in self._update_weights)
            self._update_key = key
        return self._update_weights

    def _test_batch(self, xs, ys, sample_weight):
        outs = self._run_forward(xs, training=False, logits_steps=self._fused_steps)
        total, values, _ = self._losses_and_grads(outs, ys, sample_weight, False)
        if self._has_regularizers_any():
            total += self._regularization_penalty()
        self._loss_tracker.update_state(total, sample_weight=outs[0].shape[0])
        self._update_metrics(outs, ys, sample_weight, values)
        return total

    def _has_regularizers_any(self):
        return any(w.regularizer is not None for w in self.trainable_weights)

    # -- data ---------------------------------------------------------------------------
    def _ensure_built_for(self, x):
        if not self._graph_ready and hasattr(self, "_build_from_data"):
            if data_adapter.is_array_like(x):
                first = x
                if isinstance(x, dict):
                    first = next(iter(x.values()))
                self._build_from_data(first)
        self._require_graph()

    def _sample_weights(self, ys, sample_weight, class_weight):
        weights = None
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=np.float32)
            if weights.ndim != 1:
                weights = weights.reshape(weights.shape[0], -1)
                if weights.shape[1] != 1:
                    raise ValueError(f"sample_weight must have shape (samples,), got "
                                     f"{np.shape(sample_weight)}")
                weights = weights[:, 0]
        if class_weight is not None:
            if ys is None or len(ys) != 1:
                raise ValueError("class_weight needs a model with a single output and targets")
            y = ys[0]
            if y.ndim >= 2 and y.shape[-1] > 1:
                labels = np.argmax(y.reshape(y.shape[0], -1), axis=1)
            else:
                labels = np.rint(y.reshape(y.shape[0])).astype(np.int64)
            table = np.ones(int(max(labels.max(initial=0), max(class_weight) if class_weight
                                    else 0)) + 1, np.float32)
            for cls, w in class_weight.items():
                if int(cls) < 0:
                    raise ValueError(f"class_weight keys must be class indices >= 0, got {cls}")
                table[int(cls)] = w
            cw = table[labels]
            weights = cw if weights is None else weights * cw
        if weights is not None:
            weights = np.ascontiguousarray(weights, dtype=np.float32)
        return weights

    def _make_data(self, x, y=None, sample_weight=None, class_weight=None, batch_size=None,
                   shuffle=False, steps=None, need_targets=True):
        if not data_adapter.is_array_like(x):
            if y is not None:
                raise ValueError("y must be None when x is an iterable of batches")
            if sample_weight is not None or class_weight is not None:
                raise ValueError("with an iterable of batches, give sample weights in the "
                                 "batches (x, y, sample_weight)")
            return data_adapter.IterableData(x, steps)
        xs = data_adapter.to_list(x, self.input_names, "x")
        ys = data_adapter.to_list(y, self.output_names, "y")
        if need_targets and ys is None:
            raise ValueError("targets y are needed")
        sw = self._sample_weights(ys, sample_weight, class_weight)
        data = data_adapter.ArrayData(xs, ys, sw, batch_size, shuffle)
        if steps is not None:
            data.steps = min(data.steps, int(steps))
        return data

    def _standardize_batch(self, x, y, sw):
        xs = self._as_input_list(x)
        ys = None
        if y is not None:
            ys = data_adapter.to_list(y, self.output_names, "y")
        if sw is not None:
            sw = np.ascontiguousarray(sw, dtype=np.float32).reshape(-1)
        return xs, ys, sw

    # -- fit ------------------------------------------------------------------------------
    @_one_thread_at_a_time
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train for ``epochs - initial_epoch`` epochs; returns a History.

        x, y: arrays (a list or dict of arrays for several inputs/outputs), or
        x an iterable of (x, y[, sample_weight]) batches with y None.
        validation_split: fraction of the arrays (taken from the end, before
        shuffling) held out for validation. shuffle: reshuffle the samples
        every epoch (a stream that depends on the global seed and on the
        optimizer's step count, so a run resumed from a checkpoint sees the
        same order as an uninterrupted one).
        verbose: 0 silent, 1 progress bar, 2 one line per epoch ("auto" = 1).
        """
        self._ensure_built_for(x)
        self._compiled()
        verbose = 1 if verbose == "auto" else int(verbose)
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
        if validation_split and validation_data is not None:
            validation_split = 0.0  # as Keras: validation_data takes precedence
        if validation_split:
            if not data_adapter.is_array_like(x):
                raise ValueError("validation_split needs arrays, not an iterable of batches")
            xs = data_adapter.to_list(x, self.input_names, "x")
            ys = data_adapter.to_list(y, self.output_names, "y")
            n = xs[0].shape[0]
            split = int(n * (1.0 - validation_split))
            if split <= 0 or split >= n:
                raise ValueError(f"validation_split={validation_split} leaves no training or no "
                                 f"validation samples out of {n}")
            validation_data = ([a[split:] for a in xs], [a[split:] for a in ys])
            if sample_weight is not None:
                validation_data += (np.asarray(sample_weight)[split:],)
                sample_weight = np.asarray(sample_weight)[:split]
            x, y = [a[:split] for a in xs], [a[:split] for a in ys]
            if len(self.input_names) == 1:
                x = x[0]
            if len(self.output_names) == 1:
                y = y[0]
        data = self._make_data(x, y, sample_weight, class_weight, batch_size, shuffle,
                               steps_per_epoch)
        check_fits(self, data, True, "fit")
        val_data = None
        if validation_data is not None:
            val_data = self._validation_data(validation_data,
                                             batch_size if validation_batch_size is None else validation_batch_size,
                                             validation_steps)

        history = History()
        cbs = [ProgbarLogger()] if verbose else []
        cbs += list(callbacks or []) + [history]
        root = self.shuffle_root()
        if self._distribute is not None:  # data parallel: shard, check ranks agree, rank-0 output
            data, val_data, cbs, root = self._distribute.prepare_fit(
                self, data, val_data, cbs, root,
                {"epochs": epochs, "initial_epoch": initial_epoch, "shuffle": bool(shuffle),
                 "validation_freq": validation_freq})
        params = {"verbose": verbose, "epochs": epochs, "steps": data.steps,
                  "samples": data.num_samples, "batch_size": data.batch_size}
        callbacks = CallbackList(cbs, model=self, params=params)

        self._configure_backward(False)
        self.optimizer.build(self._trainable_for_update())
        self.stop_training = False
        self._in_fit = True
        logs = {}
        try:
            with reuse_buffers():
                logs = self._fit_epochs(data, val_data, callbacks, initial_epoch, epochs,
                                        validation_freq, root)
        finally:
            self._in_fit = False
            # as the buffer cache, planned memory goes back after fit
            self._arenas = {}
            self._test_arenas = {}
            self._arena_group = None
        self.history = history
        return history

    def _fit_epochs(self, data, val_data, callbacks, initial_epoch, epochs, validation_freq,
                    root):
        logs = {}
        train_batch = self._train_batch
        if self._distribute is not None:
            train_batch = functools.partial(self._distribute.train_step, self)
        callbacks.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            self._reset_metrics()
            callbacks.on_epoch_begin(epoch)
            rng = np.random.default_rng([root, self.optimizer.iterations, epoch])
            self._samples_seen = 0
            batch = -1
            for batch, (xs, ys, sw) in enumerate(data.batches(rng)):
                callbacks.on_train_batch_begin(batch)
                if not isinstance(data, data_adapter.ArrayData):
                    xs, ys, sw = self._standardize_batch(xs, ys, sw)
                train_batch(xs, ys, sw)
                self._samples_seen += _batch_rows(data, xs)
                callbacks.on_train_batch_end(batch, self._logs())
                if self.stop_training:
                    break
            if batch < 0:
                raise ValueError("the training data produced no batches")
            if self._distribute is not None:
                self._distribute.end_epoch(self)
            logs = self._logs()
            if val_data is not None and (epoch + 1) % validation_freq == 0:
                # planned on the training steps' bytes, idle meanwhile
                val_logs = self._evaluate_data(val_data, callbacks, planned=True)
                logs.update({"val_" + k: v for k, v in val_logs.items()})
            callbacks.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        if epochs > initial_epoch:
            # With use_ema, the weights become their moving averages (as Keras).
            self.optimizer.finalize_variable_values(self._trainable_for_update())
        callbacks.on_train_end(logs)
        return logs

    def _validation_data(self, validation_data, batch_size, steps):
        if isinstance(validation_data, tuple) and len(validation_data) in (2, 3) and \
                data_adapter.is_array_like(validation_data[0]):
            vx, vy = validation_data[0], validation_data[1]
            vsw = validation_data[2] if len(validation_data) == 3 else None
            return self._make_data(vx, vy, vsw, None, batch_size, False, steps)
        return self._make_data(validation_data, None, None, None, batch_size, False, steps)

    def _evaluate_data(self, data, callbacks, planned=False):
        self._reset_metrics()
        callbacks.on_test_begin()
        self._samples_seen = 0
        for batch, (xs, ys, sw) in enumerate(data.batches()):
            callbacks.on_test_batch_begin(batch)
            if not isinstance(data, data_adapter.ArrayData):
                xs, ys, sw = self._standardize_batch(xs, ys, sw)
            if xs[0].shape[0]:  # a data-parallel rank may hold no row of the last batch
                with (self._step_arena(xs, "_test_arenas").step() if planned
                      else contextlib.nullcontext()):
                    self._test_batch(xs, ys, sw)
            self._samples_seen += _batch_rows(data, xs)
            callbacks.on_test_batch_end(batch, self._logs())
        logs = self._logs()
        callbacks.on_test_end(logs)
        return logs

    # -- evaluate / predict ------------------------------------------------------------
    @_one_thread_at_a_time
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """Loss (and metrics) over the data, as fit reports them: a scalar
        when there are no metrics and one output, else a list in
        ``metrics_names`` order, or a dict with ``return_dict=True``."""
        self._ensure_built_for(x)
        self._compiled()
        verbose = 1 if verbose == "auto" else int(verbose)
        data = self._make_data(x, y, sample_weight, None, batch_size, False, steps)
        check_fits(self, data, False, "evaluate")
        cbs = ([ProgbarLogger()] if verbose else []) + list(callbacks or [])
        if self._distribute is not None:  # data parallel: each rank its part, metrics reduced
            data, cbs = self._distribute.prepare_evaluate(self, data, cbs)
        callbacks = CallbackList(cbs, model=self, params={
            "verbose": verbose, "epochs": 1, "steps": data.steps,
            "samples": data.num_samples, "batch_size": data.batch_size})
        with reuse_buffers():
            logs = self._evaluate_data(data, callbacks)
        return self._format_result(logs, return_dict)

    def _format_result(self, logs, return_dict):
        if return_dict:
            return dict(logs)
        values = [logs[name] for name in self._metric_names()]
        return values[0] if len(values) == 1 else values

    @_one_thread_at_a_time
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None, tta=None):
        """Outputs for every sample, computed in batches (default 32): an array,
        or a list of arrays for several outputs.

        tta: test-time augmentation, for image inputs ``(N, H, W, C)`` given
        as arrays: the mean of the outputs for several views of each image.
        ``"flip"``: the image and its horizontal mirror image (twice the
        work). ``"shift"``: the image and the image moved by one pixel up,
        down, left and right, zeros filling in (five times the work).
        ``"flip+shift"``: those five views and their mirror images (ten
        times). The classes then are ``predict(x, tta=...).argmax(-1)``."""
        from cnnc.models import tta as test_time
        self._ensure_built_for(x)
        return test_time.average([self._predict(v, batch_size, verbose, steps, callbacks)
                                  for v in test_time.views(x, tta, self.input_names)])

    def _predict(self, x, batch_size, verbose, steps, callbacks):
        verbose = 1 if verbose == "auto" else int(verbose)
        if data_adapter.is_array_like(x):
            xs = data_adapter.to_list(x, self.input_names, "x")
            data = data_adapter.ArrayData(xs, None, None, batch_size, False)
            check_fits(self, data, False, "predict", runtime=True)
            if steps is not None:
                data.steps = min(data.steps, int(steps))
        else:
            data = data_adapter.IterableData(x, steps)
        cbs = ([ProgbarLogger()] if verbose else []) + list(callbacks or [])
        callbacks = CallbackList(cbs, model=self, params={
            "verbose": verbose, "epochs": 1, "steps": data.steps,
            "samples": data.num_samples, "batch_size": data.batch_size})
        with reuse_buffers():
            results = self._predict_data(data, callbacks)
        return results[0] if self._single_output else results

    def _predict_data(self, data, callbacks):
        callbacks.on_predict_begin()
        self._samples_seen = 0
        results = None
        pieces = None
        total = data.num_samples if data.steps is None or data.num_samples is None else min(
            data.num_samples, data.steps * data.batch_size)
        offset = 0
        for batch, (xs, _, _) in enumerate(data.batches()):
            callbacks.on_predict_batch_begin(batch)
            if not isinstance(data, data_adapter.ArrayData):
                xs = self._as_input_list(xs)
            outs = self._inference_forward(xs)
            n = outs[0].shape[0]
            if total is not None:
                if results is None:
                    results = [np.empty((total,) + o.shape[1:], np.float32) for o in outs]
                for r, o in zip(results, outs):
                    r[offset:offset + n] = o
            else:
                if pieces is None:
                    pieces = [[] for _ in outs]
                for p, o in zip(pieces, outs):
                    p.append(o.copy())
            offset += n
            self._samples_seen += n
            callbacks.on_predict_batch_end(batch, {"outputs": outs})
        callbacks.on_predict_end()
        if results is None:
            if pieces is None:
                raise ValueError("predict got no batches")
            results = [np.concatenate(p) for p in pieces]
        return results

    def _inference_forward(self, xs):
        """Outputs at inference for the input list ``xs``: through the C model
        runtime (cnnc.models.inference) when it can run this model, else the
        layers' forward passes."""
        from cnnc.models import inference
        outs = inference.run(self, xs)
        return outs if outs is not None else self._run_forward(xs, training=False)

    @_one_thread_at_a_time
    def predict_on_batch(self, x):
        """Outputs for one batch (no batching)."""
        self._ensure_built_for(x)
        with reuse_buffers(drain=False):
            outs = self._inference_forward(self._as_input_list(x))
            outs = [o.copy() for o in outs]
        return outs[0] if self._single_output else outs

    @_one_thread_at_a_time
    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One optimizer step on one batch; returns the batch's loss (and
        metrics) as evaluate does."""
        self._ensure_built_for(x)
        self._compiled()
        xs = self._as_input_list(x)
        ys = data_adapter.to_list(y, self.output_names, "y")
        sw = self._sample_weights(ys, sample_weight, class_weight)
        self._configure_backward(False)
        # Packing the weights before the first step spares a copy of the
        # gradients made after backward wrote them.
        self.optimizer.build(self._trainable_for_update())
        self._reset_metrics()
        with reuse_buffers(drain=False):
            self._train_batch(xs, ys, sw)
        return self._format_result(self._logs(), return_dict)

    @_one_thread_at_a_time
    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """Loss (and metrics) of one batch, without training."""
        self._ensure_built_for(x)
        self._compiled()
        xs = self._as_input_list(x)
        ys = data_adapter.to_list(y, self.output_names, "y")
        sw = self._sample_weights(ys, sample_weight, None)
        self._reset_metrics()
        with reuse_buffers(drain=False):
            self._test_batch(xs, ys, sw)
        return self._format_result(self._logs(), return_dict)

    # -- saving ------------------------------------------------------------------------
    def save(self, filepath, overwrite=True, include_optimizer=True):
        """Save architecture, weights, training config and (by default)
        optimizer state to one file (see docs/format.md)."""
        from cnnc import saving
        saving.save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer)

    def save_weights(self, filepath, overwrite=True):
        """Save the weights alone (same file format)."""
        from cnnc import saving
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch=False):
        """Load weights saved by save_weights or save (matched by name)."""
        from cnnc import saving
        saving.load_weights(self, filepath, skip_mismatch=skip_mismatch)

    def get_compile_config(self):
        if not self.compiled:
            return None
        from cnnc import saving
        return saving.compile_config(self)


def _batch_rows(data, xs):
    """Samples in the batch just run: all ranks' under data parallelism."""
    position = getattr(data, "position", None)
    return xs[0].shape[0] if position is None else position.rows


def _as_sequence(spec):
    if isinstance(spec, (list, tuple)):
        return spec
    return [spec]
