"""The studio's parts without widgets: the worker (thread, settings generations, abort, warm restart),
the settings -> stylize mapping, presets, sweep plans and the measured sweep ranges."""

import subprocess
import sys
import threading

import pytest
import torch

import stlib
import stlib.studio.worker as worker_mod
from stlib.engine import budget
from stlib.studio import sweep as sweeps
from stlib.studio.inputs import ImageStore
from stlib.studio.settings import PRESETS, StudioSettings, preset_settings
from stlib.units import format_number
from stlib.studio.worker import Listener, Worker
from test_studio import StylizeSpy, wait_until  # shared helpers of the studio tests

pytestmark = pytest.mark.timeout(120)

FAKE_CAL = budget.Calibration("cpu", "fp32", overhead_s=0.001, seconds_per_pixel=1e-7, bytes_per_pixel=100.0,
                              base_bytes=0)


class Recorder(Listener):
    """Keeps everything the worker reports."""

    def __init__(self):
        self.statuses, self.previews, self.busy = [], [], []

    def on_status(self, text, kind="info"):
        self.statuses.append((text, kind))

    def on_preview(self, image, generation, info):
        self.previews.append((image, generation, info))

    def on_busy(self, what):
        self.busy.append(what)


class Holder:
    """Mutable settings, read by the worker like it reads the controls."""

    def __init__(self, s):
        self.s = s

    def __call__(self):
        return self.s


@pytest.fixture(scope="module")
def model():
    return stlib.load_vgg19("random")


@pytest.fixture
def setup(model, monkeypatch):
    monkeypatch.setattr(budget, "calibrate", lambda *a, **k: FAKE_CAL)
    made = []

    def make(steps=500, **kwargs):
        base = stlib.presets.OFFLINE
        holder = Holder(StudioSettings("astronaut", "swirls", base.content_weight, base.style_weight,
                                       dict(base.style_layers), base.tv_weight, size=64, steps=steps))
        rec = Recorder()
        w = Worker(model, holder, ImageStore(), rec, **kwargs)
        made.append(w)
        return w, holder, rec

    yield make
    for w in made:
        w.stop(wait=True, timeout=10)


def test_worker_imports_no_widgets():
    code = "import sys, stlib.studio.worker, stlib.studio.sweep; print('ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_stylize_kwargs_is_the_one_mapping():
    s = StudioSettings("a", "b", 2.0, 3e5, {"relu1_1": 1.0}, 0.0, 128, 50, "adam", "noise", True, "avg")
    got = s.stylize_kwargs(steps=[5, 45], callback=print)
    assert got == {"content_weight": 2.0, "style_weight": 3e5, "style_layers": {"relu1_1": 1.0}, "tv_weight": 0.0,
                   "steps": [5, 45], "optimizer": "adam", "init": "noise", "size": 128,
                   "preserve_color": "luminance", "style_scale": 1.0, "callback": print}
    assert "pooling" not in got  # pooling picks the network, it is not a stylize keyword with model=
    assert s.changes_from(s) == []
    assert "style weight 3e5 \u2192 3e6" in StudioSettings(**{**s.__dict__, "style_weight": 3e6}).changes_from(s)
    assert [format_number(v) for v in (1e5, 3.16e5, 5.0, 0.02)] == ["1e5", "3.2e5", "5", "0.02"]


def test_presets_change_what_they_say():
    base = StudioSettings("a", "b", 7.0, 1.0, {"relu1_1": 9.0}, 0.0, 128, 50, "adam", "content", False, "max")
    got = {p.name: preset_settings(base, stlib.presets.OFFLINE, p.name) for p in PRESETS}
    assert got["style wins"].style_weight == pytest.approx(100 * stlib.presets.OFFLINE.style_weight)
    assert got["content wins"].style_weight == pytest.approx(stlib.presets.OFFLINE.style_weight / 100)
    assert got["paper-like"].init == "noise" and got["paper-like"].pooling == "avg"
    assert got["tutorial-like"].tv_weight == 0 and got["tutorial-like"].init == "content"
    for s in got.values():
        assert (s.content, s.style, s.size, s.steps) == ("a", "b", 128, 50)  # images and run size stay
        assert s.style_layers == stlib.presets.OFFLINE.style_layers and s.content_weight == stlib.presets.OFFLINE.content_weight
    with pytest.raises(ValueError, match="unknown preset"):
        preset_settings(base, stlib.presets.OFFLINE, "loud")


