"""``cnnc train``: train a zoo model on a data set, evaluate it, save the
model, its training curves (CSV and PNG), its first layer's filters, the test
set's confusion matrix and the test images it got most wrong."""
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
          "alexnet": "AlexNet", "inception_v3": "InceptionV3", "mobilenet_v2": "MobileNetV2",
          "compact_resnet": "CompactResNet"}
OPTIMIZERS = ("adam", "sgd", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "lion")
# Augmentations --augment may list (comma separated); "standard" is a good
# default for small grayscale images such as Fashion-MNIST.
AUGMENTATIONS = ("flip", "translate", "rotate", "zoom", "crop", "contrast", "brightness", "erase")
STANDARD_AUGMENT = "flip,translate"
# Default epochs: the full Fashion-MNIST is 20x the bundled sample, so the
# no-argument run stays within a few minutes on two cores either way.
DEFAULT_EPOCHS_FULL = 5
DEFAULT_EPOCHS_SAMPLE = 8
# What an option left unset (None) by the command line and the recipe means.
DEFAULTS = {"batch_size": 32, "optimizer": "adam", "momentum": 0.0, "nesterov": False,
            "validation_split": 0.1, "schedule": "constant", "warmup_epochs": 0,
            "label_smoothing": 0.0, "deterministic": False}


def _count(n, noun):
    """'1 thread', '2 threads'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def add_arguments(p):
    from cnnc.cli.recipes import RECIPES
    p.add_argument("--recipe", choices=sorted(RECIPES),
                   help="a tested set of the options below (options given as well win): "
                        + "; ".join(f"{name}: {r['about']}" for name, r in sorted(RECIPES.items())))
    p.add_argument("--model", choices=sorted(MODELS), help="zoo model (default mnist_cnn)")
    p.add_argument("--width", type=int, help="width of compact_resnet (default 80)")
    p.add_argument("--blocks", type=int, nargs=2, metavar=("N1", "N2"),
                   help="residual blocks in each of compact_resnet's two stages (default 1 1)")
    p.add_argument("--dataset", default="fashion_mnist",
                   choices=("fashion_mnist", "mnist", "idx", "folder", "npz"),
                   help="fashion_mnist (default), mnist, idx (a directory of IDX files), folder "
                        "(one sub-folder of images per class) or npz")
    p.add_argument("--data", metavar="PATH", help="where the data set is (directory or .npz)")
    p.add_argument("--epochs", type=int, help=f"training epochs (default {DEFAULT_EPOCHS_FULL} on "
                   f"training sets of 20,000 images or more such as the full Fashion-MNIST, "
                   f"{DEFAULT_EPOCHS_SAMPLE} on smaller ones such as the bundled sample)")
    p.add_argument("--validation-split", type=float, metavar="F",
                   help="fraction of the training images held out (stratified, seeded) for the "
                        "validation curves (default 0.1; 0: train on all, curves of the training "
                        "images only); the test set is used only for the final test accuracy")
    p.add_argument("--batch-size", type=int, help="default 32")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="default adam")
    p.add_argument("--lr", type=float, help="learning rate, the peak one with --schedule cosine "
                   "(default: the optimizer's, 0.001 for adam)")
    p.add_argument("--momentum", type=float, help="for sgd (default 0)")
    p.add_argument("--nesterov", action="store_const", const=True, help="Nesterov momentum (sgd)")
    p.add_argument("--weight-decay", type=float, metavar="W",
                   help="decoupled weight decay, w -= lr * W * w per step (default: the optimizer's)")
    p.add_argument("--schedule", choices=("constant", "cosine"),
                   help="learning rate: constant (default) or cosine: a linear warm-up from lr/10 "
                        "over --warmup-epochs, then a cosine decay to lr/100 at the end")
    p.add_argument("--warmup-epochs", type=int, metavar="N", help="for --schedule cosine (default 0)")
    p.add_argument("--label-smoothing", type=float, metavar="S",
                   help="targets (1 - S) on the label plus S / classes on every class (default 0)")
    p.add_argument("--ema", type=float, metavar="M",
                   help="keep a moving average of the weights (momentum M, e.g. 0.998) and end "
                        "training with it")
    p.add_argument("--tta", choices=("flip", "shift", "flip+shift"),
                   help="test-time augmentation at the final evaluation: flip averages the "
                        "predictions for each test image and its mirror image, shift for the "
                        "image and the image moved by one pixel each way, flip+shift for all ten")
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
    p.add_argument("--deterministic", action="store_const", const=True,
                   help="the same weights at any thread count, not only at a fixed one "
                        "(cnnc.set_deterministic; costs a few percent of speed)")
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
    "crop" is a 2-pixel pad-and-crop at the input size; "erase" blanks a random
    rectangle (2% to 25% of the image) of half the images."""
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
        "erase": lambda s: layers.RandomErasing(0.5, scale=(0.02, 0.25), seed=s),
    }
    return [make[n](seed + 101 * k) for k, n in enumerate(names)]


