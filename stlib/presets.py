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

#: Tuned by eye for stlib's seeded random weights (benchmarks/OFFLINE_WEIGHTS.md: astronaut with swirls and
#: with The Starry Night, 128 and 256 px, 60 L-BFGS steps). Their unweighted style losses fall ~2-8x per block;
#: the weights 1/2/3/5/10 only partly make up for it, keeping relu1_1 and relu2_1 (colour, fine texture) in
#: the lead: at 1/E_l-like weights (1/4/10/30/100) the deep layers, whose Grams random filters match while
#: keeping the photo's colours, took over and the astronaut's suit stayed orange; equal weights washed the
#: face out. At 256 px the style weight changes little above ~1e6 (the Grams are matched to <0.1 % of their
#: start either way); at 64 px 3e6 washed the photo out, so 1e6. TV 10 removes the speckle random filters leave.
OFFLINE = Preset(
    name="offline",
    content_weight=1.0,
    style_weight=1e6,
    style_layers={"relu1_1": 1.0, "relu2_1": 2.0, "relu3_1": 3.0, "relu4_1": 5.0, "relu5_1": 10.0},
    content_layers={name: 1.0 for name in CONTENT_LAYERS},
    tv_weight=10.0,
    source="stlib, tuned by eye on its seeded random weights with bundled images and The Starry Night "
    "(256 px, 60 L-BFGS steps; benchmarks/OFFLINE_WEIGHTS.md)",
)


def preset_for(weights_source: str) -> Preset:
    """The preset that suits a model's ``weights_source``: OFFLINE for random weights (also an exported
    copy of them, ``file:...``), IMAGENET otherwise."""
    from .weights import weights_origin

    return OFFLINE if weights_origin(weights_source) == "random" else IMAGENET
