"""A run's settings, resolved and validated once: ``stylize``'s arguments become a ``RunSettings``.

This is the one place where ``stylize`` checks what it was given (weights, layers, optimiser, colour
option, style blend, scales and steps, precision) and fills in what was left at None (the preset's
weights and layers, the default size). Nothing here runs the network.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import torch

from ..color import luminance_only, match_color
from ..images import load_image
from ..layers import deepest, layer_index, layer_stride
from ..model import VGG19Features, load_vgg19, resolve_device
from ..presets import preset_for
from .precision import resolve_precision
from .scales import scale_plan

LayerSpec = Union[Mapping[str, float], Sequence[str], str, None]  # Union: an alias is evaluated (Python 3.9)
OPTIMIZERS = ("lbfgs", "lbfgs-plain", "adam")
PRESERVE_COLOR = (None, "luminance", "histogram")
INITS = ("content", "noise", "style")
BALANCE_CHOICES = (None, "loss", "gradient")
#: The smallest long edge ``size`` may ask for (VGG-19 halves an image five times; load_image's minimum).
MIN_SIZE = 32


def default_size(device: str | torch.device) -> int:
    """The long edge ``stylize`` paints at when no size is given: 512 px on a GPU, 256 px on anything else
    (a size at which a few hundred L-BFGS steps finish in minutes on a laptop CPU)."""
    return 512 if torch.device(device).type == "cuda" else 256


def check_weight(name: str, value: float) -> float:
    """``value`` as a float, or a clear ValueError when it is not a finite number >= 0."""
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


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


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_values(n_styles: int, o: Mapping[str, Any]) -> None:
    """A ValueError naming the first of ``stylize``'s style count, size, steps, lr, seed or scales that cannot work."""
    if n_styles == 0:
        raise ValueError("style is an empty list: pass at least one style image (a path, name, PIL image or tensor)")
    size, steps, lr, scales = o["size"], o["steps"], o["lr"], o["scales"]
    if size is not None and (not _is_int(size) or size < MIN_SIZE):
        raise ValueError(f"size must be a whole number of pixels >= {MIN_SIZE} (the long edge) or None, not {size!r}")
    counts = list(steps) if isinstance(steps, (list, tuple)) else [steps]
    if not counts or not all(_is_int(n) and n >= 0 for n in counts):
        raise ValueError(f"steps must be a whole number >= 0 (or a list of them, one per scale), not {steps!r}")
    if lr is not None and (not isinstance(lr, numbers.Real) or not math.isfinite(lr) or lr <= 0):
        raise ValueError(f"lr must be a finite number > 0 (or None for the optimiser's default), not {lr!r}")
    if not _is_int(o["seed"]):
        raise ValueError(f"seed must be a whole number, not {o['seed']!r}")
    if not (scales is None or isinstance(scales, str) or (_is_int(scales) and scales >= 1)
            or (isinstance(scales, (list, tuple)) and scales and all(isinstance(f, numbers.Real) for f in scales))):
        raise ValueError("scales must be None, 'auto', a number of octaves >= 1 or a non-empty list of increasing "
                         f"fractions in (0, 1], not {scales!r}")


#: The largest ``style_scale``: the painting fed at 4x the output's size (a 512 px result reads a 2048 px painting).
MAX_STYLE_SCALE = 4.0


def check_style_scale(value: Any) -> float:
    """``style_scale`` as a float in (0, MAX_STYLE_SCALE], or a ValueError that says what it means."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) \
            or not 0 < value <= MAX_STYLE_SCALE:
        raise ValueError(f"style_scale must be a number in (0, {MAX_STYLE_SCALE:g}] - the painting's size relative to "
                         f"the output: 0.5 gives strokes half as large, 2 twice as large - not {value!r}")
    return float(value)


def style_side(side: int, style_scale: float) -> int:
    """The long edge the painting is fed at when the output's is ``side``."""
    return max(1, round(side * style_scale))


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
    optimizer: str
    lr: float | None
    init: str | torch.Tensor
    seed: int
    plan: list[tuple[int, int]]  # [(long edge, steps), ...], coarsest first
    device: torch.device
    precision: str  # "fp32", "bf16" or "fp16" ("auto" resolved for this device)
    cuda_graph: bool | None
    preserve_color: str | None
    blend: list[float]
    gram_norm: bool | str | None
    rtol: float
    every: int
    preset: str
    style_scale: float = 1.0
    balance: str | None = None  # None, "loss" or "gradient" (stlib.balance)
    diagnostics: bool = False  # measure per-layer gradient shares at the last scale's start and end

    @property
    def total_steps(self) -> int:
        return sum(n for _, n in self.plan)

    def summary(self, pooling: str, cuda_graph_used: bool) -> dict[str, Any]:
        """The settings as ``StylizeResult.settings`` reports them."""
        return {
            "content_weight": self.content_weight, "style_weight": self.style_weight, "tv_weight": self.tv_weight,
            "content_layers": self.content_layers, "style_layers": self.style_layers, "optimizer": self.optimizer,
            "lr": self.lr, "init": self.init if isinstance(self.init, str) else "tensor", "size": self.plan[-1][0],
            "sizes": [s for s, _ in self.plan], "steps": [n for _, n in self.plan], "seed": self.seed,
            "pooling": pooling, "preserve_color": self.preserve_color, "style_blend": self.blend,
            "gram_norm": self.gram_norm, "preset": self.preset, "cuda_graph": cuda_graph_used,
            "style_scale": self.style_scale, "balance": self.balance,
        }


