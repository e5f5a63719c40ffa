"""Numbers that describe a picture, for the course's figure claims: similarity to a photo, layout, pattern size.

Each takes images (1, 3, H, W) in [0, 1] (or anything with ``.image``, e.g. a ``StylizeResult``) and returns
a float. They work on luminance (ITU-R BT.601 weights), so a change of palette alone is not a change of layout.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

_LUMA = (0.299, 0.587, 0.114)


def _image(item: Any) -> torch.Tensor:
    image = item.image if hasattr(item, "image") else item
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[:2] != (1, 3):
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"expected one RGB image of shape (1, 3, H, W), got {shape}")
    return image.detach().float().cpu()


def luminance(item: Any) -> torch.Tensor:
    """Brightness (1, 1, H, W) of an RGB image (1, 3, H, W)."""
    image = _image(item)
    weights = torch.tensor(_LUMA).view(1, 3, 1, 1)
    return (image * weights).sum(dim=1, keepdim=True)


def _same_size(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"the two images must have the same size, got {tuple(a.shape[-2:])} and {tuple(b.shape[-2:])}")


def ssim(item: Any, reference: Any, window: int = 11, sigma: float = 1.5) -> float:
    """Mean structural similarity (Wang et al. 2004) of the luminances: 1 = identical, ~0 = unrelated.

    Gaussian window (``window`` px, ``sigma``), constants C1 = 0.01², C2 = 0.03² for a [0, 1] range; the mean
    is over the positions where the window fits inside the image.
    """
    x, y = luminance(item).double(), luminance(reference).double()
    _same_size(x, y)
    coords = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).view(1, 1, window, window)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel)

    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def layout_similarity(item: Any, reference: Any, cells: int = 12) -> float:
    """How much of the reference's layout an image keeps: the correlation (-1 … 1) of their luminances
    averaged over a grid ``cells`` wide - where the light and dark regions lie, not texture or colour."""
    x, y = luminance(item), luminance(reference)
    _same_size(x, y)
    h, w = x.shape[-2:]
    grid = (max(1, round(cells * h / w)), cells) if w >= h else (cells, max(1, round(cells * w / h)))
    a = F.adaptive_avg_pool2d(x, grid).flatten().double()
    b = F.adaptive_avg_pool2d(y, grid).flatten().double()
    a, b = a - a.mean(), b - b.mean()
    denominator = float(a.norm() * b.norm())
    return float(a @ b) / denominator if denominator > 0 else 0.0


def pattern_scale(item: Any, reference: Any = None) -> float:
    """Size in pixels of an image's pattern: the distance at which its luminance's autocorrelation first falls
    below 1/2 (averaged over directions). Fine grain gives ~1 px, large blobs many pixels. With ``reference``
    (the photo, resized to the image), only what was added to it counts: the painted texture, not the layout."""
    x = luminance(item)[0, 0].double()
    if reference is not None:
        ref = _image(reference)
        ref = F.interpolate(ref, size=tuple(x.shape), mode="bilinear", align_corners=False, antialias=True)
        x = x - luminance(ref)[0, 0].double()
    x = x - x.mean()
    h, w = x.shape
    if float(x.abs().max()) == 0.0:
        raise ValueError("a flat image has no pattern to measure")
    # Zero-padded FFT: the linear (not circular) autocorrelation, divided by the overlap at each shift.
    spectrum = torch.fft.rfft2(x, s=(2 * h, 2 * w))
    auto = torch.fft.irfft2(spectrum.abs() ** 2, s=(2 * h, 2 * w))
    ones = torch.fft.rfft2(torch.ones_like(x), s=(2 * h, 2 * w))
    overlap = torch.fft.irfft2(ones.abs() ** 2, s=(2 * h, 2 * w)).clamp_min(1.0)
    auto = auto / overlap
    auto = auto / auto[0, 0]
    dy = torch.arange(2 * h, dtype=torch.float64)
    dx = torch.arange(2 * w, dtype=torch.float64)
    dy = torch.minimum(dy, 2 * h - dy)
    dx = torch.minimum(dx, 2 * w - dx)
    radius = torch.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)
    limit = min(h, w) // 2
    for r in range(1, limit + 1):
        ring = (radius > r - 0.5) & (radius <= r + 0.5)
        value = float(auto[ring].mean())
        if value < 0.5:
            previous = float(auto[(radius > r - 1.5) & (radius <= r - 0.5)].mean()) if r > 1 else 1.0
            return (r - 1) + (previous - 0.5) / max(previous - value, 1e-12)  # linear interpolation
    return float(limit)
