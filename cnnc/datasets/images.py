"""Image files and image folders (one sub-folder per class).

PNG and JPEG (and whatever else Pillow reads) are decoded with Pillow, an
optional dependency (``pip install pillow``). Without it, PNG files are still
read by cnnc's own decoder; other formats raise an ImportError saying what
to install.
"""
import os

import numpy as np

from cnnc import _png

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
_MODES = {"grayscale": ("L", 1), "rgb": ("RGB", 3), "rgba": ("RGBA", 4)}


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        return None
    return Image


def _check_mode(color_mode):
    if color_mode not in _MODES:
        raise ValueError(f"color_mode must be one of {sorted(_MODES)}, got {color_mode!r}")


def _convert_channels(image, color_mode):
    """Convert a decoded (H, W, C) uint8 image (C = 1, 2, 3 or 4) to the mode."""
    channels = image.shape[2]
    gray = channels <= 2
    alpha = image[:, :, -1:] if channels in (2, 4) else None
    color = image[:, :, :1] if gray else image[:, :, :3]
    if color_mode == "grayscale":
        if gray:
            return np.ascontiguousarray(color)
        # ITU-R 601-2 luma, with the rounding Pillow uses.
        c = color.astype(np.uint32)
        return ((c[:, :, 0] * 19595 + c[:, :, 1] * 38470 + c[:, :, 2] * 7471 + 0x8000) >> 16
                ).astype(np.uint8)[:, :, None]
    rgb = np.repeat(color, 3, axis=2) if gray else color
    if color_mode == "rgb":
        return np.ascontiguousarray(rgb)
    if alpha is None:
        alpha = np.full(rgb.shape[:2] + (1,), 255, np.uint8)
    return np.concatenate([rgb, alpha], axis=2)


