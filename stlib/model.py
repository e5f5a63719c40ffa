"""VGG-19's convolutional part as a named ``nn.Module``, and ``load_vgg19`` that fills it with weights.

Only the 16 convolutions (the *features*) are ever built: style transfer never needs the 548 MB
classifier. Layers are addressed by Gatys names (``model.layers.relu4_2``), never by index.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .layers import VGG19_LAYERS, deepest, layer_channels, layer_index, layer_stride
from .engine.precision import autocast_dtype, autocast_enabled

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
    reduced = autocast_enabled(x.device.type)
    low = autocast_dtype(x.device.type) if reduced else None
    for name, module in model.layers.named_children():
        if isinstance(module, nn.Conv2d) and reduced:
            # The first convolution stays float32 under autocast: bf16 would round the *pixels* to ~1/256,
            # hiding the small updates that L-BFGS makes late in a run. It costs ~1 % of the FLOPs. Its output
            # is rounded like every other activation: a float32 relu1_1 would cost 2x the memory of the largest
            # feature map plus a bf16 copy for conv1_2 (~370 bytes per pixel in all).
            if module.weight.requires_grad:  # weights being trained: plain autocast, no cached casts
                if name == "conv1_1":
                    with torch.autocast(device_type=x.device.type, enabled=False):
                        x = module(x.float())
                    x = x.to(low)
                else:
                    x = module(x)
            else:
                weight, bias = _cast_parameters(module, low)
                if name == "conv1_1":
                    x = _Fp32InputConv.apply(x, module.weight, module.bias, weight, module.padding)
                else:
                    x = F.conv2d(x.to(low), weight, bias, module.stride, module.padding)
        elif _is_pool2x2(module) and torch.is_grad_enabled() and x.requires_grad:
            x = _MaxPool2x2.apply(x)
        else:
            x = module(x)
        if name in remaining:
            out[name] = x
            remaining.discard(name)
            if not remaining:
                break
    return {name: out[name] for name in wanted}


def _cast_parameters(conv: nn.Conv2d, dtype: torch.dtype) -> "tuple[torch.Tensor, torch.Tensor | None]":
    """``conv``'s frozen weight and bias in ``dtype`` (and the weight's memory layout), cast once and kept.

    Autocast casts every weight again at each ``with autocast`` block, i.e. at every optimisation step
    (~13 M parameters up to relu5_1: ~3 ms of a ~130 ms step at 256 px). The copy is the one autocast would
    hold during the step anyway; it is made again whenever the weight changes (new tensor, in-place edit,
    ``model.to(...)``), so a stale copy is never used.
    """
    weight, bias = conv.weight, conv.bias
    key = (dtype, weight.device, weight.data_ptr(), weight._version, weight.stride(),
           None if bias is None else (bias.data_ptr(), bias._version))
    cached = conv.__dict__.get("_stlib_cast")
    if cached is None or cached[0] != key:
        with torch.no_grad():
            low_w = weight.detach().to(dtype)  # preserves the memory layout (channels-last stays channels-last)
            low_b = None if bias is None else bias.detach().to(dtype)
        cached = (key, low_w, low_b)
        conv.__dict__["_stlib_cast"] = cached  # a plain attribute: not a buffer, never saved in a state_dict
    return cached[1], cached[2]


class _Fp32InputConv(torch.autograd.Function):
    """conv1_1 under autocast: float32 forward (pixels are not rounded), output rounded to the autocast dtype.

    The backward - the gradient for the image - is computed in that reduced dtype from the reduced-precision
    weight, as every other layer's backward is: the incoming gradient is already bf16, and a float32
    backward would need a float32 copy of it (4 bytes per pixel per channel) and a float32 convolution
    (~3x slower on AMX). Weights are frozen, so no weight gradient is computed.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                low_weight: torch.Tensor, padding: Any) -> torch.Tensor:
        ctx.save_for_backward(low_weight)
        ctx.padding, ctx.input_shape, ctx.input_dtype = padding, x.shape, x.dtype
        ctx.channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=x.device.type, enabled=False):
            y = F.conv2d(x.float(), weight.float(), None if bias is None else bias.float(), 1, padding)
        return y.to(low_weight.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None, None]:
        (low_weight,) = ctx.saved_tensors
        grad_x = None
        if ctx.needs_input_grad[0]:
            with torch.autocast(device_type=grad.device.type, enabled=False):
                grad_x = torch.nn.grad.conv2d_input(ctx.input_shape, low_weight, grad.to(low_weight.dtype),
                                                    padding=ctx.padding)
            fmt = torch.channels_last if ctx.channels_last else torch.contiguous_format
            grad_x = grad_x.to(dtype=ctx.input_dtype, memory_format=fmt)
        return grad_x, None, None, None, None


def _is_pool2x2(module: nn.Module) -> bool:
    """True for VGG's pooling layers when max-pooling: nn.MaxPool2d(2, 2) without padding, dilation or ceil."""
    return (isinstance(module, nn.MaxPool2d) and module.kernel_size in (2, (2, 2)) and module.stride in (2, (2, 2))
            and module.padding in (0, (0, 0)) and module.dilation in (1, (1, 1)) and not module.ceil_mode
            and not module.return_indices)


class _MaxPool2x2(torch.autograd.Function):
    """``max_pool2d(x, 2, 2)`` that keeps no int64 indices for the backward pass: it recomputes them there.

    PyTorch's max-pool saves the position of every maximum as an int64 (8 bytes per output value: 63 MB at
    512 px for VGG's four pools, as much as a third of all saved activations in bf16). Its input is kept
    anyway (the preceding ReLU saves its output), so the backward recomputes the indices with the same
    kernel - the gradient is identical, ties included - for the cost of one more pooling pass.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return F.max_pool2d(x, 2, 2)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        with torch.no_grad():
            _, indices = torch.ops.aten.max_pool2d_with_indices(x, [2, 2], [2, 2])
        return torch.ops.aten.max_pool2d_with_indices_backward(grad, x, [2, 2], [2, 2], [0, 0], [1, 1], False,
                                                                 indices)


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
