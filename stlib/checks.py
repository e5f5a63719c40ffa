"""Instant checks for the course exercises: your function against stlib's reference on seeded random inputs.

    import stlib.checks
    def gram_matrix(features): ...          # your attempt
    stlib.checks.check_gram(gram_matrix)     # prints "✓ ..." or what is wrong, e.g. a missing normalisation
    stlib.checks.solution("gram")            # prints one possible solution

A check never raises: an unfinished stub (``raise NotImplementedError`` or returning None) is reported as
"not implemented yet", so a notebook still runs top to bottom. Each check prints one message and returns a
``CheckResult`` that is truthy when the function passed. Inputs have fixed shapes and seeds, so messages
do not depend on image sizes or fast mode.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from .gram import gram_matrix
from .layers import STYLE_LAYERS, VGG19_LAYERS, receptive_field
from .losses import content_loss, style_layer_loss, tv_loss


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


class _Verdict(Exception):
    """Raised inside a check to end it with a message."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _wrong(message: str) -> _Verdict:
    return _Verdict("wrong", message)


def _finish(name: str, run: Callable[[], str]) -> CheckResult:
    """Run a check body; turn its verdict (or its success sentence) into a printed ``CheckResult``."""
    try:
        result = CheckResult("passed", "✓ " + run())
    except _Verdict as verdict:
        mark = "…" if verdict.status == "todo" else "✗"
        text = f"{mark} {name}: {verdict.message}"
        if verdict.status == "wrong" and not _HIDDEN:
            text += f"\n  (Stuck? stlib.checks.solution({_SOLUTION_KEYS.get(name, name)!r}) prints one solution.)"
        result = CheckResult(verdict.status, text)
    print(_wrap(result.message))
    return result


def _wrap(text: str) -> str:
    return "\n".join(textwrap.fill(line, width=100, subsequent_indent="  ") for line in text.split("\n"))


def _todo(what: str) -> _Verdict:
    return _Verdict("todo", f"not implemented yet - {what}, then run this cell again.")


def _call(fn: Any, what: str, *args: Any) -> Any:
    """Call the student's function; a stub, an exception or None become kind verdicts."""
    if fn is None:
        raise _todo("define your function and pass it to the check")
    if not callable(fn):
        raise _wrong(f"expected a function, got {type(fn).__name__}. Pass the function itself, without calling "
                     "it (check(my_fn), not check(my_fn(...))).")
    try:
        out = fn(*args)
    except NotImplementedError:
        raise _todo(f"replace `raise NotImplementedError` in {what} with your code") from None
    except Exception as err:  # a check reports every error as a sentence instead of a traceback
        shapes = ", ".join(_describe(a) for a in args)
        raise _wrong(f"calling it with {shapes} raised {type(err).__name__}: {err}{_hint(err)}") from None
    if out is None:
        raise _todo(f"{what} returns None; fill in its body and `return` the result")
    return out


#: (words in an error message, the sentence that explains the usual cause) - the common autograd mistakes.
_ERROR_HINTS: Tuple[Tuple[Tuple[str, ...], str], ...] = (
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


def _hint(err: Exception) -> str:
    """A sentence about the likely cause of ``err``, or ""."""
    text = str(err).lower()
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


def _as_tensor(out: Any, what: str) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise _wrong(f"{what} should return a torch.Tensor, got {type(out).__name__}. Keep the computation in "
                     "torch (no .item(), .numpy() or Python floats), so gradients can flow.")
    return out


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-4) -> bool:
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=rtol, atol=1e-7)


def _ratio(got: torch.Tensor, expected: torch.Tensor) -> Optional[float]:
    """got / expected if the two differ by one constant factor, else None."""
    g, e = got.detach().double().flatten(), expected.detach().double().flatten()
    if g.shape != e.shape or not torch.isfinite(g).all() or float(e.abs().max()) == 0:
        return None
    k = float((g * e).sum() / (e * e).sum())
    return k if torch.allclose(g, k * e, rtol=1e-4, atol=1e-9) and k != 0 else None


