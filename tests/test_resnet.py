"""ResNet baselines of RAN Tables 6 and 7: counts against the papers, layouts, options, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from suite.errors import SuiteError
from suite.measure.complexity import count_params, model_complexity
from suite.models import create_model, get_model_info, list_models
from suite.models.layers import PreActBottleneck
from suite.models.resnet import PreActBasic

CIFAR_BASELINES = ["resnet164_cifar", "resnet1001_cifar", "wrn16_8_cifar", "wrn28_10_cifar"]
IMAGENET_BASELINES = ["resnet152", "resnext101_32x4d", "resnet200"]
SAN_BASELINES = ["resnet26", "resnet38", "resnet50"]  # SAN Table 2: [1,2,4,1], [2,3,5,2], [3,4,6,3] bottlenecks

# Exact counts of the documented builds (10 classes on CIFAR, 1000 on ImageNet).
PARAMS = {
    "resnet164_cifar": 1_703_258,
    "resnet1001_cifar": 10_327_706,
    "wrn16_8_cifar": 10_961_370,
    "wrn28_10_cifar": 36_479_194,  # the widely quoted WRN-28-10 figure
    "resnet152": 60_192_808,
    "resnext101_32x4d": 44_177_704,
    "resnet200": 64_666_152,
    # torchvision's ResNet(Bottleneck, layers) with SASA's lists, as counted on it directly
    "resnet26": 13_696_552,
    "resnet38": 19_626_792,
    "resnet50": 25_557_032,
}


def test_registered_with_their_tables() -> None:
    """A baseline's rows carry the same table label as the attention nets beside it in that table."""
    assert set(CIFAR_BASELINES + IMAGENET_BASELINES) <= set(list_models(family="resnet"))
    table6, table7 = get_model_info("ran92_cifar").paper["source"], get_model_info("ran56").paper["source"]
    for name in CIFAR_BASELINES:
        info = get_model_info(name)
        assert info.input_size == 32 and info.paper["source"] == table6
        assert set(info.paper) == {"params_m", "cifar10_top1_err", "cifar100_top1_err", "source"}
    for name in IMAGENET_BASELINES:
        info = get_model_info(name)
        assert info.input_size == 224 and info.paper["source"] == table7
    assert get_model_info("resnet200").paper["eval_size"] == 320  # as ran92: tested on 320 crops
    assert get_model_info("wrn28_10_cifar").paper["cifar10_top1_err"] == 4.17


@pytest.mark.parametrize("name", list(PARAMS))
def test_exact_params(name: str) -> None:
    assert count_params(name) == PARAMS[name]


@pytest.mark.parametrize("name, gmacs, paper_rel", [
    ("resnet152", 11.559, 0.03),         # stride on the 3x3; 11.33 strided at the 1x1 as in Caffe
    ("resnext101_32x4d", 8.012, 0.03),
    ("resnet200", 15.069, 0.01),
    ("resnet26", 2.356, 0.02),           # SAN Table 2's 2.4 / 3.2 / 4.1 round fvcore's 2.36 / 3.23 / 4.11
    ("resnet38", 3.234, 0.02),
    ("resnet50", 4.112, 0.01),
])
def test_imagenet_gmacs(name: str, gmacs: float, paper_rel: float) -> None:
    measured = model_complexity(name)
    assert measured.gmacs == pytest.approx(gmacs, rel=1e-3)
    assert measured.gmacs == pytest.approx(get_model_info(name).paper["gmacs"], rel=paper_rel)
    assert measured.unsupported_ops == {}


def test_cifar_gmacs() -> None:
    assert model_complexity("wrn28_10_cifar").gmacs == pytest.approx(5.248, rel=1e-3)
    assert model_complexity("wrn16_8_cifar").gmacs == pytest.approx(1.550, rel=1e-3)


# ---------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("name", CIFAR_BASELINES)
def test_cifar_shapes(name: str) -> None:
    # Full width, one odd-sized image (the 1001-layer net is the slowest build here).
    model = create_model(name, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 33, 33)).shape == (1, 7)


