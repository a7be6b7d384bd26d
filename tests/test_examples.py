"""Every example runs (with --quick, on small slices) and says what it did."""
import os
import subprocess
import sys

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
