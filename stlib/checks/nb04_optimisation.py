"""Checks for notebook 04 (optimisation): one gradient-descent step, L-BFGS's closure, seeded noise and the
starting image."""

from __future__ import annotations

from typing import Any, Callable

import torch

from .framework import (
    CLOSURE_RETURNS_NONE,
    CheckResult,
    as_tensor,
    call_student,
    close,
    error_hint,
    finish,
    wrong,
)


# ------------------------------------------------------------------------------------------------ gradient step
def _sign_step_sentence(fn: Callable[..., Any], image: torch.Tensor, loss_fn: Callable[[torch.Tensor], torch.Tensor],
                        lr: float) -> str:
    """Every pixel moved by exactly lr: ``grad.sign()``, or torch.optim.Adam, whose first step is lr * g / (|g| + eps).
    A loss with gradients far below Adam's eps = 1e-8 tells them apart: sign() still moves by lr, Adam barely."""
    def tiny(x: torch.Tensor) -> torch.Tensor:
        return 1e-10 * loss_fn(x)

    try:
        moved = float((fn(image.clone(), tiny, lr) - image).abs().max())
    except Exception:  # noqa: BLE001 - then the first verdict stands
        moved = lr
    if moved < 0.5 * lr:
        return ("you used torch.optim.Adam: its first step moves every pixel by lr against the gradient's sign, "
                "because it divides the gradient by its own running size. This exercise is the plain step, "
                "image - lr * grad, written out (torch.optim.SGD([x], lr=lr) would take it too).")
    return "you stepped by the sign of the gradient; plain gradient descent uses the gradient itself: image - lr * grad."


def check_gradient_step(fn: Callable[[torch.Tensor, Callable[[torch.Tensor], torch.Tensor], float], torch.Tensor]) -> CheckResult:
    """Check ``fn(image, loss_fn, lr) -> new image``: one plain gradient-descent step ``image - lr * grad``."""

    def run() -> str:
        gen = torch.Generator().manual_seed(110)
        image = torch.rand(1, 3, 4, 5, generator=gen)
        goal = torch.rand(1, 3, 4, 5, generator=gen)

        def loss_fn(x: torch.Tensor) -> torch.Tensor:
            return ((x - goal) ** 2).sum() + (x[..., 1:] * x[..., :-1]).sum()

        lr = 0.05
        original = image.clone()
        got = as_tensor(call_student(fn, "your gradient_step", image, loss_fn, lr), "gradient_step")
        x = original.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(x), x)
        expected = original - lr * grad
        if not torch.equal(image, original):
            raise wrong("it changed the input image in place; return a new tensor and leave `image` untouched "
                        "(e.g. work on image.detach().clone().requires_grad_(True)).")
        if image.requires_grad:
            raise wrong("it switched on requires_grad of the caller's image (image.requires_grad_(True) changes "
                        "the tensor you were given). Work on a copy: image.detach().clone().requires_grad_(True).")
        if got.shape != expected.shape:
            raise wrong(f"it returned shape {tuple(got.shape)}; the new image has the input's shape "
                        f"{tuple(expected.shape)}.")
        if got.requires_grad:
            raise wrong("the returned image is still attached to the autograd graph (requires_grad=True); "
                        "return it .detach()-ed, otherwise every later step drags the whole history along.")
        if close(got, expected):
            before, after = float(loss_fn(original)), float(loss_fn(got))
            return (f"gradient_step matches image - lr * grad, and the loss went down "
                    f"({before:.3f} -> {after:.3f}).")
        if close(got, original):
            raise wrong("the image did not change. Compute loss = loss_fn(x) for an x with requires_grad=True, "
                        "call loss.backward(), then step with x.grad.")
        if close(got, original + lr * grad):
            raise wrong("the loss went up: you added the gradient. Gradient *descent* subtracts it: "
                        "image - lr * grad.")
        if close(got, original - 2 * lr * grad):
            raise wrong("the step is twice lr * grad. Did backward() run twice? It adds to x.grad each time: call "
                        "loss.backward() once per step, on a fresh x (or after clearing x.grad).")
        if close(got, original - grad):
            raise wrong("the step ignores the learning rate: multiply the gradient by lr.")
        if close(got, grad) or close(got, -lr * grad) or close(got, lr * grad):
            raise wrong("you returned the gradient (or the step) itself; return the new image: image - lr * grad.")
        if close(got, (original - lr * grad).clamp(0, 1)):
            raise wrong("you clamped the pixels to [0, 1]. An optimisation loop does that after every step "
                        "(stylize does, and so will yours in the capstone), but this function is the bare "
                        "step: return image - lr * grad and leave the clamp to the loop.")
        if close(got, original - lr * grad / grad.norm()) or close(got, original - lr * grad / grad.abs().max()):
            raise wrong("you normalised the gradient; plain gradient descent steps by lr times the gradient "
                        "itself: image - lr * grad.")
        if close(got, original - lr * grad.sign()):
            raise wrong(_sign_step_sentence(fn, original, loss_fn, lr))
        raise wrong("the new image differs from image - lr * grad (largest difference "
                    f"{float((got - expected).abs().max()):.3g}).")

    return finish("gradient_step", run)