def build_model(name, input_shape, num_classes, scale, width=None, blocks=None):
    """Input -> Rescaling(scale) -> the zoo model: the saved model takes raw
    pixel values. ``width``, ``blocks``: compact_resnet's width and residual
    blocks per stage."""
    from cnnc import applications, layers
    from cnnc.models import Model
    options = {key: value for key, value in (("width", width), ("blocks", blocks))
               if value is not None}
    for key in options:
        if name != "compact_resnet":
            raise ValueError(f"--{key} applies to compact_resnet, not {name}")
    base = getattr(applications, MODELS[name])(input_shape=input_shape, classes=num_classes, **options)
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
    test set, and saves the model, the training curves (CSV and PNG), the
    first layer's filters, the test set's confusion matrix and its hardest
    misclassified images. With no arguments: the classic MNIST CNN on
    Fashion-MNIST (the full set if found, else the sample bundled with cnnc);
    --recipe quick and --recipe best reach further.
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


def resolve_options(args):
    """Fill the options left unset: from --recipe, then from DEFAULTS."""
    from cnnc.cli import recipes
    if args.recipe is not None:
        recipes.apply(args, args.recipe)
    for key, value in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.model is None:
        args.model = "mnist_cnn"
    if args.label_smoothing is not None and not 0.0 <= args.label_smoothing < 1.0:
        raise ValueError(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}")
    if args.ema is not None and not 0.0 < args.ema < 1.0:
        raise ValueError(f"--ema must be in (0, 1), got {args.ema}")
    if args.warmup_epochs < 0:
        raise ValueError("--warmup-epochs must be >= 0")
    return args


def make_optimizer(args, steps_per_epoch, epochs):
    """The optimizer the options describe, with its learning-rate schedule."""
    from cnnc import optimizers
    from cnnc.optimizers.schedules import CosineDecay
    kwargs = {}
    if args.optimizer == "sgd":
        if args.momentum:
            kwargs["momentum"] = args.momentum
        if args.nesterov:
            kwargs["nesterov"] = True
    elif args.nesterov:
        raise ValueError("--nesterov applies to --optimizer sgd")
    if args.weight_decay is not None:
        kwargs["weight_decay"] = args.weight_decay
    if args.ema is not None:
        kwargs.update(use_ema=True, ema_momentum=args.ema)
    lr = args.lr
    if args.schedule == "cosine":
        peak = lr if lr is not None else optimizers.get(args.optimizer).learning_rate
        warmup = min(args.warmup_epochs, epochs - 1) * steps_per_epoch
        decay_steps = max(epochs * steps_per_epoch - warmup, 1)
        lr = (CosineDecay(peak / 10, decay_steps, warmup_target=peak, warmup_steps=warmup, alpha=0.01)
              if warmup else CosineDecay(peak, decay_steps, alpha=0.01))
    elif args.warmup_epochs:
        raise ValueError("--warmup-epochs applies to --schedule cosine")
    if lr is not None:
        kwargs["learning_rate"] = lr
    return optimizers.get({"class_name": args.optimizer, "config": kwargs})


