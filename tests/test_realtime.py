"""Feed-forward style networks (issue 21): the network, its training, style files and the exercise check.

Training runs here are tiny (48 px crops, a few steps, the seeded offline VGG-19) and run in float32 unless a
test is about the engine's precision, so that they are exact and reproducible at any thread count.
"""

import copy

import pytest
import torch
import torch.nn.functional as F

import stlib
from stlib import checks
from stlib.images import load_image
from stlib.presets import OFFLINE
from stlib.style_file import FORMAT, StyleFileError, checksum, load_style
from stlib.style_training import (HELD_OUT_PHOTOS, TRAIN_PHOTOS, TrainedStyle, apply_net, random_crops,
                                  score, train_style)
from stlib.transform_net import NetConfig, TransformNet

TINY = NetConfig(channels=4, residual_blocks=1)


def _train(vgg, **overrides):
    options = dict(model=vgg, size=48, batch_size=2, steps=4, lr=3e-3, net_config=TINY, precision="fp32",
                   every=2, progress=False, seed=0)
    options.update(overrides)
    return train_style("swirls", **options)


# ------------------------------------------------------------------------------------------------ the network
@pytest.mark.parametrize("upsampling", ["nearest", "transposed"])
def test_network_keeps_any_size_and_starts_as_the_identity(upsampling):
    net = TransformNet(channels=4, residual_blocks=2, upsampling=upsampling)
    photo = torch.rand(2, 3, 37, 50, generator=torch.Generator().manual_seed(1))
    out = net(photo)
    assert out.shape == photo.shape and out.dtype == torch.float32
    # The last convolution starts at zero: the untrained network returns the photo (clamped to [1e-3, 1 - 1e-3]).
    assert torch.allclose(out, photo.clamp(1e-3, 1 - 1e-3), atol=1e-6)
    with torch.no_grad():
        net.out.conv.bias.fill_(50.0)
    with torch.no_grad():
        assert float(net(photo).min()) > 0.99 and float(net(photo).max()) <= 1.0


def test_instance_norm_makes_each_output_independent_of_the_batch():
    """A photo's output with instance norm does not depend on the other photos; with batch norm (training) it does."""
    photos = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    for norm, independent in (("instance", True), ("batch", False)):
        torch.manual_seed(0)
        net = TransformNet(channels=4, residual_blocks=1, norm=norm)
        torch.nn.init.normal_(net.out.conv.weight, std=0.1)  # a network that changes the photo
        net.train()
        alone, batched = net(photos[:1]), net(photos)[:1]
        assert torch.allclose(alone, batched, atol=1e-6) is independent, norm


def test_net_config_is_checked_and_round_trips():
    assert NetConfig.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(ValueError, match="norm must be one of"):
        NetConfig(norm="layer")
    with pytest.raises(ValueError, match="upsampling must be one of"):
        NetConfig(upsampling="bilinear")
    with pytest.raises(ValueError, match="unknown network settings"):
        NetConfig.from_dict({"channels": 4, "depth": 3})


def test_apply_blends_with_the_photo():
    net = TransformNet(TINY)
    torch.nn.init.normal_(net.out.conv.weight, std=0.2)
    photo = torch.rand(1, 3, 32, 40, generator=torch.Generator().manual_seed(3))
    full = apply_net(net, photo)
    assert torch.allclose(apply_net(net, photo, strength=0.0), photo)
    assert torch.allclose(apply_net(net, photo, strength=0.25), 0.25 * full + 0.75 * photo, atol=1e-6)
    assert not torch.allclose(full, photo, atol=1e-3)
    with pytest.raises(ValueError, match="strength must be between 0"):
        apply_net(net, photo, strength=1.5)


def test_random_crops_are_seeded_augmented_and_square():
    photos = [load_image(name, 96) for name in TRAIN_PHOTOS]
    a = random_crops(photos, 6, 40, torch.Generator().manual_seed(5))
    b = random_crops(photos, 6, 40, torch.Generator().manual_seed(5))
    c = random_crops(photos, 6, 40, torch.Generator().manual_seed(6))
    assert a.shape == (6, 3, 40, 40) and torch.equal(a, b) and not torch.equal(a, c)
    assert set(HELD_OUT_PHOTOS).isdisjoint(TRAIN_PHOTOS)
    # Crops of one photo at a fixed scale and position: one in two is the mirror image (a flip).
    flat = torch.linspace(0, 1, 40).expand(1, 3, 40, 40).contiguous()
    crops = random_crops([flat], 20, 40, torch.Generator().manual_seed(0), scales=(1.0, 1.0))
    flipped = sum(torch.allclose(crop, flat[0].flip(-1), atol=1e-6) for crop in crops)
    assert 0 < flipped < 20 and sum(torch.allclose(crop, flat[0], atol=1e-6) for crop in crops) == 20 - flipped


