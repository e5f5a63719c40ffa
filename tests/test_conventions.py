"""stlib's objective against published settings, by algebra (no ImageNet weights needed).

Each reference below is written from its own formula (the PyTorch tutorial's Gram ``view(a*b, c*d) @ .t() /
(a*b*c*d)`` and its per-conv loss modules; pystiche's Gram / (H*W); Johnson's ``G:div(nElement)``; Gatys's raw
sums with 1/(4 N^2 M^2) and 1/2 sum), on features from a forward pass written here too. stlib's engine
objective with the weights ``stlib.conventions.in_stlib_units`` gives (notebook 03's table) must equal it.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import stlib
from stlib.conventions import (CONVENTIONS, JOHNSON, PYSTICHE, PYTORCH_TUTORIAL, Convention, gatys,
                               in_stlib_units)
from stlib.engine.objective import compute_targets, objective
from stlib.layers import STYLE_LAYERS, layer_channels
from stlib.presets import IMAGENET


def forward_all(vgg, image):
    """Every layer's activation, by walking the network's modules in order (float32, no stlib helpers)."""
    x = (image - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    out = {}
    for name, module in vgg.layers.named_children():
        x = module(x)
        out[name] = x
    return out


def tutorial_objective(vgg, image, content, style):
    """The PyTorch tutorial's total: its loop names convs conv_1, conv_2, ... and puts a ContentLoss after conv_4
    and a StyleLoss after conv_1..conv_5; total = 1e6 * sum(style losses) + 1 * content loss."""
    def gram(t):
        a, b, c, d = t.size()
        f = t.view(a * b, c * d)
        return torch.mm(f, f.t()).div(a * b * c * d)

    def convs(img):
        x = (img - torch.tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)
        feats, i = {}, 0
        for module in vgg.layers.children():  # the tutorial's loop; its ReLUs are out of place too
            x = module(x)
            if isinstance(module, nn.Conv2d):
                i += 1
                feats[f"conv_{i}"] = x
                if i == 5:
                    break
        return feats

    fc, fs, fx = convs(content), convs(style), convs(image)
    style_score = sum(F.mse_loss(gram(fx[f"conv_{i}"]), gram(fs[f"conv_{i}"])) for i in range(1, 6))
    content_score = F.mse_loss(fx["conv_4"], fc["conv_4"])
    return 1e6 * style_score + 1 * content_score


def convention_objective(conv: Convention, feats_x, feats_c, feats_s):
    """A convention's objective from its own formula, on features of the same network and input."""
    def gram(t):
        b, c, h, w = t.shape
        f = t.reshape(b, c, h * w)
        g = f @ f.transpose(1, 2)
        return g / {"C*H*W": c * h * w, "H*W": h * w, "1": 1}[conv.gram_divisor]

    style = 0.0
    for name, v in conv.style_layers.items():
        g, a = gram(feats_x[name]), gram(feats_s[name])
        if conv.style_reduction == "gatys":
            _, c, h, w = feats_x[name].shape
            e = ((g - a) ** 2).sum() / (4 * c ** 2 * (h * w) ** 2)
        else:
            e = ((g - a) ** 2).mean()
        style = style + v * e
    fx, fc = feats_x[conv.content_layer], feats_c[conv.content_layer]
    content = 0.5 * ((fx - fc) ** 2).sum() if conv.content_reduction == "half_sum" else ((fx - fc) ** 2).mean()
    return conv.content_weight * content + conv.style_weight * style


def stlib_objective(vgg, image, content, style, content_layer, weights):
    c_layers = {content_layer: 1.0}
    with torch.no_grad():
        targets = compute_targets(vgg, content, [style], c_layers, weights.style_layers, [1.0])
        terms = objective(vgg, image, targets, c_layers, weights.style_layers, weights.content_weight, 1.0, 0.0)
    return float(terms["total"])


