"""Keras's own examples, run with only the import lines changed
(``import keras`` -> ``import cnnc as keras``, ``from keras import X`` ->
``from cnnc import X``), on shortened data and epochs: keras.io's "Simple
MNIST convnet" and the examples of the functional API guide.

MNIST itself is not on this machine, so the MNIST loader is pointed at a
directory holding real Fashion-MNIST files under MNIST's names (same
format, same sizes)."""
import os
import re
import shutil

import numpy as np
import pytest

FASHION = "/usr/share/datasets/fashion-mnist"


def run_keras_code(source, namespace=None):
    """Execute Keras example code with only its imports changed."""
    source = re.sub(r"^import keras$", "import cnnc as keras", source, flags=re.M)
    source = re.sub(r"^from keras import ", "from cnnc import ", source, flags=re.M)
    assert "keras." in source
    namespace = {} if namespace is None else namespace
    exec(compile(source, "<keras example>", "exec"), namespace)
    return namespace


@pytest.fixture
def mnist_dir(tmp_path, monkeypatch):
    if not os.path.isdir(FASHION):
        pytest.skip("no Fashion-MNIST files on this machine")
    target = tmp_path / "mnist"
    target.mkdir()
    for name in os.listdir(FASHION):
        shutil.copy(os.path.join(FASHION, name), target / name)
    monkeypatch.setenv("CNNC_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return target


def test_top_level_keras_names():
    import cnnc as keras
    for name in ("Sequential", "Model", "Input", "layers", "optimizers", "losses", "metrics",
                 "callbacks", "datasets", "utils", "applications", "ops", "activations",
                 "initializers", "regularizers", "models", "random"):
        assert hasattr(keras, name), name
    assert keras.Sequential is keras.models.Sequential and keras.Model is keras.models.Model
    assert keras.Input is keras.layers.Input
    assert callable(keras.datasets.mnist.load_data)
    assert callable(keras.datasets.fashion_mnist.load_data)
    np.testing.assert_array_equal(keras.utils.to_categorical([1, 0], 3),
                                  [[0, 1, 0], [1, 0, 0]])


# keras.io/examples/vision/mnist_convnet (epochs, data shortened).
MNIST_CONVNET = '''
import numpy as np
import keras
from keras import layers

num_classes = 10
input_shape = (28, 28, 1)

(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train, y_train, x_test, y_test = x_train[:3000], y_train[:3000], x_test[:500], y_test[:500]

x_train = x_train.astype("float32") / 255
x_test = x_test.astype("float32") / 255
x_train = np.expand_dims(x_train, -1)
x_test = np.expand_dims(x_test, -1)
print("x_train shape:", x_train.shape)

y_train = keras.utils.to_categorical(y_train, num_classes)
y_test = keras.utils.to_categorical(y_test, num_classes)

model = keras.Sequential(
    [
        keras.Input(shape=input_shape),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ]
)

model.summary()

batch_size = 128
epochs = 2

model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs,
                    validation_split=0.1, verbose=0)

score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", score[0])
print("Test accuracy:", score[1])
'''


def test_mnist_convnet_example(mnist_dir, capsys):
    ns = run_keras_code(MNIST_CONVNET)
    out = capsys.readouterr().out
    assert "x_train shape: (3000, 28, 28, 1)" in out
    assert "Total params: 34,826" in out  # as the Keras page prints
    loss, accuracy = ns["score"]
    assert accuracy > 0.6 and loss < 1.2  # two short epochs of real images


# keras.io/guides/functional_api: the first model, training, saving.
FUNCTIONAL_MNIST = '''
import numpy as np
import keras
from keras import layers
from keras import ops

inputs = keras.Input(shape=(784,))
dense = layers.Dense(64, activation="relu")
x = dense(inputs)
x = layers.Dense(64, activation="relu")(x)
outputs = layers.Dense(10)(x)
model = keras.Model(inputs=inputs, outputs=outputs, name="mnist_model")
model.summary()

(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
x_train, y_train, x_test, y_test = x_train[:4000], y_train[:4000], x_test[:500], y_test[:500]

x_train = x_train.reshape(4000, 784).astype("float32") / 255
x_test = x_test.reshape(500, 784).astype("float32") / 255

model.compile(
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    optimizer=keras.optimizers.RMSprop(),
    metrics=["accuracy"],
)

history = model.fit(x_train, y_train, batch_size=64, epochs=2, validation_split=0.2, verbose=0)

test_scores = model.evaluate(x_test, y_test, verbose=2)
print("Test loss:", test_scores[0])
print("Test accuracy:", test_scores[1])

model.save("my_model.keras")
del model
# Recreate the exact same model purely from the file:
model = keras.models.load_model("my_model.keras")
'''


def test_functional_guide_first_model(mnist_dir, capsys):
    ns = run_keras_code(FUNCTIONAL_MNIST)
    out = capsys.readouterr().out
    assert 'Model: "mnist_model"' in out and "Total params: 55,050" in out
    assert ns["test_scores"][1] > 0.7
    again = ns["model"].evaluate(ns["x_test"], ns["y_test"], verbose=0)
    np.testing.assert_allclose(again, ns["test_scores"], rtol=1e-5)


# The guide's encoder/decoder, models used as layers, and ensembling.
FUNCTIONAL_AUTOENCODER = '''
import numpy as np
import keras
from keras import layers

encoder_input = keras.Input(shape=(28, 28, 1), name="img")
x = layers.Conv2D(16, 3, activation="relu")(encoder_input)
x = layers.Conv2D(32, 3, activation="relu")(x)
x = layers.MaxPooling2D(3)(x)
x = layers.Conv2D(32, 3, activation="relu")(x)
x = layers.Conv2D(16, 3, activation="relu")(x)
encoder_output = layers.GlobalMaxPooling2D()(x)

encoder = keras.Model(encoder_input, encoder_output, name="encoder")
encoder.summary()

decoder_input = keras.Input(shape=(16,), name="encoded_img")
x = layers.Reshape((4, 4, 1))(decoder_input)
x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
x = layers.Conv2DTranspose(32, 3, activation="relu")(x)
x = layers.UpSampling2D(3)(x)
x = layers.Conv2DTranspose(16, 3, activation="relu")(x)
decoder_output = layers.Conv2DTranspose(1, 3, activation="relu")(x)

decoder = keras.Model(decoder_input, decoder_output, name="decoder")
decoder.summary()

autoencoder_input = keras.Input(shape=(28, 28, 1), name="img")
encoded_img = encoder(autoencoder_input)
decoded_img = decoder(encoded_img)
autoencoder = keras.Model(autoencoder_input, decoded_img, name="autoencoder")
autoencoder.summary()


def get_model():
    inputs = keras.Input(shape=(128,))
    outputs = layers.Dense(1)(inputs)
    return keras.Model(inputs, outputs)


model1 = get_model()
model2 = get_model()
model3 = get_model()

inputs = keras.Input(shape=(128,))
y1 = model1(inputs)
y2 = model2(inputs)
y3 = model3(inputs)
outputs = layers.average([y1, y2, y3])
ensemble_model = keras.Model(inputs=inputs, outputs=outputs)
'''


def test_functional_guide_autoencoder_and_ensemble(rng, capsys):
    ns = run_keras_code(FUNCTIONAL_AUTOENCODER)
    out = capsys.readouterr().out
    # Parameter counts as printed in the guide.
    assert "Total params: 18,672" in out and "Total params: 9,569" in out
    assert "Total params: 28,241" in out
    autoencoder = ns["autoencoder"]
    images = rng.uniform(0, 1, (8, 28, 28, 1)).astype(np.float32)
    autoencoder.compile("adam", "mse")
    first = autoencoder.train_on_batch(images, images)
    for _ in range(5):
        last = autoencoder.train_on_batch(images, images)
    assert last < first
    x = rng.standard_normal((4, 128)).astype(np.float32)
    models = [ns["model1"], ns["model2"], ns["model3"]]
    expected = sum(m.predict(x, verbose=0) for m in models) / 3
    np.testing.assert_allclose(ns["ensemble_model"].predict(x, verbose=0), expected, rtol=1e-5,
                               atol=1e-6)


# The guide's toy ResNet (random images instead of CIFAR-10, one short epoch).
TOY_RESNET = '''
import numpy as np
import keras
from keras import layers

inputs = keras.Input(shape=(32, 32, 3), name="img")
x = layers.Conv2D(32, 3, activation="relu")(inputs)
x = layers.Conv2D(64, 3, activation="relu")(x)
block_1_output = layers.MaxPooling2D(3)(x)

x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_1_output)
x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
block_2_output = layers.add([x, block_1_output])

x = layers.Conv2D(64, 3, activation="relu", padding="same")(block_2_output)
x = layers.Conv2D(64, 3, activation="relu", padding="same")(x)
block_3_output = layers.add([x, block_2_output])

x = layers.Conv2D(64, 3, activation="relu")(block_3_output)
x = layers.GlobalAveragePooling2D()(x)
x = layers.Dense(256, activation="relu")(x)
x = layers.Dropout(0.5)(x)
outputs = layers.Dense(10)(x)

model = keras.Model(inputs, outputs, name="toy_resnet")
model.summary()

x_train = np.random.default_rng(0).uniform(0, 1, (64, 32, 32, 3)).astype("float32")
y_train = keras.utils.to_categorical(np.arange(64) % 10, 10)

model.compile(
    optimizer=keras.optimizers.RMSprop(1e-3),
    loss=keras.losses.CategoricalCrossentropy(from_logits=True),
    metrics=["acc"],
)
history = model.fit(x_train, y_train, batch_size=32, epochs=1, validation_split=0.25, verbose=0)
'''


def test_functional_guide_toy_resnet(capsys):
    ns = run_keras_code(TOY_RESNET)
    assert "Total params: 223,242" in capsys.readouterr().out
    assert set(ns["history"].history) == {"loss", "acc", "val_loss", "val_acc"}


# The guide's custom layer with get_config, rebuilt through custom_objects.
CUSTOM_DENSE = '''
import keras
from keras import layers
from keras import ops


class CustomDense(layers.Layer):
    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1], self.units),
            initializer="random_normal",
            trainable=True,
        )
        self.b = self.add_weight(
            shape=(self.units,), initializer="random_normal", trainable=True
        )

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b

    def get_config(self):
        return {"units": self.units}


inputs = keras.Input((4,))
outputs = CustomDense(10)(inputs)

model = keras.Model(inputs, outputs)
config = model.get_config()

new_model = keras.Model.from_config(config, custom_objects={"CustomDense": CustomDense})
'''


def test_functional_guide_custom_dense(rng, tmp_path):
    ns = run_keras_code(CUSTOM_DENSE)
    model, new_model = ns["model"], ns["new_model"]
    assert new_model.output_shape == (None, 10)
    new_model.set_weights(model.get_weights())
    x = rng.standard_normal((3, 4)).astype(np.float32)
    w, b = model.get_weights()
    np.testing.assert_allclose(new_model.predict(x, verbose=0), x @ w + b, rtol=1e-5,
                               atol=1e-6)
    # Its config has no name: the saved entry's name keeps weights matched.
    import cnnc
    model.save(tmp_path / "custom_dense.cnnc")
    back = cnnc.models.load_model(tmp_path / "custom_dense.cnnc",
                                  custom_objects={"CustomDense": ns["CustomDense"]})
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))


