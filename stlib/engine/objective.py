"""The objective ``stylize`` minimises: ``stlib.gatys``'s, computed so that reduced precision is safe and cheap.

    total(x) = content_weight * sum_l a_l * content_loss(F_l(x), F_l(photo))
             + style_weight   * sum_l w_l * style_layer_loss(F_l(x), sum_k blend_k G(F_l(painting_k)))
             + tv_weight      * tv_loss(x)

The only difference from the course's functions is where the Gram matrix is computed: ``fast_style_layer_loss``
forms it with ``fp32_gram``, which sums bf16/fp16 (or channels-last) features in float32 without keeping a
float32 copy of them for the backward pass, or, for bf16 on a CPU, forms G - A in one product (``gram_mse``;
tests/test_engine.py checks both equal ``style_layer_loss``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

import torch

from ..gram import gram_matrix
from ..losses import content_loss, tv_loss
from ..model import VGG19Features
from ..regions import guided_style_layer_loss, layer_masks, load_masks, region_targets
from .fast_features import fast_features
from .precision import gram_mse

GramNorm = Union[bool, str, None]  # Union: an alias is evaluated (Python 3.9)


@dataclass(frozen=True)
class Targets:
    """What the painted image is matched to (detached, float32), as ``compute_targets`` makes it.

    ``content``: ``{layer: (1, C, H, W)}`` the photo's features. ``style``: ``{layer: (1, C, C)}`` the blended
    Gram matrices of the paintings, or with ``masks`` ``{layer: (1, R, C, C)}``, one per region.
    ``masks``: None, or ``{layer: (1, R, h, w)}`` the region masks carried down to each style layer
    (``stlib.regions``): the style term then compares guided Gram matrices region by region.
    """

    content: dict[str, torch.Tensor]
    style: dict[str, torch.Tensor]
    masks: Optional[dict[str, torch.Tensor]] = None


def fast_style_layer_loss(features: torch.Tensor, target_gram: torch.Tensor, normalize: GramNorm = True,
                          fused: bool = True) -> torch.Tensor:
    """``stlib.style_layer_loss`` (same value and gradient) for features (B, C, H, W) in any dtype and layout:
    mean squared difference of their float32 Gram matrix and ``target_gram`` (1 or B, C, C). bf16 on a CPU
    (``fused``): G - A from one bf16 product (``precision.gram_mse``)."""
    return gram_mse(features, target_gram, normalize, fused=fused)


def compute_targets(
    model: VGG19Features,
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    content_layers: Mapping[str, float],
    style_layers: Mapping[str, float],
    blend: Sequence[float],
    gram_norm: GramNorm = True,
    masks: torch.Tensor | None = None,
) -> Targets:
    """The ``Targets`` for the photo ``content`` and the paintings ``styles`` (each (1, 3, H, W)).

    Without ``masks``, style layer l's target is ``sum_k blend_k * G_l(styles[k])``. With ``masks``
    (1, R, H', W') - one region per painting, any size (resized to ``content``'s) - region r's target is
    ``G_l(styles[r])`` and ``blend`` is not used (Gatys et al. 2017's guided Gram matrices, ``stlib.regions``).
    """
    if masks is not None and masks.shape[1] != len(styles):
        raise ValueError(f"the masks have {masks.shape[1]} regions but {len(styles)} styles were given: one style "
                         "per region (for a greyscale mask: the first for white, the second for black)")
    with torch.no_grad():
        content_feats = fast_features(model, content, content_layers) if content_layers else {}
        per_style = [{name: gram_matrix(f, normalize=gram_norm)
                      for name, f in fast_features(model, style, style_layers).items()} if style_layers else {}
                     for style in styles]
    if masks is None:
        grams: dict[str, torch.Tensor] = {}
        for style_grams, share in zip(per_style, blend):
            for name, g in style_grams.items():
                grams[name] = grams[name] + share * g if name in grams else share * g
        guides = None
    else:
        grams = region_targets(per_style) if style_layers else {}
        resized = load_masks(masks, size=tuple(content.shape[-2:])).to(content.device)
        guides = layer_masks(resized, list(style_layers))
    return Targets(content={k: v.float() for k, v in content_feats.items()}, style=grams, masks=guides)


def objective(
    model: VGG19Features,
    image: torch.Tensor,
    targets: Targets,
    content_layers: Mapping[str, float],
    style_layers: Mapping[str, float],
    content_weight: float,
    style_weight: float,
    tv_weight: float,
    gram_norm: GramNorm = True,
) -> dict[str, Any]:
    """All terms of the objective for ``image`` (1, 3, H, W): weighted ``content``, ``style``, ``tv``, ``total``
    (0-dim float32 tensors) and the unweighted per-layer losses under ``layers``. Targets with ``masks``
    are matched region by region with guided Gram matrices (``stlib.regions``)."""
    feats = fast_features(model, image, list(content_layers) + list(style_layers))
    per_layer: dict[str, torch.Tensor] = {}
    zero = torch.zeros((), device=image.device)
    c_term, s_term = zero, zero
    for name, w in content_layers.items():
        per_layer[f"content:{name}"] = content_loss(feats[name], targets.content[name])
        c_term = c_term + w * per_layer[f"content:{name}"]
    masks = targets.masks
    for name, w in style_layers.items():
        if masks is not None:
            per_layer[f"style:{name}"] = guided_style_layer_loss(feats[name], masks[name], targets.style[name],
                                                                 gram_norm)
        else:
            per_layer[f"style:{name}"] = fast_style_layer_loss(feats[name], targets.style[name], gram_norm)
        s_term = s_term + w * per_layer[f"style:{name}"]
    tv = tv_loss(image) if tv_weight > 0 else zero
    terms = {"content": content_weight * c_term, "style": style_weight * s_term, "tv": tv_weight * tv}
    terms["total"] = terms["content"] + terms["style"] + terms["tv"]
    terms["layers"] = per_layer
    return terms
