"""The model zoo: parameter counts equal the reference implementations'
(Keras convention: BatchNormalization has 4 parameters per channel, gamma
and beta trainable, the moving mean and variance non-trainable; torch counts
only the 2 trainable ones), any input shape and class count, weights files."""
import numpy as np
import pytest

from cnnc import applications


def _counts(model):
    total = model.count_params()
    trainable = int(sum(w.value.size for w in model.trainable_weights))
    return total, trainable, total - trainable


@pytest.mark.parametrize("build, expected", [
    # Keras's classic MNIST example model.
    (lambda: applications.MnistCNN(), (225_034, 225_034, 0)),
    # LeNet-5: 156 + 2,416 + 48,120 + 10,164 + 850 (computed by hand).
    (lambda: applications.LeNet5(), (61_706, 61_706, 0)),
    # keras.applications.ResNet50(weights=None): total, trainable, non-trainable.
    (lambda: applications.ResNet50(), (25_636_712, 25_583_592, 53_120)),
    # torchvision resnet18/34: 11,689,512 / 21,797,672 parameters (all trainable),
    # plus 2 moving statistics per BatchNormalization channel (4,800 / 8,512 channels).
    (lambda: applications.ResNet18(), (11_699_112, 11_689_512, 9_600)),
    (lambda: applications.ResNet34(), (21_814_696, 21_797_672, 17_024)),
    # keras.applications.VGG16(include_top=False).
    (lambda: applications.VGG16(include_top=False), (14_714_688, 14_714_688, 0)),
    # torchvision alexnet.
    (lambda: applications.AlexNet(), (61_100_840, 61_100_840, 0)),
    # keras.applications.InceptionV3(weights=None) and MobileNetV2(weights=None).
    (lambda: applications.InceptionV3(), (23_851_784, 23_817_352, 34_432)),
    (lambda: applications.InceptionV3(include_top=False), (21_802_784, 21_768_352, 34_432)),
    (lambda: applications.MobileNetV2(), (3_538_984, 3_504_872, 34_112)),
    # CompactResNet(width=80), by hand: 3x3 convs 1->40, 40->80, 80->80 twice, 80->160,
    # 160->160 twice (9 * (40 + 3200 + 12800 + 12800 + 51200) = 720,360 weights) and dense
    # 160 * 10 + 10; batch norm on 40 + 3 * 80 + 3 * 160 = 760 channels, 2 + 2 each.
    (lambda: applications.CompactResNet(), (725_010, 720_360 + 1_520 + 1_610, 1_520)),
    (lambda: applications.CompactResNet(width=32, include_top=False, pooling="avg"),
     (9 * (16 + 512 + 2048 + 2048 + 8192) + 4 * (16 + 3 * 32 + 3 * 64),
      9 * (16 + 512 + 2048 + 2048 + 8192) + 2 * (16 + 3 * 32 + 3 * 64),
      2 * (16 + 3 * 32 + 3 * 64))),
    # blocks=(2, 2) adds 80->80 twice and 160->160 twice with their batch norms:
    # 9 * (2 * 6400 + 2 * 25600) weights, 2 * 80 + 2 * 160 channels.
    (lambda: applications.CompactResNet(blocks=(2, 2)),
     (725_010 + 9 * 64_000 + 4 * 480, 720_360 + 9 * 64_000 + 1_520 + 2 * 480 + 1_610, 1_520 + 2 * 480)),
    (lambda: applications.CompactResNet(width=8, blocks=(0, 3), include_top=False),
     (9 * (4 + 32 + 128 + 6 * 256) + 4 * (4 + 8 + 16 + 6 * 16),
      9 * (4 + 32 + 128 + 6 * 256) + 2 * (4 + 8 + 16 + 6 * 16), 2 * (4 + 8 + 16 + 6 * 16))),
])
def test_parameter_counts(build, expected):
    assert _counts(build()) == expected


def test_vgg_top_counts_without_building_the_big_dense():
    # keras.applications.VGG16(): 138,357,544 = 14,714,688 + 25088*4096+4096
    # + 4096*4096+4096 + 4096*1000+1000; VGG19 143,667,240.
    model = applications.VGG16(input_shape=(32, 32, 3), classes=10, dense_units=64)
    assert model.count_params() == 14_714_688 + (512 * 64 + 64) + (64 * 64 + 64) + (64 * 10 + 10)
    assert applications.VGG19(include_top=False, input_shape=(32, 32, 3)).count_params() == \
        143_667_240 - 102_764_544 - 16_781_312 - 4_097_000


