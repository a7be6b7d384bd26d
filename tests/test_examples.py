"""Every example runs (with --quick, on small slices) and says what it did."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")

CASES = {
    "fashion_mnist_cnn.py": "test accuracy",
    "lenet5.py": "LeNet-5 test accuracy",
    "fashion_resnet.py": "test accuracy",
    "edge_filter.py": "edges.png",
    "feature_maps.py": "conv2d_1_maps.png",
    "transfer_learning.py": "frozen pretrained base + new head",
    "conv1d_sequences.py": "test accuracy",
    "segmentation_toy.py": "IoU",
    "spatial_transformer.py": "distorted images",
}


def test_every_example_is_covered():
    assert sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".py")) == sorted(CASES)


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_runs(script, tmp_path):
    # (a script's own directory, examples/, is what Python puts first on the
    # path: the installed cnnc is imported, on every Python the README names)
    args = [sys.executable, os.path.join(EXAMPLES, script), "--quick"]
    if script in ("fashion_mnist_cnn.py", "fashion_resnet.py", "edge_filter.py", "feature_maps.py",
                  "segmentation_toy.py", "spatial_transformer.py"):
        args += ["--out", str(tmp_path)]
    env = dict(os.environ, OMP_NUM_THREADS="2")
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert CASES[script] in result.stdout, result.stdout[-3000:]
    for line in result.stdout.splitlines():
        if "wrote" in line:
            for word in line.replace(",", " ").split():
                if word.endswith(".png"):
                    assert os.path.getsize(word) > 100


def _example_module(script):
    spec = importlib.util.spec_from_file_location(script[:-3], os.path.join(EXAMPLES, script))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_transfer_learning_trains_a_new_head_on_a_frozen_pretrained_base(tmp_path):
    """The example's path at a small size: a base pretrained and handed over
    as ONNX, saved and loaded back, frozen under a new head, trained on a
    folder of a few images: the head learns the new classes, the base does
    not move until it is unfrozen for fine-tuning."""
    pytest.importorskip("onnx")
    pytest.importorskip("PIL")
    from cnnc.datasets import fashion_mnist
    from cnnc.models import load_model
    tl = _example_module("transfer_learning.py")
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    xa, ya = tl.subset(x_train, y_train, tl.OLD, per_class=300)
    tl.pretrain_cnnc((xa / 255.0).astype("float32")[..., None], ya, 1, tmp_path / "pre.onnx")
    base_path = tmp_path / "base.cnnc"
    tl.pretrained_base(tmp_path / "pre.onnx", base_path)
    tl.write_folder(*tl.subset(x_train, y_train, tl.NEW, 10, seed=1), tmp_path / "few", tl.NEW)
    x, y, names = tl.read_folder(tmp_path / "few", class_names=[tl.NAMES[c] for c in tl.NEW])
    assert x.shape == (50, 28, 28, 1) and x.dtype == np.uint8 and np.bincount(y).tolist() == [10] * 5
    x_eval, y_eval = tl.subset(x_test, y_test, tl.NEW, per_class=100)

    pretrained = load_model(base_path).get_weights()
    base = load_model(base_path)
    base.trainable = False
    model = tl.classifier(base, "transfer", 1e-3, base_training=False)
    head = model.get_layer("transfer_head").get_weights()[0].copy()
    loss_before = model.evaluate(x, y, verbose=0)[0]
    model.fit(x, y, batch_size=tl.BATCH, epochs=60, verbose=0)
    for before, after in zip(pretrained, base.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert not np.array_equal(head, model.get_layer("transfer_head").get_weights()[0])
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert loss < 0.5 * loss_before and accuracy > 0.8
    assert model.evaluate(x_eval[..., None], y_eval, verbose=0)[1] > 0.5  # 5 classes: chance 0.2

    tl.fine_tune(model, x, y, steps=5)
    assert not all(np.array_equal(a, b) for a, b in zip(pretrained, base.get_weights()))