# ------------------------------------------------------------------------------------------------ closure
def _closure_problem(seed: int) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    goal = torch.rand(1, 3, 4, 4, generator=gen)
    scales = torch.rand(1, 3, 4, 4, generator=gen) * 4 + 0.5

    def loss_fn(x: torch.Tensor) -> torch.Tensor:  # a smooth bowl with different curvature per pixel
        return (scales * (x - goal) ** 2).sum() + 0.1 * ((x - goal) ** 4).sum()

    start = torch.rand(1, 3, 4, 4, generator=gen) * 1.4 - 0.2  # some pixels outside [0, 1], as mid-run
    return start, loss_fn


def _graph_reaches(out: torch.Tensor, x: torch.Tensor) -> bool:
    """True when ``x`` is a leaf of the autograd graph that produced ``out`` (still readable after backward)."""
    seen, todo_nodes = set(), [out.grad_fn]
    while todo_nodes:
        node = todo_nodes.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if getattr(node, "variable", None) is x:
            return True
        todo_nodes.extend(next_node for next_node, _ in node.next_functions)
    return False


def _backward_ran(out: torch.Tensor, x: torch.Tensor) -> bool:
    """True when backward() already went through ``out``'s graph (it frees the graph's saved tensors)."""
    try:
        torch.autograd.grad(out, x, allow_unused=True, retain_graph=True)
    except RuntimeError:
        return True
    return False


