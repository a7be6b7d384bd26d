"""cnnc.data.Dataset: shuffling, batching, prefetching, buffer reuse."""
import threading

import numpy as np
import pytest

from cnnc.data import Dataset


def _collect(ds):
    xs, ys = [], []
    for xb, yb in ds:
        xs.append(xb.copy())
        ys.append(yb.copy())
    return xs, ys


@pytest.mark.parametrize("prefetch", [0, 1, 3])
def test_epoch_covers_every_sample_once(prefetch, rng):
    x = rng.integers(0, 256, (103, 4, 5), dtype=np.uint8)
    y = np.arange(103)
    ds = Dataset(x, y, batch_size=10, seed=7, scale=1 / 255, sample_shape=(4, 5, 1), prefetch=prefetch)
    assert len(ds) == 11 and ds.x_shape == (None, 4, 5, 1)
    xs, ys = _collect(ds)
    assert [len(b) for b in ys] == [10] * 10 + [3]
    order = np.concatenate(ys)
    np.testing.assert_array_equal(np.sort(order), y)
    assert not np.array_equal(order, y)  # shuffled
    np.testing.assert_array_equal(order, ds.order(0))
    for xb, yb in zip(xs, ys):
        assert xb.dtype == np.float32 and xb.shape[1:] == (4, 5, 1)
        np.testing.assert_allclose(xb[..., 0], x[yb] * np.float32(1 / 255), rtol=1e-7)
    order2 = np.concatenate(_collect(ds)[1])
    assert not np.array_equal(order, order2)  # a new permutation every epoch
    again = Dataset(x, y, batch_size=10, seed=7, prefetch=prefetch)
    np.testing.assert_array_equal(np.concatenate(_collect(again)[1]), order)  # same seed, same batches


def test_no_shuffle_drop_remainder_and_x_only(rng):
    x = rng.standard_normal((10, 3)).astype(np.float32)
    ds = Dataset(x, batch_size=4, shuffle=False, drop_remainder=True)
    batches = [b.copy() for b in ds]
    assert len(ds) == 2 and len(batches) == 2
    np.testing.assert_array_equal(np.concatenate(batches), x[:8])
    with pytest.raises(ValueError, match="no full batch"):
        Dataset(x, batch_size=11, drop_remainder=True)


def test_buffers_are_reused_not_reallocated(rng):
    x = rng.standard_normal((64, 8)).astype(np.float32)
    ds = Dataset(x, np.zeros(64), batch_size=8, prefetch=1)
    ids = {id(xb.base if xb.base is not None else xb) for xb, _ in ds}
    assert len(ids) <= 3
    fresh = Dataset(x, np.zeros(64), batch_size=8, prefetch=1, reuse_buffers=False)
    held = [xb for xb, _ in fresh]  # batches stay valid when not reused
    np.testing.assert_array_equal(np.sort(np.concatenate(held), axis=0), np.sort(x, axis=0))


def test_prefetch_runs_ahead_in_a_thread(rng):
    seen = []

    def augment(xb):
        seen.append(threading.current_thread().name)
        return xb * 2

    x = rng.standard_normal((20, 2)).astype(np.float32)
    ds = Dataset(x, np.arange(20), batch_size=5, augment=augment, shuffle=False)
    it = iter(ds)
    xb, yb = next(it)
    np.testing.assert_array_equal(xb, x[:5] * 2)
    import time
    time.sleep(0.2)
    assert len(seen) == 2 and seen[0] == "cnnc-prefetch"  # the next batch is ready already
    rest = list(it)
    assert len(rest) == 3


def test_worker_errors_reach_the_consumer_and_early_exit_stops_it(rng):
    def bad(xb):
        raise RuntimeError("augmentation failed")

    ds = Dataset(np.zeros((8, 2), np.float32), np.zeros(8), batch_size=2, augment=bad)
    with pytest.raises(RuntimeError, match="augmentation failed"):
        list(ds)
    ds = Dataset(np.zeros((80, 2), np.float32), np.zeros(80), batch_size=2)
    before = threading.active_count()
    for _ in range(3):
        it = iter(ds)
        next(it)
        it.close()
    assert threading.active_count() == before


