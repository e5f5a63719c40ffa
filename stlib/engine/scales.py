"""The scale plan: at which sizes ``stylize`` paints, how many steps each, and what each scale starts from.

Coarse-to-fine: a small image is cheap to optimise and fixes the large structures; each finer scale starts
from the coarser result, upsampled, and only has to add detail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import torch
import torch.nn.functional as F

from ..color import match_color
from ..images import resize

ScaleSpec = Union[str, int, Sequence[float], None]  # Union: an alias is evaluated (Python 3.9)
StepSpec = Union[int, Sequence[int]]

#: scales="auto": one scale up to this long edge, where starting coarser does not pay for itself ...
AUTO_SINGLE_SCALE_MAX = 384
#: ... above it, octaves down to the smallest long edge not below this one (512 -> 128, 256, 512); see
#: benchmarks/README.md, 'scales="auto"', for the measurements behind both numbers.
AUTO_COARSEST_MIN = 128
#: No scale is smaller than this long edge: VGG-19's deepest style layer needs 16 px, and a little more context.
SMALLEST_SCALE = 32


def _scale_sizes(size: int, scales: int | Sequence[float] | None) -> list[int]:
    """Long edges for ``scales`` given as a number of octaves or as increasing fractions of ``size``."""
    if scales is None or scales == 1:
        return [size]
    if isinstance(scales, int):
        fractions = [0.5 ** (scales - 1 - i) for i in range(scales)]
    else:
        fractions = [float(s) for s in scales]
    if any(not 0 < f <= 1 for f in fractions) or sorted(fractions) != fractions:
        raise ValueError(f"scales must increase and lie in (0, 1], got {fractions}")
    return [max(SMALLEST_SCALE, round(size * f)) for f in fractions]


def _auto_sizes(size: int) -> list[int]:
    """Octaves below ``size`` down to ``AUTO_COARSEST_MIN`` px, when ``size`` is above ``AUTO_SINGLE_SCALE_MAX``."""
    sizes = [int(size)]
    if size > AUTO_SINGLE_SCALE_MAX:
        while sizes[0] / 2 >= AUTO_COARSEST_MIN:
            sizes.insert(0, round(sizes[0] / 2))
    return sizes


def scale_plan(size: int, scales: ScaleSpec, steps: StepSpec) -> list[tuple[int, int]]:
    """The coarse-to-fine schedule ``[(long edge, steps), ...]`` that ``stylize`` runs, coarsest first.

    ``scales``: None or 1 (one scale), a number of octaves, increasing fractions of ``size``, or "auto":
    sizes above ``AUTO_SINGLE_SCALE_MAX`` px are halved while the half is at least ``AUTO_COARSEST_MIN``
    (512 -> 128, 256, 512) and ``steps`` is split evenly over the scales, so the total number of steps is
    unchanged while most of them run on small, cheap images (see benchmarks/README.md for the measurements).
    Otherwise ``steps`` is per scale: one count for every scale or one count per scale.
    """
    if isinstance(scales, str):
        if scales != "auto":
            raise ValueError(f"scales must be 'auto', a number of octaves or a list of fractions, not {scales!r}")
        sizes = _auto_sizes(size)
        if isinstance(steps, int):
            share, extra = divmod(int(steps), len(sizes))
            counts = [share + (1 if i < extra else 0) for i in range(len(sizes))]  # extra steps go to coarse ones
            return list(zip(sizes, counts))
    else:
        sizes = _scale_sizes(size, scales)
    counts = [int(steps)] * len(sizes) if isinstance(steps, int) else [int(n) for n in steps]
    if len(counts) != len(sizes) or any(n < 0 for n in counts):
        raise ValueError(f"steps must be a count >= 0 or one count per scale ({len(sizes)}), got {steps}")
    return list(zip(sizes, counts))


def initial_image(init: str | torch.Tensor, content: torch.Tensor, style: torch.Tensor, seed: int) -> torch.Tensor:
    """The first scale's starting image, the size of ``content`` (1, 3, H, W) and on its device: the photo, the
    photo in the (first) painting's colours (``"palette"``: its RGB mean and covariance, by
    ``stlib.color.match_color``), seeded uniform noise, the painting resized, or a given image (a warm start).

    ``"palette"`` starts where the cheapest part of the style, its colour statistics, is already matched and the
    photo's every edge is kept: at 256 px (offline weights) L-BFGS reached the same objective in 10-50 % fewer
    steps on five of six photo/painting pairs and as fast on the sixth (benchmarks/README.md, "A palette start")."""
    if isinstance(init, torch.Tensor):
        img = init.detach().float().cpu()
        return resize(img.unsqueeze(0) if img.dim() == 3 else img, tuple(content.shape[-2:])).to(content.device)
    if init == "content":
        return content.clone()
    if init == "palette":
        return match_color(content.detach().cpu(), style.detach().cpu()).to(content.device)
    if init == "style":
        return resize(style.cpu(), tuple(content.shape[-2:])).to(content.device)
    if init == "noise":
        gen = torch.Generator().manual_seed(seed)
        return torch.rand(content.shape, generator=gen).to(content.device)
    raise ValueError(f"init must be 'content', 'palette', 'noise', 'style' or an image tensor, not {init!r}")


def upsampled(image: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A coarser scale's result (1, 3, h, w) resized to the next scale's size, that of ``like`` (1, 3, H, W)."""
    return F.interpolate(image, size=tuple(like.shape[-2:]), mode="bilinear", align_corners=False)
