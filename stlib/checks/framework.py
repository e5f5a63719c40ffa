"""The checks' framework: how a check runs the student's function, turns every outcome into one printed
sentence, and compares tensors. The checks themselves live in one module per notebook (``nb01_content`` ...
``capstone``); ``stlib.checks`` gathers them.

Rules every check keeps: it never raises (an unfinished stub is "not implemented yet", an exception in the
student's code becomes a sentence); it prints one message and returns a ``CheckResult``; a wrong answer gets
a sentence that names the mistake and what to change; inputs have fixed shapes and seeds, so messages do not
depend on image sizes or fast mode.
"""

from __future__ import annotations

import math
import textwrap
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch


@dataclass
class Edition:
    """Which copy of the course is running: the student edition hides solutions (``hide_solutions``)."""

    solutions_hidden: bool = False


#: The one piece of process-wide state: set by the student notebooks' set-up cell, read when a check fails.
EDITION = Edition()


def hide_solutions() -> None:
    """Student edition: from now on ``stlib.checks.solution`` prints no solution and the checks stop offering
    one (the checks themselves work as before). The student notebooks' set-up cell calls this."""
    EDITION.solutions_hidden = True


@dataclass(frozen=True)
class CheckResult:
    """Outcome of a check: ``status`` is "passed", "todo" (not implemented yet) or "wrong"; ``message`` says why."""

    status: str
    message: str

    @property
    def ok(self) -> bool:
        """True when the exercise passed."""
        return self.status == "passed"

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return self.message

    def _ipython_display_(self) -> None:
        """The message was already printed by the check: show nothing more in Jupyter."""


class Verdict(Exception):
    """Raised inside a check to end it with a message."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def wrong(message: str) -> Verdict:
    """The verdict for a wrong answer: ``raise wrong("you summed ...; take the mean")``."""
    return Verdict("wrong", message)


def finish(name: str, run: Callable[[], str], solution: Optional[str] = None,
           edition: Edition = EDITION) -> CheckResult:
    """Run a check body; turn its verdict (or its success sentence) into a printed ``CheckResult``.
    A wrong answer points to ``stlib.checks.solution(solution or name)`` unless ``edition`` hides solutions."""
    try:
        result = CheckResult("passed", "✓ " + run())
    except Verdict as verdict:
        mark = "…" if verdict.status == "todo" else "✗"
        text = f"{mark} {name}: {verdict.message}"
        if verdict.status == "wrong" and not edition.solutions_hidden:
            text += f"\n  (Stuck? stlib.checks.solution({solution or name!r}) prints one solution.)"
        result = CheckResult(verdict.status, text)
    print(_wrap(result.message))
    return result


def _wrap(text: str) -> str:
    return "\n".join(textwrap.fill(line, width=100, subsequent_indent="  ") for line in text.split("\n"))


def todo(what: str) -> Verdict:
    """The verdict for an unfinished exercise: "not implemented yet - <what>, then run this cell again"."""
    return Verdict("todo", f"not implemented yet - {what}, then run this cell again.")


def call_student(fn: Any, what: str, *args: Any) -> Any:
    """Call the student's function; a stub, an exception or None become kind verdicts."""
    if fn is None:
        raise todo("define your function and pass it to the check")
    if not callable(fn):
        raise wrong(f"expected a function, got {type(fn).__name__}. Pass the function itself, without calling "
                    "it (check(my_fn), not check(my_fn(...))).")
    try:
        out = fn(*args)
    except NotImplementedError:
        raise todo(f"replace `raise NotImplementedError` in {what} with your code") from None
    except Exception as err:  # a check reports every error as a sentence instead of a traceback
        shapes = ", ".join(_describe(a) for a in args)
        raise wrong(f"calling it with {shapes} raised {type(err).__name__}: {err}{error_hint(err)}") from None
    if out is None:
        raise todo(f"{what} returns None; fill in its body and `return` the result")
    return out


#: (words in an error message, the sentence that explains the usual cause) - the common autograd mistakes.
_ERROR_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("does not require grad",),
     "backward() found nothing to differentiate: the loss was computed from a tensor that does not record "
     "gradients. Make a copy that does, x = image.detach().clone().requires_grad_(True), compute the loss from "
     "x (not inside torch.no_grad()), then call loss.backward()."),
    (("leaf variable", "in-place"),
     "you changed a tensor in place while autograd records it. Compute the new image as a new tensor "
     "(x - lr * x.grad), or change it in place only inside `with torch.no_grad():`."),
    (("nonetype",),
     "a value was None - usually x.grad, which stays None unless x is a leaf tensor made with "
     ".requires_grad_(True) and loss.backward() ran before you read it."),
    (("backward through the graph a second time",),
     "the same graph was used for two backward() calls: compute the loss afresh every time it is needed "
     "(inside the closure), and compute fixed targets under torch.no_grad() so they carry no graph."),
)


