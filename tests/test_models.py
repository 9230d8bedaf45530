"""experiments.models: exact parameter counts, shapes, the torchvision reference, options and errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1, resnet18

from experiments.models import MODELS, build_model

# (name, in_channels, image_size, num_classes, options) -> trainable parameters, counted once and frozen here.
PARAMETERS = [
    ("mlp", 1, 28, 10, {}, 669_706),
    ("mlp", 3, 32, 10, {}, 1_841_162),
    ("resnet6", 1, 28, 10, {}, 308_682),
    ("resnet6", 3, 32, 10, {}, 314_954),
    ("resnet8", 3, 32, 10, {}, 469_066),
    ("resnet8", 3, 32, 100, {}, 515_236),
    ("vgg9", 1, 28, 10, {}, 841_482),
    ("vgg9", 3, 32, 10, {}, 841_994),
    ("vgg9", 3, 32, 100, {}, 865_124),
    ("vgg9", 3, 32, 10, {"kernel_size": 3}, 1_805_514),
    ("resnet18", 3, 32, 10, {}, 11_173_962),  # the usual CIFAR ResNet-18 figure
    ("wrn16_8", 3, 32, 10, {}, 10_961_370),  # WRN-16-8's 11.0M (Zagoruyko & Komodakis 2016)
]


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name, channels, size, classes, options, expected", PARAMETERS)
def test_parameter_counts(name, channels, size, classes, options, expected):
    model = build_model(name, in_channels=channels, num_classes=classes, image_size=size, **options)
    assert _count(model) == expected


def test_mlp_and_resnet6_counts_by_hand():
    mlp = 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10
    assert mlp == 669_706
    bn = 2  # weight and bias per channel
    stem = 3 * 64 * 7 * 7 + bn * 64
    stage1 = 2 * (64 * 64 * 9 + bn * 64)
    stage2 = 64 * 128 * 9 + 128 * 128 * 9 + 2 * bn * 128 + 64 * 128 + bn * 128  # two convs + 1×1 downsample
    assert stem + stage1 + stage2 + 128 * 10 + 10 == 314_954


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("channels, size, classes", [(1, 28, 10), (3, 32, 100)])
def test_forward_shapes(name, channels, size, classes):
    model = build_model(name, in_channels=channels, num_classes=classes, image_size=size)
    out = model(torch.rand(2, channels, size, size))
    assert out.shape == (2, classes) and out.dtype == torch.float32 and torch.isfinite(out).all()


def _reference_resnet(name: str) -> nn.Module:
    """The same network assembled from torchvision's own modules."""
    if name == "resnet18":
        tv = resnet18(num_classes=10)
        tv.conv1, tv.maxpool = nn.Conv2d(3, 64, 3, padding=1, bias=False), nn.Identity()
        return tv
    block, width = (BasicBlock, 128) if name == "resnet6" else (Bottleneck, 512)
    cin = 64 * block.expansion
    stages = nn.Sequential(
        block(64, 64, downsample=None if cin == 64 else nn.Sequential(conv1x1(64, cin), nn.BatchNorm2d(cin))),
        block(cin, 128, stride=2, downsample=nn.Sequential(conv1x1(cin, width, 2), nn.BatchNorm2d(width))),
    )
    stem = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    return nn.Sequential(*stem, stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


@pytest.mark.parametrize("name", ["resnet6", "resnet8", "resnet18"])
def test_resnets_match_torchvision_blocks(name):
    ours = build_model(name, in_channels=3, num_classes=10, image_size=32).eval()
    ref = _reference_resnet(name).eval()
    ours_state, ref_state = ours.state_dict(), ref.state_dict()
    assert [v.shape for v in ours_state.values()] == [v.shape for v in ref_state.values()]
    ref.load_state_dict(dict(zip(ref_state, ours_state.values())))
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(ours(x), ref(x))


def test_vgg9_kernel_sizes():
    x = torch.rand(2, 3, 32, 32)
    two = build_model("vgg9", in_channels=3, num_classes=10, image_size=32)
    three = build_model("vgg9", in_channels=3, num_classes=10, image_size=32, kernel_size=3)
    convs = [m for m in two.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 7 and all(c.kernel_size == (2, 2) and c.padding == (1, 1) and c.bias is None for c in convs)
    assert two.features(x).shape == (2, 256, 6, 6)  # 2×2 kernels with padding 1 grow each map by one pixel
    assert three.features(x).shape == (2, 256, 4, 4)
    assert sum(isinstance(m, nn.BatchNorm1d) for m in two.modules()) == 1


def test_kaiming_init_as_torchvision():
    model = build_model("resnet18", in_channels=3, num_classes=10, image_size=32)
    conv = model.stages[3][1].conv2  # 512 → 512, 3×3: fan_out = 4608
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (512 * 9)), rel=0.02)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    assert not any(isinstance(m, nn.Conv2d) and m.bias is not None for m in model.modules())