def resize_bilinear(image, size):
    """Resize a (H, W, C) uint8 image to ``size = (height, width)`` by bilinear
    interpolation on pixel centres (the convention of Pillow and OpenCV)."""
    h, w = image.shape[:2]
    oh, ow = size
    if (oh, ow) == (h, w):
        return image

    def coords(n_out, n_in):
        src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        src = np.clip(src, 0, n_in - 1)
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (src - lo).astype(np.float32)

    y0, y1, fy = coords(oh, h)
    x0, x1, fx = coords(ow, w)
    img = image.astype(np.float32)
    top = img[y0][:, x0] * (1 - fx)[None, :, None] + img[y0][:, x1] * fx[None, :, None]
    bottom = img[y1][:, x0] * (1 - fx)[None, :, None] + img[y1][:, x1] * fx[None, :, None]
    out = top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def read_image(path, color_mode="rgb", image_size=None):
    """Read one image file: uint8 array (H, W, C), C = 1, 3 or 4 for
    color_mode "grayscale", "rgb" or "rgba"; resized (bilinear) to
    ``image_size = (height, width)`` if given."""
    _check_mode(color_mode)
    path = os.fspath(path)
    Image = _pillow()
    if Image is not None:
        try:
            with Image.open(path) as im:
                im = im.convert(_MODES[color_mode][0])
                if image_size is not None and im.size != (image_size[1], image_size[0]):
                    im = im.resize((int(image_size[1]), int(image_size[0])), Image.BILINEAR)
                array = np.asarray(im, dtype=np.uint8)
        except (OSError, SyntaxError, ValueError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise ValueError(f"{path}: cannot read the image ({exc})") from None
        return array[:, :, None] if array.ndim == 2 else array
    with open(path, "rb") as f:
        data = f.read()
    if not data.startswith(_png.SIGNATURE):
        raise ImportError(f"{path}: reading this kind of image needs Pillow, an optional "
                          f"dependency of cnnc: pip install pillow (cnnc reads PNG without it)")
    image = _convert_channels(_png.decode_png(data, path), color_mode)
    if image_size is not None:
        image = resize_bilinear(image, tuple(int(s) for s in image_size))
    return image


def list_image_folder(directory, class_names=None, allow_missing=False):
    """``(paths, labels, class_names)`` of an image folder: one sub-folder per
    class, classes in alphabetical order unless ``class_names`` is given
    (then every sub-folder must be one of them and, unless
    ``allow_missing``, every one of them must have a sub-folder)."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory}: no such directory")
    subdirs = sorted(d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d)))
    if class_names is None:
        class_names = subdirs
    else:
        class_names = list(class_names)
        missing = [c for c in class_names if c not in subdirs]
        if missing and not allow_missing:
            raise ValueError(f"{directory}: no sub-folder for class(es) {missing}")
        unknown = [d for d in subdirs if d not in class_names] if allow_missing else []
        if unknown:
            raise ValueError(f"{directory}: sub-folder(s) {unknown} are not among the classes {class_names}")
    if not class_names:
        raise ValueError(f"{directory}: no class sub-folders (expected one folder of images per class)")
    paths, labels = [], []
    for label, name in enumerate(class_names):
        if name not in subdirs:
            continue
        for root, _, files in sorted(os.walk(os.path.join(directory, name))):
            for f in sorted(files):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    paths.append(os.path.join(root, f))
                    labels.append(label)
    if not paths:
        raise ValueError(f"{directory}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in "
                         f"the class sub-folders {class_names}")
    return paths, np.asarray(labels, np.int32), list(class_names)


def load_image_folder(directory, image_size=None, color_mode="rgb", class_names=None,
                      allow_missing=False, resize_hint="pass image_size=(height, width)"):
    """Load every image of an image folder (``directory/<class>/<image>``).

    Returns ``(x, y, class_names)``: x uint8 of shape (N, H, W, C), y int32
    class indices (N,), and the class names in label order. Images are
    resized to ``image_size = (height, width)`` when given; otherwise they
    must all have the same size (else a ValueError ending in ``resize_hint``,
    which a caller with other argument names, such as the command line, sets).
    """
    _check_mode(color_mode)
    paths, labels, class_names = list_image_folder(directory, class_names, allow_missing)
    images = []
    for path in paths:
        image = read_image(path, color_mode, image_size)
        if images and image.shape != images[0].shape:
            raise ValueError(f"{path} is {image.shape[1]}x{image.shape[0]} but {paths[0]} is "
                             f"{images[0].shape[1]}x{images[0].shape[0]}; {resize_hint} to resize them all")
        images.append(image)
    return np.stack(images), labels, class_names


def load_image_folders(directory, image_size=None, color_mode="rgb", validation_split=0.2, seed=0,
                       resize_hint="pass image_size=(height, width)"):
    """Keras-style ``(x_train, y_train), (x_test, y_test), class_names`` from
    an image folder. If ``directory`` has ``train`` and ``test`` (or ``val``)
    sub-folders, each is an image folder; otherwise the images are split,
    stratified by class, with ``validation_split`` of them held out."""
    directory = os.fspath(directory)
    test_dir = next((os.path.join(directory, d) for d in ("test", "val", "validation")
                     if os.path.isdir(os.path.join(directory, d))), None)
    if os.path.isdir(os.path.join(directory, "train")) and test_dir is not None:
        x_train, y_train, names = load_image_folder(os.path.join(directory, "train"), image_size, color_mode,
                                                    resize_hint=resize_hint)
        if image_size is None:  # the test images must match the training images
            image_size = x_train.shape[1:3]
        x_test, y_test, _ = load_image_folder(test_dir, image_size, color_mode, class_names=names,
                                              allow_missing=True, resize_hint=resize_hint)
        return (x_train, y_train), (x_test, y_test), names
    if not 0.0 < validation_split < 1.0:
        raise ValueError(f"validation_split must be in (0, 1), got {validation_split}")
    x, y, names = load_image_folder(directory, image_size, color_mode, resize_hint=resize_hint)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for c in range(len(names)):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        test[idx[:int(round(len(idx) * validation_split))]] = True
    return (x[~test], y[~test]), (x[test], y[test]), names
