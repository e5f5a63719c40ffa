"""stylize end to end on tiny images (64 px, a few steps) with the session's seeded VGG-19."""

import math
import threading

import pytest
import torch

import stlib
import stlib.transfer
from stlib.color import rgb_to_yiq
from stlib.engine import precision as P
from stlib.engine import objective as objective_module
from stlib.engine import steps as S
from stlib.transfer import StepInfo, compute_targets, objective, stylize


@pytest.fixture
def run(vgg, tiny_pair):
    """stylize(content, style) at 64 px with the shared model; keyword arguments override the defaults."""
    content, style = tiny_pair

    def _run(**kwargs):
        kwargs.setdefault("steps", 4)
        kwargs.setdefault("precision", "fp32")  # exact comparisons below; bf16 runs: tests/test_precision.py
        kwargs.setdefault("size", 64)
        kwargs.setdefault("progress", False)
        kwargs.setdefault("content", content)
        kwargs.setdefault("style", style)
        return stylize(kwargs.pop("content"), kwargs.pop("style"), model=vgg, **kwargs)

    return _run


def collect(every: int = 1):
    """A callback that keeps every image it is shown, and the list it fills."""
    seen = []

    def callback(info: StepInfo):
        assert isinstance(info, StepInfo) and info.image.shape[0] == 1
        seen.append(info.image.clone())

    return callback, seen


def equals_one_of(image, candidates) -> bool:
    return any(torch.equal(image, c) for c in candidates)


def independent_objective(vgg, image, content, style, settings) -> float:
    """The objective recomputed from scratch for ``image`` with the settings a run reports."""
    style = stlib.resize(style, max(content.shape[-2:]))  # stylize scales the style to the output's long edge
    with torch.no_grad():
        targets = compute_targets(vgg, content, [style], settings["content_layers"], settings["style_layers"], [1.0])
        terms = objective(vgg, image, targets, settings["content_layers"], settings["style_layers"],
                          settings["content_weight"], settings["style_weight"], settings["tv_weight"])
    return float(terms["total"])


def test_short_run_lowers_the_objective(run, vgg, tiny_pair):
    content, style = tiny_pair
    result = run(steps=8)
    assert result.steps == 8 and len(result.history) == 8 and result.stopped is None
    assert result.weights_source == "random" and result.settings["preset"] == "offline"
    start = independent_objective(vgg, content, content, style, result.settings)
    end = independent_objective(vgg, result.image, content, style, result.settings)
    assert start == pytest.approx(result.history[0]["total"], rel=1e-4)
    assert end < 0.8 * start
    assert end == pytest.approx(min(result.losses()), rel=1e-3)  # the best image seen is the one returned


def test_same_seed_same_image_different_seed_different(run):
    a = run(init="noise", seed=1, steps=3)
    b = run(init="noise", seed=1, steps=3)
    c = run(init="noise", seed=2, steps=3)
    assert torch.equal(a.image, b.image)
    assert not torch.equal(a.image, c.image)


def test_gradients_reach_only_the_image(run, vgg):
    run(steps=2)
    assert all(p.grad is None and not p.requires_grad for p in vgg.parameters())


def test_content_only_and_style_only(run):
    content_only = run(style_weight=0, tv_weight=0, init="noise", steps=5)
    assert all(h["style"] == 0 for h in content_only.history)
    assert not any(k.startswith("style:") for k in content_only.history[0]["layers"])
    assert content_only.losses("content")[-1] < content_only.losses("content")[0]
    style_only = run(content_weight=0, tv_weight=0, steps=5)
    assert all(h["content"] == 0 for h in style_only.history)
    assert style_only.losses("style")[-1] < style_only.losses("style")[0]


def test_any_layer_dict_or_list(run):
    result = run(style_layers={"conv2_2": 1.0, "pool3": 2.0}, content_layers={"conv1_2": 1.0}, steps=2)
    assert set(result.history[0]["layers"]) == {"style:conv2_2", "style:pool3", "content:conv1_2"}
    listed = run(style_layers=["relu1_2"], content_layers=["relu2_2"], steps=2)
    assert set(listed.history[0]["layers"]) == {"style:relu1_2", "content:relu2_2"}
    assert listed.settings["style_layers"] == {"relu1_2": 1.0}
    with pytest.raises(KeyError, match="relu4_2"):
        run(style_layers=["relu9_1"], steps=1)