# The guide's "mixing functional and subclassed": a custom RNN layer whose
# call() loops over time with two Dense layers (called once per step) and
# ends in a functional model; then used inside a functional model. cnnc
# inputs have fixed sizes, so Input((None, units)) reads Input((timesteps, units)).
CUSTOM_RNN = '''
import keras
from keras import layers
from keras import ops

units = 32
timesteps = 10
input_dim = 5

inputs = keras.Input((timesteps, units))
x = layers.GlobalAveragePooling1D()(inputs)
outputs = layers.Dense(1)(x)
model = keras.Model(inputs, outputs)


class CustomRNN(layers.Layer):
    def __init__(self):
        super().__init__()
        self.units = units
        self.projection_1 = layers.Dense(units=units, activation="tanh")
        self.projection_2 = layers.Dense(units=units, activation="tanh")
        # Our previously-defined Functional model
        self.classifier = model

    def call(self, inputs):
        outputs = []
        state = ops.zeros(shape=(inputs.shape[0], self.units))
        for t in range(inputs.shape[1]):
            x = inputs[:, t, :]
            h = self.projection_1(x)
            y = h + self.projection_2(state)
            state = y
            outputs.append(y)
        features = ops.stack(outputs, axis=1)
        return self.classifier(features)


rnn_model = CustomRNN()
_ = rnn_model(ops.zeros((1, timesteps, input_dim)))

batch_size = 16


class CustomRNN(layers.Layer):
    def __init__(self):
        super().__init__()
        self.units = units
        self.projection_1 = layers.Dense(units=units, activation="tanh")
        self.projection_2 = layers.Dense(units=units, activation="tanh")
        self.classifier = layers.Dense(1)

    def call(self, inputs):
        outputs = []
        state = ops.zeros(shape=(inputs.shape[0], self.units))
        for t in range(inputs.shape[1]):
            x = inputs[:, t, :]
            h = self.projection_1(x)
            y = h + self.projection_2(state)
            state = y
            outputs.append(y)
        features = ops.stack(outputs, axis=1)
        return self.classifier(features)


# Note that you specify a static batch size for the inputs with the `batch_shape`
# arg, because the inner computation of `CustomRNN` requires a static batch size
# (when you create the `state` zeros tensor).
inputs = keras.Input(batch_shape=(batch_size, timesteps, input_dim))
x = layers.Conv1D(32, 3)(inputs)
outputs = CustomRNN()(x)

model = keras.Model(inputs, outputs)

rnn_model = CustomRNN()
_ = rnn_model(ops.zeros((1, 10, 5)))
'''


