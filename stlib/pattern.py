"""How large a picture's pattern is, in pixels: the width of its autocorrelation (notebook 06's style scale).

A texture of small brush strokes decorrelates within a few pixels; large swirls stay correlated much further.
``pattern_scale`` measures that distance: the radius at which the radially averaged autocorrelation of the
luminance falls to one half (computed with FFTs, circularly, after removing the mean and a Hann window's
edges). With ``reference`` (the photo), it measures only what was added to it - the painted texture - so the
photo's own layout does not count.
"""

from __future__ import annotations

import torch

from .images import resize


def luminance(image: torch.Tensor) -> torch.Tensor:
    """Rec. 601 luminance of (1, 3, H, W) images in [0, 1]: (H, W), float64."""
    if image.dim() != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"expected one RGB image of shape (1, 3, H, W), got {tuple(image.shape)}")
    rgb = image[0].double()
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def radial_autocorrelation(field: torch.Tensor) -> torch.Tensor:
    """Radially averaged autocorrelation of a 2-D ``field`` (H, W), normalised to 1 at radius 0: (R,), R = min(H, W) // 2.

    The mean is removed and a Hann window tapers the edges, so the circular FFT sees no seam."""
    h, w = field.shape
    window = torch.outer(torch.hann_window(h, periodic=False, dtype=torch.float64),
                         torch.hann_window(w, periodic=False, dtype=torch.float64))
    f = (field - field.mean()) * window
    spectrum = torch.fft.rfft2(f, s=(2 * h, 2 * w))  # zero-padded: linear, not circular, correlation
    auto = torch.fft.irfft2(spectrum.abs() ** 2, s=(2 * h, 2 * w))
    auto = torch.fft.fftshift(auto)
    cy, cx = h, w
    yy, xx = torch.meshgrid(torch.arange(2 * h, dtype=torch.float64) - cy, torch.arange(2 * w, dtype=torch.float64) - cx,
                            indexing="ij")
    radius = torch.sqrt(yy ** 2 + xx ** 2).round().long()
    n = min(h, w) // 2
    sums = torch.zeros(n, dtype=torch.float64).index_add_(0, radius[radius < n], auto[radius < n])
    counts = torch.zeros(n, dtype=torch.float64).index_add_(0, radius[radius < n],
                                                               torch.ones_like(auto[radius < n]))
    profile = sums / counts.clamp(min=1)
    return profile / profile[0] if profile[0] > 0 else profile


def pattern_scale(image: torch.Tensor, reference: torch.Tensor | None = None) -> float:
    """Half-width (pixels) of the autocorrelation of ``image``'s luminance - minus ``reference``'s (resized to
    it), if given: the radius where it first falls to 0.5, interpolated linearly. Larger = a coarser pattern."""
    field = luminance(image)
    if reference is not None:
        field = field - luminance(resize(reference, tuple(image.shape[-2:])))
    profile = radial_autocorrelation(field)
    below = (profile < 0.5).nonzero()
    if len(below) == 0:
        return float(len(profile))
    r = int(below[0])
    a, b = float(profile[r - 1]), float(profile[r])
    return (r - 1) + (a - 0.5) / (a - b)
