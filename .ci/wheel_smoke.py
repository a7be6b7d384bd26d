"""Smoke test of an installed binary wheel, run where no C compiler is on the PATH.

Checks that the package imports from the wheel (not a source tree), that the
extension modules load the wheel's libcnnc and the wheel's renamed copy of
libgomp (never the system's libgomp.so.1), that a small CNN trains (the loss
falls), that a saved model loads back with identical predictions, that
`cnnc info` and `cnnc config` run, and that the paths `cnnc.config` reports
exist.

    python .ci/wheel_smoke.py     # from any directory but the repository root
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

import cnnc
from cnnc import layers, optimizers
from cnnc.models import Sequential, load_model


def check(condition, message):
    if not condition:
        sys.exit(f"wheel smoke test: {message}")


def loaded_libraries():
    """Paths of the shared objects mapped into this process."""
    with open("/proc/self/maps") as maps:
        return {line.split()[-1] for line in maps if ".so" in line}


def check_installed_layout():
    package_dir = os.path.dirname(os.path.abspath(cnnc.__file__))
    check("site-packages" in package_dir, f"cnnc imported from {package_dir}, not an installed wheel")
    check(shutil.which("cc") is None and shutil.which("gcc") is None,
          "a C compiler is on the PATH: the test must show the wheel needs none")
    libs_dir = os.path.join(os.path.dirname(package_dir), "cnnc.libs")
    bundled = sorted(os.listdir(libs_dir)) if os.path.isdir(libs_dir) else []
    check(any(name.startswith("libgomp-") for name in bundled),
          f"no renamed libgomp in {libs_dir}: {bundled}")
    mapped = loaded_libraries()
    gomp = [path for path in mapped if "libgomp" in os.path.basename(path)]
    check(len(gomp) == 1 and os.path.dirname(os.path.realpath(gomp[0])) == os.path.realpath(libs_dir),
          f"libgomp loaded from {gomp}, expected the wheel's copy in {libs_dir}")
    cnnc_lib = [path for path in mapped if os.path.basename(path) == "libcnnc.so"]
    check(len(cnnc_lib) == 1 and os.path.realpath(cnnc_lib[0]).startswith(os.path.realpath(package_dir)),
          f"libcnnc loaded from {cnnc_lib}, expected the wheel's copy")
    for getter, marker in ((cnnc.get_include, "cnnc.h"), (cnnc.get_library_dir, "libcnnc.so"),
                           (cnnc.get_cmake_dir, "cnncConfig.cmake"),
                           (cnnc.get_pkgconfig_dir, "cnnc.pc")):
        check(os.path.isfile(os.path.join(getter(), marker)), f"{getter.__name__}(): no {marker}")
    print(f"cnnc {cnnc.__version__} from {package_dir}; libgomp: {gomp[0]}")


def check_training_and_files():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 12, 12, 1)).astype(np.float32)
    labels = (x[:, :6].mean(axis=(1, 2, 3)) > x[:, 6:].mean(axis=(1, 2, 3))).astype(int)
    y = np.eye(2, dtype=np.float32)[labels]
    cnnc.utils.set_random_seed(1)
    model = Sequential([
        layers.Input((12, 12, 1)),
        layers.Conv2D(4, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizers.Adam(0.01), "categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    losses = history.history["loss"]
    check(all(np.isfinite(losses)) and losses[-1] < 0.8 * losses[0], f"loss did not fall: {losses}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.safetensors")
        model.save(path)
        loaded = load_model(path)
        np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    print(f"trained: loss {losses[0]:.3f} -> {losses[-1]:.3f}; save/load predictions identical")


def check_command_line():
    info = subprocess.run(["cnnc", "info"], capture_output=True, text=True, check=True).stdout
    check(cnnc.__version__ in info, f"`cnnc info` does not show the version:\n{info}")
    config = subprocess.run([sys.executable, "-m", "cnnc.config", "--cflags", "--libs"],
                            capture_output=True, text=True, check=True).stdout
    check(cnnc.get_include() in config, f"`python -m cnnc.config` gives {config!r}")
    # The README runs `cnnc config` from the checkout's root, where the source
    # cnnc/ would shadow the installed package for `python -m cnnc.config`.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    command = subprocess.run(["cnnc", "config", "--cflags", "--libs"], capture_output=True,
                             text=True, check=True, cwd=root).stdout
    check(command == config, f"`cnnc config` gives {command!r}, python -m cnnc.config {config!r}")
    print(info.strip())


if __name__ == "__main__":
    check_installed_layout()
    check_training_and_files()
    check_command_line()
    print("wheel smoke test passed")
