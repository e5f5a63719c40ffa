"""Published style-transfer settings, and their conversion into stlib's units (notebook 03's table).

Every implementation writes the same objective ``alpha * L_content + beta * sum_l v_l * E_l`` with its own
constants inside the losses. stlib's units are: content loss = mean squared error of the features, style
loss per layer = mean squared error of Gram matrices divided by ``C*H*W`` (``stlib.content_loss``,
``stlib.style_layer_loss``). A reference's losses are these times a known factor:

- Gram divided by ``H*W`` (pystiche) instead of ``C*H*W``: the Gram is ``C`` times larger, its squared
  error ``C**2`` times;
- raw Gram sums with ``sum (G - A)**2 / (4 C**2 (H*W)**2)`` (Gatys et al.): ``C**2 / 4`` times stlib's when
  the painting has the photo's size (raw sums grow with the number of positions, so at other sizes the
  painting's Gram is off by the ratio of the areas: one more reason stlib divides by C*H*W);
- content ``1/2 * sum (F - P)**2`` (Gatys et al.): ``N / 2`` times stlib's mean, ``N = C*H*W``.

``in_stlib_units`` turns a setting into the content weight and per-layer style weights that make stlib's
objective *equal* to the reference's (tests/test_conventions.py checks it against reference implementations
written from each formula). What cannot be converted by algebra - another network (Caffe's VGG, Gatys's
rescaled one) or another input range (0-255) - enters as measured factors (``content_scale``,
``style_scales``), which notebook 03 measures on the network at hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .layers import STYLE_LAYERS, layer_index

#: Gram normalisations: what the raw sum ``F F^T`` is divided by.
GRAM_DIVISORS = ("C*H*W", "H*W", "1")
#: Style-loss reductions: "mean" = mean squared error over the C x C entries; "gatys" = sum / (4 C^2 (H*W)^2).
STYLE_REDUCTIONS = ("mean", "gatys")
#: Content-loss reductions: "mean" = mean squared error; "half_sum" = 1/2 * sum of squares (Gatys et al.).
CONTENT_REDUCTIONS = ("mean", "half_sum")


@dataclass(frozen=True)
class Convention:
    """One published setting: its layers, the constants inside its losses, its weights and its input.

    ``style_layers`` maps layer -> v_l (the per-layer weight inside the style sum); ``input_range`` is
    "imagenet" (pixels in [0, 1], then ImageNet mean/std, as torchvision's VGG-19) or "caffe" (0-255, mean
    subtracted), which only a measured factor can convert.
    """

    name: str
    content_layer: str
    style_layers: Mapping[str, float]
    gram_divisor: str
    style_reduction: str
    content_reduction: str
    content_weight: float
    style_weight: float
    input_range: str
    source: str

    def __post_init__(self) -> None:
        for name in [self.content_layer, *self.style_layers]:
            layer_index(name)
        if self.gram_divisor not in GRAM_DIVISORS:
            raise ValueError(f"gram_divisor must be one of {GRAM_DIVISORS}, not {self.gram_divisor!r}")
        if self.style_reduction not in STYLE_REDUCTIONS:
            raise ValueError(f"style_reduction must be one of {STYLE_REDUCTIONS}, not {self.style_reduction!r}")
        if self.content_reduction not in CONTENT_REDUCTIONS:
            raise ValueError(f"content_reduction must be one of {CONTENT_REDUCTIONS}, not {self.content_reduction!r}")


#: PyTorch's tutorial "Neural Transfer Using PyTorch": pre-ReLU layers, content conv2_2, Gram / (C*H*W), MSE.
PYTORCH_TUTORIAL = Convention(
    "PyTorch tutorial", "conv2_2", {n: 1.0 for n in ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1")},
    "C*H*W", "mean", "mean", 1.0, 1e6, "imagenet", "pytorch.org/tutorials/advanced/neural_style_tutorial")
#: pystiche's published example (same torchvision weights): Gram / (H*W), MSE, layer weights averaged, 1 / 1e3.
PYSTICHE = Convention(
    "pystiche example", "relu4_2", {n: 1 / len(STYLE_LAYERS) for n in STYLE_LAYERS},
    "H*W", "mean", "mean", 1.0, 1e3, "imagenet", "pystiche's example 'NST with pystiche' (500 px)")
#: Johnson's neural-style (Lua/Torch): Caffe VGG-19 on 0-255 input, Gram / (C*H*W), MSE, content 5, style 100.
JOHNSON = Convention(
    "Johnson neural-style", "relu4_2", {n: 1.0 for n in STYLE_LAYERS},
    "C*H*W", "mean", "mean", 5.0, 100.0, "caffe", "github.com/jcjohnson/neural-style defaults")


def gatys(ratio: float) -> Convention:
    """Gatys et al. 2016 with ``alpha / beta = ratio`` (they report 1e-3 ... 1e-4): raw Gram sums, the
    ``1 / (4 N^2 M^2)`` style loss with ``w_l = 1/5``, the ``1/2 * sum`` content loss, 0-255 Caffe input."""
    return Convention(
        f"Gatys et al., alpha/beta = {ratio:g}", "relu4_2", {n: 1 / len(STYLE_LAYERS) for n in STYLE_LAYERS},
        "1", "gatys", "half_sum", ratio, 1.0, "caffe", "Gatys, Ecker, Bethge, CVPR 2016")


#: The settings notebook 03's table converts.
CONVENTIONS = (PYTORCH_TUTORIAL, PYSTICHE, JOHNSON, gatys(1e-3), gatys(1e-4))


def style_factor(convention: Convention, channels: int) -> float:
    """How many times stlib's ``style_layer_loss`` a layer of ``channels`` channels this convention's loss is."""
    if convention.style_reduction == "gatys":
        if convention.gram_divisor != "1":
            raise ValueError("the 'gatys' style loss is defined on raw Gram sums (gram_divisor '1')")
        return channels ** 2 / 4
    if convention.gram_divisor == "1":
        raise ValueError("a mean squared error of raw Gram sums depends on H*W: not a constant factor")
    return float(channels ** 2) if convention.gram_divisor == "H*W" else 1.0


def content_factor(convention: Convention, numel: int) -> float:
    """How many times stlib's ``content_loss`` this convention's content loss is, for features of ``numel``
    = C*H*W elements."""
    return numel / 2 if convention.content_reduction == "half_sum" else 1.0


@dataclass(frozen=True)
class StlibWeights:
    """A setting in stlib's units: ``content_weight * content_loss + sum_l style_layers[l] * style_layer_loss``
    (style_weight 1) equals the reference's objective."""

    content_weight: float
    style_layers: dict[str, float]

    def per_unit_content(self) -> dict[str, float]:
        """The style weight per layer when the content weight is 1 (notebook 03's table; only ratios matter)."""
        return {name: w / self.content_weight for name, w in self.style_layers.items()}


def in_stlib_units(
    convention: Convention,
    channels: Mapping[str, int],
    content_numel: int,
    content_scale: float = 1.0,
    style_scales: Mapping[str, float] | None = None,
) -> StlibWeights:
    """The weights that make stlib's objective equal ``convention``'s.

    ``channels`` maps each style layer to its channel count C; ``content_numel`` is C*H*W of the content
    layer's features (Gatys's summed content loss grows with it). ``content_scale`` and ``style_scales``
    (layer -> factor) are what algebra cannot give: how much larger the reference's network/input range makes
    each loss (1 = the same network and input; notebook 03 measures the 0-255 range).
    """
    scales = {name: 1.0 for name in convention.style_layers} if style_scales is None else dict(style_scales)
    missing = [n for n in convention.style_layers if n not in channels or n not in scales]
    if missing:
        raise ValueError(f"channels and style_scales need every style layer of {convention.name!r}; missing {missing}")
    content = convention.content_weight * content_factor(convention, content_numel) * content_scale
    style = {name: convention.style_weight * v * style_factor(convention, channels[name]) * scales[name]
             for name, v in convention.style_layers.items()}
    return StlibWeights(content, style)
