"""stlib.estimate: time and memory predictions from a calibration (no timing assertions anywhere)."""

import re

import pytest

import stlib
from stlib.engine.budget import CPU_RUN_OVERHEAD_BYTES, Calibration, Estimate, calibrate, estimate
from stlib.transfer import scale_plan

#: A made-up machine: 5 ms per step plus 1 us per pixel; 1000 bytes per pixel; 800 MB of runtime.
CAL = Calibration(device="cpu", precision="bf16", overhead_s=0.005, seconds_per_pixel=1e-6,
                  bytes_per_pixel=1000.0, base_bytes=800_000_000)
PLENTY = 10**12
FIXED = CAL.base_bytes + CPU_RUN_OVERHEAD_BYTES  # what does not grow with the image


def est(size, **kwargs):
    kwargs.setdefault("calibration", CAL)
    kwargs.setdefault("available", PLENTY)
    return estimate(size, **kwargs)


def test_time_follows_the_cost_model_by_hand():
    e = est(100, steps=10)
    # 10 steps + ~1 step for the targets, each 0.005 s + 100*100 px * 1e-6 s
    assert e.seconds == pytest.approx(11 * (0.005 + 0.01))
    assert e.seconds_per_step == pytest.approx(0.015)
    assert e.sizes == (100,) and e.steps == (10,)


def test_memory_follows_the_model_by_hand():
    e = est(100, steps=10)
    # activations + L-BFGS's image-sized vectors: 8 of its own and two per curvature pair (25 pairs at 100 px,
    # 10 at 2000 px: as many as fit in 64 MiB, lbfgs_history)
    per_pixel = 1000 + (8 + 2 * 25) * 3 * 4
    # + the allocator's share: one more `bytes_per_pixel` per pixel, at most CPU_RUN_OVERHEAD_BYTES
    assert e.peak_bytes == int(800_000_000 + 100 * 100 * 1000 + 100 * 100 * per_pixel)
    big = est(2000)
    per_pixel_big = 1000 + (8 + 2 * 10) * 3 * 4
    assert big.peak_bytes == int(800_000_000 + CPU_RUN_OVERHEAD_BYTES + 2000 * 2000 * per_pixel_big)
    adam = est(100, steps=10, optimizer="adam")
    assert adam.peak_bytes < e.peak_bytes
    assert est(100, steps=10, optimizer="lbfgs-plain").peak_bytes == e.peak_bytes  # the same history of pairs


def test_estimate_accepts_every_optimizer_stylize_accepts():
    from stlib.engine import settings
    from stlib.engine.optim import OPTIMIZERS

    assert settings.OPTIMIZERS is OPTIMIZERS  # stylize validates against the same names
    for name in OPTIMIZERS:  # raised a ValueError for "lbfgs-plain" before issue 17
        assert est(64, optimizer=name).sizes == (64,)


def test_monotone_in_size_and_steps():
    sizes = [64, 128, 256, 512, 1024, 2048]
    seconds = [est(s).seconds for s in sizes]
    peaks = [est(s).peak_bytes for s in sizes]
    assert seconds == sorted(seconds) and len(set(seconds)) == len(seconds)
    assert peaks == sorted(peaks) and len(set(peaks)) == len(peaks)
    by_steps = [est(256, steps=n).seconds for n in (1, 10, 100, 300)]
    assert by_steps == sorted(by_steps) and len(set(by_steps)) == 4


def test_memory_grows_about_quadratically_with_size():
    extra = {s: est(s).peak_bytes - FIXED for s in (1024, 2048, 4096)}  # sizes where the overhead is capped
    assert extra[2048] / extra[1024] == pytest.approx(4, rel=0.01)
    assert extra[4096] / extra[2048] == pytest.approx(4, rel=0.01)


def test_multi_scale_costs_less_than_all_steps_at_full_size():
    single = est(1024, steps=300)
    multi = est(1024, steps=300, scales="auto")
    assert multi.sizes == tuple(s for s, _ in scale_plan(1024, "auto", 300)) and multi.sizes[-1] == 1024
    assert sum(multi.steps) == 300
    assert multi.seconds < 0.5 * single.seconds
    assert multi.peak_bytes == single.peak_bytes  # the largest scale sets the peak


def test_message_mentions_time_memory_device_and_precision():
    e = est(512, steps=300)
    assert isinstance(e, Estimate) and str(e) == e.message
    assert re.search(r"≈ [\d.]+ (s|min|h)\b", e.message), e.message
    assert re.search(r"≈ [\d.]+ (MB|GB)\b", e.message), e.message
    assert "cpu" in e.message and "bf16" in e.message
    assert est(8, steps=1).message.startswith("< 1 s and ≈ ")
    assert est(1000, steps=9).message.startswith("≈ 10 s and")  # 10 x (0.005 + 1.0) s
    assert est(2000, steps=29).message.startswith("≈ 2 min 0 s and")  # 30 x (0.005 + 4.0) s
    assert "h" in est(4096, steps=3000).message.split(" and ")[0]


def test_too_large_does_not_fit_and_says_so():
    e = est(100_000, available=16 * 10**9)
    assert not e.fits
    assert "more than" in e.message and "16.0 GB" in e.message and "smaller size" in e.message
    assert est(256, available=16 * 10**9).fits


def test_rectangular_sizes_use_their_pixels():
    square = est(2400)
    wide = est((1200, 2400))
    assert wide.peak_bytes - FIXED == pytest.approx((square.peak_bytes - FIXED) / 2, rel=1e-6)


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="optimizer"):
        est(64, optimizer="sgd")
    with pytest.raises(ValueError, match="positive"):
        est(0)
    with pytest.raises(ValueError, match="scales"):
        est(512, scales="fast")


def test_calibration_on_this_machine_is_cached_and_sane():
    cal = calibrate("cpu", "fp32", sizes=(32, 48), repeats=1)
    assert cal is calibrate("cpu", "fp32", sizes=(32, 48), repeats=1)  # measured once per process
    assert cal.device == "cpu" and cal.precision == "fp32"
    assert cal.seconds_per_pixel > 0 and cal.overhead_s >= 0 and cal.bytes_per_pixel > 0
    assert cal.base_bytes > 0
    e = estimate(256, device="cpu", steps=10, precision="fp32", calibration=cal)
    assert e.seconds > 0 and e.peak_bytes > cal.base_bytes and e.precision == "fp32"


def test_calibration_times_the_runs_own_network_when_given(monkeypatch):
    from stlib.engine import budget

    def no_second_network(dev):
        raise AssertionError("a network was made although the run's own was given")

    monkeypatch.setattr(budget, "_timing_network", no_second_network)
    monkeypatch.setattr(budget, "_CALIBRATIONS", {})
    model = stlib.load_vgg19("random")
    cal = calibrate("cpu", "fp32", sizes=(32, 40), repeats=1, model=model)
    assert cal.seconds_per_pixel > 0 and cal.base_bytes > 0
    assert model.layers[0].weight.requires_grad is False  # the network is left as the run needs it
    # cached by device, precision and sizes: the next call (any model, or none) measures nothing again
    assert calibrate("cpu", "fp32", sizes=(32, 40), repeats=1) is cal
    e = estimate(40, device="cpu", steps=2, precision="fp32", model=model, available=PLENTY)
    assert e.seconds > 0 and e.peak_bytes > 0
    with pytest.raises(AssertionError, match="a network was made"):  # without a model, one is made (and checked)
        calibrate("cpu", "fp32", sizes=(32, 48), repeats=1)


def test_reexported():
    assert stlib.estimate is estimate and "Estimate" not in stlib.__all__