def test_shapes_classes_and_options():
    m = applications.ResNet18(input_shape=(64, 64, 3), classes=7)
    assert m.output_shape == (None, 7)
    m = applications.ResNet50(include_top=False, pooling="avg", input_shape=(64, 64, 3))
    assert m.output_shape == (None, 2048)
    m = applications.LeNet5(input_shape=(32, 32, 3), classes=5)
    assert m.output_shape == (None, 5)
    m = applications.MnistCNN(input_shape=(32, 32, 3), include_top=False, pooling="max")
    assert m.output_shape == (None, 64)
    with pytest.raises(ValueError, match="too small|smaller than"):
        applications.AlexNet(input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="pretrained"):
        applications.ResNet18(weights="imagenet")
    with pytest.raises(ValueError, match="classes"):
        applications.LeNet5(classes=0)
    for blocks in ((1,), (1, -1), (1.0, 1), 3, (True, 1)):
        with pytest.raises(ValueError, match="blocks"):
            applications.CompactResNet(blocks=blocks)
    with pytest.raises(ValueError, match="pooling"):
        applications.ResNet18(include_top=False, pooling="median")


def test_zoo_models_run_and_load_weights(tmp_path, rng):
    for build, shape in ((applications.LeNet5, (28, 28, 1)),
                         (lambda **kw: applications.ResNet18(classes=4, **kw), (32, 32, 3))):
        model = build(input_shape=shape)
        x = rng.standard_normal((2,) + shape).astype(np.float32)
        out = model.predict(x, verbose=0)
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out.sum(1), 1, rtol=1e-5)
        path = tmp_path / "w.cnnc"
        model.save_weights(path)
        again = build(input_shape=shape, weights=str(path))
        np.testing.assert_array_equal(again.predict(x, verbose=0), out)
    model = applications.ResNet18(classes=4, input_shape=(32, 32, 3))
    model.compile("adam", "sparse_categorical_crossentropy")
    hist = model.fit(rng.standard_normal((8, 32, 32, 3)).astype(np.float32),
                     rng.integers(0, 4, 8), epochs=3, batch_size=4, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]


@pytest.mark.parametrize("build, shape, batch", [
    (applications.InceptionV3, (299, 299, 3), 1),
    (applications.MobileNetV2, (224, 224, 3), 2),
])
def test_inception_and_mobilenet_train_a_step_at_native_size(rng, build, shape, batch):
    model = build(classes=5)
    assert model.input_shape == (None,) + shape and model.output_shape == (None, 5)
    model.compile("sgd", "sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    x = rng.standard_normal((batch,) + shape).astype(np.float32)
    loss = model.train_on_batch(x, rng.integers(0, 5, batch))
    assert np.isfinite(loss)
    changed = [not np.array_equal(a, b) for a, b in zip(before, model.get_weights())]
    assert all(changed[:3]) and changed[-1]     # the first and last layers learned


def test_inception_and_mobilenet_small_inputs_and_options(rng):
    m = applications.InceptionV3(input_shape=(75, 75, 1), classes=3)
    assert m.get_layer("mixed10").output_shape == (None, 1, 1, 2048)
    assert m.predict(rng.standard_normal((2, 75, 75, 1)).astype(np.float32), verbose=0).shape == (2, 3)
    m = applications.MobileNetV2(input_shape=(33, 35, 3), alpha=0.5, include_top=False, pooling="max")
    assert m.output_shape == (None, 1280)
    assert m.get_layer("block_16_project").output_shape == (None, 2, 2, 160)
    assert np.isfinite(m.predict(rng.standard_normal((1, 33, 35, 3)).astype(np.float32),
                                 verbose=0)).all()
    with pytest.raises(ValueError, match="75x75"):
        applications.InceptionV3(input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="32x32"):
        applications.MobileNetV2(input_shape=(31, 64, 3))
    with pytest.raises(ValueError, match="alpha"):
        applications.MobileNetV2(alpha=0)
