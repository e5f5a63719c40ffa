"""The practice and capstone checks, and the new sentences of the older ones: a right answer passes, every
likely wrong answer gets its own sentence (matched here by a phrase of it), nothing raises."""

import pytest
import torch

import stlib
from stlib import checks


def _verdict(check, fn, capsys, *args):
    result = check(fn, *args)
    printed = capsys.readouterr().out
    assert printed.split() == result.message.split()
    assert "Traceback" not in result.message
    return result


def _stub(*args):
    raise NotImplementedError


@pytest.mark.parametrize("name", ["check_total_loss", "check_start_image", "check_closure", "check_stroke_layer",
                                  "check_masked_gram"])
def test_stubs_are_todo(name, capsys):
    assert _verdict(getattr(checks, name), _stub, capsys).status == "todo"
    assert _verdict(getattr(checks, name), None, capsys).status == "todo"


def test_solutions_of_the_new_exercises_pass(capsys):
    solutions = checks.SOLUTIONS
    for key, check in [("total_loss", "check_total_loss"), ("start_image", "check_start_image"),
                       ("closure", "check_closure"), ("stroke_layer", "check_stroke_layer"),
                       ("masked_gram", "check_masked_gram")]:
        namespace = {"torch": torch, "stlib": stlib}
        exec(solutions[key], namespace)  # noqa: S102 - the solution text shown in the notebooks
        fn = next(v for k, v in namespace.items() if callable(v) and k not in ("torch", "stlib"))
        assert _verdict(getattr(checks, check), fn, capsys).ok, key


# ------------------------------------------------------------------------------------------------ old checks, new sentences
def test_gradient_step_wrong_answers(capsys):
    def clamped(image, loss_fn, lr):
        x = image.detach().clone().requires_grad_(True)
        loss_fn(x).backward()
        return (x - lr * x.grad).clamp(0, 1).detach()

    def no_requires_grad(image, loss_fn, lr):
        loss = loss_fn(image)
        loss.backward()
        return image - lr * image.grad

    def flips_flag(image, loss_fn, lr):
        x = image.requires_grad_(True)
        loss_fn(x).backward()
        return (x - lr * x.grad).detach()

    def non_leaf(image, loss_fn, lr):
        x = image.detach().clone().requires_grad_(True) * 1.0
        loss_fn(x).backward()
        return (x - lr * x.grad).detach()

    def adam(image, loss_fn, lr):
        x = image.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([x], lr=lr)
        loss_fn(x).backward()
        optimizer.step()
        return x.detach()

    def sign(image, loss_fn, lr):
        x = image.detach().clone().requires_grad_(True)
        loss_fn(x).backward()
        return (x - lr * x.grad.sign()).detach()

    def sgd(image, loss_fn, lr):  # torch's own plain step is right
        x = image.detach().clone().requires_grad_(True)
        optimizer = torch.optim.SGD([x], lr=lr)
        loss_fn(x).backward()
        optimizer.step()
        return x.detach()

    def backward_twice(image, loss_fn, lr):
        x = image.detach().clone().requires_grad_(True)
        loss_fn(x).backward()
        loss_fn(x).backward()
        return (x - lr * x.grad).detach()

    assert _verdict(checks.check_gradient_step, sgd, capsys).ok
    cases = [(clamped, "leave the clamp to the loop"), (no_requires_grad, "found nothing to differentiate"),
             (flips_flag, "switched on requires_grad"), (non_leaf, "usually x.grad"),
             (adam, "you used torch.optim.Adam"), (sign, "you stepped by the sign of the gradient"),
             (backward_twice, "Did backward() run twice?")]
    for fn, phrase in cases:
        result = _verdict(checks.check_gradient_step, fn, capsys)
        assert result.status == "wrong" and phrase in result.message, (fn.__name__, result.message)


def test_style_loss_features_vs_gram(capsys):
    def features_vs_gram(features, target_gram):
        return ((features - target_gram) ** 2).mean()

    def gram_of_gram(features, target_gram):
        return ((stlib.gram_matrix(features) - stlib.gram_matrix(target_gram)) ** 2).mean()

    for fn, phrase in [(features_vs_gram, "already a Gram matrix (1, C, C)"), (gram_of_gram, "already is one")]:
        result = _verdict(checks.check_style_layer_loss, fn, capsys)
        assert result.status == "wrong" and phrase in result.message, result.message


