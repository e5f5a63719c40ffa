"""Colour preservation (Gatys et al., "Preserving Color in Neural Artistic Style Transfer", 2016).

Two ways to keep the photo's colours while taking the painting's texture:
- *luminance-only transfer*: stylise only the brightness channel Y of YIQ, then put the photo's colour
  channels I and Q back (``rgb_to_yiq`` / ``yiq_to_rgb``, ``luminance_only``, ``recombine_color``);
- *colour histogram matching*: first recolour the painting so its mean and covariance of RGB values match
  the photo's (``match_color``), then transfer as usual.
All functions take and return images ``(B, 3, H, W)`` in [0, 1].
"""

from __future__ import annotations

import torch

# NTSC YIQ transform (rows: Y, I, Q).
_RGB_TO_YIQ = torch.tensor(
    [[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]]
)


def _apply(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix.to(image), image)


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    """RGB (B, 3, H, W) -> YIQ (B, 3, H, W): Y is brightness in [0, 1], I and Q are colour offsets."""
    return _apply(_RGB_TO_YIQ, image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """YIQ (B, 3, H, W) -> RGB (B, 3, H, W), not clamped."""
    return _apply(torch.linalg.inv(_RGB_TO_YIQ), image)


def luminance_only(image: torch.Tensor, like: "torch.Tensor | None" = None) -> torch.Tensor:
    """A grey image (B, 3, H, W) of the luminance of ``image``; if ``like`` is given, its Y mean/std are matched to ``like``'s."""
    y = rgb_to_yiq(image)[:, :1]
    if like is not None:
        y_ref = rgb_to_yiq(like)[:, :1]
        y = (y - y.mean()) / (y.std() + 1e-8) * y_ref.std() + y_ref.mean()
    return y.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def recombine_color(stylised: torch.Tensor, color_source: torch.Tensor) -> torch.Tensor:
    """Brightness of ``stylised`` with the I/Q colour channels of ``color_source`` (same size), clamped to [0, 1]."""
    yiq = rgb_to_yiq(color_source)
    yiq = torch.cat([rgb_to_yiq(stylised)[:, :1], yiq[:, 1:]], dim=1)
    return yiq_to_rgb(yiq).clamp(0, 1)


def match_color(source: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Recolour ``source`` so its RGB mean and covariance equal ``target``'s (an affine map, clamped to [0, 1]).

    With Sigma_s, Sigma_t the 3x3 colour covariances: ``x -> Sigma_t^(1/2) Sigma_s^(-1/2) (x - mu_s) + mu_t``.
    """
    def stats(img: torch.Tensor) -> "tuple[torch.Tensor, torch.Tensor]":
        pixels = img[0].reshape(3, -1).double()
        mu = pixels.mean(dim=1, keepdim=True)
        centred = pixels - mu
        return mu, centred @ centred.T / pixels.shape[1] + eps * torch.eye(3, dtype=torch.float64)

    def sqrtm(m: torch.Tensor, power: float) -> torch.Tensor:
        vals, vecs = torch.linalg.eigh(m)
        return vecs @ torch.diag(vals.clamp_min(eps) ** power) @ vecs.T

    mu_s, cov_s = stats(source)
    mu_t, cov_t = stats(target)
    transform = sqrtm(cov_t, 0.5) @ sqrtm(cov_s, -0.5)
    pixels = source[0].reshape(3, -1).double()
    out = transform @ (pixels - mu_s) + mu_t
    return out.reshape_as(source[0]).unsqueeze(0).to(source.dtype).clamp(0, 1)
