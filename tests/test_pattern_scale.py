"""``stlib.measures.pattern_scale`` against patterns of known size: it must grow in proportion to them."""

import math

import pytest
import torch
import torch.nn.functional as F

from stlib.measures import pattern_scale

SIDE = 128


def stripes(period: float) -> torch.Tensor:
    x = torch.arange(SIDE, dtype=torch.float64)
    row = 0.5 + 0.4 * torch.cos(2 * math.pi * x / period)
    return row.expand(SIDE, SIDE).float().expand(1, 3, SIDE, SIDE).clone()


def blobs(sigma: int, seed: int = 0) -> torch.Tensor:
    """White noise blurred by a Gaussian of ``sigma`` px: blobs of about that size."""
    noise = torch.randn(1, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    k = torch.exp(-torch.arange(-4 * sigma, 4 * sigma + 1, dtype=torch.float64) ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    b = F.conv2d(F.conv2d(noise, k.view(1, 1, 1, -1), padding=(0, 4 * sigma)), k.view(1, 1, -1, 1), padding=(4 * sigma, 0))
    return (0.5 + 0.1 * b / b.std()).float().expand(1, 3, SIDE, SIDE).clone()


def test_the_width_grows_in_proportion_to_the_pattern():
    for make, sizes in ((stripes, (8, 16, 32)), (blobs, (2, 4, 8))):
        widths = [pattern_scale(make(s)) for s in sizes]
        for small, large in zip(widths, widths[1:]):
            assert large / small == pytest.approx(2.0, rel=0.2), (make.__name__, widths)


def test_a_reference_removes_what_the_photo_already_had():
    photo = blobs(8, seed=1)
    texture = blobs(2, seed=2) - 0.5
    painted = (photo + texture).clamp(0, 1)
    assert pattern_scale(painted, reference=photo) == pytest.approx(pattern_scale(texture + 0.5), rel=0.1)
    assert pattern_scale(painted) > 1.5 * pattern_scale(painted, reference=photo)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        pattern_scale(torch.rand(3, 32, 32))
