"""The pieces of stlib.engine under stylize, each on its own: settings, scales, objective, steps, monitor."""

import math
import threading

import pytest
import torch

import stlib
from stlib.engine import settings as E
from stlib.engine.options import RunOptions
from stlib.engine.monitor import CONVERGENCE_MIN_STEPS, RunMonitor
from stlib.engine.objective import compute_targets, fast_style_layer_loss, objective
from stlib.engine.scales import initial_image, scale_plan, upsampled
from stlib.engine.steps import Closure, EagerStep, NonFiniteLoss, read_values
from stlib.presets import OFFLINE
from stlib.result import StopReason

# ------------------------------------------------------------------------------------------ settings
OPTIONS = dict(content_weight=None, style_weight=None, tv_weight=None, content_layers=None, style_layers=None,
               optimizer="lbfgs", lr=None, init="content", seed=0, size=None, scales=None, steps=10,
               precision="fp32", cuda_graph=None, preserve_color=None, style_blend=None, gram_norm=True, rtol=1e-6,
               every=10)


def settings(vgg, n_styles=1, **changes):
    return E.resolve_settings(vgg, torch.device("cpu"), n_styles, RunOptions(**{**OPTIONS, **changes}))


def test_settings_fill_in_the_preset_and_the_default_size(vgg):
    run = settings(vgg)
    assert (run.content_weight, run.style_weight, run.tv_weight) == (
        OFFLINE.content_weight, OFFLINE.style_weight, OFFLINE.tv_weight) and run.preset == "offline"
    assert run.style_layers == OFFLINE.style_layers and run.content_layers == OFFLINE.content_layers
    assert run.plan == [(256, 10)] and run.total_steps == 10 and run.blend == [1.0]
    assert E.default_size("cpu") == 256 and E.default_size("cuda") == 512


def test_settings_zero_weight_switches_a_term_off_and_layer_forms(vgg):
    run = settings(vgg, style_weight=0, content_layers=["relu2_2", "relu3_1"], tv_weight=0)
    assert run.style_layers == {} and run.content_layers == {"relu2_2": 1.0, "relu3_1": 1.0}
    assert E.layer_weights("relu1_1", {}, "x") == {"relu1_1": 1.0}
    assert E.layer_weights({"relu1_1": 0.0, "pool2": 2}, {}, "x") == {"pool2": 2.0}
    assert settings(vgg, n_styles=3, style_blend=[2, 1, 1]).blend == [0.5, 0.25, 0.25]


@pytest.mark.parametrize("change, message", [
    ({"optimizer": "sgd"}, "optimizer"), ({"preserve_color": "sepia"}, "preserve_color"), ({"init": "photo"}, "init"),
    ({"every": 0}, "every"), ({"style_weight": -1.0}, "style_weight"), ({"tv_weight": math.nan}, "tv_weight"),
    ({"style_layers": {"relu1_1": -2.0}}, "relu1_1"), ({"style_blend": [1.0, 2.0]}, "style_blend"),
    ({"content_weight": 0, "style_weight": 0, "tv_weight": 0}, "nothing to optimise"),
    ({"scales": "many"}, "scales"), ({"steps": [1, 2]}, "steps"), ({"precision": "fp64"}, "precision"),
])
def test_settings_reject_bad_values_with_the_argument_named(vgg, change, message):
    with pytest.raises(ValueError, match=message):
        settings(vgg, **change)
    with pytest.raises(KeyError, match="relu9_1"):
        settings(vgg, style_layers=["relu9_1"])


def test_run_images_apply_the_color_option(tiny_pair):
    content, style = tiny_pair
    plain = E.load_run_images(content, [style, style], None)
    assert plain.work_content is plain.content and len(plain.styles) == 2
    gray = E.load_run_images(content, style, "luminance")
    assert torch.allclose(gray.work_content[:, 0], gray.work_content[:, 1]) and not torch.equal(gray.content, gray.work_content)
    assert E.count_styles([style, style]) == 2 and E.count_styles(style) == 1