def check_closure(fn: Callable[..., Callable[[], Any]]) -> CheckResult:
    """Check ``fn(x, optimizer, loss_fn) -> closure``: the closure zeroes the gradient, evaluates the loss at
    the current ``x``, backpropagates and returns the loss - what ``torch.optim.LBFGS.step`` needs."""

    def run() -> str:
        start, loss_fn = _closure_problem(150)
        x = start.clone().requires_grad_(True)
        opt = torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=10)
        closure = call_student(fn, "your make_closure", x, opt, loss_fn)
        if not callable(closure):
            raise wrong(f"make_closure returned {type(closure).__name__}; return the closure function itself "
                        "(def closure(): ...; return closure), without calling it.")
        x.grad = torch.full_like(x, 100.0)  # a stale gradient, as a previous step leaves it
        try:
            out = closure()
        except Exception as err:  # noqa: BLE001 - a check turns every error into a sentence
            if isinstance(err, RecursionError):
                raise wrong("the closure calls optimizer.step, which calls the closure again: the closure only "
                            "evaluates (zero_grad, loss, backward, return loss); the loop calls "
                            "optimizer.step(closure).") from None
            raise wrong(f"calling the closure raised {type(err).__name__}: {err}{error_hint(err)}") from None
        ref = start.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(ref), ref)
        if out is None:
            raise wrong(CLOSURE_RETURNS_NONE)
        if not torch.equal(x.detach(), start):
            if torch.equal(x.detach(), start.clamp(0, 1)):
                raise wrong("the closure clamps x. A closure only evaluates: L-BFGS calls it at points it chose "
                            "(several per step with max_iter > 1 or a line search) and expects x to stay there, so "
                            "a clamp inside it moves x under the optimiser's feet. Clamp after "
                            "optimizer.step(closure), in the loop. (The PyTorch tutorial clamps inside the closure; "
                            "that is harmless only with max_iter=1.)")
            raise wrong("the closure changed x; it should only evaluate the loss and gradient at x (the optimizer "
                        "moves x in optimizer.step).")
        if x.grad is None or torch.equal(x.grad, torch.full_like(x, 100.0)) or not x.grad.any():
            if isinstance(out, torch.Tensor) and out.grad_fn is not None:
                if not _graph_reaches(out, x):
                    raise wrong("the loss is not computed from x itself (the tensor the optimizer holds) but from "
                                "a copy (so no gradient reaches x): call loss_fn(x), not a copy of x.")
                if _backward_ran(out, x):
                    raise wrong("backward() ran, but x.grad is empty after the closure: optimizer.zero_grad() "
                                "comes first, before the loss and loss.backward(), not after them.")
            raise wrong("after the closure x.grad is not the loss's gradient: call loss.backward() inside it.")
        if close(x.grad, grad + 100.0):
            raise wrong("the gradient was added to the previous one: call optimizer.zero_grad() at the start of "
                        "the closure (backward() accumulates into x.grad).")
        if not close(x.grad, grad):
            raise wrong("after the closure x.grad differs from the gradient of loss_fn(x): compute the loss from "
                        "x itself (the tensor the optimizer holds), not from a copy.")
        value = float(out.detach()) if isinstance(out, torch.Tensor) else float(out)
        if not torch.isclose(torch.as_tensor(value, dtype=torch.float64),
                             loss_fn(start).double(), rtol=1e-5):
            raise wrong("the closure returns something other than the loss at the current x.")
        x.data.copy_(start - 0.01)  # the optimiser moves x: the closure must see the new pixels
        second = closure()
        second = float(second.detach()) if isinstance(second, torch.Tensor) else float(second)
        if abs(second - float(loss_fn(start - 0.01))) > 1e-4 * abs(second):
            raise wrong("called after x moved, the closure returned the old loss: evaluate loss_fn(x) inside the "
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
        if not close(mine.detach(), theirs.detach(), rtol=1e-4):
            raise wrong("one closure call is right, but 8 L-BFGS steps with it end elsewhere than with the "
                        "reference closure: does the closure change x or the optimizer's state?")
        return (f"make_closure works with torch.optim.LBFGS: 8 steps took the loss from {float(loss_fn(start)):.3g} "
                f"to {float(loss_fn(mine.detach())):.3g}, exactly as the reference closure.")

    return finish("closure", run)


# ------------------------------------------------------------------------------------------------ seeded noise
def check_seeded_noise(fn: Callable[[tuple[int, ...], int], torch.Tensor]) -> CheckResult:
    """Check ``fn(shape, seed) -> tensor``: uniform [0, 1) noise, identical for equal seeds, global RNG untouched."""

    def run() -> str:
        shape = (1, 3, 8, 6)
        state = torch.random.get_rng_state()
        try:
            a = as_tensor(call_student(fn, "your seeded_noise", shape, 3), "seeded_noise")
            global_used = not torch.equal(torch.random.get_rng_state(), state)
            if tuple(a.shape) != shape:
                raise wrong(f"for shape {shape} it returned {tuple(a.shape)}.")
            if not a.is_floating_point() or float(a.min()) < 0 or float(a.max()) > 1:
                raise wrong("the noise should be floats in [0, 1] (torch.rand), like an image.")
            b = call_student(fn, "your seeded_noise", shape, 3)
            c = call_student(fn, "your seeded_noise", shape, 4)
        finally:
            torch.random.set_rng_state(state)  # whatever the function did, the notebook's generator is restored
        if not torch.equal(a, b):
            raise wrong("two calls with the same seed gave different noise. Draw it from a generator seeded "
                        "with `seed`: torch.rand(shape, generator=torch.Generator().manual_seed(seed)).")
        if torch.equal(a, c):
            raise wrong("seeds 3 and 4 gave the same noise: the seed must be used.")
        if global_used:
            raise wrong("it works, but it reseeded (or drew from) torch's global random generator, which "
                        "changes every random number drawn later in the notebook. Use a private generator: "
                        "torch.Generator().manual_seed(seed).")
        return "seeded_noise is reproducible (same seed -> identical tensor) and leaves the global generator alone."

    return finish("seeded_noise", run)


# ------------------------------------------------------------------------------------------------ start image
def check_start_image(fn: Callable[[torch.Tensor, str, int], torch.Tensor]) -> CheckResult:
    """Check ``fn(photo, init, seed)``: a copy of the photo for "content", seeded uniform noise of its shape
    for "noise" (from a private generator), ValueError otherwise."""

    def run() -> str:
        photo = torch.rand(1, 3, 6, 8, generator=torch.Generator().manual_seed(140))
        original = photo.clone()
        got = as_tensor(call_student(fn, "your start_image", photo, "content", 0), "start_image")
        if got is photo or (got.data_ptr() == photo.data_ptr() and got.numel() == photo.numel()):
            raise wrong("for init='content' you returned the photo itself, not a copy: the optimiser changes the "
                        "image in place, so it would paint over your photo (and the content target). Return "
                        "photo.clone().")
        if not torch.equal(photo, original):
            raise wrong("it changed the photo it was given; leave the input untouched and return a new tensor.")
        if not torch.equal(got.detach(), photo):
            raise wrong("for init='content' the start should be the photo itself (a copy, same shape and values).")
        state = torch.random.get_rng_state()
        try:
            a = as_tensor(call_student(fn, "your start_image", photo, "noise", 3), "start_image")
            used_global = not torch.equal(torch.random.get_rng_state(), state)
            b = call_student(fn, "your start_image", photo, "noise", 3)
            c = call_student(fn, "your start_image", photo, "noise", 4)
        finally:
            torch.random.set_rng_state(state)
        if tuple(a.shape) != tuple(photo.shape):
            raise wrong(f"the noise has shape {tuple(a.shape)}; it must have the photo's shape {tuple(photo.shape)} "
                        "(torch.rand(photo.shape, ...)).")
        if float(a.min()) < 0 or float(a.max()) > 1:
            raise wrong("the noise has values outside [0, 1] (torch.randn?). A start image is a picture: use "
                        "uniform noise, torch.rand.")
        if not torch.equal(a, b) or torch.equal(a, c):
            raise wrong("the noise must depend on the seed and only on it: draw it from "
                        "torch.Generator().manual_seed(seed).")
        if used_global:
            raise wrong("it used torch's global random generator; draw from a private torch.Generator so later "
                        "random numbers in the notebook do not change.")
        if not torch.equal(a.detach(), torch.rand(photo.shape, generator=torch.Generator().manual_seed(3))):
            raise wrong("the noise is reproducible but not what stlib draws: torch.rand(photo.shape, "
                        "generator=torch.Generator().manual_seed(seed)), so your runs match stylize's.")
        try:
            fn(photo, "style!", 0)
        except ValueError:
            pass
        except Exception as err:  # noqa: BLE001 - any other error is reported as a sentence
            raise wrong(f"an unknown init raised {type(err).__name__}; raise ValueError with a sentence that "
                        "lists the choices ('content' or 'noise').") from None
        else:
            raise wrong("an unknown init (e.g. a typo such as 'contnet') should raise ValueError, not quietly "
                        "return something.")
        return ("start_image: a copy of the photo for 'content' and stylize's seeded noise for 'noise' (and a clear "
                "error for anything else).")

    return finish("start_image", run)


#: One possible solution of each exercise (shown by ``stlib.checks.solution`` and hidden in the notebooks).
SOLUTIONS: dict[str, str] = {
    "gradient_step": '''
def gradient_step(image, loss_fn, lr):
    """One step of gradient descent on the pixels: image - lr * d loss / d image."""
    x = image.detach().clone().requires_grad_(True)  # a fresh leaf tensor that records gradients
    loss = loss_fn(x)
    loss.backward()                                  # fills x.grad
    return (x - lr * x.grad).detach()
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
    "seeded_noise": '''
def seeded_noise(shape, seed):
    """Uniform [0, 1) noise of `shape`, the same for the same seed; the global generator is left alone."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator)
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
}
