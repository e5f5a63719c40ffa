"""stlib: a teaching kit for Gatys et al.'s neural style transfer.

    import stlib
    result = stlib.stylize("astronaut", "swirls", steps=100)
    result.to_pil()
"""
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names below, for type checkers and IDEs; at run time they load on first use
    from .algorithm import gatys
    from .engine.budget import estimate
    from .gram import gram_matrix
    from .images import bundled_images, load_image, resize, save_image
    from .layers import STYLE_LAYERS, VGG19_LAYERS, layer_index
    from .losses import content_loss, style_layer_loss, tv_loss
    from .model import extract_features, load_vgg19
    from .presets import preset_for
    from .result import StopReason, StylizeResult
    from .transfer import stylize

#: public name -> the module that defines it. ``import stlib`` imports nothing heavy (the ``stlib`` command
#: catches Ctrl-C from its first line, before torch loads); ``stlib.stylize`` imports its module on first use.
_EXPORTS = {
    "gatys": "algorithm", "estimate": "engine.budget", "gram_matrix": "gram", "bundled_images": "images",
    "load_image": "images", "resize": "images", "save_image": "images", "STYLE_LAYERS": "layers",
    "VGG19_LAYERS": "layers", "layer_index": "layers", "content_loss": "losses", "style_layer_loss": "losses",
    "tv_loss": "losses", "extract_features": "model", "load_vgg19": "model", "preset_for": "presets",
    "StopReason": "result", "StylizeResult": "result", "stylize": "transfer",
}

__version__ = "0.1.0"

# What the notebooks use; everything else is imported from its module (stlib.layers, stlib.images,
# stlib.presets, stlib.result, stlib.engine.objective, ...), so that this list reads as the course.
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """Public names load their module on first use; ``stlib.Studio`` and the submodules too."""
    import importlib
    import importlib.util

    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    if name == "Studio":
        from .studio import Studio

        return Studio
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:  # a submodule, e.g. stlib.plots
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'stlib' has no attribute {name!r}")


def __dir__() -> "list[str]":
    return sorted(set(globals()) | set(_EXPORTS) | {"Studio"})
