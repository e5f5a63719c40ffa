"""stlib: a teaching kit for Gatys et al.'s neural style transfer.

    import stlib
    result = stlib.stylize("astronaut", "swirls", steps=100)
    result.to_pil()
"""

import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names below, for type checkers and IDEs; at run time they load on first use
    from .engine.budget import Estimate, estimate
    from .gatys import gatys
    from .gram import gram_matrix
    from .images import ImageLoadError, bundled_image, bundled_images, load_image, resize, save_image, to_pil
    from .layers import CONTENT_LAYERS, STYLE_LAYERS, VGG19_LAYERS, layer_index, receptive_field
    from .losses import content_loss, style_layer_loss, style_loss, tv_loss
    from .model import VGG19Features, extract_features, load_vgg19, resolve_device
    from .presets import IMAGENET, OFFLINE, Preset, preset_for
    from .result import StepInfo, StopReason, StylizeResult
    from .transfer import compute_targets, objective, scale_plan, stylize
    from .weights import OfflineWeightsWarning, WeightsError

#: public name -> the module that defines it. ``import stlib`` imports nothing heavy (the ``stlib`` command
#: catches Ctrl-C from its first line, before torch loads); ``stlib.stylize`` imports its module on first use.
_EXPORTS = {
    "Estimate": "engine.budget", "estimate": "engine.budget", "gatys": "gatys", "gram_matrix": "gram",
    "ImageLoadError": "images", "bundled_image": "images", "bundled_images": "images", "load_image": "images",
    "resize": "images", "save_image": "images", "to_pil": "images", "CONTENT_LAYERS": "layers",
    "STYLE_LAYERS": "layers", "VGG19_LAYERS": "layers", "layer_index": "layers", "receptive_field": "layers",
    "content_loss": "losses", "style_layer_loss": "losses", "style_loss": "losses", "tv_loss": "losses",
    "VGG19Features": "model", "extract_features": "model", "load_vgg19": "model", "resolve_device": "model",
    "IMAGENET": "presets", "OFFLINE": "presets", "Preset": "presets", "preset_for": "presets", "StepInfo": "result",
    "StopReason": "result", "StylizeResult": "result", "compute_targets": "transfer", "objective": "transfer",
    "scale_plan": "transfer", "stylize": "transfer", "OfflineWeightsWarning": "weights", "WeightsError": "weights",
}

__version__ = "0.1.0"

__all__ = [
    "CONTENT_LAYERS", "Estimate", "IMAGENET", "ImageLoadError", "OFFLINE", "OfflineWeightsWarning", "Preset", "STYLE_LAYERS",
    "StepInfo", "StopReason", "StylizeResult", "VGG19Features", "VGG19_LAYERS", "WeightsError", "bundled_image",
    "bundled_images", "compute_targets", "content_loss", "estimate", "extract_features", "gatys", "gram_matrix", "layer_index",
    "load_image", "load_vgg19", "objective", "preset_for", "receptive_field", "resize", "resolve_device",
    "save_image", "scale_plan", "style_layer_loss", "style_loss", "stylize", "to_pil", "tv_loss",
]


def __getattr__(name: str):
    """Public names load their module on first use; ``stlib.Studio`` and the course modules too."""
    import importlib
    import importlib.util

    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    if name == "Studio":
        from .studio import Studio

        return Studio
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:  # a submodule, e.g. stlib.images
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'stlib' has no attribute {name!r}")


def __dir__() -> "list[str]":
    return sorted(set(globals()) | set(_EXPORTS) | {"Studio"})


class _Package(types.ModuleType):
    """``stlib.gatys`` is the function even after ``import stlib.gatys`` (which binds the submodule to the
    package attribute of the same name; the eager ``from .gatys import gatys`` used to rebind it)."""

    def __getattribute__(self, name: str):
        value = super().__getattribute__(name)
        if name == "gatys" and isinstance(value, types.ModuleType):
            return value.gatys
        return value


sys.modules[__name__].__class__ = _Package
