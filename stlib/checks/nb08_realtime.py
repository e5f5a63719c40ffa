"""The check of notebook 08's exercise: instance normalisation, against ``torch.nn.functional.instance_norm``.

``check_instance_norm(fn)`` calls ``fn(x, eps)`` on a seeded batch (3, 4, 5, 6) in which one channel of one
image is constant, and names the likely mistake: batch or layer statistics instead of per-image-and-channel
ones, the unbiased variance (``torch.var``'s default), ``eps`` missing or outside the square root.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from .framework import CheckResult, as_tensor, call_student, finish, wrong

EPS = 1e-5


def _batch(seed: int = 0) -> torch.Tensor:
    """(3, 4, 5, 6): channels with different means and spreads per image; image 1's channel 2 is constant."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 4, 5, 6, generator=g) * torch.rand(3, 4, 1, 1, generator=g).mul(3).add(0.5)
    x = x + torch.randn(3, 4, 1, 1, generator=g) * 2
    x[1, 2] = 0.7
    return x


def _normalise(x: torch.Tensor, dims: tuple[int, ...], eps: float, unbiased: bool = False,
               eps_outside: bool = False) -> torch.Tensor:
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True, unbiased=unbiased)
    return (x - mean) / (var.sqrt() + eps) if eps_outside else (x - mean) / (var + eps).sqrt()


def _close_enough(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Same shape and values to 1e-4 (normalised outputs are of order 1)."""
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=1e-4, atol=1e-4))


def check_instance_norm(fn: Callable[[torch.Tensor, float], Any]) -> CheckResult:
    """Check ``fn(x, eps)`` -> ``(x - mean) / sqrt(var + eps)`` with the mean and (biased) variance of each
    image's each channel over its H x W positions, for x (B, C, H, W)."""

    def run() -> str:
        x = _batch()
        original = x.clone()
        got = as_tensor(call_student(fn, "instance_norm", x, EPS), "instance_norm")
        if not torch.equal(x, original):
            raise wrong("it changed its input in place; compute a new tensor and leave x as it was.")
        expected = F.instance_norm(x, eps=EPS)
        if got.shape != x.shape:
            raise wrong(f"for x of shape {tuple(x.shape)} it returned shape {tuple(got.shape)}; normalising keeps "
                         "the shape (use keepdim=True for the mean and variance).")
        if not torch.isfinite(got).all():
            raise wrong("the output has NaN or inf where a channel is constant (its variance is 0): add eps "
                         "inside the square root, (x - mean) / sqrt(var + eps).")
        mistakes = [
            (_normalise(x, (0, 2, 3), EPS), "these are batch statistics (one mean per channel over the whole batch, "
             "dims (0, 2, 3)): that is batch normalisation. Instance normalisation averages each image's channel "
             "on its own: dims (2, 3)."),
            (_normalise(x, (1, 2, 3), EPS), "these are layer statistics (one mean per image over all its channels, "
             "dims (1, 2, 3)). Instance normalisation keeps one mean and variance per image *and* channel: dims (2, 3)."),
            (_normalise(x, (0, 1, 2, 3), EPS), "one mean and variance for the whole tensor; instance normalisation "
             "needs one per image and channel: dims (2, 3)."),
            (_normalise(x, (2, 3), EPS, unbiased=True), "the variance is the unbiased one (divided by H*W - 1, "
             "torch.var's default); normalisation layers divide by H*W: x.var(dim=(2, 3), keepdim=True, "
             "unbiased=False)."),
            (_normalise(x, (2, 3), EPS, eps_outside=True), "eps is added outside the square root; it goes inside: "
             "sqrt(var + eps)."),
            (_normalise(x, (2, 3), 0.0, eps_outside=True), "eps is missing: add it to the variance inside the square "
             "root (the check's constant channel happened not to divide by zero)."),
        ]
        if not _close_enough(got, expected):
            for value, sentence in mistakes:
                if _close_enough(got, value):
                    raise wrong(sentence)
            raise wrong(f"for x of shape {tuple(x.shape)} the values differ from torch.nn.functional.instance_norm "
                         f"(largest difference {float((got - expected).abs().max()):.3g}).")
        alone = as_tensor(call_student(fn, "instance_norm", x[:1].clone(), EPS), "instance_norm")
        if not _close_enough(alone, got[:1]):
            raise wrong("image 0 normalised alone differs from image 0 normalised in the batch: the statistics "
                         "must come from each image itself.")
        return ("instance_norm matches torch.nn.functional.instance_norm: each image's channels get mean 0 and "
                "variance 1 on their own, so a photo's output never depends on the other photos in its batch.")

    return finish("instance_norm", run)


#: One possible solution (shown by ``stlib.checks.solution`` and hidden in notebook 08).
SOLUTIONS: dict[str, str] = {
    "instance_norm": '''
def instance_norm(x, eps=1e-5):
    """(B, C, H, W) -> same shape: each image's each channel shifted to mean 0 and scaled to variance 1."""
    mean = x.mean(dim=(2, 3), keepdim=True)                   # (B, C, 1, 1): one per image and channel
    var = x.var(dim=(2, 3), keepdim=True, unbiased=False)     # divided by H*W, as normalisation layers do
    return (x - mean) / torch.sqrt(var + eps)
''',
}
