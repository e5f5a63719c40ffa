"""The studio's pace (stlib.studio.pace): measured step times and the preview stage they imply, by hand."""


import pytest
import torch

from stlib.studio import pace as P
from stlib.studio.settings import StudioSettings

CPU = torch.device("cpu")


def settings(size: int = 256, steps: int = 200) -> StudioSettings:
    return StudioSettings("astronaut", "swirls", 1.0, 1e4, {"relu1_1": 1.0}, 0.0, size, steps)


def test_smooths_repeated_measurements_at_one_size():
    pace = P.Pace(CPU, "fp32")
    assert pace.step_seconds(128) is None
    pace.record(128, 1.0)
    pace.record(128, 2.0)
    assert pace.step_seconds(128) == pytest.approx((1 - P.SMOOTHING) * 1.0 + P.SMOOTHING * 2.0)


def test_scales_by_pixel_count_from_the_nearest_size_measured():
    pace = P.Pace(CPU, "fp32")
    pace.record(64, 0.01)
    pace.record(128, 0.1)
    assert pace.step_seconds(256) == pytest.approx(0.1 * 4)  # 128 is nearer to 256 than 64 (in octaves)
    assert pace.step_seconds(48) == pytest.approx(0.01 * (48 / 64) ** 2)


def test_preview_size_fits_one_step_into_the_budget():
    pace = P.Pace(CPU, "fp32")
    pace.record(256, 4 * P.PREVIEW_STEP_BUDGET_S)  # a full step takes 4 budgets: half the side takes one
    assert pace.preview_size(settings(256)) == 128
    pace.record(512, 1000.0)  # hopelessly slow: the smallest preview
    assert pace.preview_size(settings(512)) == P.PREVIEW_MIN_SIZE


def test_no_preview_when_full_size_is_fast_or_the_preview_would_be_nearly_full_size():
    pace = P.Pace(CPU, "fp32")
    pace.record(256, P.PREVIEW_STEP_BUDGET_S / 2)
    assert pace.preview_size(settings(256)) is None
    pace.record(96, 1.0)  # slow, but the smallest preview (64 px) is more than 0.8 of 72 px
    assert pace.preview_size(settings(72)) is None
    off = P.Pace(CPU, "fp32", mode=None)
    off.record(256, 100.0)
    assert off.preview_size(settings(256)) is None


def test_before_any_measurement_the_estimate_decides(monkeypatch):
    class Est:
        seconds_per_step = 16 * P.PREVIEW_STEP_BUDGET_S

    monkeypatch.setattr(P, "estimate_run", lambda s, device, precision, model=None: Est())
    assert P.Pace(CPU, "fp32").preview_size(settings(512)) == 128  # a quarter of the side: 1/16 of the pixels
    # no estimate: half size on a CPU
    monkeypatch.setattr(P, "estimate_run", lambda s, device, precision, model=None: None)
    assert P.Pace(CPU, "fp32").preview_size(settings(512)) == 256


def test_plan_counts_preview_steps_towards_the_total():
    pace = P.Pace(CPU, "fp32")
    assert pace.plan(settings(256, 200), None) == (200, None)
    assert pace.plan(settings(256, 2), 128) == (2, None)  # too few steps to split
    pace.record(128, 0.3)
    steps, scales = pace.plan(settings(256, 200), 128)
    assert steps == [5, 195] and sum(steps) == 200  # about 1.5 s of 0.3 s steps
    assert scales == [0.5, 1.0]
    fast = P.Pace(CPU, "fp32")
    fast.record(128, 0.001)  # very fast preview steps: at most 10 of them
    assert fast.plan(settings(256, 200), 128)[0] == [10, 190]
    assert fast.plan(settings(256, 8), 128)[0] == [4, 4]  # at most half the run


def test_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match="preview must be 'auto' or None"):
        P.Pace(CPU, "fp32", mode="always")