def test_argument_checks():
    with pytest.raises(ValueError, match="samples"):
        Dataset(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="batch_size"):
        Dataset(np.zeros((4, 2)), batch_size=0)
    with pytest.raises(ValueError, match="sample_shape"):
        Dataset(np.zeros((4, 2)), sample_shape=(3,))
    with pytest.raises(ValueError, match="at least one"):
        Dataset(np.zeros((0, 2)))
    with pytest.raises(TypeError, match="callable"):
        Dataset(np.zeros((4, 2)), augment=3)


class _TwoFlips:
    """A callable that calls its random layer twice per batch."""

    def __init__(self, layer):
        self.layers = [layer]

    def __call__(self, x, training=True):
        return self.layers[0](self.layers[0](x, training=training), training=training)


def _augmented_dataset(x, augment_kind):
    from cnnc import layers
    from cnnc.models import Sequential
    if augment_kind == "sequential":
        augment = Sequential([layers.RandomFlip("horizontal", seed=1),
                              layers.RandomErasing(1.0, scale=(0.1, 0.3), seed=2)])
    else:
        augment = _TwoFlips(layers.RandomFlip("horizontal_and_vertical", seed=3))
    return Dataset(x, batch_size=4, seed=5, augment=augment, reuse_buffers=False)


@pytest.mark.parametrize("augment_kind", ["sequential", "called_twice"])
@pytest.mark.parametrize("prefetch", [0, 1, 3])
def test_an_epoch_cut_short_leaves_later_augmentation_unchanged(rng, augment_kind, prefetch):
    """Batch k of epoch e is augmented from position (e, k) of the random
    streams, however far the background thread ran ahead of a consumer that
    stopped early (fit(steps_per_epoch=...))."""
    x = rng.random((32, 6, 6, 1), dtype=np.float32)
    full = _augmented_dataset(x, augment_kind)
    full.prefetch = prefetch
    epochs_full = [[b.copy() for b in full] for _ in range(3)]
    cut = _augmented_dataset(x, augment_kind)
    cut.prefetch = prefetch
    it = iter(cut)
    first = next(it).copy()
    for _ in range(50):                      # let the worker fill what it can
        if prefetch == 0 or it.ready.qsize() >= min(prefetch, 7):
            break
        threading.Event().wait(0.01)
    del it
    np.testing.assert_array_equal(first, epochs_full[0][0])
    for e in (1, 2):
        batches = [b.copy() for b in cut]
        assert len(batches) == len(epochs_full[e])
        for k, (got, want) in enumerate(zip(batches, epochs_full[e])):
            np.testing.assert_array_equal(got, want, err_msg=f"epoch {e} batch {k}")
    # the augmentation does something: epochs differ from the raw batches
    assert not np.array_equal(epochs_full[1][0], x[full.order(1)[:4]])


@pytest.mark.parametrize("augment_kind", ["sequential", "called_twice"])
def test_a_dataset_started_at_a_later_epoch_augments_as_if_it_had_run_from_epoch_0(rng, augment_kind):
    """The first batch a Dataset augments may sit past position 0 (its epoch
    set by hand): it still takes the draws of its own position, also for a
    callable that draws twice per batch."""
    x = rng.random((32, 6, 6, 1), dtype=np.float32)
    full = _augmented_dataset(x, augment_kind)
    full.prefetch = 0
    want = [[b.copy() for b in full] for _ in range(3)]
    late = _augmented_dataset(x, augment_kind)
    late.prefetch = 0
    late.epoch = 2
    got = [b.copy() for b in late]
    for k, (g, w) in enumerate(zip(got, want[2])):
        np.testing.assert_array_equal(g, w, err_msg=f"batch {k}")
