"""Spatial control: a different style in each region of the photo, through guided Gram matrices.

Gatys, Ecker, Bethge, Hertzmann and Shechtman, "Controlling Perceptual Factors in Neural Style Transfer"
(CVPR 2017), section 4: give each region r of the image a guidance channel T_r (a mask, H x W), carry it
down to every layer's resolution, multiply the layer's feature maps by it and take the Gram matrix of what
is left. Each region then has its own Gram matrices, matched to its own painting's:

    F_r = T_r * F            (B, C, h, w): the features inside region r
    G_r = F_r F_r^T / n_r    (B, C, C):    region r's style statistics
    E   = mean over regions r of mean((G_r - A_r)^2)

Masks are downsampled to a layer by area averaging (a unit's mask value is the share of its 2^k x 2^k
input block inside the region; the paper also describes eroded masks, not done here). The normaliser n_r
is stlib's choice: C times the region's mask mass sum_p T_r[p]^2 instead of C*H*W, so a region's Gram is
an average over its own positions - a mask of ones gives exactly ``gram_matrix``, and a small region is
matched as firmly as a large one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .gram import GRAM_NORMALIZATIONS
from .layers import VGG19_LAYERS, layer_index

#: Masks bundled with stlib (``load_masks("rocket_sky")``); made by images/make_masks.py.
MASKS_DIR = Path(__file__).resolve().parent / "data" / "masks"


def load_masks(source: Any, size: "tuple[int, int] | None" = None) -> torch.Tensor:
    """Region masks ``(1, R, H, W)`` in [0, 1] from a bundled mask name, an image file or a tensor.

    A greyscale image gives two regions: white (region 0) and black (region 1), i.e. ``[m, 1 - m]``.
    A tensor of shape (H, W) is read the same way; (R, H, W) or (1, R, H, W) are R masks as they are.
    ``size`` = (H, W) resizes the masks (area averaging when shrinking, bilinear when enlarging).
    """
    if isinstance(source, torch.Tensor):
        masks = source.detach().float().cpu()
        if masks.dim() == 2:
            masks = torch.stack([masks, 1 - masks])
        if masks.dim() == 3:
            masks = masks.unsqueeze(0)
        if masks.dim() != 4 or masks.shape[0] != 1:
            raise ValueError(f"masks must have shape (H, W), (R, H, W) or (1, R, H, W), got {tuple(source.shape)}")
    else:
        path = Path(str(source))
        if not path.suffix and (MASKS_DIR / f"{source}.png").is_file():
            path = MASKS_DIR / f"{source}.png"
        if not path.is_file():
            bundled = ", ".join(sorted(p.stem for p in MASKS_DIR.glob("*.png"))) or "none"
            raise FileNotFoundError(f"No mask file or bundled mask called {str(source)!r} (bundled masks: {bundled}). "
                                    "Pass a greyscale image: white = region 0 (first style), black = region 1.")
        with Image.open(path) as img:
            m = torch.from_numpy(np.asarray(img.convert("L"), dtype=np.float32) / 255.0)
        masks = torch.stack([m, 1 - m]).unsqueeze(0)
    if masks.min() < 0 or masks.max() > 1:
        raise ValueError("mask values must lie in [0, 1]")
    if size is not None and tuple(masks.shape[-2:]) != tuple(size):
        shrink = size[0] <= masks.shape[-2] and size[1] <= masks.shape[-1]
        masks = F.interpolate(masks, size=tuple(size), mode="area" if shrink else "bilinear",
                              **({} if shrink else {"align_corners": False})).clamp(0, 1)
    return masks


def layer_size(name: str, height: int, width: int) -> "tuple[int, int]":
    """Spatial size (h, w) of layer ``name``'s output for an input of height x width (each pooling floors a half)."""
    for layer in VGG19_LAYERS[: layer_index(name) + 1]:
        if layer.startswith("pool"):
            height, width = height // 2, width // 2
    return height, width


def layer_masks(masks: torch.Tensor, layers: Sequence[str]) -> "dict[str, torch.Tensor]":
    """The masks ``(1, R, H, W)`` (at the input's size) carried down to each layer: ``{layer: (1, R, h, w)}``."""
    height, width = masks.shape[-2:]
    out = {}
    for name in layers:
        size = layer_size(name, height, width)
        out[name] = masks if size == (height, width) else F.adaptive_avg_pool2d(masks, size)
    return out


