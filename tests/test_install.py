"""The installed package is linkable from C: the example program in
examples/c builds against it with pkg-config and with CMake
(find_package(cnnc CONFIG) -> cnnc::cnnc), runs, and prints the right numbers."""
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cnnc
import cnnc.config

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "examples" / "c"
SOURCE = EXAMPLE_DIR / "activations_demo.c"


def config(*options):
    """Ask `python -m cnnc.config` exactly as a user's build script would."""
    result = subprocess.run([sys.executable, "-m", "cnnc.config", *options], capture_output=True,
                            text=True, check=True, cwd=os.path.expanduser("~"))
    return result.stdout.strip()


def check_output(text):
    rows = {}
    for line in text.splitlines():
        name, *values = line.split()
        if name in ("x", "relu", "sigmoid", "dsigmoid", "tanh", "gelu", "softmax"):
            rows[name] = np.array([float(v) for v in values])
    assert text.startswith(f"cnnc {cnnc.__version__}, isa ")
    x = rows["x"]
    np.testing.assert_allclose(x, [-2, -0.5, 0, 0.5, 2])
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(rows["relu"], np.maximum(x, 0), atol=1e-6)
    np.testing.assert_allclose(rows["sigmoid"], s, atol=1e-6)
    np.testing.assert_allclose(rows["dsigmoid"], s * (1 - s), atol=1e-6)
    np.testing.assert_allclose(rows["tanh"], np.tanh(x), atol=1e-6)
    gelu = [0.5 * v * math.erfc(-v / math.sqrt(2)) for v in x]
    np.testing.assert_allclose(rows["gelu"], gelu, atol=1e-6)
    np.testing.assert_allclose(rows["softmax"], np.exp(x) / np.exp(x).sum(), atol=1e-6)
    assert "relu(n = -1): invalid argument" in text


def run(cmd, **kw):
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_config_paths_exist():
    for option in ("--includedir", "--libdir", "--cmakedir", "--pkgconfigdir"):
        assert Path(config(option)).is_dir(), option
    assert config("--includedir") == cnnc.get_include()
    assert config("--libdir") == cnnc.get_library_dir()
    assert (Path(cnnc.get_include()) / "cnnc.h").is_file()
    assert (Path(cnnc.get_cmake_dir()) / "cnncConfig.cmake").is_file()
    assert (Path(cnnc.get_pkgconfig_dir()) / "cnnc.pc").is_file()
    assert config("--cflags", "--libs") == f"{cnnc.config.cflags()} {cnnc.config.libs()}"
    assert config("--version") == cnnc.__version__
    # One library file: a wheel cannot hold symlinks, so no versioned copies.
    libraries = sorted(p.name for p in Path(cnnc.get_library_dir()).glob("libcnnc*"))
    assert libraries in (["libcnnc.so"], ["libcnnc.dylib"]), libraries


def test_extension_finds_library_through_origin():
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf not installed")
    import cnnc._activation as module
    dynamic = run([readelf, "-d", module.__file__])
    assert "$ORIGIN/lib" in dynamic
    assert "libcnnc.so" in dynamic


def test_example_builds_with_pkg_config(tmp_path):
    if shutil.which("pkg-config") is None or shutil.which("cc") is None:
        pytest.skip("pkg-config or cc not installed")
    env = dict(os.environ, PKG_CONFIG_PATH=config("--pkgconfigdir"))
    flags = run(["pkg-config", "--cflags", "--libs", "cnnc"], env=env).split()
    exe = tmp_path / "demo"
    run(["cc", str(SOURCE), *flags, "-o", str(exe)])
    check_output(run([str(exe)], env={"PATH": os.environ.get("PATH", "")}))


def test_example_builds_with_cmake(tmp_path):
    if shutil.which("cmake") is None or shutil.which("cc") is None:
        pytest.skip("cmake or cc not installed")
    build = tmp_path / "build"
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    run(["cmake", "-S", str(EXAMPLE_DIR), "-B", str(build), *generator,
         f"-DCMAKE_PREFIX_PATH={config('--cmakedir')}"])
    run(["cmake", "--build", str(build)])
    check_output(run([str(build / "activations_demo")], env={"PATH": os.environ.get("PATH", "")}))


def test_library_exports_only_the_public_api():
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm not installed")
    library = Path(cnnc.get_library_dir()) / "libcnnc.so"
    symbols = [line.split()[-1] for line in run([nm, "-D", "--defined-only", str(library)]).splitlines()
               if line.strip()]
    assert symbols and all(name.startswith("cnnc_") for name in symbols), \
        [name for name in symbols if not name.startswith("cnnc_")]
    assert "cnnc_relu_forward" in symbols and "cnnc_error" not in symbols
