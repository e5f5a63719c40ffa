"""Default weights for ``stylize``: one published setting for ImageNet weights, one tuned for offline weights.

Why two? Loss magnitudes depend on the network: seeded random filters give Gram matrices of a different
size than trained ones, so the published ratio leaves random-weight results almost unstyled. ``stylize``
picks the preset that matches ``model.weights_source`` unless you pass the weights yourself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .layers import CONTENT_LAYERS, STYLE_LAYERS


@dataclass(frozen=True)
class Preset:
    """A complete set of objective weights: ``total = content_weight * L_c + style_weight * L_s + tv_weight * TV``."""

    name: str
    content_weight: float
    style_weight: float
    style_layers: dict[str, float]
    content_layers: dict[str, float]
    tv_weight: float
    source: str = ""
    notes: str = field(default="", compare=False)


#: The setting of PyTorch's official tutorial "Neural Transfer Using PyTorch" (A. Jacq, W. Herring):
#: Gram matrices divided by C*H*W, mean-squared content and style losses, content weight 1, style
#: weight 1e6, the five style layers weighted equally, L-BFGS from the content image - used at the
#: layers of Gatys et al., "Image Style Transfer Using Convolutional Neural Networks", CVPR 2016
#: (content relu4_2; style relu1_1 ... relu5_1).
IMAGENET = Preset(
    name="imagenet",
    content_weight=1.0,
    style_weight=1e6,
    style_layers={name: 1.0 for name in STYLE_LAYERS},
    content_layers={name: 1.0 for name in CONTENT_LAYERS},
    tv_weight=0.0,
    source="PyTorch tutorial 'Neural Transfer Using PyTorch' (weights 1 / 1e6, Gram / CHW) at the layers of "
    "Gatys et al., CVPR 2016",
)

#: Tuned by hand for stlib's seeded random weights so that colour and texture visibly transfer.
#: With Gram / C*H*W, random filters give style losses that shrink ~10x per block, so deeper layers get
#: larger weights; a little total variation removes the speckle that random filters otherwise leave.
OFFLINE = Preset(
    name="offline",
    content_weight=1.0,
    style_weight=1e5,
    style_layers={"relu1_1": 1.0, "relu2_1": 5.0, "relu3_1": 20.0, "relu4_1": 100.0, "relu5_1": 500.0},
    content_layers={name: 1.0 for name in CONTENT_LAYERS},
    tv_weight=5.0,
    source="stlib, tuned by eye on its seeded random weights and bundled images (256 px, 80 L-BFGS steps)",
)


def preset_for(weights_source: str) -> Preset:
    """The preset that suits a model's ``weights_source``: OFFLINE for random weights (also an exported
    copy of them, ``file:...``), IMAGENET otherwise."""
    from .weights import weights_origin

    return OFFLINE if weights_origin(weights_source) == "random" else IMAGENET
