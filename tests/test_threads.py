"""Threads: the thread-choice rule, the cap at the CPUs the process may run
on, the thread-count limits, and every kernel family at 1, 2, 3, 7 and 16
threads against independent NumPy references, with the determinism the
README promises. The family tests run with oversubscription allowed (see
conftest.py), so that teams of 7 and 16 split the work that way on any
machine: on a small one that is the oversubscribed case, which must work
too."""
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import pytest

import cnnc
from cnnc import _core, _wait_policy, ops

THREAD_COUNTS = (1, 2, 3, 7, 16)


@pytest.fixture
def restore_threads():
    previous = cnnc.get_num_threads(), cnnc.get_oversubscription(), cnnc.get_deterministic()
    yield
    cnnc.set_num_threads(previous[0])
    cnnc.set_oversubscription(previous[1])
    cnnc.set_deterministic(previous[2])


def _run_child(code, env=None, timeout=300):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                         cwd=tempfile.gettempdir(), env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout


# ---- the thread-choice rule ------------------------------------------------------------

@pytest.mark.parametrize("kind", _core.WORK_KINDS)
@pytest.mark.parametrize("oversubscription", [False, True])
def test_tiny_operation_takes_one_thread_large_one_all(restore_threads, kind, oversubscription):
    cnnc.set_oversubscription(oversubscription)
    grain = cnnc.work_grain(kind)
    assert grain >= 1
    cpus = cnnc.get_usable_cpus()
    for cap in (1, 2, 7, 16):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the once-only warning about CPUs
            cnnc.set_num_threads(cap)
        assert cnnc.get_num_threads() == cap
        limit = cap if oversubscription else min(cap, cpus)
        assert cnnc.get_team_limit() == limit
        assert cnnc.threads_for(kind, 0) == 1
        assert cnnc.threads_for(kind, 1) == 1
        assert cnnc.threads_for(kind, grain - 1) == 1
        assert cnnc.threads_for(kind, 3 * grain) == min(3, limit)
        assert cnnc.threads_for(kind, 3 * grain + grain - 1) == min(3, limit)
        assert cnnc.threads_for(kind, 10**15) == limit
        assert cnnc.threads_for(kind, 2**64) == limit  # beyond int64: clamped, not wrapped


def test_thread_choice_grows_with_work(restore_threads):
    cnnc.set_num_threads(16)
    for kind in _core.WORK_KINDS:
        counts = [cnnc.threads_for(kind, w) for w in np.geomspace(1, 1e12, 60).astype(np.int64).tolist()]
        assert counts == sorted(counts) and counts[0] == 1 and counts[-1] == cnnc.get_team_limit() == 16


def test_usable_cpus_is_the_affinity_mask_within_the_cpu_quota():
    quota = cnnc.get_cpu_quota()
    assert quota >= 0
    cpus = len(os.sched_getaffinity(0))
    assert cnnc.get_usable_cpus() == (min(cpus, quota) if quota else cpus)


