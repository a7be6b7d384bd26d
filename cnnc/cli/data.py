"""Loading the data set a command asks for, as uint8 or float images
(N, H, W, C) with integer labels and class names."""
import os

import numpy as np

from cnnc import datasets
from cnnc.datasets import fashion_mnist, mnist

DATASETS = ("fashion_mnist", "mnist", "idx", "folder", "npz")


class LoadedData:
    def __init__(self, train, test, class_names, description, is_sample=False):
        (self.x_train, self.y_train), (self.x_test, self.y_test) = train, test
        self.class_names = list(class_names)
        self.description = description
        self.is_sample = is_sample

    @property
    def input_shape(self):
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self):
        return len(self.class_names)


def _images4(x):
    x = np.asarray(x)
    return x[..., None] if x.ndim == 3 else x


def _labels(y, where):
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot
        y = y.argmax(axis=1)
    y = y.reshape(len(y))
    if y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
        raise ValueError(f"{where}: labels must be class indices")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"{where}: labels must be >= 0")
    return y


def _class_names_for(y_train, y_test):
    count = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    return [str(i) for i in range(count)]


def load(dataset, data=None, image_size=None, color_mode=None, seed=0):
    """LoadedData for --dataset/--data."""
    if dataset not in DATASETS:
        raise ValueError(f"--dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
    if dataset == "fashion_mnist":
        location, is_sample = fashion_mnist.locate(data)
        train, test = fashion_mnist.load_data(data)
        what = ("the Fashion-MNIST sample bundled with cnnc" if is_sample
                else f"Fashion-MNIST from {location}")
        names, sample = fashion_mnist.CLASS_NAMES, is_sample
    elif dataset == "mnist":
        train, test = mnist.load_data(data)
        what, names, sample = "MNIST", mnist.CLASS_NAMES, False
    elif dataset == "idx":
        if data is None:
            raise ValueError("--dataset idx needs --data DIR (a directory of MNIST-style IDX files)")
        train, test = datasets.load_idx(data)
        what, names, sample = f"IDX files in {data}", None, False
    elif dataset == "npz":
        if data is None:
            raise ValueError("--dataset npz needs --data FILE.npz")
        train, test = datasets.load_npz(data)
        what, names, sample = f"{data}", None, False
    else:
        if data is None:
            raise ValueError("--dataset folder needs --data DIR (one sub-folder of images per class)")
        train, test, names = datasets.load_image_folders(
            data, image_size=image_size, color_mode=color_mode or "rgb", seed=seed,
            resize_hint="pass --image-size H W")
        what, sample = f"images in {data}", False
    train = (_images4(train[0]), _labels(train[1], "training labels"))
    test = (_images4(test[0]), _labels(test[1], "test labels"))
    if names is None:
        names = _class_names_for(train[1], test[1])
    if max(train[1].max(initial=0), test[1].max(initial=0)) >= len(names):
        raise ValueError(f"labels go up to {max(train[1].max(), test[1].max())} but there are "
                         f"{len(names)} class names")
    return LoadedData(train, test, names, f"{what}: {len(train[0])} training and {len(test[0])} "
                      f"test images of {train[0].shape[1:]}", sample)


def scale_for(x):
    """The factor that maps the stored values to [0, 1]: 1/255 for 8-bit data."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return 1.0 / 255.0
    top = float(np.max(x)) if x.size else 1.0
    return 1.0 / 255.0 if top > 1.5 else 1.0


def default_out_dir(model, dataset):
    import time
    return os.path.join("runs", f"{model}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}")