def resolve_settings(model: VGG19Features, device: torch.device, n_styles: int, **options: Any) -> RunSettings:
    """Validate ``stylize``'s keyword arguments (``options``) and fill in the defaults for ``model``'s weights."""
    o = options
    check_values(n_styles, o)
    if o["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}, not {o['optimizer']!r}")
    if o["preserve_color"] not in PRESERVE_COLOR:
        raise ValueError(f"preserve_color must be None, 'luminance' or 'histogram', not {o['preserve_color']!r}")
    if isinstance(o["init"], str) and o["init"] not in INITS:
        raise ValueError(f"init must be 'content', 'noise', 'style' or an image tensor, not {o['init']!r}")
    if o["every"] < 1:
        raise ValueError("every must be >= 1")
    preset = preset_for(model.weights_source)
    alpha = check_weight("content_weight", preset.content_weight if o["content_weight"] is None else o["content_weight"])
    beta = check_weight("style_weight", preset.style_weight if o["style_weight"] is None else o["style_weight"])
    gamma = check_weight("tv_weight", preset.tv_weight if o["tv_weight"] is None else o["tv_weight"])
    c_layers = layer_weights(o["content_layers"], preset.content_layers, "content layer")
    s_layers = layer_weights(o["style_layers"], preset.style_layers, "style layer")
    c_layers, s_layers = (c_layers if alpha else {}), (s_layers if beta else {})  # a zero weight: no such term
    if not c_layers and not s_layers and gamma == 0:
        raise ValueError("every weight is zero: there is nothing to optimise")
    size = int(o["size"]) if o["size"] is not None else default_size(device)
    balance = o.get("balance")
    if balance not in BALANCE_CHOICES:
        raise ValueError(f"balance must be None, 'loss' or 'gradient' (stlib.balance), not {balance!r}")
    return RunSettings(
        content_weight=alpha, style_weight=beta, tv_weight=gamma, content_layers=c_layers, style_layers=s_layers,
        optimizer=o["optimizer"], lr=o["lr"], init=checked_init(o["init"]), seed=o["seed"], plan=scale_plan(size, o["scales"], o["steps"]),
        device=device, precision=resolve_precision(o["precision"], device), cuda_graph=o["cuda_graph"],
        preserve_color=o["preserve_color"], blend=blend_weights(o["style_blend"], n_styles), gram_norm=o["gram_norm"],
        rtol=float(o["rtol"]), every=int(o["every"]), preset=preset.name,
        style_scale=check_style_scale(o.get("style_scale", 1.0)), balance=balance,
        diagnostics=bool(o.get("diagnostics", False)),
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
            fed = side if role == "content image" else style_side(side, run.style_scale)
            ratio = fed / max(h, w)
            h, w = max(1, round(h * ratio)), max(1, round(w * ratio))
            if min(h, w) >= need:
                continue
            where = f"at size={final}" if side == final else f"at the {side} px coarse scale of the scales asked for"
            scaled = "" if role == "content image" or run.style_scale == 1 else f" (style_scale {run.style_scale:g})"
            raise ValueError(
                f"the {role} becomes {w}×{h} px {where}{scaled}, but VGG-19 needs at least {need} px on each side "
                f"here: use a larger size (--size on the command line){'' if side == final else ' or fewer scales'}"
                f"{' or a larger style_scale' if scaled else ''}, or crop the {role} to a less elongated shape"
            )


def count_styles(style: Any) -> int:
    """How many style images ``style`` is (a list or tuple blends several)."""
    return len(style) if isinstance(style, (list, tuple)) else 1