#: What L-BFGS says when the closure returns nothing (it calls float() on the closure's result).
CLOSURE_RETURNS_NONE = ("the closure returns None, but L-BFGS uses the value the closure returns (it calls "
                        "float(closure())): end the closure with `return loss`.")


def _raised_in_lbfgs(err: BaseException) -> bool:
    """True when the innermost frame of ``err``'s traceback is torch.optim.LBFGS's own code."""
    frames = traceback.extract_tb(err.__traceback__)
    return bool(frames) and frames[-1].filename.replace("\\", "/").endswith("optim/lbfgs.py")


def error_hint(err: Exception) -> str:
    """A sentence about the likely cause of ``err``, or ""."""
    text = str(err).lower()
    if "nonetype" in text and _raised_in_lbfgs(err):
        return " - " + CLOSURE_RETURNS_NONE
    for words, sentence in _ERROR_HINTS:
        if all(w in text for w in words):
            return " - " + sentence
    return ""


def _describe(arg: Any) -> str:
    if isinstance(arg, torch.Tensor):
        return f"a tensor of shape {tuple(arg.shape)}"
    if callable(arg):
        return "a loss function"
    return repr(arg)


def as_tensor(out: Any, what: str) -> torch.Tensor:
    """``out`` if it is a tensor; otherwise the verdict that says to keep the computation in torch."""
    if not isinstance(out, torch.Tensor):
        raise wrong(f"{what} should return a torch.Tensor, got {type(out).__name__}. Keep the computation in "
                    "torch (no .item(), .numpy() or Python floats), so gradients can flow.")
    return out


def close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4) -> bool:
    """Same shape and values within ``rtol`` (compared in float64)."""
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=rtol, atol=1e-7)


def ratio(got: torch.Tensor, expected: torch.Tensor) -> Optional[float]:
    """got / expected if the two differ by one constant factor, else None."""
    g, e = got.detach().double().flatten(), expected.detach().double().flatten()
    if g.shape != e.shape or not torch.isfinite(g).all() or float(e.abs().max()) == 0:
        return None
    k = float((g * e).sum() / (e * e).sum())
    return k if torch.allclose(g, k * e, rtol=1e-4, atol=1e-9) and k != 0 else None


def grad_check(fn: Callable[..., Any], inputs: Sequence[torch.Tensor], reference: Callable[..., torch.Tensor],
               what: str) -> None:
    """The student's output must be differentiable, with the reference's gradient wrt the first input."""
    x = inputs[0].clone().requires_grad_(True)
    try:
        out = fn(x, *inputs[1:])
    except Exception as err:  # e.g. an in-place operation on a tensor that requires grad
        raise wrong(f"with an input that requires grad (as during optimisation) {what} raised "
                    f"{type(err).__name__}: {err}") from None
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        raise wrong(f"{what}'s result carries no gradient, so the optimiser could not use it. Avoid .detach(), "
                    ".item(), .numpy(), torch.no_grad() and building new tensors with torch.tensor(...).")
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(7), dtype=out.dtype)
    (grad,) = torch.autograd.grad((out * weights).sum(), x)
    x_ref = inputs[0].clone().requires_grad_(True)
    (grad_ref,) = torch.autograd.grad((reference(x_ref, *inputs[1:]) * weights).sum(), x_ref)
    if not close(grad, grad_ref, rtol=1e-3):
        raise wrong(f"{what} gives the right values but the wrong gradient. Did an in-place operation or a "
                    ".detach() cut part of the computation out of the graph?")


def consistent_factor(fn: Callable[..., Any], inputs: Sequence[Sequence[torch.Tensor]],
                      reference: Callable[..., torch.Tensor]) -> Optional[float]:
    """The factor k if fn(*args) == k * reference(*args) on every input (one scalar each), else None."""
    ratios = []
    for args in inputs:
        try:
            got = fn(*[a.clone() for a in args])
        except Exception:  # noqa: BLE001 - any failure simply means "no consistent factor"
            return None
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            return None
        expected = float(reference(*args))
        if expected == 0:
            return None
        ratios.append(float(got) / expected)
    if ratios and all(math.isclose(r, ratios[0], rel_tol=1e-4) for r in ratios) and ratios[0] != 0:
        return ratios[0]
    return None


def factor_sentence(k: float, rule: str) -> str:
    """The sentence for a value ``k`` times the reference's; ``rule`` says what the value should be.
    k = -1 is named for what it is: the right size with the wrong sign."""
    if math.isclose(k, -1.0, rel_tol=1e-3):
        return ("your value has the right size but the wrong sign: a loss made of squares is never negative, and "
                "minimising a negated one makes the optimiser increase what it should reduce. Remove the minus sign: "
                f"{rule}.")
    return f"your value is {k:.4g} times stlib's: {rule}, with no extra factor."


def seeded_randn(*shape: int, seed: int) -> torch.Tensor:
    """Standard normal values of ``shape`` from a private generator seeded with ``seed``."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


