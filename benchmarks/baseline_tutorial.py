"""The reference point for stlib's benchmark: style transfer written the way the well-known tutorials do it.

Structure (our own code, following the familiar recipe): torchvision's full ``vgg19().features``; a
normalisation module first; ``ContentLoss``/``StyleLoss`` modules that stash ``self.loss`` inserted into
an ``nn.Sequential`` right after the chosen layers; the model truncated after the last loss module; every
ReLU replaced by a non-in-place one (the loss modules must see the values the ReLU produced); fp32;
``torch.optim.LBFGS([img])`` with its default settings (``max_iter=20`` closure evaluations per
``.step``, ``history_size=100``) and the pixels clamped inside the closure.

The only departures from the tutorial are the ones a fair comparison needs: stlib's layer names, its
per-layer weights, its total-variation term and the same weights in the network (``load_state_dict`` of
an stlib model mapped onto torchvision indices with ``stlib.layer_index``).
"""

from __future__ import annotations

import time
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from stlib.layers import VGG19_LAYERS, layer_index
from stlib.model import IMAGENET_MEAN, IMAGENET_STD, VGG19Features


def tutorial_gram(features: torch.Tensor) -> torch.Tensor:
    """The tutorial's Gram matrix: (B, C, H, W) -> (B*C, B*C), divided by B*C*H*W."""
    b, c, h, w = features.size()
    flat = features.view(b * c, h * w)
    return torch.mm(flat, flat.t()).div(b * c * h * w)


class Normalization(nn.Module):
    """Subtract the ImageNet mean and divide by the standard deviation."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(-1, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(-1, 1, 1))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return (img - self.mean) / self.std


class ContentLoss(nn.Module):
    """Passes its input through and remembers the weighted MSE to a fixed target feature map."""

    def __init__(self, target: torch.Tensor, weight: float) -> None:
        super().__init__()
        self.target = target.detach()
        self.weight = weight
        self.loss = torch.zeros(())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = self.weight * F.mse_loss(x, self.target)
        return x


class StyleLoss(nn.Module):
    """Passes its input through and remembers the weighted MSE between its Gram matrix and a fixed one."""

    def __init__(self, target_feature: torch.Tensor, weight: float) -> None:
        super().__init__()
        self.target = tutorial_gram(target_feature).detach()
        self.weight = weight
        self.loss = torch.zeros(())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = self.weight * F.mse_loss(tutorial_gram(x), self.target)
        return x


def torchvision_features(stlib_model: VGG19Features) -> nn.Sequential:
    """``torchvision.models.vgg19(weights=None).features`` holding the same weights as ``stlib_model``."""
    import torchvision

    features = torchvision.models.vgg19(weights=None).features
    state = {}
    for name, tensor in stlib_model.layers.state_dict().items():
        layer, kind = name.split(".")
        state[f"{layer_index(layer)}.{kind}"] = tensor
    features.load_state_dict(state)
    return features.eval()


def build_model(
    features: nn.Sequential,
    style_img: torch.Tensor,
    content_img: torch.Tensor,
    content_layers: Mapping[str, float],
    style_layers: Mapping[str, float],
) -> Tuple[nn.Sequential, List[StyleLoss], List[ContentLoss]]:
    """The tutorial's model: normalisation, VGG layers, loss modules after the chosen layers, truncated."""
    model = nn.Sequential(Normalization().to(content_img.device))
    content_losses: List[ContentLoss] = []
    style_losses: List[StyleLoss] = []
    for index, layer in enumerate(features.children()):
        name = VGG19_LAYERS[index]
        if isinstance(layer, nn.ReLU):
            layer = nn.ReLU(inplace=False)
        model.add_module(name, layer)
        if name in content_layers:
            target = model(content_img).detach()
            loss = ContentLoss(target, content_layers[name])
            model.add_module(f"content_loss_{name}", loss)
            content_losses.append(loss)
        if name in style_layers:
            target = model(style_img).detach()
            loss = StyleLoss(target, style_layers[name])
            model.add_module(f"style_loss_{name}", loss)
            style_losses.append(loss)
    # Truncate after the last loss module, as the tutorial does.
    last = max(i for i, m in enumerate(model) if isinstance(m, (ContentLoss, StyleLoss)))
    model = model[: last + 1]
    model.requires_grad_(False)
    return model, style_losses, content_losses


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels (the same formula as stlib.tv_loss)."""
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


def run_style_transfer(
    features: nn.Sequential,
    content_img: torch.Tensor,
    style_img: torch.Tensor,
    content_layers: Mapping[str, float],
    style_layers: Mapping[str, float],
    content_weight: float,
    style_weight: float,
    tv_weight: float,
    num_steps: int = 300,
    on_eval: Optional[Callable[[int, float, torch.Tensor], None]] = None,
) -> Tuple[torch.Tensor, Dict[str, float]]:
    """The tutorial's optimisation loop: L-BFGS with default settings, ``num_steps`` closure evaluations.

    ``on_eval(evaluation, seconds_since_start, image)`` is called after every closure evaluation with the
    (clamped) image that evaluation saw; its own time is excluded from the timing.
    Returns the final image and {"setup": seconds, "optimise": seconds, "evaluations": n}.
    """
    t0 = time.perf_counter()
    model, style_losses, content_losses = build_model(features, style_img, content_img, content_layers, style_layers)
    input_img = content_img.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([input_img])
    setup = time.perf_counter() - t0
    run = [0]
    excluded = [0.0]
    t_start = time.perf_counter()

    def closure() -> torch.Tensor:
        with torch.no_grad():
            input_img.clamp_(0, 1)
        optimizer.zero_grad()
        model(input_img)
        style_score = sum(sl.loss for sl in style_losses)
        content_score = sum(cl.loss for cl in content_losses)
        loss = style_weight * style_score + content_weight * content_score
        if tv_weight > 0:
            loss = loss + tv_weight * tv_loss(input_img)
        loss.backward()
        run[0] += 1
        if on_eval is not None:
            t = time.perf_counter()
            on_eval(run[0], t - t_start - excluded[0], input_img.detach())
            excluded[0] += time.perf_counter() - t
        return loss

    while run[0] < num_steps:
        before = run[0]
        optimizer.step(closure)
        if run[0] == before:
            break
    with torch.no_grad():
        input_img.clamp_(0, 1)
    elapsed = time.perf_counter() - t_start - excluded[0]
    return input_img.detach(), {"setup": setup, "optimise": elapsed, "evaluations": run[0]}
