"""Checks for notebook 03 (losses and weights): the TV loss, per-layer style weights, and the total objective."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Optional

import torch

from ..layers import STYLE_LAYERS, VGG19_LAYERS
from ..losses import tv_loss
from .framework import (
    CheckResult,
    as_tensor,
    call_student,
    close,
    consistent_factor,
    finish,
    grad_check,
    todo,
    wrong,
)


# ------------------------------------------------------------------------------------------------ TV loss
def check_tv_loss(fn: Callable[[torch.Tensor], torch.Tensor]) -> CheckResult:
    """Check ``fn(image (B, 3, H, W)) -> scalar`` against ``stlib.tv_loss`` (mean squared neighbour differences)."""

    def run() -> str:
        shapes = [(1, 3, 6, 9), (2, 3, 7, 5)]
        inputs = [(torch.rand(*shape, generator=torch.Generator().manual_seed(90 + i)),) for i, shape in enumerate(shapes)]
        for shape, (img,) in zip(shapes, inputs):
            got = as_tensor(call_student(fn, "your tv_loss", img.clone()), "tv_loss")
            expected = tv_loss(img)
            if got.numel() != 1:
                raise wrong(f"it returned shape {tuple(got.shape)}; a loss is one number: average with .mean().")
            got = got.reshape(())
            if close(got, expected):
                continue
            dx = img[..., :, 1:] - img[..., :, :-1]
            dy = img[..., 1:, :] - img[..., :-1, :]
            if close(got, dx.pow(2).mean()) or close(got, dy.pow(2).mean()):
                which = "left-right" if close(got, dx.pow(2).mean()) else "up-down"
                raise wrong(f"only the {which} neighbours are counted; add the mean squared difference in the "
                            "other direction too.")
            if close(got, dx.abs().mean() + dy.abs().mean()):
                raise wrong("you used absolute differences (that is the L1 total variation, also fine as a "
                            "regulariser); stlib squares them: mean(dx ** 2) + mean(dy ** 2).")
            if close(got, dx.pow(2).sum() + dy.pow(2).sum()):
                raise wrong("you summed the squared differences; average each direction with .mean(), so the "
                            "value does not grow with the image size.")
            rx = torch.roll(img, 1, dims=-1) - img
            ry = torch.roll(img, 1, dims=-2) - img
            if close(got, rx.pow(2).mean() + ry.pow(2).mean()):
                raise wrong("torch.roll wraps around, so the last column is compared with the first. Use "
                            "slices instead: image[..., :, 1:] - image[..., :, :-1].")
            crop = (dx[..., :-1, :].pow(2) + dy[..., :, :-1].pow(2)).mean()
            if close(got, crop) or close(got, crop * 2):
                raise wrong("you cropped both differences to a common (H-1) x (W-1) grid; stlib averages each "
                            "direction over all its pairs: mean(dx ** 2) + mean(dy ** 2).")
            k = consistent_factor(fn, inputs, tv_loss)
            if k is not None:
                raise wrong(f"your value is {k:.4g} times stlib's: it is mean(dx ** 2) + mean(dy ** 2), no "
                            "extra factor.")
            raise wrong(f"for an image {shape} you return {float(got):.4g}, stlib.tv_loss gives "
                        f"{float(expected):.4g}. With dx = image[..., :, 1:] - image[..., :, :-1] and dy the "
                        "same along the height: mean(dx ** 2) + mean(dy ** 2).")
        grad_check(lambda x: fn(x).reshape(()), [torch.rand(1, 3, 6, 9, generator=torch.Generator().manual_seed(99))],
                   tv_loss, "tv_loss")
        return "tv_loss matches stlib.tv_loss (values and gradients)."

    return finish("tv_loss", run)


# ------------------------------------------------------------------------------------------------ layer weights
def check_layer_weights(
    weights: Optional[Mapping[str, float]],
    contributions: Optional[Mapping[str, float]] = None,
    max_ratio: float = 10.0,
) -> CheckResult:
    """Check a style-layer weighting ``{layer: weight}``: valid names, weights >= 0, and - given the unweighted
    per-layer losses ``contributions`` - weighted shares within a factor ``max_ratio`` of each other."""

    def run() -> str:
        if weights is None:
            raise todo("set `my_layer_weights` to a dict such as {'relu1_1': 1.0, ...}")
        if not isinstance(weights, Mapping):
            raise wrong(f"expected a dict {{layer name: weight}}, got {type(weights).__name__}.")
        for name, w in weights.items():
            if name not in VGG19_LAYERS:
                raise wrong(f"{name!r} is not a VGG-19 layer name; the style layers are {', '.join(STYLE_LAYERS)}.")
            if not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise wrong(f"the weight of {name} is {w!r}; weights are finite numbers >= 0.")
        missing = [n for n in STYLE_LAYERS if weights.get(n, 0) <= 0]
        if missing:
            raise wrong(f"give every style layer a positive weight; missing or zero: {', '.join(missing)}.")
        if contributions is None:
            return "the weights are valid."
        shares = {n: float(weights[n]) * float(contributions[n]) for n in STYLE_LAYERS}
        total = sum(shares.values())
        big, small = max(shares, key=shares.get), min(shares, key=shares.get)  # type: ignore[arg-type]
        listing = ", ".join(f"{n} {100 * s / total:.0f}%" for n, s in shares.items())
        if shares[small] <= 0 or shares[big] / shares[small] > max_ratio:
            raise wrong(f"shares of the style loss: {listing}. {big} contributes "
                        f"{shares[big] / max(shares[small], 1e-30):.0f}x more than {small}; bring every layer "
                        f"within {max_ratio:g}x of the others (raise {small}'s weight or lower {big}'s).")
        return f"balanced: shares of the style loss {listing}."

    return finish("layer_weights", run)


# ------------------------------------------------------------------------------------------------ total loss
def _total(content: torch.Tensor, style: Mapping[str, torch.Tensor], weights: Mapping[str, float],
           alpha: float, beta: float) -> torch.Tensor:
    return alpha * content + beta * sum(weights[n] * style[n] for n in weights)


def check_total_loss(fn: Callable[..., Any]) -> CheckResult:
    """Check ``fn(content_term, style_terms, layer_weights, alpha, beta) -> alpha * L_c + beta * sum_l w_l E_l``."""

    def run() -> str:
        gen = torch.Generator().manual_seed(130)
        content = torch.rand((), generator=gen) + 0.5
        style = {n: torch.rand((), generator=gen) * 10 ** -i for i, n in enumerate(STYLE_LAYERS)}
        weights = {n: float(w) for n, w in zip(STYLE_LAYERS, (1.0, 3.0, 7.0, 20.0, 50.0))}
        alpha, beta = 2.0, 300.0
        got = as_tensor(call_student(fn, "your total_loss", content, dict(style), dict(weights), alpha, beta), "total_loss")
        if got.numel() != 1:
            raise wrong(f"it returned a tensor of shape {tuple(got.shape)}; the objective is one number.")
        got = got.reshape(())
        expected = _total(content, style, weights, alpha, beta)
        if close(got, expected):
            leaf = {n: v.clone().requires_grad_(True) for n, v in style.items()}
            out = fn(content, leaf, dict(weights), alpha, beta)
            if not isinstance(out, torch.Tensor) or not out.requires_grad:
                raise wrong("the value is right but carries no gradient: keep the sum in torch (no float() or "
                            ".item()), or the optimiser gets nothing to follow.")
            return (f"total_loss = alpha * L_content + beta * sum_l w_l E_l ({float(got):.4g} here). Only the ratio "
                    "beta/alpha moves the optimum: multiplying both by 10 multiplies the whole loss by 10.")
        ones = {n: 1.0 for n in STYLE_LAYERS}
        variants = [
            (_total(content, style, weights, beta, alpha), "alpha and beta are swapped: alpha weights the content "
             "term, beta the style term."),
            (_total(content, style, ones, alpha, beta), "the per-layer weights w_l are missing: multiply each "
             "layer's E_l by layer_weights[layer] before adding them up."),
            (alpha * content + beta * sum(weights[n] * style[n] for n in STYLE_LAYERS) / len(STYLE_LAYERS),
             "you averaged the layers; the style term is the weighted *sum* over layers (the weights already say "
             "how much each counts)."),
            (alpha * content + sum(weights[n] * style[n] for n in STYLE_LAYERS),
             "beta is missing: the weighted style sum is multiplied by beta."),
            (content + beta * sum(weights[n] * style[n] for n in STYLE_LAYERS),
             "alpha is missing: the content term is multiplied by alpha."),
            (alpha * content + sum(beta * weights[n] * style[n] for n in STYLE_LAYERS) * len(STYLE_LAYERS),
             "beta is counted once per layer and again for the total; multiply the weighted sum by beta once."),
            (alpha * content + beta * sum(style[n] for n in STYLE_LAYERS) * sum(weights.values()),
             "you multiplied the sum of the losses by the sum of the weights; weight each layer's loss by its "
             "own weight, then add: sum_l w_l * E_l."),
        ]
        for value, message in variants:
            if close(got, value):
                raise wrong(message)
        raise wrong(f"you return {float(got):.6g}, expected {float(expected):.6g} = alpha * content_term + beta * "
                    "sum over layers of layer_weights[l] * style_terms[l].")

    return finish("total_loss", run)


#: One possible solution of each exercise (shown by ``stlib.checks.solution`` and hidden in the notebooks).
SOLUTIONS: dict[str, str] = {
    "tv_loss": '''
def tv_loss(image):
    """Mean squared difference between horizontally and vertically neighbouring pixels of (B, 3, H, W)."""
    dx = image[..., :, 1:] - image[..., :, :-1]      # left-right neighbours, (B, 3, H, W-1)
    dy = image[..., 1:, :] - image[..., :-1, :]      # up-down neighbours,    (B, 3, H-1, W)
    return (dx ** 2).mean() + (dy ** 2).mean()
''',
    "layer_weights": '''
# One way: weight each layer by 1 / (its unweighted loss), so every layer starts with the same share.
my_layer_weights = {name: 1.0 / per_layer[name] for name in stlib.STYLE_LAYERS}
''',
    "total_loss": '''
def total_loss(content_term, style_terms, layer_weights, alpha, beta):
    """alpha * L_content + beta * sum over layers of w_l * E_l (0-dim tensors in, a 0-dim tensor out)."""
    style_term = sum(layer_weights[name] * style_terms[name] for name in layer_weights)
    return alpha * content_term + beta * style_term
''',
}