@pytest.fixture
def images(tiny_pair):
    content, style = tiny_pair
    gen = torch.Generator().manual_seed(1)
    image = (content + 0.3 * torch.rand(content.shape, generator=gen)).clamp(0, 1)  # a candidate "x"
    # The painting at the photo's exact shape: Gatys's raw Gram sums grow with the number of positions, so only
    # at equal sizes is his loss a constant times stlib's (stlib's Gram / (C*H*W) is free of the size).
    return image, content, stlib.resize(style, tuple(content.shape[-2:]))


def weights_for(conv, vgg, content):
    with torch.no_grad():
        numel = forward_all(vgg, content)[conv.content_layer].numel()
    return in_stlib_units(conv, {n: layer_channels(n) for n in conv.style_layers}, numel)


def test_the_tutorial_objective_equals_stlibs_at_the_tutorials_layers(vgg, images):
    image, content, style = images
    weights = weights_for(PYTORCH_TUTORIAL, vgg, content)
    assert weights.content_weight == 1 and weights.style_layers == {n: 1e6 for n in PYTORCH_TUTORIAL.style_layers}
    with torch.no_grad():
        reference = float(tutorial_objective(vgg, image, content, style))
    assert stlib_objective(vgg, image, content, style, "conv2_2", weights) == pytest.approx(reference, rel=1e-5)
    # Not the same number by accident: Gatys's layers give another objective.
    assert stlib_objective(vgg, image, content, style, "relu4_2", weights_for(PYSTICHE, vgg, content)) != \
        pytest.approx(reference, rel=1e-2)


@pytest.mark.parametrize("conv", [PYSTICHE, JOHNSON, gatys(1e-3), gatys(1e-4)], ids=lambda c: c.name)
def test_converted_settings_give_the_references_objective(vgg, images, conv):
    image, content, style = images
    with torch.no_grad():
        fx, fc, fs = forward_all(vgg, image), forward_all(vgg, content), forward_all(vgg, style)
        reference = float(convention_objective(conv, fx, fc, fs))
    weights = weights_for(conv, vgg, content)
    assert stlib_objective(vgg, image, content, style, conv.content_layer, weights) == pytest.approx(reference, rel=1e-5)


def test_measured_range_factors_multiply_the_weights():
    base = in_stlib_units(JOHNSON, {n: layer_channels(n) for n in STYLE_LAYERS}, 1000)
    scaled = in_stlib_units(JOHNSON, {n: layer_channels(n) for n in STYLE_LAYERS}, 1000, content_scale=4.0,
                            style_scales={n: 16.0 for n in STYLE_LAYERS})
    assert scaled.content_weight == 4 * base.content_weight
    assert scaled.per_unit_content() == {n: 4 * w for n, w in base.per_unit_content().items()}


def test_pystiche_vs_the_imagenet_preset_as_the_issue_states():
    """pystiche's example in stlib units against IMAGENET (style 1e6 per layer): 1e3 * (1/5) * C^2 / 1e6."""
    py = in_stlib_units(PYSTICHE, {n: layer_channels(n) for n in STYLE_LAYERS}, 1).per_unit_content()
    ratio = {n: py[n] / (IMAGENET.style_weight * IMAGENET.style_layers[n]) for n in STYLE_LAYERS}
    hand = {"relu1_1": 200 * 64 ** 2 / 1e6, "relu2_1": 200 * 128 ** 2 / 1e6, "relu3_1": 200 * 256 ** 2 / 1e6,
            "relu4_1": 200 * 512 ** 2 / 1e6, "relu5_1": 200 * 512 ** 2 / 1e6}
    assert ratio == pytest.approx(hand, rel=1e-12)
    assert [round(r, 1) for r in ratio.values()] == [0.8, 3.3, 13.1, 52.4, 52.4]


def test_every_table_row_is_a_valid_convention():
    assert len({c.name for c in CONVENTIONS}) == len(CONVENTIONS)
    with pytest.raises(ValueError, match="gram_divisor"):
        Convention("x", "relu4_2", {"relu1_1": 1.0}, "C*C", "mean", "mean", 1, 1, "imagenet", "")
    with pytest.raises(ValueError, match="missing"):
        in_stlib_units(PYSTICHE, {"relu1_1": 64}, 10)
