"""Transfer learning from a pretrained ONNX model, on a folder of images.

1. Pretraining, done elsewhere: a small CNN learns seven Fashion-MNIST
   classes (trousers, dresses, coats, sandals, sneakers, bags, ankle boots)
   from thousands of images (in PyTorch when it is installed, else in cnnc)
   and is saved as ONNX, the file a model zoo would hand out.
2. The new task, related but unseen: telling t-shirts, pullovers and shirts
   apart (the classes Fashion-MNIST models confuse most), from only a few
   labelled images of each, written as a folder of PNG files
   (``images/<class>/<n>.png``), the way one's own photos arrive.
3. ``cnnc.onnx.load_model`` imports the pretrained network; its
   convolutional base (everything before the first dense layer) is frozen
   under a new softmax head, trained on the few images. The baseline is the
   same network, base and head, trained from scratch on the same images.

Which few images one happens to label moves either accuracy by several
points, so the comparison is repeated over ``--draws`` independent draws of
them (each its own folder) and reported per draw and on average. On these
three classes, the hardest of Fashion-MNIST to tell apart, features learnt
on the other seven help only a little: about one to three points on
average, not on every draw.

    python examples/transfer_learning.py [--per-class 10] [--draws 3] [--quick] [--folder DIR]
"""
import argparse
import os
import tempfile

import numpy as np

from cnnc.datasets import fashion_mnist, load_image_folder
from cnnc.layers import Dense, Input
from cnnc.models import Model
from cnnc.onnx import export, load_model
from cnnc.optimizers import Adam
from cnnc.utils import set_random_seed

OLD = [1, 3, 4, 5, 7, 8, 9]   # the pretraining classes
NEW = [0, 2, 6]               # the new task
NAMES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
         "bag", "ankle-boot"]


def subset(x, y, classes, per_class=None, seed=0):
    """Images of ``classes`` relabelled 0..len(classes)-1 (``per_class`` of each)."""
    rng = np.random.default_rng(seed)
    keep = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        keep.append(idx if per_class is None else rng.choice(idx, per_class, replace=False))
    keep = np.sort(np.concatenate(keep))
    relabel = {c: i for i, c in enumerate(classes)}
    return x[keep], np.array([relabel[c] for c in y[keep]], "int64")


def pretrain_torch(x, y, epochs, path):
    """A LeNet-style CNN trained in PyTorch, exported with torch.onnx.export."""
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
    torch.onnx.export(net, (xt[:1],), path, input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}}, dynamo=False)
    return "PyTorch"


def pretrain_cnnc(x, y, epochs, path):
    """The same network trained in cnnc and exported with cnnc.onnx.export."""
    from cnnc import layers
    from cnnc.losses import SparseCategoricalCrossentropy
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


def write_folder(x, y, root):
    """The few labelled images as ``root/<class name>/<i>.png`` (Pillow)."""
    from PIL import Image
    for i, (image, label) in enumerate(zip(x, y)):
        folder = os.path.join(root, NAMES[NEW[label]])
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(image).save(os.path.join(folder, f"{i:04d}.png"))


def reinitialize(model):
    """Fresh weights, as a newly built network of that architecture has."""
    for layer in model.layers:
        init = getattr(layer, "kernel_initializer", None)
        if init is not None and layer.weights:
            layer.set_weights([init(w.shape) if i == 0 else np.zeros(w.shape, np.float32)
                               for i, w in enumerate(layer.get_weights())])
        elif type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([np.ones_like(gamma), np.zeros_like(beta), np.zeros_like(mean),
                               np.ones_like(var)])


def conv_base(model, name):
    """The model up to the input of its first Dense layer (the features)."""
    first_dense = next(layer for layer in model.layers if isinstance(layer, Dense))
    return Model(model.inputs, first_dense.input, name=name)


