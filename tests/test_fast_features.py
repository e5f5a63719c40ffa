"""The engine's fast forward (stlib.engine.fast_features): the same activations as the plain, taught
``extract_features``, and oracles for each of its parts on tiny tensors."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from stlib.engine.fast_features import _cast_parameters, _Fp32InputConv, _MaxPool2x2, fast_features
from stlib.model import VGG19Features, extract_features


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(1))


def test_fp32_fast_features_and_gradients_equal_the_plain_forward(vgg, image):
    """Two implementations of one forward pass: same activations and same image gradients in float32."""
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_2", "relu5_1"]
    a, b = image.clone().requires_grad_(True), image.clone().requires_grad_(True)
    fast, plain = fast_features(vgg, a, layers), extract_features(vgg, b, layers)
    assert list(fast) == list(plain) == layers
    for name in layers:
        assert torch.equal(fast[name], plain[name]), name
    weights = {name: torch.rand(plain[name].shape, generator=torch.Generator().manual_seed(i))
               for i, name in enumerate(layers)}
    sum((fast[n] * weights[n]).sum() for n in layers).backward()
    sum((plain[n] * weights[n]).sum() for n in layers).backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-7)


def _saved_dtypes(fn) -> set:
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.dtype) or t, lambda t: t):
        fn()
    return set(saved)


def test_only_the_fast_forward_drops_the_pooling_indices(vgg, image):
    """The plain forward is plain nn.MaxPool2d (int64 indices saved); the engine's keeps none."""
    x = image.clone().requires_grad_(True)
    assert torch.int64 in _saved_dtypes(lambda: extract_features(vgg, x, ["relu3_1"]))
    assert torch.int64 not in _saved_dtypes(lambda: fast_features(vgg, x, ["relu3_1"]))


def test_plain_forward_under_autocast_is_plain_autocast(vgg, image):
    """extract_features has no engine tricks: under autocast even conv1_1 runs in bf16 (the engine's does not)."""
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = extract_features(vgg, image, ["conv1_1"])["conv1_1"]
        want = vgg.layers.conv1_1(vgg.normalize(image))
        fast = fast_features(vgg, image, ["conv1_1"])["conv1_1"]
    assert torch.equal(plain, want)
    assert not torch.equal(fast, plain)  # float32 conv1_1, then rounded


def test_fast_features_check_their_input_like_extract_features(vgg):
    with pytest.raises(KeyError):
        fast_features(vgg, torch.rand(1, 3, 32, 32), ["relu4-2"])
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        fast_features(vgg, torch.rand(3, 32, 32), ["relu1_1"])
    with pytest.raises(ValueError, match="too small"):
        fast_features(vgg, torch.rand(1, 3, 10, 10), ["pool5"])
    assert fast_features(vgg, torch.rand(1, 3, 32, 32), []) == {}


# ------------------------------------------------------------- reduced-precision forward: oracles on tiny tensors


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("hw", [(6, 8), (7, 5), (11, 6)])  # odd: the last row/column is dropped, as nn.MaxPool2d does
@pytest.mark.parametrize("band", [1 << 19, 1, 80])  # one pass; bands of one pooled row; of 2-5 rows
def test_maxpool_without_saved_indices_equals_nn_maxpool(dtype, channels_last, hw, band):
    gen = torch.Generator().manual_seed(3)
    # Small integers: many ties inside the 2x2 windows (including all-zero windows, as after a ReLU)
    x = torch.randint(-1, 3, (2, 4, *hw), generator=gen).clamp_min(0).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    grad = torch.randn(2, 4, hw[0] // 2, hw[1] // 2, generator=gen).to(dtype)
    a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    got, want = _MaxPool2x2.apply(a, band, 0), nn.MaxPool2d(2, 2)(b)
    assert torch.equal(got, want)
    got.backward(grad)
    want.backward(grad)
    assert torch.equal(a.grad, b.grad)  # same kernel, same indices: identical, ties included


def test_maxpool_keeps_no_int64_indices():
    x = torch.rand(1, 4, 8, 8, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        _MaxPool2x2.apply(x).sum()
    assert saved and all(t.dtype != torch.int64 for t in saved)


def test_fp32_input_conv_forward_rounds_fp32_conv_and_backward_is_close():
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(1, 3, 9, 7, generator=gen)
    w, b = torch.randn(5, 3, 3, 3, generator=gen), torch.randn(5, generator=gen)
    a, ref = x.clone().requires_grad_(True), x.clone().double().requires_grad_(True)
    got = _Fp32InputConv.apply(a, w, b, w.bfloat16(), (1, 1))
    assert got.dtype == torch.bfloat16
    assert torch.equal(got, F.conv2d(x, w, b, padding=1).bfloat16())  # float32 conv, then rounded
    g = torch.randn(1, 5, 9, 7, generator=gen).bfloat16()
    got.backward(g)
    F.conv2d(ref, w.double(), b.double(), padding=1).backward(g.double())
    assert a.grad.dtype == torch.float32 and a.grad.shape == x.shape
    err = (a.grad.double() - ref.grad).abs().max() / ref.grad.abs().max()
    assert err < 2 ** -6  # a bf16 computation of the exact gradient


def test_cast_parameters_are_cached_and_follow_weight_changes():
    conv = nn.Conv2d(3, 4, 3).requires_grad_(False)
    w1, b1 = _cast_parameters(conv, torch.bfloat16)
    assert w1.dtype == torch.bfloat16 and torch.equal(w1, conv.weight.bfloat16())
    assert _cast_parameters(conv, torch.bfloat16)[0] is w1  # cached
    with torch.no_grad():
        conv.weight.mul_(2)  # in place: a new version
    w2, _ = _cast_parameters(conv, torch.bfloat16)
    assert w2 is not w1 and torch.equal(w2, conv.weight.bfloat16())
    conv.to(memory_format=torch.channels_last)
    w3, _ = _cast_parameters(conv, torch.bfloat16)
    assert w3.is_contiguous(memory_format=torch.channels_last) and torch.equal(w3, conv.weight.bfloat16())
    assert "_stlib_cast" not in str(conv.state_dict().keys())


def test_autocast_features_equal_plain_autocast_modules(vgg, image):
    """Cached bf16 weights and the index-free pooling change nothing in the forward pass under autocast."""
    x = image.clone()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = fast_features(vgg, x, ["relu3_1"])["relu3_1"]
        h = vgg.normalize(x)
        with torch.autocast("cpu", enabled=False):
            h = vgg.layers.conv1_1(h.float())
        h = h.to(torch.bfloat16)
        for name, module in list(vgg.layers.named_children())[1:]:
            h = module(h)
            if name == "relu3_1":
                break
    assert got.dtype == torch.bfloat16
    assert torch.equal(got, h)


def test_trainable_weights_under_autocast_get_gradients():
    model = VGG19Features().eval()  # weights require grad here
    x = torch.rand(1, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fast_features(model, x, ["relu2_1"])["relu2_1"]
    out.float().sum().backward()
    assert model.layers.conv1_1.weight.grad is not None and model.layers.conv2_1.weight.grad is not None
