"""The engine's forward pass through VGG-19: ``stlib.extract_features``'s activations, computed fast and lean.

``stlib.extract_features`` (stlib/model.py) is the plain forward pass the course teaches and ``stlib.gatys``
uses. ``stylize``'s objective, its targets and the time/memory calibration use ``fast_features`` instead,
which returns the same activations (tests/test_fast_features.py) with four differences, each measured:
- under autocast the frozen weights are cast to bf16/fp16 once and kept (``_cast_parameters``), not at
  every step;
- under autocast the first convolution, conv1_1, runs in float32 (``_Fp32InputConv``): bf16 would round
  the pixels themselves;
- max-pooling keeps no int64 indices for the backward pass (``_MaxPool2x2``);
- weights being trained (requires_grad) fall back to plain autocast.
tests/test_gatys.py ties ``gatys`` (plain forward) to ``stylize`` (this one): two forward paths, one answer.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..model import VGG19Features, check_request
from .precision import autocast_dtype, autocast_enabled


def fast_features(
    model: VGG19Features, image: torch.Tensor, layers: Iterable[str]
) -> "dict[str, torch.Tensor]":
    """``stlib.extract_features(model, image, layers)``: ``{layer: (B, C, h, w)}`` for ``image`` (B, 3, H, W) in
    [0, 1], with the engine's four changes (module docstring). Stops after the deepest layer asked for."""
    wanted = check_request(image, layers)
    if not wanted:
        return {}
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


#: The backward of ``_MaxPool2x2`` recomputes int64 indices for at most this many pooled values at a time
#: (4 MB) once a map has more than ``POOL_BAND_FROM`` (16 MB of indices): at 512 px pool1 would otherwise hold
#: 33.5 MB of indices at the peak of the backward pass. Below that (256 px and less) one pass is the cheapest.
POOL_INDEX_BAND = 1 << 19
POOL_BAND_FROM = 1 << 21


class _MaxPool2x2(torch.autograd.Function):
    """``max_pool2d(x, 2, 2)`` that keeps no int64 indices for the backward pass: it recomputes them there.

    PyTorch's max-pool saves the position of every maximum as an int64 (8 bytes per output value: 63 MB at
    512 px for VGG's four pools, as much as a third of all saved activations in bf16). Its input is kept
    anyway (the preceding ReLU saves its output), so the backward recomputes the indices with the same
    kernel - the gradient is identical, ties included - for the cost of one more pooling pass. A large map is
    done in bands of whole window rows (``band`` pooled values each, from ``band_from`` on), each copied into the
    gradient: windows never straddle two bands, so the indices and the gradient are the same.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, band: int = POOL_INDEX_BAND,
                band_from: int = POOL_BAND_FROM) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.band, ctx.band_from = band, band_from
        return F.max_pool2d(x, 2, 2)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        b, c, h, w = x.shape
        rows = max(1, ctx.band // max(1, b * c * (w // 2)))  # pooled rows per band
        if rows >= h // 2 or b * c * (h // 2) * (w // 2) <= ctx.band_from:
            return _pool_backward(grad, x), None, None
        grad_x = torch.zeros_like(x, memory_format=torch.preserve_format)  # an odd last row gets no gradient
        for top in range(0, h // 2, rows):
            part = slice(2 * top, 2 * min(top + rows, h // 2))
            grad_x[:, :, part].copy_(_pool_backward(grad[:, :, top:top + rows], x[:, :, part]))
        return grad_x, None, None


def _pool_backward(grad: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The gradient of ``max_pool2d(x, 2, 2)`` for ``grad``, from indices recomputed by the same kernel."""
    with torch.no_grad():
        _, indices = torch.ops.aten.max_pool2d_with_indices(x, [2, 2], [2, 2])
    return torch.ops.aten.max_pool2d_with_indices_backward(grad, x, [2, 2], [2, 2], [0, 0], [1, 1], False, indices)
