"""The layers of the classic MNIST CNN chained by hand: parameter counts as
Keras reports them, and outputs and every gradient equal to PyTorch's for
the same weights."""
import numpy as np
import pytest

import cnnc.layers as L
from cnnc import random as cnnc_random
from layer_checks import assert_close, seeded_weights  # noqa: F401


def _mnist_layers():
    return [
        L.Conv2D(32, (3, 3), activation="relu", bias_initializer="random_normal"),
        L.MaxPooling2D(pool_size=(2, 2)),
        L.Conv2D(64, (3, 3), activation="relu", bias_initializer="random_normal"),
        L.MaxPooling2D(pool_size=(2, 2)),
        L.Flatten(),
        L.Dense(128, activation="relu", bias_initializer="random_normal"),
        L.Dense(10, activation="softmax", bias_initializer="random_normal"),
    ]


def test_mnist_cnn_shapes_and_keras_parameter_counts():
    layers = _mnist_layers()
    t = L.Input((28, 28, 1))
    shapes = []
    for layer in layers:
        t = layer(t)
        shapes.append(t.shape)
    assert shapes == [(None, 26, 26, 32), (None, 13, 13, 32), (None, 11, 11, 64),
                      (None, 5, 5, 64), (None, 1600), (None, 128), (None, 10)]
    # Keras model.summary(): 320, 0, 18496, 0, 0, 204928, 1290; total 225034
    assert [layer.count_params() for layer in layers] == [320, 0, 18496, 0, 0, 204928, 1290]


def test_mnist_cnn_matches_torch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    cnnc_random.set_seed(3)
    layers = _mnist_layers()
    x = rng.random((4, 28, 28, 1), dtype=np.float32)
    h = x
    for layer in layers:
        h = layer(h, training=True)
    y = h
    r = rng.standard_normal(y.shape).astype(np.float32)
    g = r
    for layer in reversed(layers):
        g = layer.backward(g)
    dx = g

    (k1, b1), _, (k2, b2), _, _, (w3, b3), (w4, b4) = [layer.get_weights() for layer in layers]
    params = [torch.tensor(a, dtype=torch.float64, requires_grad=True)
              for a in (k1, b1, k2, b2, w3, b3, w4, b4)]
    tk1, tb1, tk2, tb2, tw3, tb3, tw4, tb4 = params
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    h = F.relu(F.conv2d(tx.permute(0, 3, 1, 2), tk1.permute(3, 2, 0, 1), tb1))
    h = F.max_pool2d(h, 2)
    h = F.relu(F.conv2d(h, tk2.permute(3, 2, 0, 1), tb2))
    h = F.max_pool2d(h, 2)
    h = h.permute(0, 2, 3, 1).reshape(4, -1)  # channels-last flattening, as Keras
    h = F.relu(h @ tw3 + tb3)
    ty = torch.softmax(h @ tw4 + tb4, dim=-1)
    (ty * torch.tensor(r, dtype=torch.float64)).sum().backward()
    assert_close(y, ty.detach().numpy(), rtol=1e-4, atol=1e-6)
    assert_close(dx, tx.grad.numpy(), rtol=1e-3, atol=1e-6)
    grads = [g for layer in layers for g in layer.get_gradients()]
    for got, p in zip(grads, params):
        assert_close(got, p.grad.numpy(), rtol=1e-3, atol=1e-6)


def test_residual_block_matches_torch(rng):
    """Conv-BN-ReLU-Conv-BN + 1x1 projection shortcut, Add, ReLU, global
    average pooling, Dense: outputs and gradients equal PyTorch's, BN in
    training mode (batch statistics)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    cnnc_random.set_seed(5)
    conv1 = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False)
    bn1 = L.BatchNormalization(gamma_initializer="random_uniform", beta_initializer="random_normal")
    act1 = L.ReLU()
    conv2 = L.Conv2D(8, 3, padding="same", use_bias=False)
    bn2 = L.BatchNormalization(beta_initializer="random_normal")
    proj = L.Conv2D(8, 1, strides=2, bias_initializer="random_normal")
    add = L.Add()
    act2 = L.Activation("relu")
    gap = L.GlobalAveragePooling2D()
    head = L.Dense(5, bias_initializer="random_normal")
    x = rng.standard_normal((3, 9, 9, 4)).astype(np.float32)
    main = bn2(conv2(act1(bn1(conv1(x, training=True), training=True), training=True),
                     training=True), training=True)
    short = proj(x, training=True)
    y = head(gap(act2(add([main, short], training=True), training=True), training=True),
             training=True)
    r = rng.standard_normal(y.shape).astype(np.float32)
    g_main, g_short = add.backward(act2.backward(gap.backward(head.backward(r))))
    g = conv1.backward(bn1.backward(act1.backward(conv2.backward(bn2.backward(g_main)))))
    dx = g + proj.backward(g_short)

    def t(a, grad=True):
        return torch.tensor(a, dtype=torch.float64, requires_grad=grad)
    tx = t(x)
    w1, w2 = t(conv1.get_weights()[0]), t(conv2.get_weights()[0])
    g1, be1, g2, be2 = (t(bn1.get_weights()[0]), t(bn1.get_weights()[1]),
                        t(bn2.get_weights()[0]), t(bn2.get_weights()[1]))
    wp, bp = (t(a) for a in proj.get_weights())
    wh, bh = (t(a) for a in head.get_weights())

    def bn(h, gamma, beta):
        return F.batch_norm(h, None, None, gamma, beta, training=True, eps=1e-3)
    xc = tx.permute(0, 3, 1, 2)
    # TensorFlow "same" with stride 2 on 9 pixels pads 1 on each side, as padding=1
    h = F.relu(bn(F.conv2d(xc, w1.permute(3, 2, 0, 1), stride=2, padding=1), g1, be1))
    h = bn(F.conv2d(h, w2.permute(3, 2, 0, 1), padding=1), g2, be2)
    s = F.conv2d(xc, wp.permute(3, 2, 0, 1), bp, stride=2)
    ty = F.relu(h + s).mean(dim=(2, 3)) @ wh + bh
    (ty * t(r, False)).sum().backward()
    assert_close(y, ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert_close(dx, tx.grad.numpy(), rtol=1e-3, atol=1e-5)
    pairs = [(conv1.get_gradients()[0], w1), (conv2.get_gradients()[0], w2),
             (bn1.get_gradients()[0], g1), (bn1.get_gradients()[1], be1),
             (bn2.get_gradients()[0], g2), (bn2.get_gradients()[1], be2),
             (proj.get_gradients()[0], wp), (proj.get_gradients()[1], bp),
             (head.get_gradients()[0], wh), (head.get_gradients()[1], bh)]
    for got, p in pairs:
        assert_close(got, p.grad.numpy(), rtol=1e-3, atol=1e-5)