# ------------------------------------------------------------------------------------------------ total loss
@pytest.mark.parametrize("fn, phrase", [
    (lambda c, s, w, a, b: b * c + a * sum(w[n] * s[n] for n in w), "swapped"),
    (lambda c, s, w, a, b: a * c + b * sum(s.values()), "per-layer weights w_l are missing"),
    (lambda c, s, w, a, b: a * c + b * sum(w[n] * s[n] for n in w) / len(w), "averaged the layers"),
    (lambda c, s, w, a, b: a * c + sum(w[n] * s[n] for n in w), "beta is missing"),
    (lambda c, s, w, a, b: c + b * sum(w[n] * s[n] for n in w), "alpha is missing"),
    (lambda c, s, w, a, b: torch.tensor(float(a * c + b * sum(w[n] * s[n] for n in w))), "carries no gradient"),
    (lambda c, s, w, a, b: a * c + b * sum(s.values()) * sum(w.values()), "by its own weight"),
    (lambda c, s, w, a, b: a * c + b * sum(w[n] * s[n] for n in w) + 1, "expected"),
    (lambda c, s, w, a, b: a * c + b * sum(wl * e for wl, e in zip(w.values(), s.values())), "paired weights and losses by position"),
    (lambda c, s, w, a, b: b * sum(w[n] * s[n] for n in w), "content term is missing"),
    (lambda c, s, w, a, b: a * c + 0 * sum(s.values()), "style term is missing"),
    (lambda c, s, w, a, b: a * c.detach() + b * sum(w[n] * s[n] for n in w), "part of it carries no gradient"),
    (lambda c, s, w, a, b: a * c + b * sum(w[n] * s[n].item() for n in w), "part of it carries no gradient"),
])
def test_total_loss_wrong_answers(fn, phrase, vgg, capsys):
    result = _verdict(checks.check_total_loss, fn, capsys, vgg)
    assert result.status == "wrong" and phrase in result.message, result.message


def test_total_loss_is_checked_against_the_engines_objective(vgg, capsys):
    """The oracle is stylize's objective itself: the solution's sum of its per-layer terms gives its total."""
    from stlib.checks.nb03_losses import ALPHA, BETA, TotalLossProblem
    from stlib.engine.objective import objective

    problem = TotalLossProblem(vgg)
    with torch.no_grad():
        terms = objective(vgg, problem.image, problem.targets, {"relu4_2": 1.0}, problem.weights, ALPHA, BETA, 0.0)
    by_hand = ALPHA * problem.content + BETA * sum(problem.weights[n] * problem.style[n] for n in stlib.STYLE_LAYERS)
    assert float(terms["total"]) == pytest.approx(float(by_hand), rel=1e-5)
    shares = [problem.weights[n] * float(problem.style[n]) for n in stlib.STYLE_LAYERS]
    assert [s / sum(shares) for s in shares] == pytest.approx([0.1, 0.15, 0.2, 0.25, 0.3], rel=1e-4)
    values = [float(v) for v, _ in problem.mistakes()] + [float(terms["total"])]
    assert min(abs(a - b) / abs(b) for i, a in enumerate(values) for b in values[i + 1:]) > 1e-3  # all distinct


# ------------------------------------------------------------------------------------------------ start image
def _start(content=lambda p: p.clone(), noise=None, strict=True):
    def fn(photo, init, seed):
        if init == "content":
            return content(photo)
        if init == "noise":
            return (noise or (lambda p, s: torch.rand(p.shape, generator=torch.Generator().manual_seed(s))))(photo, seed)
        if strict:
            raise ValueError(init)
        return photo.clone()
    return fn