# ------------------------------------------------------------------------------------------------ training
def test_training_lowers_the_objective_on_held_out_photos(vgg):
    """The objective of the network's output on a photo it never saw falls below the untrained network's (the
    photo itself), scored in float32 with the same targets as ``stylize`` would use."""
    result = _train(vgg, steps=12, size=48)
    terms = OFFLINE
    painting = load_image("swirls", 48)
    for name in HELD_OUT_PHOTOS:
        photo = load_image(name, 48)
        before = score(vgg, photo, photo, painting, terms)  # the untrained network returns the photo
        after = score(vgg, result.apply(photo), photo, painting, terms)
        assert after < 0.8 * before, (name, before, after)
    assert result.settings["steps"] == 12 and result.stopped is None
    assert [h["step"] for h in result.history] == list(range(1, 13))
    assert sum(h["best"] for h in result.history) == 1


def test_bf16_training_lowers_the_objective_too(vgg):
    """The engine's precision ("auto": bf16 autocast on this CPU where it has AMX/AVX-512-BF16)."""
    result = _train(vgg, steps=6, precision="auto")
    probes = [h["probe"] for h in result.history if "probe" in h]
    assert result.settings["best_probe"] <= min(probes) and min(probes) < probes[0]


def test_seeded_training_is_reproducible(vgg):
    a, b, c = _train(vgg, seed=3), _train(vgg, seed=3), _train(vgg, seed=4)
    state_a, state_b, state_c = a.net.state_dict(), b.net.state_dict(), c.net.state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert not all(torch.equal(state_a[k], state_c[k]) for k in state_a)
    assert [h["total"] for h in a.history] == [h["total"] for h in b.history]


def test_ctrl_c_keeps_the_best_weights(vgg):
    """A KeyboardInterrupt during training returns the weights of the best probe objective seen so far."""
    seen = []

    def callback(info):
        seen.append((info.probe, copy.deepcopy(info.net.state_dict())))
        if len(seen) == 3:
            raise KeyboardInterrupt

    result = _train(vgg, steps=20, every=1, callback=callback)
    assert result.stopped == "interrupted" and result.settings["steps"] == 3
    best_probe, best_state = min(seen, key=lambda pair: pair[0])
    assert result.settings["best_probe"] == pytest.approx(best_probe, rel=1e-6)
    state = result.net.state_dict()
    assert all(torch.equal(state[k], best_state[k]) for k in state)


def test_stop_event_and_time_limit(vgg):
    class Stop:
        def is_set(self):
            return True

    result = _train(vgg, stop=Stop())
    assert result.stopped == "interrupted" and result.history == []
    limited = _train(vgg, steps=50, time_limit=1e-9)
    assert limited.settings["steps"] == 1 and "time limit" in limited.stopped


def test_a_non_finite_objective_stops_training_and_keeps_the_best_weights(vgg):
    result = _train(vgg, steps=10, style_weight=float("nan"))
    assert result.stopped.startswith("the objective became nan at step 1") and result.history == []
    assert result.settings["best_step"] == 0  # the start: the untrained network, which returns the photo
    photo = load_image("chelsea", max_size=48)
    assert torch.allclose(apply_net(result.net, photo), photo, atol=2e-3)


def test_training_refuses_bad_settings(vgg):
    with pytest.raises(ValueError, match="size=16 is too small"):
        _train(vgg, size=16)
    with pytest.raises(ValueError, match="batch_size must be a whole number"):
        _train(vgg, batch_size=0)
    with pytest.raises(ValueError, match="time_limit must be a positive number"):
        _train(vgg, time_limit=-1)


# ------------------------------------------------------------------------------------------------ style files
@pytest.fixture(scope="module")
def trained(vgg):
    return _train(vgg, steps=2)


def test_save_load_round_trip(trained, tmp_path):
    path = trained.save(tmp_path / "swirls.pt")
    loaded = load_style(path)
    assert isinstance(loaded, TrainedStyle) and loaded.net.config == TINY
    assert loaded.settings == {**trained.settings, "style_layers": trained.settings["style_layers"]}
    original = trained.net.state_dict()
    assert all(torch.equal(v, original[k]) for k, v in loaded.net.state_dict().items())
    photo = load_image("chelsea", 60)
    assert torch.equal(loaded.apply(photo), trained.apply(photo))
    assert not list(tmp_path.glob("*.part"))
    # Johnson's network in float32 is a few MB.
    big = TrainedStyle(net=TransformNet(NetConfig()), settings={"style": "none"}).save(tmp_path / "johnson.pt")
    assert 5e6 < big.stat().st_size < 8e6


