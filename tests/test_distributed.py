"""Data-parallel training (cnnc.distributed) under mpirun: the same weights
as one process, every sample once per epoch, checkpoint and resume, faults
that stop the job instead of hanging it, ranks that disagree.

The MPI cases launch tests/distributed_worker.py (2 or 3 ranks on this
machine, more ranks than cores allowed) with the launcher of the MPI the
installed mpi4py uses, Open MPI's mpirun or MPICH's mpiexec, and compare its
results with the worker run as one plain process. They skip when mpi4py or
a matching launcher is missing.
"""
import functools
import os
import subprocess
import sys

import numpy as np
import pytest

import cnnc
from cnnc import layers, random as cnnc_random
from cnnc.distributed.launcher import local_launch
from cnnc.distributed.sharding import shard_bounds

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "distributed_worker.py")
LAUNCH_TIMEOUT = 240  # seconds; a hung job fails the test instead of the suite


@functools.lru_cache(maxsize=None)
def _launcher(ranks, family=None):
    """(command prefix, environment additions) of the launcher of the MPI
    the installed mpi4py uses (or of ``family``), for ``ranks`` ranks on this
    machine; skips when there is none (fails under CNNC_TEST_REQUIRE_MPI=1,
    as in CI, where a skip would hide a broken MPI install)."""
    try:
        return local_launch(ranks, family=family)
    except RuntimeError as exc:
        if os.environ.get("CNNC_TEST_REQUIRE_MPI") == "1" and family is None:
            pytest.fail(f"CNNC_TEST_REQUIRE_MPI=1 but: {exc}")
        pytest.skip(str(exc))


def _mpirun(ranks=2):
    return _launcher(ranks)[0]


def _env(ranks=2):
    env = dict(os.environ)
    # The worker imports the cnnc this test imports, one kernel thread per rank.
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(cnnc.__file__))] +
        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["OMP_NUM_THREADS"] = "1"
    env.update(_launcher(ranks)[1])
    return env