def test_change_retargets_with_a_warm_start(setup, monkeypatch):
    spy = StylizeSpy(worker_mod.stylize)
    monkeypatch.setattr(worker_mod, "stylize", spy)
    w, holder, rec = setup()
    assert w.run()
    wait_until(lambda: len(rec.previews) >= 2, what="two previews")
    n = len(spy.calls)
    holder.s = StudioSettings(**{**holder.s.__dict__, "style_weight": holder.s.style_weight * 10})
    w.changed()
    wait_until(lambda: any(g == w.generation for _, g, _ in rec.previews), what="a preview under the new settings")
    restarted, previous = spy.calls[n], spy.calls[n - 1]
    assert torch.equal(restarted["kwargs"]["init"], previous["images"][-1])  # warm: from the last shown image
    assert restarted["kwargs"]["style_weight"] == pytest.approx(10 * previous["kwargs"]["style_weight"])
    assert w.calls[-1].warm and w.retargets
    assert any("Re-targeting (settings #1)" in t for t, _ in rec.statuses)
    assert rec.busy[0] == "run"


def test_burst_of_changes_is_coalesced(setup, monkeypatch):
    spy = StylizeSpy(worker_mod.stylize)
    monkeypatch.setattr(worker_mod, "stylize", spy)
    w, holder, rec = setup()
    w.run()
    wait_until(lambda: rec.previews, what="a first preview")
    n = len(spy.calls)
    for i in range(10):
        holder.s = StudioSettings(**{**holder.s.__dict__, "tv_weight": float(i + 1)})
        w.changed()
    wait_until(lambda: any(g == w.generation for _, g, _ in rec.previews), what="a preview under the last settings")
    assert 1 <= len(spy.calls) - n <= 3
    assert spy.calls[-1]["kwargs"]["tv_weight"] == 10.0


def test_stop_is_prompt_and_keeps_the_image(setup):
    w, _, rec = setup()
    w.run()
    wait_until(lambda: len(rec.previews) >= 2, what="two previews")
    assert w.stop(wait=True, timeout=15)  # its latency is measured by benchmarks/studio_latency.py
    assert w.image is not None and max(w.image.shape[-2:]) == 64 and w.result is None
    assert rec.statuses[-1] == (worker_mod.STOPPED, "done") and rec.busy[-1] is None


def test_step_counts_are_honest_with_a_preview_stage(setup, monkeypatch):
    spy = StylizeSpy(worker_mod.stylize)
    monkeypatch.setattr(worker_mod, "stylize", spy)
    w, holder, rec = setup(steps=12)
    monkeypatch.setattr(w.pace, "preview_size", lambda s: 32)  # force a preview stage at 32 px
    w.run()
    assert w.wait(60) and w.error is None
    steps = spy.calls[0]["kwargs"]["steps"]
    assert isinstance(steps, list) and sum(steps) == 12  # the preview steps count towards the slider's 12
    infos = [info for _, _, info in rec.previews if info is not None]
    assert {info.steps for info in infos} == {12} and infos[-1].step == 12
    assert w.result.steps == 12 and "Done: 12 steps" in rec.statuses[-1][0]


def test_error_in_stylize_is_readable(setup, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(worker_mod, "stylize", broken)
    w, _, rec = setup(steps=5)
    w.run()
    assert w.wait(30)
    assert w.error == "simulated failure" and rec.statuses[-1] == ("simulated failure", "error")


def test_run_that_does_not_fit_is_refused(setup, monkeypatch):
    huge = budget.Calibration("cpu", "fp32", 0.001, 1e-7, bytes_per_pixel=1e15, base_bytes=0)
    monkeypatch.setattr(budget, "calibrate", lambda *a, **k: huge)
    w, _, rec = setup()
    w.run()
    assert w.wait(30)
    assert "would not fit in memory" in w.error and "smaller size" in w.error and w.calls == []


def test_pooling_twin_shares_weights_and_matches_a_loaded_avg_model(model):
    twin = worker_mod.pooling_twin(model, "avg")
    loaded = stlib.load_vgg19("random", pooling="avg")
    assert twin.layers.conv1_1.weight is model.layers.conv1_1.weight  # shared, not copied
    assert isinstance(twin.layers.pool1, torch.nn.AvgPool2d) and isinstance(model.layers.pool1, torch.nn.MaxPool2d)
    image = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(twin(image, ["relu3_1"])["relu3_1"], loaded(image, ["relu3_1"])["relu3_1"])
    assert worker_mod.pooling_twin(model, "max") is model


def test_balance_matches_a_hand_computation(model):
    content = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(2))
    style = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(3))
    s = StudioSettings("c", "s", 2.0, 1.0, {"relu1_1": 3.0, "relu2_1": 0.5}, 0.0, 40, 10)
    got = sweeps.balance(model, content, style, s)

    def naive_gram(f):
        c = f.shape[1]
        flat = f[0].reshape(c, -1).double()
        return flat @ flat.T / f[0].numel()

    with torch.no_grad():
        fc = model(content, ["relu1_1", "relu2_1", "relu4_2"])
        fs = model(style, ["relu1_1", "relu2_1", "relu4_2"])
        style_term = sum(w * ((naive_gram(fc[n]) - naive_gram(fs[n])) ** 2).mean() for n, w in s.style_layers.items())
        content_term = ((fc["relu4_2"].double() - fs["relu4_2"].double()) ** 2).mean()
    assert got["style"] == pytest.approx(float(style_term), rel=1e-4)
    assert got["content"] == pytest.approx(float(content_term), rel=1e-4)
    assert got["style_weight"] == pytest.approx(2.0 * float(content_term / style_term), rel=1e-4)


