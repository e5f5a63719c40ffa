"""Checks for notebook 03 (losses and weights): the TV loss, per-layer style weights, and the total objective."""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Optional

import torch

from ..engine.objective import compute_targets, objective
from ..layers import STYLE_LAYERS, VGG19_LAYERS
from ..losses import tv_loss
from ..model import VGG19Features, load_vgg19
from .framework import (
    CheckResult,
    as_tensor,
    call_student,
    close,
    consistent_factor,
    factor_sentence,
    finish,
    grad_check,
    todo,
    wrong,
)


# ------------------------------------------------------------------------------------------------ TV loss
def _off_axis_differences(img: torch.Tensor) -> list[torch.Tensor]:
    """TV losses with one difference (or both) taken along the channel or batch axis of ``img`` (B, 3, H, W)."""
    dx = (img[..., :, 1:] - img[..., :, :-1]).pow(2).mean()
    dy = (img[..., 1:, :] - img[..., :-1, :]).pow(2).mean()
    dc = (img[:, 1:] - img[:, :-1]).pow(2).mean()
    out = [dc + dx, dc + dy, dc]
    if img.shape[0] > 1:
        db = (img[1:] - img[:-1]).pow(2).mean()
        out += [db + dx, db + dy, db + dc]
    return out


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
            if close(got, (dx.pow(2).mean() + dy.pow(2).mean()).sqrt()) or close(got, dx.norm() + dy.norm()):
                raise wrong("you took a square root; the TV loss is the mean squared differences themselves: "
                            "mean(dx ** 2) + mean(dy ** 2).")
            if close(got, dx.pow(2).sum() + dy.pow(2).sum()):
                raise wrong("you summed the squared differences; average each direction with .mean(), so the "
                            "value does not grow with the image size.")
            rx = torch.roll(img, 1, dims=-1) - img
            ry = torch.roll(img, 1, dims=-2) - img
            if close(got, rx.pow(2).mean() + ry.pow(2).mean()):
                raise wrong("torch.roll wraps around, so the last column is compared with the first. Use "
                            "slices instead: image[..., :, 1:] - image[..., :, :-1].")
            if any(close(got, v) for v in (dx.mean() + dy.mean(), -(dx.mean() + dy.mean()),
                                           dx.sum() + dy.sum(), -(dx.sum() + dy.sum()))):
                raise wrong("you averaged the differences themselves, without squaring them: brighter-to-darker "
                            "and darker-to-brighter steps cancel, so even noise scores about zero. Square each "
                            "difference, then average: mean(dx ** 2) + mean(dy ** 2).")
            if close(got, (dx.pow(2).sum() + dy.pow(2).sum()) / img.numel()):
                raise wrong("you divided both sums by the number of values in the image; average each direction over its own "
                            "pairs (there is one column fewer of dx and one row fewer of dy): mean(dx ** 2) + "
                            "mean(dy ** 2).")
            along = _off_axis_differences(img)
            if any(close(got, v) for v in along):
                raise wrong("one of your differences runs along the channel (or batch) axis - red minus green - "
                            "not between neighbouring pixels. In (B, 3, H, W) rows are dim 2 and columns dim 3: "
                            "dy = image[..., 1:, :] - image[..., :-1, :] and dx = image[..., :, 1:] - "
                            "image[..., :, :-1] (the `...` keeps you clear of the batch and channel dims).")
            crop = (dx[..., :-1, :].pow(2) + dy[..., :, :-1].pow(2)).mean()
            if close(got, crop) or close(got, crop * 2):
                raise wrong("you cropped both differences to a common (H-1) x (W-1) grid; stlib averages each "
                            "direction over all its pairs: mean(dx ** 2) + mean(dy ** 2).")
            k = consistent_factor(fn, inputs, tv_loss)
            if k is not None:
                raise wrong(factor_sentence(k, "the TV loss is mean(dx ** 2) + mean(dy ** 2)"))
            raise wrong(f"for an image {shape} you return {float(got):.4g}, stlib.tv_loss gives "
                        f"{float(expected):.4g}. With dx = image[..., :, 1:] - image[..., :, :-1] and dy the "
                        "same along the height: mean(dx ** 2) + mean(dy ** 2).")
        grad_check(lambda x: fn(x).reshape(()), [torch.rand(1, 3, 6, 9, generator=torch.Generator().manual_seed(99))],
                   tv_loss, "tv_loss")
        return "tv_loss matches stlib.tv_loss (values and gradients)."

    return finish("tv_loss", run)


# ------------------------------------------------------------------------------------------------ layer weights
#: The exercise's rule: at the start of the run no style layer's share of the style loss exceeds another's by more
#: than this factor. Tight enough that equal weights (Gatys et al.'s 1/5 each) fail with either weights' losses.
MAX_SHARE_RATIO = 2.0


