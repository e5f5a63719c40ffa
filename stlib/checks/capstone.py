"""The capstone's check: the student's whole style transfer against ``stlib.gatys``, step by step.

``check_capstone(my_gatys, model)`` runs both on a tiny photo and painting and names the *first* thing that
differs - the inputs, the returned image, the objective at the start (with the usual causes), the number of
objective evaluations per step, the first L-BFGS step, the clamp, a later step, the final image.
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

#: The check's problem: small enough to run in a few seconds on a laptop CPU.
SIZE, STEPS = 48, 4


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
        if not math.isclose(losses[1], ref.losses[1], rel_tol=1e-3):
            raise wrong(f"the start is right but the first step is not: the loss after it is {losses[1]:.6g}, "
                        f"expected {ref.losses[1]:.6g}. The reference takes one torch.optim.LBFGS step (lr=1, "
                        "max_iter=1, history_size=10) with the closure of notebook 04; Adam or another lr differs.")
        if float(image.min()) < 0 or float(image.max()) > 1:
            raise wrong(f"the image has pixels outside [0, 1] ({float(image.min()):.3f} .. {float(image.max()):.3f}): "
                        "after every optimizer.step, clamp in place: with torch.no_grad(): x.clamp_(0, 1).")
        for k in range(2, len(losses)):
            if not math.isclose(losses[k], ref.losses[k], rel_tol=1e-3):
                raise wrong(f"the first {k} evaluations agree, then the loss differs ({losses[k]:.6g}, expected "
                            f"{ref.losses[k]:.6g}): is the image clamped after every step (and only then)?")
        diff = float((image.detach().cpu() - ref.image.cpu()).abs().max())
        if diff > 2e-3:
            raise wrong(f"every loss agrees but the returned image differs (by up to {diff:.3g}): return the image "
                        "after the last step, clamped.")
        return (f"my_gatys takes the same {STEPS} steps as stlib.gatys (loss {losses[0]:.4g} -> {losses[-1]:.4g}) "
                "and returns the same image. You have written the whole of Gatys et al.'s method.")

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