def test_sweep_plans():
    s = StudioSettings("c", "s", 1.0, 1e5, {"relu1_1": 1.0, "relu3_1": 20.0}, 5.0, 64, 10)
    ratio = sweeps.sweep_plan("ratio", s, 4, {"style_weight": 1e3, "style": 1.0, "tv": 1.0, "content": 1.0})
    lo, hi = sweeps.RATIO_SPAN
    assert [c.style_weight for _, c in ratio] == pytest.approx([1e3 * 10 ** (lo + (hi - lo) * i / 3) for i in range(4)])
    assert ratio[0][0] == f"style/content {format_number(ratio[0][1].style_weight)}"
    tv = sweeps.sweep_plan("tv", s, 4, {"style_weight": 1.0, "style": 2.0, "tv": 0.5, "content": 1.0})
    assert tv[0][1].tv_weight == 0 and tv[-1][1].tv_weight == pytest.approx(1e5 * 2.0 / 0.5 * 10 ** sweeps.TV_SPAN[1])
    assert [c.init for _, c in sweeps.sweep_plan("init", s)] == ["content", "palette", "noise", "style"]
    assert [c.pooling for _, c in sweeps.sweep_plan("pooling", s)] == ["max", "avg"]
    assert [c.optimizer for _, c in sweeps.sweep_plan("optimizer", s)] == ["lbfgs", "adam"]
    weights = {n: float(i + 1) for i, n in enumerate(stlib.STYLE_LAYERS)}
    layers = sweeps.sweep_plan("layers", s, 5, layer_weights=weights)
    assert [c.style_layers for _, c in layers][1] == {"relu1_1": 1.0, "relu2_1": 2.0}
    single = sweeps.sweep_plan("layer", s, 5, layer_weights=weights)
    assert [list(c.style_layers) for _, c in single] == [[n] for n in stlib.STYLE_LAYERS]
    with pytest.raises(ValueError, match="kind must be one of"):
        sweeps.sweep_plan("colours", s)


def test_abortable_interrupts_forward_and_backward_of_its_own_thread_only(model):
    flag = threading.Event()
    image = torch.rand(1, 3, 32, 32)
    with worker_mod.abortable(model, flag):
        x = image.clone().requires_grad_(True)
        loss = model(x, ["relu2_1"])["relu2_1"].square().mean()  # flag clear: runs normally
        flag.set()
        with pytest.raises(worker_mod.Abort):
            loss.backward()  # interrupted between layers of the backward pass
        with pytest.raises(worker_mod.Abort):
            model(image, ["relu1_1"])  # and before the first layer of a forward pass
        other = {}
        thread = threading.Thread(target=lambda: other.update(out=model(image, ["relu1_1"])))
        thread.start()
        thread.join()
        assert other["out"]["relu1_1"].shape == (1, 64, 32, 32)  # another thread is not interrupted
    assert model(image, ["relu1_1"])["relu1_1"].shape == (1, 64, 32, 32)  # hooks removed on exit
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in model.layers.children())


def test_worker_reports_each_layers_share_live(setup):
    from stlib.shares import loss_shares

    w, holder, rec = setup(steps=6, shares_every_s=0.0, preview=None)
    seen = []
    rec.on_shares = lambda shares, step: seen.append((shares, step))
    assert w.run() and w.wait(60)
    assert seen and w.result is not None
    shares, step = seen[-1]
    assert step == w.result.steps and shares is w.shares
    layers = holder.s.style_layers
    assert shares.loss == pytest.approx(loss_shares(w.result.history[-1]["layers"], layers))  # the step's own losses
    assert set(shares.gradient) == set(layers) and sum(shares.gradient.values()) == pytest.approx(1.0)
    assert all(v > 0 for v in shares.gradient.values())


def test_the_stroke_size_slider_reaches_stylize(setup, monkeypatch):
    spy = StylizeSpy(worker_mod.stylize)
    monkeypatch.setattr(worker_mod, "stylize", spy)
    w, holder, rec = setup(steps=3, preview=None)
    holder.s = StudioSettings(**{**holder.s.__dict__, "style_scale": 2.0})
    assert w.run() and w.wait(60)
    assert spy.calls[-1]["kwargs"]["style_scale"] == 2.0
    assert "style scale 1 \u2192 2" in holder.s.changes_from(StudioSettings(**{**holder.s.__dict__, "style_scale": 1.0}))
