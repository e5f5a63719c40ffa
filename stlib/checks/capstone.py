"""The capstone's check: the student's whole style transfer against ``stlib.gatys``, step by step.

``check_capstone(my_gatys, model)`` runs both on a tiny photo and painting and names the *first* thing that
differs - the inputs, the returned image, the objective at the start (with the usual causes), the number of
objective evaluations per step, then the steps: where they part from the reference, the check replays the usual
loop mistakes (``LOOP_MISTAKES``: no zero_grad, the clamp inside the closure or nowhere) and names the one that
takes the same steps; last the final image (the last step left unclamped).

A clamp at the start of the closure (the PyTorch tutorial's pattern) plus one after the loop passes, and rightly:
with ``max_iter=1`` L-BFGS calls the closure once per step, first thing, so that clamp *is* the previous step's
clamp and every step is the reference's. (Notebook 04's closure check still asks for a closure that only
evaluates: with ``max_iter > 1`` or a line search, a clamp inside it would move the points L-BFGS chose.)
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

import torch

from ..algorithm import gatys
from ..engine.objective import compute_targets, objective
from ..images import load_image
from ..model import VGG19Features, load_vgg19
from ..presets import Preset, preset_for
from .framework import CheckResult, error_hint, finish, todo, wrong

#: The check's problem: small enough to run in a few seconds on a laptop CPU. Five steps, not four: with the offline
#: weights the fifth step is the first to leave [0, 1] after a rise, so a missing last clamp shows.
SIZE, STEPS = 48, 5


def _unpack(out: Any) -> tuple[torch.Tensor, list[float]]:
    if out is None:
        raise todo("my_gatys returns None; return (image, losses)")
    if hasattr(out, "image") and hasattr(out, "losses"):
        return out.image, list(out.losses)
    if isinstance(out, (tuple, list)) and len(out) == 2 and isinstance(out[0], torch.Tensor):
        return out[0], [float(v) for v in out[1]]
    raise wrong(f"my_gatys returned {type(out).__name__}; return a pair (image, losses): the image (1, 3, H, W) and "
                "the list of the objective's values, one per closure call.")


def _start_variants(model: VGG19Features, content: torch.Tensor, style: torch.Tensor,
                    p: Preset) -> list[tuple[float, str]]:
    """The objective at the start under the usual mistakes, with the sentence for each."""

    def at(image: torch.Tensor, styles: list[torch.Tensor], alpha: float, beta: float, gamma: float,
           s_layers: dict[str, float], norm: Any = True, content_from: Optional[torch.Tensor] = None) -> float:
        targets = compute_targets(model, content if content_from is None else content_from, styles,
                                  p.content_layers, s_layers, [1.0] * len(styles), norm)
        with torch.no_grad():
            return float(objective(model, image, targets, p.content_layers, s_layers, alpha, beta, gamma, norm)["total"])

    noise = torch.rand(content.shape, generator=torch.Generator().manual_seed(0))
    a, b, g, w = p.content_weight, p.style_weight, p.tv_weight, dict(p.style_layers)
    equal = {n: 1.0 for n in w}
    return [
        (at(noise, [style], a, b, g, w), "you start from noise; the reference starts from a copy of the photo "
         "(init='content', the start_image exercise of notebook 04)."),
        (at(content, [style], a, b, 0.0, w), "the total-variation term is missing: add tv_weight * tv_loss(x)."),
        (at(content, [style], b, a, g, w), "the content and style weights are swapped."),
        (at(content, [style], a, b, g, equal), "the per-layer style weights are missing: multiply each layer's "
         "loss by style_layers[layer] (the total_loss exercise of notebook 03)."),
        (at(content, [style], a, 1.0, g, w), "the style weight (beta) is missing."),
        (at(content, [style], a, b, g, w, norm=False), "your Gram matrices are not normalised: use stlib.gram_matrix "
         "(divided by C*H*W) for the targets and for the image."),
        (at(content, [content], a, b, g, w), "your style targets are the photo's Gram matrices: take them from "
         "the painting."),
        (at(content, [style], a, b, g, w, content_from=style), "your content target comes from the painting: take "
         "the photo's features."),
    ]


#: A mistake in the loop that leaves the start right, and the sentence for it. ``replay`` runs each one.
LOOP_MISTAKES: tuple[tuple[dict[str, Any], str], ...] = (
    ({"zero_grad": False}, "the gradient is never cleared: the first step agrees, then L-BFGS sees the sum of "
     "all gradients so far, because backward() adds to x.grad. Start the closure with optimizer.zero_grad()."),
    ({"clamp": "in closure"}, "you clamp inside the closure, after backward(): the loss and gradient L-BFGS "
     "receives are then those of the unclamped pixels, not of the image it gets back. Clamp after "
     "optimizer.step(closure), in the loop."),
    ({"clamp": None}, "the image is never clamped to [0, 1]: after every optimizer.step(closure), clamp in place "
     "with torch.no_grad(): x.clamp_(0, 1)."),
)


def replay(model: VGG19Features, content: torch.Tensor, style: torch.Tensor, p: Preset,
              zero_grad: bool = True, clamp: Optional[str] = "after step") -> tuple[torch.Tensor, list[float]]:
    """``stlib.gatys``'s loop, with the engine's objective, optionally with one mistake: no ``zero_grad``, or the
    clamp ``"in closure"`` (after backward) or nowhere (None). Returns (image (1, 3, H, W), losses)."""
    targets = compute_targets(model, content, [style], p.content_layers, p.style_layers, [1.0])
    x = content.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=10)
    losses: list[float] = []

    def closure() -> torch.Tensor:
        if zero_grad:
            optimizer.zero_grad()
        loss = objective(model, x, targets, p.content_layers, p.style_layers, p.content_weight, p.style_weight,
                         p.tv_weight)["total"]
        loss.backward()
        losses.append(loss.item())
        if clamp == "in closure":
            with torch.no_grad():
                x.clamp_(0, 1)
        return loss

    for _ in range(STEPS):
        optimizer.step(closure)
        if clamp == "after step":
            with torch.no_grad():
                x.clamp_(0, 1)
    return x.detach(), losses


def _same_losses(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(math.isclose(u, v, rel_tol=1e-3) for u, v in zip(a, b))


def _compare_steps(model: VGG19Features, content: torch.Tensor, style: torch.Tensor, p: Preset,
                   image: torch.Tensor, losses: list[float], ref: Any) -> None:
    """Raise the verdict for the first step (or the final image) that differs from ``ref`` (a GatysResult)."""
    if not _same_losses(losses, ref.losses):
        for change, sentence in LOOP_MISTAKES:
            if _same_losses(losses, replay(model, content, style, p, **change)[1]):
                raise wrong(sentence)
        k = next(i for i, (u, v) in enumerate(zip(losses, ref.losses)) if not math.isclose(u, v, rel_tol=1e-3))
        if k == 1:
            raise wrong(f"the start is right but the first step is not: the loss after it is {losses[1]:.6g}, "
                        f"expected {ref.losses[1]:.6g}. The reference takes one torch.optim.LBFGS step (lr=1, "
                        "max_iter=1, history_size=10) with the closure of notebook 04; Adam or another lr differs.")
        raise wrong(f"the first {k} evaluations agree, then the loss differs ({losses[k]:.6g}, expected "
                    f"{ref.losses[k]:.6g}). Compare your loop with the five steps above: zero_grad at the start of "
                    "the closure, one optimizer.step(closure) per step, then the clamp.")
    got, expected = image.detach().cpu(), ref.image.cpu()
    outside = float(got.min()) < 0 or float(got.max()) > 1
    if float((got - expected).abs().max()) <= 2e-3 and not outside:
        return
    if float((got.clamp(0, 1) - expected).abs().max()) <= 2e-3:
        raise wrong(f"every step agrees, but the image you return has pixels outside [0, 1] "
                    f"({float(got.min()):.3f} .. {float(got.max()):.3f}): it was not clamped after the last step. That "
                    "happens when the clamp is missing, sits at the start of the closure (the PyTorch tutorial's "
                    "pattern) or comes before optimizer.step. Clamp after every optimizer.step(closure) (or once more "
                    "after the loop).")
    raise wrong(f"every loss agrees but the returned image differs (by up to "
                f"{float((got - expected).abs().max()):.3g}): return the image after the last step, clamped.")


def _success(losses: list[float]) -> str:
    """The sentence for a right answer, true to what the loss did over the check's few steps."""
    done = (f"my_gatys takes the same {STEPS} steps as stlib.gatys and returns the same image. You have written "
            "the whole of Gatys et al.'s method.")
    trace = " -> ".join(f"{v:.4g}" for v in losses)
    if max(losses) <= losses[0]:
        return f"{done} The loss went {trace}."
    ending = ("it ends below where it started" if losses[-1] < losses[0] else "it is not yet below where it started")
    return (f"{done} The loss went {trace}: it rose on the way, and {ending}. Plain L-BFGS (lr=1, no line search) "
            "can overshoot in its first steps, while it has seen little of the curvature, and stlib.gatys does "
            "exactly the same; stlib.stylize's safeguarded L-BFGS rejects such steps.")


