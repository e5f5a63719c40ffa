"""Gram matrices: the channel-by-channel correlations that Gatys et al. use as a picture's *style*."""

from __future__ import annotations


import torch

#: The normalisations ``gram_matrix`` understands, and what each divides the raw sum by.
GRAM_NORMALIZATIONS = {
    True: "C*H*W",  # default: PyTorch's neural-transfer tutorial and Johnson's neural-style
    "chw": "C*H*W",
    "hw": "H*W",  # a true average over positions: G_ij = mean_p F_ip F_jp
    False: "1",  # Gatys et al. (2016): raw sums; their style loss divides by 4 N^2 M^2 instead
    None: "1",
}


def gram_matrix(features: torch.Tensor, normalize: bool | str | None = True) -> torch.Tensor:
    """Gram matrices of a batch of feature maps: ``(B, C, H, W) -> (B, C, C)``.

    ``G[b, i, j] = sum_p F[b, i, p] * F[b, j, p] / n`` over the ``M = H*W`` positions ``p``, where ``n`` is
    - ``normalize=True`` or ``"chw"``: ``C*H*W`` (default; the convention of PyTorch's tutorial, whose
      style weight 1e6 stlib's defaults reuse),
    - ``"hw"``: ``H*W`` (the mean product over positions, independent of image size),
    - ``False``/``None``: 1 (the raw sums of Gatys et al., whose loss divides by ``4 C^2 (H*W)^2``).
    Each image of the batch gets its own Gram matrix (the batch is never folded into channels).
    Computed in float32 even when the features are bf16/fp16.
    """
    if features.dim() != 4:
        raise ValueError(f"gram_matrix expects features of shape (B, C, H, W), got {tuple(features.shape)}")
    if normalize not in GRAM_NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {list(GRAM_NORMALIZATIONS)}, not {normalize!r}")
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w).float()
    with torch.autocast(device_type=features.device.type, enabled=False):  # under autocast bmm would be bf16
        gram = torch.bmm(flat, flat.transpose(1, 2))
    divisor = {"C*H*W": c * h * w, "H*W": h * w, "1": 1}[GRAM_NORMALIZATIONS[normalize]]
    return gram / divisor if divisor != 1 else gram
