"""The live studio, driven programmatically at 64 px: re-targeting, Stop, errors, uploads, the sweep."""

import html
import io
import time

import numpy as np
import pytest
import torch
from PIL import Image

import stlib
import stlib.studio as studio_mod
import stlib.studio.worker as worker_mod
from stlib.color import rgb_to_yiq
from stlib.engine import budget
from stlib.studio import Studio, StudioSettings, decode_upload, uploaded_files

#: A fixed calibration: estimates are deterministic and no test spends seconds calibrating.
FAKE_CAL = budget.Calibration("cpu", "fp32", overhead_s=0.001, seconds_per_pixel=1e-7, bytes_per_pixel=100.0,
                              base_bytes=0)

pytestmark = pytest.mark.timeout(120)


def wait_until(condition, timeout=30.0, what="condition"):
    """Poll ``condition`` until it is true; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def png_of(array):
    """PNG bytes of an (H, W, 3) uint8 array."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def decode_png(data):
    """(1, 3, H, W) float tensor of PNG bytes."""
    arr = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0)


class StylizeSpy:
    """Stands in for ``stylize`` inside the studio's worker: records each call's keyword arguments and every image
    the studio's callback accepted (recorded only after the callback returned normally)."""

    def __init__(self, real):
        self.real = real
        self.calls = []

    def __call__(self, *args, **kwargs):
        record = {"kwargs": dict(kwargs), "images": []}
        self.calls.append(record)
        callback = kwargs.get("callback")

        def recording(info):
            out = callback(info)
            record["images"].append(info.image.clone())
            return out

        if callback is not None:
            kwargs["callback"] = recording
        return self.real(*args, **kwargs)


@pytest.fixture(scope="module")
def model():
    """The studio's own offline VGG-19 (bf16 runs switch a model to channels_last; keep that out of `vgg`)."""
    return stlib.load_vgg19("random")


@pytest.fixture
def make_studio(model, monkeypatch):
    """Studios at 64 px with a fixed calibration (deterministic estimates), stopped and closed after each test."""
    monkeypatch.setattr(budget, "calibrate", lambda *a, **k: FAKE_CAL)
    made = []

    def make(**kwargs):
        kwargs.setdefault("size", 64)
        kwargs.setdefault("steps", 500)
        s = Studio("astronaut", "swirls", model=model, **kwargs)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop(wait=True, timeout=10)
        s.close()


def test_slider_change_retargets_with_warm_start(make_studio, monkeypatch):
    spy = StylizeSpy(worker_mod.stylize)
    monkeypatch.setattr(worker_mod, "stylize", spy)
    s = make_studio()
    assert s.run()
    wait_until(lambda: s.preview_count >= 2, what="two previews")
    before_generation, before_preview = s.generation, s.preview.value
    n_calls = len(spy.calls)
    new_weight = s.style_weight.value * 10
    s.style_weight.value = new_weight

    assert s.generation == before_generation + 1
    # (the first L-BFGS step after a restart is tiny and may round to the same PNG, so wait for a changed one)
    wait_until(lambda: s.preview_generation == s.generation and s.preview.value != before_preview,
               what="a changed preview under the new settings")
    assert len(spy.calls) > n_calls
    restarted = spy.calls[n_calls]
    previous = spy.calls[n_calls - 1]
    # A warm start: the new stylize call starts from the last image the previous call showed, not from scratch.
    assert isinstance(restarted["kwargs"]["init"], torch.Tensor)
    assert torch.equal(restarted["kwargs"]["init"], previous["images"][-1])
    assert restarted["kwargs"]["style_weight"] == pytest.approx(new_weight)
    assert previous["kwargs"]["style_weight"] == pytest.approx(new_weight / 10)
    assert restarted["kwargs"]["model"] is s.model  # one loaded network, reused
    assert s.calls[-1].warm and s.calls[-1].generation == s.generation
    assert s.retargets, "the loss plot should mark where the settings changed"
    assert "Running (settings #" in s.status.value or "Re-targeting" in s.status.value