# ------------------------------------------------------------------------------------------- scales
def test_scale_plan_by_hand():
    assert scale_plan(256, None, 30) == [(256, 30)]
    assert scale_plan(512, 3, 10) == [(128, 10), (256, 10), (512, 10)]
    assert scale_plan(512, [0.5, 1.0], [5, 7]) == [(256, 5), (512, 7)]
    assert scale_plan(512, "auto", 100) == [(128, 34), (256, 33), (512, 33)]
    assert scale_plan(384, "auto", 100) == [(384, 100)]
    assert scale_plan(40, 3, 1)[0] == (32, 1)  # never below 32 px


def test_initial_image_and_upsampling(tiny_pair):
    content, style = tiny_pair
    assert torch.equal(initial_image("content", content, style, 0), content)
    noise = initial_image("noise", content, style, 7)
    assert torch.equal(noise, initial_image("noise", content, style, 7)) and noise.shape == content.shape
    assert initial_image("style", content, style, 0).shape == content.shape
    assert initial_image(style[0], content, style, 0).shape == content.shape  # a 3-dim warm start
    assert upsampled(torch.rand(1, 3, 24, 32), content).shape == content.shape


def test_palette_start_is_the_photo_in_the_paintings_colours(tiny_pair):
    """init="palette": the painting's RGB mean and covariance (by hand: torch.cov), and one affine map of every
    pixel of the photo (a least-squares fit leaves nothing over), so no edge of the photo is lost."""
    content, style = tiny_pair
    # Spreads for which the recolouring needs no clamp, and a photo whose colours are not nearly collinear (match_color
    # adds 1e-5 to each covariance's diagonal, which would show next to a tiny eigenvalue).
    noise = torch.rand(content.shape, generator=torch.Generator().manual_seed(1))
    photo, painting = 0.3 + 0.2 * content + 0.2 * noise, 0.35 + 0.3 * style
    start = initial_image("palette", photo, painting, 0)
    assert start.shape == photo.shape and 0 < start.min() and start.max() < 1
    got, want = start[0].reshape(3, -1).double(), painting[0].reshape(3, -1).double()
    torch.testing.assert_close(got.mean(dim=1), want.mean(dim=1), rtol=0, atol=1e-6)
    torch.testing.assert_close(torch.cov(got), torch.cov(want), rtol=0, atol=1e-5)
    design = torch.cat([photo[0].reshape(3, -1).double(), torch.ones(1, got.shape[1], dtype=torch.float64)])
    fit = torch.linalg.lstsq(design.T, got.T).solution
    assert (design.T @ fit - got.T).abs().max() < 1e-5
    assert (start - photo).abs().max() > 0.05  # it did change the colours


def test_stylize_starts_from_the_palette_start(vgg, tiny_pair):
    content, style = tiny_pair
    start = stlib.stylize(content, style, init="palette", steps=0, size=64, model=vgg, progress=False).image
    assert (start - content).abs().max() > 0.1
    torch.testing.assert_close(start.mean(dim=(0, 2, 3)), style.mean(dim=(0, 2, 3)), rtol=0, atol=0.02)
    with pytest.raises(ValueError, match="'content', 'palette', 'noise', 'style'"):
        stlib.stylize(content, style, init="pallete", steps=0, size=64, model=vgg, progress=False)


# ---------------------------------------------------------------------------------------- objective
@pytest.mark.parametrize("dtype, channels_last", [(torch.float32, False), (torch.float32, True), (torch.bfloat16, True)])
@pytest.mark.parametrize("normalize", [True, "hw", False])
def test_fast_style_layer_loss_is_the_taught_style_layer_loss(dtype, channels_last, normalize):
    """Same value and same gradient as stlib.style_layer_loss (the one the course teaches), for every layout."""
    gen = torch.Generator().manual_seed(1)
    base = torch.rand(2, 8, 6, 5, generator=gen).to(dtype)
    target = stlib.gram_matrix(torch.rand(1, 8, 7, 7, generator=gen), normalize=normalize)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    fast_in = base.clone(memory_format=fmt).requires_grad_(True)
    taught_in = base.clone().requires_grad_(True)
    fast = fast_style_layer_loss(fast_in, target, normalize)
    taught = stlib.style_layer_loss(taught_in, target, normalize)
    fast.backward()
    taught.backward()
    assert fast.dtype == taught.dtype == torch.float32
    # bf16 on a CPU: G - A is formed in one bf16 product, each entry rounded to 2^-9 of itself (gram_mse)
    torch.testing.assert_close(fast, taught, rtol=1e-5 if dtype == torch.float32 else 1e-3, atol=0)
    want = taught_in.grad.float()
    scale = float(want.abs().max())  # bf16: both gradients are bf16, rounded differently (8 bits of mantissa)
    tol = dict(rtol=1e-5, atol=1e-6 * scale) if dtype == torch.float32 else dict(rtol=2e-2, atol=1e-2 * scale)
    torch.testing.assert_close(fast_in.grad.float(), want, **tol)


