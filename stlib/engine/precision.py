"""Numeric precision for the VGG forward/backward pass: fp32, bf16 or fp16 autocast, and the memory layout.

Only the network runs in reduced precision; Gram matrices, losses and the image itself stay float32.
``fp32_gram`` computes float32 Gram matrices of bf16 (or channels-last) features without keeping a
float32 copy of the features for the backward pass, which is most of the memory a style layer costs;
``gram_mse`` is the style layer's loss itself, which for bf16 on a CPU forms G - A in one bf16 product.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Any, Iterator

import torch

from ..gram import GRAM_NORMALIZATIONS

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: CPU flags of the instructions that make bf16 convolutions fast (Intel AMX, AVX-512 BF16; Zen 4+).
FAST_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.lru_cache(maxsize=None)
def _cpuinfo_flags(path: str = "/proc/cpuinfo") -> tuple[str, ...]:
    """The CPU feature flags listed in ``path`` (read once per process; empty where there is no such file)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return ()
    for line in text.splitlines():
        if line.startswith("flags"):
            return tuple(line.split(":", 1)[1].split())
    return ()


def cpu_has_fast_bf16(flags: tuple[str, ...] | None = None) -> bool:
    """True when the CPU has AMX or AVX-512 BF16 instructions (bf16 convolutions are then 2-5x faster).

    ``flags`` defaults to this machine's ``/proc/cpuinfo`` flags (none on macOS/Windows: False).
    """
    flags = _cpuinfo_flags() if flags is None else flags
    return any(flag in flags for flag in FAST_BF16_FLAGS)


def cuda_precision(capability: tuple[int, int]) -> str:
    """The fastest safe precision for a CUDA GPU of compute ``capability`` (major, minor).

    Ampere and newer (8.0+) have bf16 tensor cores -> "bf16"; Volta/Turing (7.x) have fp16 tensor cores
    only -> "fp16" with loss scaling; older GPUs gain little from half precision -> "fp32".
    """
    if capability >= (8, 0):
        return "bf16"
    if capability >= (7, 0):
        return "fp16"
    return "fp32"


def resolve_precision(precision: str, device: str | torch.device) -> str:
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


