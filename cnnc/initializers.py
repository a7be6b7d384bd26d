"""Weight initializers with Keras's names, arguments and statistics.

An initializer is called as ``init(shape)`` and returns a float32 array. The
fans of a kernel follow Keras: for a 2-D ``(in, out)`` matrix they are its two
dimensions; for a convolution kernel ``(*spatial, in, out)`` both are
multiplied by the receptive field size ``prod(spatial)``.

Initializers given ``seed=None`` draw from the global generator of
:mod:`cnnc.random` (so ``cnnc.utils.set_random_seed`` makes them
reproducible); with an integer seed they return the same values at every call.
"""
import math

import numpy as np

from cnnc import random as _random

__all__ = [
    "Initializer", "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform",
    "TruncatedNormal", "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeUniform",
    "HeNormal", "LecunUniform", "LecunNormal", "Orthogonal", "Identity",
    "compute_fans", "get", "serialize", "deserialize",
]


def compute_fans(shape):
    """(fan_in, fan_out) of a weight of this shape, as Keras computes them."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _check_shape(shape):
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise ValueError(f"shape must be a tuple of integers, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"shape must not have negative dimensions, got {shape}")
    return shape


def _check_dtype(dtype):
    if dtype not in (None, "float32", np.float32):
        raise ValueError(f"initializers produce float32 weights; dtype={dtype!r} is not supported")


# Draws go through float64 in blocks of this many values: drawing a whole
# kernel at once made a float64 temporary twice its size, and the freed
# temporaries of a model's many kernels stayed in the heap (ResNet-50: 20 MiB
# of its 98 MiB of weights). Blocks draw the same stream, so the same values.
_DRAW_BLOCK = 1 << 15


def _draw_float32(shape, draw):
    """A float32 array of ``shape`` filled with ``draw(n)`` (float64 values,
    n at a time, in order), rounded as ``astype`` rounds."""
    out = np.empty(shape, np.float32)
    flat = out.reshape(-1)
    for start in range(0, flat.size, _DRAW_BLOCK):
        flat[start:start + _DRAW_BLOCK] = draw(min(_DRAW_BLOCK, flat.size - start))
    return out


def _truncated_normal(gen, shape, mean, stddev):
    """Normal(mean, stddev) restricted to mean ± 2 stddev (redrawing outliers),
    as Keras's truncated normal."""
    out = np.empty(math.prod(shape), np.float32)
    bad = np.empty(out.size, bool)
    for start in range(0, out.size, _DRAW_BLOCK):
        z = gen.standard_normal(min(_DRAW_BLOCK, out.size - start))
        bad[start:start + z.size] = np.abs(z) > 2.0
        out[start:start + z.size] = z * stddev + mean
    # Outliers are redrawn together, in index order, until none is left.
    redraw = np.flatnonzero(bad)
    while redraw.size:
        z = gen.standard_normal(redraw.size)
        out[redraw] = z * stddev + mean
        redraw = redraw[np.abs(z) > 2.0]
    return out.reshape(shape)


class Initializer:
    """Base class: ``__call__(shape, dtype=None) -> float32 ndarray``."""

    def __call__(self, shape, dtype=None):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    """All zeros."""

    def __call__(self, shape, dtype=None):
        _check_dtype(dtype)
        return np.zeros(_check_shape(shape), dtype=np.float32)


class Ones(Initializer):
    """All ones."""

    def __call__(self, shape, dtype=None):
        _check_dtype(dtype)
        return np.ones(_check_shape(shape), dtype=np.float32)


class Constant(Initializer):
    """Every element equal to ``value`` (a scalar)."""

    def __init__(self, value=0.0):
        if np.ndim(value) != 0:
            raise ValueError(f"Constant: value must be a scalar, got shape {np.shape(value)}")
        self.value = float(value)

    def __call__(self, shape, dtype=None):
        _check_dtype(dtype)
        return np.full(_check_shape(shape), self.value, dtype=np.float32)

    def get_config(self):
        return {"value": self.value}


class _Seeded(Initializer):
    def __init__(self, seed=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f"seed must be None or a non-negative integer, got {seed!r}")
        self.seed = None if seed is None else int(seed)

    def _generator(self):
        return _random.make_generator(self.seed)


