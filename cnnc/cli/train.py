"""``cnnc train``: train a zoo model on a data set, evaluate it, save the
model, its training curves (CSV and PNG) and its first layer's filters."""
import contextlib
import csv
import json
import os
import sys
import time

import numpy as np

# --model name -> cnnc.applications constructor name
MODELS = {"mnist_cnn": "MnistCNN", "lenet5": "LeNet5", "resnet18": "ResNet18",
          "resnet34": "ResNet34", "resnet50": "ResNet50", "vgg16": "VGG16", "vgg19": "VGG19",
          "alexnet": "AlexNet", "inception_v3": "InceptionV3", "mobilenet_v2": "MobileNetV2"}
OPTIMIZERS = ("adam", "sgd", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "lion")
# Augmentations --augment may list (comma separated); "standard" is a good
# default for small grayscale images such as Fashion-MNIST.
AUGMENTATIONS = ("flip", "translate", "rotate", "zoom", "crop", "contrast", "brightness")
STANDARD_AUGMENT = "flip,translate"
# Default epochs: the full Fashion-MNIST is 20x the bundled sample, so the
# no-argument run stays within a few minutes on two cores either way.
DEFAULT_EPOCHS_FULL = 5
DEFAULT_EPOCHS_SAMPLE = 8


def add_arguments(p):
    p.add_argument("--model", default="mnist_cnn", choices=sorted(MODELS), help="zoo model (default mnist_cnn)")
    p.add_argument("--dataset", default="fashion_mnist",
                   choices=("fashion_mnist", "mnist", "idx", "folder", "npz"),
                   help="fashion_mnist (default), mnist, idx (a directory of IDX files), folder "
                        "(one sub-folder of images per class) or npz")
    p.add_argument("--data", metavar="PATH", help="where the data set is (directory or .npz)")
    p.add_argument("--epochs", type=int, help=f"training epochs (default {DEFAULT_EPOCHS_FULL} on "
                   f"training sets of 20,000 images or more such as the full Fashion-MNIST, "
                   f"{DEFAULT_EPOCHS_SAMPLE} on smaller ones such as the bundled sample)")
    p.add_argument("--validation-split", type=float, default=0.1, metavar="F",
                   help="fraction of the training images held out (stratified, seeded) for the "
                        "validation curves (default 0.1); the test set is used only for the "
                        "final test accuracy")
    p.add_argument("--batch-size", type=int, default=32, help="default 32")
    p.add_argument("--optimizer", default="adam", choices=OPTIMIZERS, help="default adam")
    p.add_argument("--lr", type=float, help="learning rate (default: the optimizer's, 0.001 for adam)")
    p.add_argument("--momentum", type=float, default=0.0, help="for sgd")
    p.add_argument("--augment", nargs="?", const="standard", default=None, metavar="LIST",
                   help=f"augment the training images; LIST is comma separated from "
                        f"{', '.join(AUGMENTATIONS)} (alone: {STANDARD_AUGMENT})")
    p.add_argument("--image-size", type=int, nargs=2, metavar=("H", "W"),
                   help="resize images of a folder data set")
    p.add_argument("--grayscale", action="store_true", help="read folder images as grayscale")
    p.add_argument("--max-samples", type=int,
                   help="train on the first N training images only (after the validation images are held out)")
    p.add_argument("--threads", type=int, help="threads for the C kernels (default: all cores; "
                   "with --distributed, the cores of the node shared among its ranks)")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel training over the ranks of an MPI job "
                        "(mpirun -np 2 cnnc train --distributed); --batch-size is the global "
                        "batch; rank 0 prints and writes the outputs")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", metavar="DIR", help="output directory (default runs/MODEL-DATASET-TIME)")
    p.add_argument("--verbose", type=int, default=None, choices=(0, 1, 2),
                   help="1: progress bar, 2: one line per epoch (default: 1 on a terminal)")
    return p