def test_pixels_stay_in_unit_range(run):
    callback, seen = collect()
    result = run(optimizer="adam", lr=0.5, init="noise", steps=4, callback=callback, every=1)
    assert len(seen) == 4
    for image in seen + [result.image]:
        assert image.min() >= 0 and image.max() <= 1


def test_all_zero_weights_is_an_error(run):
    with pytest.raises(ValueError, match="nothing to optimise"):
        run(content_weight=0, style_weight=0, tv_weight=0)
    with pytest.raises(ValueError, match="style_weight"):
        run(style_weight=-1.0)


def test_callback_returning_false_stops(run):
    def callback(info):
        return info.step < 3

    result = run(steps=10, callback=callback, every=1)
    assert result.steps == 3 and len(result.history) == 3
    assert "callback" in result.stopped


def test_threading_event_stops(run):
    event = threading.Event()

    def callback(info):
        if info.step == 2:
            event.set()

    result = run(steps=10, callback=callback, every=1, stop=event)
    assert result.steps == 2
    assert result.stopped.startswith("stopped at step 2")


def _fail_at(monkeypatch, k, make):
    """Make the k-th call of stylize's tv_loss return/raise what ``make`` gives."""
    real = objective_module.tv_loss
    calls = {"n": 0}

    def tv(image):
        calls["n"] += 1
        return make(real(image)) if calls["n"] == k else real(image)

    monkeypatch.setattr(objective_module, "tv_loss", tv)


def test_nan_loss_stops_and_returns_an_earlier_finite_image(run, monkeypatch, tiny_pair):
    _fail_at(monkeypatch, 4, lambda value: value * float("nan"))
    callback, seen = collect()
    with pytest.warns(RuntimeWarning, match="infinite or NaN"):
        result = run(steps=10, callback=callback, every=1)
    assert "infinite or NaN at step 4" in result.stopped
    assert result.steps == 3 and len(seen) == 3
    assert torch.isfinite(result.image).all()
    assert equals_one_of(result.image, [tiny_pair[0]] + seen)


def test_inf_loss_too(run, monkeypatch):
    _fail_at(monkeypatch, 2, lambda value: value + float("inf"))
    with pytest.warns(RuntimeWarning):
        result = run(steps=5)
    assert "infinite" in result.stopped and torch.isfinite(result.image).all()


def test_ctrl_c_in_callback_returns_best_image(run, tiny_pair, capsys):
    seen = []

    def callback(info):
        seen.append(info.image.clone())
        if info.step == 3:
            raise KeyboardInterrupt

    result = run(steps=10, callback=callback, every=1)
    assert result.stopped.startswith("interrupted")
    assert "interrupted" in capsys.readouterr().out
    assert result.steps == 3
    assert equals_one_of(result.image, [tiny_pair[0]] + seen)


def test_ctrl_c_in_closure_returns_best_image(run, monkeypatch, tiny_pair):
    def interrupt(_):
        raise KeyboardInterrupt

    _fail_at(monkeypatch, 3, interrupt)
    callback, seen = collect()
    result = run(steps=10, callback=callback, every=1)
    assert result.stopped.startswith("interrupted") and result.steps == 2
    assert equals_one_of(result.image, [tiny_pair[0]] + seen)


def test_content_and_style_of_different_sizes(run):
    style = torch.rand(1, 3, 40, 90, generator=torch.Generator().manual_seed(3))
    result = run(style=style, steps=2)
    assert result.image.shape == (1, 3, 48, 64)


def test_lbfgs_is_not_stalled_by_tiny_loss_scales(run):
    # torch's L-BFGS has absolute thresholds (tolerances; curvature pairs with y.s <= 1e-10 are dropped), so an
    # objective of ~1e-17 would stop or crawl. The run must take every step and follow the same relative
    # course as the identical problem scaled up by 1e18.
    tiny = run(content_weight=1e-12, style_weight=0, tv_weight=0, init="noise", steps=6)
    big = run(content_weight=1e6, style_weight=0, tv_weight=0, init="noise", steps=6)
    assert tiny.steps == 6 and len(tiny.history) == 6 and tiny.stopped is None
    t, b = tiny.losses(), big.losses()
    assert t[0] < 1e-11 and b[0] > 1
    assert b[-1] < 0.8 * b[0]
    for step, (lt, lb) in enumerate(zip(t, b)):
        assert lt / t[0] == pytest.approx(lb / b[0], rel=2e-2), f"step {step + 1}"


