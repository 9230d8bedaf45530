"""The paper's models (SPEC §3) and two larger ones for the longer recipes (SPEC §4), for any number of input
channels and classes. Issue 5, "Models".

- ``mlp``: in_channels·image_size² → 512 → 512 → classes, ReLU (784-512-512-10 on MNIST).
- ``resnet6`` / ``resnet8``: torchvision's ImageNet stem (7×7 conv stride 2, 64 channels; BN; ReLU; 3×3
  max-pool stride 2) and only the first two stages, one block each: BasicBlock (64, 128 channels) / Bottleneck
  (expansion 4, 256 and 512 features); global average pool; linear.
- ``vgg9``: blocks [64, 64], [128, 128], [256, 256, 256] of conv + BN + ReLU, each followed by a 2×2 max-pool;
  global average pool; Linear(256, 256) + BN + ReLU; Linear(256, classes). The authors' convs are 2×2 with
  padding 1 (``kernel_size=2``, default); ``kernel_size=3`` gives the usual 3×3.
- ``resnet18``: the CIFAR variant (3×3 stem, stride 1, no max-pool), BasicBlock [2, 2, 2, 2].
- ``wrn16_8``: WideResNet-16-8 (Zagoruyko & Komodakis 2016), pre-activation blocks, dropout 0 by default.

Convolutions have no bias. Two initialisations (``init``): ``flax``, the authors' Flax NNX defaults (SPEC, "The
authors' code": lecun_normal kernels, zero biases, their BatchNorm momentum; the paper's experiments use it), and
``torch``, torchvision's ResNet recipe (Kaiming-normal fan_out convs, BN weight 1 and bias 0, PyTorch's default
for linear layers).
"""

from __future__ import annotations

import math

from torch import Tensor, nn

MODELS = {"mlp", "resnet6", "resnet8", "vgg9", "resnet18", "wrn16_8"}
INITS = ("flax", "torch")
_OPTIONS = {"vgg9": {"kernel_size": 2}, "wrn16_8": {"dropout": 0.0}}  # model -> option defaults (and init)
TRUNCATED_NORMAL_STD = 0.87962566103423978  # std of a unit normal truncated to [-2, 2] (Flax's variance_scaling)
# BatchNorm momentum in PyTorch's convention (1 - Flax's): VGG uses nnx.BatchNorm's default 0.99, the authors'
# ResNet sets 0.9 (SPEC, "The authors' code"). Models the authors did not build keep PyTorch's 0.1.
FLAX_BN_MOMENTUM = {"vgg9": 0.01, "resnet6": 0.1, "resnet8": 0.1}
FLAX_BN_EPS = 1e-5
VGG9_KERNEL_SIZES = (2, 3)
VGG9_BLOCKS = ((64, 64), (128, 128), (256, 256, 256))
MLP_HIDDEN = 512


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


def _projection(cin: int, cout: int, stride: int) -> nn.Module | None:
    """torchvision's downsample branch (1×1 conv + BN) where the shape changes, else None (identity)."""
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(conv1x1(cin, cout, stride), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    """conv3×3-BN-ReLU-conv3×3-BN, plus the shortcut, then ReLU (He et al. 2016)."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, width, stride), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = conv3x3(width, width), nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.downsample = _projection(cin, width, stride)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + shortcut)


class Bottleneck(nn.Module):
    """conv1×1-BN-ReLU-conv3×3(stride)-BN-ReLU-conv1×1(×4)-BN, plus the shortcut, then ReLU (torchvision's
    V1.5: the stride sits on the 3×3 conv)."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1, self.bn1 = conv1x1(cin, width), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = conv3x3(width, width, stride), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = conv1x1(width, cout), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = _projection(cin, cout, stride)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + shortcut)


class ResNet(nn.Module):
    """Stem, then one stage per entry of ``depths`` (the first at stride 1, the others at stride 2), global
    average pool, linear. ``stem="imagenet"``: 7×7/2 conv + BN + ReLU + 3×3/2 max-pool; ``"cifar"``: 3×3/1
    conv + BN + ReLU."""

    def __init__(
        self, block: type[BasicBlock | Bottleneck], depths: tuple[int, ...], widths: tuple[int, ...], *,
        stem: str, in_channels: int, num_classes: int,
    ) -> None:
        super().__init__()
        if stem == "imagenet":
            first = [
                nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                nn.MaxPool2d(3, stride=2, padding=1),
            ]
        else:
            first = [conv3x3(in_channels, 64), nn.BatchNorm2d(64), nn.ReLU()]
        self.stem = nn.Sequential(*first)
        stages, cin = [], 64
        for i, (depth, width) in enumerate(zip(depths, widths)):
            blocks = []
            for j in range(depth):
                blocks.append(block(cin, width, stride=2 if i > 0 and j == 0 else 1))
                cin = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.pool(self.stages(self.stem(x))))


class VGG9(nn.Module):
    """VGG-9 after the loss-landscape paper, as the RBO authors build it (SPEC §3)."""

    def __init__(self, *, in_channels: int, num_classes: int, kernel_size: int = 2) -> None:
        super().__init__()
        layers, cin = [], in_channels
        for block in VGG9_BLOCKS:
            for cout in block:
                conv = nn.Conv2d(cin, cout, kernel_size, padding=1, bias=False)
                layers += [conv, nn.BatchNorm2d(cout), nn.ReLU()]
                cin = cout
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Sequential(
            nn.Linear(cin, 256), nn.BatchNorm1d(256), nn.ReLU(), nn.Linear(256, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.features(x)))


class WideBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3×3(stride)-BN-ReLU-[dropout]-conv3×3, plus the shortcut (a 1×1 conv
    of the pre-activated input where the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), conv3x3(cin, cout, stride)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), conv3x3(cout, cout)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.shortcut = conv1x1(cin, cout, stride) if stride != 1 or cin != cout else None

    def forward(self, x: Tensor) -> Tensor:
        pre = self.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(pre)
        out = self.dropout(self.relu(self.bn2(self.conv1(pre))))
        return self.conv2(out) + shortcut


class WideResNet(nn.Module):
    """WRN-depth-k: 3×3 conv to 16 channels, three groups of (depth − 4) / 6 blocks at 16k, 32k, 64k channels
    (strides 1, 2, 2), BN, ReLU, global average pool, linear."""

    def __init__(self, depth: int, k: int, *, in_channels: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        n = (depth - 4) // 6
        layers, cin = [conv3x3(in_channels, 16)], 16
        for i, width in enumerate((16 * k, 32 * k, 64 * k)):
            for j in range(n):
                layers.append(WideBlock(cin, width, 2 if i > 0 and j == 0 else 1, dropout))
                cin = width
        layers += [nn.BatchNorm2d(cin), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))


def mlp(*, in_channels: int, num_classes: int, image_size: int) -> nn.Sequential:
    """Flatten, then in_channels·image_size² → 512 → 512 → num_classes with ReLU (PyTorch's default init)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_channels * image_size**2, MLP_HIDDEN), nn.ReLU(),
        nn.Linear(MLP_HIDDEN, MLP_HIDDEN), nn.ReLU(),
        nn.Linear(MLP_HIDDEN, num_classes),
    )


def kaiming_init(model: nn.Module) -> nn.Module:
    """torchvision's ResNet initialisation: Kaiming-normal (fan_out, ReLU) convs, BN weight 1 and bias 0."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def flax_init(model: nn.Module, bn_momentum: float) -> nn.Module:
    """Flax NNX's defaults: Linear and Conv kernels ``lecun_normal`` (a normal truncated to ±2σ, scaled so the
    variance is 1/fan_in), zero biases; BatchNorm scale 1, bias 0, eps 1e-5 and ``bn_momentum`` (PyTorch's
    convention)."""
    for m in model.modules():
        if isinstance(m, nn.Linear | nn.Conv2d):
            std = math.sqrt(1 / m.weight[0].numel()) / TRUNCATED_NORMAL_STD  # fan_in = in_features (× kernel area)
            nn.init.trunc_normal_(m.weight, std=std, a=-2 * std, b=2 * std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
            m.momentum, m.eps = bn_momentum, FLAX_BN_EPS
    return model


def _initialise(name: str, model: nn.Module, init: str) -> nn.Module:
    if init not in INITS:
        raise ValueError(f"model init={init!r} is unknown; allowed: {', '.join(INITS)}")
    if init == "flax":
        return flax_init(model, FLAX_BN_MOMENTUM.get(name, 0.1))
    return model if name == "mlp" else kaiming_init(model)


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")


def build_model(name: str, *, in_channels: int, num_classes: int, image_size: int, init: str = "torch",
                **options) -> nn.Module:
    """The model ``name`` (one of :data:`MODELS`) for ``in_channels``-channel ``image_size``² images and
    ``num_classes`` classes, initialised by ``init`` (:data:`INITS`). Options: ``vgg9``: ``kernel_size`` 2
    (default, the authors') or 3; ``wrn16_8``: ``dropout`` in [0, 1) (default 0)."""
    return _initialise(name, _build(name, in_channels=in_channels, num_classes=num_classes, image_size=image_size,
                                    **options), init)


def _build(name: str, *, in_channels: int, num_classes: int, image_size: int, **options) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"model name={name!r} is unknown; allowed: {', '.join(sorted(MODELS))}")
    sizes = {"in_channels": in_channels, "num_classes": num_classes}
    for key, value in {**sizes, "image_size": image_size}.items():
        _positive_int(key, value)
    allowed = _OPTIONS.get(name, {})
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"model {name!r} has no option(s) {unknown}; allowed: {sorted(allowed) or 'none'}")
    opts = {**allowed, **options}

    if name == "mlp":
        return mlp(**sizes, image_size=image_size)
    if name == "vgg9":
        kernel_size = opts["kernel_size"]
        if isinstance(kernel_size, bool) or kernel_size not in VGG9_KERNEL_SIZES:
            raise ValueError(f"vgg9 kernel_size={kernel_size!r} is not allowed; allowed: {VGG9_KERNEL_SIZES}")
        return VGG9(**sizes, kernel_size=kernel_size)
    if name == "wrn16_8":
        dropout = opts["dropout"]
        if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
            raise ValueError(f"wrn16_8 dropout={dropout!r} must be a number in [0, 1)")
        return WideResNet(16, 8, **sizes, dropout=float(dropout))
    block, depths, widths, stem = {
        "resnet6": (BasicBlock, (1, 1), (64, 128), "imagenet"),
        "resnet8": (Bottleneck, (1, 1), (64, 128), "imagenet"),
        "resnet18": (BasicBlock, (2, 2, 2, 2), (64, 128, 256, 512), "cifar"),
    }[name]
    return ResNet(block, depths, widths, stem=stem, **sizes)
