"""VGG-19's convolutional part as a named ``nn.Module``, and ``load_vgg19`` that fills it with weights.

Only the 16 convolutions (the *features*) are ever built: style transfer never needs the 548 MB
classifier. Layers are addressed by Gatys names (``model.layers.relu4_2``), never by index.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Optional, Union

import torch
from torch import nn

from .layers import VGG19_LAYERS, VGG19_CHANNELS, deepest, layer_index, layer_stride
from .precision import autocast_dtype

#: ImageNet channel statistics that torchvision's VGG-19 was trained with (RGB, images in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """VGG-19 features with ImageNet normalisation built in.

    Input: images ``(B, 3, H, W)`` with values in [0, 1]. ``model(image, layers)`` returns
    ``{name: (B, C, H / stride, W / stride)}``. ReLUs are not in-place, so a captured ``conv`` output is
    never overwritten by the ReLU that follows it.
    """

    def __init__(self, pooling: str = "max") -> None:
        super().__init__()
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', not {pooling!r}")
        self.pooling = pooling
        self.weights_source = "uninitialised"
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        modules: "OrderedDict[str, nn.Module]" = OrderedDict()
        in_channels = 3
        for name in VGG19_LAYERS:
            block = int(name[4] if name.startswith("pool") else name.split("_")[0][-1])
            if name.startswith("conv"):
                out_channels = VGG19_CHANNELS[block - 1]
                modules[name] = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
                in_channels = out_channels
            elif name.startswith("relu"):
                modules[name] = nn.ReLU(inplace=False)
            else:
                modules[name] = nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2)
        self.layers = nn.Sequential(modules)

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """Map an image in [0, 1] to the network's input statistics: ``(image - mean) / std``."""
        return (image - self.mean) / self.std

    def forward(self, image: torch.Tensor, layers: Iterable[str] = ("relu4_2",)) -> "dict[str, torch.Tensor]":
        """Activations of ``layers`` for ``image`` (B, 3, H, W) in [0, 1]; stops after the deepest one."""
        return extract_features(self, image, layers)

    def extra_repr(self) -> str:
        return f"pooling={self.pooling!r}, weights_source={self.weights_source!r}"


def extract_features(
    model: VGG19Features, image: torch.Tensor, layers: Iterable[str]
) -> "dict[str, torch.Tensor]":
    """Run ``image`` (B, 3, H, W) in [0, 1] through ``model`` and return ``{layer: activation}``.

    Only the layers up to the deepest requested one are evaluated (asking for relu1_1 costs one
    convolution). The image is moved to the model's device if it is elsewhere.
    """
    wanted = list(dict.fromkeys(layers))
    if not wanted:
        return {}
    for name in wanted:
        layer_index(name)  # a clear KeyError for a misspelt name
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(
            f"expected an image batch of shape (B, 3, H, W), got {tuple(image.shape)}; "
            "use stlib.load_image(...) to make one"
        )
    last = deepest(wanted)
    stride = layer_stride(last)
    if min(image.shape[-2:]) < stride:
        raise ValueError(
            f"the image is {image.shape[-1]}x{image.shape[-2]} pixels, too small to reach {last} "
            f"(which shrinks the image {stride}x); use at least {max(32, stride)} pixels per side"
        )
    if not image.is_floating_point():
        raise ValueError(
            f"expected float pixels in [0, 1], got a {image.dtype} image; use stlib.load_image(...) to convert it"
        )
    image = image.to(device=model.mean.device, dtype=model.mean.dtype)  # e.g. a float64 image, or one on the CPU
    x = model.normalize(image)
    out: "dict[str, torch.Tensor]" = {}
    remaining = set(wanted)
    for name, module in model.layers.named_children():
        if name == "conv1_1" and torch.is_autocast_enabled(x.device.type):
            # The first convolution stays float32 under autocast: bf16 would round the *pixels* to ~1/256,
            # hiding the small updates that L-BFGS makes late in a run. It costs ~1 % of the FLOPs.
            with torch.autocast(device_type=x.device.type, enabled=False):
                x = module(x.float())
            # Its output is rounded like every other activation: a float32 relu1_1 would cost 2x the memory
            # of the largest feature map plus a bf16 copy for conv1_2 (~370 bytes per pixel in all).
            x = x.to(autocast_dtype(x.device.type))
        else:
            x = module(x)
        if name in remaining:
            out[name] = x
            remaining.discard(name)
            if not remaining:
                break
    return {name: out[name] for name in wanted}


def load_vgg19(
    weights: Union[str, Path] = "auto",
    pooling: str = "max",
    device: Optional[Union[str, torch.device]] = None,
) -> VGG19Features:
    """A frozen, eval-mode VGG-19 feature extractor.

    ``weights``: ``"imagenet"`` (torchvision's ``VGG19_Weights.IMAGENET1K_V1``, downloaded once into the
    torch hub cache, classifier never loaded), a path to a weights file (``stlib weights export`` output
    or torchvision's full ``vgg19-*.pth``; checksum verified), ``"random"`` (seeded, identical on every
    machine: an offline approximation), or ``"auto"`` (``$STLIB_WEIGHTS`` if set, else ImageNet weights
    if cached or downloadable, else one loud warning and random weights).
    The model records where its weights came from in ``model.weights_source``.
    """
    from .weights import resolve_weights  # local import: weights imports this module's names

    state, source = resolve_weights(weights)
    model = VGG19Features(pooling=pooling)
    model.layers.load_state_dict(state)
    model.weights_source = source
    model.eval()
    model.requires_grad_(False)
    if device is not None:
        model.to(resolve_device(device))
    return model


def resolve_device(device: Optional[Union[str, torch.device]] = "auto") -> torch.device:
    """``"auto"``/None -> CUDA if available, else Apple MPS if available, else CPU; anything else as given."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)
