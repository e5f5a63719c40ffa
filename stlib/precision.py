"""Numeric precision for the VGG forward/backward pass: fp32, bf16 or fp16 autocast, and the memory layout.

Only the network runs in reduced precision; Gram matrices, losses and the image itself stay float32.
``fp32_gram`` computes float32 Gram matrices of bf16 (or channels-last) features without keeping a
float32 copy of the features for the backward pass, which is most of the memory a style layer costs.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any, Optional, Tuple, Union

import torch

from .gram import GRAM_NORMALIZATIONS

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: CPU flags of the instructions that make bf16 convolutions fast (Intel AMX, AVX-512 BF16; Zen 4+).
FAST_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.lru_cache(maxsize=None)
def _cpuinfo_flags(path: str = "/proc/cpuinfo") -> Tuple[str, ...]:
    """The CPU feature flags listed in ``path`` (read once per process; empty where there is no such file)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return ()
    for line in text.splitlines():
        if line.startswith("flags"):
            return tuple(line.split(":", 1)[1].split())
    return ()


def cpu_has_fast_bf16(flags: Optional[Tuple[str, ...]] = None) -> bool:
    """True when the CPU has AMX or AVX-512 BF16 instructions (bf16 convolutions are then 2-5x faster).

    ``flags`` defaults to this machine's ``/proc/cpuinfo`` flags (none on macOS/Windows: False).
    """
    flags = _cpuinfo_flags() if flags is None else flags
    return any(flag in flags for flag in FAST_BF16_FLAGS)


def cuda_precision(capability: Tuple[int, int]) -> str:
    """The fastest safe precision for a CUDA GPU of compute ``capability`` (major, minor).

    Ampere and newer (8.0+) have bf16 tensor cores -> "bf16"; Volta/Turing (7.x) have fp16 tensor cores
    only -> "fp16" with loss scaling; older GPUs gain little from half precision -> "fp32".
    """
    if capability >= (8, 0):
        return "bf16"
    if capability >= (7, 0):
        return "fp16"
    return "fp32"


def resolve_precision(precision: str, device: Union[str, torch.device]) -> str:
    """Pick "fp32", "bf16" or "fp16" for ``precision`` on ``device``; "auto" picks the fastest safe one.

    auto: bf16 on a CPU with AMX/AVX-512-BF16, bf16 on CUDA GPUs with bf16 tensor cores (compute
    capability 8.0+), fp16 on Volta/Turing GPUs (with loss scaling), fp32 otherwise (MPS, older CPUs/GPUs).
    """
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise ValueError(
                "fp16 is only for GPUs (CPUs compute it slowly and it overflows easily); "
                "on a CPU use precision='bf16' or 'fp32'"
            )
        return precision
    if device.type == "cuda":
        return cuda_precision(torch.cuda.get_device_capability(device))
    if device.type == "cpu" and cpu_has_fast_bf16():
        return "bf16"
    return "fp32"


def autocast(precision: str, device: Union[str, torch.device]) -> contextlib.AbstractContextManager:
    """A context that runs the network in ``precision`` ("fp32" means no autocast at all)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in ("bf16", "fp16"):
        raise ValueError(f"autocast precision must be 'fp32', 'bf16' or 'fp16', not {precision!r}")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def memory_format(precision: str, device: Union[str, torch.device]) -> torch.memory_format:
    """The layout the network and image should use: channels-last where it was measured to be faster.

    CPU bf16 (oneDNN): channels-last is ~15 % faster per step (benchmarks/RESULTS.md); CUDA bf16/fp16:
    tensor-core convolutions want channels-last. fp32 keeps the default NCHW layout.
    """
    if precision in ("bf16", "fp16") and torch.device(device).type in ("cpu", "cuda"):
        return torch.channels_last
    return torch.contiguous_format


def _channel_matrix(features: torch.Tensor) -> Tuple[torch.Tensor, bool]:
    """A (B, C, H*W) view of ``features`` (B, C, H, W) without copying; True when it is a channels-last view."""
    b, c, h, w = features.shape
    if features.is_contiguous():
        return features.reshape(b, c, h * w), False
    if features.is_contiguous(memory_format=torch.channels_last):
        return features.permute(0, 2, 3, 1).reshape(b, h * w, c).transpose(1, 2), True
    return features.contiguous().reshape(b, c, h * w), False


class _Fp32Gram(torch.autograd.Function):
    """G = F F^T / n in float32; saves only F itself (which the network keeps anyway), not a float32 copy."""

    @staticmethod
    def forward(ctx: Any, features: torch.Tensor, divisor: float) -> torch.Tensor:
        ctx.save_for_backward(features)
        ctx.divisor = divisor
        mat, _ = _channel_matrix(features)
        mat = mat.float()  # a transient copy for bf16/fp16 features; a view for float32 ones
        with torch.autocast(device_type=features.device.type, enabled=False):  # autocast would make it bf16
            gram = torch.bmm(mat, mat.transpose(1, 2))
        return gram / divisor if divisor != 1 else gram

    @staticmethod
    def backward(ctx: Any, grad_gram: torch.Tensor) -> Tuple[Optional[torch.Tensor], None]:
        (features,) = ctx.saved_tensors
        b, c, h, w = features.shape
        sym = (grad_gram + grad_gram.transpose(1, 2)).float()
        if ctx.divisor != 1:
            sym = sym / ctx.divisor
        mat, channels_last = _channel_matrix(features)
        mat = mat.float()
        with torch.autocast(device_type=features.device.type, enabled=False):
            if channels_last:  # dF^T = F^T sym, laid out (B, H*W, C) = channels-last (B, C, H, W)
                grad = torch.bmm(mat.transpose(1, 2), sym).view(b, h, w, c).permute(0, 3, 1, 2)
            else:
                grad = torch.bmm(sym, mat).view(b, c, h, w)
        return grad.to(features.dtype), None


def fp32_gram(features: torch.Tensor, normalize: Union[bool, str, None] = True) -> torch.Tensor:
    """Float32 Gram matrices ``(B, C, H, W) -> (B, C, C)`` of features in any dtype and memory layout.

    Equal to ``stlib.gram_matrix(features, normalize)`` (same normalisations), but a bf16 or
    channels-last feature map is never copied into a float32 tensor that autograd would keep until the
    backward pass: the backward recomputes the float32 view it needs. Saves ~30 % of the memory of a step.
    """
    if features.dim() != 4:
        raise ValueError(f"fp32_gram expects features of shape (B, C, H, W), got {tuple(features.shape)}")
    if normalize not in GRAM_NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {list(GRAM_NORMALIZATIONS)}, not {normalize!r}")
    b, c, h, w = features.shape
    divisor = {"C*H*W": c * h * w, "H*W": h * w, "1": 1}[GRAM_NORMALIZATIONS[normalize]]
    return _Fp32Gram.apply(features, float(divisor))
