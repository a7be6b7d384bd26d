"""torchvision's ResNet-18, VGG-11 and MobileNetV2 architectures written in
plain PyTorch (torchvision is not a dependency), with a width multiplier so
the tests run them small. Random weights; batch-norm statistics randomized
so that inference differs from training."""
import torch
from torch import nn


def randomize_batch_norm(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + identity)


class ResNet18(nn.Module):
    def __init__(self, classes=10, width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        blocks, cin = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            cout = width * 2 ** i
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(cin, classes)

    def features(self, x):
        return self.layers(self.maxpool(torch.relu(self.bn1(self.conv1(x)))))

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


class VGG11(nn.Module):
    """Configuration "A"; the classifier's hidden width and the adaptive
    pooling size scale down with the test input."""

    def __init__(self, classes=10, width=64, hidden=4096, pool=7):
        super().__init__()
        layers, cin = [], 3
        for v in (1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, width * v, 3, padding=1), nn.ReLU(inplace=True)]
                cin = width * v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((pool, pool))
        self.classifier = nn.Sequential(
            nn.Linear(cin * pool * pool, hidden), nn.ReLU(True), nn.Dropout(),
            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(), nn.Linear(hidden, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _conv_bn_relu6(cin, cout, kernel=3, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups,
                                   bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [_conv_bn_relu6(cin, hidden, 1)]
        layers += [_conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.residual else self.conv(x)


def _divisible(v, divisor=8):
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class MobileNetV2(nn.Module):
    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1))

    def __init__(self, classes=10, width_mult=1.0, last_channel=1280):
        super().__init__()
        cin = _divisible(32 * width_mult)
        self.last_channel = _divisible(last_channel * max(1.0, width_mult))
        layers = [_conv_bn_relu6(3, cin, stride=2)]
        for t, c, n, s in self.SETTINGS:
            cout = _divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, s if i == 0 else 1, t))
                cin = cout
        layers.append(_conv_bn_relu6(cin, self.last_channel, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(self.last_channel, classes))

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


class SqueezeExcitation(nn.Module):
    """torchvision's squeeze-and-excitation: pool, two 1x1 convolutions,
    a gate (hard sigmoid, as MobileNetV3), and the channel-wise product."""

    def __init__(self, channels, squeezed):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x):
        scale = self.fc2(torch.relu(self.fc1(self.avgpool(x))))
        return nn.functional.hardsigmoid(scale) * x


class LinearSqueezeExcitation(nn.Module):
    """The other common form: a spatial mean, Linear layers on (N, C), and
    the gate viewed back as (N, C, 1, 1) before the product."""

    def __init__(self, channels, squeezed):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, squeezed), nn.ReLU(),
                                nn.Linear(squeezed, channels), nn.Sigmoid())

    def forward(self, x):
        n, c = x.shape[:2]
        gate = self.fc(x.mean((2, 3))).view(n, c, 1, 1)
        return x * gate


class SqueezeExciteNet(nn.Module):
    """A small CNN with both squeeze-and-excitation forms inside residual
    blocks (SE-ResNet style), and a one-channel map broadcast over the
    channels."""

    def __init__(self, classes=10, width=16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        self.body1 = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1, bias=False),
                                   nn.BatchNorm2d(width), nn.ReLU())
        self.se1 = SqueezeExcitation(width, width // 4)
        self.body2 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, 2, 1, bias=False),
                                   nn.BatchNorm2d(2 * width), nn.ReLU())
        self.se2 = LinearSqueezeExcitation(2 * width, width // 2)
        self.offset = nn.Conv2d(2 * width, 1, 1)
        self.classifier = nn.Linear(2 * width, classes)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.se1(self.body1(x)))
        x = self.se2(self.body2(x))
        x = x - self.offset(x)  # (N, C, H, W) - (N, 1, H, W)
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def export(model, x, path, opset=17):
    """torch.onnx.export with a dynamic batch axis (the TorchScript exporter)."""
    model.eval()
    torch.onnx.export(model, (x,), str(path), input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                      opset_version=opset, dynamo=False)
    return path