def test_multi_scale_returns_final_size(run):
    result = run(scales=2, steps=2)
    assert result.image.shape == (1, 3, 48, 64)
    assert [h["size"] for h in result.history] == [32, 32, 64, 64]
    assert result.settings["sizes"] == [32, 64]


def test_preserve_color_luminance_keeps_content_color(run, tiny_pair):
    content = tiny_pair[0]
    result = run(preserve_color="luminance", steps=3)
    inside = ((result.image > 0) & (result.image < 1)).all(dim=1)  # pixels that clamping did not touch
    assert inside.float().mean() > 0.5
    got, want = rgb_to_yiq(result.image), rgb_to_yiq(content)
    for channel in (1, 2):  # I and Q
        torch.testing.assert_close(got[0, channel][inside[0]], want[0, channel][inside[0]], atol=1e-5, rtol=0)
    assert not torch.allclose(got[0, 0], want[0, 0], atol=1e-3)  # the brightness did change


def test_preserve_color_histogram_runs(run):
    result = run(preserve_color="histogram", steps=2)
    assert result.image.shape == (1, 3, 48, 64) and torch.isfinite(result.image).all()
    with pytest.raises(ValueError, match="preserve_color"):
        run(preserve_color="sepia")


def test_style_list_and_blend(run, tiny_pair):
    style_a = tiny_pair[1]
    style_b = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(5))
    alone = run(style=style_a, steps=3)
    blended_all_a = run(style=[style_a, style_b], style_blend=[1, 0], steps=3)
    assert torch.equal(alone.image, blended_all_a.image)
    half = run(style=[style_a, style_b], steps=3)
    assert half.settings["style_blend"] == [0.5, 0.5]
    assert not torch.equal(alone.image, half.image)
    with pytest.raises(ValueError, match="style_blend"):
        run(style=[style_a, style_b], style_blend=[1.0])


def test_history_and_result_api(run, tmp_path):
    result = run(steps=3)
    assert set(result.history[0]) == {"step", "content", "style", "tv", "total", "layers", "time", "size",
                                      "precision", "accepted", "best"}
    h = result.history[1]
    assert h["step"] == 2 and h["size"] == 64 and h["precision"] == "fp32"
    assert h["total"] == pytest.approx(h["content"] + h["style"] + h["tv"], rel=1e-5)
    assert all(math.isfinite(v) for v in h["layers"].values())
    assert result.to_pil().size == (64, 48)
    assert result.seconds_per_step > 0 and result.elapsed >= result.setup_time
    saved = result.save(tmp_path / "out.png")
    assert stlib.load_image(saved).shape == (1, 3, 48, 64)


# ------------------------------------------------------------------------------------ CUDA graph steps
def test_cuda_graph_auto_rule(vgg):
    use, cuda = S.use_cuda_graph, torch.device("cuda")
    small, large = 512 * 512, 2048 * 2048
    assert use(None, cuda, "bf16", vgg, small) and use(None, cuda, "fp32", vgg, small)
    assert not use(None, torch.device("cpu"), "bf16", vgg, small)  # never on a CPU, even when asked
    assert not use(True, torch.device("cpu"), "bf16", vgg, small)
    assert not use(None, cuda, "fp16", vgg, small)  # loss-scale retries change the work per step
    assert not use(None, cuda, "bf16", vgg, large) and use(True, cuda, "bf16", vgg, large)
    assert not use(False, cuda, "bf16", vgg, small)
    handle = vgg.layers.conv2_1.register_forward_pre_hook(lambda *a: None)  # e.g. the studio's abort hooks
    try:
        assert not use(None, cuda, "bf16", vgg, small) and not use(True, cuda, "bf16", vgg, small)
    finally:
        handle.remove()
    assert use(None, cuda, "bf16", vgg, small)