def _grad_check(fn: Callable[..., Any], inputs: Sequence[torch.Tensor], reference: Callable[..., torch.Tensor],
                what: str) -> None:
    """The student's output must be differentiable, with the reference's gradient wrt the first input."""
    x = inputs[0].clone().requires_grad_(True)
    try:
        out = fn(x, *inputs[1:])
    except Exception as err:  # e.g. an in-place operation on a tensor that requires grad
        raise _wrong(f"with an input that requires grad (as during optimisation) {what} raised "
                     f"{type(err).__name__}: {err}") from None
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        raise _wrong(f"{what}'s result carries no gradient, so the optimiser could not use it. Avoid .detach(), "
                     ".item(), .numpy(), torch.no_grad() and building new tensors with torch.tensor(...).")
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(7), dtype=out.dtype)
    (grad,) = torch.autograd.grad((out * weights).sum(), x)
    x_ref = inputs[0].clone().requires_grad_(True)
    (grad_ref,) = torch.autograd.grad((reference(x_ref, *inputs[1:]) * weights).sum(), x_ref)
    if not _close(grad, grad_ref, rtol=1e-3):
        raise _wrong(f"{what} gives the right values but the wrong gradient. Did an in-place operation or a "
                     ".detach() cut part of the computation out of the graph?")


