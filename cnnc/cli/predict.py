"""``cnnc predict MODEL IMAGE...``: the top classes of each image."""
import json

import numpy as np


def add_arguments(p):
    p.add_argument("model", help="a model file (model.safetensors)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, or anything Pillow reads)")
    p.add_argument("--top", type=int, default=3, help="classes to print per image (default 3)")
    p.add_argument("--invert", action="store_true",
                   help="invert the images first (dark objects on a light background, unlike "
                        "(Fashion-)MNIST)")
    return p


def model_metadata(path):
    """(class names or None, pixel scale) stored by ``cnnc train``."""
    from cnnc import _safetensors
    _, metadata = _safetensors.read(path)
    names = json.loads(metadata["class_names"]) if "class_names" in metadata else None
    # Models saved by `cnnc train` rescale inside; others usually expect [0, 1].
    scale = json.loads(metadata["pixel_scale"]) if "pixel_scale" in metadata else 1.0 / 255.0
    return names, float(scale)


def load_images(paths, input_shape, invert=False):
    """Images resized to the model's input (H, W, C), as float32 0..255."""
    from cnnc.datasets import read_image
    if len(input_shape) != 4 or input_shape[3] not in (1, 3, 4) or None in input_shape[1:3]:
        raise ValueError(f"the model takes inputs of shape {input_shape}, not images")
    mode = {1: "grayscale", 3: "rgb", 4: "rgba"}[input_shape[3]]
    images = np.stack([read_image(p, color_mode=mode, image_size=input_shape[1:3]) for p in paths])
    images = images.astype(np.float32)
    return 255.0 - images if invert else images


def run(args):
    """Print the top classes a saved model gives image files.

    MODEL is a file saved by cnnc (e.g. by `cnnc train`); images are read as
    the model's input (grayscale or colour, resized).
    """
    from cnnc.cli.train import guarded
    return guarded("predict", _predict, args)


def _predict(args):
    from cnnc.models import load_model
    model = load_model(args.model, compile=False)
    names, scale = model_metadata(args.model)
    input_shape = tuple(model.inputs[0].shape)
    x = load_images(args.images, input_shape, args.invert) * np.float32(scale)
    probs = np.asarray(model.predict(x, verbose=0))
    if probs.ndim != 2:
        raise ValueError(f"the model's output has shape {probs.shape}; expected (N, classes)")
    if names is None or len(names) != probs.shape[1]:
        names = [str(i) for i in range(probs.shape[1])]
    top = max(1, min(args.top, probs.shape[1]))
    width = max(len(p) for p in args.images)
    for path, p in zip(args.images, probs):
        order = np.argsort(-p)[:top]
        ranked = ", ".join(f"{names[k]} {p[k]:.3f}" for k in order)
        print(f"{path:<{width}}  {ranked}")
    return 0