def _as_weight(value: Any) -> Optional[float]:
    """A weight as a float (ints, floats, NumPy scalars, 0-dim tensors), or None if it is not a number."""
    if isinstance(value, bool) or isinstance(value, str):
        return None
    if isinstance(value, torch.Tensor):
        return float(value) if value.numel() == 1 else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _proportional(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    """True when a[n] / b[n] is the same for every style layer."""
    ratios = [a[n] / b[n] for n in STYLE_LAYERS]
    return all(math.isclose(r, ratios[0], rel_tol=1e-3) for r in ratios)


def check_layer_weights(
    weights: Optional[Mapping[str, float]],
    contributions: Optional[Mapping[str, float]] = None,
    max_ratio: float = MAX_SHARE_RATIO,
) -> CheckResult:
    """Check a style-layer weighting ``{layer: weight}``: valid names, weights >= 0, and - given the unweighted
    per-layer losses ``contributions`` - weighted shares within a factor ``max_ratio`` of each other."""

    def run() -> str:
        if weights is None:
            raise todo("set `my_layer_weights` to a dict such as {'relu1_1': 1.0, ...}")
        if not isinstance(weights, Mapping):
            raise wrong(f"expected a dict {{layer name: weight}}, got {type(weights).__name__}.")
        values: dict[str, float] = {}
        for name, w in weights.items():
            if name not in VGG19_LAYERS:
                raise wrong(f"{name!r} is not a VGG-19 layer name; the style layers are {', '.join(STYLE_LAYERS)}.")
            if name not in STYLE_LAYERS:
                raise wrong(f"{name} is a VGG-19 layer, but not one of the five style layers this exercise weights "
                            f"({', '.join(STYLE_LAYERS)}); leave it out.")
            value = _as_weight(w)
            if value is None or not math.isfinite(value) or value < 0:
                raise wrong(f"the weight of {name} is {w!r}; weights are finite numbers >= 0.")
            values[name] = value
        missing = [n for n in STYLE_LAYERS if values.get(n, 0) <= 0]
        if missing:
            raise wrong(f"give every style layer a positive weight; missing or zero: {', '.join(missing)}.")
        if contributions is None:
            return "the weights are valid."
        raw = {n: float(contributions[n]) for n in STYLE_LAYERS}
        shares = {n: values[n] * raw[n] for n in STYLE_LAYERS}
        total = sum(shares.values())
        big, small = max(shares, key=shares.get), min(shares, key=shares.get)  # type: ignore[arg-type]
        listing = ", ".join(f"{n} {100 * s / total:.0f}%" for n, s in shares.items())
        spread = shares[big] / max(shares[small], 1e-30)
        if spread <= max_ratio:
            return f"balanced: shares of the style loss {listing} (the largest {spread:.2g}x the smallest)."
        if _proportional(values, dict.fromkeys(STYLE_LAYERS, 1.0)):
            raise wrong(f"equal weights (every w_l the same, as Gatys et al.'s 1/5) leave the shares as the raw "
                        f"losses E_l have them: {listing}, {big} {spread:.0f}x {small}. That imbalance is what the "
                        "exercise asks you to fix: choose each layer's weight from its own E_l in `per_layer`.")
        if _proportional(values, raw):
            raise wrong(f"shares of the style loss: {listing}. You weighted each layer by its own loss E_l, so a "
                        "large loss gets a large weight and the imbalance is squared. What weight makes w_l * E_l "
                        "the same for every layer?")
        raise wrong(f"shares of the style loss: {listing}. {big} contributes {spread:.1f}x more than {small}; "
                    f"bring every layer within {max_ratio:g}x of the others (raise {small}'s weight or lower "
                    f"{big}'s).")

    return finish("layer_weights", run)


# ------------------------------------------------------------------------------------------------ total loss
#: The total-loss check's problem: a 32 px noise image against another noise image's relu4_2 features and a third
#: one's Gram matrices, with weights chosen from the measured terms so that every wrong formula gives another value.
SIDE, ALPHA, BETA = 32, 2.0, 300.0
LAYER_SHARES = dict(zip(STYLE_LAYERS, (0.1, 0.15, 0.2, 0.25, 0.3)))  # each layer's share of the style term
CONTENT_LAYERS = {"relu4_2": 1.0}


class TotalLossProblem:
    """The engine's objective (``stlib.engine.objective``, what ``stylize`` minimises, TV left out) on
    ``SIDE`` px seeded noise images; ``total(...)`` is its value under any weights, the oracle for every answer."""

    def __init__(self, model: VGG19Features) -> None:
        self.model = model
        gen = torch.Generator().manual_seed(130)
        photo, painting, self.image = (torch.rand(1, 3, SIDE, SIDE, generator=gen).to(model.mean.device)
                                       for _ in range(3))
        self.targets = compute_targets(model, photo, [painting], CONTENT_LAYERS, dict(LAYER_SHARES), [1.0])
        terms = self.terms(dict.fromkeys(STYLE_LAYERS, 1.0), ALPHA, BETA)
        self.content = terms["layers"]["content:relu4_2"].detach()
        self.style = {n: terms["layers"][f"style:{n}"].detach() for n in STYLE_LAYERS}
        # w_l such that layer l carries LAYER_SHARES[l] of a style term 1.5 times the weighted content term
        scale = 1.5 * ALPHA * float(self.content) / BETA
        self.weights = {n: LAYER_SHARES[n] * scale / float(self.style[n]) for n in STYLE_LAYERS}

    def terms(self, weights: Mapping[str, float], alpha: float, beta: float,
              image: Optional[torch.Tensor] = None) -> dict[str, Any]:
        """``objective``'s terms at ``image`` (default the check's image) with these weights, TV weight 0."""
        x = self.image if image is None else image
        return objective(self.model, x, self.targets, CONTENT_LAYERS, weights, alpha, beta, 0.0)

    def total(self, weights: Mapping[str, float], alpha: float, beta: float) -> torch.Tensor:
        """The objective's value (0-dim) under these weights."""
        with torch.no_grad():
            return self.terms(weights, alpha, beta)["total"]

    def mistakes(self) -> list[tuple[torch.Tensor, str]]:
        """The objective under the usual wrong formulas, each with its sentence."""
        w, a, b, n = self.weights, ALPHA, BETA, len(STYLE_LAYERS)
        reversed_w = dict(zip(STYLE_LAYERS, reversed(list(w.values()))))
        return [
            (self.total(w, b, a), "alpha and beta are swapped: alpha weights the content term, beta the style term."),
            (self.total(dict.fromkeys(w, 1.0), a, b), "the per-layer weights w_l are missing: multiply each "
             "layer's E_l by layer_weights[layer] before adding them up."),
            (self.total(w, a, b / n), "you averaged the layers; the style term is the weighted *sum* over layers "
             "(the weights already say how much each counts)."),
            (self.total(w, a, 1.0), "beta is missing: the weighted style sum is multiplied by beta."),
            (self.total(w, 1.0, b), "alpha is missing: the content term is multiplied by alpha."),
            (self.total(w, a, b * n), "beta is counted once per layer and again for the total; multiply the "
             "weighted sum by beta once."),
            (self.total(dict.fromkeys(w, sum(w.values())), a, b), "you multiplied the sum of the losses by the sum "
             "of the weights; weight each layer's loss by its own weight, then add: sum_l w_l * E_l."),
            (self.total(reversed_w, a, b), "you paired weights and losses by position (zip of the two dicts' "
             ".values()), but the two dicts list the layers in different orders here: look each layer's weight up "
             "by its name, layer_weights[name] * style_terms[name]."),
            (self.total(w, 0.0, b), "the content term is missing: add alpha * content_term."),
            (self.total(w, a, 0.0), "the style term is missing: add beta * sum_l w_l * E_l."),
        ]


def check_total_loss(fn: Callable[..., Any], model: Optional[VGG19Features] = None) -> CheckResult:
    """Check ``fn(content_term, style_terms, layer_weights, alpha, beta) -> alpha * L_c + beta * sum_l w_l E_l``
    against the objective ``stylize`` minimises (``stlib.engine.objective``, TV weight 0) on ``model``'s features
    (default ``stlib.load_vgg19()``)."""

    def run() -> str:
        problem = TotalLossProblem(load_vgg19() if model is None else model)
        weights = dict(reversed(list(problem.weights.items())))  # another order than style_terms: look names up
        got = as_tensor(call_student(fn, "your total_loss", problem.content.clone(), dict(problem.style), weights,
                                     ALPHA, BETA), "total_loss")
        if got.numel() != 1:
            raise wrong(f"it returned a tensor of shape {tuple(got.shape)}; the objective is one number.")
        got = got.reshape(()).detach().to(problem.content.device)
        expected = problem.total(problem.weights, ALPHA, BETA)
        if not close(got, expected):
            for value, message in problem.mistakes():
                if close(got, value):
                    raise wrong(message)
            raise wrong(f"you return {float(got):.6g}, expected {float(expected):.6g} = alpha * content_term + beta "
                        "* sum over layers of layer_weights[l] * style_terms[l].")
        _same_gradient(fn, problem, weights)
        return (f"total_loss gives exactly what stylize minimises (stlib.engine.objective, TV left out: "
                f"{float(expected):.4g} here), and its gradient. Only the ratio beta/alpha moves the optimum: "
                "multiplying both by 10 multiplies the whole loss by 10.")

    return finish("total_loss", run)


def _same_gradient(fn: Callable[..., Any], problem: TotalLossProblem, weights: Mapping[str, float]) -> None:
    """The student's sum of the objective's own terms must pass the objective's gradient on to the image."""
    image = problem.image.clone().requires_grad_(True)
    terms = problem.terms(problem.weights, ALPHA, BETA, image)
    (expected,) = torch.autograd.grad(terms["total"], image, retain_graph=True)
    out = fn(terms["layers"]["content:relu4_2"], {n: terms["layers"][f"style:{n}"] for n in STYLE_LAYERS},
             weights, ALPHA, BETA)
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        raise wrong("the value is right but carries no gradient: keep the sum in torch (no float() or .item()), "
                    "or the optimiser gets nothing to follow.")
    (grad,) = torch.autograd.grad(out.reshape(()), image, allow_unused=True)
    if grad is None or not close(grad, expected, rtol=1e-3):
        raise wrong("the value is right but part of it carries no gradient (a term turned into a Python number "
                    "with float() or .item(), or detached): keep every term a tensor.")


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
