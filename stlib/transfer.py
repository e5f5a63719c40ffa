"""``stylize``: Gatys et al.'s algorithm (``stlib.gatys``) made fast and robust, as a short orchestration.

The pieces live in ``stlib.engine``, one job each: ``settings`` (arguments validated and defaults filled in
once), ``scales`` (the coarse-to-fine plan), ``objective`` (the objective with float32 Gram matrices of
reduced-precision features), ``steps`` (one forward/backward, eager or as a CUDA graph), ``monitor``
(history, best image, progress, callback, stop, convergence, Ctrl-C and NaN) and ``optim`` (L-BFGS, Adam).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from .color import recombine_color
from .engine.monitor import RunMonitor
from .engine.objective import compute_targets, objective
from .engine.optim import make_optimizer
from .engine.precision import autocast, memory_format
from .engine.scales import initial_image, scale_plan, upsampled
from .engine.budget import explains_memory_errors
from .engine.handover import HandOver
from .engine.heap import HEAP_FIX_MIN_SIZE, fix_mmap_threshold
from .engine.options import LayerSpec, RunOptions
from .balance import weights_for_shares
from .engine.settings import (RunImages, RunSettings, check_image_sizes, count_styles, load_run_images, resolve_model,
                              resolve_settings, style_side)
from .engine.steps import Closure, NonFiniteLoss, make_step
from .images import WORKING_MAX_SIZE, resize
from .model import VGG19Features
from .regions import resolve_masks
from .result import StepInfo, StopReason, StylizeResult
from .shares import LayerShares, per_layer_gradient_norms, shares_from

__all__ = ["stylize", "compute_targets", "objective", "scale_plan", "StepInfo", "StopReason", "StylizeResult"]

@explains_memory_errors
def stylize(
    content: Any,
    style: Any,
    *,
    content_weight: float | None = None,
    style_weight: float | None = None,
    style_layers: LayerSpec = None,
    content_layers: LayerSpec = None,
    tv_weight: float | None = None,
    steps: int | Sequence[int] = 300,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    init: str | torch.Tensor = "content",
    size: int | None = None,
    device: str | torch.device = "auto",
    precision: str = "auto",
    seed: int = 0,
    callback: Callable[[StepInfo], bool | None] | None = None,
    every: int = 10,
    progress: bool = True,
    model: VGG19Features | None = None,
    weights: str | Path = "auto",
    pooling: str = "max",
    scales: str | int | Sequence[float] | None = None,
    preserve_color: str | None = None,
    style_blend: Sequence[float] | None = None,
    style_masks: Any = None,
    gram_norm: bool | str | None = True,
    stop: Any = None,
    rtol: float = 1e-6,
    cuda_graph: bool | None = None,
    style_scale: float = 1.0,
    balance: str | None = None,
    diagnostics: bool = False,
    fp32_finish: bool = False,
) -> StylizeResult:
    """Paint the content of ``content`` in the style of ``style`` by gradient descent on the pixels.

    Images: anything ``load_image`` accepts (path, URL, bundled name, PIL, NumPy, tensor). ``style`` may
    be a list of styles, blended by the weights ``style_blend`` (default equal).

    Defaults (None) come from a preset chosen by the weights the model has (``stlib.presets``):
    - ImageNet weights -> ``IMAGENET``, the setting of PyTorch's "Neural Transfer Using PyTorch" tutorial
      (content weight 1, style weight 1e6, Gram / C*H*W, MSE, style layers equally weighted) at Gatys et
      al.'s layers (content relu4_2; style relu1_1, relu2_1, relu3_1, relu4_1, relu5_1), no TV;
    - offline seeded random weights -> ``OFFLINE``, tuned so colour and texture visibly transfer.

    Arguments: ``style_layers``/``content_layers`` are ``{layer: weight}`` dicts or lists of names (weight
    1); zero weights switch a term off, so content-only or style-only reconstructions work.
    ``optimizer``: "lbfgs" (lr 1, one closure per step: ``SafeguardedLBFGS``, which rejects a step that raised
    the loss and backtracks), "lbfgs-plain" (torch's L-BFGS with one closure per step and no line search, as
    the PyTorch tutorial runs it; it can overshoot and climb) or "adam" (lr 0.02). A run stops early only when
    its best loss improved by less than ``rtol`` (relative) over 20 steps: "converged" if the loss fell and no loss
    of those steps rose above the best, "diverged" if all did, "stalled" if it never fell below its start
    (``stlib.engine.monitor.plateau_reason``), or when the safeguarded L-BFGS found no acceptable step even after
    restarting. Its acceptance test allows for the rounding noise of bf16/fp16 evaluations (``EVAL_NOISE``). ``result.best_step``
    is the step whose image is returned (the best loss of the last scale), marked ``best`` in the history.
    ``init``: "content", "palette" (the photo recoloured to the first painting's RGB mean and covariance: often
    fewer steps to the same result), "noise" (seeded), "style", or an image tensor (warm start).
    ``size``: long edge in pixels (default 512 on a GPU, 256 otherwise). ``scales``: coarse-to-fine, as
    a number of octaves (``scales=3`` runs size/4, size/2, size) or increasing fractions of ``size``, with
    ``steps`` per scale (an int, or one count per scale); or "auto" (``scale_plan``): above 384 px, octaves
    down to ~128 px with ``steps`` split evenly over them - a 512 px result for ~45 % of the time of 512 px
    from scratch, within a few % of its objective.
    ``precision``: "auto" (default: bf16 on CPUs with AMX/AVX-512-BF16 and on Ampere+ GPUs, fp16 on older
    tensor-core GPUs, else fp32; ``stlib.engine.precision``), "fp32", "bf16" or "fp16" (GPU, loss scaling); only
    the network runs reduced, losses stay fp32.
    ``fp32_finish`` (default False): a reduced-precision run whose last scale stops making progress (its best loss
    improved < 1 % in 10 steps, or it converged or stalled within bf16's noise) goes on in float32 from its best
    image for the remaining steps, which lowers the final objective below bf16's plateau
    (``stlib.engine.handover``; the history's "precision" says which steps ran how). Off by default: the float32
    steps cost ~4x a bf16 step on a CPU, and at the course's sizes the gain is ~1-2 % of the objective.
    ``cuda_graph``: replay each step as one captured CUDA graph (None = automatically on CUDA up to 1024 x 1024
    px with bf16/fp32 and no hooks on the model; same numbers, far less Python overhead per step).
    ``style_masks``: spatial control (Gatys et al., CVPR 2017; ``stlib.regions``): region masks - a bundled mask
    name such as "rocket_sky", a greyscale image (white = region 0, black = region 1) or a tensor (R, H, W) -
    and one style per region in ``style``; region r of the photo is matched to style r through guided Gram
    matrices (not combined with ``style_blend``).
    ``preserve_color``: None, "luminance" (style only brightness, keep the photo's colours) or
    "histogram" (recolour the painting to the photo's colour statistics first).
    ``style_scale``: the painting's size relative to the output (Johnson's ``-style_scale``): 2 feeds it twice as
    large, so its strokes come out twice as large; 0.5 half (0 < style_scale <= 4).
    ``balance``: None (the per-layer weights as given) or "loss"/"gradient": weights set by measurement at the
    start of each scale so that every style layer carries an equal share of the weighted style loss (or of its
    gradient on the pixels), keeping the total of the weights given (``stlib.balance``; not the default: on
    the offline weights it was not better, benchmarks/LAYER_BALANCE.md). ``diagnostics``: also measure each
    layer's share of the loss and of the gradient at the last scale's start and at the returned image
    (``result.shares``; about four steps' work; measured anyway at the start when balancing).
    ``callback(StepInfo)`` runs every ``every`` steps and at the end; returning False stops the run.
    ``stop``: anything with ``is_set()`` (e.g. ``threading.Event``), checked every step.

    The keywords from ``content_weight`` to ``fp32_finish`` are the run options declared (with their checks) in
    ``stlib.engine.options.RunOptions``; ``model``, ``weights``, ``pooling`` and ``device`` pick the network.

    Nothing is lost: Ctrl-C returns the best image so far, a non-finite loss returns the last finite
    image, and ``result.stopped`` says what happened.
    """
    options = RunOptions.pick(locals())  # the declared run options (stlib.engine.options), checked
    t_start = time.perf_counter()
    model, dev = resolve_model(model, weights, pooling, device)
    run = resolve_settings(model, dev, count_styles(style), options)
    masks = resolve_masks(style_masks, count_styles(style), style_blend)
    if dev.type == "cpu" and run.plan[-1][0] >= HEAP_FIX_MIN_SIZE:
        fix_mmap_threshold()  # large freed tensors leave no resident holes in the heap (engine.heap)
    if masks is not None and (options.balance or options.diagnostics):
        raise ValueError("balance and diagnostics measure plain Gram matrices: they do not work with style_masks")
    images = load_run_images(content, style, run.options.preserve_color,
                             max_size=max(run.plan[-1][0], WORKING_MAX_SIZE))
    check_image_sizes(images, run)
    model.to(memory_format=memory_format(run.precision, dev))  # channels-last where it is faster
    monitor = RunMonitor(run.total_steps, progress=progress, every=run.options.every, rtol=run.options.rtol,
                         callback=callback, stop=stop, t_start=t_start)
    setup_time = time.perf_counter() - t_start
    measured: dict[str, Any] = {}  # what _run_scale measured: the style layer weights used, the shares
    x, graph_used = _run_plan(model, run, images, monitor, masks, measured)
    image = x.detach().float().clamp(0, 1)
    if run.options.preserve_color == "luminance":
        image = recombine_color(image, resize(images.content, tuple(image.shape[-2:])).to(image.device))
    return StylizeResult(
        image=image.cpu(), history=monitor.history, elapsed=time.perf_counter() - t_start, setup_time=setup_time,
        steps=monitor.step, weights_source=model.weights_source, device=str(dev), precision=run.precision,
        settings={**run.summary(model.pooling, graph_used), "regions": None if masks is None else masks.shape[1],
                  "style_layers": measured.get("style_layers", run.style_layers)},
        stopped=monitor.message, stop_reason=monitor.reason,
        best_step=monitor.best_step, shares=measured.get("shares", {}),
    )


def _run_plan(model: VGG19Features, run: RunSettings, images: RunImages, monitor: RunMonitor,
              masks: torch.Tensor | None, measured: dict[str, Any]) -> tuple[torch.Tensor, bool]:
    """Every scale of ``run.plan``, coarsest first, each starting from the last one's result, until the plan
    ends or the run stops. Returns (the image to return, whether any scale ran as a CUDA graph). Nothing is
    lost: a non-finite loss returns the last finite image, Ctrl-C the best image so far."""
    x: torch.Tensor | None = None
    graph_used = False
    try:
        for i, (side, n_steps) in enumerate(run.plan):
            x, graphed = _run_scale(model, run, images, side, n_steps, x, monitor, last=i == len(run.plan) - 1,
                                    masks=masks, measured=measured)
            graph_used = graph_used or graphed
            if monitor.reason is not None and monitor.reason is not StopReason.CONVERGED:
                break
    except NonFiniteLoss:
        x = monitor.non_finite(f"content {run.content_weight:g}, style {run.style_weight:g}, tv {run.tv_weight:g}")
    except KeyboardInterrupt:
        best = monitor.interrupted()
        x = best if best is not None else x
    finally:
        monitor.close()
    monitor.mark_best()
    assert x is not None
    return x, graph_used


def _run_scale(model: VGG19Features, run: RunSettings, images: RunImages, side: int, n_steps: int,
               previous: torch.Tensor | None, monitor: RunMonitor, last: bool,
               masks: torch.Tensor | None = None, measured: dict[str, Any] | None = None) -> tuple[torch.Tensor, bool]:
    """Optimise one scale of the plan (long edge ``side``) for up to ``n_steps`` steps, starting from the
    coarser scale's result ``previous`` (or the initial image). Returns (the scale's best image, graphed?).
    ``masks`` (1, R, H, W): one region per style, matched with guided Gram matrices (``stlib.regions``).
    ``measured`` receives the style layer weights used (balanced ones, with ``balance``) and, on the last
    scale, the per-layer shares (``balance``: at the start; ``diagnostics``: at the start and the end)."""
    measured = {} if measured is None else measured
    content = resize(images.work_content, side).to(run.device)
    styles = [resize(s, style_side(side, run.options.style_scale)).to(run.device) for s in images.styles]
    start = (initial_image(run.init, content, styles[0], run.options.seed) if previous is None
             else upsampled(previous, content))
    x = start.detach().clamp(0, 1).clone().requires_grad_(True)
    monitor.start_scale(x)
    if n_steps == 0:
        return x.detach(), False
    precision = run.precision
    targets = _targets(model, run, precision, content, styles, masks)
    style_layers = _measure_start(model, run, x, targets, last, measured)
    step, graphed = _make_step(model, run, precision, targets, style_layers, x)
    optimizer = make_optimizer(run.options.optimizer, x, run.options.lr, precision)
    closure = Closure(step, x, monitor.observe)
    handover = HandOver() if last and run.options.fp32_finish and precision != "fp32" else None
    for local in range(n_steps):
        if monitor.should_stop():
            break
        optimizer.step(closure)
        with torch.no_grad():
            x.clamp_(0, 1)
        ended = monitor.end_step(x, side, precision, last_of_scale=local == n_steps - 1,
                                 accepted=getattr(optimizer, "accepted", True),
                                 stalled=getattr(optimizer, "stalled", False))
        more = local < n_steps - 1 and monitor.reason is None  # not the last step, not stopped
        # a plateau (ended with no reason: converged, stalled or diverged) or the hand-over's own test
        if handover is not None and more and (ended or handover.due(monitor.stage_totals())):
            # bf16 has stopped making progress: go on in float32 from the best image so far, with float32
            # targets and a fresh optimiser (its curvature pairs and accepted loss belong to the bf16 objective)
            handover, precision = None, "fp32"
            with torch.no_grad():
                x.copy_(monitor.scale_result(x))
            monitor.start_scale(x)
            targets = _targets(model, run, precision, content, styles, masks)
            step, graphed_fp32 = _make_step(model, run, precision, targets, style_layers, x)
            graphed = graphed or graphed_fp32
            optimizer = make_optimizer(run.options.optimizer, x, run.options.lr, precision)
            closure = Closure(step, x, monitor.observe)
            continue
        if ended:
            if last and monitor.reason is None:
                monitor.converged_at_end()
            break  # stopped; or converged, and a converged coarse scale hands over to the next one
    result = monitor.scale_result(x)
    if last and run.options.diagnostics and style_layers:
        measured["shares"]["end"] = _shares_at(model, run, result, targets, style_layers)
    return result, graphed


def _shares_at(model: VGG19Features, run: RunSettings, image: torch.Tensor, targets: Any,
               style_layers: dict[str, float]) -> LayerShares:
    """Each style layer's share of the loss and gradient at ``image`` (one forward, a backward per layer)."""
    with autocast(run.precision, run.device):
        losses, norms = per_layer_gradient_norms(model, image.detach(), targets.style,
                                                 dict.fromkeys(style_layers, 1.0), run.options.gram_norm)
    return shares_from(losses, norms, style_layers)


def _measure_start(model: VGG19Features, run: RunSettings, x: torch.Tensor, targets: Any, last: bool,
                   measured: dict[str, Any]) -> dict[str, float]:
    """The style layer weights for this scale: ``run.style_layers``, or balanced by measurement at the start
    image ``x`` (``balance``); records them, and the start's shares on the last scale when asked."""
    style_layers = dict(run.style_layers)
    o = run.options
    if not style_layers or not (o.balance or (last and o.diagnostics)):
        return style_layers
    with autocast(run.precision, run.device):
        losses, norms = per_layer_gradient_norms(model, x.detach(), targets.style, dict.fromkeys(style_layers, 1.0),
                                                 o.gram_norm)
    if o.balance:
        style_layers = weights_for_shares(losses, norms, style_layers, o.balance)
        measured["style_layers"] = style_layers
    if last:
        measured["shares"] = {"start": shares_from(losses, norms, style_layers)}
    return style_layers


def _targets(model: VGG19Features, run: RunSettings, precision: str, content: torch.Tensor,
             styles: list[torch.Tensor], masks: torch.Tensor | None) -> Any:
    """The targets computed in ``precision`` (so that the objective's optimum is that precision's), with the
    network in that precision's layout."""
    model.to(memory_format=memory_format(precision, run.device))
    with autocast(precision, run.device):
        return compute_targets(model, content, styles, run.content_layers, run.style_layers, run.blend,
                               run.options.gram_norm, masks=masks)


def _make_step(model: VGG19Features, run: RunSettings, precision: str, targets: Any, style_layers: dict[str, float],
               x: torch.Tensor) -> tuple[Any, bool]:
    """The step runner for ``x`` in ``precision`` against ``targets``. Returns (runner, CUDA graph?)."""
    loss_fn = functools.partial(objective, model, targets=targets, content_layers=run.content_layers,
                                style_layers=style_layers, content_weight=run.content_weight,
                                style_weight=run.style_weight, tv_weight=run.tv_weight,
                                gram_norm=run.options.gram_norm)
    return make_step(loss_fn, x, precision, model, run.options.cuda_graph)
