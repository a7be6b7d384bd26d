"""Training recipes for ``cnnc train --recipe NAME``: named sets of
``cnnc train`` options, chosen from measured runs on Fashion-MNIST with two
threads (docs/recipes.md has the table of runs). An option given on the
command line wins over the recipe's."""

RECIPES = {
    "best": {
        "about": "CompactResNet width 64 with two residual blocks per stage, 35 epochs, SGD "
                 "(Nesterov) with warm-up and cosine decay, flips, crops and random erasing, label "
                 "smoothing, weight averaging and test-time augmentation (flips and one-pixel shifts), the same weights at "
                 "any thread count; trains on all training images",
        "options": {"model": "compact_resnet", "width": 64, "blocks": [2, 2], "epochs": 35,
                    "batch_size": 128,
                    "optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True,
                    "weight_decay": 5e-3, "schedule": "cosine", "warmup_epochs": 1,
                    "augment": "flip,crop,erase", "label_smoothing": 0.1, "ema": 0.998,
                    "tta": "flip+shift", "validation_split": 0.0, "deterministic": True},
    },
    "quick": {
        "about": "CompactResNet width 48, 3 epochs, the best recipe's optimizer and schedule, flips, "
                 "label smoothing and flip test-time augmentation",
        "options": {"model": "compact_resnet", "width": 48, "epochs": 3, "batch_size": 128,
                    "optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True,
                    "weight_decay": 5e-3, "schedule": "cosine", "warmup_epochs": 1,
                    "augment": "flip", "label_smoothing": 0.1, "tta": "flip",
                    "validation_split": 0.0},
    },
}


def apply(args, name):
    """Set each option of recipe ``name`` that ``args`` leaves unset (None)."""
    if name not in RECIPES:
        raise ValueError(f"--recipe: unknown {name!r}; choose from {', '.join(sorted(RECIPES))}")
    for key, value in RECIPES[name]["options"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def as_flags(name):
    """The recipe as the ``cnnc train`` options it stands for."""
    flags = []
    for key, value in RECIPES[name]["options"].items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, (list, tuple)):
            value = " ".join(str(v) for v in value)
        flags.append(flag if value is True else f"{flag} {value}")
    return " ".join(flags)
