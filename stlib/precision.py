"""Numeric precision for the VGG forward/backward pass: fp32, bf16 or fp16 autocast.

Only the network runs in reduced precision; Gram matrices, losses and the image itself stay float32.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has AMX or AVX-512 BF16 instructions (bf16 convolutions are then ~4x faster)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in ("amx_bf16", "avx512_bf16"))


def resolve_precision(precision: str, device: torch.device) -> str:
    """Pick "fp32", "bf16" or "fp16" for ``precision`` on ``device``; "auto" picks the fastest safe one.

    auto: bf16 on a CPU with AMX/AVX-512-BF16, bf16 on CUDA GPUs that support it, fp16 on older CUDA
    GPUs (with loss scaling), fp32 otherwise (MPS, older CPUs).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise ValueError("fp16 is only for GPUs; on a CPU use precision='bf16' or 'fp32'")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_has_fast_bf16():
        return "bf16"
    return "fp32"


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """A context that runs the network in ``precision`` ("fp32" means no autocast at all)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)
