"""VGG19Features / extract_features / load_vgg19: shapes, early stopping, ReLU semantics, devices, errors."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import stlib
from stlib.layers import VGG19_LAYERS, layer_channels, layer_stride
from stlib.model import IMAGENET_MEAN, IMAGENET_STD, VGG19Features, extract_features, load_vgg19, resolve_device


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(1))


def test_returns_exactly_the_requested_layers_with_right_shapes(vgg, image):
    wanted = ["relu4_2", "conv1_1", "pool2", "relu5_1", "relu1_1"]
    feats = extract_features(vgg, image, wanted)
    assert list(feats) == wanted  # the order asked for, nothing else
    for name, f in feats.items():
        s = layer_stride(name)
        assert f.shape == (2, layer_channels(name), 64 // s, 48 // s), name
        assert f.dtype == torch.float32


def test_duplicates_and_empty_requests(vgg, image):
    assert extract_features(vgg, image, []) == {}
    feats = extract_features(vgg, image, ["relu1_1", "relu1_1"])
    assert list(feats) == ["relu1_1"]


def test_matches_a_manual_forward_pass(vgg, image):
    x = (image - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    conv = vgg.layers.conv1_1
    expected = F.relu(F.conv2d(x, conv.weight, conv.bias, padding=1))
    got = extract_features(vgg, image, ["relu1_1"])["relu1_1"]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(vgg(image, ["relu1_1"])["relu1_1"], got)  # forward() is the same function


def test_runs_only_up_to_the_deepest_requested_layer(vgg, image):
    called = []
    hooks = [m.register_forward_hook(lambda mod, inp, out, n=name: called.append(n))
             for name, m in vgg.layers.named_children()]
    try:
        extract_features(vgg, image, ["relu2_1", "conv1_2"])
    finally:
        for h in hooks:
            h.remove()
    assert called == list(VGG19_LAYERS[: VGG19_LAYERS.index("relu2_1") + 1])


def test_captured_conv_output_keeps_negative_values(vgg, image):
    feats = extract_features(vgg, image, ["conv3_1", "relu3_1"])
    assert (feats["conv3_1"] < 0).any(), "a ReLU overwrote the conv output in place"
    torch.testing.assert_close(feats["relu3_1"], feats["conv3_1"].clamp_min(0))
    assert all(not m.inplace for m in vgg.layers if isinstance(m, nn.ReLU))


def test_parameters_frozen_and_eval_mode(vgg):
    assert not vgg.training
    assert all(not p.requires_grad for p in vgg.parameters())
    assert vgg.weights_source == "random"
    assert len(list(vgg.parameters())) == 32  # 16 convolutions, weight + bias: no classifier


def test_buffers_move_with_to():
    model = VGG19Features()
    assert {name for name, _ in model.named_buffers()} == {"mean", "std"}
    model.to(torch.float64)
    assert model.mean.dtype == torch.float64 and model.std.dtype == torch.float64
    torch.testing.assert_close(model.mean.flatten(), torch.tensor(IMAGENET_MEAN, dtype=torch.float64))


def test_avg_pooling_uses_average_pool(image):
    avg = load_vgg19("random", pooling="avg")
    assert avg.pooling == "avg"
    pools = [m for name, m in avg.layers.named_children() if name.startswith("pool")]
    assert len(pools) == 5 and all(isinstance(m, nn.AvgPool2d) for m in pools)
    relu = extract_features(avg, image, ["relu1_2"])["relu1_2"]
    pooled = extract_features(avg, image, ["pool1"])["pool1"]
    torch.testing.assert_close(pooled, F.avg_pool2d(relu, 2))
    with pytest.raises(ValueError, match="pooling"):
        VGG19Features(pooling="median")


def test_misspelt_layer_raises_keyerror_naming_valid_forms(vgg, image):
    with pytest.raises(KeyError, match="relu4_2"):
        extract_features(vgg, image, ["relu1_1", "relu4-2"])


def test_too_small_image_gives_a_clear_error(vgg):
    tiny = torch.rand(1, 3, 20, 20)
    with pytest.raises(ValueError, match=r"too small to reach pool5.*at least 32"):
        extract_features(vgg, tiny, ["pool5"])
    assert extract_features(vgg, tiny, ["relu2_1"])["relu2_1"].shape[-1] == 10  # shallow layers are fine


def test_wrong_image_shape_is_explained(vgg):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        extract_features(vgg, torch.rand(3, 32, 32), ["relu1_1"])
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        extract_features(vgg, torch.rand(1, 4, 32, 32), ["relu1_1"])


def test_float64_and_integer_images(vgg, image):
    expected = extract_features(vgg, image, ["relu2_1"])["relu2_1"]
    got = extract_features(vgg, image.double(), ["relu2_1"])["relu2_1"]
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match="load_image"):
        extract_features(vgg, (image * 255).to(torch.uint8), ["relu1_1"])


def test_gradients_flow_to_the_image_only(vgg, image):
    x = image[:1].clone().requires_grad_(True)
    extract_features(vgg, x, ["relu3_1"])["relu3_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    auto = resolve_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else auto.type)
    assert resolve_device(None) == auto


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cpu_image_on_cuda_model(image, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # torch's default TF32 convolutions round to 1e-3
    model = load_vgg19("random", device="cuda")
    feats = extract_features(model, image, ["relu2_1"])
    assert feats["relu2_1"].device.type == "cuda"
    cpu = extract_features(load_vgg19("random"), image, ["relu2_1"])["relu2_1"]
    torch.testing.assert_close(feats["relu2_1"].cpu(), cpu, rtol=1e-3, atol=1e-3)


def test_load_vgg19_device_argument():
    model = load_vgg19("random", device="cpu")
    assert model.mean.device.type == "cpu"
    assert isinstance(model, stlib.model.VGG19Features)
