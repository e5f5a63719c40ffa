"""stlib.engine.optim: L-BFGS and Adam give the same iterates as torch.optim's, without importing torch._dynamo."""

import subprocess
import sys

import pytest
import torch

from stlib.engine.optim import (LBFGS, LBFGS_HISTORY_BYTES, LBFGS_HISTORY_MAX, LBFGS_HISTORY_MIN, Adam,
                                SafeguardedLBFGS, lbfgs_history, make_optimizer)


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


@pytest.mark.parametrize("history", [1, 3, 10, 25])
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


# --- SafeguardedLBFGS: the variant stylize uses -------------------------------------------------------------


def _rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def _run_flat(make_opt, loss_fn, x0, evaluations):
    """(final x, every evaluated loss, the optimiser) after ``evaluations`` closure calls from ``x0`` (float64)."""
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = make_opt(x)
    losses = []

    def closure():
        opt.zero_grad()
        loss = loss_fn(x)
        loss.backward()
        losses.append(float(loss.detach()))
        return loss

    while len(losses) < evaluations:
        opt.step(closure)
    return x.detach(), losses, opt


def _rises(losses, factor=2.0):
    """How many evaluations exceed ``factor`` times the best loss before them."""
    best, count = float("inf"), 0
    for value in losses:
        count += value > factor * best
        best = min(best, value)
    return count


def test_safeguarded_lbfgs_finds_a_quadratics_known_minimum():
    # f(x) = 1/2 (x - c)^T A (x - c) + 3 with A SPD and condition number 100: the minimum is x = c, f = 3.
    gen = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(12, 12, generator=gen, dtype=torch.float64))
    a = q @ torch.diag(torch.logspace(0, 2, 12, dtype=torch.float64)) @ q.T
    c = torch.randn(12, generator=gen, dtype=torch.float64)

    def loss_fn(x):
        r = x - c
        return 0.5 * r @ a @ r + 3.0

    x, losses, opt = _run_flat(lambda x: SafeguardedLBFGS(x), loss_fn, [0.0] * 12, 60)
    torch.testing.assert_close(x, c, rtol=0, atol=1e-6)
    assert losses[-1] == pytest.approx(3.0, abs=1e-10)
    assert _rises(losses) == 0


def test_safeguarded_lbfgs_rejects_the_overshoot_that_plain_lbfgs_keeps():
    """Rosenbrock from (-1.2, 1): the plain step overshoots and the plain run keeps climbing back; the
    safeguarded run's accepted losses never rise, and both reach the minimum (1, 1)."""
    _, plain, _ = _run_flat(lambda x: LBFGS(x), _rosenbrock, [-1.2, 1.0], 100)
    x, safe, opt = _run_flat(lambda x: SafeguardedLBFGS(x), _rosenbrock, [-1.2, 1.0], 100)
    # plain L-BFGS keeps the points it lands on: many evaluations more than 2x above its best so far
    assert _rises(plain) >= 10
    torch.testing.assert_close(x, torch.tensor([1.0, 1.0], dtype=torch.float64), rtol=0, atol=1e-6)
    assert opt.rejections > 0
    assert opt.best_loss == min(safe)  # the accepted point is the best point evaluated
    assert _rises(safe) < _rises(plain) / 2