@pytest.mark.parametrize("name", IMAGENET_BASELINES)
def test_imagenet_shapes(name: str) -> None:
    model = create_model(name, num_classes=5).eval()
    with torch.no_grad():  # an odd size: every stride and the global pool must cope
        assert model(torch.randn(1, 3, 65, 65)).shape == (1, 5)


# ---------------------------------------------------------------------------------------- layout
def _main_path_depth(model: nn.Module) -> int:
    """He et al.'s depth: convs on the residual path (not the projections) plus the FC."""
    projections = {id(m.shortcut) for m in model.modules() if isinstance(m, (PreActBottleneck, PreActBasic))}
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and id(m) not in projections]
    return len(convs) + 1


@pytest.mark.parametrize("name, depth", [("resnet164_cifar", 164), ("resnet1001_cifar", 1001), ("resnet200", 200)])
def test_depth_is_the_name(name: str, depth: int) -> None:
    assert _main_path_depth(create_model(name)) == depth


@pytest.mark.parametrize("name, depth, k", [("wrn16_8_cifar", 16, 8), ("wrn28_10_cifar", 28, 10)])
def test_wrn_layout(name: str, depth: int, k: int) -> None:
    model = create_model(name)
    blocks = [m for m in model.modules() if isinstance(m, PreActBasic)]
    assert len(blocks) == 3 * (depth - 4) // 6
    # WRN's depth 6n + 4 counts every conv, the three 1x1 projections included, but not the FC.
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == depth
    firsts = [b for b in blocks if b.shortcut is not None]
    assert [(b.conv1.in_channels, b.conv1.out_channels, b.conv1.stride[0]) for b in firsts] == [
        (16, 16 * k, 1), (16 * k, 32 * k, 2), (32 * k, 64 * k, 2)]
    assert all(b.conv2.stride == (1, 1) and b.conv1.kernel_size == (3, 3) for b in blocks)
    assert all(c.bias is None for c in model.modules() if isinstance(c, nn.Conv2d))
    assert model.fc.in_features == 64 * k