def _train(args):
    import cnnc
    from cnnc import losses, visualize
    from cnnc.cli.data import default_out_dir, load, scale_for
    from cnnc.data import Dataset
    from cnnc.utils import set_random_seed

    resolve_options(args)
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
    cnnc.set_deterministic(args.deterministic)
    lead = strategy is None or strategy.rank == 0
    say = print if lead else (lambda *a, **k: None)
    set_random_seed(args.seed)
    if args.recipe is not None:
        from cnnc.cli.recipes import as_flags
        say(f"cnnc: recipe {args.recipe}: {as_flags(args.recipe)}", file=sys.stderr)
    data = load(args.dataset, args.data, image_size=args.image_size,
                color_mode="grayscale" if args.grayscale else None, seed=args.seed)
    if args.validation_split == 0:
        (x_train, y_train), (x_val, y_val) = (data.x_train, data.y_train), (None, None)
    else:
        (x_train, y_train), (x_val, y_val) = holdout_split(data.x_train, data.y_train,
                                                           args.validation_split, args.seed)
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
        say(f"cnnc: data parallel over {_count(strategy.size, 'rank')} x {_count(strategy.threads, 'thread')}, "
            f"global batch {args.batch_size}", file=sys.stderr)

    # Each rank augments its own rows: its own random streams.
    aug_seed = args.seed + (0 if strategy is None else 1000003 * strategy.rank)
    aug = augmentation_layers(args.augment, aug_seed, data.input_shape)
    train = Dataset(x_train, y_train, batch_size=args.batch_size, seed=args.seed,
                    augment=Augmenter(aug) if aug else None)
    scale = scale_for(x_train)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = build_model(args.model, data.input_shape, data.num_classes, scale, args.width, args.blocks)
        model.compile(optimizer=make_optimizer(args, len(train), epochs),
                      loss=losses.SparseCategoricalCrossentropy(label_smoothing=args.label_smoothing),
                      metrics=["accuracy"])
    out = args.out or default_out_dir(args.model, args.dataset)
    if lead:
        os.makedirs(out, exist_ok=True)

    verbose = args.verbose if args.verbose is not None else "auto"
    start = time.perf_counter()
    history = model.fit(train, epochs=epochs, verbose=verbose,
                        validation_data=None if x_val is None else (x_val, y_val))
    train_seconds = time.perf_counter() - start
    loss, plain_accuracy = model.evaluate(data.x_test, data.y_test, batch_size=256, verbose=0)
    probs = model.predict(data.x_test, batch_size=256, verbose=0, tta=args.tta)
    accuracy = float(np.mean(probs.argmax(-1) == np.asarray(data.y_test).reshape(-1)))
    if not lead:
        return 0

    model_path = save_with_classes(model, os.path.join(out, "model.safetensors"), data.class_names)
    csv_path = write_history_csv(history.history, os.path.join(out, "history.csv"))
    curves_of = ("training images only" if x_val is None
                 else f"val: {len(x_val)} held-out training images")
    png_path = visualize.plot_history(history, os.path.join(out, "curves.png"),
                                      title=f"{args.model} on {args.dataset} ({curves_of})")
    conv = first_conv_layer(model)
    filters_path = (visualize.plot_filters(conv, os.path.join(out, "filters.png"))
                    if conv is not None else None)
    tested = f"{args.model} on the {args.dataset} test set" + (f" ({args.tta} TTA)" if args.tta else "")
    confusion_path = visualize.plot_confusion_matrix(
        data.y_test, probs, os.path.join(out, "confusion.png"), class_names=data.class_names,
        title=tested)
    wrong_path = visualize.plot_misclassified(
        data.x_test, data.y_test, probs, os.path.join(out, "misclassified.png"),
        class_names=data.class_names, count=32)
    summary = {"model": args.model, "recipe": args.recipe, "dataset": args.dataset,
               "data": data.description, "bundled_sample": data.is_sample, "epochs": epochs,
               "batch_size": args.batch_size, "training_images": len(x_train),
               "validation_images": 0 if x_val is None else len(x_val),
               "validation": "none" if x_val is None else "held-out split of the training set",
               "optimizer": args.optimizer, "learning_rate": args.lr, "schedule": args.schedule,
               "augment": args.augment, "label_smoothing": args.label_smoothing, "ema": args.ema,
               "tta": args.tta, "seed": args.seed, "threads": cnnc.get_num_threads(),
               "deterministic": args.deterministic, "width": args.width, "blocks": args.blocks,
               "isa": cnnc.isa(), "ranks": 1 if strategy is None else strategy.size,
               "test_loss": float(loss), "test_accuracy": accuracy,
               "test_accuracy_without_tta": float(plain_accuracy),
               "train_seconds": train_seconds, "seconds_per_epoch": train_seconds / epochs,
               "class_names": data.class_names}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)

    where = "the bundled Fashion-MNIST sample" if data.is_sample else args.dataset
    with_tta = f" with {args.tta} TTA ({plain_accuracy:.4f} without)" if args.tta else ""
    print(f"\ntest accuracy {accuracy:.4f}{with_tta}, test loss {loss:.4f}  ({args.model} on {where}, "
          f"{epochs} epochs in {train_seconds / 60:.1f} min, {train_seconds / epochs:.1f} s/epoch on "
          f"{_count(cnnc.get_num_threads(), 'thread')})")
    if data.is_sample:
        print("  (trained on the 3,000-image sample bundled with cnnc; install dataset-fashion-mnist "
              "or pass --data DIR for the full set)")
    if x_val is None:
        print(f"  (curves: the {len(x_train)} training images; no images held out for validation)")
    else:
        print(f"  (curves: training on {len(x_train)} images, validation on {len(x_val)} held-out "
              f"training images; the test set serves only the final evaluation above)")
    print(f"  model:    {model_path}")
    print(f"  curves:   {csv_path}")
    print(f"            {png_path}")
    if filters_path:
        print(f"  filters:  {filters_path}")
    print(f"  confusion matrix: {confusion_path}")
    print(f"  hardest misclassified test images: {wrong_path}")
    print(f"  summary:  {os.path.join(out, 'summary.json')}")
    print(f"  try:      cnnc predict {model_path} IMAGE.png")
    if args.recipe is None and args.dataset in ("fashion_mnist", "mnist"):
        print("  for more: cnnc train --recipe quick   (a small ResNet, about 1 minute on 2 cores, "
              "0.915 on the full Fashion-MNIST)\n"
              "            cnnc train --recipe best    (26-32 minutes on 2 cores, about 0.95 on the full "
              "Fashion-MNIST; see docs/recipes.md)")
    return 0
