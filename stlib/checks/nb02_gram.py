"""Checks for notebook 02 (Gram matrices): the Gram matrix, and the style loss of one layer."""

from __future__ import annotations

import math
from typing import Callable

import torch

from ..gram import gram_matrix
from ..losses import style_layer_loss
from .framework import (
    CheckResult,
    Verdict,
    as_tensor,
    call_student,
    close,
    consistent_factor,
    factor_sentence,
    finish,
    grad_check,
    ratio,
    seeded_randn,
    wrong,
)


# ------------------------------------------------------------------------------------------------ gram
def _gram_variants(f: torch.Tensor) -> list[tuple[torch.Tensor, str]]:
    b, c, h, w = f.shape
    raw = gram_matrix(f, normalize=False)
    scrambled = f.reshape(b, h * w, c)
    centred = gram_matrix(f - f.mean(dim=(2, 3), keepdim=True), normalize=False)
    return [
        (centred / (c * h * w), "you subtracted each channel's mean first, which makes it a covariance matrix. "
                                "Gatys et al.'s Gram matrix uses the features as they are (the means carry the "
                                "painting's overall colours and brightness, part of its style): F F^T / (C*H*W)."),
        (centred / (h * w - 1), "that is each image's covariance matrix (torch.cov: means subtracted, divided by "
                                "H*W - 1). The Gram matrix uses the features as they are: F F^T / (C*H*W)."),
        (centred / (h * w), "you subtracted each channel's mean (a covariance matrix) and divided by H*W. The "
                            "Gram matrix uses the features as they are: F F^T / (C*H*W)."),
        (raw, f"no normalisation: your values are C*H*W = {c * h * w} times too large. Divide the sum by "
              "C*H*W (channels x height x width)."),
        (raw / (h * w), f"you divided by H*W; stlib divides by C*H*W, so yours is C = {c} times too large."),
        (raw / c, "you divided by C only; divide by C*H*W (channels x height x width)."),
        (raw / (b * c * h * w), "you also divided by the batch size B; each image's Gram matrix is divided by "
                                "C*H*W only."),
        (torch.bmm(scrambled.transpose(1, 2), scrambled) / (c * h * w),
         "the shape is right but the values are scrambled: reshaping (B, C, H, W) straight to (B, H*W, C) "
         "mixes channels and positions. Reshape to (B, C, H*W) and multiply it by its transpose."),
    ]


def check_gram(fn: Callable[[torch.Tensor], torch.Tensor]) -> CheckResult:
    """Check ``fn(features (B, C, H, W)) -> (B, C, C)`` against ``stlib.gram_matrix`` (normalised by C*H*W)."""

    def run() -> str:
        shapes = [(2, 4, 5, 3), (1, 3, 4, 4), (3, 6, 2, 7)]
        for i, shape in enumerate(shapes):
            f = seeded_randn(*shape, seed=10 + i).relu()  # non-negative, like ReLU features
            b, c, h, w = shape
            got = as_tensor(call_student(fn, "your gram_matrix", f.clone()), "gram_matrix")
            expected = gram_matrix(f)
            if got.shape != expected.shape:
                gs = tuple(got.shape)
                if gs == (c, c):
                    hint = "the batch dimension is missing (or every image was summed into one Gram matrix)"
                    if b == 1:
                        hint = "the batch dimension was squeezed away"
                    raise wrong(f"for features {shape} it returned {gs}; expected (B, C, C) = {tuple(expected.shape)}: "
                                f"{hint}. Keep one Gram matrix per image: reshape to (B, C, H*W) and use "
                                "torch.bmm or the @ operator.")
                if gs == (1, c, c) and b > 1:
                    raise wrong(f"for features {shape} it returned {gs}: one Gram matrix for a batch of {b} "
                                "images. Did you use only the first image, or sum over the batch? Keep one per "
                                "image: reshape to (B, C, H*W) and use torch.bmm or the @ operator.")
                if gs in ((b * c, b * c), (1, b * c, b * c)):
                    raise wrong(f"for features {shape} it returned {gs}: the batch was folded into the "
                                "channels, so channels of different images get correlated. Reshape to "
                                "(B, C, H*W), not (B*C, H*W).")
                if gs in ((b, h * w, h * w), (h * w, h * w)):
                    raise wrong(f"for features {shape} it returned {gs}: that compares positions with "
                                "positions (F^T F). The Gram matrix compares channels: F F^T with F of "
                                "shape (B, C, H*W).")
                raise wrong(f"for features {shape} it returned shape {gs}; expected (B, C, C) = "
                            f"{tuple(expected.shape)}.")
            if not torch.isfinite(got).all():
                raise wrong(f"for features {shape} the result contains NaN or infinity.")
            if close(got, expected):
                continue
            for variant, message in _gram_variants(f):
                if close(got, variant):
                    raise wrong(message)
            k = ratio(got, expected)
            if k is not None and math.isclose(k, -1.0, rel_tol=1e-3):
                raise wrong(f"for features {shape} your values have the right size but the wrong sign: a Gram "
                            "matrix of ReLU features (all >= 0) has no negative entries. Remove the minus sign.")
            if k is not None:
                raise wrong(f"for features {shape} your values are {k:.4g} times stlib's: the products are "
                            f"right but the normalisation is not. Divide the raw sum by C*H*W = {c * h * w}.")
            raise wrong(f"for features {shape} the values differ from stlib.gram_matrix (largest difference "
                        f"{float((got - expected).abs().max()):.3g}). G[b, i, j] should be the sum over "
                        "positions p of F[b, i, p] * F[b, j, p], divided by C*H*W.")
        grad_check(fn, [seeded_randn(2, 4, 5, 3, seed=20)], gram_matrix, "gram_matrix")
        return ("gram_matrix matches stlib.gram_matrix (values, shapes and gradients) on 3 random batches. "
                "From now on the notebook uses stlib.gram_matrix.")

    return finish("gram_matrix", run, solution="gram")