def test_wrn_projection_sees_the_preactivated_input() -> None:
    torch.manual_seed(0)
    model = create_model("wrn16_8_cifar").eval()
    block = model.features[0]
    for bn in (block.bn1, block.bn2):  # non-trivial statistics, so BN-ReLU is not the identity
        bn.running_mean.uniform_(-1, 1)
        bn.weight.data.uniform_(-1, 1)
    seen: dict[str, torch.Tensor] = {}

    def record(_module: nn.Module, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        seen["x"] = inputs[0].clone()  # returns None: the hook must not replace the output

    block.shortcut.register_forward_hook(record)
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        out = block(x)
        preact = F.relu(block.bn1(x))
        assert torch.equal(seen["x"], preact)
        assert not torch.allclose(preact, x)
        expected = block.conv2(F.relu(block.bn2(block.conv1(preact)))) + block.shortcut(preact)
        assert torch.allclose(out, expected, atol=1e-5)
        # An identity block adds the raw input, not the pre-activated one.
        same = model.features[1]
        assert same.shortcut is None
        y = torch.randn(2, 128, 8, 8)
        assert torch.allclose(same(y), same.conv2(F.relu(same.bn2(same.conv1(F.relu(same.bn1(y)))))) + y, atol=1e-5)


def test_wrn_dropout() -> None:
    assert not any(isinstance(m, nn.Dropout) for m in create_model("wrn28_10_cifar").modules())  # default 0
    model = create_model("wrn16_8_cifar", dropout=0.3)
    drops = [m.dropout for m in model.modules() if isinstance(m, PreActBasic)]
    assert len(drops) == 6 and all(isinstance(d, nn.Dropout) and d.p == 0.3 for d in drops)
    assert count_params("wrn16_8_cifar", dropout=0.3) == PARAMS["wrn16_8_cifar"]
    with torch.no_grad():  # between the convs: active in train mode only
        x = torch.randn(2, 3, 32, 32)
        model.eval()
        assert torch.equal(model(x), model(x))
        model.train()
        assert not torch.equal(model(x), model(x))


@pytest.mark.parametrize("name", ["wrn16_8_cifar", "wrn28_10_cifar"])
@pytest.mark.parametrize("value, fragment", [(1.0, "[0, 1)"), (-0.1, "[0, 1)"), (1.5, "[0, 1)"),
                                             ("high", "expected a number")])
def test_dropout_out_of_range_names_the_key(name: str, value: object, fragment: str) -> None:
    with pytest.raises(SuiteError) as err:
        create_model(name, dropout=value)
    assert err.value.key == "dropout"
    assert str(err.value).startswith("dropout: ") and fragment in str(err.value)


@pytest.mark.parametrize("name", CIFAR_BASELINES + IMAGENET_BASELINES)
def test_num_classes_must_be_positive(name: str) -> None:
    with pytest.raises(SuiteError) as err:
        create_model(name, num_classes=0)
    assert err.value.key == "num_classes"


def test_resnet200_is_preactivation_with_fb_layout() -> None:
    model = create_model("resnet200")
    units = list(model.features)
    assert len(units) == 3 + 24 + 36 + 3 and all(isinstance(u, PreActBottleneck) for u in units)
    # The stem ends in BN-ReLU (then max-pool), so the first unit has no BN-ReLU of its own.
    assert isinstance(model.stem[1], nn.BatchNorm2d) and isinstance(model.stem[3], nn.MaxPool2d)
    assert units[0].bn1 is None and all(u.bn1 is not None for u in units[1:])
    firsts = [u for u in units if u.shortcut is not None]
    assert [(u.conv1.in_channels, u.conv3.out_channels) for u in firsts] == [
        (64, 256), (256, 512), (512, 1024), (1024, 2048)]
    # The stride sits on the 3x3 conv (and the projection), never on the 1x1s.
    assert [u.conv2.stride[0] for u in firsts] == [1, 2, 2, 2]
    assert all(u.conv1.stride == (1, 1) == u.conv3.stride for u in units)
    assert all(isinstance(u.shortcut, nn.Conv2d) for u in firsts)  # plain 1x1, no BN
    assert isinstance(model.head_norm[0], nn.BatchNorm2d) and model.fc.in_features == 2048


def test_resnet200_first_unit_uses_the_stem_output_as_is() -> None:
    model = create_model("resnet200").eval()
    unit = model.features[0]
    x = torch.rand(1, 64, 9, 9)  # after the stem's ReLU and max-pool: non-negative
    with torch.no_grad():
        expected = unit.conv3(F.relu(unit.bn3(unit.conv2(F.relu(unit.bn2(unit.conv1(x))))))) + unit.shortcut(x)
        assert torch.allclose(unit(x), expected, atol=1e-5)


def test_imagenet_torchvision_options() -> None:
    resnext = create_model("resnext101_32x4d", zero_init_residual=True)
    blocks = [m for m in resnext.modules() if type(m).__name__ == "Bottleneck"]
    assert len(blocks) == 3 + 4 + 23 + 3
    assert blocks[0].conv2.groups == 32 and blocks[0].conv2.in_channels == 128  # 32 x 4d
    assert blocks[-1].conv2.in_channels == 1024
    assert all(torch.count_nonzero(b.bn3.weight) == 0 for b in blocks)
    r152 = create_model("resnet152")
    blocks = [m for m in r152.modules() if type(m).__name__ == "Bottleneck"]
    assert len(blocks) == 3 + 8 + 36 + 3 and blocks[0].conv2.groups == 1
    assert all(torch.count_nonzero(b.bn3.weight) > 0 for b in blocks)


def test_gradient_reaches_every_parameter() -> None:
    # WRN with dropout only: a backward pass through resnet200 takes ~20 s on a CPU.
    torch.manual_seed(0)
    model = create_model("wrn16_8_cifar", dropout=0.3).train()
    F.cross_entropy(model(torch.randn(2, 3, 32, 32)), torch.tensor([0, 1])).backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert dead == []
