"""Per-layer diagnostics: how much of the style pull each style layer carries.

Two measures, each a dict ``{layer: share}`` summing to 1:

- **loss share**: ``w_l E_l / sum_k w_k E_k``, the layer's part of the weighted style loss;
- **gradient share**: ``|g_l| / sum_k |g_k|`` with ``g_l = d(w_l E_l)/dx`` the layer's gradient on the pixels
  (its Euclidean norm): how hard the layer actually pushes the image. A layer can hold a large part of the
  loss and still push little (its loss is flat in the pixels), and the other way round.

A layer with a share near 0 is switched off in practice, whatever its weight says: that is how a weighting
"washes out" (notebook 03).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from .model import VGG19Features, extract_features


@dataclass(frozen=True)
class LayerShares:
    """Each style layer's share (0..1) of the weighted style loss and of its gradient on the pixels."""

    loss: dict[str, float]
    gradient: dict[str, float]

    def smallest(self) -> tuple[str, float]:
        """The layer with the smallest loss share, and that share."""
        name = min(self.loss, key=self.loss.__getitem__)
        return name, self.loss[name]


def loss_shares(layer_losses: Mapping[str, float], layer_weights: Mapping[str, float]) -> dict[str, float]:
    """``w_l E_l / sum_k w_k E_k`` for the layers of ``layer_weights`` (``layer_losses``: unweighted E_l, as in
    ``StylizeResult.history[i]["layers"]`` under ``"style:<layer>"`` or plain layer names)."""
    def loss(name: str) -> float:
        return float(layer_losses[f"style:{name}"] if f"style:{name}" in layer_losses else layer_losses[name])

    weighted = {name: w * loss(name) for name, w in layer_weights.items()}
    total = sum(weighted.values())
    if not total > 0:
        return {name: 1.0 / len(weighted) for name in weighted} if weighted else {}
    return {name: v / total for name, v in weighted.items()}


def per_layer_gradient_norms(model: VGG19Features, image: torch.Tensor, target_grams: Mapping[str, torch.Tensor],
                             layer_weights: Mapping[str, float], gram_norm: bool | str | None = True,
                             ) -> tuple[dict[str, float], dict[str, float]]:
    """Unweighted losses ``E_l`` and the norms ``|d(w_l E_l)/dx|`` of ``image`` (1, 3, H, W) against
    ``target_grams`` ({layer: (1, C, C)}): one forward pass, one backward per layer. Runs in the precision
    of the caller's autocast context."""
    from .engine.objective import fast_style_layer_loss

    x = image.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        feats = extract_features(model, x, list(layer_weights))
        losses = {name: fast_style_layer_loss(feats[name], target_grams[name], gram_norm) for name in layer_weights}
        names = list(layer_weights)
        norms = {}
        for i, name in enumerate(names):
            (grad,) = torch.autograd.grad(layer_weights[name] * losses[name], x, retain_graph=i < len(names) - 1)
            norms[name] = float(grad.float().norm())
    return {name: float(v.detach()) for name, v in losses.items()}, norms


def shares_from(losses: Mapping[str, float], norms: Mapping[str, float],
                layer_weights: Mapping[str, float]) -> LayerShares:
    """The shares under ``layer_weights`` from *unweighted* measurements (``per_layer_gradient_norms`` with weights
    1): a weight scales a layer's loss and its gradient alike, so one measurement serves any weighting."""
    norm = {n: layer_weights[n] * norms[n] for n in layer_weights}
    total = sum(norm.values())
    gradient = {n: v / total for n, v in norm.items()} if total > 0 else {n: 1.0 / len(norm) for n in norm}
    return LayerShares(loss=loss_shares(losses, layer_weights), gradient=gradient)


def layer_shares(model: VGG19Features, image: torch.Tensor, target_grams: Mapping[str, torch.Tensor],
                 layer_weights: Mapping[str, float], gram_norm: bool | str | None = True) -> LayerShares:
    """Loss and gradient shares of each style layer at ``image`` (1, 3, H, W)."""
    losses, norms = per_layer_gradient_norms(model, image, target_grams, dict.fromkeys(layer_weights, 1.0), gram_norm)
    return shares_from(losses, norms, layer_weights)