def test_burst_of_slider_ticks_is_coalesced(make_studio, monkeypatch):
    spy = StylizeSpy(worker_mod.stylize)
    monkeypatch.setattr(worker_mod, "stylize", spy)
    s = make_studio()
    s.run()
    wait_until(lambda: s.preview_count >= 1, what="a first preview")
    n_calls = len(spy.calls)
    start = s.style_weight.value
    for i in range(1, 11):
        s.style_weight.value = start * 10 ** (i / 10)
    final = s.style_weight.value
    wait_until(lambda: s.preview_generation == s.generation, what="a preview under the last settings")
    restarts = len(spy.calls) - n_calls
    assert 1 <= restarts <= 3, f"ten ticks caused {restarts} restarts; only the latest settings should matter"
    assert spy.calls[-1]["kwargs"]["style_weight"] == pytest.approx(final)


def test_stop_keeps_the_image_and_ends_the_worker(make_studio):
    s = make_studio()
    s.run()
    wait_until(lambda: s.preview_count >= 2, what="two previews")
    # busy shows in the widget itself (JupyterLab's kernel indicator says "Idle" while the thread works)
    assert s.run_button.description == "Running\u2026" and "stlib-studio-busy" in s.widget._dom_classes
    assert s.progress.max == 500 and 1 <= s.progress.value <= 500
    assert s.stop(wait=True, timeout=15)  # how fast Stop answers is measured by benchmarks/studio_latency.py
    assert not s.running
    assert s.image is not None and s.image.shape[:2] == (1, 3) and max(s.image.shape[-2:]) == 64
    assert torch.isfinite(s.image).all()
    assert s.result is None  # 500 steps cannot have finished: a Stop is not a result
    assert "Stopped" in s.status.value
    assert not s.run_button.disabled and s.stop_button.disabled
    assert s.run_button.description == "Run" and "stlib-studio-busy" not in s.widget._dom_classes


def test_content_change_restarts_from_scratch(make_studio):
    s = make_studio()
    s.run()
    wait_until(lambda: s.preview_count >= 1, what="a first preview")
    s.content_pick.value = "chelsea"
    wait_until(lambda: s.preview_generation == s.generation, what="a preview of the new photo")
    last = s.calls[-1]
    assert last.settings.content == "chelsea"
    assert not last.warm and last.init == "content"


def test_worker_exception_is_readable_and_studio_stays_usable(make_studio, monkeypatch):
    real = worker_mod.stylize

    def broken(*args, **kwargs):
        raise RuntimeError("simulated failure inside stylize")

    s = make_studio(steps=5)
    monkeypatch.setattr(worker_mod, "stylize", broken)
    assert s.run()
    assert s.wait(timeout=30)
    assert "simulated failure inside stylize" in s.status.value
    assert s.error == "simulated failure inside stylize"
    assert not s.run_button.disabled

    monkeypatch.setattr(worker_mod, "stylize", real)
    assert s.run()
    assert s.wait(timeout=60)
    assert s.error is None
    assert "Done: 5 steps" in s.status.value
    assert s.result is not None and s.result.steps == 5


def test_unreadable_upload_gives_a_readable_message(make_studio):
    s = make_studio()
    options_before = list(s.content_pick.options)
    assert not s.add_upload("content", "foo.png", b"this is not a picture")
    assert "Could not load &#x27;foo.png&#x27;" in s.status.value  # html-escaped quotes
    assert "PNG or JPEG" in s.status.value
    assert list(s.content_pick.options) == options_before
    with pytest.raises(stlib.images.ImageLoadError, match="empty"):
        decode_upload("empty.png", b"")


def test_upload_value_formats_of_ipywidgets_7_and_8(make_studio):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(40, 56, 3), dtype=np.uint8)
    data = png_of(pixels)
    v7 = {"tile.png": {"metadata": {"name": "tile.png", "type": "image/png", "size": len(data),
                                    "lastModified": 0}, "content": data}}
    v8 = ({"name": "tile8.png", "type": "image/png", "size": len(data), "last_modified": None,
           "content": memoryview(data)},)
    assert uploaded_files(v7) == [("tile.png", data)]
    assert uploaded_files(v8) == [("tile8.png", data)]
    assert uploaded_files(()) == [] and uploaded_files({}) == []

    s = make_studio()
    s._on_upload("style", v7)
    assert s.style_pick.value == "upload:tile.png"
    s._on_upload("content", v8)
    assert s.content_pick.value == "upload:tile8.png"
    expected = torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1).unsqueeze(0)
    torch.testing.assert_close(s.images.get("upload:tile8.png"), expected, atol=1e-6, rtol=0)
    assert s.settings().style == "upload:tile.png"