def launch(ranks, *args, cwd, timeout=LAUNCH_TIMEOUT, check=True):
    """Run the worker on ``ranks`` MPI ranks (None: one plain process)."""
    command = [sys.executable, WORKER, *map(str, args)]
    if ranks is not None:
        command = _mpirun(ranks) + command
    result = subprocess.run(command, cwd=cwd, env=_env(ranks or 2), capture_output=True,
                            text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def relative_differences(a, b):
    return {k: float(np.linalg.norm(a[k].astype(np.float64) - b[k]) /
                     max(np.linalg.norm(b[k].astype(np.float64)), 1e-30)) for k in b.files}


# -- in one process ---------------------------------------------------------------

@pytest.mark.parametrize("rows", [1, 2, 5, 63, 64, 65])
@pytest.mark.parametrize("size", [1, 2, 3, 8])
def test_shards_tile_each_batch(rows, size):
    parts = [shard_bounds(rows, size, r) for r in range(size)]
    assert parts[0][0] == 0 and parts[-1][1] == rows
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
    lengths = [hi - lo for lo, hi in parts]
    assert max(lengths) - min(lengths) <= 1


@pytest.mark.parametrize("noise_shape", [None, (None, 1, 1, None)])
def test_dropout_split_batch_draws_the_global_mask(noise_shape):
    """Two halves of a batch, each told its position, draw exactly the mask
    of the whole batch (and advance the stream as far)."""
    x = np.random.default_rng(0).standard_normal((10, 4, 4, 3)).astype(np.float32)
    whole = layers.Dropout(0.4, noise_shape=noise_shape, seed=9)
    halves = layers.Dropout(0.4, noise_shape=noise_shape, seed=9)
    for _ in range(2):  # the second step checks the stream offsets
        expected = whole.forward(x, training=True)
        got = []
        for start, stop in ((0, 4), (4, 10)):
            offset = halves._offset
            cnnc_random.set_batch_position(start, 10)
            try:
                got.append(halves.forward(x[start:stop], training=True))
            finally:
                cnnc_random.set_batch_position(None)
            if start == 0:
                halves._offset = offset  # both halves start from the same stream position
        np.testing.assert_array_equal(np.concatenate(got), expected)
        assert halves._offset == whole._offset


def test_sync_batch_norm_is_batch_norm_in_one_process():
    x = np.random.default_rng(1).standard_normal((6, 5, 5, 4)).astype(np.float32)
    dy = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    plain, sync = layers.BatchNormalization(), layers.SyncBatchNormalization()
    for layer in (plain, sync):
        layer.build(x.shape)
    np.testing.assert_array_equal(sync.forward(x, training=True), plain.forward(x, training=True))
    np.testing.assert_array_equal(sync.backward(dy), plain.backward(dy))
    np.testing.assert_array_equal(sync.gamma.grad, plain.gamma.grad)
    assert layers.deserialize(layers.serialize(sync)).__class__ is layers.SyncBatchNormalization


def test_sharded_data_refuses_what_it_cannot_split():
    from cnnc.distributed.sharding import ShardedData
    from cnnc.models import data_adapter
    batches = data_adapter.IterableData([(np.zeros((4, 2), np.float32), np.zeros(4))])
    with pytest.raises(TypeError, match="arrays or a cnnc.data.Dataset"):
        ShardedData(batches, 0, 2, training=True)
    arrays = data_adapter.ArrayData([np.zeros((9, 2), np.float32)], None, None, 3, False)
    with pytest.raises(ValueError, match="global batch size 3 is smaller than the number of "
                                         "ranks 4"):
        ShardedData(arrays, 0, 4, training=True)


def test_sharded_arrays_last_batch_stand_in():
    """9 samples, global batch 4, 3 ranks: batches of 4, 4, 1 rows; rank 2
    holds rows 2-3 of the full batches and the only row of the last one,
    rank 0 runs a one-row stand-in there (evaluation: an empty part)."""
    from cnnc.distributed.sharding import ShardedData
    from cnnc.models import data_adapter
    x = np.arange(9, dtype=np.float32).reshape(9, 1)
    for rank, expected in ((0, [[0], [4], [8]]), (2, [[2, 3], [6, 7], [8]])):
        data = ShardedData(data_adapter.ArrayData([x], None, None, 4, False), rank, 3, True)
        seen = []
        for xs, _, _ in data.batches():
            seen.append((xs[0][:, 0].astype(int).tolist(), data.stand_in, data.position.rows))
        assert [s[0] for s in seen] == expected
        assert [s[2] for s in seen] == [4, 4, 1]
        assert [s[1] for s in seen] == [False, False, rank == 0]
    data = ShardedData(data_adapter.ArrayData([x], None, None, 4, False), 0, 3, False)
    assert [xs[0].shape[0] for xs, _, _ in data.batches()] == [1, 1, 0]


def test_strategy_needs_mpi4py_message(monkeypatch):
    from cnnc.distributed import comm
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r"cnnc\[mpi\]"):
        comm.import_mpi()


def test_mpi4py_without_its_mpi_library_message(monkeypatch):
    """mpi4py present but its MPI library missing (a binary mpi4py wheel
    beside Debian's MPICH): the error names the cause and the fixes."""
    mpi4py = pytest.importorskip("mpi4py")
    from cnnc.distributed import comm
    monkeypatch.delattr(mpi4py, "MPI", raising=False)
    monkeypatch.setitem(sys.modules, "mpi4py.MPI", None)
    with pytest.raises(ImportError, match=r"mpi4py is installed but cannot load an MPI library "
                                          r"\(.*\)\. With Debian's or Ubuntu's MPICH, build "
                                          r"mpi4py against it: MPICC=mpicc.mpich"):
        comm.import_mpi()


# -- under mpirun -------------------------------------------------------------------

