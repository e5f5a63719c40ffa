"""``stylize``: Gatys et al.'s optimisation - gradient descent on the pixels of a new image.

    total(x) = content_weight * sum_l a_l * content_loss(F_l(x), F_l(photo))
             + style_weight   * sum_l w_l * mse(G(F_l(x)), G(F_l(painting)))
             + tv_weight      * tv_loss(x)

F_l are VGG-19 activations at layer l, G the Gram matrix. The image x is the only thing that changes.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .color import luminance_only, match_color, recombine_color
from .gram import gram_matrix
from .images import load_image, resize, save_image, to_pil
from .layers import layer_index
from .losses import content_loss, tv_loss
from .model import VGG19Features, extract_features, load_vgg19, resolve_device
from .engine.optim import LBFGS, Adam, SafeguardedLBFGS
from .engine.precision import autocast, fp32_gram, memory_format, resolve_precision
from .presets import preset_for
from .result import StepInfo, StopReason, StylizeResult

LayerSpec = Union[Mapping[str, float], Sequence[str], None]

#: L-BFGS curvature pairs kept. 10 beat 20 and 50 on the objective reached in 300 steps at 128 and 256 px
#: (the per-step clamp to [0, 1] makes old pairs stale) and costs 24 bytes per pixel per pair: 10 pairs
#: are 0.25 GB at 2048 px where 50 would be 1.3 GB. See benchmarks/README.md.
LBFGS_HISTORY = 10
#: scales="auto": one scale up to this long edge (at 256 px, 128 -> 256 reached no better objective per second) ...
AUTO_SINGLE_SCALE_MAX = 384
#: ... above it, octaves down to the smallest long edge not below this one (512 -> 128, 256, 512).
AUTO_COARSEST_MIN = 128


#: stylize's optimizer choices: the safeguarded L-BFGS (default), torch's plain one-evaluation L-BFGS, Adam.
OPTIMIZERS = ("lbfgs", "lbfgs-plain", "adam")


def _make_optimizer(name: str, x: torch.Tensor, lr: Optional[float]) -> Union[LBFGS, Adam]:
    """The optimiser ``name`` (one of ``OPTIMIZERS``) for the image ``x``; ``lr`` None = its default (1 or 0.02)."""
    if name == "adam":
        return Adam(x, lr=lr or 0.02)
    if name == "lbfgs-plain":
        return LBFGS(x, lr=lr or 1.0, history_size=LBFGS_HISTORY)
    # floor=0: every term of the objective is >= 0, so a step whose model promises more than half the way down
    # to 0 has too little curvature (it kept the course's settings free of >2x rises; tests/test_course_settings.py).
    return SafeguardedLBFGS(x, lr=lr or 1.0, history_size=LBFGS_HISTORY, floor=0.0)


class _NonFinite(ArithmeticError):
    pass


#: cuda_graph=None (auto) captures a step as a CUDA graph up to this many pixels (1024 x 1024). Small images
#: are where a GPU waits for Python to launch the ~300 kernels of a step; large ones are bound by the GPU,
#: and a graph's private memory pool would only add to their peak.
CUDA_GRAPH_MAX_PIXELS = 1024 * 1024


def _has_hooks(model: torch.nn.Module) -> bool:
    """True when any module of ``model`` has forward or backward hooks (a CUDA graph would skip them)."""
    return any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or
               getattr(m, "_backward_pre_hooks", None) for m in model.modules())


def _use_cuda_graph(wanted: Optional[bool], dev: torch.device, precision: str, model: torch.nn.Module,
                    pixels: int) -> bool:
    """Whether to capture the steps as a CUDA graph: ``wanted`` True/False, or None = where it helps and is safe
    (a CUDA device, bf16 or fp32 - fp16's loss-scale retries change the work per step -, no hooks on the
    model, at most ``CUDA_GRAPH_MAX_PIXELS``)."""
    if wanted is False or dev.type != "cuda":
        return False
    if precision == "fp16" or _has_hooks(model):
        return False
    return bool(wanted) or pixels <= CUDA_GRAPH_MAX_PIXELS


class _GraphedStep:
    """One step's forward and backward (``run()``, which returns the objective's terms after ``backward``)
    captured once as a CUDA graph, then replayed: one launch instead of hundreds per step.

    The image ``x`` is the graph's fixed input: the optimiser updates it in place, and ``replay`` leaves its
    gradient in ``x.grad`` (a buffer of the graph's memory pool, overwritten by every replay). The terms
    returned are the graph's output tensors, refreshed by every replay too.
    """

    def __init__(self, run: Callable[[], Dict[str, Any]], x: torch.Tensor) -> None:
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

    def replay(self) -> Dict[str, Any]:
        self.graph.replay()
        self.x.grad = self.grad
        return self.terms


def _detached(terms: Dict[str, Any]) -> Dict[str, Any]:
    out: Dict[str, Any] = {k: terms[k].detach() for k in ("content", "style", "tv", "total")}
    out["layers"] = {k: v.detach() for k, v in terms["layers"].items()}
    return out


def _values(terms: Dict[str, Any]) -> Dict[str, Any]:
    """The terms as Python floats, read from the device in one transfer (one GPU sync instead of ~10)."""
    keys, layer_keys = ("content", "style", "tv", "total"), list(terms["layers"])
    flat = torch.stack([terms[k].detach().float() for k in keys] +
                       [terms["layers"][k].detach().float() for k in layer_keys]).tolist()
    record: Dict[str, Any] = dict(zip(keys, flat[:4]))
    record["layers"] = dict(zip(layer_keys, flat[4:]))
    return record


def _layer_dict(spec: LayerSpec, default: Mapping[str, float], what: str) -> Dict[str, float]:
    if spec is None:
        layers = dict(default)
    elif isinstance(spec, Mapping):
        layers = {str(k): float(v) for k, v in spec.items()}
    elif isinstance(spec, str):
        layers = {spec: 1.0}
    else:
        layers = {str(name): 1.0 for name in spec}
    for name, weight in layers.items():
        layer_index(name)
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(f"{what} weight for {name} must be a finite number >= 0, got {weight}")
    return {k: v for k, v in layers.items() if v > 0}


def _check_weight(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


def compute_targets(
    model: VGG19Features,
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    content_layers: Mapping[str, float],
    style_layers: Mapping[str, float],
    blend: Sequence[float],
    gram_norm: Union[bool, str, None] = True,
) -> Dict[str, Dict[str, torch.Tensor]]:
    """Content features of ``content`` and blended style Grams of ``styles`` (each (1, 3, H, W)), detached.

    Returns ``{"content": {layer: (1, C, H, W)}, "style": {layer: (1, C, C) = sum_k blend_k * G_k}}``.
    """
    with torch.no_grad():
        content_feats = extract_features(model, content, content_layers) if content_layers else {}
        grams: Dict[str, torch.Tensor] = {}
        for style, share in zip(styles, blend):
            feats = extract_features(model, style, style_layers) if style_layers else {}
            for name, f in feats.items():
                g = share * gram_matrix(f, normalize=gram_norm)
                grams[name] = grams[name] + g if name in grams else g
    return {"content": {k: v.float() for k, v in content_feats.items()}, "style": grams}


def objective(
    model: VGG19Features,
    image: torch.Tensor,
    targets: Mapping[str, Mapping[str, torch.Tensor]],
    content_layers: Mapping[str, float],
    style_layers: Mapping[str, float],
    content_weight: float,
    style_weight: float,
    tv_weight: float,
    gram_norm: Union[bool, str, None] = True,
) -> Dict[str, Any]:
    """All terms of the objective for ``image`` (1, 3, H, W): weighted ``content``, ``style``, ``tv``, ``total``
    (0-dim float32 tensors) and the unweighted per-layer losses under ``layers``."""
    feats = extract_features(model, image, list(content_layers) + list(style_layers))
    per_layer: Dict[str, torch.Tensor] = {}
    zero = torch.zeros((), device=image.device)
    c_term, s_term = zero, zero
    for name, w in content_layers.items():
        per_layer[f"content:{name}"] = content_loss(feats[name], targets["content"][name])
        c_term = c_term + w * per_layer[f"content:{name}"]
    for name, w in style_layers.items():
        gram = fp32_gram(feats[name], normalize=gram_norm)  # = gram_matrix, without a kept fp32 copy
        per_layer[f"style:{name}"] = F.mse_loss(gram, targets["style"][name].expand_as(gram))
        s_term = s_term + w * per_layer[f"style:{name}"]
    tv = tv_loss(image) if tv_weight > 0 else zero
    terms = {"content": content_weight * c_term, "style": style_weight * s_term, "tv": tv_weight * tv}
    terms["total"] = terms["content"] + terms["style"] + terms["tv"]
    terms["layers"] = per_layer
    return terms


def _scale_sizes(size: int, scales: Union[int, Sequence[float], None]) -> List[int]:
    if scales is None or scales == 1:
        return [size]
    if isinstance(scales, int):
        fractions = [0.5 ** (scales - 1 - i) for i in range(scales)]
    else:
        fractions = [float(s) for s in scales]
    if any(not 0 < f <= 1 for f in fractions) or sorted(fractions) != fractions:
        raise ValueError(f"scales must increase and lie in (0, 1], got {fractions}")
    return [max(32, round(size * f)) for f in fractions]


def scale_plan(
    size: int, scales: Union[str, int, Sequence[float], None], steps: Union[int, Sequence[int]]
) -> List[Tuple[int, int]]:
    """The coarse-to-fine schedule ``[(long edge, steps), ...]`` that ``stylize`` runs, coarsest first.

    ``scales``: None or 1 (one scale), a number of octaves, increasing fractions of ``size``, or "auto":
    sizes above ``AUTO_SINGLE_SCALE_MAX`` px are halved while the half is at least ``AUTO_COARSEST_MIN``
    (512 -> 128, 256, 512) and ``steps`` is split evenly over the scales, so the total number of steps is
    unchanged while most of them run on small, cheap images (see benchmarks/README.md for the measurements).
    Otherwise ``steps`` is per scale: one count for every scale or one count per scale.
    """
    if isinstance(scales, str):
        if scales != "auto":
            raise ValueError(f"scales must be 'auto', a number of octaves or a list of fractions, not {scales!r}")
        sizes = [int(size)]
        if size > AUTO_SINGLE_SCALE_MAX:
            while sizes[0] / 2 >= AUTO_COARSEST_MIN:
                sizes.insert(0, round(sizes[0] / 2))
        if isinstance(steps, int):
            share, extra = divmod(int(steps), len(sizes))
            counts = [share + (1 if i < extra else 0) for i in range(len(sizes))]  # extra steps go to coarse ones
            return list(zip(sizes, counts))
    else:
        sizes = _scale_sizes(size, scales)
    counts = [int(steps)] * len(sizes) if isinstance(steps, int) else [int(n) for n in steps]
    if len(counts) != len(sizes) or any(n < 0 for n in counts):
        raise ValueError(f"steps must be a count >= 0 or one count per scale ({len(sizes)}), got {steps}")
    return list(zip(sizes, counts))


#: The stop test's window: a run stops early when its best loss improved by less than ``rtol`` in this many steps.
PATIENCE = 20
#: ... and then it has converged if every loss in the window is within this fraction of the best (no rise), or
#: diverged if none is (it rose and did not come back); otherwise it goes on.
RISE_TOL = 1e-3


def plateau_reason(totals: Sequence[float], rtol: float) -> Optional[StopReason]:
    """Whether a scale whose losses so far are ``totals`` should stop: CONVERGED, DIVERGED or None (go on).

    It stops only when the best loss improved by less than ``rtol`` (relative) over the last ``PATIENCE``
    steps. Then: CONVERGED when every loss of those steps lies within ``RISE_TOL`` of the best, DIVERGED when
    every one lies above that (the loss rose and stayed up); a window with both is a run still moving - it goes
    on. (A safeguarded L-BFGS run's rejected steps fall back towards its best point, so it converges or goes on.)
    """
    if len(totals) <= PATIENCE:
        return None
    old, best = min(totals[:-PATIENCE]), min(totals)
    if old - best > rtol * abs(old):  # relative, so the loss's scale does not matter
        return None
    near = [v <= best + RISE_TOL * abs(best) for v in totals[-PATIENCE:]]
    if all(near):
        return StopReason.CONVERGED
    return StopReason.DIVERGED if not any(near) else None


def _plateau_sentence(reason: StopReason, step: int, rtol: float, best_step: Optional[int]) -> str:
    if reason is StopReason.CONVERGED:
        return f"converged at step {step} (best loss improved < {rtol:g} in {PATIENCE} steps, without a rise)"
    return (f"diverged: the loss rose and stayed above its best (step {best_step}) for {PATIENCE} steps; stopped "
            f"at step {step} and returned the best image. A smaller lr, or optimizer='lbfgs', may help.")


def _initial(init: Union[str, torch.Tensor], content: torch.Tensor, style: torch.Tensor, seed: int) -> torch.Tensor:
    if isinstance(init, torch.Tensor):
        img = init.detach().float().cpu()
        if img.dim() == 3:
            img = img.unsqueeze(0)
        return resize(img, tuple(content.shape[-2:])).to(content.device)
    if init == "content":
        return content.clone()
    if init == "style":
        return resize(style.cpu(), tuple(content.shape[-2:])).to(content.device)
    if init == "noise":
        gen = torch.Generator().manual_seed(seed)
        return torch.rand(content.shape, generator=gen).to(content.device)
    raise ValueError(f"init must be 'content', 'noise', 'style' or an image tensor, not {init!r}")


def stylize(
    content: Any,
    style: Any,
    *,
    content_weight: Optional[float] = None,
    style_weight: Optional[float] = None,
    style_layers: LayerSpec = None,
    content_layers: LayerSpec = None,
    tv_weight: Optional[float] = None,
    steps: Union[int, Sequence[int]] = 300,
    optimizer: str = "lbfgs",
    lr: Optional[float] = None,
    init: Union[str, torch.Tensor] = "content",
    size: Optional[int] = None,
    device: Union[str, torch.device] = "auto",
    precision: str = "auto",
    seed: int = 0,
    callback: Optional[Callable[[StepInfo], Optional[bool]]] = None,
    every: int = 10,
    progress: bool = True,
    model: Optional[VGG19Features] = None,
    weights: Union[str, Path] = "auto",
    pooling: str = "max",
    scales: Union[str, int, Sequence[float], None] = None,
    preserve_color: Optional[str] = None,
    style_blend: Optional[Sequence[float]] = None,
    gram_norm: Union[bool, str, None] = True,
    stop: Optional[Any] = None,
    rtol: float = 1e-6,
    fp32_finish: Optional[int] = None,
    cuda_graph: Optional[bool] = None,
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
    its best loss improved by less than ``rtol`` (relative) over 20 steps: "converged" if no loss in those steps
    rose above the best, "diverged" if all did (``plateau_reason``). ``result.best_step`` is the step whose image
    is returned (the best loss of the last scale), also marked ``best`` in ``result.history``.
    ``init``: "content", "noise" (seeded), "style", or an image tensor (warm start).
    ``size``: long edge in pixels (default 512 on a GPU, 256 otherwise). ``scales``: coarse-to-fine, as
    a number of octaves (``scales=3`` runs size/4, size/2, size) or increasing fractions of ``size``, with
    ``steps`` per scale (an int, or one count per scale); or "auto" (``scale_plan``): above 384 px, octaves
    down to ~128 px with ``steps`` split evenly over them - a 512 px result for ~45 % of the time of 512 px
    from scratch, within a few % of its objective.
    ``precision``: "auto" (default: bf16 on CPUs with AMX/AVX-512-BF16 and on Ampere+ GPUs, fp16 on older
    tensor-core GPUs, else fp32; ``stlib.engine.precision``), "fp32", "bf16" or "fp16" (GPU, loss scaling); only
    the network runs reduced, losses stay fp32. ``fp32_finish``: with "auto", run the last N steps in fp32
    (default 0: at 256 px a bf16 step lowered the fp32-evaluated objective as much as an fp32 step, at
    a third of the time, so finishing in fp32 only costs time; see benchmarks/README.md).
    ``cuda_graph``: replay each step as one captured CUDA graph (None = automatically on CUDA up to 1024 x 1024
    px with bf16/fp32 and no hooks on the model; same numbers, far less Python overhead per step).
    ``preserve_color``: None, "luminance" (style only brightness, keep the photo's colours) or
    "histogram" (recolour the painting to the photo's colour statistics first).
    ``callback(StepInfo)`` runs every ``every`` steps and at the end; returning False stops the run.
    ``stop``: anything with ``is_set()`` (e.g. ``threading.Event``), checked every step.

    Nothing is lost: Ctrl-C returns the best image so far, a non-finite loss returns the last finite
    image, and ``result.stopped`` says what happened.
    """
    t_start = time.perf_counter()
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}, not {optimizer!r}")
    if preserve_color not in (None, "luminance", "histogram"):
        raise ValueError(f"preserve_color must be None, 'luminance' or 'histogram', not {preserve_color!r}")
    if every < 1:
        raise ValueError("every must be >= 1")

    if model is None:
        model = load_vgg19(weights, pooling=pooling, device=resolve_device(device))
        dev = model.mean.device
    elif device == "auto":
        dev = model.mean.device
    else:
        dev = resolve_device(device)
        model.to(dev)
    precision_run = resolve_precision(precision, dev)

    preset = preset_for(model.weights_source)
    c_layers = _layer_dict(content_layers, preset.content_layers, "content layer")
    s_layers = _layer_dict(style_layers, preset.style_layers, "style layer")
    alpha = _check_weight("content_weight", preset.content_weight if content_weight is None else content_weight)
    beta = _check_weight("style_weight", preset.style_weight if style_weight is None else style_weight)
    gamma = _check_weight("tv_weight", preset.tv_weight if tv_weight is None else tv_weight)
    if alpha == 0:
        c_layers = {}
    if beta == 0:
        s_layers = {}
    if not c_layers and not s_layers and gamma == 0:
        raise ValueError("every weight is zero: there is nothing to optimise")

    content_img = load_image(content)
    style_list = list(style) if isinstance(style, (list, tuple)) else [style]
    style_imgs = [load_image(s) for s in style_list]
    blend = [1.0 / len(style_imgs)] * len(style_imgs) if style_blend is None else [float(b) for b in style_blend]
    if len(blend) != len(style_imgs) or any(b < 0 for b in blend) or sum(blend) <= 0:
        raise ValueError(f"style_blend needs {len(style_imgs)} non-negative weights, got {style_blend}")
    blend = [b / sum(blend) for b in blend]
    if preserve_color == "histogram":
        style_imgs = [match_color(s, content_img) for s in style_imgs]
    work_content = luminance_only(content_img) if preserve_color == "luminance" else content_img
    if preserve_color == "luminance":
        style_imgs = [luminance_only(s, like=content_img) for s in style_imgs]

    final_size = int(size) if size is not None else (512 if dev.type == "cuda" else 256)
    plan = scale_plan(final_size, scales, steps)
    sizes, step_counts = [side for side, _ in plan], [n for _, n in plan]
    if precision_run != "fp32" and precision == "auto":
        polish = min(int(fp32_finish or 0), step_counts[-1])  # default 0: fp32 steps were no better, only slower
    else:
        polish = 0
    total_steps = sum(step_counts)

    model.to(memory_format=memory_format(precision_run, dev))  # channels-last where it is faster
    history: List[Dict[str, Any]] = []
    stopped: Optional[str] = None
    reason: Optional[StopReason] = None
    bar = tqdm(total=total_steps, disable=not progress, desc="stylize", unit="step", leave=True)
    setup_time = time.perf_counter() - t_start
    x: Optional[torch.Tensor] = None
    best_img: Optional[torch.Tensor] = None
    best_step: Optional[int] = None  # the history entry whose image is returned
    step_global = 0
    graph_used = False
    try:
        for scale_i, (scale_size, n_steps) in enumerate(zip(sizes, step_counts)):
            c_img = resize(work_content, scale_size).to(dev)
            s_imgs = [resize(s, scale_size).to(dev) for s in style_imgs]
            if x is None:
                x0 = _initial(init, c_img, s_imgs[0], seed)
            else:
                x0 = F.interpolate(x, size=tuple(c_img.shape[-2:]), mode="bilinear", align_corners=False)
            x = x0.detach().clamp(0, 1).clone().requires_grad_(True)
            best_img, best_loss = x.detach().clone(), math.inf
            targets_by_precision: Dict[str, Any] = {}
            # stlib.engine.optim = torch.optim.LBFGS(max_iter=1, no tolerances) / torch.optim.Adam, minus the import
            # of torch._dynamo that torch.optim triggers (~1 s, ~180 MB resident).
            opt = _make_optimizer(optimizer, x, lr)
            last_scale = scale_i == len(sizes) - 1
            loss_scale = 2.0 ** 12 if precision_run == "fp16" else 1.0
            record: Dict[str, Any] = {}
            # torch's L-BFGS has absolute thresholds (it ignores curvature pairs with y.s <= 1e-10), so a tiny
            # objective (e.g. weights 1e-12) would never move the image: losses below 1 are lifted to ~1 for the
            # optimiser (set at the first evaluation of each scale; the history keeps the true values).
            gain: List[float] = []
            graphs: Dict[str, Optional[_GraphedStep]] = {}  # per precision; None: capture failed, run eagerly

            for local in range(n_steps):
                if stop is not None and stop.is_set():
                    stopped, reason = f"stopped at step {step_global}; returned the best image so far", StopReason.STOP_EVENT
                    break
                prec = "fp32" if (last_scale and local >= n_steps - polish) else precision_run
                if prec not in targets_by_precision:
                    with autocast(prec, dev):
                        targets_by_precision[prec] = compute_targets(
                            model, c_img, s_imgs, c_layers, s_layers, blend, gram_norm)
                targets = targets_by_precision[prec]
                x_in_fmt = memory_format(prec, dev)

                def forward_backward(cache: bool = True, scale: float = 1.0) -> Dict[str, Any]:
                    """The objective's terms (detached) after ``backward`` of ``scale * total`` into ``x.grad``."""
                    with autocast(prec, dev, cache=cache):
                        terms = objective(model, x.contiguous(memory_format=x_in_fmt), targets, c_layers,
                                          s_layers, alpha, beta, gamma, gram_norm)
                    (terms["total"] * scale if scale != 1.0 else terms["total"]).backward()
                    return _detached(terms)

                if prec not in graphs and _use_cuda_graph(cuda_graph, dev, prec, model, x[0, 0].numel()):
                    try:
                        graphs[prec] = _GraphedStep(lambda: forward_backward(cache=False), x)
                        graph_used = True
                    except RuntimeError as err:
                        warnings.warn(f"stlib.stylize: CUDA graph capture failed ({err}); running eagerly",
                                      RuntimeWarning, stacklevel=2)
                        graphs[prec] = None
                graphed = graphs.get(prec)

                def closure() -> torch.Tensor:
                    nonlocal best_img, best_loss, best_step, loss_scale
                    if graphed is not None:
                        terms = graphed.replay()
                    else:
                        for _ in range(20):
                            opt.zero_grad(set_to_none=True)
                            scale = loss_scale if prec == "fp16" else 1.0
                            terms = forward_backward(scale=scale)  # a non-finite loss is caught below
                            if scale != 1.0 and torch.isfinite(terms["total"]):
                                if not torch.isfinite(x.grad).all():
                                    loss_scale /= 2  # fp16 gradient overflow: retry with a smaller scale
                                    continue
                                x.grad.div_(scale)
                            break
                    values = _values(terms)  # the one read from the device per step
                    if not math.isfinite(values["total"]):
                        raise _NonFinite()
                    if not gain:
                        first = values["total"]
                        gain.append(1.0 / first if 0 < first < 1 else 1.0)
                    if gain[0] != 1.0:
                        x.grad.mul_(gain[0])
                    record.clear()
                    record.update(values)
                    if record["total"] < best_loss:
                        best_loss, best_img, best_step = record["total"], x.detach().clone(), step_global + 1
                    return terms["total"] * gain[0]

                opt.step(closure)
                with torch.no_grad():
                    x.clamp_(0, 1)
                step_global += 1
                history.append({"step": step_global, **record, "time": time.perf_counter() - t_start,
                                "size": scale_size, "precision": prec,
                                "accepted": getattr(opt, "accepted", True)})
                bar.update(1)
                if step_global % every == 0 or local == n_steps - 1:
                    bar.set_postfix(loss=f"{record['total']:.4g}", refresh=False)
                    if callback is not None:
                        info = StepInfo(step_global, total_steps, x.detach().cpu().clone(),
                                        {k: record[k] for k in ("content", "style", "tv", "total")},
                                        time.perf_counter() - t_start)
                        if callback(info) is False:
                            stopped, reason = f"stopped by the callback at step {step_global}", StopReason.CALLBACK
                            break
                if rtol > 0 and local >= 40:
                    plateau = plateau_reason([h["total"] for h in history[-(local + 1):]], rtol)
                    if plateau is not None:
                        if last_scale:
                            stopped, reason = _plateau_sentence(plateau, step_global, rtol, best_step), plateau
                        break  # a coarse scale that has stopped improving hands over its best image to the next one
            x = best_img if best_loss < math.inf else x.detach()
            if best_loss == math.inf:
                best_step = None
            if reason is not None and reason is not StopReason.CONVERGED:
                break
    except _NonFinite:
        reason = StopReason.NON_FINITE
        stopped = (
            f"the loss became infinite or NaN at step {step_global + 1}: the weights are probably too large "
            f"(content {alpha:g}, style {beta:g}, tv {gamma:g}) or the learning rate too high. "
            "Returned the last image with a finite loss."
        )
        warnings.warn("stlib.stylize: " + stopped, RuntimeWarning, stacklevel=2)
        x = best_img
    except KeyboardInterrupt:
        stopped, reason = f"interrupted (Ctrl-C) at step {step_global}; returned the best image so far", StopReason.INTERRUPTED
        print("stlib.stylize: " + stopped)
        x = best_img if best_img is not None else x
    finally:
        bar.close()

    assert x is not None
    image = x.detach().float().clamp(0, 1)
    if preserve_color == "luminance":
        image = recombine_color(image, resize(content_img, tuple(image.shape[-2:])).to(image.device))
    settings = {
        "content_weight": alpha, "style_weight": beta, "tv_weight": gamma, "content_layers": c_layers,
        "style_layers": s_layers, "optimizer": optimizer, "lr": lr, "init": init if isinstance(init, str) else "tensor",
        "size": final_size, "sizes": sizes, "steps": step_counts, "seed": seed, "pooling": model.pooling,
        "preserve_color": preserve_color, "style_blend": blend, "gram_norm": gram_norm, "preset": preset.name,
        "fp32_finish": polish, "cuda_graph": graph_used,
    }
    for h in history:
        h["best"] = h["step"] == best_step
    return StylizeResult(
        image=image.cpu(), history=history, best_step=best_step, elapsed=time.perf_counter() - t_start, setup_time=setup_time,
        steps=step_global, weights_source=model.weights_source, device=str(dev), precision=precision_run,
        settings=settings, stopped=stopped, stop_reason=reason,
    )