def check_capstone(fn: Callable[..., Any], model: Optional[VGG19Features] = None) -> CheckResult:
    """Check ``fn(model, content, style, steps, weights) -> (image, losses)`` against ``stlib.gatys``."""

    def run() -> str:
        vgg = load_vgg19() if model is None else model
        p = preset_for(vgg.weights_source)
        device = vgg.mean.device
        content = load_image("chelsea", SIZE).to(device)
        style = load_image("starry_night", 2 * SIZE).to(device)
        style = torch.nn.functional.interpolate(style, size=tuple(content.shape[-2:]), mode="area")
        c0, s0 = content.clone(), style.clone()
        if fn is None:
            raise todo("define my_gatys and pass it to the check")
        try:
            out = fn(vgg, content, style, STEPS, p)
        except NotImplementedError:
            raise todo("replace `raise NotImplementedError` in my_gatys with your code") from None
        except Exception as err:  # noqa: BLE001 - every error becomes a sentence
            raise wrong(f"running it on a {SIZE} px photo raised {type(err).__name__}: {err}{error_hint(err)}") from None
        image, losses = _unpack(out)
        if not torch.equal(content, c0) or not torch.equal(style, s0):
            raise wrong("it changed the photo (or the painting) it was given: optimise a copy, "
                        "x = content.clone().requires_grad_(True).")
        if tuple(image.shape) != tuple(content.shape):
            raise wrong(f"the image has shape {tuple(image.shape)}; it should have the photo's {tuple(content.shape)}.")
        if image.requires_grad:
            raise wrong("the returned image still carries the autograd graph: return x.detach().")
        ref = gatys(vgg, content, style, steps=STEPS, content_weight=p.content_weight, style_weight=p.style_weight,
                    tv_weight=p.tv_weight, content_layers=p.content_layers, style_layers=p.style_layers)
        if not losses:
            raise wrong("the losses list is empty: append loss.item() inside the closure, at every call.")
        if not math.isclose(losses[0], ref.losses[0], rel_tol=1e-4):
            for value, sentence in _start_variants(vgg, content, style, p):
                if math.isclose(losses[0], value, rel_tol=1e-4):
                    raise wrong(f"the objective at the start differs ({losses[0]:.6g}, expected {ref.losses[0]:.6g}): "
                                f"{sentence}")
            raise wrong(f"the objective at the start differs: {losses[0]:.6g}, expected {ref.losses[0]:.6g} = "
                        "content_weight * content loss + style_weight * sum_l w_l E_l + tv_weight * TV at the photo. "
                        "Compare your targets and losses with notebooks 01-03.")
        if len(losses) != len(ref.losses):
            per_step = len(losses) / STEPS
            raise wrong(f"{len(losses)} closure calls for {STEPS} steps ({per_step:g} per step; expected 1). Use "
                        "torch.optim.LBFGS([x], lr=1, max_iter=1, history_size=10): one evaluation per step, so "
                        "the clamp runs after each one.")
        _compare_steps(vgg, content, style, p, image, losses, ref)
        return _success(losses)

    return finish("capstone", run)


