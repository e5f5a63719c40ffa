"""``gatys``: the algorithm of Gatys et al. (2016) written out once, in the terms the course teaches.

This is the reference: ``stlib.stylize`` computes the same objective with the same optimiser, only faster
and more robustly, and tests/test_gatys.py checks that the two take the same steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from .gram import gram_matrix
from .losses import content_loss, style_layer_loss, tv_loss
from .model import VGG19Features, extract_features
from .presets import preset_for


@dataclass
class GatysResult:
    """What ``gatys`` returns: the image (1, 3, H, W) in [0, 1] and the objective before every step."""

    image: torch.Tensor
    losses: list[float]


def gatys(
    model: VGG19Features,
    content: torch.Tensor,
    style: torch.Tensor,
    *,
    steps: int = 100,
    content_weight: float | None = None,
    style_weight: float | None = None,
    tv_weight: float | None = None,
    content_layers: Mapping[str, float] | None = None,
    style_layers: Mapping[str, float] | None = None,
    init: str = "content",
    seed: int = 0,
) -> GatysResult:
    """Paint ``content`` in the style of ``style`` (loaded images (1, 3, H, W) in [0, 1]) by L-BFGS on the pixels.

    Minimises ``content_weight * sum_l a_l content_loss + style_weight * sum_l w_l style_layer_loss
    + tv_weight * tv_loss`` over the image, starting from the photo (``init="content"``) or seeded noise
    (``"noise"``). Weights and ``{layer: weight}`` dicts left at None come from
    ``stlib.presets.preset_for(model.weights_source)``. Plain fp32, one scale, nothing else: for the fast,
    robust version (bf16, CUDA graphs, coarse-to-fine, progress, Ctrl-C and NaN handling) use ``stlib.stylize``.
    """
    if init not in ("content", "noise"):
        raise ValueError(f"init must be 'content' or 'noise', not {init!r}")
    preset = preset_for(model.weights_source)
    alpha = preset.content_weight if content_weight is None else content_weight
    beta = preset.style_weight if style_weight is None else style_weight
    gamma = preset.tv_weight if tv_weight is None else tv_weight
    c_layers = dict(preset.content_layers if content_layers is None else content_layers)
    s_layers = dict(preset.style_layers if style_layers is None else style_layers)

    with torch.no_grad():  # the targets: the photo's features and the painting's Gram matrices, fixed
        content_targets = extract_features(model, content, c_layers)
        style_targets = {name: gram_matrix(f) for name, f in extract_features(model, style, s_layers).items()}

    noise = torch.rand(content.shape, generator=torch.Generator().manual_seed(seed)).to(content.device)
    x = (content if init == "content" else noise).clone().requires_grad_(True)  # the only thing that changes
    # max_iter=1: one evaluation of the objective per step, so the image is clamped after every evaluation
    optimizer = torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=10)
    losses: list[float] = []

    def closure() -> torch.Tensor:  # L-BFGS calls this to get the loss and the gradient at the current x
        optimizer.zero_grad()
        feats = extract_features(model, x, [*c_layers, *s_layers])
        c_loss = sum(a * content_loss(feats[name], content_targets[name]) for name, a in c_layers.items())
        s_loss = sum(w * style_layer_loss(feats[name], style_targets[name]) for name, w in s_layers.items())
        loss = alpha * c_loss + beta * s_loss + gamma * tv_loss(x)
        loss.backward()
        losses.append(loss.item())
        return loss

    for _ in range(steps):
        optimizer.step(closure)
        with torch.no_grad():
            x.clamp_(0, 1)  # pixels outside [0, 1] are not a picture
    return GatysResult(image=x.detach(), losses=losses)
