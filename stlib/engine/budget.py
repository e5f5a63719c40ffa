"""How long a ``stylize`` run will take and how much memory it needs, before you start it.

The model is simple and says so: the cost of one optimisation step grows with the number of pixels,
``seconds_per_step = overhead + seconds_per_pixel * pixels``, measured once per process by timing a few
tiny steps on this machine (``calibrate``); the memory of a step is ``bytes_per_pixel * pixels`` on top of
the runtime and the network, plus the optimiser's state. Expect +-30 % on a quiet machine, more when
other programs share the processor.

    >>> stlib.estimate(512).message
    '≈ 2.3 min and ≈ 1.3 GB on cpu (bf16)'
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import torch

from ..layers import CONTENT_LAYERS, STYLE_LAYERS
from ..model import VGG19Features, resolve_device
from ..units import format_bytes, format_seconds
from .objective import compute_targets, objective
from .optim import OPTIMIZERS, lbfgs_history
from .precision import autocast, memory_format, resolve_precision
from .heap import HEAP_FIX_MIN_SIZE, fix_mmap_threshold
from .scales import scale_plan

F = TypeVar("F", bound=Callable[..., Any])

#: Peak bytes per image pixel of one step on a CPU (activations, gradients, Gram temporaries, allocator
#: slack; the optimiser's vectors are added separately): bf16 from the growth of a stylize run's peak RSS from
#: 512 to 1024 px (1.26 -> 2.51 GB with glibc's mmap threshold fixed, ``engine.heap``), minus the L-BFGS
#: vectors (benchmarks/README.md, "Peak memory"). On CUDA ``calibrate`` measures it.
CPU_BYTES_PER_PIXEL = {"fp32": 1960.0, "bf16": 1200.0, "fp16": 1200.0}
#: What a stylize run holds on a CPU beyond the calibration's resident memory and the per-pixel parts: the
#: network's bf16 weight copies, the targets, kernels' code and scratch, free heap the allocator keeps. Measured
#: with the run's own network timed by the calibration (``estimate(model=...)``, as the CLI and the studio call
#: it): 85 MB more than the 50 MB that fitted when the calibration made a network of its own, whose freed memory
#: the run then reused (benchmarks/README.md, "The estimate's own memory"). Modelled as CPU_BYTES_PER_PIXEL more
#: bytes per pixel, capped at this value.
CPU_RUN_OVERHEAD_BYTES = 135e6
#: Image-sized float32 vectors an optimiser keeps (the image, its gradient, the best image so far, ...).
LBFGS_VECTORS = 8
ADAM_VECTORS = 6


@dataclass(frozen=True)
class Calibration:
    """One machine's measured costs for one device and precision (what ``calibrate`` returns)."""

    device: str
    precision: str
    overhead_s: float
    seconds_per_pixel: float
    bytes_per_pixel: float
    base_bytes: int

    def seconds_per_step(self, pixels: int) -> float:
        """Predicted wall time of one optimisation step on an image of ``pixels`` pixels."""
        return self.overhead_s + self.seconds_per_pixel * pixels


@dataclass(frozen=True)
class Estimate:
    """A prediction for one ``stylize`` run: time, peak memory, whether it fits, and one sentence saying so."""

    seconds: float
    seconds_per_step: float
    peak_bytes: int
    fits: bool
    message: str
    device: str
    precision: str
    sizes: tuple[int, ...]
    steps: tuple[int, ...]
    available_bytes: int

    def __str__(self) -> str:
        return self.message