def test_cpu_quota_read_from_the_process_cgroup():
    # The same files read independently (the C unit test covers the layouts
    # on fake trees): cgroup v2 cpu.max or v1 cfs quota of the own cgroup.
    expected = 0
    for line in open("/proc/self/cgroup").read().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "" and os.path.exists(f"/sys/fs/cgroup{path}/cpu.max"):
            quota, period = open(f"/sys/fs/cgroup{path}/cpu.max").read().split()
            if quota != "max":
                expected = -(-int(quota) // int(period))
        elif "cpu" in controllers.split(","):
            for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
                base = f"/sys/fs/cgroup/{mount}{path}"
                if os.path.exists(f"{base}/cpu.cfs_quota_us"):
                    quota = int(open(f"{base}/cpu.cfs_quota_us").read())
                    period = int(open(f"{base}/cpu.cfs_period_us").read())
                    if quota > 0:
                        expected = -(-quota // period)
                    break
    if expected == 0 or cnnc.get_cpu_quota() == 0:
        # Ancestors and namespaced mounts can hold a quota this simple
        # reading misses; a quota it finds must be found by cnnc too.
        assert expected == 0 or cnnc.get_cpu_quota() > 0
    else:
        assert cnnc.get_cpu_quota() <= expected


def test_teams_capped_at_the_cpus_of_the_process():
    # A child process limited to one CPU (as taskset does) gets one thread
    # per operation whatever the cap, warns once about it, and still
    # computes correctly; a mask widened while it runs is followed.
    code = ("import os, time, warnings, numpy as np, cnnc\n"
            "cpus = sorted(os.sched_getaffinity(0))\n"
            "os.sched_setaffinity(0, cpus[:1])\n"
            "time.sleep(0.15)\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    cnnc.set_num_threads(8)\n"
            "    cnnc.set_num_threads(9)\n"
            "assert [str(w.message) for w in caught if 'CPUs' in str(w.message)] == [\n"
            "    '8 threads asked for, but this process may run on 1 CPUs: each operation takes at most 1 threads'\n"
            "    ' (cnnc.get_usable_cpus(); warned once)'], [str(w.message) for w in caught]\n"
            "assert cnnc.get_num_threads() == 9 and cnnc.get_usable_cpus() == 1\n"
            "assert cnnc.get_team_limit() == 1 and cnnc.threads_for('gemm', 10**12) == 1\n"
            "a = np.random.default_rng(0).random((512, 512), dtype=np.float32)\n"
            "assert np.allclose(cnnc.ops.matmul(a, a), a.astype(np.float64) @ a, rtol=1e-4)\n"
            "os.sched_setaffinity(0, cpus)\n"
            "time.sleep(0.15)\n"
            "print(cnnc.get_usable_cpus(), cnnc.get_team_limit())\n")
    env = {k: v for k, v in os.environ.items() if k != "OMP_PROC_BIND"}
    cpus, limit = map(int, _run_child(code, env).split())
    assert cpus == len(os.sched_getaffinity(0)) and limit == min(9, cpus)


def test_thread_choice_rejects_bad_queries():
    with pytest.raises(ValueError, match="kind"):
        cnnc.threads_for("fft", 10)
    with pytest.raises(ValueError, match="work"):
        cnnc.threads_for("gemm", -1)


# ---- thread-count limits ---------------------------------------------------------------

def test_thread_count_limits(restore_threads):
    limit = cnnc.get_thread_limit()
    assert limit >= 64 or limit >= 8 * os.cpu_count() or limit >= 1
    for bad in (0, -1, -2**40):
        with pytest.raises(ValueError, match="threads"):
            cnnc.set_num_threads(bad)
    for huge in (limit + 1, 10**6, 2**70):
        with pytest.warns(RuntimeWarning, match="limit"):
            cnnc.set_num_threads(huge)
        assert cnnc.get_num_threads() == limit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cnnc.set_num_threads(limit)


def test_huge_thread_count_then_large_matmul_runs(rng):
    # In a child process: a libgomp failure would end the process. Teams of
    # the whole count are allowed, so that the limit is what keeps it safe.
    code = ("import warnings, numpy as np, cnnc\n"
            "warnings.simplefilter('ignore')\n"
            "cnnc.set_oversubscription(True)\n"
            "cnnc.set_num_threads(10**6)\n"
            "a = np.ones((1024, 1024), np.float32)\n"
            "print(cnnc.get_num_threads(), float(cnnc.ops.matmul(a, a)[5, 7]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=tempfile.gettempdir())
    assert out.returncode == 0, out.stderr
    threads, value = out.stdout.split()
    assert int(threads) == cnnc.get_thread_limit() and float(value) == 1024.0


def test_omp_num_threads_above_limit_is_capped():
    code = "import cnnc; print(cnnc.get_num_threads(), cnnc.get_thread_limit())"
    env = dict(os.environ, OMP_NUM_THREADS="100000")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         cwd=tempfile.gettempdir())
    assert out.returncode == 0, out.stderr
    threads, limit = map(int, out.stdout.split())
    assert threads == limit


# ---- wait policy ---------------------------------------------------------------------------

def test_wait_policy_set_for_loading_only(monkeypatch):
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    seen = _wait_policy.load_with_policy(lambda: os.environ.get("GOMP_SPINCOUNT"))
    assert seen == _wait_policy.SPIN_COUNT
    assert "GOMP_SPINCOUNT" not in os.environ


@pytest.mark.parametrize("name, value", [("OMP_WAIT_POLICY", "active"), ("GOMP_SPINCOUNT", "infinite")])
def test_wait_policy_leaves_user_choice(monkeypatch, name, value):
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv(name, value)
    seen = _wait_policy.load_with_policy(lambda: (os.environ.get("GOMP_SPINCOUNT"),
                                                  os.environ.get("OMP_WAIT_POLICY")))
    assert seen == ((value, None) if name == "GOMP_SPINCOUNT" else (None, value))
    assert os.environ[name] == value


def test_import_leaves_environment_as_the_user_set_it():
    code = "import os, cnnc; print(os.environ.get('GOMP_SPINCOUNT'))"
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         cwd=tempfile.gettempdir())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None"


_OPENBLAS_TIMEOUT_PROBE = """
import ctypes, re
def timeout():
    maps = open("/proc/self/maps").read()
    paths = sorted(set(re.findall(r"(/\\S*openblas\\S*\\.so\\S*)", maps)))
    for path in paths:
        lib = ctypes.CDLL(path)
        if hasattr(lib, "openblas_thread_timeout"):
            return lib.openblas_thread_timeout()
    return "none"
"""


@pytest.mark.parametrize("order, env, expected", [
    ("import cnnc, numpy", {}, int(_wait_policy.OPENBLAS_TIMEOUT)),
    ("import numpy, cnnc", {}, int(_wait_policy.OPENBLAS_TIMEOUT)),  # NumPy first: set once loaded
    ("import cnnc, numpy", {"OPENBLAS_THREAD_TIMEOUT": "20"}, 20),
    ("import numpy, cnnc", {"OPENBLAS_THREAD_TIMEOUT": "28"}, 28),  # the user's wait stays
    # Another Python thread might be inside OpenBLAS: its pool is left alone.
    ("import numpy, threading, time\n"
     "t = threading.Thread(target=time.sleep, args=(1,)); t.start()\nimport cnnc", {}, 0),
])
def test_openblas_loaded_with_bounded_wait(order, env, expected):
    code = (_OPENBLAS_TIMEOUT_PROBE + order + "\nimport os\n"
            "print(timeout(), os.environ.get('OPENBLAS_THREAD_TIMEOUT'))\n")
    base = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT")}
    value, left = _run_child(code, dict(base, **env)).split()
    if value == "none":
        pytest.skip("NumPy's BLAS is not an OpenBLAS that reports its thread timeout")
    assert int(value) == expected
    assert left == env.get("OPENBLAS_THREAD_TIMEOUT", "None")  # the environment as the user set it


def test_openblas_loaded_first_keeps_results_and_stops_spinning():
    # NumPy imported and used first: after import cnnc, OpenBLAS's workers
    # are new ones (restarted by OpenBLAS with the bounded wait), take no
    # CPU once a call has ended, and NumPy's results are the same bits.
    code = _OPENBLAS_TIMEOUT_PROBE + """
import os, time, numpy as np
def workers():
    return set(os.listdir('/proc/self/task')) - {str(os.getpid())}
def cpu_ns(tids):
    total = 0
    for t in tids:
        try:
            total += int(open(f'/proc/self/task/{t}/schedstat').read().split()[0])
        except OSError:
            pass
    return total
rng = np.random.default_rng(3)
a64 = rng.standard_normal((400, 400)); a32 = a64.astype(np.float32)
def results():
    return [a32 @ a32, a64 @ a64.T, np.linalg.inv(a64), np.linalg.qr(a64)[1], np.linalg.solve(a64, a64[:, :7])]
before = results()
old = workers()
import cnnc
if timeout() == "none" or not old:
    print("skip"); raise SystemExit
assert timeout() == int(cnnc._wait_policy.OPENBLAS_TIMEOUT)
after = [results() for _ in range(3)]
assert all(np.array_equal(m, b) for run in after for m, b in zip(run, before)), "results changed"
new = workers()
assert (new - old) and (old - new), (old, new)  # OpenBLAS's workers were restarted
for _ in range(3):
    a64 @ a64
    time.sleep(0.05)                   # 2**16 cycles are long over
    start = cpu_ns(new)
    time.sleep(0.3)
    assert cpu_ns(new) == start, "OpenBLAS workers spun after the call"
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT",
                                                            "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    out = _run_child(code, env).strip()
    if out == "skip":
        pytest.skip("NumPy's BLAS is not a threaded OpenBLAS that reports its wait")
    assert out == "ok"


# ---- every kernel family at several thread counts ---------------------------------------

def _windows(x, kh, kw, stride, pad):
    """(N, OH, OW, KH, KW, C) patches of x (N, H, W, C), float64."""
    x = np.pad(x.astype(np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))
    win = win[:, ::stride, ::stride]  # (N, OH, OW, C, KH, KW)
    return win.transpose(0, 1, 2, 4, 5, 3)


def ref_conv(x, w, b, stride, pad, groups):
    kh, kw, cin_g, cout = w.shape
    p = _windows(x, kh, kw, stride, pad)
    cout_g = cout // groups
    outs = []
    for g in range(groups):
        pg = p[..., g * cin_g:(g + 1) * cin_g]
        wg = w[..., g * cout_g:(g + 1) * cout_g].astype(np.float64)
        outs.append(np.tensordot(pg, wg, axes=([3, 4, 5], [0, 1, 2])))
    return np.concatenate(outs, axis=-1) + b


def ref_conv_backward(x, w, dy, stride, pad, groups):
    """(dx, dw) in float64 through the adjoint of the windows."""
    kh, kw, cin_g, cout = w.shape
    n, h, wd, cin = x.shape
    cout_g = cout // groups
    p = _windows(x, kh, kw, stride, pad)
    dy = dy.astype(np.float64)
    dw = np.zeros(w.shape)
    dxp = np.zeros((n, h + 2 * pad, wd + 2 * pad, cin))
    oh, ow = dy.shape[1:3]
    for g in range(groups):
        ci, co = slice(g * cin_g, (g + 1) * cin_g), slice(g * cout_g, (g + 1) * cout_g)
        dw[..., co] = np.tensordot(p[..., ci], dy[..., co], axes=([0, 1, 2], [0, 1, 2]))
        dpatch = np.tensordot(dy[..., co], w[..., co].astype(np.float64), axes=([3], [3]))
        for i in range(kh):
            for j in range(kw):
                dxp[:, i:i + stride * oh:stride, j:j + stride * ow:stride, ci] += dpatch[:, :, :, i, j]
    return dxp[:, pad:pad + h, pad:pad + wd], dw


def _close(actual, expected, rtol=2e-4):
    expected = np.asarray(expected, np.float64)
    scale = max(float(np.abs(expected).max()), 1e-30)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def family_gemm(rng):
    a = rng.standard_normal((320, 384)).astype(np.float32)
    b = rng.standard_normal((384, 336)).astype(np.float32)
    c = rng.standard_normal((320, 336)).astype(np.float32)

    def run():
        return [ops.matmul(a, b), ops.matmul(a, b.T.copy(), trans_b=True),
                ops.matmul(a.T.copy(), b, trans_a=True, out=c.copy(), beta=0.5)]

    ref = a.astype(np.float64) @ b
    return run, lambda out: (_close(out[0], ref), _close(out[1], ref), _close(out[2], ref + 0.5 * c))


def _conv_family(rng, n, hw, cin, cout, k, stride, groups, env_winograd=None):
    pad = k // 2
    x = rng.standard_normal((n, hw, hw, cin)).astype(np.float32)
    w = (rng.standard_normal((k, k, cin // groups, cout)) / np.sqrt(k * k * cin / groups)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    y_ref = ref_conv(x, w, b, stride, pad, groups)
    dy = rng.standard_normal(y_ref.shape).astype(np.float32)
    dx_ref, dw_ref = ref_conv_backward(x, w, dy, stride, pad, groups)
    padding = "same" if stride == 1 else ((pad, pad), (pad, pad))

    def run():
        y = ops.conv2d(x, w, b, strides=stride, padding=padding, groups=groups)
        grads = ops.conv2d_backward(x, w, dy, strides=stride, padding=padding, groups=groups)
        return [y, *grads, ops.bias_add_backward(dy)]

    def check(out):
        db_ref = dy.astype(np.float64).sum(axis=(0, 1, 2))
        _close(out[0], y_ref, 5e-4)
        _close(out[1], dx_ref, 5e-4)
        _close(out[2], dw_ref, 5e-4)
        _close(out[3], db_ref)
        _close(out[4], db_ref)
    return run, check


def family_conv_3x3(rng):  # Winograd where it applies
    return _conv_family(rng, 8, 24, 32, 64, 3, 1, 1)


def family_conv_strided(rng):  # im2col / implicit GEMM
    return _conv_family(rng, 8, 33, 24, 48, 3, 2, 1)


def family_conv_1x1(rng):
    return _conv_family(rng, 16, 20, 64, 96, 1, 1, 1)


def family_conv_grouped(rng):
    return _conv_family(rng, 8, 20, 32, 64, 3, 1, 4)


def family_depthwise(rng):
    return _conv_family(rng, 16, 32, 64, 64, 3, 1, 64)


def family_pool(rng):
    x = rng.standard_normal((32, 40, 40, 16)).astype(np.float32)
    dy = rng.standard_normal((32, 20, 20, 16)).astype(np.float32)
    blocks = x.reshape(32, 20, 2, 20, 2, 16)

    def run():
        return [ops.max_pool2d(x), ops.max_pool2d_backward(x, dy), ops.avg_pool2d(x),
                ops.avg_pool2d_backward(dy, x.shape), ops.global_avg_pool2d(x)]

    def check(out):
        np.testing.assert_array_equal(out[0], blocks.max(axis=(2, 4)))
        is_max = blocks == blocks.max(axis=(2, 4), keepdims=True)
        np.testing.assert_array_equal(out[1].reshape(blocks.shape), is_max * dy[:, :, None, :, None])
        _close(out[2], blocks.astype(np.float64).mean(axis=(2, 4)), 1e-6)
        _close(out[3].reshape(blocks.shape), np.broadcast_to(dy[:, :, None, :, None] / 4, blocks.shape), 1e-6)
        _close(out[4], x.astype(np.float64).mean(axis=(1, 2)), 1e-5)
    return run, check


def family_norm(rng):
    x = (rng.standard_normal((64, 16, 16, 32)) * 3 + 1).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    gamma = rng.standard_normal(32).astype(np.float32)
    beta = rng.standard_normal(32).astype(np.float32)
    x64 = x.astype(np.float64).reshape(-1, 32)
    mean = x64.mean(axis=0)
    inv = 1 / np.sqrt(x64.var(axis=0) + 1e-3)
    xhat = (x64 - mean) * inv
    d = dy.astype(np.float64).reshape(-1, 32)
    dgamma, dbeta = (d * xhat).sum(axis=0), d.sum(axis=0)
    dx = gamma * inv * (d - dbeta / len(d) - xhat * dgamma / len(d))

    def run():
        y, m, s = ops.batch_norm_train(x, gamma, beta, None, None)
        return [y, m, s, *ops.batch_norm_backward(x, dy, gamma, m, s)]

    def check(out):
        _close(out[0].reshape(-1, 32), xhat * gamma + beta, 1e-4)
        _close(out[1], mean, 1e-5)
        _close(out[2], inv, 1e-5)
        _close(out[3].reshape(-1, 32), dx, 1e-3)
        _close(out[4], dgamma, 1e-4)
        _close(out[5], dbeta, 1e-4)
    return run, check


def family_activation(rng):
    x = rng.standard_normal((1 << 20) + 77).astype(np.float32)
    dy = rng.standard_normal(x.size).astype(np.float32)
    logits = rng.standard_normal((4096, 300)).astype(np.float32)
    x64 = x.astype(np.float64)

    def run():
        return [ops.relu(x), ops.relu_backward(x, dy), ops.sigmoid(x), ops.tanh_backward(x, dy),
                ops.softmax(logits)]

    def check(out):
        np.testing.assert_array_equal(out[0], np.maximum(x, 0))
        np.testing.assert_array_equal(out[1], np.where(x > 0, dy, 0))
        _close(out[2], 1 / (1 + np.exp(-x64)), 1e-6)
        _close(out[3], dy * (1 - np.tanh(x64) ** 2), 1e-5)
        e = np.exp(logits - logits.max(axis=1, keepdims=True)).astype(np.float64)
        _close(out[4], e / e.sum(axis=1, keepdims=True), 1e-5)
    return run, check


def family_elementwise(rng):
    a = rng.standard_normal((256, 33, 33, 8)).astype(np.float32)
    b = rng.standard_normal(a.shape).astype(np.float32)
    bias = rng.standard_normal(8).astype(np.float32)
    c = rng.standard_normal((256, 33, 33, 5)).astype(np.float32)

    def run():
        return [ops.add(a, b), ops.multiply(a, b), ops.bias_add(a, bias), ops.bias_add_backward(a),
                ops.concatenate([a, c], axis=-1), ops.dropout(a, 0.25, seed=7)[1]]

    def check(out):
        np.testing.assert_array_equal(out[0], a + b)
        np.testing.assert_array_equal(out[1], a * b)
        np.testing.assert_array_equal(out[2], a + bias)
        _close(out[3], a.astype(np.float64).sum(axis=(0, 1, 2)), 1e-5)
        np.testing.assert_array_equal(out[4], np.concatenate([a, c], axis=-1))
        assert abs(out[5].mean() - 0.75) < 3e-3
    return run, check


def family_loss(rng):
    logits = rng.standard_normal((20000, 10)).astype(np.float32) * 3
    labels = rng.integers(0, 10, 20000)
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    onehot = np.eye(10)[labels]

    def run():
        return list(ops.softmax_cross_entropy(logits, labels, grad_scale=1 / 20000))

    def check(out):
        _close(out[0], -(logp * onehot).sum(axis=1), 1e-5)
        _close(out[1], (np.exp(logp) - onehot) / 20000, 1e-5)
    return run, check


def family_optim(rng):
    p0 = rng.standard_normal(3_000_001).astype(np.float32)
    g = rng.standard_normal(p0.size).astype(np.float32)
    m0 = rng.standard_normal(p0.size).astype(np.float32) * 0.1
    v0 = rng.random(p0.size).astype(np.float32)
    m_ref = 0.9 * m0 + 0.1 * g.astype(np.float64)
    v_ref = 0.999 * v0 + 0.001 * g.astype(np.float64) ** 2
    step_size = 1e-3 * np.sqrt(1 - 0.999 ** 3) / (1 - 0.9 ** 3)
    p_ref = p0 - step_size * m_ref / (np.sqrt(v_ref) + 1e-7)

    def run():
        p, m, v = p0.copy(), m0.copy(), v0.copy()
        ops.adam_update(p, g, m, v, 3, 1e-3)
        return [p, m, v, np.float64(ops.sum_squares(g)), np.float64(ops.global_norm_sq([g, m0]))]

    def check(out):
        _close(out[0], p_ref, 1e-6)
        _close(out[1], m_ref, 1e-6)
        _close(out[2], v_ref, 1e-6)
        _close(out[3], (g.astype(np.float64) ** 2).sum(), 1e-6)
        _close(out[4], (g.astype(np.float64) ** 2).sum() + (m0.astype(np.float64) ** 2).sum(), 1e-6)
    return run, check


def family_augment(rng):
    x = rng.standard_normal((64, 32, 32, 3)).astype(np.float32)

    def run():
        return [ops.random_flip(x, seed=11), ops.random_crop(x, 24, 24, padding=2, seed=5)]

    def check(out):
        flipped = out[0]
        same = (flipped == x).all(axis=(1, 2, 3))
        mirrored = (flipped == x[:, :, ::-1]).all(axis=(1, 2, 3))
        assert (same | mirrored).all() and same.any() and mirrored.any()
        padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)))
        for i in range(len(x)):  # each crop is a window of the padded image
            windows = np.lib.stride_tricks.sliding_window_view(padded[i], (24, 24), axis=(0, 1))
            assert (windows == out[1][i].transpose(2, 0, 1)).all(axis=(2, 3, 4)).any()
    return run, check


FAMILIES = {name[len("family_"):]: f for name, f in sorted(globals().items()) if name.startswith("family_")}


# Outputs whose bits may depend on the thread count unless deterministic
# mode is on (README, "Threads"): the weight and bias gradients of
# convolutions reduce over pixels split by thread, and strided convolutions
# pick their data-gradient algorithm by team size.
TEAM_DEPENDENT = {("conv_1x1", 2), ("conv_1x1", 3), ("conv_3x3", 2), ("conv_3x3", 3), ("conv_grouped", 2),
                  ("conv_grouped", 3), ("conv_strided", 1), ("conv_strided", 2), ("conv_strided", 3),
                  ("depthwise", 2), ("depthwise", 3)}


@pytest.mark.parametrize("deterministic", [False, True], ids=["default", "deterministic"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_kernel_family_at_many_thread_counts(restore_threads, family, deterministic):
    cnnc.set_deterministic(deterministic)
    run, check = FAMILIES[family](np.random.default_rng(2024))
    results = {}
    for threads in THREAD_COUNTS:
        cnnc.set_num_threads(threads)
        results[threads] = run()
        check(results[threads])
        # Run to run, at a fixed thread count: always the same bits.
        for index, (again, first) in enumerate(zip(run(), results[threads])):
            np.testing.assert_array_equal(again, first, err_msg=f"{family}[{index}] at {threads} threads")
    for threads in THREAD_COUNTS[1:]:
        for index, (got, first) in enumerate(zip(results[threads], results[1])):
            if deterministic or (family, index) not in TEAM_DEPENDENT:
                np.testing.assert_array_equal(got, first, err_msg=f"{family}[{index}]: {threads} threads vs 1")


def test_default_mode_differs_across_thread_counts_where_documented(restore_threads):
    # The exception the default mode documents is real (so the deterministic
    # test above tests something): the weight gradient's partial sums differ
    # in their last bits between 1 and 3 threads.
    cnnc.set_deterministic(False)
    run, _ = family_conv_strided(np.random.default_rng(2024))
    cnnc.set_num_threads(1)
    one = run()
    cnnc.set_num_threads(3)
    three = run()
    assert not np.array_equal(one[2], three[2])


def _small_cnn_weights(seed=7):
    """The weights after three Adam steps of a small CNN (convolutions with
    and without stride, depthwise, batch norm, dense) on a fixed batch."""
    from cnnc import layers, models
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((16, 20, 20, 3)).astype(np.float32)
    y = rng.integers(0, 5, 16)
    cnnc.random.set_seed(3)
    model = models.Sequential([
        layers.Input((20, 20, 3)),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.Conv2D(32, 3, strides=2, padding="same"),
        layers.BatchNormalization(),
        layers.DepthwiseConv2D(3, padding="same", activation="relu"),
        layers.Conv2D(16, 1),
        layers.GlobalAveragePooling2D(),
        layers.Dense(5),
    ])
    model.compile(optimizer="adam", loss=cnnc.losses.SparseCategoricalCrossentropy(from_logits=True))
    for _ in range(3):
        model.train_on_batch(x, y)
    return model.get_weights()


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_deterministic_training_steps_equal_across_thread_counts(restore_threads, threads):
    # The same weights bit for bit at 1 and at `threads` threads.
    cnnc.set_deterministic(True)
    cnnc.set_num_threads(1)
    one = _small_cnn_weights()
    cnnc.set_num_threads(threads)
    for a, b in zip(one, _small_cnn_weights()):
        np.testing.assert_array_equal(a, b)


# ---- busy cores: fewer threads run, the same partition --------------------------------

@pytest.fixture
def restore_running():
    previous = cnnc.get_num_threads(), cnnc.get_deterministic(), cnnc.get_adaptive_team()
    yield
    cnnc.set_running_limit(0)
    cnnc.set_num_threads(previous[0])
    cnnc.set_deterministic(previous[1])
    cnnc.set_adaptive_team(previous[2])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_threads_running_never_change_the_bits(restore_running, family):
    # Default mode, a team limit of 7 (oversubscription is allowed in these
    # tests): run on 1, 2 or 3 threads, as under load, every output is the
    # same bits as on the whole team, the team-dependent sums included,
    # which do change with set_num_threads (test above).
    cnnc.set_deterministic(False)
    cnnc.set_num_threads(7)
    run, check = FAMILIES[family](np.random.default_rng(2024))
    whole = run()
    check(whole)
    for running in (1, 2, 3):
        cnnc.set_running_limit(running)
        assert cnnc.get_running_limit() == running
        for index, (got, first) in enumerate(zip(run(), whole)):
            np.testing.assert_array_equal(got, first, err_msg=f"{family}[{index}] on {running} of 7 threads")
    cnnc.set_running_limit(0)
    assert cnnc.get_running_limit() == 7


def test_training_steps_equal_whatever_threads_run(restore_running):
    # The run-to-run guarantee of the default mode under a changing load: the
    # same weights bit for bit whether the team of 3 runs on 3 threads or on 1.
    cnnc.set_deterministic(False)
    cnnc.set_num_threads(3)
    whole = _small_cnn_weights(11)
    cnnc.set_running_limit(1)
    for a, b in zip(whole, _small_cnn_weights(11)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("team, cpus, shares, expected", [
    (2, 2, [], 2),                       # nothing ran: the whole team
    (4, 4, [0.0, 0.001, 0.0, 0.02], 4),  # idle cores, a few microseconds of waiting
    (2, 2, [0.0, 0.5], 1),               # 1 busy neighbour on 2 cores shares a thread's core
    (2, 2, [0.6, 0.6], 1),               # 3 neighbours on 2 cores
    (16, 16, [0.2] * 16, 12),            # 4 other tasks spread over 16 cores
    (16, 16, [0.5] * 4 + [0.0] * 12, 12),  # ... or sitting on 4 of them
    (3, 8, [0.0, 0.5], 3),               # never more than the team
    (16, 16, [1.0, -0.5, float("nan")], 7),  # a thread counts for 9 tasks at most; bad shares ignored
])
def test_threads_under_contention_rule(team, cpus, shares, expected):
    assert cnnc.threads_under_contention(team, cpus, shares) == expected


def test_running_limit_setting(restore_running):
    cnnc.set_num_threads(2)
    team = cnnc.get_team_limit()
    assert 1 <= cnnc.get_running_limit() <= team
    with pytest.raises(ValueError, match="running thread limit"):
        cnnc.set_running_limit(-1)
    with pytest.raises(TypeError):
        cnnc.set_running_limit(1.5)
    cnnc.set_running_limit(1)
    assert cnnc.get_running_limit() == 1
    assert cnnc.threads_for("gemm", 10**15) == team  # the partition stays the team's
    cnnc.set_running_limit(100)
    assert cnnc.get_running_limit() == team
    cnnc.set_running_limit(0)
    cnnc.set_adaptive_team(False)
    assert cnnc.get_adaptive_team() is False
    assert cnnc.get_running_limit() == team


def test_adaptive_team_samples_its_threads(restore_running, rng):
    # With oversubscription off the monitor reads the threads' schedstat while
    # kernels run (at most every 50 ms); whatever the load, the threads it
    # lets run stay within the team and the results stay those of the team.
    cnnc.set_oversubscription(False)
    try:
        cnnc.set_num_threads(2)
        cnnc.set_adaptive_team(True)
        a = rng.standard_normal((256, 256)).astype(np.float32)
        first = ops.matmul(a, a)
        for _ in range(400):
            np.testing.assert_array_equal(ops.matmul(a, a), first)
            assert 1 <= cnnc.get_running_limit() <= cnnc.get_team_limit()
    finally:
        cnnc.set_oversubscription(True)


def test_adaptive_team_switched_off_from_the_environment():
    code = "import cnnc; print(cnnc.get_adaptive_team(), cnnc.get_running_limit() == cnnc.get_team_limit())"
    env = dict(os.environ, CNNC_ADAPTIVE_TEAM="0")
    assert _run_child(code, env).split() == ["False", "True"]
    env.pop("CNNC_ADAPTIVE_TEAM")
    on_linux = sys.platform.startswith("linux")
    assert _run_child(code, env).split()[0] == str(on_linux)


def test_deterministic_setting_round_trips(restore_threads):
    for value in (True, False, True):
        cnnc.set_deterministic(value)
        assert cnnc.get_deterministic() is value


def test_deterministic_winograd_weight_gradient_with_split_planes(restore_threads, monkeypatch):
    # 256 -> 256 channels: 16 partial dU would pass the partial-sum budget,
    # so the threads split dU's planes instead; in deterministic mode that
    # choice, like the parts, is the same at every thread count.
    monkeypatch.setenv("CNNC_WINOGRAD", "1")
    cnnc.set_deterministic(True)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((8, 16, 16, 256)).astype(np.float32)
    w = (rng.standard_normal((3, 3, 256, 256)) / 48).astype(np.float32)
    dy = rng.standard_normal((8, 16, 16, 256)).astype(np.float32)
    results = []
    for threads in (1, 2, 3, 7):
        cnnc.set_num_threads(threads)
        results.append(ops.conv2d_backward(x, w, dy, padding="same", need_dx=False)[1])
    _, dw_ref = ref_conv_backward(x[:2], w, dy[:2], 1, 1, 1)
    _, dw_rest = ref_conv_backward(x[2:], w, dy[2:], 1, 1, 1)
    _close(results[0], dw_ref + dw_rest, 5e-4)
    for got in results[1:]:
        np.testing.assert_array_equal(got, results[0])
