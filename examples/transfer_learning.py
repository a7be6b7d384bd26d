"""Transfer learning: a pretrained base helps when labelled images are few.

1. Pretraining, done elsewhere: a small CNN learns five Fashion-MNIST
   classes (t-shirts, trousers, dresses, sneakers, bags) from their 30,000
   training images, in PyTorch when it is installed (else in cnnc), and is
   handed over as an ONNX file, the way a model zoo hands out networks.
2. ``cnnc.onnx.load_model`` imports it; its convolutional base (everything
   before the first dense layer, Keras's ``include_top=False``) is saved with
   ``model.save`` and loaded back with ``cnnc.models.load_model``.
3. The new task is the five other classes (pullovers, coats, shirts,
   sandals, ankle boots): related to the pretraining classes (tops and
   footwear), but the ones Fashion-MNIST networks confuse most. Only a few
   labelled images of each are given, written as a folder of PNG files
   (``images/<n>_per_class_draw_<d>/<class>/<i>.png``, the way one's own
   photos arrive) and read back with ``cnnc.datasets.load_image_folder``.
4. Three networks of the same architecture learn it from those images and
   are scored on the same 5,000 held-out test images of the new classes:
   (a) from scratch (``cnnc.models.clone_model``: fresh weights);
   (b) the pretrained base, frozen (``base.trainable = False``, called with
       ``training=False``), under a new softmax head;
   (c) (b) fine-tuned: the base unfrozen and the whole network trained a
       little more at a low learning rate.
   Each trains for at least 150 steps of 32 images and 20 epochs.

Which few images one happens to label moves every accuracy by a point or
more, so each size is repeated over ``--draws`` independent draws of them;
the table gives the mean and spread over the draws, and on how many draws
the frozen base beat training from scratch. Measured (table in
docs/onnx.md): from 5 to 100 labelled images per class the frozen base is
ahead on every draw, by 6.2 points on average at 5 per class, 3.6 at 20 and
2.8 at 100; with one image per class the draw decides (ahead on 3 of 5); at
500 per class training from scratch has caught up (0.879 both), and only
fine-tuning still adds a point. That is the case for transfer learning: few
labels, and a related pretraining task. (With the classes split the plain
way, the first five for pretraining and the last five as the new task, the
gain was smaller: 1 to 2 points from 5 images per class up, none below.)

    python examples/transfer_learning.py [--per-class 1 5 20 100 500] [--draws 5] [--quick] [--folder DIR]
"""
import argparse
import math
import os
import tempfile
import time
import warnings

import numpy as np

from cnnc import layers
from cnnc.datasets import fashion_mnist, load_image_folder
from cnnc.models import Model, clone_model, load_model
from cnnc.onnx import load_model as load_onnx_model
from cnnc.optimizers import Adam
from cnnc.utils import set_random_seed

NAMES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
         "bag", "ankle-boot"]
OLD = [0, 1, 3, 7, 8]   # the pretraining classes
NEW = [2, 4, 6, 5, 9]   # the new task
BATCH = 32
MIN_EPOCHS = 20