class RandomNormal(_Seeded):
    """Normal(mean, stddev)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        if stddev < 0:
            raise ValueError(f"RandomNormal: stddev must be >= 0, got {stddev}")
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype=None):
        _check_dtype(dtype)
        shape = _check_shape(shape)
        gen = self._generator()
        return _draw_float32(shape, lambda n: gen.normal(self.mean, self.stddev, n))

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(_Seeded):
    """Uniform on [minval, maxval)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        if maxval < minval:
            raise ValueError(f"RandomUniform: maxval ({maxval}) must be >= minval ({minval})")
        self.minval, self.maxval = float(minval), float(maxval)

    def __call__(self, shape, dtype=None):
        _check_dtype(dtype)
        shape = _check_shape(shape)
        gen = self._generator()
        return _draw_float32(shape, lambda n: gen.uniform(self.minval, self.maxval, n))

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class TruncatedNormal(_Seeded):
    """Normal(mean, stddev) truncated to mean ± 2 stddev."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        if stddev < 0:
            raise ValueError(f"TruncatedNormal: stddev must be >= 0, got {stddev}")
        self.mean, self.stddev = float(mean), float(stddev)

    def __call__(self, shape, dtype=None):
        _check_dtype(dtype)
        shape = _check_shape(shape)
        return _truncated_normal(self._generator(), shape, self.mean, self.stddev)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


# The standard deviation of a unit normal truncated to [-2, 2]: Keras divides
# by it so that the truncated draw has the intended variance.
_TRUNCATED_STD = 0.87962566103423978


class VarianceScaling(_Seeded):
    """Samples with variance ``scale / n``, n = fan_in, fan_out or their mean.

    distribution: "truncated_normal" (std = sqrt(scale / n) / 0.8796..., cut at
    2 std), "untruncated_normal" (alias "normal"), or "uniform" (limit
    sqrt(3 scale / n)).
    """

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        if not scale > 0:
            raise ValueError(f"VarianceScaling: scale must be positive, got {scale}")
        mode = str(mode).lower()
        if mode not in self._MODES:
            raise ValueError(f"VarianceScaling: mode must be one of {self._MODES}, got {mode!r}")
        distribution = str(distribution).lower()
        if distribution == "normal":
            distribution = "untruncated_normal"
        if distribution not in self._DISTRIBUTIONS:
            raise ValueError(f"VarianceScaling: distribution must be one of "
                             f"{self._DISTRIBUTIONS}, got {distribution!r}")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def __call__(self, shape, dtype=None):
        _check_dtype(dtype)
        shape = _check_shape(shape)
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, n)
        gen = self._generator()
        if self.distribution == "truncated_normal":
            return _truncated_normal(gen, shape, 0.0, math.sqrt(variance) / _TRUNCATED_STD)
        if self.distribution == "untruncated_normal":
            return _draw_float32(shape, lambda n: gen.normal(0.0, math.sqrt(variance), n))
        limit = math.sqrt(3.0 * variance)
        return _draw_float32(shape, lambda n: gen.uniform(-limit, limit, n))

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed}


class _FixedVarianceScaling(VarianceScaling):
    _ARGS = (1.0, "fan_in", "truncated_normal")

    def __init__(self, seed=None):
        super().__init__(*self._ARGS, seed=seed)

    def get_config(self):
        return {"seed": self.seed}


class GlorotUniform(_FixedVarianceScaling):
    """Uniform on ±sqrt(6 / (fan_in + fan_out)) (Xavier uniform)."""
    _ARGS = (1.0, "fan_avg", "uniform")


class GlorotNormal(_FixedVarianceScaling):
    """Truncated normal with std sqrt(2 / (fan_in + fan_out)) (Xavier normal)."""
    _ARGS = (1.0, "fan_avg", "truncated_normal")


class HeUniform(_FixedVarianceScaling):
    """Uniform on ±sqrt(6 / fan_in) (Kaiming uniform)."""
    _ARGS = (2.0, "fan_in", "uniform")


class HeNormal(_FixedVarianceScaling):
    """Truncated normal with std sqrt(2 / fan_in) (Kaiming normal)."""
    _ARGS = (2.0, "fan_in", "truncated_normal")


class LecunUniform(_FixedVarianceScaling):
    """Uniform on ±sqrt(3 / fan_in)."""
    _ARGS = (1.0, "fan_in", "uniform")


class LecunNormal(_FixedVarianceScaling):
    """Truncated normal with std sqrt(1 / fan_in)."""
    _ARGS = (1.0, "fan_in", "truncated_normal")


class Orthogonal(_Seeded):
    """A (semi-)orthogonal matrix times ``gain``; kernels of rank > 2 are
    treated as (prod(shape[:-1]), shape[-1]) matrices, as Keras does."""

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = float(gain)

    def __call__(self, shape, dtype=None):
        _check_dtype(dtype)
        shape = _check_shape(shape)
        if len(shape) < 2:
            raise ValueError(f"Orthogonal needs a shape of rank >= 2, got {shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = self._generator().standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(np.float32)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


class Identity(Initializer):
    """``gain`` times the identity matrix (2-D shapes only)."""

    def __init__(self, gain=1.0):
        self.gain = float(gain)

    def __call__(self, shape, dtype=None):
        _check_dtype(dtype)
        shape = _check_shape(shape)
        if len(shape) != 2:
            raise ValueError(f"Identity needs a 2-D shape, got {shape}")
        return (self.gain * np.eye(*shape)).astype(np.float32)

    def get_config(self):
        return {"gain": self.gain}


_CLASSES = {cls.__name__: cls for cls in (
    Zeros, Ones, Constant, RandomNormal, RandomUniform, TruncatedNormal, VarianceScaling,
    GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal, Orthogonal,
    Identity)}

_ALIASES = {
    "zeros": Zeros, "zero": Zeros, "ones": Ones, "one": Ones, "constant": Constant,
    "random_normal": RandomNormal, "normal": RandomNormal,
    "random_uniform": RandomUniform, "uniform": RandomUniform,
    "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform, "xavier_uniform": GlorotUniform,
    "glorot_normal": GlorotNormal, "xavier_normal": GlorotNormal,
    "he_uniform": HeUniform, "he_normal": HeNormal,
    "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal,
    "orthogonal": Orthogonal, "identity": Identity,
}


def serialize(initializer):
    """``{"class_name": ..., "config": {...}}`` (JSON-serializable)."""
    if not isinstance(initializer, Initializer):
        raise ValueError(f"cannot serialize initializer {initializer!r}: "
                         f"only cnnc.initializers objects have a config")
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}


def deserialize(config):
    """Inverse of :func:`serialize`."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"an initializer config must be a dict with 'class_name', got {config!r}")
    name = config["class_name"]
    cls = _CLASSES.get(name) or _ALIASES.get(name)
    if cls is None:
        raise ValueError(f"unknown initializer {name!r}")
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier):
    """An Initializer from a name ("he_normal", "GlorotUniform"), a config
    dict, an Initializer, or a callable ``f(shape) -> array`` (kept as is)."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        cls = _ALIASES.get(identifier.lower()) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"unknown initializer {identifier!r}; expected one of "
                             f"{sorted(_ALIASES)}")
        return cls()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return identifier
    raise ValueError(f"could not interpret initializer {identifier!r}")
