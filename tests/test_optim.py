"""stlib.engine.optim: L-BFGS and Adam give the same iterates as torch.optim's, without importing torch._dynamo."""

import subprocess
import sys

import pytest
import torch

from stlib.engine.optim import LBFGS, Adam


def _problem(seed: int = 0, dtype=torch.float32):
    """A smooth non-quadratic objective of a (1, 3, 6, 5) 'image' with a known minimum region."""
    gen = torch.Generator().manual_seed(seed)
    a = (torch.randn(90, 90, generator=gen) / 10).to(dtype)
    target = torch.rand(1, 3, 6, 5, generator=gen).to(dtype)

    def loss_fn(x):
        r = (x - target).reshape(-1)
        return (a @ r).pow(2).sum() + 0.1 * r.pow(4).sum() + r.pow(2).sum()

    return loss_fn, target


def _run(make_opt, loss_fn, steps, clamp=False, dtype=torch.float32):
    x = torch.zeros(1, 3, 6, 5, dtype=dtype, requires_grad=True)
    opt = make_opt(x)
    losses = []

    def closure():
        opt.zero_grad()
        loss = loss_fn(x)
        loss.backward()
        return loss

    for _ in range(steps):
        losses.append(float(opt.step(closure).detach()))
        if clamp:
            with torch.no_grad():
                x.clamp_(0, 1)
    return x.detach(), losses


def _torch_lbfgs(history):
    return lambda x: torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=history, tolerance_grad=0.0,
                                       tolerance_change=0.0)


@pytest.mark.parametrize("history", [1, 3, 10])
@pytest.mark.parametrize("clamp", [False, True])
def test_lbfgs_matches_torch_one_closure_per_step(history, clamp):
    """In float64 (no rounding floor), 40 steps: the same iterates as torch.optim.LBFGS down to ~1e-13 losses,
    with the history full and recycled (history 1 and 3), pairs skipped near convergence and clamping."""
    loss_fn, _ = _problem(dtype=torch.float64)
    ours, our_losses = _run(lambda x: LBFGS(x, lr=1.0, history_size=history), loss_fn, 40, clamp, torch.float64)
    ref, ref_losses = _run(_torch_lbfgs(history), loss_fn, 40, clamp, torch.float64)
    torch.testing.assert_close(ours, ref, rtol=1e-8, atol=1e-10)
    assert our_losses == pytest.approx(ref_losses, rel=1e-7, abs=1e-18)
    assert our_losses[-1] < 1e-6 * our_losses[0]  # and it does optimise


@pytest.mark.parametrize("history", [3, 10])
def test_lbfgs_float32_tracks_torch_until_the_rounding_floor(history):
    """In float32 both implementations round differently (dot products vs vector updates); they agree while
    the loss is well above float32's resolution."""
    loss_fn, _ = _problem()
    _, our_losses = _run(lambda x: LBFGS(x, lr=1.0, history_size=history), loss_fn, 25)
    _, ref_losses = _run(_torch_lbfgs(history), loss_fn, 25)
    early = [i for i, v in enumerate(ref_losses) if v > 1e-6 * ref_losses[0]]
    assert len(early) >= 5
    assert [our_losses[i] for i in early] == pytest.approx([ref_losses[i] for i in early], rel=1e-4)
    assert our_losses[-1] < 1e-3 * our_losses[0]


def test_lbfgs_keeps_at_most_history_pairs():
    loss_fn, _ = _problem(1)
    x = torch.zeros(1, 3, 6, 5, requires_grad=True)
    opt = LBFGS(x, history_size=4)

    def closure():
        opt.zero_grad()
        loss = loss_fn(x)
        loss.backward()
        return loss

    for _ in range(12):
        opt.step(closure)
    assert opt.pairs == 4


def test_lbfgs_first_step_length_by_hand():
    # f(x) = sum(x^2) at x = (1, 2): grad (2, 4), |grad|_1 = 6, so x moves by -grad / 6
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    opt = LBFGS(x)

    def closure():
        opt.zero_grad()
        loss = x.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    torch.testing.assert_close(x.detach(), torch.tensor([1 - 2 / 6, 2 - 4 / 6]))


def test_adam_matches_torch():
    loss_fn, _ = _problem(2)
    ours, _ = _run(lambda x: Adam(x, lr=0.05), loss_fn, 30)
    ref, _ = _run(lambda x: torch.optim.Adam([x], lr=0.05), loss_fn, 30)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)


def test_closure_without_backward_is_a_clear_error():
    x = torch.zeros(3, requires_grad=True)
    for opt in (LBFGS(x), Adam(x)):
        with pytest.raises(RuntimeError, match="backward"):
            opt.step(lambda: x.sum())
    with pytest.raises(ValueError, match="requires_grad"):
        LBFGS(torch.zeros(3))


def test_stylize_does_not_import_torch_dynamo():
    code = ("import sys, torch, stlib; "
            "stlib.stylize(torch.rand(1, 3, 40, 40), torch.rand(1, 3, 40, 40), size=40, steps=2, progress=False, "
            "model=stlib.model.VGG19Features().eval().requires_grad_(False)); "
            "stlib.stylize(torch.rand(1, 3, 40, 40), torch.rand(1, 3, 40, 40), size=40, steps=2, progress=False, "
            "optimizer='adam', model=stlib.model.VGG19Features().eval().requires_grad_(False)); "
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