@pytest.mark.parametrize("options", [
    [],
    ["--norm", "syncbn"],
    ["--dropout"],
    # 1217 = 19 x 64 + 1: the last batch has one row, rank 1 runs a stand-in step
    ["--norm", "syncbn", "--dropout", "--samples", "1217", "--epochs", "2"],
], ids=["plain", "syncbn", "dropout", "syncbn-dropout-uneven"])
def test_two_ranks_match_one_process(tmp_path, options):
    """2 ranks x 32 rows end 20 steps of global batch 64 with the weights,
    logs (training and validation) and evaluation of one process."""
    _mpirun()
    launch(None, "equal", "one.npz", "--single", *options, cwd=tmp_path)
    launch(2, "equal", "two.npz", *options, cwd=tmp_path)
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert int(two["steps"]) == int(one["steps"]) >= 20
    differences = relative_differences(two, one)
    # Summation order drifts with the step count: the bound holds for
    # 20 steps; the 2-epoch case takes 40 (measured up to 1.2e-5 on the
    # scalar path, which has no fused multiply-add).
    bound = 1e-5 if int(one["steps"]) <= 20 else 3e-5
    assert max(differences.values()) <= bound, differences


@pytest.mark.parametrize("arch", ["subclassed", "shared"])
def test_shared_layers_and_subclassed_models_on_two_ranks(tmp_path, arch):
    """A Dense called twice (its gradient summed over the calls before it is
    reduced), in a subclassed model (gradients from the tape) and in a
    functional graph, trains on 2 ranks to the weights of one process."""
    _mpirun()
    launch(None, "equal", "one.npz", "--single", "--arch", arch, cwd=tmp_path)
    launch(2, "equal", "two.npz", "--arch", arch, cwd=tmp_path)
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert int(two["steps"]) == int(one["steps"]) >= 20
    differences = relative_differences(two, one)
    assert max(differences.values()) <= 1e-5, differences


def test_plain_batch_norm_keeps_per_rank_statistics(tmp_path):
    """Plain BatchNormalization normalizes each rank's rows alone: the
    training differs from one process (SyncBatchNormalization does not)."""
    _mpirun()
    launch(None, "equal", "one.npz", "--single", "--norm", "bn", cwd=tmp_path)
    launch(2, "equal", "two.npz", "--norm", "bn", cwd=tmp_path)
    differences = relative_differences(np.load(tmp_path / "two.npz"), np.load(tmp_path / "one.npz"))
    assert max(differences.values()) > 1e-3


@pytest.mark.parametrize("ranks, source", [(2, []), (3, []), (2, ["--dataset"])],
                         ids=["2-ranks-arrays", "3-ranks-arrays", "2-ranks-Dataset"])
def test_every_sample_once_per_epoch(tmp_path, ranks, source):
    """101 samples, global batch 10: every epoch each sample is trained on
    exactly once over all ranks, in the order one process would take them
    (rank parts of each global batch, concatenated), reshuffled each epoch;
    from arrays and from a prefetching cnnc.data.Dataset."""
    _mpirun()
    launch(None, "shards", "one", "--single", "--samples", 101, "--epochs", 3, *source,
           cwd=tmp_path)
    launch(ranks, "shards", "many", "--samples", 101, "--epochs", 3, *source, cwd=tmp_path)
    one = np.load(tmp_path / "one.rank0.npz")
    parts = [np.load(tmp_path / f"many.rank{r}.npz") for r in range(ranks)]
    orders = []
    for epoch in range(3):
        key = f"epoch{epoch}"
        assert np.array_equal(np.sort(np.concatenate([p[key] for p in parts])), np.arange(101))
        rebuilt, taken = [], [0] * ranks
        for first in range(0, 101, 10):
            rows = min(10, 101 - first)
            for r in range(ranks):
                lo, hi = shard_bounds(rows, ranks, r)
                rebuilt.append(parts[r][key][taken[r]:taken[r] + hi - lo])
                taken[r] += hi - lo
        np.testing.assert_array_equal(np.concatenate(rebuilt), one[key])
        orders.append(one[key])
    assert not np.array_equal(orders[0], orders[1])


