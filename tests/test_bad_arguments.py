"""Mistaken arguments give a clear exception at once: batch sizes, sparse
labels (out of range, one-hot), absurd upsampling and padding sizes."""
import threading

import numpy as np
import pytest

import cnnc
import cnnc.layers as L
from cnnc import losses, metrics


def _model(classes=3):
    model = cnnc.models.Sequential([L.Input((4,)), L.Dense(classes, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True, "8"])
@pytest.mark.parametrize("method", ["fit", "evaluate", "predict"])
def test_bad_batch_size_is_refused(method, batch_size):
    model = _model()
    x = np.zeros((10, 4), np.float32)
    y = np.zeros(10, np.int64)
    args = (x,) if method == "predict" else (x, y)
    with pytest.raises((ValueError, TypeError), match="batch_size"):
        getattr(model, method)(*args, batch_size=batch_size, verbose=0)


def test_bad_validation_batch_size_is_refused():
    model = _model()
    x = np.zeros((10, 4), np.float32)
    y = np.zeros(10, np.int64)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(x, y, validation_data=(x, y), validation_batch_size=0, verbose=0)


def test_batch_size_one_and_none_work():
    model = _model()
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    assert model.predict(x, batch_size=1, verbose=0).shape == (5, 3)
    assert model.predict(x, batch_size=None, verbose=0).shape == (5, 3)


PRED = np.array([[0.1, 0.5, 0.2, 0.2], [0.7, 0.1, 0.1, 0.1]], np.float32)


@pytest.mark.parametrize("metric", [metrics.SparseCategoricalAccuracy(),
                                    metrics.SparseTopKCategoricalAccuracy(k=2)])
@pytest.mark.parametrize("labels", [[1, -1], [1, 4], [12, 0], [1.5, 0]])
def test_sparse_metrics_refuse_bad_labels(metric, labels):
    with pytest.raises(ValueError, match="label|integer|whole"):
        metric.update_state(np.array(labels), PRED)


@pytest.mark.parametrize("metric", [metrics.SparseCategoricalAccuracy(),
                                    metrics.SparseTopKCategoricalAccuracy(k=2)])
def test_sparse_metrics_refuse_one_hot(metric):
    with pytest.raises(ValueError, match="one-hot"):
        metric.update_state(np.eye(4, dtype=np.float32)[[1, 0]], PRED)


def test_sparse_metrics_values_on_good_labels():
    top2 = metrics.SparseTopKCategoricalAccuracy(k=2)
    top2.update_state(np.array([[2], [3]]), PRED)  # (N, 1) works too
    # sample 0: scores 0.5 > 0.2 = 0.2: label 2 has one strictly higher -> in top 2;
    # sample 1: label 3 scores 0.1, one higher (0.7) -> in top 2
    assert top2.result() == pytest.approx(1.0)
    acc = metrics.SparseCategoricalAccuracy()
    acc.update_state(np.array([1, 3]), PRED)
    assert acc.result() == pytest.approx(0.5)


@pytest.mark.parametrize("loss", [losses.SparseCategoricalCrossentropy(),
                                  losses.SparseCategoricalCrossentropy(from_logits=True)])
def test_sparse_loss_refuses_one_hot_and_out_of_range(loss):
    with pytest.raises(ValueError, match="one-hot"):
        loss(np.eye(4, dtype=np.float32)[[1, 0]], PRED)
    with pytest.raises(ValueError, match="out of range"):
        loss(np.array([1, 4]), PRED)
    with pytest.raises(ValueError, match="out of range"):
        loss(np.array([-1, 0]), PRED)


def test_sparse_loss_ignore_class_passes_ignored_labels():
    loss = losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)
    with_ignored = float(loss(np.array([1, -1]), PRED))
    alone = float(loss(np.array([1]), PRED[:1]))
    assert np.isfinite(with_ignored) and with_ignored > 0
    # the ignored sample adds nothing to the sum
    assert with_ignored * 2 == pytest.approx(alone, rel=1e-5) or with_ignored == pytest.approx(alone, rel=1e-5)


def test_fit_with_one_hot_targets_and_sparse_loss_says_so():
    model = _model()
    x = np.zeros((6, 4), np.float32)
    y = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1, 2]]
    with pytest.raises(ValueError, match="one-hot"):
        model.fit(x, y, epochs=1, verbose=0)


@pytest.mark.parametrize("make, shape", [
    (lambda: L.UpSampling1D(2**40), (0, 3, 2)),
    (lambda: L.UpSampling1D(2**40), (1, 3, 2)),
    (lambda: L.UpSampling2D((2**20, 2**20)), (0, 4, 4, 1)),
    (lambda: L.UpSampling2D((2**33, 1)), (1, 2, 2, 1)),
    (lambda: L.ZeroPadding1D(2**40), (0, 3, 2)),
    (lambda: L.ZeroPadding2D(((2**40, 0), (0, 0))), (0, 2, 2, 1)),
])
def test_absurd_output_sizes_are_refused(make, shape):
    layer = make()
    with pytest.raises(ValueError, match="limit"):
        layer(np.zeros(shape, np.float32))
    with pytest.raises(ValueError, match="limit"):
        layer.compute_output_shape((None,) + shape[1:])


def test_ordinary_upsampling_still_works():
    x = np.arange(6, dtype=np.float32).reshape(1, 3, 2)
    y = L.UpSampling1D(3)(x)
    np.testing.assert_array_equal(y, np.repeat(x, 3, axis=1))


def test_concurrent_training_and_prediction_is_refused():
    """One model used from two threads at once: the second use gets a clear
    RuntimeError (never a wrong result or a misleading message)."""
    model = _model()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4096, 4)).astype(np.float32)
    y = rng.integers(0, 3, 4096)
    errors, started = [], threading.Event()

    class Signal(cnnc.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            started.set()
            if batch == 0:
                done.wait(10)

    done = threading.Event()
    trainer = threading.Thread(target=lambda: model.fit(x, y, epochs=1, batch_size=64, verbose=0,
                                                        callbacks=[Signal()]))
    trainer.start()
    assert started.wait(10)
    try:
        with pytest.raises(RuntimeError, match="another thread"):
            model.predict(x[:8], verbose=0)
    except BaseException as error:  # keep the trainer from hanging
        errors.append(error)
    done.set()
    trainer.join()
    if errors:
        raise errors[0]
    # once training is over, the model serves predictions again
    assert model.predict(x[:8], verbose=0).shape == (8, 3)
