"""The model zoo (``cnnc.applications``): classic CNN architectures, each
buildable for any input shape and class count, with random weights
(``weights=None``) or weights from a file saved by cnnc."""
from cnnc.applications.alexnet import AlexNet
from cnnc.applications.compact_resnet import CompactResNet
from cnnc.applications.inception_v3 import InceptionV3
from cnnc.applications.lenet import LeNet5
from cnnc.applications.mnist_cnn import MnistCNN
from cnnc.applications.mobilenet_v2 import MobileNetV2
from cnnc.applications.resnet import ResNet18, ResNet34, ResNet50
from cnnc.applications.vgg import VGG16, VGG19

__all__ = ["LeNet5", "MnistCNN", "VGG16", "VGG19", "AlexNet", "ResNet18", "ResNet34", "ResNet50",
           "InceptionV3", "MobileNetV2", "CompactResNet"]
