"""Checks for notebook 01 (content representation): the receptive field of a VGG-19 layer, and the content loss."""

from __future__ import annotations

from typing import Callable

import torch

from ..layers import VGG19_LAYERS, receptive_field
from ..losses import content_loss
from .framework import (
    CheckResult,
    as_tensor,
    call_student,
    close,
    consistent_factor,
    factor_sentence,
    finish,
    grad_check,
    seeded_randn,
    wrong,
)


# ------------------------------------------------------------------------------------------------ receptive field
def check_receptive_field(fn: Callable[[str], int]) -> CheckResult:
    """Check ``fn(layer_name) -> pixels`` against ``stlib.layers.receptive_field`` for all 37 VGG-19 layers."""

    def run() -> str:
        for name in VGG19_LAYERS:
            got = call_student(fn, "your receptive_field", name)
            expected = receptive_field(name)
            if isinstance(got, torch.Tensor) and got.numel() == 1:
                got = got.item()
            if not isinstance(got, (int, float)) or isinstance(got, bool):
                raise wrong(f"for {name!r} it returned {got!r}; return a number of pixels (an int).")
            if got == expected:
                continue
            if name.startswith("relu") and got == receptive_field(VGG19_LAYERS[VGG19_LAYERS.index(name) - 1]) + 2:
                raise wrong(f"at {name} you say {got}, expected {expected}: a ReLU works pixel by pixel, so it "
                            "keeps the receptive field of the convolution before it.")
            first_pool = name.startswith("pool") or any(
                n.startswith("pool") for n in VGG19_LAYERS[: VGG19_LAYERS.index(name)])
            if first_pool:
                raise wrong(f"at {name} you say {got}, expected {expected} (the layers before it were right). "
                            "After each 2x2 pooling, neighbouring units are twice as far apart in the input "
                            "(the 'jump' doubles), so every later 3x3 convolution adds 2 * jump pixels and a "
                            "pooling adds 1 * jump.")
            raise wrong(f"at {name} you say {got}, expected {expected}. One pixel sees itself (1); each 3x3 "
                        "convolution adds one pixel on every side (+2).")
        rf = receptive_field("relu4_2")
        return f"receptive_field is right for all 37 layers of VGG-19 (one unit of relu4_2 sees {rf} x {rf} pixels)."

    return finish("receptive_field", run)


# ------------------------------------------------------------------------------------------------ content loss
def check_content_loss(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """Check ``fn(features, target) -> scalar`` against ``stlib.content_loss`` (mean squared error)."""

    def run() -> str:
        shapes = [(1, 8, 6, 5), (2, 4, 3, 7)]
        inputs = [(seeded_randn(*shape, seed=30 + i).relu(), seeded_randn(*shape, seed=40 + i).relu()) for i, shape in enumerate(shapes)]
        for shape, (feats, target) in zip(shapes, inputs):
            got = as_tensor(call_student(fn, "your content_loss", feats.clone(), target.clone()), "content_loss")
            expected = content_loss(feats, target)
            n = feats.numel()
            if got.numel() != 1:
                raise wrong(f"for features {shape} it returned a tensor of shape {tuple(got.shape)}; a loss is "
                            "one number. Average the squared differences over all elements with .mean().")
            got = got.reshape(())
            if close(got, expected):
                continue
            diff = feats - target
            if close(got, 0.5 * diff.pow(2).sum()):
                raise wrong("that is Gatys et al.'s 1/2 * sum of squares - the paper's formula, but stlib "
                            f"(and this exercise) uses the mean: divide by the {n} elements instead of 2.")
            if close(got, diff.pow(2).sum()):
                raise wrong(f"you summed the squared differences; take the mean instead (divide by the {n} "
                            "elements), so the value does not grow with the image size.")
            if close(got, diff.abs().mean()) or close(got, diff.abs().sum()):
                raise wrong("you used absolute differences; the content loss squares them: (F - P) ** 2.")
            if close(got, diff.pow(2).mean().sqrt()) or close(got, diff.norm()):
                raise wrong("you took a square root (a distance); the loss is the mean of the squared "
                            "differences, without the root.")
            if close(got, diff.mean().pow(2)) or close(got, diff.sum().pow(2)):
                raise wrong("you squared after averaging, so positive and negative differences cancel. "
                            "Square each difference first, then take the mean.")
            if any(close(got, v) for v in (diff.mean(), -diff.mean(), diff.sum(), -diff.sum())):
                raise wrong("you averaged the differences themselves, without squaring them: positive and negative "
                            "differences cancel, so features far from the target can score zero (or below). Square "
                            "each difference, then take the mean: ((F - P) ** 2).mean().")
            if close(got, feats.pow(2).mean() - target.pow(2).mean()):
                raise wrong("you subtracted the squares (F ** 2 - P ** 2); square the difference: (F - P) ** 2.")
            if shape[0] > 1 and close(got, diff.pow(2).sum() / diff[0].numel()):
                raise wrong(f"you divided by C*H*W of one image, but there are {shape[0]} images in the batch: "
                            "take the mean over all elements with .mean().")
            k = consistent_factor(fn, inputs, content_loss)
            if k is not None:
                raise wrong(factor_sentence(k, "the content loss is the mean of (F - P) ** 2 over all elements"))
            raise wrong(f"for features {shape} you return {float(got):.4g}, stlib.content_loss gives "
                        f"{float(expected):.4g}. The content loss is the mean over all elements of "
                        "(features - target) ** 2.")
        f, t = seeded_randn(1, 8, 6, 5, seed=50), seeded_randn(1, 8, 6, 5, seed=51)
        grad_check(lambda x, y: fn(x, y).reshape(()), [f, t], content_loss, "content_loss")
        return "content_loss matches stlib.content_loss (values and gradients) on random feature maps."

    return finish("content_loss", run)


#: One possible solution of each exercise (shown by ``stlib.checks.solution`` and hidden in the notebooks).
SOLUTIONS: dict[str, str] = {
    "receptive_field": '''
def receptive_field(layer):
    """Side of the square of input pixels that one unit of `layer` sees."""
    size, jump = 1, 1                                # one pixel; neighbouring units 1 pixel apart
    for name in stlib.VGG19_LAYERS[: stlib.layer_index(layer) + 1]:
        if name.startswith("conv"):                  # 3x3: one more unit on each side
            size += 2 * jump
        elif name.startswith("pool"):                # 2x2, stride 2: one more unit, then units twice as far apart
            size += jump
            jump *= 2
    return size
''',
    "content_loss": '''
def content_loss(features, target):
    """Mean squared difference of two feature maps (B, C, H, W) -> a scalar."""
    return ((features - target) ** 2).mean()
''',
}
