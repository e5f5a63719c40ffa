"""A feed-forward style network: one forward pass paints a photo in the style it was trained for.

Johnson, Alahi & Fei-Fei (2016, "Perceptual losses for real-time style transfer") train an *image
transformation network* once per style with Gatys et al.'s content and style losses; applying the style is
then a single forward pass (milliseconds) instead of an optimisation (seconds to minutes). The layout:

    photo (B, 3, H, W) in [0, 1]
      down1   9x9 conv, C channels            + norm + ReLU     (H, W)
      down2   3x3 conv stride 2, 2C channels  + norm + ReLU     (H/2, W/2)
      down3   3x3 conv stride 2, 4C channels  + norm + ReLU     (H/4, W/4)
      res1 ... resN   residual blocks of two 3x3 convs, 4C channels
      up1     2x upsampling, 3x3 conv to 2C   + norm + ReLU     (H/2, W/2)
      up2     2x upsampling, 3x3 conv to C    + norm + ReLU     (H, W)
      out     9x9 conv to 3 channels: a change to the photo's logits, sigmoid -> (B, 3, H, W) in [0, 1]

One difference from Johnson's network: the output is ``sigmoid(logit(photo) + out)`` and ``out``'s convolution
starts at zero, so an untrained network returns the photo itself and training learns the *change* a style makes
- the way ``stylize`` starts from the photo (``init="content"``). Measured on a 2-core CPU at 128 px (offline
weights): trained from scratch, the network had lost the photo's layout after 3 minutes (88 steps) and painted
texture blobs; starting from the photo keeps the layout from the first step.

Two choices are explicit, because the course compares them:

* ``norm="instance"`` (Ulyanov, Vedaldi & Lempitsky 2016): each image's channels are normalised over that
  image's own positions, so a picture's contrast does not depend on the other pictures of the batch;
  ``"batch"`` is Johnson's original batch normalisation.
* ``upsampling="nearest"``: nearest-neighbour 2x upsampling, then a 3x3 convolution (Odena, Dumoulin & Olah
  2016, "Deconvolution and checkerboard artifacts"); ``"transposed"``: a stride-2 transposed convolution, whose
  kernel overlaps unevenly and leaves a checkerboard pattern.

Convolutions pad by reflection (no dark frame at the border). Any image size works: the input is padded by
reflection to a multiple of 4 and the output cropped back.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("instance", "batch")
UPSAMPLINGS = ("nearest", "transposed")
#: How much the network shrinks the image before growing it back (two stride-2 convolutions).
DOWNSCALE = 4
#: Pixels are clamped to [eps, 1 - eps] before the logit, so that black and white stay finite (logit(1e-3) = -6.9).
LOGIT_EPS = 1e-3


@dataclass(frozen=True)
class NetConfig:
    """The architecture of a ``TransformNet``: what a saved style records so it can be rebuilt.

    ``channels``: C, the width of the first layer (Johnson et al.: 32); ``residual_blocks``: N (Johnson: 5).
    """

    channels: int = 32
    residual_blocks: int = 5
    norm: str = "instance"
    upsampling: str = "nearest"

    def __post_init__(self) -> None:
        if not (isinstance(self.channels, int) and self.channels >= 1):
            raise ValueError(f"channels must be a whole number >= 1, not {self.channels!r}")
        if not (isinstance(self.residual_blocks, int) and self.residual_blocks >= 0):
            raise ValueError(f"residual_blocks must be a whole number >= 0, not {self.residual_blocks!r}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, not {self.norm!r}")
        if self.upsampling not in UPSAMPLINGS:
            raise ValueError(f"upsampling must be one of {UPSAMPLINGS}, not {self.upsampling!r}")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (what a style file stores)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "NetConfig":
        """Rebuild from ``to_dict``'s output; unknown or missing fields raise ``ValueError``."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown network settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**dict(data))


#: Johnson et al.'s network (1.7 M parameters, 6.7 MB in float32): the default on a GPU.
JOHNSON = NetConfig(channels=32, residual_blocks=5)
#: A quarter of its width squared and 3 residual blocks (0.28 M parameters, 1.1 MB): the default on a CPU, where
#: VGG's forward and backward passes dominate a training step and the smaller network trains ~15 % faster.
SMALL = NetConfig(channels=16, residual_blocks=3)


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.BatchNorm2d(channels)


