"""Checks for the practice exercises of notebooks 03-06: the total loss, the starting image, L-BFGS's
closure, receptive fields against stroke sizes, and the masked Gram matrix of spatial control.

They follow ``stlib.checks``'s rules (and are reached through it: ``stlib.checks.check_closure``): a check never raises, prints one
message and returns a ``CheckResult``; every likely wrong answer gets a sentence that says what to change.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional

import torch

from .checks import SOLUTIONS as SOLUTIONS_ALL
from .checks import CheckResult, _as_tensor, _call, _close, _finish, _hint, _rand, _todo, _wrong
from .gram import gram_matrix
from .layers import STYLE_LAYERS, receptive_field
from .regions import guided_gram_matrix


# ------------------------------------------------------------------------------------------------ total loss
def _total(content: torch.Tensor, style: Mapping[str, torch.Tensor], weights: Mapping[str, float],
           alpha: float, beta: float) -> torch.Tensor:
    return alpha * content + beta * sum(weights[n] * style[n] for n in weights)


def check_total_loss(fn: Callable[..., Any]) -> CheckResult:
    """Check ``fn(content_term, style_terms, layer_weights, alpha, beta) -> alpha * L_c + beta * sum_l w_l E_l``."""

    def run() -> str:
        gen = torch.Generator().manual_seed(130)
        content = torch.rand((), generator=gen) + 0.5
        style = {n: torch.rand((), generator=gen) * 10 ** -i for i, n in enumerate(STYLE_LAYERS)}
        weights = {n: float(w) for n, w in zip(STYLE_LAYERS, (1.0, 3.0, 7.0, 20.0, 50.0))}
        alpha, beta = 2.0, 300.0
        got = _as_tensor(_call(fn, "your total_loss", content, dict(style), dict(weights), alpha, beta), "total_loss")
        if got.numel() != 1:
            raise _wrong(f"it returned a tensor of shape {tuple(got.shape)}; the objective is one number.")
        got = got.reshape(())
        expected = _total(content, style, weights, alpha, beta)
        if _close(got, expected):
            leaf = {n: v.clone().requires_grad_(True) for n, v in style.items()}
            out = fn(content, leaf, dict(weights), alpha, beta)
            if not isinstance(out, torch.Tensor) or not out.requires_grad:
                raise _wrong("the value is right but carries no gradient: keep the sum in torch (no float() or "
                             ".item()), or the optimiser gets nothing to follow.")
            return (f"total_loss = alpha * L_content + beta * sum_l w_l E_l ({float(got):.4g} here). Only the ratio "
                    "beta/alpha moves the optimum: multiplying both by 10 multiplies the whole loss by 10.")
        ones = {n: 1.0 for n in STYLE_LAYERS}
        variants = [
            (_total(content, style, weights, beta, alpha), "alpha and beta are swapped: alpha weights the content "
             "term, beta the style term."),
            (_total(content, style, ones, alpha, beta), "the per-layer weights w_l are missing: multiply each "
             "layer's E_l by layer_weights[layer] before adding them up."),
            (alpha * content + beta * sum(weights[n] * style[n] for n in STYLE_LAYERS) / len(STYLE_LAYERS),
             "you averaged the layers; the style term is the weighted *sum* over layers (the weights already say "
             "how much each counts)."),
            (alpha * content + sum(weights[n] * style[n] for n in STYLE_LAYERS),
             "beta is missing: the weighted style sum is multiplied by beta."),
            (content + beta * sum(weights[n] * style[n] for n in STYLE_LAYERS),
             "alpha is missing: the content term is multiplied by alpha."),
            (alpha * content + sum(beta * weights[n] * style[n] for n in STYLE_LAYERS) * len(STYLE_LAYERS),
             "beta is counted once per layer and again for the total; multiply the weighted sum by beta once."),
            (alpha * content + beta * sum(style[n] for n in STYLE_LAYERS) * sum(weights.values()),
             "you multiplied the sum of the losses by the sum of the weights; weight each layer's loss by its "
             "own weight, then add: sum_l w_l * E_l."),
        ]
        for value, message in variants:
            if _close(got, value):
                raise _wrong(message)
        raise _wrong(f"you return {float(got):.6g}, expected {float(expected):.6g} = alpha * content_term + beta * "
                     "sum over layers of layer_weights[l] * style_terms[l].")

    return _finish("total_loss", run)


# ------------------------------------------------------------------------------------------------ start image
def check_start_image(fn: Callable[[torch.Tensor, str, int], torch.Tensor]) -> CheckResult:
    """Check ``fn(photo, init, seed)``: a copy of the photo for "content", seeded uniform noise of its shape
    for "noise" (from a private generator), ValueError otherwise."""

    def run() -> str:
        photo = torch.rand(1, 3, 6, 8, generator=torch.Generator().manual_seed(140))
        original = photo.clone()
        got = _as_tensor(_call(fn, "your start_image", photo, "content", 0), "start_image")
        if got is photo or (got.data_ptr() == photo.data_ptr() and got.numel() == photo.numel()):
            raise _wrong("for init='content' you returned the photo itself, not a copy: the optimiser changes the "
                         "image in place, so it would paint over your photo (and the content target). Return "
                         "photo.clone().")
        if not torch.equal(photo, original):
            raise _wrong("it changed the photo it was given; leave the input untouched and return a new tensor.")
        if not torch.equal(got.detach(), photo):
            raise _wrong("for init='content' the start should be the photo itself (a copy, same shape and values).")
        state = torch.random.get_rng_state()
        try:
            a = _as_tensor(_call(fn, "your start_image", photo, "noise", 3), "start_image")
            used_global = not torch.equal(torch.random.get_rng_state(), state)
            b = _call(fn, "your start_image", photo, "noise", 3)
            c = _call(fn, "your start_image", photo, "noise", 4)
        finally:
            torch.random.set_rng_state(state)
        if tuple(a.shape) != tuple(photo.shape):
            raise _wrong(f"the noise has shape {tuple(a.shape)}; it must have the photo's shape {tuple(photo.shape)} "
                         "(torch.rand(photo.shape, ...)).")
        if float(a.min()) < 0 or float(a.max()) > 1:
            raise _wrong("the noise has values outside [0, 1] (torch.randn?). A start image is a picture: use "
                         "uniform noise, torch.rand.")
        if not torch.equal(a, b) or torch.equal(a, c):
            raise _wrong("the noise must depend on the seed and only on it: draw it from "
                         "torch.Generator().manual_seed(seed).")
        if used_global:
            raise _wrong("it used torch's global random generator; draw from a private torch.Generator so later "
                         "random numbers in the notebook do not change.")
        if not torch.equal(a.detach(), torch.rand(photo.shape, generator=torch.Generator().manual_seed(3))):
            raise _wrong("the noise is reproducible but not what stlib draws: torch.rand(photo.shape, "
                         "generator=torch.Generator().manual_seed(seed)), so your runs match stylize's.")
        try:
            fn(photo, "style!", 0)
        except ValueError:
            pass
        except Exception as err:  # noqa: BLE001 - any other error is reported as a sentence
            raise _wrong(f"an unknown init raised {type(err).__name__}; raise ValueError with a sentence that "
                         "lists the choices ('content' or 'noise').") from None
        else:
            raise _wrong("an unknown init (e.g. a typo such as 'contnet') should raise ValueError, not quietly "
                         "return something.")
        return ("start_image: a copy of the photo for 'content' and stylize's seeded noise for 'noise' (and a clear "
                "error for anything else).")

    return _finish("start_image", run)


# ------------------------------------------------------------------------------------------------ closure
def _closure_problem(seed: int) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    goal = torch.rand(1, 3, 4, 4, generator=gen)
    scales = torch.rand(1, 3, 4, 4, generator=gen) * 4 + 0.5

    def loss_fn(x: torch.Tensor) -> torch.Tensor:  # a smooth bowl with different curvature per pixel
        return (scales * (x - goal) ** 2).sum() + 0.1 * ((x - goal) ** 4).sum()

    return torch.rand(1, 3, 4, 4, generator=gen), loss_fn


def check_closure(fn: Callable[..., Callable[[], Any]]) -> CheckResult:
    """Check ``fn(x, optimizer, loss_fn) -> closure``: the closure zeroes the gradient, evaluates the loss at
    the current ``x``, backpropagates and returns the loss - what ``torch.optim.LBFGS.step`` needs."""

    def run() -> str:
        start, loss_fn = _closure_problem(150)
        x = start.clone().requires_grad_(True)
        opt = torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=10)
        closure = _call(fn, "your make_closure", x, opt, loss_fn)
        if not callable(closure):
            raise _wrong(f"make_closure returned {type(closure).__name__}; return the closure function itself "
                         "(def closure(): ...; return closure), without calling it.")
        x.grad = torch.full_like(x, 100.0)  # a stale gradient, as a previous step leaves it
        try:
            out = closure()
        except Exception as err:  # noqa: BLE001 - a check turns every error into a sentence
            if isinstance(err, RecursionError):
                raise _wrong("the closure calls optimizer.step, which calls the closure again: the closure only "
                             "evaluates (zero_grad, loss, backward, return loss); the loop calls "
                             "optimizer.step(closure).") from None
            raise _wrong(f"calling the closure raised {type(err).__name__}: {err}{_hint(err)}") from None
        ref = start.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(ref), ref)
        if out is None:
            raise _wrong("the closure returns None; L-BFGS needs the loss back: end it with `return loss`.")
        if x.grad is None or torch.equal(x.grad, torch.full_like(x, 100.0)):
            if isinstance(out, torch.Tensor) and out.grad_fn is not None:
                try:
                    reaches_x = torch.autograd.grad(out, x, allow_unused=True, retain_graph=True)[0] is not None
                except RuntimeError:  # the graph was freed: backward() ran, but not into x
                    reaches_x = False
                if not reaches_x:
                    raise _wrong("the loss is not computed from x itself (the tensor the optimizer holds) but from "
                                 "a copy (so no gradient reaches x): call loss_fn(x), not a copy of x.")
            raise _wrong("after the closure x.grad is not the loss's gradient: call loss.backward() inside it.")
        if _close(x.grad, grad + 100.0):
            raise _wrong("the gradient was added to the previous one: call optimizer.zero_grad() at the start of "
                         "the closure (backward() accumulates into x.grad).")
        if not _close(x.grad, grad):
            raise _wrong("after the closure x.grad differs from the gradient of loss_fn(x): compute the loss from "
                         "x itself (the tensor the optimizer holds), not from a copy.")
        value = float(out.detach()) if isinstance(out, torch.Tensor) else float(out)
        if not torch.isclose(torch.as_tensor(value, dtype=torch.float64),
                             loss_fn(start).double(), rtol=1e-5):
            raise _wrong("the closure returns something other than the loss at the current x.")
        x.data.copy_(start - 0.01)  # the optimiser moves x: the closure must see the new pixels
        second = closure()
        second = float(second.detach()) if isinstance(second, torch.Tensor) else float(second)
        if abs(second - float(loss_fn(start - 0.01))) > 1e-4 * abs(second):
            raise _wrong("called after x moved, the closure returned the old loss: evaluate loss_fn(x) inside the "
                         "closure, every call (L-BFGS calls it at new points).")
        mine, theirs = start.clone().requires_grad_(True), start.clone().requires_grad_(True)
        opt_mine = torch.optim.LBFGS([mine], lr=1.0, max_iter=1, history_size=10)
        opt_ref = torch.optim.LBFGS([theirs], lr=1.0, max_iter=1, history_size=10)
        closure_mine = fn(mine, opt_mine, loss_fn)

        def closure_ref() -> torch.Tensor:
            opt_ref.zero_grad()
            loss = loss_fn(theirs)
            loss.backward()
            return loss

        for _ in range(8):
            opt_mine.step(closure_mine)
            opt_ref.step(closure_ref)
        if not _close(mine.detach(), theirs.detach(), rtol=1e-4):
            raise _wrong("one closure call is right, but 8 L-BFGS steps with it end elsewhere than with the "
                         "reference closure: does the closure change x or the optimizer's state?")
        return (f"make_closure works with torch.optim.LBFGS: 8 steps took the loss from {float(loss_fn(start)):.3g} "
                f"to {float(loss_fn(mine.detach())):.3g}, exactly as the reference closure.")

    return _finish("closure", run)


# ------------------------------------------------------------------------------------------------ stroke size
def check_stroke_layer(fn: Callable[[int], Optional[str]]) -> CheckResult:
    """Check ``fn(pixels) -> the first style layer whose receptive field is at least `pixels` wide (or None)``."""

    def run() -> str:
        fields = {n: receptive_field(n) for n in STYLE_LAYERS}
        for pixels in (1, 3, 4, 10, 16, 17, 40, 44, 45, 100, 196, 197, 500):
            expected = next((n for n in STYLE_LAYERS if fields[n] >= pixels), None)
            got = _call(fn, "your stroke_layer", pixels) if expected is not None else _none_ok(fn, pixels)
            if got == expected:
                continue
            if isinstance(got, int):
                raise _wrong(f"for {pixels} px it returned the number {got}; return the layer's name, e.g. 'relu3_1'.")
            if got not in STYLE_LAYERS and got is not None:
                raise _wrong(f"for {pixels} px it returned {got!r}; answer with one of the style layers "
                             f"{', '.join(STYLE_LAYERS)} (or None when none is large enough).")
            if expected is None:
                raise _wrong(f"for {pixels} px no style layer sees that much (relu5_1 sees {fields['relu5_1']} px): "
                             "return None.")
            if got is not None and fields[got] < pixels:
                raise _wrong(f"for {pixels} px you chose {got}, whose units see only {fields[got]} px: too small to "
                             "hold the stroke. Compare stlib.layers.receptive_field(layer) with the stroke size.")
            raise _wrong(f"for {pixels} px you chose {got}, but {expected} (receptive field {fields[expected]} px) "
                         "already sees it: return the *first* (shallowest) style layer that is large enough.")
        listing = ", ".join(f"{n} {f} px" for n, f in fields.items())
        return f"stroke_layer is right. Receptive fields of the style layers: {listing}."

    return _finish("stroke_layer", run)


def _none_ok(fn: Callable[[int], Optional[str]], pixels: int) -> Any:
    """Call ``fn`` where the right answer is None (so a None result is not an unfinished stub)."""
    try:
        return fn(pixels)
    except NotImplementedError:
        raise _todo("replace `raise NotImplementedError` in your stroke_layer with your code") from None
    except Exception as err:  # noqa: BLE001
        raise _wrong(f"for {pixels} px it raised {type(err).__name__}: {err}; return None when no layer is large "
                     "enough.") from None


# ------------------------------------------------------------------------------------------------ masked gram
def check_masked_gram(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """Check ``fn(features (B, C, H, W), mask (1, 1, H, W)) -> (B, C, C)`` against one region of
    ``stlib.regions.guided_gram_matrix``."""

    def run() -> str:
        for i, (b, c, h, w) in enumerate([(1, 4, 5, 6), (2, 3, 4, 4)]):
            feats = _rand(b, c, h, w, seed=160 + i).relu()
            mask = torch.rand(1, 1, h, w, generator=torch.Generator().manual_seed(170 + i))
            got = _as_tensor(_call(fn, "your masked_gram", feats.clone(), mask.clone()), "masked_gram")
            expected = guided_gram_matrix(feats, mask)[:, 0]
            if got.shape != expected.shape:
                if got.shape == (b, 1, c, c):
                    got = got[:, 0]
                else:
                    raise _wrong(f"for features {(b, c, h, w)} it returned shape {tuple(got.shape)}; one Gram "
                                 f"matrix per image: {tuple(expected.shape)}.")
            if _close(got, expected):
                continue
            masked = feats * mask
            mass_sq, mass = float(mask.pow(2).sum()), float(mask.sum())
            if _close(got, gram_matrix(masked)):
                raise _wrong(f"you divided by C*H*W, the size of the whole image. Divide by C times the region's "
                             f"mass, sum(mask ** 2) (here {mass_sq:.3g} of {h * w} positions), so a region's Gram "
                             "is an average over its own positions.")
            if _close(got, gram_matrix(masked, normalize=False)):
                raise _wrong("no normalisation: divide the sum by C * sum(mask ** 2).")
            if _close(got, gram_matrix(masked, normalize=False) / (c * mass)):
                raise _wrong("you divided by C * sum(mask); the masked features carry the mask twice in each "
                             "product (mask * F times mask * F), so divide by C * sum(mask ** 2).")
            flat, weights = feats.reshape(b, c, -1), mask.reshape(1, 1, -1)
            if _close(got, (flat * weights) @ flat.transpose(1, 2) / (c * mass)):
                raise _wrong("you masked only one side of the product. Mask the features first, Fm = features * "
                             "mask, then Fm Fm^T / (C * sum(mask ** 2)).")
            if _close(got, gram_matrix(feats)):
                raise _wrong("the mask was not used: multiply the features by the mask before the Gram matrix.")
            raise _wrong(f"for features {(b, c, h, w)} the values differ from stlib.regions.guided_gram_matrix "
                         f"(largest difference {float((got - expected).abs().max()):.3g}).")
        return ("masked_gram matches stlib.regions.guided_gram_matrix for one region. stylize(style_masks=...) "
                "computes one per region and layer.")

    return _finish("masked_gram", run)


SOLUTIONS: Dict[str, str] = {
    "total_loss": '''
def total_loss(content_term, style_terms, layer_weights, alpha, beta):
    """alpha * L_content + beta * sum over layers of w_l * E_l (0-dim tensors in, a 0-dim tensor out)."""
    style_term = sum(layer_weights[name] * style_terms[name] for name in layer_weights)
    return alpha * content_term + beta * style_term
''',
    "start_image": '''
def start_image(photo, init, seed):
    """Where the optimisation starts: a copy of the photo, or seeded uniform noise of its shape."""
    if init == "content":
        return photo.clone()                             # a copy: the optimiser will change it in place
    if init == "noise":
        return torch.rand(photo.shape, generator=torch.Generator().manual_seed(seed))
    raise ValueError(f"init must be 'content' or 'noise', not {init!r}")
''',
    "closure": '''
def make_closure(x, optimizer, loss_fn):
    """The function L-BFGS calls (maybe several times per step) to get the loss and gradient at the current x."""
    def closure():
        optimizer.zero_grad()                            # backward() adds to x.grad: clear the old gradient
        loss = loss_fn(x)                                # at the current pixels
        loss.backward()
        return loss
    return closure
''',
    "stroke_layer": '''
def stroke_layer(pixels):
    """The first style layer whose units see at least `pixels` x `pixels` input pixels (None if none does)."""
    for name in stlib.STYLE_LAYERS:
        if stlib.layers.receptive_field(name) >= pixels:
            return name
    return None
''',
    "masked_gram": '''
def masked_gram(features, mask):
    """Gram matrices (B, C, C) of the features (B, C, H, W) inside a soft mask (1, 1, H, W)."""
    b, c, h, w = features.shape
    masked = (features * mask).reshape(b, c, h * w)      # the features inside the region
    gram = masked @ masked.transpose(1, 2)               # (B, C, C)
    return gram / (c * mask.pow(2).sum())                # an average over the region's own positions
''',
}

SOLUTIONS_ALL.update(SOLUTIONS)  # stlib.checks.solution(...) and the notebooks' hidden solutions find them
