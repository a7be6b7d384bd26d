"""The Keras-style progress bar shown by fit/evaluate/predict."""
import sys
import time


def _format_duration(seconds):
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if seconds >= 60:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds}s"


def _format_per_step(seconds):
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


def _format_value(value):
    if isinstance(value, float) or hasattr(value, "dtype"):
        value = float(value)
        return f"{value:.4f}" if 1e-3 <= abs(value) < 1e4 or value == 0 else f"{value:.4e}"
    return str(value)


class Progbar:
    """Progress of ``target`` steps.

    verbose=1: a bar with ETA, throughput and values, redrawn in place on a
    terminal at most every ``interval`` seconds; when the stream is not a
    terminal (log file, CI) only a plain line every ``log_interval`` seconds
    and the final line are written. verbose=2: only the final line.
    ``target=None`` (unknown length) shows the step count without a bar.
    """

    def __init__(self, target, width=30, verbose=1, interval=0.05, unit_name="step",
                 stream=None, log_interval=60.0):
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.log_interval = log_interval
        self.unit_name = unit_name
        self.stream = stream if stream is not None else sys.stdout
        isatty = getattr(self.stream, "isatty", None)
        self.dynamic = bool(isatty and isatty())
        self._start = time.perf_counter()
        self._last_update = 0.0
        self._last_width = 0
        self._finished = False
        self._rate = None  # (samples, elapsed) of the last progress update

    def _throughput(self, samples, elapsed):
        if samples is None or elapsed <= 0:
            return None
        return f"{samples / elapsed:.0f} img/s"

    def update(self, current, values=None, samples=None, finalize=None, run_remaining=None):
        """Show progress at step ``current`` with ``values`` (list of
        (name, value) or dict); ``samples`` counts images seen so far;
        ``run_remaining``: seconds left for the whole run (all epochs), shown
        as "run ETA" when given."""
        if self.verbose == 0 or self._finished:
            return
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        now = time.perf_counter()
        elapsed = now - self._start
        if isinstance(values, dict):
            values = list(values.items())
        values = values or []
        suffix = "".join(f" - {name}: {_format_value(value)}" for name, value in values)
        throughput = self._throughput(samples, elapsed)
        if samples is not None and not finalize:
            self._rate = (samples, elapsed)
        elif samples is None and self._rate is not None:
            # The closing line of a training epoch comes after validation:
            # the rate is that of the training steps alone.
            throughput = self._throughput(*self._rate)

        if finalize:
            self._finished = True
            per_step = elapsed / max(current, 1)
            head = (f"{current}/{self.target}" if self.target is not None else f"{current}")
            bar = f" [{'=' * self.width}]" if self.verbose == 1 and self.target else ""
            line = f"{head}{bar} - {_format_duration(elapsed)} {_format_per_step(per_step)}"
            if throughput:
                line += f" - {throughput}"
            if run_remaining:
                line += f" - run ETA: {_format_duration(run_remaining)}"
            self._write(line + suffix, final=True)
            return
        if self.verbose != 1:
            return
        if self.dynamic:
            if now - self._last_update < self.interval:
                return
        elif now - self._last_update < self.log_interval or elapsed < self.log_interval:
            return
        self._last_update = now
        if self.target is not None:
            done = int(self.width * current / self.target)
            bar = "=" * max(done - 1, 0) + (">" if done < self.width else "=") if done else ""
            digits = len(str(self.target))
            head = f"{current:>{digits}}/{self.target} [{bar:.<{self.width}}]"
            eta = (elapsed / current) * (self.target - current) if current else 0.0
            line = f"{head} - ETA: {_format_duration(eta)}"
        else:
            line = f"{current} - {_format_duration(elapsed)}"
        if run_remaining is not None:
            line += f" - run ETA: {_format_duration(run_remaining)}"
        if throughput:
            line += f" - {throughput}"
        self._write(line + suffix, final=False)

    def _write(self, line, final):
        if self.dynamic:
            pad = " " * max(self._last_width - len(line), 0)
            self.stream.write("\r" + line + pad + ("\n" if final else ""))
            self._last_width = 0 if final else len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


class RunClock:
    """Estimates the seconds left in a training run of ``epochs`` epochs of
    ``steps`` steps each: the current epoch's remaining steps at this epoch's
    step rate, plus its validation and every later epoch at the durations the
    finished epochs took (validation included). Before any epoch has
    finished, the later epochs are estimated from the current step rate."""

    def __init__(self, epochs, steps, clock=time.perf_counter):
        self.epochs = epochs
        self.steps = steps
        self._clock = clock
        self._epoch = 0
        self._epoch_start = None
        self._train_end = None
        self._durations = []   # whole epochs, validation included
        self._validation = []  # the validation part of each

    def begin_epoch(self, epoch):
        self._epoch = epoch
        self._epoch_start = self._clock()
        self._train_end = None

    def end_training(self):
        """The epoch's last training step is done (validation follows)."""
        self._train_end = self._clock()

    def end_epoch(self):
        now = self._clock()
        self._durations.append(now - self._epoch_start)
        self._validation.append(now - (self._train_end if self._train_end is not None else now))

    def remaining(self, step=None):
        """Seconds left after ``step`` training steps of the current epoch
        (None: the current epoch has ended); None when nothing is known yet."""
        later = self.epochs - self._epoch - 1
        if step is None:
            if not self._durations:
                return None
            return later * sum(self._durations) / len(self._durations)
        if self.steps is None or self._epoch_start is None or step <= 0:
            return None
        per_step = (self._clock() - self._epoch_start) / step
        validation = sum(self._validation) / len(self._validation) if self._validation else 0.0
        epoch = (sum(self._durations) / len(self._durations) if self._durations
                 else per_step * self.steps)
        return per_step * max(self.steps - step, 0) + validation + later * epoch