def autocast(precision: str, device: str | torch.device, cache: bool = True) -> contextlib.AbstractContextManager:
    """A context that runs the network in ``precision`` ("fp32" means no autocast at all).

    ``cache=False`` re-casts the weights at every use instead of keeping the casts for the duration of the
    context: what CUDA graph capture needs (a cached cast would be freed after the capture).
    """
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision not in ("bf16", "fp16"):
        raise ValueError(f"autocast precision must be 'fp32', 'bf16' or 'fp16', not {precision!r}")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype, cache_enabled=cache)


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` right now."""
    try:
        return torch.is_autocast_enabled(device_type)  # torch >= 2.4 takes the device type
    except TypeError:  # torch 2.1-2.3: no argument, and it answers for CUDA only
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def autocast_dtype(device_type: str) -> torch.dtype:
    """The dtype autocast is running the network in on ``device_type`` right now (e.g. torch.bfloat16)."""
    if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4
        return torch.get_autocast_dtype(device_type)
    return torch.get_autocast_cpu_dtype() if device_type == "cpu" else torch.get_autocast_gpu_dtype()


def memory_format(precision: str, device: str | torch.device) -> torch.memory_format:
    """The layout the network and image should use: channels-last where it was measured to be faster.

    CPU bf16 (oneDNN): channels-last is ~15 % faster per step (benchmarks/README.md); CUDA bf16/fp16:
    tensor-core convolutions want channels-last. fp32 keeps the default NCHW layout.
    """
    if precision in ("bf16", "fp16") and torch.device(device).type in ("cpu", "cuda"):
        return torch.channels_last
    return torch.contiguous_format


#: Positions x channels converted to float32 at a time by ``fp32_gram`` (~8 MB): bounds its temporaries.
GRAM_CHUNK_ELEMENTS = 1 << 21


def _position_chunks(features: torch.Tensor, chunk_elements: int) -> tuple[bool, int, int]:
    """(channels_last?, number of positions, positions per chunk) for a (B, C, H, W) feature map."""
    b, c, h, w = features.shape
    channels_last = not features.is_contiguous() and features.is_contiguous(memory_format=torch.channels_last)
    return channels_last, h * w, max(1, chunk_elements // max(c, 1))


def _rows(features: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A view of ``features`` as (B, C, H*W) (NCHW) or (B, H*W, C) (channels-last), without copying."""
    b, c, h, w = features.shape
    if channels_last:
        return features.permute(0, 2, 3, 1).reshape(b, h * w, c)
    return features.reshape(b, c, h * w)


@contextlib.contextmanager
def _exact_tf32_matmuls(enabled: bool) -> Iterator[None]:
    """Let CUDA float32 matrix products use TF32 tensor cores while active (only where that is exact)."""
    if not enabled:
        yield
        return
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


@functools.lru_cache(maxsize=None)
def _half_bmm_to_fp32(device: torch.device) -> bool:
    """Whether ``torch.bmm(bf16, bf16, out_dtype=torch.float32)`` runs on ``device`` (CUDA, torch >= 2.8)."""
    try:
        a = torch.ones(1, 2, 2, device=device, dtype=torch.bfloat16)
        return torch.bmm(a, a, out_dtype=torch.float32).dtype == torch.float32
    except (TypeError, RuntimeError, NotImplementedError):
        return False


@functools.lru_cache(maxsize=None)
def _split_half_gram_is_exact(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether ``_split_half_gram`` recovers float32 Gram sums on ``device`` for ``dtype`` features.

    It relies on the matrix product adding its ``input`` inside the float32 accumulator before rounding (what
    oneDNN's CPU kernels do): then the second product returns the rounding error of the first. Checked once
    on a random 64 x 256 matrix: float32 accuracy (~1e-5) instead of the ~3e-3 of a bf16-rounded result."""
    try:
        rows = torch.rand(1, 256, 64, generator=torch.Generator().manual_seed(0)).to(device=device, dtype=dtype)
        exact = torch.bmm(rows.transpose(1, 2).double(), rows.double())
        with torch.autocast(device_type=device.type, enabled=False):
            got = _split_half_gram(rows.transpose(1, 2), rows).double()
        return bool((got - exact).abs().max() <= 1e-4 * exact.abs().max())
    except (RuntimeError, NotImplementedError):
        return False


def _split_half_gram(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` of bf16/fp16 batches (B, C, P) @ (B, P, C) as a float32 (B, C, C), from two half-precision products.

    A half-precision product sums in float32 but rounds its result (~3e-3 relative in bf16): ``high``. The
    second product starts its float32 sums from ``-high``, so what it returns is that rounding error, itself
    rounded (~1e-5 of the result): ``high + low`` is the float32 product. Two products of bf16 operands cost
    less than one float32 product on CPUs with bf16 instructions, and nothing is copied or filled.
    """
    high = torch.bmm(a, b)
    low = torch.baddbmm(-high, a, b)
    return high.float().add_(low)  # the bf16 ``low`` is widened inside the add: no second copy


def _half_gram_grad(features: torch.Tensor, sym: torch.Tensor, channels_last: bool,
                    rows: torch.Tensor) -> torch.Tensor:
    """``sym @ F`` as a gradient shaped like half-precision ``features`` (B, C, H, W), from ``sym`` (B, C, C) =
    d loss / d G + its transpose, over n; ``rows`` is ``_rows(features, channels_last)``. One bf16 product."""
    low = sym.to(features.dtype)
    with torch.autocast(device_type=features.device.type, enabled=False):
        if channels_last:
            b, c, h, w = features.shape
            return torch.bmm(rows, low).view(b, h, w, c).permute(0, 3, 1, 2)
        return torch.bmm(low, rows).view(features.shape)


class _Fp32Gram(torch.autograd.Function):
    """G = F F^T / n in float32; saves only F itself (which the network keeps anyway), not a float32 copy.

    The forward converts F to float32 one chunk of positions at a time, so the temporaries stay small
    (~8 MB) however large the image; the backward of bf16/fp16 features is computed in their precision.
    """

    @staticmethod
    def forward(ctx: Any, features: torch.Tensor, divisor: float, chunk_elements: int,
                two_products: bool = True) -> torch.Tensor:
        ctx.save_for_backward(features)
        ctx.divisor, ctx.chunk_elements = divisor, chunk_elements
        if not (features.is_contiguous() or features.is_contiguous(memory_format=torch.channels_last)):
            features = features.contiguous()
        channels_last, positions, step = _position_chunks(features, chunk_elements)
        rows = _rows(features, channels_last)
        b, c = features.shape[:2]
        half_cuda = features.is_cuda and features.dtype in (torch.bfloat16, torch.float16)
        if half_cuda and _half_bmm_to_fp32(features.device):
            # A GPU multiplies half-precision values exactly and sums in float32 inside its tensor cores;
            # asking for a float32 result keeps those sums: no conversion, no temporaries.
            with torch.autocast(device_type=features.device.type, enabled=False):
                pair = (rows.transpose(1, 2), rows) if channels_last else (rows, rows.transpose(1, 2))
                gram = torch.bmm(*pair, out_dtype=torch.float32)
            return gram / divisor if divisor != 1 else gram
        half_cpu = features.device.type == "cpu" and features.dtype in (torch.bfloat16, torch.float16)
        if two_products and half_cpu and _split_half_gram_is_exact(features.device, features.dtype):
            # bf16 operands, float32 sums and result, at the speed of bf16 products (``_split_half_gram``).
            with torch.autocast(device_type=features.device.type, enabled=False):
                pair = (rows.transpose(1, 2), rows) if channels_last else (rows, rows.transpose(1, 2))
                gram = _split_half_gram(*pair)
            return gram.div_(divisor) if divisor != 1 else gram
        gram = torch.zeros(b, c, c, device=features.device, dtype=torch.float32)
        # bf16/fp16 values are exact in TF32 (10 mantissa bits), so on a GPU TF32 tensor cores compute exactly
        # these float32 products, with float32 sums, several times faster than float32 without tensor cores.
        with torch.autocast(device_type=features.device.type, enabled=False), _exact_tf32_matmuls(half_cuda):
            for start in range(0, positions, step):
                if channels_last:
                    chunk = rows[:, start:start + step, :].float()  # (B, P, C)
                    gram.baddbmm_(chunk.transpose(1, 2), chunk)
                else:
                    chunk = rows[:, :, start:start + step].float()  # (B, C, P)
                    gram.baddbmm_(chunk, chunk.transpose(1, 2))
        return gram / divisor if divisor != 1 else gram

    @staticmethod
    def backward(ctx: Any, grad_gram: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None]:
        (features,) = ctx.saved_tensors
        if not (features.is_contiguous() or features.is_contiguous(memory_format=torch.channels_last)):
            features = features.contiguous()
        sym = torch.add(grad_gram, grad_gram.transpose(1, 2)).float()  # d sum(W*G) / dF = (W + W^T) F / n
        if ctx.divisor != 1:
            sym.div_(ctx.divisor)
        channels_last, positions, step = _position_chunks(features, ctx.chunk_elements)
        rows = _rows(features, channels_last)
        if features.dtype in (torch.bfloat16, torch.float16):
            # The gradient of bf16 features is bf16 whatever we do; computing it from bf16 operands (fp32
            # accumulation inside the matmul) is the approximation the rest of the network's backward makes,
            # and 5-10x faster on a CPU than converting the features back to float32.
            return _half_gram_grad(features, sym, channels_last, rows), None, None, None
        grad = torch.empty_like(features)  # same dtype and memory layout as the features
        grad_rows = _rows(grad, channels_last)
        with torch.autocast(device_type=features.device.type, enabled=False):
            for start in range(0, positions, step):
                if channels_last:
                    part = torch.bmm(rows[:, start:start + step, :].float(), sym)  # (B, P, C)
                    grad_rows[:, start:start + step, :].copy_(part)
                else:
                    part = torch.bmm(sym, rows[:, :, start:start + step].float())  # (B, C, P)
                    grad_rows[:, :, start:start + step].copy_(part)
        return grad, None, None, None


class _GramMse(torch.autograd.Function):
    """mean((F F^T / n - A)^2) of bf16 features on a CPU, from one bf16 product (no float32 Gram is formed).

    The target is split into bf16 ``high`` plus a float32 remainder ``low`` (both scaled by n); the product
    starts its float32 sums from ``-high`` and rounds F F^T - high, so each entry of G - A carries 2^-9 of itself
    (in random directions: the loss moves by ~1e-4 relative or less), against the ~2^-17 of G that two
    products leave: well within issue 17's 1e-3, for half the forward products. Saves F (the network keeps it
    anyway) and the (B, C, C) difference; the backward is ``_Fp32Gram``'s, with that difference as W.
    """

    @staticmethod
    def forward(ctx: Any, features: torch.Tensor, target: torch.Tensor, divisor: float) -> torch.Tensor:
        if not (features.is_contiguous() or features.is_contiguous(memory_format=torch.channels_last)):
            features = features.contiguous()
        channels_last, _, _ = _position_chunks(features, 1)
        rows = _rows(features, channels_last)
        scaled = target.detach().float() * divisor
        high = scaled.to(features.dtype)
        with torch.autocast(device_type=features.device.type, enabled=False):
            pair = (rows.transpose(1, 2), rows) if channels_last else (rows, rows.transpose(1, 2))
            diff = torch.baddbmm(-high.expand(features.shape[0], -1, -1), *pair)  # round(F F^T - high)
        diff = diff.float().sub_(scaled.sub_(high.float())).div_(divisor)  # (F F^T - n A) / n = G - A
        ctx.save_for_backward(features, diff)
        ctx.divisor = divisor
        return diff.square().mean()

    @staticmethod
    def backward(ctx: Any, grad_loss: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        features, diff = ctx.saved_tensors
        if not (features.is_contiguous() or features.is_contiguous(memory_format=torch.channels_last)):
            features = features.contiguous()
        # d mean(D^2) / dG = 2 D / numel(D); through G = F F^T / n: (W + W^T) F / n
        sym = torch.add(diff, diff.transpose(1, 2)).mul_(grad_loss * (2.0 / (diff.numel() * ctx.divisor)))
        channels_last, _, _ = _position_chunks(features, 1)
        return _half_gram_grad(features, sym, channels_last, _rows(features, channels_last)), None, None


def gram_mse(features: torch.Tensor, target_gram: torch.Tensor, normalize: bool | str | None = True,
             fused: bool = True) -> torch.Tensor:
    """``F.mse_loss(fp32_gram(features, normalize), target_gram)``: features (B, C, H, W), target (1 or B, C, C).

    bf16 features on a CPU whose matrix product sums its input in float32 (``fused=True``, the default):
    one bf16 product forms G - A directly (``_GramMse``), where ``fp32_gram`` needs two for G; the loss is then
    within ~1e-4 (relative) of the float32 one instead of ~1e-6. Otherwise, or with ``fused=False``, or for a
    target that needs a gradient: ``fp32_gram``, then the mean squared difference.
    """
    if features.dim() != 4:
        raise ValueError(f"gram_mse expects features of shape (B, C, H, W), got {tuple(features.shape)}")
    if normalize not in GRAM_NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {list(GRAM_NORMALIZATIONS)}, not {normalize!r}")
    b, c, h, w = features.shape
    if target_gram.shape[-2:] != (c, c) or target_gram.dim() != 3 or target_gram.shape[0] not in (1, b):
        raise ValueError(f"Gram matrices ({b}, {c}, {c}) and {tuple(target_gram.shape)} differ in size")
    bf16_cpu = features.device.type == "cpu" and features.dtype == torch.bfloat16  # fp16 would overflow F F^T
    if (fused and bf16_cpu and not target_gram.requires_grad
            and _split_half_gram_is_exact(features.device, features.dtype)):
        divisor = {"C*H*W": c * h * w, "H*W": h * w, "1": 1}[GRAM_NORMALIZATIONS[normalize]]
        return _GramMse.apply(features, target_gram, float(divisor))
    gram = fp32_gram(features, normalize=normalize)
    return torch.nn.functional.mse_loss(gram, target_gram.float().expand_as(gram))


def fp32_gram(
    features: torch.Tensor, normalize: bool | str | None = True, chunk_elements: int = GRAM_CHUNK_ELEMENTS,
    two_products: bool = True,
) -> torch.Tensor:
    """Float32 Gram matrices ``(B, C, H, W) -> (B, C, C)`` of features in any dtype and memory layout.

    Equal to ``stlib.gram_matrix(features, normalize)`` (same normalisations), but a bf16 or
    channels-last feature map is never copied into a float32 tensor that autograd would keep until the
    backward pass: forward and backward convert ``chunk_elements`` values at a time.
    bf16/fp16 features on a CPU (``two_products=True``, the default): two half-precision products, no conversion
    and no fills (``_split_half_gram``; sums to ~2^-17 relative instead of float32's ~2^-24), where the CPU's
    matrix product is checked to allow it (else the chunked float32 sum). On AMX the products run at the
    convolutions' speed, which a float32 sum cannot (issue 17). ``two_products=False``: always the float32 sum.
    """
    if features.dim() != 4:
        raise ValueError(f"fp32_gram expects features of shape (B, C, H, W), got {tuple(features.shape)}")
    if normalize not in GRAM_NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {list(GRAM_NORMALIZATIONS)}, not {normalize!r}")
    b, c, h, w = features.shape
    divisor = {"C*H*W": c * h * w, "H*W": h * w, "1": 1}[GRAM_NORMALIZATIONS[normalize]]
    return _Fp32Gram.apply(features, float(divisor), int(chunk_elements), bool(two_products))