def test_settings_follow_the_controls(make_studio):
    s = make_studio()
    s.layer_on["relu5_1"].value = False
    s.layer_weight["relu2_1"].value = 10.0
    s.tv_on.value = False
    s.keep_colors.value = True
    s.optimizer.value = "adam"
    got = s.settings()
    assert isinstance(got, StudioSettings)
    assert "relu5_1" not in got.style_layers
    assert got.style_layers["relu2_1"] == pytest.approx(10.0)
    assert got.tv_weight == 0.0 and got.preserve_color and got.optimizer == "adam"
    assert s.generation == 5


def test_run_while_running_is_refused(make_studio):
    s = make_studio()
    assert s.run()
    wait_until(lambda: s.running, what="the worker to start")
    assert not s.run()
    assert "Already running" in s.status.value


def test_keep_colours_preview_has_the_photos_colours(make_studio):
    s = make_studio(steps=5)
    s.keep_colors.value = True
    s.run()
    assert s.wait(timeout=60)
    assert s.error is None
    shown = decode_png(s.preview.value)
    photo = stlib.resize(stlib.load_image("astronaut"), tuple(shown.shape[-2:]))
    chroma_diff = (rgb_to_yiq(shown)[:, 1:] - rgb_to_yiq(photo)[:, 1:]).abs().mean()
    assert chroma_diff < 0.02


def test_sweep_caches_cells_and_flips_between_them(make_studio, tmp_path):
    s = make_studio()
    expected = [title for title, _ in s.sweep_plan("ratio", 3, measure=True)]
    cells = s.sweep("ratio", 3, steps=3, size=64)
    assert len(cells) == 3 and s.sweep_pick.max == 3 and not s.sweep_pick.disabled
    assert [title for title, _, _ in cells] == expected  # centred on the measured balance, not the slider
    assert s.sweep_progress.value == s.sweep_progress.max == 9
    assert cells[0][1] != cells[2][1]  # a 10^3 different style weight changes the picture
    for i in (0, 2, 1):
        s.sweep_pick.value = i + 1  # the slider counts cells from 1, like its title
        assert s.sweep_image.value == cells[i][1]
        assert f"{i + 1}/3" in s.sweep_title.value

    out = s.save_sweep(tmp_path / "grid.png")
    with Image.open(out) as grid:
        assert grid.format == "PNG" and grid.width > 2 * grid.height
    with pytest.raises(ValueError, match="PNG"):
        s.save_sweep(tmp_path / "grid.jpg")


def test_layer_sweep_plan_and_save_without_sweep(make_studio, tmp_path):
    s = make_studio()
    plan = s.sweep_plan("layers", 5)
    assert [sorted(cell.style_layers) for _, cell in plan] == [
        sorted(stlib.STYLE_LAYERS[:k]) for k in range(1, 6)]
    assert plan[0][0] == "relu1_1" and plan[-1][0] == "relu1_1 \u2026 relu5_1"
    with pytest.raises(RuntimeError, match="no sweep"):
        s.save_sweep(tmp_path / "nothing.png")
    with pytest.raises(ValueError, match="kind must be one of"):
        s.sweep_plan("colours")


def test_estimate_label_is_stlib_estimate(make_studio):
    s = make_studio()
    s.steps.value = 300
    expected = stlib.estimate(64, steps=300, calibration=FAKE_CAL)
    wait_until(lambda: html.escape(expected.message) in s.estimate_label.value, 10, "the estimate (a background thread)")


def test_slow_run_shows_the_estimate_first(make_studio, monkeypatch):
    s = make_studio()
    slow = budget.Calibration("cpu", "fp32", overhead_s=2.0, seconds_per_pixel=0.0, bytes_per_pixel=100.0,
                              base_bytes=0)
    monkeypatch.setattr(budget, "calibrate", lambda *a, **k: slow)
    seen = []
    s.status.observe(lambda change: seen.append(change["new"]), names="value")
    s.run()
    wait_until(lambda: s.preview_count >= 1, what="a first preview")
    s.stop()
    warning = [v for v in seen if "This run will be slow" in v]
    assert warning and stlib.estimate(64, steps=500, calibration=slow).message in warning[0]