def _rss_bytes() -> int:
    """Resident memory of this process now (0 where /proc is missing)."""
    try:
        match = re.search(r"VmRSS:\s+(\d+)\s+kB", Path("/proc/self/status").read_text())
    except OSError:
        return 0
    return int(match.group(1)) * 1024 if match else 0


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def available_bytes(device: str | torch.device = "auto") -> int:
    """Memory a new run could still use on ``device``: free GPU memory, or free RAM (cgroup limit included)."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free)
    candidates: list[int] = []
    try:
        match = re.search(r"MemAvailable:\s+(\d+)\s+kB", Path("/proc/meminfo").read_text())
        if match:
            candidates.append(int(match.group(1)) * 1024)
    except OSError:
        pass
    limit, used = _read_int("/sys/fs/cgroup/memory.max"), _read_int("/sys/fs/cgroup/memory.current")
    if limit is not None and used is not None:
        candidates.append(max(limit - used, 0))
    if not candidates and hasattr(os, "sysconf"):
        try:
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError):
            pass
    return min(candidates) if candidates else 0


def _return_freed_memory() -> None:
    """Hand memory that has been freed back to the operating system (glibc's ``malloc_trim``; Linux only).

    Without it the heap keeps freed blocks resident, and a run started right after ``calibrate`` peaks
    ~50 MB higher (benchmarks/peak_rss.py)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # another C library (e.g. musl): nothing to do
        pass


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


#: ``calibrate``'s measurements, by (device, precision, sizes, repeats): each is measured once per process.
_CALIBRATIONS: dict[tuple[str, str, tuple[int, int], int], Calibration] = {}


def calibrate(device: str = "auto", precision: str = "auto", sizes: tuple[int, int] = (0, 0),
              repeats: int = 3, model: VGG19Features | None = None) -> Calibration:
    """Time a few tiny optimisation steps on this machine (once per process; the result is cached).

    Two image sizes give the fixed cost of a step and its cost per pixel (defaults: 128 and 256 px on a
    CPU, 512 and 1024 px on a GPU); the fastest of ``repeats`` timings counts, and the fixed cost is held
    to at most 20 % of the larger timing (a busy machine otherwise makes the difference of two timings
    meaningless). On CUDA the peak allocated
    memory per pixel is measured too; on a CPU it comes from ``CPU_BYTES_PER_PIXEL``.

    ``model``: the network the run will use, timed as it is (already on ``device``). Without one, a VGG-19 of
    random weights is made for the timing and freed after it: ~80 MB more at the calibration's peak, and on a
    CPU ~0.07 GB that stays resident (benchmarks/README.md, "The estimate's own memory").
    """
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    key = (str(dev), prec, tuple(sizes), int(repeats))
    if key not in _CALIBRATIONS:
        shared = model is not None and model.mean.device == dev
        _CALIBRATIONS[key] = _measure(dev, prec, sizes, repeats, model if shared else None)
    return _CALIBRATIONS[key]


def _timing_network(dev: torch.device) -> VGG19Features:
    """A VGG-19 of small random weights made in place on ``dev`` (no default initialisation and its temporaries;
    finite values, so no slow denormal arithmetic): timing needs a network, not trained weights."""
    model = VGG19Features(device="meta")
    model.layers.to_empty(device=dev)
    with torch.no_grad():
        for param in model.layers.parameters():
            param.normal_(0.0, 0.02)
    return model.to(dev).eval().requires_grad_(False)


def _measure(dev: torch.device, prec: str, sizes: tuple[int, int], repeats: int,
             model: VGG19Features | None) -> Calibration:
    """``calibrate``'s measurement (uncached), on ``model`` or on a timing network made for it."""
    small, large = sizes if sizes != (0, 0) else ((512, 1024) if dev.type == "cuda" else (128, 256))
    fmt = memory_format(prec, dev)
    # base: what the process holds with one network resident - the run's (``model``), or the timing network,
    # standing in for the one the run will load
    model = (model if model is not None else _timing_network(dev)).to(memory_format=fmt)
    base = _rss_bytes() if dev.type != "cuda" else torch.cuda.memory_allocated(dev)
    layers = {name: 1.0 for name in STYLE_LAYERS}
    content = {name: 1.0 for name in CONTENT_LAYERS}
    gen = torch.Generator().manual_seed(0)

    def one_step(image: torch.Tensor, targets: dict) -> None:
        x = image.clone().requires_grad_(True)
        with autocast(prec, dev):
            terms = objective(model, x.contiguous(memory_format=fmt), targets, content, layers, 1.0, 1.0, 1.0)
        terms["total"].backward()
        _sync(dev)

    timings, peaks = [], []
    for side in (small, large):
        image = torch.rand(1, 3, side, side, generator=gen).to(dev)
        with autocast(prec, dev):
            targets = compute_targets(model, image, [image.flip(-1)], content, layers, [1.0])
        one_step(image, targets)  # warm-up: kernels, caches, allocator
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        best = math.inf
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            one_step(image, targets)
            best = min(best, time.perf_counter() - t0)
        timings.append(best)
        if dev.type == "cuda":
            peaks.append(torch.cuda.max_memory_allocated(dev) - base)
    del model, targets, image  # (a shared model lives on with its owner)
    _return_freed_memory()  # the calibration's ~0.3 GB of freed blocks would otherwise stay resident
    px_small, px_large = small * small, large * large
    per_pixel = max((timings[1] - timings[0]) / (px_large - px_small), 0.8 * timings[1] / px_large)
    overhead = max(timings[1] - per_pixel * px_large, 0.0)
    if dev.type == "cuda":
        # The growth between the two sizes: what a larger image adds. (peak / pixels would also count the fixed
        # cuDNN workspace and temporaries, which at 256-512 px made 4096-8192 px estimates ~45 % too high on an
        # H200; see benchmarks/gpu/RESULTS.md.)
        bytes_per_pixel = max((peaks[1] - peaks[0]) / (px_large - px_small), 0.5 * peaks[1] / px_large)
    else:
        bytes_per_pixel = CPU_BYTES_PER_PIXEL[prec]
    return Calibration(str(dev), prec, overhead, per_pixel, bytes_per_pixel, int(base))


def estimate(
    size: int | tuple[int, int],
    device: str | torch.device = "auto",
    steps: int | Sequence[int] = 300,
    precision: str = "auto",
    scales: str | int | Sequence[float] | None = None,
    optimizer: str = "lbfgs",
    calibration: Calibration | None = None,
    available: int | None = None,
    model: VGG19Features | None = None,
) -> Estimate:
    """Predict the wall time and peak memory of ``stylize(..., size=size, steps=steps, scales=scales)``.

    ``size`` is the long edge (a square image is assumed: the worst case) or ``(height, width)``.
    ``steps`` and ``scales`` mean what they mean for ``stylize``. ``calibration`` defaults to
    ``calibrate(device, precision)`` (a second or two, once per process), timed on ``model`` when given (the
    network the run will use: no second network in memory); ``available`` to the memory this machine has free.
    ``.fits`` is False when the peak would not fit; ``.message`` says it in words.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}, not {optimizer!r}")
    if isinstance(size, (tuple, list)):
        height, width = (int(v) for v in size)
        long_edge = max(height, width)
    else:
        height = width = long_edge = int(size)
    if min(height, width) < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    if resolve_device(device).type == "cpu" and long_edge >= HEAP_FIX_MIN_SIZE:
        fix_mmap_threshold()  # as stylize will: the calibration leaves the run a heap without large holes
    cal = calibration if calibration is not None else calibrate(str(device), precision, model=model)
    plan = scale_plan(long_edge, scales, steps)
    aspect = height * width / (long_edge * long_edge)
    seconds = 0.0
    for side, n in plan:
        pixels = side * side * aspect
        seconds += (n + 1) * cal.seconds_per_step(pixels)  # +1: computing the targets costs about one step
    final_pixels = plan[-1][0] ** 2 * aspect
    # both L-BFGS keep pairs (as many as lbfgs_history allows for the last scale's image)
    vectors = ADAM_VECTORS if optimizer == "adam" else LBFGS_VECTORS + 2 * lbfgs_history(round(3 * final_pixels))
    overhead = 0.0 if cal.device.startswith("cuda") else min(CPU_RUN_OVERHEAD_BYTES, final_pixels * cal.bytes_per_pixel)
    peak = cal.base_bytes + overhead + final_pixels * (cal.bytes_per_pixel + vectors * 3 * 4)
    free = available_bytes(cal.device) if available is None else int(available)
    already = _rss_bytes() if not cal.device.startswith("cuda") else 0
    fits = peak - min(already, cal.base_bytes) <= free
    per_step = cal.seconds_per_step(final_pixels)
    when = "< 1 s" if seconds < 1 else f"≈ {format_seconds(seconds)}"
    message = f"{when} and ≈ {format_bytes(peak)} on {cal.device} ({cal.precision})"
    if not fits:
        message += f" - more than the {format_bytes(free)} free: use a smaller size"
    return Estimate(
        seconds=seconds, seconds_per_step=per_step, peak_bytes=int(peak), fits=fits, message=message,
        device=cal.device, precision=cal.precision, sizes=tuple(s for s, _ in plan), steps=tuple(n for _, n in plan),
        available_bytes=free,
    )


# --------------------------------------------------------------------------------------------- out of memory
_CUDA_OOM = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)  # top-level name from torch 2.5
def _is_allocation_failure(err: BaseException) -> bool:
    """True for torch's out-of-memory errors (CUDA's OutOfMemoryError, the CPU allocator's RuntimeError)."""
    text = str(err)
    return isinstance(err, _CUDA_OOM) or (
        isinstance(err, RuntimeError)
        and ("not enough memory" in text or "can't allocate memory" in text or "out of memory" in text.lower()))


def explains_memory_errors(fn: F) -> F:
    """Decorate ``stylize``: an allocation failure becomes a ``MemoryError`` that says which size did not fit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RuntimeError as err:
            if not _is_allocation_failure(err):
                raise
            size = kwargs.get("size")
            detail = " ".join(str(err).split())[:160]
            raise MemoryError(f"out of memory: a run at size={size if size is not None else 'default'} does not "
                              f"fit ({detail}); stlib.estimate(size) predicts what would.") from None

    return wrapper  # type: ignore[return-value]