def test_values_reads_every_term_once():
    terms = {"content": torch.tensor(1.5), "style": torch.tensor(2.0), "tv": torch.tensor(0.25),
             "total": torch.tensor(3.75), "layers": {"content:relu4_2": torch.tensor(0.5),
                                                      "style:relu1_1": torch.tensor(7.0, dtype=torch.bfloat16)}}
    values = S.read_values(terms)
    assert values == {"content": 1.5, "style": 2.0, "tv": 0.25, "total": 3.75,
                      "layers": {"content:relu4_2": 0.5, "style:relu1_1": 7.0}}
    assert all(type(v) is float for v in values["layers"].values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cuda_graph_replay_matches_eager_step(tiny_pair, precision, monkeypatch):
    """A replayed graph gives the eager step's terms and gradient, also after the image changed in place."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    model = stlib.load_vgg19("random", device="cuda").to(memory_format=P.memory_format(precision, "cuda"))
    content, style = (stlib.resize(t, 96).cuda() for t in tiny_pair)
    layers = {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0}
    content_layers = {"relu2_2": 1.0}
    with P.autocast(precision, "cuda"):
        targets = compute_targets(model, content, [style], content_layers, layers, [1.0])
    x = content.clone().requires_grad_(True)

    def run(cache=True):
        with P.autocast(precision, "cuda", cache=cache):
            terms = objective(model, x.contiguous(memory_format=torch.channels_last), targets, content_layers,
                              layers, 1.0, 1e3, 1.0)
        terms["total"].backward()
        return S.detached(terms)

    graphed = S.GraphedStep(lambda: run(cache=False), x)
    tol = dict(rtol=2e-2, atol=1e-4) if precision == "bf16" else dict(rtol=1e-4, atol=1e-7)
    for change in range(3):
        if change:
            with torch.no_grad():
                x.add_(0.05 * torch.randn_like(x)).clamp_(0, 1)  # what the optimiser does between steps
        x.grad = None
        eager = S.read_values(run())
        eager_grad = x.grad.clone()
        replayed = S.read_values(graphed())
        for key in ("content", "style", "tv", "total"):
            assert math.isclose(eager[key], replayed[key], rel_tol=tol["rtol"]), (key, eager, replayed)
        torch.testing.assert_close(x.grad, eager_grad, **tol)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_stylize_uses_the_cuda_graph_and_tracks_the_eager_run(tiny_pair, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    model = stlib.load_vgg19("random", device="cuda")
    content, style = tiny_pair
    runs = {graph: stylize(content, style, model=model, size=96, steps=12, precision="fp32", progress=False,
                           cuda_graph=graph, scales=[0.5, 1.0]) for graph in (False, True)}
    assert runs[True].settings["cuda_graph"] and not runs[False].settings["cuda_graph"]
    eager, graphed = runs[False].losses(), runs[True].losses()
    assert len(eager) == len(graphed) == 24
    # L-BFGS amplifies rounding differences after a few steps; the first steps of each scale must agree
    for i in (0, 1, 2):
        assert math.isclose(eager[i], graphed[i], rel_tol=1e-4), (i, eager, graphed)
    assert min(graphed) < graphed[0] and runs[True].image.shape == runs[False].image.shape


# --- stop reasons and the best step (issue 10) ----------------------------------------------------------------


def _window(best_before, tail):
    """Losses of a scale: 30 steps falling to ``best_before``, then the 20-step window ``tail``."""
    return [10.0 - i * (10.0 - best_before) / 29 for i in range(30)] + list(tail)


def test_plateau_reason_by_hand():
    from stlib.engine.monitor import CONVERGENCE_MIN_STEPS, CONVERGENCE_WINDOW, plateau_reason

    assert CONVERGENCE_WINDOW == 20 and CONVERGENCE_MIN_STEPS < 50
    # still improving by more than rtol: go on
    assert plateau_reason(_window(1.0, [0.9 - 0.01 * i for i in range(20)]), 1e-6) is None
    # flat at the best: converged
    assert plateau_reason(_window(1.0, [1.0] * 20), 1e-6) == "converged"
    # rose 3x and stayed up: diverged
    assert plateau_reason(_window(1.0, [3.0 + 0.1 * i for i in range(20)]), 1e-6) == "diverged"
    # rose, then came back to the best: still moving, not "converged"
    assert plateau_reason(_window(1.0, [3.0] * 10 + [1.0] * 10), 1e-6) is None
    # too short to judge
    assert plateau_reason([1.0] * 20, 1e-6) is None
    # never fell below its start (every step within 1e-3 of it): stalled, never "converged" (issue 18)
    assert plateau_reason([10.0] + [10.0 + 0.001 * (i % 3) for i in range(59)], 1e-6) == "stalled"
    assert plateau_reason([10.0] + [9.995] * 59, 1e-6) == "stalled"  # 0.05 %: within the noise of bf16
    assert plateau_reason([10.0] + [9.9] * 59, 1e-6) == "converged"  # fell 1 %, then flat
    # bf16: losses 0.3 % above the best are within its noise (noise_tolerance("bf16") = 0.4 %): converged, not
    # "diverged" as they would be for fp32's 0.1 %
    from stlib.engine.monitor import noise_tolerance

    sitting = _window(1.0, [1.003] * 20)
    assert noise_tolerance("fp32") == 1e-3 and 1e-3 < noise_tolerance("bf16") < 1e-2
    assert plateau_reason(sitting, 1e-6) == "diverged"
    assert plateau_reason(sitting, 1e-6, noise_tolerance("bf16")) == "converged"


def test_a_run_that_rises_and_stays_up_says_diverged(run, monkeypatch):
    """An optimiser that climbs (Adam with a negative learning rate: gradient ascent) never returns below its
    first loss: the run stops as "diverged" (not "converged") after the window, returns the best image and
    marks its step in the history."""
    monkeypatch.setattr(stlib.transfer, "make_optimizer", lambda name, x, lr, *rest: stlib.engine.optim.Adam(x, lr=-0.05))
    result = run(optimizer="adam", steps=60)
    totals = result.losses()
    assert result.stop_reason == "diverged" and "diverged" in result.stopped
    assert result.steps == 41 and result.best_step == 1
    assert result.best_step == 1 + totals.index(min(totals))
    assert [h["step"] for h in result.history if h["best"]] == [result.best_step]


def test_returned_image_is_the_marked_best(run, vgg, tiny_pair):
    content, style = tiny_pair
    result = run(steps=12, optimizer="lbfgs-plain", lr=3.0)
    totals = result.losses()
    assert max(totals) > min(totals)
    best = result.history[result.best_step - 1]
    assert best["best"] and best["total"] == min(totals)
    end = independent_objective(vgg, result.image, content, style, result.settings)
    assert end == pytest.approx(best["total"], rel=1e-3)


def test_safeguarded_lbfgs_is_the_default_and_marks_rejections(run):
    result = run(steps=12, lr=3.0)  # a too-long step: the safeguard must reject some
    accepted = [h["total"] for h in result.history if h["accepted"]]
    rejected = [h for h in result.history if not h["accepted"]]
    assert rejected
    assert accepted == sorted(accepted, reverse=True)
    assert result.history[result.best_step - 1]["total"] == min(accepted)


def test_a_run_whose_optimiser_cannot_move_stops_as_stalled(run, monkeypatch):
    """An L-BFGS fed the negated gradient proposes only uphill steps: every trial is rejected, the recoveries
    fail, and the run stops as "stalled" (never "converged" at its start), returning the start image."""
    from stlib.engine.optim import MAX_RECOVERIES, RECOVER_AFTER, SafeguardedLBFGS

    class Uphill(SafeguardedLBFGS):
        def _evaluate(self, closure):
            loss, grad = super()._evaluate(closure)
            return loss, -grad

    monkeypatch.setattr(stlib.transfer, "make_optimizer", lambda name, x, lr, *rest: Uphill(x, floor=0.0, noise=2e-3))
    result = run(steps=60)
    assert result.stop_reason == "stalled" and result.stopped.startswith("stalled at step")
    assert 1 + RECOVER_AFTER * (MAX_RECOVERIES + 1) <= result.steps < 60  # (a clamped trial may not move at all)
    totals = result.losses()
    assert min(totals) >= totals[0] * (1 - 1e-3) and sum(not h["accepted"] for h in result.history) >= 18