def test_objective_is_the_course_formula(vgg, tiny_pair):
    """objective()'s terms recomputed from the taught functions (content_loss, style_layer_loss, tv_loss)."""
    content, style = tiny_pair
    c_layers, s_layers = {"relu2_2": 2.0}, {"relu1_1": 1.0, "relu3_1": 3.0}
    image = torch.rand(content.shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        targets = compute_targets(vgg, content, [style], c_layers, s_layers, [1.0])
        terms = objective(vgg, image, targets, c_layers, s_layers, 0.5, 100.0, 3.0)
        f, fc, fs = (stlib.extract_features(vgg, img, ["relu1_1", "relu2_2", "relu3_1"]) for img in (image, content, style))
        content_term = 0.5 * 2.0 * stlib.content_loss(f["relu2_2"], fc["relu2_2"])
        style_term = 100.0 * sum(w * stlib.style_layer_loss(f[n], stlib.gram_matrix(fs[n])) for n, w in s_layers.items())
    assert float(terms["content"]) == pytest.approx(float(content_term), rel=1e-5)
    assert float(terms["style"]) == pytest.approx(float(style_term), rel=1e-5)
    assert float(terms["tv"]) == pytest.approx(3.0 * float(stlib.tv_loss(image)), rel=1e-6)
    assert float(terms["total"]) == pytest.approx(float(terms["content"] + terms["style"] + terms["tv"]), rel=1e-6)


# -------------------------------------------------------------------------------------------- steps
def quadratic(weight: float = 1000.0):
    """A loss whose gradient is known: ``weight * sum(x)`` -> gradient ``weight`` everywhere."""
    return lambda image: {"content": image.sum() * 0, "style": image.sum() * 0, "tv": image.sum() * 0,
                          "total": weight * image.sum(), "layers": {}}


def test_eager_step_leaves_the_gradient_and_detached_terms():
    x = torch.rand(1, 3, 4, 4, requires_grad=True)
    terms = EagerStep(quadratic(3.0), x, "fp32")()
    assert torch.equal(x.grad, torch.full_like(x, 3.0)) and not terms["total"].requires_grad


def test_loss_scaling_retries_at_half_the_scale_after_an_overflow():
    """fp16's loss scaling, exercised in float32 with a scale large enough to overflow it: 2**120 * 1000
    and 2**119 * 1000 are above float32's maximum (3.4e38), 2**118 * 1000 is below."""
    x = torch.rand(1, 3, 4, 4, requires_grad=True)
    step = EagerStep(quadratic(1000.0), x, "fp32")
    step.loss_scale = 2.0 ** 120
    step()
    assert step.loss_scale == 2.0 ** 118
    assert torch.equal(x.grad, torch.full_like(x, 1000.0))  # divided by the scale that worked, exactly


def test_closure_lifts_small_losses_and_rejects_non_finite_ones():
    x = torch.rand(1, 3, 4, 4, requires_grad=True)
    seen = []
    closure = Closure(EagerStep(quadratic(1e-3), x, "fp32"), x, lambda values, image: seen.append(values["total"]))
    loss = closure()
    first = 1e-3 * float(x.detach().sum())
    assert seen == [pytest.approx(first)] and closure.gain == pytest.approx(1 / first)
    assert float(loss) == pytest.approx(1.0) and torch.allclose(x.grad, torch.full_like(x, 1e-3 / first))
    broken = Closure(EagerStep(quadratic(math.inf), x, "fp32"), x, lambda *a: None)
    with pytest.raises(NonFiniteLoss):
        broken()


def test_read_values_reads_every_term():
    terms = {"content": torch.tensor(1.0), "style": torch.tensor(2.0), "tv": torch.tensor(0.5),
             "total": torch.tensor(3.5), "layers": {"style:relu1_1": torch.tensor(4.0, dtype=torch.bfloat16)}}
    assert read_values(terms) == {"content": 1.0, "style": 2.0, "tv": 0.5, "total": 3.5, "layers": {"style:relu1_1": 4.0}}


# ------------------------------------------------------------------------------------------ monitor
def values(total: float) -> dict:
    return {"content": 0.0, "style": total, "tv": 0.0, "total": total, "layers": {}}


def feed(monitor: RunMonitor, totals, x=None) -> int:
    """Steps with the given losses; returns how many ran before ``end_step`` said to end the scale."""
    x = torch.zeros(1, 3, 2, 2) if x is None else x
    for i, total in enumerate(totals):
        monitor.observe(values(total), x + i)
        if monitor.end_step(x + i, 2, "fp32", last_of_scale=i == len(totals) - 1):
            return i + 1
    return len(totals)


def test_monitor_keeps_history_and_the_best_image():
    monitor = RunMonitor(5, progress=False)
    monitor.start_scale(torch.zeros(1, 3, 2, 2))
    assert feed(monitor, [5.0, 3.0, 4.0]) == 3
    assert [h["total"] for h in monitor.history] == [5.0, 3.0, 4.0] and monitor.step == 3
    assert monitor.best_loss == 3.0 and torch.equal(monitor.best_image, torch.ones(1, 3, 2, 2))
    assert monitor.reason is None and monitor.message is None


def test_monitor_callback_false_and_stop_event_end_the_run():
    calls = []
    monitor = RunMonitor(10, progress=False, every=2, callback=lambda info: calls.append(info.step) or info.step < 4)
    monitor.start_scale(torch.zeros(1, 3, 2, 2))
    assert feed(monitor, [1.0] * 10) == 4 and calls == [2, 4]
    assert monitor.reason is StopReason.CALLBACK and "callback at step 4" in monitor.message
    event = threading.Event()
    stopper = RunMonitor(10, progress=False, stop=event)
    assert not stopper.should_stop()
    event.set()
    assert stopper.should_stop() and stopper.reason is StopReason.STOP_EVENT


def test_monitor_convergence_needs_a_flat_window():
    flat = RunMonitor(100, progress=False, rtol=1e-3)
    flat.start_scale(torch.zeros(1, 3, 2, 2))
    falling = [100.0 / (i + 1) for i in range(30)]
    ran = feed(flat, falling + [falling[-1]] * 70)
    assert ran == CONVERGENCE_MIN_STEPS + 1 + 9  # the first step whose 20-step window is flat and >= 41 steps in
    steady = RunMonitor(100, progress=False, rtol=1e-3)
    steady.start_scale(torch.zeros(1, 3, 2, 2))
    assert feed(steady, [100.0 * 0.99 ** i for i in range(100)]) == 100  # 1 % per step is progress


def test_monitor_non_finite_and_interrupt_return_the_best_image(capsys):
    monitor = RunMonitor(10, progress=False)
    monitor.start_scale(torch.zeros(1, 3, 2, 2))
    feed(monitor, [2.0, 1.0, 3.0])
    with pytest.warns(RuntimeWarning, match="infinite or NaN at step 4"):
        best = monitor.non_finite("content 1, style 1e5, tv 5")
    assert torch.equal(best, torch.ones(1, 3, 2, 2)) and monitor.reason is StopReason.NON_FINITE
    assert torch.equal(monitor.interrupted(), best) and monitor.reason is StopReason.INTERRUPTED
    assert "interrupted (Ctrl-C) at step 3" in capsys.readouterr().out