def test_functional_guide_custom_rnn_trains_like_torch(rng):
    torch = pytest.importorskip("torch")
    ns = run_keras_code(CUSTOM_RNN)
    assert ns["_"].shape == (1, 10, 1)
    model = ns["model"]
    assert model.output_shape == (None, 8, 1)
    x = rng.standard_normal((16, 10, 5)).astype(np.float32)
    y = rng.standard_normal((16, 8, 1)).astype(np.float32)
    conv = model.layers[1]
    rnn = model.layers[2]
    params = [conv.kernel, conv.bias, rnn.projection_1.kernel, rnn.projection_1.bias,
              rnn.projection_2.kernel, rnn.projection_2.bias, rnn.classifier.kernel,
              rnn.classifier.bias]
    assert model.trainable_weights == params
    p = [torch.tensor(w.value.astype(np.float64), requires_grad=True) for w in params]
    model.compile("sgd", "mse")
    model.train_on_batch(x, y)
    F = torch.nn.functional
    h = F.conv1d(torch.tensor(x, dtype=torch.float64).permute(0, 2, 1),
                 p[0].permute(2, 1, 0), p[1]).permute(0, 2, 1)
    state = torch.zeros(16, 32, dtype=torch.float64)
    outs = []
    for t in range(h.shape[1]):
        state = torch.tanh(h[:, t, :] @ p[2] + p[3]) + torch.tanh(state @ p[4] + p[5])
        outs.append(state)
    out = torch.stack(outs, 1) @ p[6] + p[7]
    ((out - torch.tensor(y, dtype=torch.float64)) ** 2).mean().backward()
    for w, param in zip(params, p):
        np.testing.assert_allclose(w.grad, param.grad.numpy(), rtol=1e-3, atol=1e-5,
                                   err_msg=w.name)
