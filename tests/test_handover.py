"""The precision hand-over (stlib.engine.handover) and its place in stylize's run loop; glibc's mmap threshold."""

import functools
import sys

import pytest
import torch

import stlib
import stlib.transfer as transfer
from stlib.engine.handover import HandOver
from stlib.engine.heap import fix_mmap_threshold
from stlib.engine.objective import compute_targets, objective


# ------------------------------------------------------------------------------------------ the trigger
def test_due_only_when_the_best_stopped_improving():
    h = HandOver(window=3, rtol=0.01, min_steps=4)
    falling = [10.0, 9.0, 8.0, 7.0, 6.0, 5.0]  # best before the window 8, now 5: 37 % better
    assert not h.due(falling)
    # best before the window 5.0; the last 3 steps reach 4.96: 0.8 % better <= 1 %
    assert h.due(falling + [5.2, 4.96, 5.1])
    # 4.9: 2 % better > 1 %
    assert not h.due(falling + [5.2, 4.9, 5.1])


def test_due_waits_for_min_steps_and_a_full_window():
    h = HandOver(window=3, rtol=1.0, min_steps=5)  # rtol 1: any window counts as a plateau ...
    assert not h.due([1.0, 1.0, 1.0, 1.0])  # ... but not before 5 steps
    assert h.due([1.0] * 5)
    assert not HandOver(window=5, rtol=1.0, min_steps=5).due([1.0] * 5)  # a window needs a step before it


def test_due_ignores_rises_inside_the_window():
    """A rejected trial (a loss above the best) is not progress, and not a regression either: only the best counts."""
    h = HandOver(window=2, rtol=0.001, min_steps=3)
    assert h.due([3.0, 2.0, 50.0, 2.0])
    assert not h.due([3.0, 2.0, 50.0, 1.5])


@pytest.mark.parametrize("kwargs", [{"window": 0}, {"window": 5, "min_steps": 4}, {"rtol": -1.0},
                                    {"rtol": float("nan")}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match="HandOver needs"):
        HandOver(**kwargs)


# ------------------------------------------------------------------------------------------ in stylize
def _run(vgg, tiny_pair, monkeypatch, fp32_finish=True, steps=30):
    content, style = tiny_pair
    # rtol 1: the hand-over is due as soon as min_steps steps have run, so it happens at a known step
    monkeypatch.setattr(transfer, "HandOver", functools.partial(HandOver, window=5, rtol=1.0, min_steps=12))
    return stlib.stylize(content, style, model=vgg, size=64, steps=steps, precision="bf16", progress=False,
                         rtol=0.0, fp32_finish=fp32_finish)


def test_bf16_then_fp32_after_the_plateau(vgg, tiny_pair, monkeypatch):
    result = _run(vgg, tiny_pair, monkeypatch)
    precisions = [h["precision"] for h in result.history]
    assert precisions == ["bf16"] * 12 + ["fp32"] * 18
    assert result.settings["fp32_finish"] is True
    # the returned image is the float32 stage's best: its float32 objective is the one recorded at that step
    best = next(h for h in result.history if h["best"])
    assert best["precision"] == "fp32"
    assert best["total"] == min(h["total"] for h in result.history[12:])
    content, style = tiny_pair
    s = result.settings
    content = stlib.resize(content, 64)
    vgg.to(memory_format=torch.contiguous_format)
    targets = compute_targets(vgg, content, [stlib.resize(style, 64)], s["content_layers"], s["style_layers"], [1.0])
    with torch.no_grad():
        total = objective(vgg, result.image, targets, s["content_layers"], s["style_layers"], s["content_weight"],
                          s["style_weight"], s["tv_weight"])["total"]
    assert float(total) == pytest.approx(best["total"], rel=1e-5)  # one float32 evaluation, two ways


def test_fp32_starts_from_the_best_bf16_image(vgg, tiny_pair, monkeypatch):
    """The first float32 step evaluates the best bf16 image: its float32 loss is that image's float32 objective,
    which lies within bf16 rounding (~1 %) of the bf16 loss recorded for it."""
    result = _run(vgg, tiny_pair, monkeypatch, steps=13)
    bf16_best = min(h["total"] for h in result.history[:12])
    assert result.history[12]["precision"] == "fp32"
    assert result.history[12]["total"] == pytest.approx(bf16_best, rel=2e-2)  # bf16 features: ~1e-2 on sums


def test_fp32_finish_false_stays_in_bf16(vgg, tiny_pair, monkeypatch):
    result = _run(vgg, tiny_pair, monkeypatch, fp32_finish=False, steps=20)
    assert {h["precision"] for h in result.history} == {"bf16"}
    assert result.settings["fp32_finish"] is False


def test_no_hand_over_in_fp32_or_on_a_coarse_scale(vgg, tiny_pair, monkeypatch):
    content, style = tiny_pair
    monkeypatch.setattr(transfer, "HandOver", functools.partial(HandOver, window=5, rtol=1.0, min_steps=12))
    multi = stlib.stylize(content, style, model=vgg, size=64, steps=[20, 20], scales=[0.5, 1], precision="bf16",
                          progress=False, rtol=0.0, fp32_finish=True)
    coarse = [h["precision"] for h in multi.history if h["size"] == 32]
    fine = [h["precision"] for h in multi.history if h["size"] == 64]
    assert coarse == ["bf16"] * 20 and fine == ["bf16"] * 12 + ["fp32"] * 8


# ------------------------------------------------------------------------------------------ the heap
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_mmap_threshold_is_set_on_linux():
    assert fix_mmap_threshold() is True


# ------------------------------------------------------------------------------------------ the option
def test_fp32_finish_is_checked_and_has_a_yes_no_flag():
    from stlib.engine.options import RunOptions, yes_no

    assert [yes_no(t) for t in ("yes", "No", "on", "OFF", "true", "0")] == [True, False, True, False, True, False]
    with pytest.raises(ValueError, match="expected yes or no"):
        yes_no("maybe")
    with pytest.raises(ValueError, match="fp32_finish must be True or False"):
        RunOptions(fp32_finish="no")