def subset(x, y, classes, per_class=None, seed=0):
    """Images of ``classes`` relabelled 0..len(classes)-1 (``per_class`` of
    each, drawn at random with ``seed``; all of them if None)."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        keep.append(idx if per_class is None else rng.choice(idx, per_class, replace=False))
    keep = np.sort(np.concatenate(keep))
    relabel = {c: i for i, c in enumerate(classes)}
    return x[keep], np.array([relabel[c] for c in y[keep]], "int64")


# -- 1. pretraining, elsewhere ---------------------------------------------------
def pretrain_torch(x, y, epochs, path):
    """A small CNN trained in PyTorch, exported with torch.onnx.export."""
    import torch
    from torch import nn
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, len(OLD)))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    yt = torch.from_numpy(y)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            batch = order[i:i + 64]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(xt[batch]), yt[batch])
            loss.backward()
            opt.step()
        print(f"  PyTorch pretraining epoch {epoch + 1}: loss {loss.item():.3f}")
    net.eval()
    with warnings.catch_warnings():  # the exporter's notice that a newer one exists
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, (xt[:1],), path, input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}}, dynamo=False)
    return "PyTorch"


def pretrain_cnnc(x, y, epochs, path):
    """The same network trained in cnnc and exported with cnnc.onnx.export."""
    from cnnc.losses import SparseCategoricalCrossentropy
    from cnnc.onnx import export
    inputs = layers.Input(shape=(28, 28, 1))
    h = inputs
    for filters in (32, 64):
        h = layers.Conv2D(filters, 3, padding="same")(h)
        h = layers.MaxPooling2D(2)(layers.ReLU()(layers.BatchNormalization()(h)))
    h = layers.Dense(128, activation="relu")(layers.Flatten()(h))
    net = Model(inputs, layers.Dense(len(OLD))(h))
    net.compile(optimizer="adam", loss=SparseCategoricalCrossentropy(from_logits=True))
    net.fit(x, y, epochs=epochs, batch_size=64, verbose=2)
    export(net, path, input_layout="NCHW")
    return "cnnc"


def pretrained_base(onnx_path, base_path):
    """Import the ONNX network, keep its convolutional base (everything
    before its first dense layer: Keras's ``include_top=False``) and save it
    as a cnnc file."""
    pretrained = load_onnx_model(onnx_path, input_layout="NHWC")
    first_dense = next(layer for layer in pretrained.layers if isinstance(layer, layers.Dense))
    base = Model(pretrained.inputs, first_dense.input, name="base")
    base.save(base_path)
    return base


# -- 3. the new task, as a folder of images ----------------------------------
def write_folder(x, y, root, classes):
    """Images as ``root/<class name>/<i>.png`` (Pillow)."""
    from PIL import Image
    for i, (image, label) in enumerate(zip(x, y)):
        folder = os.path.join(root, NAMES[classes[label]])
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(image).save(os.path.join(folder, f"{i:05d}.png"))


def read_folder(folder, class_names=None):
    """``(x, y, class_names)`` of an image folder, x uint8 (N, 28, 28, 1)."""
    return load_image_folder(folder, color_mode="grayscale", class_names=class_names)


# -- 4. the three networks -----------------------------------------------------
def classifier(base, name, learning_rate, base_training=None):
    """``base`` under a new softmax head over the new classes; inputs are the
    folder's uint8 pixels (the base was pretrained on pixels / 255). A
    pretrained base is called with ``training=False``: should it hold batch
    norm or dropout, they stay in inference mode when it is fine-tuned."""
    inputs = layers.Input(shape=(28, 28, 1))
    features = base(layers.Rescaling(1 / 255)(inputs), training=base_training)
    outputs = layers.Dense(len(NEW), activation="softmax", name=f"{name}_head")(features)
    model = Model(inputs, outputs, name=name)
    model.compile(optimizer=Adam(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def epochs_for(steps, n_images, min_epochs=MIN_EPOCHS):
    """Epochs that make at least ``steps`` batches of BATCH images, and at
    least ``min_epochs`` (so that more images are also trained on longer)."""
    return max(min_epochs, math.ceil(steps / math.ceil(n_images / BATCH)))


def train_from_scratch(base_path, x, y, steps, seed):
    set_random_seed(seed)
    model = classifier(clone_model(load_model(base_path)), "scratch", 1e-3)
    model.fit(x, y, batch_size=BATCH, epochs=epochs_for(steps, len(x)), verbose=0)
    return model


def train_frozen(base_path, x, y, steps, seed):
    """The pretrained base, frozen, under a new head trained on (x, y)."""
    set_random_seed(seed)
    base = load_model(base_path)
    base.trainable = False
    model = classifier(base, "transfer", 1e-3, base_training=False)
    model.fit(x, y, batch_size=BATCH, epochs=epochs_for(steps, len(x)), verbose=0)
    return model


def fine_tune(model, x, y, steps):
    """Unfreeze the base of a trained ``train_frozen`` model and train all of
    it a little more, at a learning rate low enough not to undo the base."""
    model.get_layer("base").trainable = True
    model.compile(optimizer=Adam(learning_rate=1e-4), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=BATCH, epochs=epochs_for(steps, len(x), MIN_EPOCHS // 4),
              verbose=0)
    return model


def same_weights(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))


def compare(base_path, folder, x_test, y_test, args, seed):
    """The three networks trained on the images of ``folder``: their test
    accuracies ``(scratch, frozen, fine_tuned)``."""
    x, y, _ = read_folder(folder, class_names=[NAMES[c] for c in NEW])
    scratch = train_from_scratch(base_path, x, y, args.steps, seed)
    transfer = train_frozen(base_path, x, y, args.steps, seed)
    if not same_weights(transfer.get_layer("base"), load_model(base_path)):
        raise AssertionError("fit moved the weights of the frozen base")
    accuracies = [scratch.evaluate(x_test, y_test, batch_size=500, verbose=0)[1],
                  transfer.evaluate(x_test, y_test, batch_size=500, verbose=0)[1]]
    fine_tune(transfer, x, y, args.fine_tune_steps)
    accuracies.append(transfer.evaluate(x_test, y_test, batch_size=500, verbose=0)[1])
    return accuracies


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, nargs="+", default=[1, 5, 20, 100, 500],
                        help="labelled images per new class (one row of the table each)")
    parser.add_argument("--draws", type=int, default=5,
                        help="independent draws of the labelled images per size")
    parser.add_argument("--pretrain-per-class", type=int, default=6000,
                        help="pretraining images per class (6000: all of them)")
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=150,
                        help="training steps (batches of 32) on the new task")
    parser.add_argument("--fine-tune-steps", type=int, default=50)
    parser.add_argument("--test-per-class", type=int, default=1000,
                        help="held-out test images per new class (1000: all of them)")
    parser.add_argument("--folder", help="where to write the image folders (default: a temp dir)")
    parser.add_argument("--quick", action="store_true", help="tiny run (smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.per_class, args.draws, args.pretrain_per_class, args.pretrain_epochs = [5], 2, 300, 1
        args.steps, args.fine_tune_steps, args.test_per_class = 40, 10, 100
    start, cpu_start = time.perf_counter(), time.process_time()
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()

    with tempfile.TemporaryDirectory() as tmp:
        # 1. pretraining on the other classes, handed over as ONNX
        onnx_path = os.path.join(tmp, "pretrained.onnx")
        xa, ya = subset(x_train, y_train, OLD, per_class=args.pretrain_per_class)
        xa = (xa / 255.0).astype("float32")[..., None]
        try:
            import torch  # noqa: F401
            framework = pretrain_torch(xa, ya, args.pretrain_epochs, onnx_path)
        except ImportError:
            framework = pretrain_cnnc(xa, ya, args.pretrain_epochs, onnx_path)
        print(f"pretrained in {framework} on {len(xa)} images of "
              f"{', '.join(NAMES[c] for c in OLD)} -> {onnx_path}")

        # 2. the imported base, saved as a cnnc model file
        base_path = os.path.join(tmp, "base.cnnc")
        base = pretrained_base(onnx_path, base_path)
        print(f"imported into cnnc; its convolutional base ({base.output_shape[-1]} features) "
              f"saved as {base_path}")

        # 3. the new task's folders: held-out test images, and per draw the few labelled ones
        root = args.folder or os.path.join(tmp, "images")
        xt, yt = subset(x_test, y_test, NEW, per_class=min(args.test_per_class, 1000))
        write_folder(xt, yt, os.path.join(root, "test"), NEW)
        x_eval, y_eval, _ = read_folder(os.path.join(root, "test"),
                                        class_names=[NAMES[c] for c in NEW])
        rows = []
        for per_class in args.per_class:
            results = []
            for draw in range(1, args.draws + 1):
                folder = os.path.join(root, f"{per_class}_per_class_draw_{draw}")
                write_folder(*subset(x_train, y_train, NEW, per_class, seed=draw), folder, NEW)
                results.append(compare(base_path, folder, x_eval, y_eval, args, seed=draw))
                print(f"{per_class:4d} per class, draw {draw}: from scratch {results[-1][0]:.4f}, "
                      f"frozen base + head {results[-1][1]:.4f}, "
                      f"fine-tuned {results[-1][2]:.4f}")
            rows.append((per_class, np.array(results)))

    print(f"\nnew task: {', '.join(NAMES[c] for c in NEW)}; test accuracy on {len(x_eval)} "
          f"held-out images, mean ± sd over {args.draws} draws of the labelled images")
    print("labelled per class | from scratch    | frozen pretrained base + new head | "
          "then fine-tuned | frozen ahead of scratch")
    for per_class, r in rows:
        mean, sd = r.mean(axis=0), r.std(axis=0)
        cells = [f"{m:.4f} ± {s:.4f}" for m, s in zip(mean, sd)]
        print(f"{per_class:18d} | {cells[0]} | {cells[1]:33s} | {cells[2]} | "
              f"{int(np.sum(r[:, 1] > r[:, 0]))} of {len(r)} draws")
    print(f"(the frozen base's weights were unchanged by every fit; "
          f"{time.perf_counter() - start:.0f} s in all, {time.process_time() - cpu_start:.0f} s "
          f"of CPU time)")


if __name__ == "__main__":
    main()
