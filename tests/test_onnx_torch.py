"""PyTorch -> ONNX -> cnnc: torchvision's ResNet-18, VGG-11 and MobileNetV2
architectures and a squeeze-and-excitation network (random weights, small
widths and inputs) give PyTorch's predictions after import, and train as
transfer-learning bases."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

import torch_models  # noqa: E402


MODELS = {
    "resnet18": (lambda: torch_models.ResNet18(10, width=8), 32),
    "vgg11": (lambda: torch_models.VGG11(10, width=4, hidden=32, pool=2), 64),
    "mobilenet_v2": (lambda: torch_models.MobileNetV2(10, width_mult=0.25, last_channel=96), 32),
    "se_net": (lambda: torch_models.SqueezeExciteNet(10), 24),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def exported(request, tmp_path_factory):
    build, size = MODELS[request.param]
    torch.manual_seed(0)
    model = torch_models.randomize_batch_norm(build()).eval()
    x = torch.randn(3, 3, size, size)
    path = tmp_path_factory.mktemp("torch") / f"{request.param}.onnx"
    torch_models.export(model, x, path)
    with torch.no_grad():
        expected = model(x).numpy()
    return request.param, str(path), x.numpy(), expected


def test_predictions_equal_pytorch(exported):
    from cnnc.onnx import load_model
    name, path, x, expected = exported
    model = load_model(path)
    got = model.predict(x, verbose=0)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    # predict ran the C runtime (src/model), not the Python layers, and agrees with them
    from cnnc.models import inference
    assert inference.loaded_model(model) is not None, f"{name}: the C runtime refused the imported model"
    python = model._run_forward([x], training=False)[0]
    np.testing.assert_allclose(got, python, atol=2e-5 * max(1.0, float(np.abs(python).max())), rtol=0)
    nhwc = load_model(path, input_layout="NHWC")
    np.testing.assert_allclose(nhwc.predict(np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
                                            verbose=0), expected, atol=1e-4, rtol=0)


def test_frozen_base_and_new_head_train(exported):
    from cnnc import layers
    from cnnc.models import Model
    from cnnc.onnx import load_model
    name, path, x, _ = exported
    base = load_model(path)
    # the features: everything up to the input of the last Dense (the classifier)
    head_input = base.layers[-1].input
    features = Model(base.inputs, head_input, name="features")
    features.trainable = False
    frozen = [w.copy() for w in features.get_weights()]
    inputs = layers.Input(shape=x.shape[1:])
    outputs = layers.Dense(4, activation="softmax", name="new_head")(features(inputs))
    transfer = Model(inputs, outputs)
    transfer.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((12,) + x.shape[1:]).astype(np.float32)
    ys = rng.integers(0, 4, 12)
    head_before = transfer.get_layer("new_head").get_weights()[0].copy()
    history = transfer.fit(xs, ys, epochs=3, batch_size=6, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert not np.allclose(transfer.get_layer("new_head").get_weights()[0], head_before)
    # the frozen base (batch-norm statistics included) did not move
    for a, b in zip(frozen, features.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_imported_model_fine_tunes_as_pytorch(exported):
    """The whole imported network trains: one SGD step moves the first
    convolution's weights as PyTorch's does (VGG: its weights reach the ONNX
    file unchanged, where the exporter folds batch norm into the others)."""
    from cnnc.layers import Conv2D
    from cnnc.onnx import load_model
    name, path, x, _ = exported
    if name != "vgg11":
        pytest.skip("one architecture is enough for the gradient check")
    build, _ = MODELS[name]
    torch.manual_seed(0)
    model = torch_models.randomize_batch_norm(build()).eval()
    y = np.random.default_rng(1).standard_normal((x.shape[0], 10)).astype(np.float32)
    cm = load_model(path)
    cm.compile(optimizer=__import__("cnnc").optimizers.SGD(learning_rate=0.1), loss="mse")
    cm.fit(x, y, epochs=1, batch_size=x.shape[0], shuffle=False, verbose=0)
    loss = torch.nn.functional.mse_loss(model(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    with torch.no_grad():
        conv = model.features[0]
        expected = (conv.weight - 0.1 * conv.weight.grad).numpy()
    first = next(layer for layer in cm.layers if isinstance(layer, Conv2D))
    np.testing.assert_allclose(first.get_weights()[0], expected.transpose(2, 3, 1, 0),
                               atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_squeeze_excitation_across_opsets(tmp_path, opset):
    """The SE network through the exporter's opsets: ReduceMean's and
    Squeeze's axes move from attributes to inputs at 13 and 18."""
    from cnnc.onnx import load_model
    torch.manual_seed(1)
    model = torch_models.randomize_batch_norm(torch_models.SqueezeExciteNet(5, width=8)).eval()
    x = torch.randn(2, 3, 20, 20)
    path = torch_models.export(model, x, tmp_path / "se.onnx", opset=opset)
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(load_model(str(path)).predict(x.numpy(), verbose=0), expected,
                               atol=1e-4, rtol=0)