def test_run_that_cannot_fit_in_memory_is_refused(make_studio, monkeypatch):
    s = make_studio()
    huge = budget.Calibration("cpu", "fp32", 0.001, 1e-7, bytes_per_pixel=1e15, base_bytes=0)
    monkeypatch.setattr(budget, "calibrate", lambda *a, **k: huge)
    s.run()
    assert s.wait(timeout=30)
    assert "would not fit in memory" in s.status.value and "smaller size" in s.status.value
    assert s.calls == []


def test_no_empty_images_before_the_first_run(make_studio):
    s = make_studio()
    for image in (s.preview, s.loss_plot, s.content_thumb, s.style_thumb):
        assert image.value[:8] == b"\x89PNG\r\n\x1a\n"  # a picture, never a broken-image icon
    assert s.pinned.layout.display == "none"  # hidden until something is pinned
    assert s.style_weight.step == 0.5  # two arrow presses = one decade, a change the picture shows


def test_pin_keeps_a_result_beside_the_live_one(make_studio):
    s = make_studio(steps=5)
    with pytest.raises(RuntimeError, match="press Run first"):
        s.pin()
    s.run()
    assert s.wait(60)
    pinned = s.pin()
    assert pinned == s.settings() and s.pinned.layout.display is None
    assert s.pinned.value == s.preview.value and "pinned" in s.pinned_title.value
    s.style_weight.value = s.style_weight.value * 100
    s.run()
    assert s.wait(60)
    assert s.pinned.value != s.preview.value  # the live picture moved on; the pinned one stayed


def test_presets_and_reset_set_the_controls(make_studio):
    s = make_studio()
    start = s.settings()
    s.preset_pick.value = "style wins"
    assert s.settings().style_weight == pytest.approx(100 * s.preset.style_weight)
    s.preset_pick.value = "paper-like"
    assert (s.init.value, s.pooling.value) == ("noise", "avg")
    s.reset()
    assert s.settings() == start and s.preset_pick.value == ""


def test_projector_layout_sizes(model, monkeypatch):
    monkeypatch.setattr(budget, "calibrate", lambda *a, **k: FAKE_CAL)
    s = Studio("astronaut", "swirls", model=model, size=64, layout="projector")
    try:
        assert s.preview.layout.width == "600px" and s.controls.big
        ax = s._plot._ax
        assert min(label.get_fontsize() for label in ax.get_xticklabels() + ax.get_yticklabels()) >= 12
        assert ax.xaxis.label.get_fontsize() >= 12
        with Image.open(io.BytesIO(s.loss_plot.value)) as plot:
            assert plot.size == (330, 250)  # drawn at the size it is shown: 12 pt stays 12 pt
    finally:
        s.close()
    with pytest.raises(ValueError, match="layout"):
        Studio("astronaut", "swirls", model=model, layout="poster")


def test_studio_convenience_returns_the_widget(model, monkeypatch):
    monkeypatch.setattr(budget, "calibrate", lambda *a, **k: FAKE_CAL)
    widget = studio_mod.studio("coffee", "mosaic", model=model, size=64)
    assert widget.studio.settings().content == "coffee"
    assert widget.studio.settings().style == "mosaic"
    widget.studio.close()


def test_bad_image_name_is_a_clear_error(model):
    with pytest.raises(stlib.images.ImageLoadError, match="Could not load 'no_such_picture'"):
        Studio("no_such_picture", "swirls", model=model)


def test_live_loss_plot_keeps_rejected_trials_off_the_line():
    from stlib.studio.lossplot import LossPlot

    plot = LossPlot()
    history = [{"step": i + 1, "total": v, "style": v, "content": 0.0, "tv": 0.0, "accepted": i != 2}
               for i, v in enumerate([8.0, 4.0, 30.0, 3.0])]
    assert plot.render(history).startswith(b"\x89PNG")
    assert list(plot._lines["total"].get_xdata()) == [1, 2, 4]
    assert list(plot._rejected["total"].get_xdata()) == [3] and list(plot._rejected["total"].get_ydata()) == [30.0]
    assert plot._rejected["total"].get_markerfacecolor() == "none" and not plot._rejected["content"].get_visible()
