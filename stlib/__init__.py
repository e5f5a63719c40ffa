"""stlib: a teaching kit for Gatys et al.'s neural style transfer.

    import stlib
    result = stlib.stylize("astronaut", "swirls", steps=100)
    result.to_pil()
"""

from .engine.budget import estimate
from .gatys import gatys
from .gram import gram_matrix
from .images import bundled_images, load_image, resize, save_image
from .layers import STYLE_LAYERS, VGG19_LAYERS, layer_index
from .losses import content_loss, style_layer_loss, tv_loss
from .model import extract_features, load_vgg19
from .presets import preset_for
from .result import StopReason, StylizeResult
from .transfer import stylize

__version__ = "0.1.0"

# What the notebooks use; everything else is imported from its module (stlib.layers, stlib.images,
# stlib.presets, stlib.result, stlib.engine.objective, ...), so that this list reads as the course.
__all__ = [
    "STYLE_LAYERS", "StopReason", "StylizeResult", "VGG19_LAYERS", "bundled_images", "content_loss", "estimate",
    "extract_features", "gatys", "gram_matrix", "layer_index", "load_image", "load_vgg19", "preset_for", "resize",
    "save_image", "style_layer_loss", "stylize", "tv_loss",
]


def __getattr__(name: str):
    """``stlib.Studio`` is imported on first use, so ``import stlib`` does not pull in ipywidgets."""
    if name == "Studio":
        from .studio import Studio

        return Studio
    if name in ("checks", "course", "plots"):  # course modules, imported on first use (plots pulls in matplotlib)
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'stlib' has no attribute {name!r}")
