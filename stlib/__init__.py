"""stlib: a teaching kit for Gatys et al.'s neural style transfer.

    import stlib
    result = stlib.stylize("astronaut", "swirls", steps=100)
    result.to_pil()
"""

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

__version__ = "0.1.0"

__all__ = [
    "CONTENT_LAYERS", "Estimate", "IMAGENET", "ImageLoadError", "OFFLINE", "OfflineWeightsWarning", "Preset", "STYLE_LAYERS",
    "StepInfo", "StopReason", "StylizeResult", "VGG19Features", "VGG19_LAYERS", "WeightsError", "bundled_image",
    "bundled_images", "compute_targets", "content_loss", "estimate", "extract_features", "gatys", "gram_matrix", "layer_index",
    "load_image", "load_vgg19", "objective", "preset_for", "receptive_field", "resize", "resolve_device",
    "save_image", "scale_plan", "style_layer_loss", "style_loss", "stylize", "to_pil", "tv_loss",
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
