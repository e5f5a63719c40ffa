"""Per-layer style weights set by measurement: each layer carries a stated share of the pull at the start.

Raw style losses differ between layers by orders of magnitude, and by how much depends on the network's
weights (ImageNet or random filters), the images and the size. Fixed per-layer weights tuned on one network
therefore wash layers out on another. ``balanced_layer_weights`` instead measures, at the start image, each
layer's loss ``E_l`` (``by="loss"``) or the norm of its gradient on the pixels (``by="gradient"``), and sets

    w_l = share_l * P / m_l        (m_l = the measured E_l or |dE_l/dx|)

so that layer l carries ``share_l`` of the weighted style loss (or gradient) at the start, while the total
``P = sum_l w_l^given m_l`` stays what the given weights had: the overall style pull (and so ``style_weight``)
keeps its meaning, only its split between the layers changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from .model import VGG19Features
from .shares import per_layer_gradient_norms

BALANCE_MODES = ("loss", "gradient")


def equal_shares(layers: Mapping[str, float]) -> dict[str, float]:
    """The same share for every layer of ``layers``."""
    return {name: 1.0 / len(layers) for name in layers}


def check_shares(shares: Mapping[str, float], layers: Mapping[str, float]) -> dict[str, float]:
    """``shares`` normalised to sum to 1, with a clear ValueError when they do not fit ``layers``."""
    if set(shares) != set(layers):
        raise ValueError(f"balance shares must name exactly the style layers {sorted(layers)}, got {sorted(shares)}")
    if any(not (math.isfinite(float(s)) and float(s) > 0) for s in shares.values()):
        raise ValueError(f"balance shares must be finite numbers > 0, got {dict(shares)}")
    total = sum(float(s) for s in shares.values())
    return {name: float(shares[name]) / total for name in layers}


def balanced_layer_weights(
    model: VGG19Features,
    start: torch.Tensor,
    target_grams: Mapping[str, torch.Tensor],
    layer_weights: Mapping[str, float],
    by: str = "loss",
    shares: Mapping[str, float] | None = None,
    gram_norm: bool | str | None = True,
) -> dict[str, float]:
    """Weights ``{layer: w_l}`` under which each layer of ``layer_weights`` carries ``shares[layer]`` (default
    equal) of the weighted style loss (``by="loss"``) or gradient norm (``by="gradient"``) at ``start``
    (1, 3, H, W), with the same total as ``layer_weights``. ``target_grams``: the painting's {layer: (1, C, C)}."""
    if by not in BALANCE_MODES:  # before measuring: a typo costs no forward pass
        raise ValueError(f"balance must be one of {BALANCE_MODES} (or None for fixed weights), not {by!r}")
    losses, norms = per_layer_gradient_norms(model, start, target_grams, dict.fromkeys(layer_weights, 1.0), gram_norm)
    return weights_for_shares(losses, norms, layer_weights, by, shares)


def weights_for_shares(losses: Mapping[str, float], norms: Mapping[str, float], layer_weights: Mapping[str, float],
                       by: str = "loss", shares: Mapping[str, float] | None = None) -> dict[str, float]:
    """``balanced_layer_weights`` from unweighted measurements already made (``per_layer_gradient_norms``)."""
    if by not in BALANCE_MODES:
        raise ValueError(f"balance must be one of {BALANCE_MODES} (or None for fixed weights), not {by!r}")
    wanted = check_shares(shares, layer_weights) if shares is not None else equal_shares(layer_weights)
    measured = losses if by == "loss" else norms
    if any(not (measured[n] > 0) for n in layer_weights):
        return dict(layer_weights)  # the start already matches a layer exactly: nothing to balance against
    total = sum(layer_weights[n] * measured[n] for n in layer_weights)
    return {n: wanted[n] * total / measured[n] for n in layer_weights}
