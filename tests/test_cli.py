"""The cnnc command: train on the bundled sample, predict, info; data
loading for every --dataset kind."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from cnnc import _png
from cnnc.cli import data as cli_data
from cnnc.datasets import _search, fashion_mnist, load_idx, save_npz


@pytest.fixture
def sample_only(monkeypatch, tmp_path):
    """As on a machine without the full Fashion-MNIST."""
    monkeypatch.setenv("CNNC_DATA", str(tmp_path / "nothing"))
    monkeypatch.setattr(_search, "SYSTEM_ROOT", str(tmp_path / "nothing"))


def test_info_runs(tmp_path):
    # run outside the repository, so that -m imports the installed package
    out = subprocess.run([sys.executable, "-m", "cnnc", "info"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0 and "isa" in out.stdout and "threads" in out.stdout


def test_config_command(capsys):
    import cnnc.config
    from cnnc.__main__ import main
    assert main(["config", "--cflags", "--libs"]) == 0
    assert capsys.readouterr().out.strip() == f"{cnnc.config.cflags()} {cnnc.config.libs()}"
    assert main(["config", "--pkgconfigdir"]) == 0
    assert capsys.readouterr().out.strip() == cnnc.get_pkgconfig_dir()
    assert main(["config"]) == 1
    assert "--cflags" in capsys.readouterr().err


def test_config_console_script_from_the_repository_root():
    """The README's C commands run `cnnc config` from the repository root:
    the console script must import the installed package, not the source
    tree's cnnc/ (which has no compiled modules)."""
    import shutil
    exe = shutil.which("cnnc")
    if exe is None or not os.path.dirname(exe) == os.path.dirname(sys.executable):
        pytest.skip("the cnnc console script of this interpreter is not on PATH")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([exe, "config", "--cflags", "--libs"], capture_output=True, text=True,
                         timeout=120, cwd=root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("-I") and "-lcnnc" in out.stdout


def test_dataset_kinds(tmp_path, sample_only, rng):
    data = cli_data.load("fashion_mnist")
    assert data.is_sample and data.input_shape == (28, 28, 1) and data.num_classes == 10
    assert data.class_names[9] == "Ankle boot"
    (x, y), (xt, yt) = load_idx(fashion_mnist.SAMPLE_DIR)
    data = cli_data.load("idx", fashion_mnist.SAMPLE_DIR)
    assert data.class_names == [str(i) for i in range(10)] and len(data.x_test) == 1000
    save_npz(tmp_path / "d.npz", x[:40], y[:40], xt[:10], yt[:10])
    data = cli_data.load("npz", tmp_path / "d.npz")
    assert data.x_train.shape == (40, 28, 28, 1)
    pick = np.concatenate([np.flatnonzero(y == c)[:2] for c in range(3)])
    pick_t = np.concatenate([np.flatnonzero(yt == c)[:2] for c in (0, 2)])
    for split, imgs, labels in (("train", x[pick], y[pick]), ("test", xt[pick_t], yt[pick_t])):
        for i, (img, label) in enumerate(zip(imgs, labels)):
            folder = tmp_path / "folder" / split / fashion_mnist.CLASS_NAMES[label].replace("/", "-")
            folder.mkdir(parents=True, exist_ok=True)
            _png.write_png(folder / f"{i}.png", img)
    data = cli_data.load("folder", tmp_path / "folder", color_mode="grayscale")
    assert data.x_train.shape == (6, 28, 28, 1) and len(data.x_test) == 4
    assert data.class_names == ["Pullover", "T-shirt-top", "Trouser"]
    np.testing.assert_array_equal(data.y_test, [0, 0, 1, 1])
    with pytest.raises(ValueError, match="--data"):
        cli_data.load("npz")
    with pytest.raises(ValueError, match="--dataset"):
        cli_data.load("cifar")


def test_train_then_predict_on_the_bundled_sample(tmp_path, sample_only, capsys):
    from cnnc.__main__ import main
    from cnnc.models import load_model
    out = tmp_path / "run"
    status = main(["train", "--epochs", "2", "--max-samples", "600", "--out", str(out),
                   "--verbose", "2", "--augment", "flip,translate,crop", "--seed", "3"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "bundled" in captured.err and "test accuracy" in captured.out
    for name in ("model.safetensors", "history.csv", "curves.png", "filters.png", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["bundled_sample"] and summary["epochs"] == 2
    assert summary["test_accuracy"] > 0.5  # 600 images, 2 epochs: well above chance (0.1)
    rows = (out / "history.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,") and "val_accuracy" in rows[0] and len(rows) == 3

    model = load_model(str(out / "model.safetensors"), compile=False)
    (_, _), (xt, yt) = load_idx(fashion_mnist.SAMPLE_DIR)
    probs = model.predict(xt[:200, :, :, None].astype(np.float32), verbose=0)
    assert abs((probs.argmax(1) == yt[:200]).mean() - summary["test_accuracy"]) < 0.15
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"img{i}.png"))
        _png.write_png(paths[-1], xt[i])
    assert main(["predict", str(out / "model.safetensors"), *paths, "--top", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    names = set(fashion_mnist.CLASS_NAMES)
    for line in lines:
        assert sum(name in line for name in names) >= 2
    assert main(["predict", str(out / "model.safetensors"), str(tmp_path / "missing.png")]) == 2
    assert "error" in capsys.readouterr().err


def test_train_argument_errors(tmp_path, sample_only, capsys):
    from cnnc.__main__ import main
    assert main(["train", "--augment", "spin", "--epochs", "1", "--out", str(tmp_path)]) == 2
    assert "unknown" in capsys.readouterr().err
    assert main(["train", "--dataset", "npz", "--out", str(tmp_path)]) == 2


def test_train_validation_curves_use_held_out_training_images(tmp_path, sample_only, capsys):
    from cnnc.__main__ import main
    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--max-samples", "500", "--out", str(out), "--verbose", "0",
                 "--validation-split", "0.2"]) == 0
    captured = capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    # 3,000 sample images: 10% of each class held out, then 500 of the rest trained on
    assert summary["validation_images"] == 600 and summary["training_images"] == 500
    assert "held-out" in captured.out
    # the validation loss of the curves is not the test loss printed at the end
    rows = (out / "history.csv").read_text().splitlines()
    header, last = rows[0].split(","), rows[-1].split(",")
    assert float(last[header.index("val_loss")]) != pytest.approx(summary["test_loss"], rel=1e-6)
    assert main(["train", "--validation-split", "1.5", "--out", str(tmp_path)]) == 2
    assert "--validation-split" in capsys.readouterr().err


def test_holdout_split_is_stratified_and_disjoint():
    from cnnc.cli.train import holdout_split
    y = np.repeat(np.arange(4), 25)
    x = np.arange(100)
    (xt, yt), (xv, yv) = holdout_split(x, y, 0.2, seed=1)
    assert sorted(np.concatenate([xt, xv])) == list(range(100))
    assert np.bincount(yv).tolist() == [5, 5, 5, 5]


def test_epochs_help_does_not_contradict_the_defaults():
    import argparse
    from cnnc.cli.train import DEFAULT_EPOCHS_FULL, DEFAULT_EPOCHS_SAMPLE, add_arguments
    text = " ".join(add_arguments(argparse.ArgumentParser()).format_help().split())
    assert f"default {DEFAULT_EPOCHS_FULL} on training sets of 20,000" in text
    assert f"{DEFAULT_EPOCHS_SAMPLE} on smaller ones" in text and "reference recipe" not in text


def test_npz_dataset_refuses_other_files_clearly(tmp_path, capsys):
    from cnnc.__main__ import main
    bogus = tmp_path / "data.npz"
    bogus.write_bytes(b"this is no archive\n" * 10)
    npy = tmp_path / "array.npz"
    np.save(npy.with_suffix(".npy"), np.zeros(3))
    npy.with_suffix(".npy").rename(npy)
    for path in (bogus, npy):
        assert main(["train", "--dataset", "npz", "--data", str(path), "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert "not a .npz archive" in err and "pickle" not in err


def test_folder_size_error_names_the_cli_option(tmp_path, capsys):
    from cnnc.__main__ import main
    for cls, size in (("a", (8, 8)), ("b", (6, 9))):
        (tmp_path / "photos" / cls).mkdir(parents=True)
        for i in range(2):
            _png.write_png(str(tmp_path / "photos" / cls / f"{i}.png"), np.zeros(size, np.uint8))
    assert main(["train", "--dataset", "folder", "--data", str(tmp_path / "photos"),
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "--image-size H W" in err and "image_size=" not in err


def _train_in_fresh_process(tmp_path, name, seed, threads=2, extra=()):
    """A short run with shuffling, augmentation (flip, crop, erase), dropout,
    label smoothing and weight averaging, in a new interpreter."""
    out = tmp_path / name
    cmd = [sys.executable, "-m", "cnnc", "train", "--dataset", "idx", "--data", fashion_mnist.SAMPLE_DIR,
           *extra,
           "--model", "compact_resnet", "--width", "8", "--epochs", "2", "--max-samples", "384",
           "--batch-size", "32", "--augment", "flip,crop,erase", "--label-smoothing", "0.1",
           "--ema", "0.9", "--tta", "flip", "--threads", str(threads), "--seed", str(seed), "--verbose", "0",
           "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    from cnnc import _safetensors
    tensors, _ = _safetensors.read(str(out / "model.safetensors"))
    return json.loads((out / "summary.json").read_text()), tensors


@pytest.mark.parametrize("threads", [1, 2])
def test_same_seed_and_threads_give_the_same_run(tmp_path, threads):
    first, weights = _train_in_fresh_process(tmp_path, "a", seed=7, threads=threads)
    again, weights_again = _train_in_fresh_process(tmp_path, "b", seed=7, threads=threads)
    for key in ("test_accuracy", "test_accuracy_without_tta", "test_loss"):
        assert first[key] == again[key], key            # to the last digit
    assert weights.keys() == weights_again.keys()
    for name in weights:
        np.testing.assert_array_equal(weights[name], weights_again[name], err_msg=name)
    other, other_weights = _train_in_fresh_process(tmp_path, "c", seed=8, threads=threads)
    assert other["test_loss"] != first["test_loss"]
    assert any(not np.array_equal(weights[n], other_weights[n]) for n in weights)


def test_deterministic_runs_give_the_same_weights_at_any_thread_count(tmp_path):
    """--deterministic: 1, 2 and 3 threads train the same weights, bit for
    bit (the convolutions' batch sums are split the same way whatever the
    team); without it the weight gradients' split follows the team."""
    extra = ("--deterministic", "--blocks", "1", "2")
    runs = [_train_in_fresh_process(tmp_path, f"t{t}", seed=3, threads=t, extra=extra) for t in (1, 2, 3)]
    (first, weights), others = runs[0], runs[1:]
    assert first["deterministic"] is True and first["blocks"] == [1, 2]
    assert any("/res2_2_a_conv/" in name for name in weights)
    for summary, other in others:
        for key in ("test_accuracy", "test_accuracy_without_tta", "test_loss"):
            assert summary[key] == first[key], key
        for name in weights:
            np.testing.assert_array_equal(other[name], weights[name], err_msg=name)


def test_recipes_are_cli_options(tmp_path, sample_only, capsys):
    """Each recipe option is a train option; the command line wins over the
    recipe; a default run ends by naming the recipes."""
    import argparse
    from cnnc.__main__ import main
    from cnnc.cli import recipes, train
    parser = train.add_arguments(argparse.ArgumentParser())
    for name, recipe in recipes.RECIPES.items():
        args = parser.parse_args(recipes.as_flags(name).split())
        assert args.recipe is None
        for key, value in recipe["options"].items():
            assert getattr(args, key) == value, (name, key)
        args = train.resolve_options(parser.parse_args(["--recipe", name, "--epochs", "3"]))
        assert args.epochs == 3 and args.model == recipe["options"]["model"]
    args = train.resolve_options(parser.parse_args([]))
    assert (args.model, args.batch_size, args.optimizer, args.validation_split) == ("mnist_cnn", 32, "adam", 0.1)
    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--max-samples", "300", "--out", str(out), "--verbose", "0"]) == 0
    text = capsys.readouterr().out
    assert "--recipe quick" in text and "--recipe best" in text
    for name in ("confusion.png", "misclassified.png"):
        assert (out / name).read_bytes()[:8] == _png.SIGNATURE
    with pytest.raises(SystemExit):
        parser.parse_args(["--recipe", "fastest"])
    assert main(["train", "--width", "16", "--epochs", "1", "--out", str(tmp_path)]) == 2
    assert "--width applies to compact_resnet" in capsys.readouterr().err
    assert main(["train", "--blocks", "2", "2", "--epochs", "1", "--out", str(tmp_path)]) == 2
    assert "--blocks applies to compact_resnet" in capsys.readouterr().err
    assert main(["train", "--model", "compact_resnet", "--blocks", "2", "-1", "--epochs", "1",
                 "--out", str(tmp_path)]) == 2
    assert "blocks must be two integers" in capsys.readouterr().err


def test_cosine_schedule_options():
    """--schedule cosine: lr/10 rising to lr over the warm-up epochs, then a
    cosine decay to lr/100 at the last step; without warm-up it starts at lr."""
    import argparse
    import math
    from cnnc.cli import train
    parser = train.add_arguments(argparse.ArgumentParser())
    args = train.resolve_options(parser.parse_args(
        ["--optimizer", "sgd", "--lr", "0.2", "--schedule", "cosine", "--warmup-epochs", "1",
         "--momentum", "0.9", "--nesterov", "--ema", "0.99", "--weight-decay", "0.001"]))
    opt = train.make_optimizer(args, steps_per_epoch=10, epochs=4)
    lr = opt._schedule
    assert lr(0) == pytest.approx(0.02) and lr(10) == pytest.approx(0.2)
    assert lr(25) == pytest.approx(0.002 + 0.198 * 0.5 * (1 + math.cos(math.pi * 15 / 30)))
    assert lr(40) == pytest.approx(0.002)
    assert opt.nesterov and opt.momentum == 0.9 and opt.use_ema and opt.ema_momentum == 0.99
    assert opt.weight_decay == 0.001
    args = train.resolve_options(parser.parse_args(["--optimizer", "adam", "--schedule", "cosine"]))
    lr = train.make_optimizer(args, steps_per_epoch=5, epochs=2)._schedule
    assert lr(0) == pytest.approx(0.001) and lr(10) == pytest.approx(1e-5)
    with pytest.raises(ValueError, match="--nesterov"):
        train.make_optimizer(train.resolve_options(parser.parse_args(["--nesterov"])), 5, 2)
    with pytest.raises(ValueError, match="--warmup-epochs"):
        train.make_optimizer(train.resolve_options(parser.parse_args(["--warmup-epochs", "1"])), 5, 2)