def holdout_split(x, y, fraction, seed):
    """``(x_train, y_train), (x_val, y_val)``: ``fraction`` of the samples of
    each class (at least one where a class has two or more) held out, chosen
    with ``seed``; the validation curves are drawn on them, so the test set
    stays unseen until the final evaluation."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"--validation-split must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    held = np.zeros(len(y), bool)
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        if len(idx) >= 2:
            held[rng.permutation(idx)[:max(1, int(round(fraction * len(idx))))]] = True
    if held.all() or not held.any():
        raise ValueError(f"--validation-split {fraction} leaves no training or no validation images "
                         f"out of {len(y)}")
    return (x[~held], y[~held]), (x[held], y[held])


def augmentation_layers(spec, seed, input_shape):
    """The preprocessing layers an --augment LIST names (pixel values 0..255);
    "crop" is a 2-pixel pad-and-crop at the input size."""
    from cnnc import layers
    if spec is None:
        return []
    names = [s.strip() for s in (STANDARD_AUGMENT if spec == "standard" else spec).split(",") if s.strip()]
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"--augment: unknown {unknown}; choose from {', '.join(AUGMENTATIONS)}")
    make = {
        "flip": lambda s: layers.RandomFlip("horizontal", seed=s),
        "translate": lambda s: layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=s),
        "rotate": lambda s: layers.RandomRotation(0.03, fill_mode="constant", seed=s),
        "zoom": lambda s: layers.RandomZoom(0.1, fill_mode="constant", seed=s),
        "crop": lambda s: layers.RandomCrop(input_shape[0], input_shape[1], padding=2, seed=s),
        "contrast": lambda s: layers.RandomContrast(0.2, seed=s),
        "brightness": lambda s: layers.RandomBrightness(0.1, seed=s),
    }
    return [make[n](seed + 101 * k) for k, n in enumerate(names)]


def build_model(name, input_shape, num_classes, scale):
    """Input -> Rescaling(scale) -> the zoo model: the saved model takes raw
    pixel values."""
    from cnnc import applications, layers
    from cnnc.models import Model
    base = getattr(applications, MODELS[name])(input_shape=input_shape, classes=num_classes)
    inputs = layers.Input(shape=input_shape, name="image")
    x = layers.Rescaling(scale, name="rescaling")(inputs)
    return Model(inputs, base(x), name=name)


class Augmenter:
    """Applies the augmentation layers in training mode (the Dataset's hook,
    run in its background thread)."""

    def __init__(self, layer_list):
        self.layers = layer_list

    def __call__(self, x, training=True):
        for layer in self.layers:
            x = layer(x, training=True)
        return x


def write_history_csv(history, path):
    keys = list(history)
    rows = max((len(v) for v in history.values()), default=0)
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch"] + keys)
        for e in range(rows):
            writer.writerow([e + 1] + [f"{history[k][e]:.6g}" if e < len(history[k]) else "" for k in keys])
    os.replace(tmp, path)
    return path


def save_with_classes(model, path, class_names, pixel_scale=1.0):
    """model.save(path), plus the class names and the input convention in the
    file's metadata (read back by ``cnnc predict``)."""
    from cnnc import _safetensors
    model.save(path)
    tensors, metadata = _safetensors.read(path)
    metadata["class_names"] = json.dumps(list(class_names))
    metadata["pixel_scale"] = json.dumps(pixel_scale)
    _safetensors.write(path, tensors, metadata)
    return path


def first_conv_layer(model):
    from cnnc.layers import Conv2D
    stack = list(model.layers)
    while stack:
        layer = stack.pop(0)
        if isinstance(layer, Conv2D):
            return layer
        if hasattr(layer, "layers"):
            stack = list(layer.layers) + stack
    return None


def run(args):
    """Train a zoo model on a data set, evaluate it, save it and its curves.

    Trains a model of cnnc.applications on a data set, evaluates it on the
    test set, and saves the model, the training curves (CSV and PNG) and the
    first layer's filters. With no arguments: the classic MNIST CNN on
    Fashion-MNIST (the full set if found, else the sample bundled with cnnc).
    """
    if getattr(args, "distributed", False):
        # An error on one rank must stop every rank: it reaches the
        # strategy's exception hook, which aborts the MPI job.
        return _train(args)
    return guarded("train", _train, args)


def guarded(command, fn, args):
    """Run a command, turning the errors a user can fix into one line."""
    try:
        return fn(args)
    except (ValueError, FileNotFoundError, ImportError, OSError) as exc:
        print(f"cnnc {command}: error: {exc}", file=sys.stderr)
        return 2


