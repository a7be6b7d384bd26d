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

    def update(self, current, values=None, samples=None, finalize=None):
        """Show progress at step ``current`` with ``values`` (list of
        (name, value) or dict); ``samples`` counts images seen so far."""
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