class ConvLayer(nn.Sequential):
    """Reflection padding and a convolution (``kernel`` odd), optionally followed by a norm and a ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, norm: str | None = None,
                 relu: bool = True) -> None:
        layers: "OrderedDict[str, nn.Module]" = OrderedDict()
        layers["pad"] = nn.ReflectionPad2d(kernel // 2)
        layers["conv"] = nn.Conv2d(c_in, c_out, kernel, stride=stride)
        if norm is not None:
            layers["norm"] = _norm(norm, c_out)
        if relu:
            layers["relu"] = nn.ReLU()
        super().__init__(layers)


class UpLayer(nn.Sequential):
    """2x larger, ``c_in`` -> ``c_out`` channels, then norm and ReLU: upsample-then-conv, or a transposed conv."""

    def __init__(self, c_in: int, c_out: int, norm: str, upsampling: str) -> None:
        layers: "OrderedDict[str, nn.Module]" = OrderedDict()
        if upsampling == "nearest":
            layers["upsample"] = nn.Upsample(scale_factor=2, mode="nearest")
            layers["pad"] = nn.ReflectionPad2d(1)
            layers["conv"] = nn.Conv2d(c_in, c_out, 3)
        else:  # 3x3 kernel, stride 2: every other output pixel receives two kernel taps per axis, the rest one
            layers["conv"] = nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1)
        layers["norm"] = _norm(norm, c_out)
        layers["relu"] = nn.ReLU()
        super().__init__(layers)


class ResidualBlock(nn.Module):
    """``x + conv-norm-relu-conv-norm(x)``: the block learns a change to its input (He et al. 2016)."""

    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3, norm=norm, relu=True)
        self.conv2 = ConvLayer(channels, channels, 3, norm=norm, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return x + self.conv2(self.conv1(x))


class TransformNet(nn.Module):
    """The image transformation network: ``net(photos)`` with photos (B, 3, H, W) in [0, 1] returns the
    stylised photos, same shape, in [0, 1]. Build it from a ``NetConfig`` (or its fields as keywords)."""

    def __init__(self, config: NetConfig | None = None, **fields: Any) -> None:
        super().__init__()
        if config is not None and fields:
            raise TypeError("pass either a NetConfig or its fields as keywords, not both")
        self.config = config if config is not None else NetConfig(**fields)
        c, norm = self.config.channels, self.config.norm
        self.down1 = ConvLayer(3, c, 9, norm=norm)
        self.down2 = ConvLayer(c, 2 * c, 3, stride=2, norm=norm)
        self.down3 = ConvLayer(2 * c, 4 * c, 3, stride=2, norm=norm)
        self.residuals = nn.Sequential(OrderedDict(
            (f"res{i + 1}", ResidualBlock(4 * c, norm)) for i in range(self.config.residual_blocks)))
        self.up1 = UpLayer(4 * c, 2 * c, norm, self.config.upsampling)
        self.up2 = UpLayer(2 * c, c, norm, self.config.upsampling)
        self.out = ConvLayer(c, 3, 9, relu=False)
        nn.init.zeros_(self.out.conv.weight)  # the untrained network returns its input (see the module's notes)
        nn.init.zeros_(self.out.conv.bias)

    def forward(self, photos: torch.Tensor) -> torch.Tensor:
        """Stylise ``photos`` (B, 3, H, W) in [0, 1] -> (B, 3, H, W) in [0, 1] (float32 whatever autocast runs)."""
        if photos.dim() != 4 or photos.shape[1] != 3:
            raise ValueError(f"expected photos of shape (B, 3, H, W), got {tuple(photos.shape)}; "
                             "use stlib.load_image(...) to make one")
        h, w = photos.shape[-2:]
        pad_h, pad_w = -h % DOWNSCALE, -w % DOWNSCALE
        x = photos
        if pad_h or pad_w:  # reflection needs the padding to be smaller than the side
            if pad_h >= h or pad_w >= w:
                raise ValueError(f"the image is {w}x{h} pixels; the network needs at least {DOWNSCALE} per side")
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        x = self.down3(self.down2(self.down1(x)))
        x = self.up2(self.up1(self.residuals(x)))
        change = self.out(x).float()[..., :h, :w]
        return torch.sigmoid(torch.logit(photos.float(), eps=LOGIT_EPS) + change)

    def parameter_count(self) -> int:
        """The number of trained numbers (weights, biases, norm scales and shifts)."""
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.config.to_dict().items())