def test_wrn_dropout_option():
    plain = build_model("wrn16_8", in_channels=3, num_classes=10, image_size=32)
    dropped = build_model("wrn16_8", in_channels=3, num_classes=10, image_size=32, dropout=0.3)
    assert not any(isinstance(m, nn.Dropout) for m in plain.modules())
    assert sum(isinstance(m, nn.Dropout) for m in dropped.modules()) == 6  # one per block, 3 groups × 2


@pytest.mark.parametrize(
    "name, kwargs, match",
    [
        ("resnet50", {}, "allowed: mlp, resnet18, resnet6, resnet8, vgg9, wrn16_8"),
        ("vgg9", {"kernel_size": 5}, r"kernel_size=5 .*\(2, 3\)"),
        ("mlp", {"kernel_size": 3}, r"no option\(s\) \['kernel_size'\]; allowed: none"),
        ("resnet6", {"in_channels": 0}, "in_channels=0 must be a positive integer"),
        ("wrn16_8", {"dropout": 1.0}, r"dropout=1.0 must be a number in \[0, 1\)"),
    ],
)
def test_errors(name, kwargs, match):
    sizes = {"in_channels": 3, "num_classes": 10, "image_size": 32}
    with pytest.raises(ValueError, match=match):
        build_model(name, **{**sizes, **kwargs})


@pytest.mark.parametrize("name, momentum", [("mlp", None), ("vgg9", 0.01), ("resnet6", 0.1), ("resnet8", 0.1)])
def test_flax_init_is_the_authors(name, momentum):
    """lecun_normal kernels (variance 1/fan_in, truncated at 2σ), zero biases, the authors' BatchNorm momentum."""
    torch.manual_seed(0)
    model = build_model(name, in_channels=1, num_classes=10, image_size=28, init="flax")
    layers = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    for m in layers:
        fan_in = m.weight[0].numel()
        w = m.weight.detach() * math.sqrt(fan_in)  # unit variance after rescaling
        if w.numel() >= 4096:
            assert w.var().item() == pytest.approx(1.0, rel=0.08)
        assert w.abs().max().item() <= 2 / 0.87962566103423978 + 1e-5  # truncated at ±2σ of the raw normal
        assert m.bias is None or torch.all(m.bias == 0)
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert all(b.momentum == momentum and b.eps == 1e-5 for b in bns) and (momentum is None) == (not bns)


def test_torch_init_differs_from_flax():
    torch.manual_seed(0)
    flax = build_model("mlp", in_channels=1, num_classes=10, image_size=28, init="flax")
    torch.manual_seed(0)
    default = build_model("mlp", in_channels=1, num_classes=10, image_size=28, init="torch")
    fan_in = 784
    assert flax[1].weight.std().item() == pytest.approx(math.sqrt(1 / fan_in), rel=0.03)
    assert default[1].weight.std().item() == pytest.approx(math.sqrt(1 / (3 * fan_in)), rel=0.03)  # uniform ±1/√fan_in
    assert torch.all(flax[1].bias == 0) and torch.any(default[1].bias != 0)
    with pytest.raises(ValueError, match="init='jax' is unknown; allowed: flax, torch"):
        build_model("mlp", in_channels=1, num_classes=10, image_size=28, init="jax")