def guided_gram_matrix(features: torch.Tensor, masks: torch.Tensor,
                       normalize: Union[bool, str, None] = True) -> torch.Tensor:
    """Gram matrices of the masked features, one per region: ``(B, C, H, W), (1 or B, R, H, W) -> (B, R, C, C)``.

    ``G[b, r] = sum_p T_r[p]^2 F[b, :, p] F[b, :, p]^T / n_r`` with ``n_r = C * sum_p T_r[p]^2`` by default
    (``normalize=True``/"chw"), ``sum_p T_r[p]^2`` ("hw") or 1 (False: raw sums). With a mask of ones this is
    ``gram_matrix(features, normalize)``. Computed in float32.
    """
    if features.dim() != 4 or masks.dim() != 4:
        raise ValueError(f"expected features (B, C, H, W) and masks (B, R, H, W), got {tuple(features.shape)} "
                         f"and {tuple(masks.shape)}")
    if features.shape[-2:] != masks.shape[-2:]:
        raise ValueError(f"masks {tuple(masks.shape[-2:])} and features {tuple(features.shape[-2:])} differ in size: "
                         "carry the masks down to the layer first (stlib.regions.layer_masks)")
    if normalize not in GRAM_NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {list(GRAM_NORMALIZATIONS)}, not {normalize!r}")
    b, c, h, w = features.shape
    flat = features.reshape(b, 1, c, h * w).float()
    weights = masks.reshape(masks.shape[0], masks.shape[1], 1, h * w).float()
    masked = flat * weights                                          # (B, R, C, H*W)
    with torch.autocast(device_type=features.device.type, enabled=False):
        gram = masked @ masked.transpose(-1, -2)                     # (B, R, C, C)
    kind = GRAM_NORMALIZATIONS[normalize]
    if kind == "1":
        return gram
    mass = weights.pow(2).sum(dim=-1, keepdim=True).clamp_min(1e-8)  # (B or 1, R, 1, 1)
    return gram / (mass * c if kind == "C*H*W" else mass)


def guided_style_layer_loss(features: torch.Tensor, masks: torch.Tensor, target_grams: torch.Tensor,
                            normalize: Union[bool, str, None] = True) -> torch.Tensor:
    """Mean over regions and entries of ``(G_r - A_r)^2``: features (B, C, H, W), masks (1, R, H, W) at the
    layer's size, targets (1, R, C, C) - region r's painting's Gram matrix."""
    gram = guided_gram_matrix(features, masks, normalize)
    if target_grams.shape[-3:] != gram.shape[-3:]:
        raise ValueError(f"guided Grams {tuple(gram.shape)} and targets {tuple(target_grams.shape)} differ: "
                         "give one style per region")
    return F.mse_loss(gram, target_grams.float().expand_as(gram))


def region_targets(grams: Sequence[Mapping[str, torch.Tensor]]) -> "dict[str, torch.Tensor]":
    """Stack one Gram dict per region (each ``{layer: (1, C, C)}``, the painting of that region) into
    ``{layer: (1, R, C, C)}``, the targets of ``guided_style_layer_loss``."""
    if not grams:
        raise ValueError("give at least one region")
    return {name: torch.stack([g[name].reshape(g[name].shape[-2:]) for g in grams]).unsqueeze(0) for name in grams[0]}


def resolve_masks(style_masks: Any, n_styles: int, style_blend: Any = None) -> "torch.Tensor | None":
    """``stylize``'s ``style_masks`` loaded as (1, R, H, W) and checked against the number of styles; None without."""
    if style_masks is None:
        return None
    if style_blend is not None:
        raise ValueError("style_masks gives each style its own region, style_blend mixes styles everywhere: "
                         "pass one of them")
    masks = load_masks(style_masks)
    if masks.shape[1] != n_styles:
        raise ValueError(f"style_masks has {masks.shape[1]} regions but {n_styles} style(s) were given: pass one "
                         "style per region, e.g. style=[for_white, for_black] with a greyscale mask")
    return masks