def test_safeguarded_accepted_losses_never_rise():
    """Record which evaluations were accepted: their losses are non-increasing, and every rejected one was
    higher than the accepted loss before it (clamping between steps, as stylize does)."""
    loss_fn, _ = _problem(4, dtype=torch.float64)
    x = torch.zeros(1, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    opt = SafeguardedLBFGS(x, lr=4.0)  # a too-long step: rejections are certain
    accepted = []

    def closure():
        opt.zero_grad()
        loss = loss_fn(x)
        loss.backward()
        return loss

    for _ in range(40):
        loss = float(opt.step(closure).detach())
        accepted.append((loss, opt.accepted))
        with torch.no_grad():
            x.clamp_(0, 1)
    kept = [v for v, ok in accepted if ok]
    assert any(not ok for _, ok in accepted)
    assert kept == sorted(kept, reverse=True)
    last_kept = float("inf")
    for v, ok in accepted:
        if ok:
            last_kept = v
        else:
            assert v > last_kept * (1 - 1e-12)
    assert kept[-1] < 1e-3 * kept[0]


def test_safeguarded_lbfgs_reaches_torch_strong_wolfe_minimum():
    """On the smooth test problem, in the same number of evaluations, the safeguarded L-BFGS gets as close
    to the minimiser as torch.optim.LBFGS(line_search_fn="strong_wolfe") (both far below the start)."""
    loss_fn, _ = _problem(5, dtype=torch.float64)
    start = [[[[0.0] * 5] * 6] * 3]
    _, ours, _ = _run_flat(lambda x: SafeguardedLBFGS(x), loss_fn, start, 40)
    _, ref, _ = _run_flat(lambda x: torch.optim.LBFGS([x], max_iter=5, line_search_fn="strong_wolfe",
                                                      tolerance_grad=0, tolerance_change=0), loss_fn, start, 40)
    assert min(ref) < 1e-8 * ref[0]
    assert min(ours) <= max(10 * min(ref), 1e-12 * ref[0])


def test_floor_caps_a_step_that_promises_a_loss_below_the_floor():
    """Pseudo-Huber sqrt(1 + x^2) - 1 >= 0 from x = 10 (8 dims): far out the function is almost flat, so the
    secant curvature is ~1000x too small and the full L-BFGS step lands near x = -900 (a loss ~100x higher).
    The safeguard without a floor evaluates (and rejects) that overshoot; with floor=0 the step is capped so
    that the model promises at most half the way to 0, and no evaluation exceeds twice the best before it."""

    def huber(x):
        return (1 + x * x).sqrt().sum() - x.numel()

    start = [10.0] * 8
    _, plain, _ = _run_flat(lambda x: LBFGS(x), huber, start, 30)
    _, unfloored, _ = _run_flat(lambda x: SafeguardedLBFGS(x), huber, start, 30)
    x, floored, opt = _run_flat(lambda x: SafeguardedLBFGS(x, floor=0.0), huber, start, 30)
    assert max(plain) > 50 * plain[0] and _rises(unfloored) >= 1
    assert _rises(floored) == 0
    assert floored[-1] < 1e-8 and float(x.abs().max()) < 1e-3


# --- noise: bf16 evaluations round the loss by ~1e-3 of its value (issue 18) ----------------------------------


def _wide_quadratic(offset_rel: float):
    """f = sum s_i (x_i - c_i)^2 over 10,000 coordinates (f(0) ~ 3000, every |grad_i| <= ~6, so the first
    steepest-descent step, of length 1/|grad|_1, promises a decrease of ~3e-4 f), evaluated with a rounding error
    of +``offset_rel`` * f at every point but the start: what a trial inside bf16's noise looks like."""
    gen = torch.Generator().manual_seed(0)
    c = torch.rand(10_000, generator=gen, dtype=torch.float64)
    s = torch.logspace(-1, 0.5, 10_000, dtype=torch.float64)

    def loss_fn(x):
        f = (s * (x - c) ** 2).sum()
        moved = bool((x.detach() != 0).any())
        return f + (offset_rel * f.detach() if moved else 0.0)

    return loss_fn


def test_a_trial_within_the_noise_is_accepted_and_the_run_moves():
    """With the noise of its evaluations known, the first step is lengthened until it promises more than the
    noise, and a trial within the noise is no evidence of a rise: no rejection, and the minimum is reached."""
    loss_fn = _wide_quadratic(1e-3)
    x, losses, opt = _run_flat(lambda x: SafeguardedLBFGS(x, floor=0.0, noise=1e-3), loss_fn, [0.0] * 10_000, 40)
    assert opt.rejections == 0
    assert min(losses) < 1e-6 * losses[0]


def test_without_the_noise_the_first_trials_are_rejected_and_recovery_gets_it_moving():
    """noise=0 (fp32's view) on the same evaluations: the first tiny step lands above the start, every shorter
    one too (the old stall); after RECOVER_AFTER rejections the optimiser restarts with longer steps and moves."""
    loss_fn = _wide_quadratic(1e-3)
    x, losses, opt = _run_flat(lambda x: SafeguardedLBFGS(x, floor=0.0), loss_fn, [0.0] * 10_000, 60)
    assert losses[1] > losses[0] and opt.recoveries >= 1 and not opt.stalled
    assert min(losses) < 1e-6 * losses[0]


def test_an_optimiser_that_cannot_move_says_it_stalled():
    """A closure whose gradient promises a descent that never comes (1 at the start, 6 anywhere else): every
    trial is rejected, recoveries fail, and ``stalled`` turns True after RECOVER_AFTER * (MAX_RECOVERIES + 1)
    rejections in a row, not before."""
    from stlib.engine.optim import MAX_RECOVERIES, RECOVER_AFTER

    def loss_fn(x):
        moved = float((x.detach() != 0).any())
        return 1.0 + 5.0 * moved - (x - x.detach()).sum()  # value 1 or 6, gradient -1 everywhere

    limit = RECOVER_AFTER * (MAX_RECOVERIES + 1)
    x, losses, opt = _run_flat(lambda x: SafeguardedLBFGS(x, floor=0.0, noise=1e-3), loss_fn, [0.0] * 4, limit)
    assert losses[1:] == [6.0] * (limit - 1) and opt.rejections == limit - 1
    assert not opt.stalled and opt.recoveries == MAX_RECOVERIES
    _, _, opt = _run_flat(lambda x: SafeguardedLBFGS(x, floor=0.0, noise=1e-3), loss_fn, [0.0] * 4, limit + 1)
    assert opt.stalled


def test_lbfgs_history_is_what_fits_the_budget():
    """As many pairs (8 bytes per value: float32 s and y) as fit in LBFGS_HISTORY_BYTES, clipped to [MIN, MAX]."""
    assert (LBFGS_HISTORY_MIN, LBFGS_HISTORY_MAX, LBFGS_HISTORY_BYTES) == (10, 25, 64 * 2**20)
    by_hand = {3 * 64 * 64: 25, 3 * 256 * 256: 25, 3 * 384 * 384: 18, 3 * 448 * 448: 13, 3 * 512 * 512: 10,
               3 * 2048 * 2048: 10, 2**23 // 20: 20, 2**23 // 20 + 1: 19}  # 2**23 / 20 values: 20 pairs exactly
    assert {n: lbfgs_history(n) for n in by_hand} == by_hand
    sizes = [3 * s * s for s in range(32, 1100, 7)]
    pairs = [lbfgs_history(n) for n in sizes]
    assert pairs == sorted(pairs, reverse=True)  # a larger image never keeps more pairs
    for n, m in zip(sizes, pairs):
        assert m == LBFGS_HISTORY_MIN or m * 8 * n <= LBFGS_HISTORY_BYTES  # within the budget unless at the floor
        assert m == LBFGS_HISTORY_MAX or (m + 1) * 8 * n > LBFGS_HISTORY_BYTES  # and no pair left out that fits
    with pytest.raises(ValueError, match="numel"):
        lbfgs_history(0)


@pytest.mark.parametrize("name", ["lbfgs", "lbfgs-plain"])
@pytest.mark.parametrize("side", [64, 512])
def test_make_optimizer_keeps_the_history_the_image_size_allows(name, side):
    x = torch.zeros(1, 3, side, side, requires_grad=True)
    opt = make_optimizer(name, x, None, "bf16")
    assert opt.history_size == (25 if side == 64 else 10)
    assert isinstance(opt, SafeguardedLBFGS) == (name == "lbfgs")