def _consistent_factor(fn: Callable[..., Any], inputs: Sequence[Sequence[torch.Tensor]],
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


def _rand(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------------ gram
def _gram_variants(f: torch.Tensor) -> List[Tuple[torch.Tensor, str]]:
    b, c, h, w = f.shape
    raw = gram_matrix(f, normalize=False)
    scrambled = f.reshape(b, h * w, c)
    return [
        (raw, f"no normalisation: your values are C*H*W = {c * h * w} times too large. Divide the sum by "
              "C*H*W (channels x height x width)."),
        (raw / (h * w), f"you divided by H*W; stlib divides by C*H*W, so yours is C = {c} times too large."),
        (raw / c, "you divided by C only; divide by C*H*W (channels x height x width)."),
        (raw / (b * c * h * w), "you also divided by the batch size B; each image's Gram matrix is divided by "
                                "C*H*W only."),
        (torch.bmm(scrambled.transpose(1, 2), scrambled) / (c * h * w),
         "the shape is right but the values are scrambled: reshaping (B, C, H, W) straight to (B, H*W, C) "
         "mixes channels and positions. Reshape to (B, C, H*W) and multiply it by its transpose."),
    ]


def check_gram(fn: Callable[[torch.Tensor], torch.Tensor]) -> CheckResult:
    """Check ``fn(features (B, C, H, W)) -> (B, C, C)`` against ``stlib.gram_matrix`` (normalised by C*H*W)."""

    def run() -> str:
        shapes = [(2, 4, 5, 3), (1, 3, 4, 4), (3, 6, 2, 7)]
        for i, shape in enumerate(shapes):
            f = _rand(*shape, seed=10 + i).relu()  # non-negative, like ReLU features
            b, c, h, w = shape
            got = _as_tensor(_call(fn, "your gram_matrix", f.clone()), "gram_matrix")
            expected = gram_matrix(f)
            if got.shape != expected.shape:
                gs = tuple(got.shape)
                if gs == (c, c):
                    hint = "the batch dimension is missing (or every image was summed into one Gram matrix)"
                    if b == 1:
                        hint = "the batch dimension was squeezed away"
                    raise _wrong(f"for features {shape} it returned {gs}; expected (B, C, C) = {tuple(expected.shape)}: "
                                 f"{hint}. Keep one Gram matrix per image: reshape to (B, C, H*W) and use "
                                 "torch.bmm or the @ operator.")
                if gs in ((b * c, b * c), (1, b * c, b * c)):
                    raise _wrong(f"for features {shape} it returned {gs}: the batch was folded into the "
                                 "channels, so channels of different images get correlated. Reshape to "
                                 "(B, C, H*W), not (B*C, H*W).")
                if gs in ((b, h * w, h * w), (h * w, h * w)):
                    raise _wrong(f"for features {shape} it returned {gs}: that compares positions with "
                                 "positions (F^T F). The Gram matrix compares channels: F F^T with F of "
                                 "shape (B, C, H*W).")
                raise _wrong(f"for features {shape} it returned shape {gs}; expected (B, C, C) = "
                             f"{tuple(expected.shape)}.")
            if not torch.isfinite(got).all():
                raise _wrong(f"for features {shape} the result contains NaN or infinity.")
            if _close(got, expected):
                continue
            for variant, message in _gram_variants(f):
                if _close(got, variant):
                    raise _wrong(message)
            k = _ratio(got, expected)
            if k is not None:
                raise _wrong(f"for features {shape} your values are {k:.4g} times stlib's: the products are "
                             f"right but the normalisation is not. Divide the raw sum by C*H*W = {c * h * w}.")
            raise _wrong(f"for features {shape} the values differ from stlib.gram_matrix (largest difference "
                         f"{float((got - expected).abs().max()):.3g}). G[b, i, j] should be the sum over "
                         "positions p of F[b, i, p] * F[b, j, p], divided by C*H*W.")
        _grad_check(fn, [_rand(2, 4, 5, 3, seed=20)], gram_matrix, "gram_matrix")
        return ("gram_matrix matches stlib.gram_matrix (values, shapes and gradients) on 3 random batches. "
                "From now on the notebook uses stlib.gram_matrix.")

    return _finish("gram_matrix", run)


# ------------------------------------------------------------------------------------------------ content loss
def check_content_loss(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """Check ``fn(features, target) -> scalar`` against ``stlib.content_loss`` (mean squared error)."""

    def run() -> str:
        shapes = [(1, 8, 6, 5), (2, 4, 3, 7)]
        inputs = [(_rand(*shape, seed=30 + i).relu(), _rand(*shape, seed=40 + i).relu()) for i, shape in enumerate(shapes)]
        for shape, (feats, target) in zip(shapes, inputs):
            got = _as_tensor(_call(fn, "your content_loss", feats.clone(), target.clone()), "content_loss")
            expected = content_loss(feats, target)
            n = feats.numel()
            if got.numel() != 1:
                raise _wrong(f"for features {shape} it returned a tensor of shape {tuple(got.shape)}; a loss is "
                             "one number. Average the squared differences over all elements with .mean().")
            got = got.reshape(())
            if _close(got, expected):
                continue
            diff = feats - target
            if _close(got, 0.5 * diff.pow(2).sum()):
                raise _wrong("that is Gatys et al.'s 1/2 * sum of squares - the paper's formula, but stlib "
                             f"(and this exercise) uses the mean: divide by the {n} elements instead of 2.")
            if _close(got, diff.pow(2).sum()):
                raise _wrong(f"you summed the squared differences; take the mean instead (divide by the {n} "
                             "elements), so the value does not grow with the image size.")
            if _close(got, diff.abs().mean()) or _close(got, diff.abs().sum()):
                raise _wrong("you used absolute differences; the content loss squares them: (F - P) ** 2.")
            if _close(got, diff.pow(2).mean().sqrt()) or _close(got, diff.norm()):
                raise _wrong("you took a square root (a distance); the loss is the mean of the squared "
                             "differences, without the root.")
            if _close(got, diff.mean().pow(2)) or _close(got, diff.sum().pow(2)):
                raise _wrong("you squared after averaging, so positive and negative differences cancel. "
                             "Square each difference first, then take the mean.")
            k = _consistent_factor(fn, inputs, content_loss)
            if k is not None:
                raise _wrong(f"your value is {k:.4g} times stlib's: the mean of (F - P) ** 2 over all elements "
                             "has no extra factor.")
            raise _wrong(f"for features {shape} you return {float(got):.4g}, stlib.content_loss gives "
                         f"{float(expected):.4g}. The content loss is the mean over all elements of "
                         "(features - target) ** 2.")
        f, t = _rand(1, 8, 6, 5, seed=50), _rand(1, 8, 6, 5, seed=51)
        _grad_check(lambda x, y: fn(x, y).reshape(()), [f, t], content_loss, "content_loss")
        return "content_loss matches stlib.content_loss (values and gradients) on random feature maps."

    return _finish("content_loss", run)


# ------------------------------------------------------------------------------------------------ style loss
def _style_loss_hint(verdict: _Verdict) -> _Verdict:
    """Explain the two usual crashes: features compared with a Gram matrix, or the Gram of a Gram."""
    text = verdict.message
    if "must match the size" in text or "broadcast" in text:
        return _wrong("you compared the feature maps (B, C, H, W) with the target, which is already a Gram "
                      "matrix (1, C, C), so the shapes clash. Turn the features into their Gram matrix first, "
                      "G = stlib.gram_matrix(features), then compare G with target_gram.")
    if "gram_matrix expects features" in text or "not enough values to unpack" in text:
        return _wrong("you took the Gram matrix of target_gram, but it already is one (shape (1, C, C)); only "
                      "the features need stlib.gram_matrix.")
    return verdict


def check_style_layer_loss(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> CheckResult:
    """Check ``fn(features (B, C, H, W), target_gram (1, C, C)) -> scalar`` against ``stlib.style_layer_loss``."""

    def run() -> str:
        shapes = [(1, 6, 5, 4), (2, 5, 4, 6)]
        inputs = [(_rand(*shape, seed=60 + i).relu(), gram_matrix(_rand(1, shape[1], 7, 3, seed=70 + i).relu()))
                  for i, shape in enumerate(shapes)]
        for shape, (feats, target) in zip(shapes, inputs):
            try:
                got = _call(fn, "your style_layer_loss", feats.clone(), target.clone())
            except _Verdict as verdict:
                raise _style_loss_hint(verdict) from None
            got = _as_tensor(got, "style_layer_loss")
            expected = style_layer_loss(feats, target)
            if got.numel() != 1:
                raise _wrong(f"it returned shape {tuple(got.shape)}; a loss is one number: take the .mean() of "
                             "the squared differences between the two Gram matrices.")
            got = got.reshape(())
            if _close(got, expected):
                continue
            g = gram_matrix(feats)
            raw = gram_matrix(feats, normalize=False)
            c = shape[1]
            if _close(got, (raw - target).pow(2).mean()):
                raise _wrong("your Gram matrix is not normalised like the target (which is divided by C*H*W). "
                             "Use stlib.gram_matrix(features), or divide your sum by C*H*W.")
            if _close(got, (g - target).pow(2).sum()) or _close(got, (g - target).pow(2).sum() / shape[0]):
                raise _wrong(f"you summed the squared differences; take the mean over the C*C = {c * c} entries "
                             "(and the batch).")
            if _close(got, (g - target).abs().mean()):
                raise _wrong("you used absolute differences; square them: (G - A) ** 2.")
            k = _consistent_factor(fn, inputs, style_layer_loss)
            if k is not None:
                raise _wrong(f"your value is {k:.4g} times stlib's; the loss is mean((G - A) ** 2) with no "
                             "extra factor (the 1/(4 N^2 M^2) of the paper belongs to raw, unnormalised Grams).")
            raise _wrong(f"for features {shape} you return {float(got):.4g}, stlib.style_layer_loss gives "
                         f"{float(expected):.4g}. Compute G = gram_matrix(features), then the mean of "
                         "(G - target_gram) ** 2.")
        target = gram_matrix(_rand(1, 6, 7, 3, seed=80).relu())
        _grad_check(lambda x, t: fn(x, t).reshape(()), [_rand(1, 6, 5, 4, seed=81).relu(), target],
                    style_layer_loss, "style_layer_loss")
        return "style_layer_loss matches stlib.style_layer_loss (values and gradients)."

    return _finish("style_layer_loss", run)


# ------------------------------------------------------------------------------------------------ TV loss
def check_tv_loss(fn: Callable[[torch.Tensor], torch.Tensor]) -> CheckResult:
    """Check ``fn(image (B, 3, H, W)) -> scalar`` against ``stlib.tv_loss`` (mean squared neighbour differences)."""

    def run() -> str:
        shapes = [(1, 3, 6, 9), (2, 3, 7, 5)]
        inputs = [(torch.rand(*shape, generator=torch.Generator().manual_seed(90 + i)),) for i, shape in enumerate(shapes)]
        for shape, (img,) in zip(shapes, inputs):
            got = _as_tensor(_call(fn, "your tv_loss", img.clone()), "tv_loss")
            expected = tv_loss(img)
            if got.numel() != 1:
                raise _wrong(f"it returned shape {tuple(got.shape)}; a loss is one number: average with .mean().")
            got = got.reshape(())
            if _close(got, expected):
                continue
            dx = img[..., :, 1:] - img[..., :, :-1]
            dy = img[..., 1:, :] - img[..., :-1, :]
            if _close(got, dx.pow(2).mean()) or _close(got, dy.pow(2).mean()):
                which = "left-right" if _close(got, dx.pow(2).mean()) else "up-down"
                raise _wrong(f"only the {which} neighbours are counted; add the mean squared difference in the "
                             "other direction too.")
            if _close(got, dx.abs().mean() + dy.abs().mean()):
                raise _wrong("you used absolute differences (that is the L1 total variation, also fine as a "
                             "regulariser); stlib squares them: mean(dx ** 2) + mean(dy ** 2).")
            if _close(got, dx.pow(2).sum() + dy.pow(2).sum()):
                raise _wrong("you summed the squared differences; average each direction with .mean(), so the "
                             "value does not grow with the image size.")
            rx = torch.roll(img, 1, dims=-1) - img
            ry = torch.roll(img, 1, dims=-2) - img
            if _close(got, rx.pow(2).mean() + ry.pow(2).mean()):
                raise _wrong("torch.roll wraps around, so the last column is compared with the first. Use "
                             "slices instead: image[..., :, 1:] - image[..., :, :-1].")
            crop = (dx[..., :-1, :].pow(2) + dy[..., :, :-1].pow(2)).mean()
            if _close(got, crop) or _close(got, crop * 2):
                raise _wrong("you cropped both differences to a common (H-1) x (W-1) grid; stlib averages each "
                             "direction over all its pairs: mean(dx ** 2) + mean(dy ** 2).")
            k = _consistent_factor(fn, inputs, tv_loss)
            if k is not None:
                raise _wrong(f"your value is {k:.4g} times stlib's: it is mean(dx ** 2) + mean(dy ** 2), no "
                             "extra factor.")
            raise _wrong(f"for an image {shape} you return {float(got):.4g}, stlib.tv_loss gives "
                         f"{float(expected):.4g}. With dx = image[..., :, 1:] - image[..., :, :-1] and dy the "
                         "same along the height: mean(dx ** 2) + mean(dy ** 2).")
        _grad_check(lambda x: fn(x).reshape(()), [torch.rand(1, 3, 6, 9, generator=torch.Generator().manual_seed(99))],
                    tv_loss, "tv_loss")
        return "tv_loss matches stlib.tv_loss (values and gradients)."

    return _finish("tv_loss", run)


# ------------------------------------------------------------------------------------------------ receptive field
def check_receptive_field(fn: Callable[[str], int]) -> CheckResult:
    """Check ``fn(layer_name) -> pixels`` against ``stlib.layers.receptive_field`` for all 37 VGG-19 layers."""

    def run() -> str:
        for name in VGG19_LAYERS:
            got = _call(fn, "your receptive_field", name)
            expected = receptive_field(name)
            if isinstance(got, torch.Tensor) and got.numel() == 1:
                got = got.item()
            if not isinstance(got, (int, float)) or isinstance(got, bool):
                raise _wrong(f"for {name!r} it returned {got!r}; return a number of pixels (an int).")
            if got == expected:
                continue
            if name.startswith("relu") and got == receptive_field(VGG19_LAYERS[VGG19_LAYERS.index(name) - 1]) + 2:
                raise _wrong(f"at {name} you say {got}, expected {expected}: a ReLU works pixel by pixel, so it "
                             "keeps the receptive field of the convolution before it.")
            first_pool = name.startswith("pool") or any(
                n.startswith("pool") for n in VGG19_LAYERS[: VGG19_LAYERS.index(name)])
            if first_pool:
                raise _wrong(f"at {name} you say {got}, expected {expected} (the layers before it were right). "
                             "After each 2x2 pooling, neighbouring units are twice as far apart in the input "
                             "(the 'jump' doubles), so every later 3x3 convolution adds 2 * jump pixels and a "
                             "pooling adds 1 * jump.")
            raise _wrong(f"at {name} you say {got}, expected {expected}. One pixel sees itself (1); each 3x3 "
                         "convolution adds one pixel on every side (+2).")
        rf = receptive_field("relu4_2")
        return f"receptive_field is right for all 37 layers of VGG-19 (one unit of relu4_2 sees {rf} x {rf} pixels)."

    return _finish("receptive_field", run)


# ------------------------------------------------------------------------------------------------ layer weights
def check_layer_weights(
    weights: Optional[Mapping[str, float]],
    contributions: Optional[Mapping[str, float]] = None,
    max_ratio: float = 10.0,
) -> CheckResult:
    """Check a style-layer weighting ``{layer: weight}``: valid names, weights >= 0, and - given the unweighted
    per-layer losses ``contributions`` - weighted shares within a factor ``max_ratio`` of each other."""

    def run() -> str:
        if weights is None:
            raise _todo("set `my_layer_weights` to a dict such as {'relu1_1': 1.0, ...}")
        if not isinstance(weights, Mapping):
            raise _wrong(f"expected a dict {{layer name: weight}}, got {type(weights).__name__}.")
        for name, w in weights.items():
            if name not in VGG19_LAYERS:
                raise _wrong(f"{name!r} is not a VGG-19 layer name; the style layers are {', '.join(STYLE_LAYERS)}.")
            if not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise _wrong(f"the weight of {name} is {w!r}; weights are finite numbers >= 0.")
        missing = [n for n in STYLE_LAYERS if weights.get(n, 0) <= 0]
        if missing:
            raise _wrong(f"give every style layer a positive weight; missing or zero: {', '.join(missing)}.")
        if contributions is None:
            return "the weights are valid."
        shares = {n: float(weights[n]) * float(contributions[n]) for n in STYLE_LAYERS}
        total = sum(shares.values())
        big, small = max(shares, key=shares.get), min(shares, key=shares.get)  # type: ignore[arg-type]
        listing = ", ".join(f"{n} {100 * s / total:.0f}%" for n, s in shares.items())
        if shares[small] <= 0 or shares[big] / shares[small] > max_ratio:
            raise _wrong(f"shares of the style loss: {listing}. {big} contributes "
                         f"{shares[big] / max(shares[small], 1e-30):.0f}x more than {small}; bring every layer "
                         f"within {max_ratio:g}x of the others (raise {small}'s weight or lower {big}'s).")
        return f"balanced: shares of the style loss {listing}."

    return _finish("layer_weights", run)


# ------------------------------------------------------------------------------------------------ gradient step
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
        got = _as_tensor(_call(fn, "your gradient_step", image, loss_fn, lr), "gradient_step")
        x = original.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(x), x)
        expected = original - lr * grad
        if not torch.equal(image, original):
            raise _wrong("it changed the input image in place; return a new tensor and leave `image` untouched "
                         "(e.g. work on image.detach().clone().requires_grad_(True)).")
        if image.requires_grad:
            raise _wrong("it switched on requires_grad of the caller's image (image.requires_grad_(True) changes "
                         "the tensor you were given). Work on a copy: image.detach().clone().requires_grad_(True).")
        if got.shape != expected.shape:
            raise _wrong(f"it returned shape {tuple(got.shape)}; the new image has the input's shape "
                         f"{tuple(expected.shape)}.")
        if got.requires_grad:
            raise _wrong("the returned image is still attached to the autograd graph (requires_grad=True); "
                         "return it .detach()-ed, otherwise every later step drags the whole history along.")
        if _close(got, expected):
            before, after = float(loss_fn(original)), float(loss_fn(got))
            return (f"gradient_step matches image - lr * grad, and the loss went down "
                    f"({before:.3f} -> {after:.3f}).")
        if _close(got, original):
            raise _wrong("the image did not change. Compute loss = loss_fn(x) for an x with requires_grad=True, "
                         "call loss.backward(), then step with x.grad.")
        if _close(got, original + lr * grad):
            raise _wrong("the loss went up: you added the gradient. Gradient *descent* subtracts it: "
                         "image - lr * grad.")
        if _close(got, original - grad):
            raise _wrong("the step ignores the learning rate: multiply the gradient by lr.")
        if _close(got, grad) or _close(got, -lr * grad) or _close(got, lr * grad):
            raise _wrong("you returned the gradient (or the step) itself; return the new image: image - lr * grad.")
        if _close(got, (original - lr * grad).clamp(0, 1)):
            raise _wrong("you clamped the pixels to [0, 1]. An optimisation loop does that after every step "
                         "(stylize does, and so will yours in the capstone), but this function is the bare "
                         "step: return image - lr * grad and leave the clamp to the loop.")
        if _close(got, original - lr * grad / grad.norm()) or _close(got, original - lr * grad / grad.abs().max()):
            raise _wrong("you normalised the gradient; plain gradient descent steps by lr times the gradient "
                         "itself: image - lr * grad.")
        if _close(got, original - lr * grad.sign()):
            raise _wrong("you stepped by the sign of the gradient; plain gradient descent uses the gradient "
                         "itself: image - lr * grad.")
        raise _wrong("the new image differs from image - lr * grad (largest difference "
                     f"{float((got - expected).abs().max()):.3g}).")

    return _finish("gradient_step", run)


# ------------------------------------------------------------------------------------------------ seeded noise
def check_seeded_noise(fn: Callable[[Tuple[int, ...], int], torch.Tensor]) -> CheckResult:
    """Check ``fn(shape, seed) -> tensor``: uniform [0, 1) noise, identical for equal seeds, global RNG untouched."""

    def run() -> str:
        shape = (1, 3, 8, 6)
        state = torch.random.get_rng_state()
        try:
            a = _as_tensor(_call(fn, "your seeded_noise", shape, 3), "seeded_noise")
            global_used = not torch.equal(torch.random.get_rng_state(), state)
            if tuple(a.shape) != shape:
                raise _wrong(f"for shape {shape} it returned {tuple(a.shape)}.")
            if not a.is_floating_point() or float(a.min()) < 0 or float(a.max()) > 1:
                raise _wrong("the noise should be floats in [0, 1] (torch.rand), like an image.")
            b = _call(fn, "your seeded_noise", shape, 3)
            c = _call(fn, "your seeded_noise", shape, 4)
        finally:
            torch.random.set_rng_state(state)  # whatever the function did, the notebook's generator is restored
        if not torch.equal(a, b):
            raise _wrong("two calls with the same seed gave different noise. Draw it from a generator seeded "
                         "with `seed`: torch.rand(shape, generator=torch.Generator().manual_seed(seed)).")
        if torch.equal(a, c):
            raise _wrong("seeds 3 and 4 gave the same noise: the seed must be used.")
        if global_used:
            raise _wrong("it works, but it reseeded (or drew from) torch's global random generator, which "
                         "changes every random number drawn later in the notebook. Use a private generator: "
                         "torch.Generator().manual_seed(seed).")
        return "seeded_noise is reproducible (same seed -> identical tensor) and leaves the global generator alone."

    return _finish("seeded_noise", run)


# ------------------------------------------------------------------------------------------------ solutions
SOLUTIONS: Dict[str, str] = {
    "gram": '''
def gram_matrix(features):
    """(B, C, H, W) -> (B, C, C): channel correlations, divided by C*H*W."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)             # one row per channel
    gram = flat @ flat.transpose(1, 2)               # (B, C, H*W) @ (B, H*W, C) -> (B, C, C)
    return gram / (c * h * w)
''',
    "content_loss": '''
def content_loss(features, target):
    """Mean squared difference of two feature maps (B, C, H, W) -> a scalar."""
    return ((features - target) ** 2).mean()
''',
    "style_layer_loss": '''
def style_layer_loss(features, target_gram):
    """Mean squared difference between the Gram matrix of features (B, C, H, W) and target_gram (1, C, C)."""
    gram = stlib.gram_matrix(features)               # (B, C, C), divided by C*H*W like the target
    return ((gram - target_gram) ** 2).mean()
''',
    "tv_loss": '''
def tv_loss(image):
    """Mean squared difference between horizontally and vertically neighbouring pixels of (B, 3, H, W)."""
    dx = image[..., :, 1:] - image[..., :, :-1]      # left-right neighbours, (B, 3, H, W-1)
    dy = image[..., 1:, :] - image[..., :-1, :]      # up-down neighbours,    (B, 3, H-1, W)
    return (dx ** 2).mean() + (dy ** 2).mean()
''',
    "receptive_field": '''
def receptive_field(layer):
    """Side of the square of input pixels that one unit of `layer` sees."""
    size, jump = 1, 1                                # one pixel; neighbouring units 1 pixel apart
    for name in stlib.VGG19_LAYERS[: stlib.layer_index(layer) + 1]:
        if name.startswith("conv"):                  # 3x3: one more unit on each side
            size += 2 * jump
        elif name.startswith("pool"):                # 2x2, stride 2: one more unit, then units twice as far apart
            size += jump
            jump *= 2
    return size
''',
    "layer_weights": '''
# One way: weight each layer by 1 / (its unweighted loss), so every layer starts with the same share.
my_layer_weights = {name: 1.0 / per_layer[name] for name in stlib.STYLE_LAYERS}
''',
    "gradient_step": '''
def gradient_step(image, loss_fn, lr):
    """One step of gradient descent on the pixels: image - lr * d loss / d image."""
    x = image.detach().clone().requires_grad_(True)  # a fresh leaf tensor that records gradients
    loss = loss_fn(x)
    loss.backward()                                  # fills x.grad
    return (x - lr * x.grad).detach()
''',
    "seeded_noise": '''
def seeded_noise(shape, seed):
    """Uniform [0, 1) noise of `shape`, the same for the same seed; the global generator is left alone."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator)
''',
}

#: Which solution each check's "Stuck?" hint points to.
_SOLUTION_KEYS = {"gram_matrix": "gram"}


#: Checks that live in other modules (imported on first use, so this module stays the one entry point).
_ELSEWHERE = {
    "check_total_loss": "checks_practice", "check_start_image": "checks_practice", "check_closure": "checks_practice",
    "check_stroke_layer": "checks_practice", "check_masked_gram": "checks_practice",
    "check_capstone": "checks_capstone", "check_instance_norm": "checks_realtime",
}


def __getattr__(name: str) -> Any:
    """``stlib.checks.check_closure`` and the other checks kept in ``checks_practice``/``checks_capstone``."""
    if name in _ELSEWHERE:
        import importlib

        return getattr(importlib.import_module(f".{_ELSEWHERE[name]}", __package__), name)
    raise AttributeError(f"module 'stlib.checks' has no attribute {name!r}")


def load_all_solutions() -> Dict[str, str]:
    """Every exercise's solution, including those of the checks kept in other modules."""
    import importlib

    for module in sorted(set(_ELSEWHERE.values())):
        importlib.import_module(f".{module}", __package__)  # each adds its solutions to SOLUTIONS
    return SOLUTIONS


#: True in the student edition (``hide_solutions``): ``solution`` and the checks' hints keep solutions back.
_HIDDEN = False


def hide_solutions() -> None:
    """Student edition: from now on ``solution`` prints no solution and the checks stop offering one (the
    checks themselves work as before). The student notebooks' set-up cell calls this."""
    global _HIDDEN
    _HIDDEN = True


def solution(name: str) -> None:
    """Print one possible solution of an exercise (``"gram"``, ``"content_loss"``, ``"tv_loss"``, ...)."""
    load_all_solutions()
    if name not in SOLUTIONS:
        raise KeyError(f"no exercise called {name!r}; the exercises are: {', '.join(SOLUTIONS)}")
    if _HIDDEN:
        print("This is the student edition: solutions are with your instructor. The check tells you what is wrong.")
        return
    print(SOLUTIONS[name].strip("\n"))