def _train(args):
    import cnnc
    from cnnc import optimizers, visualize
    from cnnc.cli.data import default_out_dir, load, scale_for
    from cnnc.data import Dataset
    from cnnc.utils import set_random_seed

    strategy = None
    if args.distributed:
        from cnnc.distributed import DataParallel
        from cnnc.distributed.launcher import LauncherMismatchError
        try:
            strategy = DataParallel(threads="auto" if args.threads is None else args.threads)
        except (ImportError, LauncherMismatchError) as exc:
            # Raised before any rank waits on another: each stops alone.
            print(f"cnnc train: error: {exc}", file=sys.stderr)
            return 2
    elif args.threads is not None:
        cnnc.set_num_threads(args.threads)
    lead = strategy is None or strategy.rank == 0
    say = print if lead else (lambda *a, **k: None)
    set_random_seed(args.seed)
    data = load(args.dataset, args.data, image_size=args.image_size,
                color_mode="grayscale" if args.grayscale else None, seed=args.seed)
    (x_train, y_train), (x_val, y_val) = holdout_split(data.x_train, data.y_train, args.validation_split,
                                                       args.seed)
    if args.max_samples:
        x_train, y_train = x_train[:args.max_samples], y_train[:args.max_samples]
    epochs = args.epochs
    if epochs is None:
        epochs = DEFAULT_EPOCHS_FULL if len(x_train) >= 20000 else DEFAULT_EPOCHS_SAMPLE
        say(f"cnnc: {epochs} epochs by default on {len(x_train)} training images "
            f"(pass --epochs N to change)", file=sys.stderr)
    if epochs < 1 or args.batch_size < 1:
        raise ValueError("--epochs and --batch-size must be >= 1")
    say(f"cnnc: data: {data.description}", file=sys.stderr)
    if strategy is not None:
        say(f"cnnc: data parallel over {strategy.size} ranks x {strategy.threads} threads, "
            f"global batch {args.batch_size}", file=sys.stderr)

    scale = scale_for(x_train)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = build_model(args.model, data.input_shape, data.num_classes, scale)
        opt_kwargs = {} if args.lr is None else {"learning_rate": args.lr}
        if args.optimizer == "sgd" and args.momentum:
            opt_kwargs["momentum"] = args.momentum
        optimizer = optimizers.get({"class_name": args.optimizer, "config": opt_kwargs})
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])

    # Each rank augments its own rows: its own random streams.
    aug_seed = args.seed + (0 if strategy is None else 1000003 * strategy.rank)
    aug = augmentation_layers(args.augment, aug_seed, data.input_shape)
    train = Dataset(x_train, y_train, batch_size=args.batch_size, seed=args.seed,
                    augment=Augmenter(aug) if aug else None)
    out = args.out or default_out_dir(args.model, args.dataset)
    if lead:
        os.makedirs(out, exist_ok=True)

    verbose = args.verbose if args.verbose is not None else "auto"
    start = time.perf_counter()
    history = model.fit(train, epochs=epochs, validation_data=(x_val, y_val), verbose=verbose)
    train_seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(data.x_test, data.y_test, batch_size=256, verbose=0)
    if not lead:
        return 0

    model_path = save_with_classes(model, os.path.join(out, "model.safetensors"), data.class_names)
    csv_path = write_history_csv(history.history, os.path.join(out, "history.csv"))
    png_path = visualize.plot_history(history, os.path.join(out, "curves.png"),
                                      title=f"{args.model} on {args.dataset} (val: {len(x_val)} held-out "
                                            f"training images)")
    conv = first_conv_layer(model)
    filters_path = (visualize.plot_filters(conv, os.path.join(out, "filters.png"))
                    if conv is not None else None)
    summary = {"model": args.model, "dataset": args.dataset, "data": data.description,
               "bundled_sample": data.is_sample, "epochs": epochs, "batch_size": args.batch_size,
               "training_images": len(x_train), "validation_images": len(x_val),
               "validation": "held-out split of the training set",
               "optimizer": args.optimizer, "learning_rate": args.lr, "augment": args.augment,
               "seed": args.seed, "threads": cnnc.get_num_threads(), "isa": cnnc.isa(),
               "ranks": 1 if strategy is None else strategy.size,
               "test_loss": float(loss), "test_accuracy": float(accuracy),
               "train_seconds": train_seconds, "seconds_per_epoch": train_seconds / epochs,
               "class_names": data.class_names}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)

    where = "the bundled Fashion-MNIST sample" if data.is_sample else args.dataset
    print(f"\ntest accuracy {accuracy:.4f}, test loss {loss:.4f}  ({args.model} on {where}, "
          f"{epochs} epochs, {train_seconds / epochs:.1f} s/epoch on {cnnc.get_num_threads()} threads)")
    if data.is_sample:
        print("  (trained on the 3,000-image sample bundled with cnnc; install dataset-fashion-mnist "
              "or pass --data DIR for the full set)")
    print(f"  (curves: training on {len(x_train)} images, validation on {len(x_val)} held-out "
          f"training images; the test set serves only the final evaluation above)")
    print(f"  model:    {model_path}")
    print(f"  curves:   {csv_path}")
    print(f"            {png_path}")
    if filters_path:
        print(f"  filters:  {filters_path}")
    print(f"  summary:  {os.path.join(out, 'summary.json')}")
    print(f"  try:      cnnc predict {model_path} IMAGE.png")
    return 0
