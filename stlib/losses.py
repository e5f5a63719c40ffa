"""The three terms of the style-transfer objective: content, style and total variation."""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F

from .gram import gram_matrix


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of two feature maps ``(B, C, H, W)``: how far the content has drifted.

    Gatys et al. use half the *sum* of squares; the mean differs by the constant ``2 / (B*C*H*W)`` and
    keeps the value independent of the image size. Computed in float32.
    """
    if features.shape != target.shape:
        raise ValueError(
            f"content features {tuple(features.shape)} and target {tuple(target.shape)} differ in shape: "
            "the generated image must have the content image's size"
        )
    return F.mse_loss(features.float(), target.float())


def style_layer_loss(
    features: torch.Tensor, target_gram: torch.Tensor, normalize: bool | str | None = True
) -> torch.Tensor:
    """Mean squared difference between the Gram matrix of ``features`` (B, C, H, W) and ``target_gram`` (B or 1, C, C)."""
    gram = gram_matrix(features, normalize=normalize)
    if target_gram.shape[-2:] != gram.shape[-2:]:
        raise ValueError(f"Gram matrices {tuple(gram.shape)} and {tuple(target_gram.shape)} differ in size")
    return F.mse_loss(gram, target_gram.float().expand_as(gram))


def style_loss(
    features: Mapping[str, torch.Tensor],
    target_grams: Mapping[str, torch.Tensor],
    layer_weights: Mapping[str, float] | None = None,
    normalize: bool | str | None = True,
) -> torch.Tensor:
    """Weighted sum over layers of ``style_layer_loss``: ``sum_l w_l * mean((G_l - A_l)^2)``.

    ``features`` maps layer name -> (B, C, H, W) activations of the image being optimised,
    ``target_grams`` maps layer name -> (1, C, C) Gram matrices of the style image, and ``layer_weights``
    maps layer name -> w_l (default: 1 for every layer in ``target_grams``). Layers with weight 0 are skipped.
    """
    weights = dict(layer_weights) if layer_weights is not None else {name: 1.0 for name in target_grams}
    total = torch.zeros((), device=next(iter(target_grams.values())).device)
    for name, weight in weights.items():
        if weight == 0:
            continue
        total = total + weight * style_layer_loss(features[name], target_grams[name], normalize)
    return total


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation of images (B, 3, H, W): mean squared difference between neighbouring pixels.

    Penalising it smooths away the high-frequency noise that gradient descent on pixels tends to leave.
    """
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.float().pow(2).mean() + dy.float().pow(2).mean()