@pytest.mark.parametrize("norm, upsampling", [("batch", "transposed"), ("instance", "transposed")])
def test_other_architectures_round_trip(norm, upsampling, tmp_path):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = TransformNet(channels=4, residual_blocks=1, norm=norm, upsampling=upsampling)
        torch.nn.init.normal_(net.out.conv.weight, std=0.1)
    loaded = load_style(TrainedStyle(net=net, settings={"style": "x"}).save(tmp_path / "s.pt"))
    assert loaded.net.config == net.config
    state = net.state_dict()
    assert all(torch.equal(v, state[k]) and v.dtype == state[k].dtype for k, v in loaded.net.state_dict().items())
    photo = torch.rand(1, 3, 36, 44, generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded.apply(photo), apply_net(net, photo))


def _payload(trained):
    state = {k: v.clone() for k, v in trained.net.state_dict().items()}
    config, settings = trained.net.config.to_dict(), dict(trained.settings)
    return {"format": FORMAT, "version": 1, "net": config, "settings": settings, "state": state,
            "sha256": checksum(config, settings, state)}


def test_bad_style_files_are_refused(trained, tmp_path, vgg):
    good = _payload(trained)
    cases = {}
    stlib.save_image(torch.rand(1, 3, 32, 32), tmp_path / "photo.png")
    cases["photo.png"] = "is not a trained style"
    (tmp_path / "notes.txt").write_text("hello")
    cases["notes.txt"] = "is not a trained style"
    torch.save({k: v for k, v in vgg.layers.state_dict().items() if k.startswith("conv1")}, tmp_path / "vgg.pth")
    cases["vgg.pth"] = "is a VGG-19 weights file, not a trained style"
    torch.save({"model": {"w": torch.ones(2)}}, tmp_path / "other.pt")
    cases["other.pt"] = "is a PyTorch file but not a trained style"
    torch.save({**good, "version": 99}, tmp_path / "newer.pt")
    cases["newer.pt"] = "upgrade stlib"
    edited = copy.deepcopy(good)
    edited["state"]["out.conv.bias"] += 1.0
    torch.save(edited, tmp_path / "edited.pt")
    cases["edited.pt"] = "damaged or was edited: its checksum does not match"
    other = TransformNet(channels=6, residual_blocks=1).state_dict()  # weights of another network ...
    mismatched = {**good, "state": other, "sha256": checksum(good["net"], good["settings"], other)}  # ... checksummed
    torch.save(mismatched, tmp_path / "mismatched.pt")
    cases["mismatched.pt"] = "does not match the network it describes"
    fewer = {k: v for k, v in good["state"].items() if not k.startswith("residuals")}
    torch.save({**good, "state": fewer, "sha256": checksum(good["net"], good["settings"], fewer)}, tmp_path / "fewer.pt")
    cases["fewer.pt"] = "does not match the network it describes"
    nan_state = {k: v.clone() for k, v in good["state"].items()}
    nan_state["out.conv.bias"][0] = float("nan")
    torch.save({**good, "state": nan_state, "sha256": checksum(good["net"], good["settings"], nan_state)},
               tmp_path / "nan.pt")
    cases["nan.pt"] = "non-finite values"
    trained.save(tmp_path / "whole.pt")
    data = (tmp_path / "whole.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    cases["truncated.pt"] = "is not a trained style"
    cases["missing.pt"] = "no such file"
    for name, phrase in cases.items():
        with pytest.raises(StyleFileError, match=phrase):
            load_style(tmp_path / name)
    with pytest.raises(StyleFileError, match="is a folder"):
        load_style(tmp_path)


# ------------------------------------------------------------------------------------------------ the exercise
def test_instance_norm_check(capsys):
    namespace = {"torch": torch}
    exec(checks.SOLUTIONS["instance_norm"], namespace)  # noqa: S102 - the solution shown in notebook 08
    assert checks.check_instance_norm(namespace["instance_norm"]).ok

    def stub(x, eps):
        raise NotImplementedError

    assert checks.check_instance_norm(stub).status == "todo"
    wrong = {
        "batch statistics": lambda x, eps: F.batch_norm(x, None, None, training=True, eps=eps),
        "layer statistics": lambda x, eps: F.layer_norm(x, x.shape[1:], eps=eps),
        "unbiased": lambda x, eps: (x - x.mean((2, 3), keepdim=True)) / (x.var((2, 3), keepdim=True) + eps).sqrt(),
        "NaN or inf": lambda x, eps: (x - x.mean((2, 3), keepdim=True)) / x.std((2, 3), keepdim=True, unbiased=False),
        "outside the square root": lambda x, eps: (x - x.mean((2, 3), keepdim=True)) / (
            x.std((2, 3), keepdim=True, unbiased=False) + eps),
        "in place": lambda x, eps: x.sub_(x.mean((2, 3), keepdim=True)).div_(
            (x.var((2, 3), keepdim=True, unbiased=False) + eps).sqrt()),
    }
    for phrase, fn in wrong.items():
        result = checks.check_instance_norm(fn)
        assert result.status == "wrong" and phrase in result.message, (phrase, result.message)
    capsys.readouterr()
