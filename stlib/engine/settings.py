"""A run's settings, resolved once: ``stylize``'s checked ``RunOptions`` become a ``RunSettings``.

The options are declared and checked in ``stlib.engine.options``; here what was left at None is filled in
(the preset's weights and layers, the default size, the precision for the device, the scale plan), and
what needs the model, the device or the images is checked. Nothing here runs the network.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..color import luminance_only, match_color
from ..images import load_image
from ..layers import deepest, layer_index, layer_stride
from ..model import VGG19Features, load_vgg19, resolve_device
from ..presets import preset_for
from .optim import OPTIMIZERS  # noqa: F401  (re-exported: the names stylize accepts)
from .options import MIN_SIZE, LayerSpec, RunOptions, check_weight  # noqa: F401  (re-exported)
from .precision import resolve_precision
from .scales import scale_plan

def default_size(device: str | torch.device) -> int:
    """The long edge ``stylize`` paints at when no size is given: 512 px on a GPU, 256 px on anything else
    (a size at which a few hundred L-BFGS steps finish in minutes on a laptop CPU)."""
    return 512 if torch.device(device).type == "cuda" else 256


def layer_weights(spec: LayerSpec, default: Mapping[str, float], what: str) -> dict[str, float]:
    """``{layer: weight}`` from a dict, a list of names (weight 1), one name, or None (``default``);
    names are checked, and layers of weight 0 are dropped."""
    if spec is None:
        layers = dict(default)
    elif isinstance(spec, Mapping):
        layers = {str(k): float(v) for k, v in spec.items()}
    elif isinstance(spec, str):
        layers = {spec: 1.0}
    else:
        layers = {str(name): 1.0 for name in spec}
    for name, weight in layers.items():
        layer_index(name)
        check_weight(f"{what} weight for {name}", weight)
    return {k: v for k, v in layers.items() if v > 0}


def blend_weights(style_blend: Sequence[float] | None, n_styles: int) -> list[float]:
    """The share of each style image's Gram matrices, summing to 1 (default: equal shares)."""
    blend = [1.0 / n_styles] * n_styles if style_blend is None else [float(b) for b in style_blend]
    if len(blend) != n_styles or any(not (math.isfinite(b) and b >= 0) for b in blend) or sum(blend) <= 0:
        raise ValueError(f"style_blend needs {n_styles} finite weight(s) >= 0 (one per style image, not all zero), "
                         f"got {style_blend}")
    return [b / sum(blend) for b in blend]


def checked_init(init: Any) -> Any:
    """An init tensor as a valid (1, 3, H, W) image in [0, 1] (uint8 read as 0-255; NaN, 0-255 floats and
    batches refused with the reason); the names "content", "noise", "style" pass through."""
    if not isinstance(init, torch.Tensor):
        return init
    try:
        return load_image(init, min_size=1)
    except ValueError as err:
        raise ValueError(f"init: {err}") from None


def resolve_model(
    model: VGG19Features | None, weights: str | Path, pooling: str, device: str | torch.device
) -> tuple[VGG19Features, torch.device]:
    """The network and the device to run on: ``model`` moved to ``device`` (unless "auto"), or a new one."""
    if model is None:
        model = load_vgg19(weights, pooling=pooling, device=resolve_device(device))
        return model, model.mean.device
    if device == "auto":
        return model, model.mean.device
    dev = resolve_device(device)
    return model.to(dev), dev


@dataclass(frozen=True)
class RunSettings:
    """Everything a run needs to know besides the images, resolved: no None left that means "default"."""

    content_weight: float
    style_weight: float
    tv_weight: float
    content_layers: dict[str, float]
    style_layers: dict[str, float]
    init: str | torch.Tensor  # a name, or the checked (1, 3, H, W) image
    plan: list[tuple[int, int]]  # [(long edge, steps), ...], coarsest first
    device: torch.device
    precision: str  # "fp32", "bf16" or "fp16" ("auto" resolved for this device)
    blend: list[float]
    preset: str
    options: RunOptions  # everything as asked (checked): run.options.optimizer, .lr, .seed, .gram_norm, ...

    @property
    def total_steps(self) -> int:
        return sum(n for _, n in self.plan)

    def summary(self, pooling: str, cuda_graph_used: bool) -> dict[str, Any]:
        """The settings as ``StylizeResult.settings`` reports them: every option, with the resolved values."""
        return {
            **self.options.reported(),
            "content_weight": self.content_weight, "style_weight": self.style_weight, "tv_weight": self.tv_weight,
            "content_layers": self.content_layers, "style_layers": self.style_layers, "size": self.plan[-1][0],
            "sizes": [s for s, _ in self.plan], "steps": [n for _, n in self.plan], "precision": self.precision,
            "pooling": pooling, "style_blend": self.blend, "preset": self.preset, "cuda_graph": cuda_graph_used,
        }