def test_sync_batch_norm_gradients_are_those_of_the_global_batch(tmp_path):
    """3 ranks hold 3, 3 and 4 rows of a 10-row batch: SyncBatchNormalization's
    outputs, input gradients, gamma/beta gradients (summed over ranks) and
    moving statistics equal batch normalization of the whole batch, computed
    in float64."""
    _mpirun()
    launch(3, "syncbn", "bn", cwd=tmp_path)
    parts = [np.load(tmp_path / f"bn.rank{r}.npz") for r in range(3)]
    # dy: the gradient of the global mean loss
    x, dy, gamma = (parts[0][k].astype(np.float64) for k in ("x", "dy", "gamma"))
    axes = (0, 1, 2)
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    x_hat = (x - mean) / np.sqrt(var + 1e-3)
    count = x.size / x.shape[-1]
    dx = gamma / np.sqrt(var + 1e-3) * (dy - dy.sum(axis=axes) / count
                                        - x_hat * (dy * x_hat).sum(axis=axes) / count)
    np.testing.assert_allclose(np.concatenate([p["y"] for p in parts]), gamma * x_hat,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.concatenate([p["dx"] for p in parts]), dx,
                               rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(sum(p["dgamma"] for p in parts), (dy * x_hat).sum(axis=axes),
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(sum(p["dbeta"] for p in parts), dy.sum(axis=axes),
                               rtol=1e-5, atol=1e-7)
    for p in parts:
        np.testing.assert_allclose(p["moving_mean"], 0.5 * mean, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(p["moving_variance"], 0.5 + 0.5 * var, rtol=1e-6)


def test_checkpoint_and_resume_on_two_ranks(tmp_path):
    """Rank 0 alone writes the checkpoint and the CSV log; every rank
    resumes from the checkpoint and ends where an uninterrupted run ends."""
    _mpirun()
    first = launch(2, "resume", "first.npz", "--phase", "first", "--dir", tmp_path, cwd=tmp_path)
    assert first.stdout.count("Epoch 1/2") == 1  # only rank 0 prints
    launch(2, "resume", "resumed.npz", "--phase", "resume", "--dir", tmp_path, cwd=tmp_path)
    launch(2, "resume", "whole.npz", "--phase", "whole", "--dir", tmp_path, cwd=tmp_path)
    resumed, whole = np.load(tmp_path / "resumed.npz"), np.load(tmp_path / "whole.npz")
    for key in whole.files:
        np.testing.assert_array_equal(resumed[key], whole[key])
    rows = (tmp_path / "log-resume.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,") and [r.split(",")[0] for r in rows[1:]] == ["2", "3"]
    assert not np.array_equal(np.load(tmp_path / "first.npz")["w0"], whole["w0"])


@pytest.mark.parametrize("fault, message", [
    ("raise", "rank 1 of 2: uncaught ValueError: rank 1 failed on purpose"),
    ("kill", None),   # the launcher reports the dead rank in its own words
    ("hang", "did not complete within 5 s"),
    ("diverge", "the weights differ from rank 0's"),
])
def test_a_failing_rank_stops_the_job(tmp_path, fault, message):
    """A rank that raises, dies, hangs or drifts ends the whole job with a
    message, within the launch timeout, instead of leaving the others waiting."""
    _mpirun()
    result = launch(2, "fault", "x", "--fault", fault, "--timeout", 5, cwd=tmp_path,
                    timeout=120, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert output.count("training started") == 2, output
    if message is not None:
        assert message in output, output


@pytest.mark.parametrize("what, message", [
    ("model", "model weights: [['kernel', [4, 7], True]"),
    ("data", "training data samples: 90 on rank 1, 100 on rank 0"),
    ("batch", "training data batch_size: 24 on rank 1, 20 on rank 0"),
])
def test_ranks_that_disagree_are_refused_at_the_start(tmp_path, what, message):
    _mpirun()
    result = launch(2, "mismatch", "x", "--what", what, cwd=tmp_path, timeout=120, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    for rank in (0, 1):
        assert f"rank {rank} refused: cnnc.distributed: the ranks do not run the same" in output
    assert message in output, output


def test_cnnc_train_distributed(tmp_path):
    """``mpirun -np 2 cnnc train --distributed``: rank 0 alone reports and
    writes; the summary records the ranks."""
    import json
    launcher = _mpirun(2)
    rng = np.random.default_rng(0)
    images = lambda n: rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)  # noqa: E731
    np.savez(tmp_path / "digits.npz", x_train=images(250), y_train=rng.integers(0, 10, 250),
             x_test=images(60), y_test=rng.integers(0, 10, 60))
    out = tmp_path / "run"
    result = subprocess.run(
        launcher + [sys.executable, "-m", "cnnc", "train", "--distributed",
                    "--dataset", "npz", "--data", str(tmp_path / "digits.npz"), "--epochs", "2",
                    "--batch-size", "64", "--out", str(out), "--verbose", "2"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=LAUNCH_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("test accuracy") == 1 and result.stdout.count("Epoch 2/2") == 1
    assert "data parallel over 2 ranks" in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ranks"] == 2 and summary["batch_size"] == 64
    assert (out / "model.safetensors").exists() and (out / "history.csv").exists()


# -- launchers ----------------------------------------------------------------------

def test_launcher_variables_and_families():
    from cnnc.distributed.launcher import MPICH, OPEN_MPI, family_of, launched_as
    assert launched_as({}) is None
    assert launched_as({"PMI_RANK": "1"}) is None          # no size: not a launch
    hydra = launched_as({"PMI_RANK": "1", "PMI_SIZE": "4", "MPI_LOCALRANKID": "1",
                         "MPI_LOCALNRANKS": "2"})
    assert (hydra.family, hydra.rank, hydra.size, hydra.local_rank, hydra.local_size) == \
        (MPICH, 1, 4, 1, 2)
    ompi = launched_as({"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2"})
    assert (ompi.family, ompi.size, ompi.local_size) == (OPEN_MPI, 2, None)
    assert family_of("Open MPI v4.1.4, package: Debian OpenMPI") == OPEN_MPI
    assert family_of("mpirun (Open MPI) 5.0.3") == OPEN_MPI
    assert family_of("MPICH Version:\t4.0.2\nMPICH Release date: ...") == MPICH
    assert family_of("HYDRA build details:\n    Version: 4.0.2") == MPICH
    assert family_of("Intel(R) MPI Library 2021.10 for Linux* OS") == MPICH
    assert family_of("MVAPICH2 Version      :\t2.3.7") == MPICH
    assert family_of("Microsoft MPI") is None


def _other_family():
    from cnnc.distributed.launcher import MPICH, OPEN_MPI, mpi4py_family
    _mpirun()
    return MPICH if mpi4py_family() == OPEN_MPI else OPEN_MPI


def test_launcher_variables_of_a_one_rank_job_are_refused(tmp_path):
    """A process whose environment says "rank 0 of 2" (the other MPI
    family's variables, as its launcher sets them) but which MPI runs alone
    refuses to train, naming the cause, before it writes anything."""
    from cnnc.distributed.launcher import OPEN_MPI
    _mpirun()
    variables = {"PMI_RANK": "0", "PMI_SIZE": "2"} if _other_family() != OPEN_MPI else \
        {"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2"}
    env = dict(_env(), **variables)
    result = subprocess.run([sys.executable, WORKER, "equal", "out.npz"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "started 2 processes, but MPI sees a job of 1 rank(s)" in result.stderr, result.stderr
    assert not (tmp_path / "out.npz").exists()


def test_a_launcher_of_another_mpi_is_refused(tmp_path):
    """Where both MPI families are installed (Debian: mpirun.openmpi and
    mpiexec.mpich), starting the job with the launcher of the MPI mpi4py
    does not use stops every process with the fix (worker and cnnc train)
    instead of running two one-rank trainings. Some MPI libraries refuse
    the foreign launcher in MPI_Init already (MPICH 5 under Open MPI's
    PMIx), before cnnc runs: that stops the job too."""
    prefix, extra = _launcher(2, _other_family())
    env = dict(_env(), **extra)
    commands = {"worker": [sys.executable, WORKER, "equal", "out.npz"],
                "cnnc train": [sys.executable, "-m", "cnnc", "train", "--distributed",
                               "--epochs", "1", "--out", str(tmp_path / "run")]}
    for name, command in commands.items():
        result = subprocess.run(prefix + command, cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=120)
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        refused_by_mpi = "MPI_Init" in output
        assert refused_by_mpi or \
            output.count("started 2 processes, but MPI sees a job of 1 rank(s)") == 2, output
        if name == "cnnc train" and not refused_by_mpi:
            assert result.stderr.count("cnnc train: error: cnnc.distributed: the launcher") == 2
    assert not (tmp_path / "out.npz").exists() and not (tmp_path / "run").exists()
