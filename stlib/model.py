"""VGG-19's convolutional part as a named ``nn.Module``, and ``load_vgg19`` that fills it with weights.

Only the 16 convolutions (the *features*) are ever built: style transfer never needs the 548 MB
classifier. Layers are addressed by Gatys names (``model.layers.relu4_2``), never by index.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from .layers import VGG19_LAYERS, deepest, layer_channels, layer_index, layer_stride

#: ImageNet channel statistics that torchvision's VGG-19 was trained with (RGB, images in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Features(nn.Module):
    """VGG-19 features with ImageNet normalisation built in.

    Input: images ``(B, 3, H, W)`` with values in [0, 1]. ``model(image, layers)`` returns
    ``{name: (B, C, H / stride, W / stride)}``. ReLUs are not in-place, so a captured ``conv`` output is
    never overwritten by the ReLU that follows it.
    """

    def __init__(self, pooling: str = "max", device: str | torch.device | None = None) -> None:
        """``device="meta"`` builds the layers without allocating or initialising their weights (for loading
        weights into them with ``load_state_dict(..., assign=True)``); the mean/std buffers are always real."""
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
            if name.startswith("conv"):
                out_channels = layer_channels(name)
                modules[name] = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, device=device)
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


def check_request(image: torch.Tensor, layers: Iterable[str]) -> "list[str]":
    """The distinct layer names asked for, in order, after checking them and ``image`` (B, 3, H, W) float.

    A clear error for a misspelt layer, a wrong shape, integer pixels, or an image too small for the deepest
    layer. Shared by ``extract_features`` and the engine's fast forward (``stlib.engine.fast_features``).
    """
    wanted = list(dict.fromkeys(layers))
    for name in wanted:
        layer_index(name)  # a clear KeyError for a misspelt name
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(
            f"expected an image batch of shape (B, 3, H, W), got {tuple(image.shape)}; "
            "use stlib.load_image(...) to make one"
        )
    if wanted:
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
    return wanted


def extract_features(
    model: VGG19Features, image: torch.Tensor, layers: Iterable[str]
) -> "dict[str, torch.Tensor]":
    """Run ``image`` (B, 3, H, W) in [0, 1] through ``model`` and return ``{layer: activation}``.

    Only the layers up to the deepest requested one are evaluated (asking for relu1_1 costs one
    convolution). The image is moved to the model's device (and dtype) if it is elsewhere. This is the plain
    forward pass the course teaches; ``stlib.stylize`` runs a faster one (``stlib.engine.fast_features``).
    """
    wanted = check_request(image, layers)
    x = model.normalize(image.to(device=model.mean.device, dtype=model.mean.dtype))
    out: "dict[str, torch.Tensor]" = {}
    for name, module in model.layers.named_children():
        if len(out) == len(wanted):
            break  # nothing deeper is needed
        x = module(x)
        if name in wanted:
            out[name] = x
    return {name: out[name] for name in wanted}


def load_vgg19(
    weights: str | Path = "auto",
    pooling: str = "max",
    device: str | torch.device | None = None,
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
    # The state's tensors become the parameters (assign=True; resolve_weights returns fresh tensors): no second
    # copy of the 80 MB of weights, and no default initialisation to throw away (~0.1-0.2 GB less peak memory).
    model = VGG19Features(pooling=pooling, device="meta")
    model.layers.load_state_dict(state, assign=True)
    del state
    model.weights_source = source
    model.eval()
    model.requires_grad_(False)
    if device is not None:
        model.to(resolve_device(device))
    return model


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None -> CUDA if available, else Apple MPS if available, else CPU; anything else as given,
    checked: a ``ValueError`` for a device type stlib cannot run on (e.g. "meta") or one this machine lacks."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    usable = "use 'auto', 'cpu', 'cuda' (or 'cuda:1') or 'mps'"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):  # torch's own message lists every device type it knows
        raise ValueError(f"unknown device {device!r}: {usable}") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {device!r} cannot run style transfer (it holds no real data): {usable}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for, but this machine has no usable CUDA GPU; use 'auto' or 'cpu'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} was asked for, but Apple's MPS is not available here; use 'auto' or 'cpu'")
    return dev
