"""What the studio's controls decide (``StudioSettings``), the one mapping from it to ``stylize`` keywords,
and the named starting points a lecture switches between (presets). No widgets and no torch here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..presets import Preset
from ..units import format_number

#: "start from" choices: (label, value). "current" continues from the picture on screen (a warm start).
INIT_CHOICES = (("content photo", "content"), ("recoloured photo", "palette"), ("noise", "noise"),
                ("style image", "style"), ("current image", "current"))
OPTIMIZER_CHOICES = (("L-BFGS", "lbfgs"), ("Adam", "adam"))
POOLING_CHOICES = (("max", "max"), ("average", "avg"))
#: What a sweep can vary (``stlib.studio.sweep.sweep_plan``): (label, kind).
SWEEP_KINDS = (("style/content ratio", "ratio"), ("TV weight", "tv"), ("start image", "init"),
               ("optimizer", "optimizer"), ("pooling", "pooling"), ("style layers, added", "layers"),
               ("one style layer", "layer"))


@dataclass(frozen=True)
class StudioSettings:
    """Everything the controls decide, read in one go; ``content``/``style`` are bundled names or upload keys.

    ``style_layers`` holds only the ticked layers; ``tv_weight`` is 0 when TV is off."""

    content: str
    style: str
    content_weight: float
    style_weight: float
    style_layers: dict[str, float]
    tv_weight: float
    size: int
    steps: int
    optimizer: str = "lbfgs"
    init: str = "content"
    preserve_color: bool = False
    pooling: str = "max"
    style_scale: float = 1.0  # stroke size: the painting's size relative to the output

    def stylize_kwargs(self, **overrides: Any) -> dict[str, Any]:
        """The ``stylize`` keywords these settings mean (the only place that mapping is written);
        ``overrides`` replace or add keywords (``init``, ``steps``, ``scales``, ``callback`` ...).
        ``pooling`` is not a keyword: it picks the network (see ``Worker.model_for``)."""
        kwargs: dict[str, Any] = {
            "content_weight": self.content_weight, "style_weight": self.style_weight,
            "style_layers": dict(self.style_layers), "tv_weight": self.tv_weight, "steps": self.steps,
            "optimizer": self.optimizer, "init": self.init, "size": self.size,
            "preserve_color": "luminance" if self.preserve_color else None, "style_scale": self.style_scale,
        }
        kwargs.update(overrides)
        return kwargs

    def changes_from(self, other: StudioSettings) -> list[str]:
        """Short descriptions of what differs from ``other`` (e.g. ``"style weight 1e5 → 1e6"``)."""
        out: list[str] = []
        for name in ("content", "style", "content_weight", "style_weight", "tv_weight", "size", "steps",
                     "optimizer", "init", "preserve_color", "pooling", "style_scale"):
            old, new = getattr(other, name), getattr(self, name)
            if old != new:
                show = format_number if isinstance(new, float) else str
                out.append(f"{name.replace('_', ' ')} {show(old)} \u2192 {show(new)}")
        if self.style_layers != other.style_layers:
            out.append("style layers")
        return out


@dataclass(frozen=True)
class StudioPreset:
    """A named change to the objective, applied on top of the weights' own preset (``stlib.presets``)."""

    name: str
    description: str
    changes: dict[str, Any] = field(default_factory=dict)
    style_factor: float = 1.0


#: What the preset menu offers. Style weights are relative to the weights' preset, because loss magnitudes
#: differ between ImageNet and offline weights (see stlib/presets.py); x100 / /100 is two decades, far
#: enough that one side of the objective clearly wins.
PRESETS: tuple[StudioPreset, ...] = (
    StudioPreset("tutorial-like", "PyTorch tutorial: from the photo, L-BFGS, max pooling, no TV",
                 {"init": "content", "optimizer": "lbfgs", "pooling": "max", "tv_off": True}),
    StudioPreset("paper-like", "Gatys et al. 2016: from white noise, average pooling",
                 {"init": "noise", "optimizer": "lbfgs", "pooling": "avg"}),
    StudioPreset("style wins", "style weight x100: the photo dissolves into texture", style_factor=100.0),
    StudioPreset("content wins", "style weight /100: little more than the photo", style_factor=0.01),
)


def preset_settings(base: StudioSettings, weights: Preset, name: str) -> StudioSettings:
    """``base`` with the objective of ``weights`` (the network's preset), changed as the studio preset
    ``name`` says; images and size stay as they are."""
    found = {p.name: p for p in PRESETS}
    if name not in found:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(found)}")
    p = found[name]
    changes = dict(p.changes)
    tv = 0.0 if changes.pop("tv_off", False) else weights.tv_weight
    return replace(base, content_weight=weights.content_weight, style_weight=weights.style_weight * p.style_factor,
                   style_layers=dict(weights.style_layers), tv_weight=tv, **changes)