#: One possible solution (shown by ``stlib.checks.solution`` and hidden in notebook 07).
SOLUTIONS: dict[str, str] = {
    "capstone": '''
def my_gatys(model, content, style, steps, weights):
    """Gatys et al.'s transfer: (image (1, 3, H, W), the objective at every closure call)."""
    layers = [*weights.content_layers, *weights.style_layers]
    with torch.no_grad():                                # 1. fixed targets, no graph
        content_targets = stlib.extract_features(model, content, weights.content_layers)
        style_targets = {name: stlib.gram_matrix(f)
                         for name, f in stlib.extract_features(model, style, weights.style_layers).items()}
    x = content.clone().requires_grad_(True)             # 2. start from a copy of the photo
    optimizer = torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=10)
    losses = []

    def closure():                                       # 3. loss and gradient at the current x
        optimizer.zero_grad()
        feats = stlib.extract_features(model, x, layers)
        c = sum(a * stlib.content_loss(feats[n], content_targets[n]) for n, a in weights.content_layers.items())
        s = sum(w * stlib.style_layer_loss(feats[n], style_targets[n]) for n, w in weights.style_layers.items())
        loss = weights.content_weight * c + weights.style_weight * s + weights.tv_weight * stlib.tv_loss(x)
        loss.backward()
        losses.append(loss.item())
        return loss

    for _ in range(steps):                               # 4. the loop
        optimizer.step(closure)
        with torch.no_grad():
            x.clamp_(0, 1)                               # 5. keep it a picture
    return x.detach(), losses
''',
}