def resolve_settings(model: VGG19Features, device: torch.device, n_styles: int, options: RunOptions) -> RunSettings:
    """Fill in what ``options`` (already checked) left to the preset of ``model``'s weights and to ``device``,
    and check what needs them: the number of style images, a tensor ``init``, fp16 on a CPU, all-zero weights."""
    o = options
    if n_styles == 0:
        raise ValueError("style is an empty list: pass at least one style image (a path, name, PIL image or tensor)")
    preset = preset_for(model.weights_source)
    alpha = check_weight("content_weight", preset.content_weight if o.content_weight is None else o.content_weight)
    beta = check_weight("style_weight", preset.style_weight if o.style_weight is None else o.style_weight)
    gamma = check_weight("tv_weight", preset.tv_weight if o.tv_weight is None else o.tv_weight)
    c_layers = layer_weights(o.content_layers, preset.content_layers, "content layer")
    s_layers = layer_weights(o.style_layers, preset.style_layers, "style layer")
    c_layers, s_layers = (c_layers if alpha else {}), (s_layers if beta else {})  # a zero weight: no such term
    if not c_layers and not s_layers and gamma == 0:
        raise ValueError("every weight is zero: there is nothing to optimise")
    size = int(o.size) if o.size is not None else default_size(device)
    return RunSettings(
        content_weight=alpha, style_weight=beta, tv_weight=gamma, content_layers=c_layers, style_layers=s_layers,
        init=checked_init(o.init), plan=scale_plan(size, o.scales, o.steps), device=device,
        precision=resolve_precision(o.precision, device), blend=blend_weights(o.style_blend, n_styles),
        preset=preset.name, options=o,
    )


@dataclass(frozen=True)
class RunImages:
    """The loaded images (1, 3, H, W) on the CPU: the photo, what the content term matches, the styles."""

    content: torch.Tensor
    work_content: torch.Tensor  # = content, or its luminance for preserve_color="luminance"
    styles: list[torch.Tensor]


def load_run_images(content: Any, style: Any, preserve_color: str | None, max_size: int | None = None) -> RunImages:
    """Load the photo and the style image(s) (downscaled on load to ``max_size``, so a huge photo works) and
    apply the colour option: "histogram" recolours each painting to the photo's colour statistics;
    "luminance" keeps only brightness on both sides."""
    photo = load_image(content, max_size=max_size)
    styles = [load_image(s, max_size=max_size) for s in (style if isinstance(style, (list, tuple)) else [style])]
    if preserve_color == "histogram":
        styles = [match_color(s, photo) for s in styles]
    if preserve_color == "luminance":
        return RunImages(photo, luminance_only(photo), [luminance_only(s, like=photo) for s in styles])
    return RunImages(photo, photo, styles)


def check_image_sizes(images: RunImages, run: RunSettings) -> None:
    """A ValueError saying which image the run's size (or a coarse scale) makes too small for the deepest layer
    it feeds: the painted image has the content's shape and feeds every layer, a style image its style layers.
    Computed from the shapes with ``stlib.images.resize``'s arithmetic: nothing is resized here."""
    every = [*run.content_layers, *run.style_layers]
    named = [("content image", images.content, every)]
    several = len(images.styles) > 1
    named += [(f"style image {i + 1}" if several else "style image", s, list(run.style_layers))
              for i, s in enumerate(images.styles)]
    final = run.plan[-1][0]
    for side in sorted({s for s, _ in run.plan}):
        for role, img, layers in named:
            need = layer_stride(deepest(layers)) if layers else 1
            h, w = img.shape[-2:]
            fed = side if role == "content image" else style_side(side, run.options.style_scale)
            ratio = fed / max(h, w)
            h, w = max(1, round(h * ratio)), max(1, round(w * ratio))
            if min(h, w) >= need:
                continue
            where = f"at size={final}" if side == final else f"at the {side} px coarse scale of the scales asked for"
            scaled = "" if role == "content image" or fed == side else f" (style_scale {run.options.style_scale:g})"
            raise ValueError(
                f"the {role} becomes {w}×{h} px {where}{scaled}, but VGG-19 needs at least {need} px on each side "
                f"here: use a larger size (--size on the command line){'' if side == final else ' or fewer scales'}"
                f"{' or a larger style_scale' if scaled else ''}, or crop the {role} to a less elongated shape"
            )


def style_side(side: int, style_scale: float) -> int:
    """The long edge the painting is fed at when the output's is ``side`` (``style_scale``: painting / output)."""
    return max(1, round(side * style_scale))


def count_styles(style: Any) -> int:
    """How many style images ``style`` is (a list or tuple blends several)."""
    return len(style) if isinstance(style, (list, tuple)) else 1
