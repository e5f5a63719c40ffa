"""Layer names against torchvision's own VGG-19, and receptive fields worked out by hand."""

import pytest
import torch
from torch import nn
from torchvision.models import vgg19

from stlib.layers import (
    CONTENT_LAYERS,
    STYLE_LAYERS,
    VGG19_LAYERS,
    deepest,
    layer_channels,
    layer_index,
    layer_stride,
    receptive_field,
)
from stlib.model import VGG19Features


@pytest.fixture(scope="module")
def tv_features() -> nn.Sequential:
    """torchvision's VGG-19 feature extractor (untrained: only its structure matters here)."""
    return vgg19(weights=None).features


def test_names_cover_every_torchvision_module(tv_features):
    assert len(VGG19_LAYERS) == len(tv_features) == 37
    assert len(set(VGG19_LAYERS)) == 37


def test_name_index_matches_torchvision_module_types_and_channels(tv_features):
    for i, module in enumerate(tv_features):
        name = VGG19_LAYERS[i]
        assert layer_index(name) == i
        kind = {nn.Conv2d: "conv", nn.ReLU: "relu", nn.MaxPool2d: "pool"}[type(module)]
        assert name.startswith(kind), f"features[{i}] is {type(module).__name__} but named {name}"
        if isinstance(module, nn.Conv2d):
            assert layer_channels(name) == module.out_channels, name


def test_channels_of_relu_and_pool_equal_the_conv_before_them(tv_features):
    channels = None
    for i, module in enumerate(tv_features):
        if isinstance(module, nn.Conv2d):
            channels = module.out_channels
        assert layer_channels(VGG19_LAYERS[i]) == channels


def test_stlib_model_mirrors_torchvision_structure(tv_features):
    ours = list(VGG19Features().layers.children())
    for i, (mine, theirs) in enumerate(zip(ours, tv_features)):
        assert type(mine) is type(theirs), i
        if isinstance(theirs, nn.Conv2d):
            assert (mine.in_channels, mine.out_channels) == (theirs.in_channels, theirs.out_channels)
            assert mine.kernel_size == theirs.kernel_size and mine.padding == theirs.padding
        if isinstance(theirs, nn.MaxPool2d):
            assert (mine.kernel_size, mine.stride) == (theirs.kernel_size, theirs.stride)


def test_stride_matches_a_forward_pass(tv_features):
    x = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        for i, module in enumerate(tv_features):
            x = module(x)
            assert 64 // x.shape[-1] == layer_stride(VGG19_LAYERS[i]), VGG19_LAYERS[i]


def test_well_known_indices():
    # torchvision indices quoted in countless tutorials: conv1_1 = 0, relu4_2 = 22, pool5 = 36
    assert layer_index("conv1_1") == 0
    assert layer_index("relu1_1") == 1
    assert layer_index("pool1") == 4
    assert layer_index("relu4_2") == 22
    assert layer_index("pool5") == 36


@pytest.mark.parametrize(
    "name, size",
    [
        ("conv1_1", 3),  # one 3x3 conv
        ("relu1_1", 3),  # a ReLU sees what its conv saw
        ("conv1_2", 5),  # 3 + 2
        ("pool1", 6),  # 5 + 1 (2x2 pool, jump 1)
        ("conv2_1", 10),  # 6 + 2 * 2 (jump 2 after pool1)
        ("relu4_2", 84),  # 52 after pool3, + 2 * 8 per conv at jump 8: 68, 84
        ("pool5", 268),  # 1 + convs 2*(2*1 + 2*2 + 4*4 + 4*8 + 4*16) + pools (1 + 2 + 4 + 8 + 16)
    ],
)
def test_receptive_field_by_hand(name, size):
    assert receptive_field(name) == size


def test_receptive_field_grows_monotonically():
    sizes = [receptive_field(n) for n in VGG19_LAYERS]
    assert sizes == sorted(sizes)


def test_gatys_layers():
    assert CONTENT_LAYERS == ("relu4_2",)
    assert STYLE_LAYERS == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    assert deepest(["relu3_1", "conv5_1", "relu1_1"]) == "conv5_1"
    assert deepest(set(STYLE_LAYERS)) == "relu5_1"


@pytest.mark.parametrize("bad", ["relu4-2", "conv1_3", "relu6_1", "pool0", "RELU4_2", "", "features.22"])
def test_misspelt_names_raise_keyerror_with_examples(bad):
    with pytest.raises(KeyError) as info:
        layer_index(bad)
    message = str(info.value)
    assert repr(bad) in message and "relu4_2" in message and "pool5" in message
    with pytest.raises(KeyError):
        layer_channels(bad)
    with pytest.raises(KeyError):
        receptive_field(bad)
