"""Batch normalization with statistics over the global batch."""
import numpy as np

from cnnc import _kernels as ops
from cnnc._inference_mode import behaves_as_training
from cnnc.layers.batch_normalization import BatchNormalization


class SyncBatchNormalization(BatchNormalization):
    """BatchNormalization whose training statistics cover the global batch
    of data-parallel training (all ranks), not each rank's part of it.

    Forward: the channel means and (biased) variances come from sums over
    every rank's rows; backward: the sums of ``dy`` and ``dy * x_hat`` that
    the input gradient needs are reduced the same way, so the gradients are
    those of BatchNormalization on the global batch. Outside data-parallel
    training (one process, or inference) it is exactly BatchNormalization.
    Same arguments and weights as BatchNormalization.
    """

    # Its moving statistics come from the global batch: the same on every rank.
    synchronized = True

    def forward(self, x, training=False):
        from cnnc.distributed._context import running_strategy
        strategy = running_strategy()
        if strategy is None or not (behaves_as_training(training) and self.trainable):
            self._sync = None
            return super().forward(x, training=training)
        channels = self.moving_mean.shape[0]
        if x.ndim <= self._axis or x.shape[self._axis] != channels:
            raise ValueError(f"SyncBatchNormalization {self.name!r} was built for {channels} "
                             f"features on axis {self.axis}, got input of shape {x.shape}")
        position = strategy.position
        xl = self._to_last(x)
        rows = xl.reshape(-1, channels)
        # A stand-in step (a rank with no row of the batch) adds nothing.
        real = position.local_rows > 0
        count = rows.shape[0] * position.rows // max(position.local_rows, 1)
        sums = np.zeros(channels, np.float64)
        if real:
            sums += rows.sum(axis=0, dtype=np.float64)
        strategy.allreduce(sums, f"the batch mean of {self.name}")
        mean = sums / count
        # Two passes (mean, then squared deviations): no cancellation.
        squares = np.zeros(channels, np.float64)
        if real:
            centered = rows - mean.astype(np.float32)
            squares += np.einsum("ij,ij->j", centered, centered, dtype=np.float64)
        strategy.allreduce(squares, f"the batch variance of {self.name}")
        var = squares / count
        inv_std = 1.0 / np.sqrt(var + self.epsilon)
        keep, fold = self.momentum, 1.0 - self.momentum
        self.moving_mean.value[...] = self.moving_mean.value.astype(np.float64) * keep + mean * fold
        self.moving_variance.value[...] = (self.moving_variance.value.astype(np.float64) * keep
                                           + var * fold)
        mean32, var32 = mean.astype(np.float32), var.astype(np.float32)
        y = ops.batch_norm_inference(xl, self._gamma(), self._beta(), mean32, var32,
                                     epsilon=self.epsilon)
        self._cache = None
        self._sync = (strategy, xl, mean32, inv_std.astype(np.float32), position)
        return self._from_last(y)

    def backward(self, dy):
        if getattr(self, "_sync", None) is None:
            return super().backward(dy)
        strategy, xl, mean, inv_std, position = self._sync
        channels = mean.shape[0]
        dyl = self._to_last(np.asarray(dy, dtype=np.float32))
        dy2 = dyl.reshape(-1, channels)
        x_hat = (xl.reshape(-1, channels) - mean) * inv_std
        local = np.empty(2 * channels, np.float64)
        local[:channels] = dy2.sum(axis=0, dtype=np.float64)
        local[channels:] = np.einsum("ij,ij->j", dy2, x_hat, dtype=np.float64)
        if self.center:
            self.beta.grad[...] = local[:channels]
        if self.scale:
            self.gamma.grad[...] = local[channels:]
        # dy is this rank's gradient of its local mean loss; the global sums
        # weigh each rank by its share of the global batch.
        totals = local * position.weight
        strategy.allreduce(totals, f"the gradient sums of {self.name}")
        if position.local_rows == 0:
            return self._from_last(np.zeros_like(dyl))
        n = dy2.shape[0]
        dx = (self._gamma() * inv_std) * (dy2 - (totals[:channels] / n).astype(np.float32)
                                          - x_hat * (totals[channels:] / n).astype(np.float32))
        return self._from_last(dx.reshape(dyl.shape).astype(np.float32, copy=False))