def with_new_head(features, name):
    inputs = Input(shape=(28, 28, 1))
    outputs = Dense(len(NEW), activation="softmax", name=f"{name}_head")(features(inputs))
    model = Model(inputs, outputs, name=name)
    model.compile(optimizer=Adam(learning_rate=3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=10, help="labelled images per new class")
    parser.add_argument("--pretrain-per-class", type=int, default=2000,
                        help="pretraining images per class")
    parser.add_argument("--pretrain-epochs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=30, help="epochs on the new task")
    parser.add_argument("--draws", type=int, default=3,
                        help="independent draws of the labelled images to compare on")
    parser.add_argument("--folder", help="where to write the image folders (default: a temp dir)")
    parser.add_argument("--quick", action="store_true", help="tiny run (smoke test)")
    args = parser.parse_args()
    set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    xa, ya = subset(x_train, y_train, OLD,
                    per_class=300 if args.quick else args.pretrain_per_class)
    xb_test, yb_test = subset(x_test, y_test, NEW, per_class=100 if args.quick else None)
    if args.quick:
        args.pretrain_epochs, args.epochs, args.draws = 1, 10, 2

    with tempfile.TemporaryDirectory() as tmp:
        # 1. pretraining on the related, larger task, handed over as ONNX
        onnx_path = os.path.join(tmp, "pretrained.onnx")
        xa = (xa / 255.0).astype("float32")[..., None]
        try:
            import torch  # noqa: F401
            framework = pretrain_torch(xa, ya, args.pretrain_epochs, onnx_path)
        except ImportError:
            framework = pretrain_cnnc(xa, ya, args.pretrain_epochs, onnx_path)
        print(f"pretrained in {framework} on {len(xa)} images of {len(OLD)} classes -> "
              f"{onnx_path}")

        x_eval = (xb_test / 255.0).astype("float32")[..., None]
        results = []
        for draw in range(1, args.draws + 1):
            results.append(compare_on_draw(args, draw, x_train, y_train, x_eval, yb_test, tmp,
                                           onnx_path, verbose=draw == 1))

    transfer_acc, scratch_acc = np.mean(results, axis=0)
    print(f"{args.per_class} labelled images per new class, test accuracy on the new classes "
          f"({len(x_eval)} images), mean of {len(results)} draws of the labelled images:")
    print(f"  frozen pretrained base + new head: {transfer_acc:.4f}")
    print(f"  same network from scratch:         {scratch_acc:.4f}")
    wins = sum(t > s for t, s in results)
    print(f"  the pretrained base is ahead on {wins} of {len(results)} draws")


def compare_on_draw(args, draw, x_train, y_train, x_eval, y_eval, tmp, onnx_path, verbose):
    """Both networks trained on one draw of the labelled images (written as
    a folder and read back): their test accuracies."""
    # 2. the small new task, as a folder of images
    xb, yb = subset(x_train, y_train, NEW, per_class=args.per_class, seed=draw)
    folder = os.path.join(args.folder or os.path.join(tmp, "images"), f"draw_{draw}")
    write_folder(xb, yb, folder)
    x_few, y_few, class_names = load_image_folder(folder, color_mode="grayscale")
    x_few = (x_few / 255.0).astype("float32")
    order = [NEW.index(NAMES.index(n)) for n in class_names]  # folder order -> NEW order
    y_few = np.asarray(order)[y_few]

    # 3. the imported convolutional base, frozen, under a new head
    set_random_seed(0)
    pretrained = load_model(onnx_path, input_layout="NHWC")
    features = conv_base(pretrained, "features")
    features.trainable = False
    transfer = with_new_head(features, "transfer")
    if verbose:
        print(f"{len(x_few)} labelled images in {folder} ({', '.join(class_names)})")
        transfer.summary()
    frozen_before = [w.copy() for w in features.get_weights()]
    transfer.fit(x_few, y_few, epochs=args.epochs, batch_size=10, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(frozen_before, features.get_weights()))
    _, transfer_acc = transfer.evaluate(x_eval, y_eval, verbose=0)

    # the baseline: the same architecture, fresh weights, the same few images
    set_random_seed(0)
    scratch_base = load_model(onnx_path, input_layout="NHWC")
    reinitialize(scratch_base)
    scratch = with_new_head(conv_base(scratch_base, "scratch_features"), "scratch")
    scratch.fit(x_few, y_few, epochs=args.epochs, batch_size=10, verbose=0)
    _, scratch_acc = scratch.evaluate(x_eval, y_eval, verbose=0)
    print(f"draw {draw}: frozen pretrained base {transfer_acc:.4f}, from scratch {scratch_acc:.4f}")
    return transfer_acc, scratch_acc


if __name__ == "__main__":
    main()
