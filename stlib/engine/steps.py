"""The step runner: one evaluation of the objective and its gradient, eager or replayed as a CUDA graph.

Both variants have one interface: calling the runner leaves d total / d x in ``x.grad`` and returns the
objective's terms (detached tensors). What makes a step fast - autocast to bf16/fp16, the channels-last
layout, fp16 loss scaling, CUDA graph capture - happens inside; the optimiser and the monitor see neither.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, Union

import torch

from .precision import autocast, memory_format

Terms = dict[str, Any]  # "content", "style", "tv", "total": 0-dim tensors; "layers": {name: 0-dim tensor}
LossFn = Callable[[torch.Tensor], Terms]
TERM_KEYS = ("content", "style", "tv", "total")

#: cuda_graph=None (auto) captures a step as a CUDA graph up to this many pixels (1024 x 1024). Small images
#: are where a GPU waits for Python to launch the ~300 kernels of a step; large ones are bound by the GPU,
#: and a graph's private memory pool would only add to their peak.
CUDA_GRAPH_MAX_PIXELS = 1024 * 1024
#: fp16 loss scaling: the scale a run starts with, and how often an overflowing step is retried at half of it.
FP16_LOSS_SCALE = 2.0 ** 12
FP16_RETRIES = 20


class NonFiniteLoss(ArithmeticError):
    """The objective became inf or NaN."""


def detached(terms: Terms) -> Terms:
    """The terms without their autograd graph (the same tensors' values)."""
    out: Terms = {k: terms[k].detach() for k in TERM_KEYS}
    out["layers"] = {k: v.detach() for k, v in terms["layers"].items()}
    return out


def read_values(terms: Terms) -> dict[str, Any]:
    """The terms as Python floats, read from the device in one transfer (one GPU sync instead of ~10)."""
    layer_keys = list(terms["layers"])
    flat = torch.stack([terms[k].detach().float() for k in TERM_KEYS] +
                       [terms["layers"][k].detach().float() for k in layer_keys]).tolist()
    record: dict[str, Any] = dict(zip(TERM_KEYS, flat[:4]))
    record["layers"] = dict(zip(layer_keys, flat[4:]))
    return record


def has_hooks(model: torch.nn.Module) -> bool:
    """True when any module of ``model`` has forward or backward hooks (a CUDA graph would skip them)."""
    return any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or
               getattr(m, "_backward_pre_hooks", None) for m in model.modules())


def use_cuda_graph(wanted: bool | None, dev: torch.device, precision: str, model: torch.nn.Module,
                   pixels: int) -> bool:
    """Whether to capture the steps as a CUDA graph: ``wanted`` True/False, or None = where it helps and is safe
    (a CUDA device, bf16 or fp32 - fp16's loss-scale retries change the work per step -, no hooks on the
    model, at most ``CUDA_GRAPH_MAX_PIXELS``)."""
    if wanted is False or dev.type != "cuda":
        return False
    if precision == "fp16" or has_hooks(model):
        return False
    return bool(wanted) or pixels <= CUDA_GRAPH_MAX_PIXELS


class EagerStep:
    """Forward and backward of ``loss_fn`` at ``x`` under ``precision``, launched op by op.

    fp16: the loss is multiplied by a scale before ``backward`` so that small gradients do not underflow,
    and the gradient divided by it after; a step whose gradient overflowed is retried at half the scale.
    """

    def __init__(self, loss_fn: LossFn, x: torch.Tensor, precision: str, cache: bool = True) -> None:
        self.loss_fn, self.x, self.precision, self.cache = loss_fn, x, precision, cache
        self.layout = memory_format(precision, x.device)
        self.loss_scale = FP16_LOSS_SCALE if precision == "fp16" else 1.0

    def forward_backward(self, scale: float = 1.0) -> Terms:
        """The terms (detached) after ``backward`` of ``scale * total`` into ``x.grad``."""
        with autocast(self.precision, self.x.device, cache=self.cache):
            terms = self.loss_fn(self.x.contiguous(memory_format=self.layout))
        (terms["total"] * scale if scale != 1.0 else terms["total"]).backward()
        return detached(terms)

    def __call__(self) -> Terms:
        for _ in range(FP16_RETRIES):
            self.x.grad = None
            terms = self.forward_backward(self.loss_scale)
            if self.loss_scale == 1.0 or not torch.isfinite(terms["total"]):
                return terms  # a non-finite loss is the caller's to report
            if torch.isfinite(self.x.grad).all():
                self.x.grad.div_(self.loss_scale)
                return terms
            self.loss_scale /= 2  # the fp16 gradient overflowed: retry with a smaller scale
        return terms


class GraphedStep:
    """One step's forward and backward captured once as a CUDA graph, then replayed: one launch instead of
    hundreds per step.

    The image ``x`` is the graph's fixed input: the optimiser updates it in place, and a replay leaves its
    gradient in ``x.grad`` (a buffer of the graph's memory pool, overwritten by every replay). The terms
    returned are the graph's output tensors, refreshed by every replay too.
    """

    def __init__(self, run: Callable[[], Terms], x: torch.Tensor) -> None:
        side = torch.cuda.Stream(x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side):  # warm-up outside the capture: cuDNN plans, allocator blocks
            x.grad = None
            run()
        torch.cuda.current_stream(x.device).wait_stream(side)
        x.grad = None
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.terms = run()
        self.x, self.grad = x, x.grad

    def __call__(self) -> Terms:
        self.graph.replay()
        self.x.grad = self.grad
        return self.terms


StepRunner = Union[EagerStep, GraphedStep]


def make_step(loss_fn: LossFn, x: torch.Tensor, precision: str, model: torch.nn.Module,
              cuda_graph: bool | None) -> tuple[StepRunner, bool]:
    """The runner for steps at ``x``, and whether it is a CUDA graph (a failed capture falls back to eager)."""
    if use_cuda_graph(cuda_graph, x.device, precision, model, x[0, 0].numel()):
        try:  # the weights' casts are not cached: a cached cast would be freed after the capture
            return GraphedStep(EagerStep(loss_fn, x, precision, cache=False).forward_backward, x), True
        except RuntimeError as err:
            warnings.warn(f"stlib.stylize: CUDA graph capture failed ({err}); running eagerly",
                          RuntimeWarning, stacklevel=3)
    return EagerStep(loss_fn, x, precision), False


class Closure:
    """What the optimiser calls once per step: run a step, check the loss, hand the values to ``observe``.

    torch's L-BFGS has absolute thresholds (it ignores curvature pairs with y.s <= 1e-10), so a tiny objective
    (e.g. weights 1e-12) would never move the image: a first loss below 1 is lifted to ~1 for the optimiser
    by a constant ``gain`` (the values observed are the true ones).
    """

    def __init__(self, step: StepRunner, x: torch.Tensor, observe: Callable[[dict[str, Any], torch.Tensor], None]):
        self.step, self.x, self.observe = step, x, observe
        self.gain: float | None = None

    def __call__(self) -> torch.Tensor:
        terms = self.step()
        values = read_values(terms)  # the one read from the device per step
        if not math.isfinite(values["total"]):
            raise NonFiniteLoss()
        if self.gain is None:
            self.gain = 1.0 / values["total"] if 0 < values["total"] < 1 else 1.0
        if self.gain != 1.0:
            self.x.grad.mul_(self.gain)
        self.observe(values, self.x)
        return terms["total"] * self.gain