# ------------------------------------------------------------------------------------------------ style loss
def _style_loss_hint(verdict: Verdict) -> Verdict:
    """Explain the two usual crashes: features compared with a Gram matrix, or the Gram of a Gram."""
    text = verdict.message
    if "must match the size" in text or "broadcast" in text:
        return wrong("you compared the feature maps (B, C, H, W) with the target, which is already a Gram "
                     "matrix (1, C, C), so the shapes clash. Turn the features into their Gram matrix first, "
                     "G = stlib.gram_matrix(features), then compare G with target_gram.")
    if "gram_matrix expects features" in text or "not enough values to unpack" in text:
        return wrong("you took the Gram matrix of target_gram, but it already is one (shape (1, C, C)); only "
                     "the features need stlib.gram_matrix.")
    return verdict


def check_style_layer_loss(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """Check ``fn(features (B, C, H, W), target_gram (1, C, C)) -> scalar`` against ``stlib.style_layer_loss``."""

    def run() -> str:
        shapes = [(1, 6, 5, 4), (2, 5, 4, 6)]
        inputs = [(seeded_randn(*shape, seed=60 + i).relu(), gram_matrix(seeded_randn(1, shape[1], 7, 3, seed=70 + i).relu()))
                  for i, shape in enumerate(shapes)]
        for shape, (feats, target) in zip(shapes, inputs):
            try:
                got = call_student(fn, "your style_layer_loss", feats.clone(), target.clone())
            except Verdict as verdict:
                raise _style_loss_hint(verdict) from None
            got = as_tensor(got, "style_layer_loss")
            expected = style_layer_loss(feats, target)
            if got.numel() != 1:
                raise wrong(f"it returned shape {tuple(got.shape)}; a loss is one number: take the .mean() of "
                            "the squared differences between the two Gram matrices.")
            got = got.reshape(())
            if close(got, expected):
                continue
            g = gram_matrix(feats)
            raw = gram_matrix(feats, normalize=False)
            c = shape[1]
            if close(got, (raw - target).pow(2).mean()):
                raise wrong("your Gram matrix is not normalised like the target (which is divided by C*H*W). "
                            "Use stlib.gram_matrix(features), or divide your sum by C*H*W.")
            if close(got, (g - target).pow(2).sum()) or close(got, (g - target).pow(2).sum() / shape[0]):
                raise wrong(f"you summed the squared differences; take the mean over the C*C = {c * c} entries "
                            "(and the batch).")
            if close(got, (g - target).abs().mean()):
                raise wrong("you used absolute differences; square them: (G - A) ** 2.")
            if close(got, (raw / (shape[2] * shape[3]) - target).pow(2).mean()):
                raise wrong("your Gram matrix is divided by H*W, the target by C*H*W, so the two never match. "
                            "Use stlib.gram_matrix(features), which divides by C*H*W like the target.")
            n_hw = shape[2] * shape[3]
            if close(got, (g - target).pow(2).sum() / (4 * c ** 2 * n_hw ** 2)):
                raise wrong("that is the paper's 1 / (4 N^2 M^2) factor, which belongs to raw, unnormalised Gram "
                            "matrices. stlib.gram_matrix already divides by C*H*W, so the loss is simply the mean "
                            "of (G - A) ** 2.")
            if close(got, (g - target).pow(2).mean().sqrt()) or close(got, (g - target).norm()):
                raise wrong("you took a square root (a distance); the loss is the mean of the squared "
                            "differences, without the root.")
            d = g - target
            if any(close(got, v) for v in (d.mean(), -d.mean(), d.sum(), -d.sum())):
                raise wrong("you averaged the differences G - A themselves, without squaring them: positive and "
                            "negative entries cancel, so a very different style can score zero (or below). Square "
                            "each difference, then take the mean: ((G - A) ** 2).mean().")
            k = consistent_factor(fn, inputs, style_layer_loss)
            if k is not None:
                raise wrong(factor_sentence(k, "the loss is mean((G - A) ** 2)") + " (The 1/(4 N^2 M^2) of the "
                            "paper belongs to raw, unnormalised Gram matrices.)")
            raise wrong(f"for features {shape} you return {float(got):.4g}, stlib.style_layer_loss gives "
                        f"{float(expected):.4g}. Compute G = gram_matrix(features), then the mean of "
                        "(G - target_gram) ** 2.")
        target = gram_matrix(seeded_randn(1, 6, 7, 3, seed=80).relu())
        grad_check(lambda x, t: fn(x, t).reshape(()), [seeded_randn(1, 6, 5, 4, seed=81).relu(), target],
                   style_layer_loss, "style_layer_loss")
        return "style_layer_loss matches stlib.style_layer_loss (values and gradients)."

    return finish("style_layer_loss", run)


#: One possible solution of each exercise (shown by ``stlib.checks.solution`` and hidden in the notebooks).
SOLUTIONS: dict[str, str] = {
    "gram": '''
def gram_matrix(features):
    """(B, C, H, W) -> (B, C, C): channel correlations, divided by C*H*W."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)             # one row per channel
    gram = flat @ flat.transpose(1, 2)               # (B, C, H*W) @ (B, H*W, C) -> (B, C, C)
    return gram / (c * h * w)
''',
    "style_layer_loss": '''
def style_layer_loss(features, target_gram):
    """Mean squared difference between the Gram matrix of features (B, C, H, W) and target_gram (1, C, C)."""
    gram = stlib.gram_matrix(features)               # (B, C, C), divided by C*H*W like the target
    return ((gram - target_gram) ** 2).mean()
''',
}