@pytest.mark.parametrize("fn, phrase", [
    (_start(content=lambda p: p), "not a copy"),
    (_start(content=lambda p: p.mul_(1.0) * 0 + torch.zeros_like(p)), "should be the photo"),
    (_start(noise=lambda p, s: torch.randn(p.shape, generator=torch.Generator().manual_seed(s))), "outside [0, 1]"),
    (_start(noise=lambda p, s: torch.rand(p.shape[1:], generator=torch.Generator().manual_seed(s))), "photo's shape"),
    (_start(noise=lambda p, s: torch.rand(p.shape)), "depend on the seed"),
    (_start(noise=lambda p, s: torch.manual_seed(s) and torch.rand(p.shape)), "global random generator"),
    (_start(noise=lambda p, s: torch.rand(p.shape, generator=torch.Generator().manual_seed(s + 1))), "not what stlib draws"),
    (_start(strict=False), "should raise ValueError"),
])
def test_start_image_wrong_answers(fn, phrase, capsys):
    result = _verdict(checks.check_start_image, fn, capsys)
    assert result.status == "wrong" and phrase in result.message, result.message


# ------------------------------------------------------------------------------------------------ closure
def _closure_variant(kind):
    def make_closure(x, optimizer, loss_fn):
        fixed = loss_fn(x) if kind == "outside" else None

        def closure():
            if kind == "clamp":  # the PyTorch tutorial's pattern
                with torch.no_grad():
                    x.clamp_(0, 1)
            if kind not in ("no_zero", "zero_after"):
                optimizer.zero_grad()
            if kind == "step":
                optimizer.step(closure)
            if kind == "outside":
                fixed.backward(retain_graph=True)
                return fixed
            loss = loss_fn(x.detach().clone().requires_grad_(True)) if kind == "copy" else loss_fn(x)
            if kind != "no_backward":
                loss.backward()
            if kind == "zero_after":
                optimizer.zero_grad()
            return None if kind == "none" else loss
        return closure() if kind == "called" else closure
    return make_closure


@pytest.mark.parametrize("kind, phrase", [
    ("no_zero", "zero_grad()"), ("no_backward", "call loss.backward()"), ("none", "returns None"),
    ("step", "calls optimizer.step"), ("called", "without calling it"), ("copy", "not a copy of x"),
    ("outside", "old loss"), ("clamp", "the closure clamps x"), ("zero_after", "comes first, before the loss"),
])
def test_closure_wrong_answers(kind, phrase, capsys):
    result = _verdict(checks.check_closure, _closure_variant(kind), capsys)
    assert result.status == "wrong" and phrase in result.message, result.message


# ------------------------------------------------------------------------------------------------ stroke layer
def _stroke(pick):
    def fn(pixels):
        return pick(pixels)
    return fn


@pytest.mark.parametrize("fn, phrase", [
    (_stroke(lambda p: next((n for n in stlib.STYLE_LAYERS if stlib.layers.receptive_field(n) >= p), "relu5_1")), "return None"),
    (_stroke(lambda p: next((n for n in reversed(stlib.STYLE_LAYERS) if stlib.layers.receptive_field(n) >= p), None)),
     "*first* (shallowest)"),
    (_stroke(lambda p: "relu1_1" if p <= 196 else None), "too small"),
    (_stroke(lambda p: 3), "layer's name"),
])
def test_stroke_layer_wrong_answers(fn, phrase, capsys):
    result = _verdict(checks.check_stroke_layer, fn, capsys)
    assert result.status == "wrong" and phrase in result.message, result.message


# ------------------------------------------------------------------------------------------------ masked gram
def _masked(divisor, one_side=False, use_mask=True):
    def fn(features, mask):
        b, c, h, w = features.shape
        m = mask if use_mask else torch.ones_like(mask)
        left = (features * m).reshape(b, c, -1)
        right = features.reshape(b, c, -1) if one_side else left
        return left @ right.transpose(1, 2) / divisor(c, h, w, mask)
    return fn


@pytest.mark.parametrize("fn, phrase", [
    (_masked(lambda c, h, w, m: c * h * w), "size of the whole image"),
    (_masked(lambda c, h, w, m: 1), "no normalisation"),
    (_masked(lambda c, h, w, m: c * m.sum()), "mask twice"),
    (_masked(lambda c, h, w, m: c * m.sum(), one_side=True), "only one side"),
    (_masked(lambda c, h, w, m: c * h * w, use_mask=False), "mask was not used"),
])
def test_masked_gram_wrong_answers(fn, phrase, capsys):
    result = _verdict(checks.check_masked_gram, fn, capsys)
    assert result.status == "wrong" and phrase in result.message, result.message
