"""benchmarks/realtime_sweep.py's variants (issue 21's tuning): parsed as written, and every experimental change
to the network is undone when its block ends (the sweep runs many variants in one process)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from stlib import presets, style_training
from stlib.transform_net import NetConfig, TransformNet


@pytest.fixture(scope="module")
def sweep():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "realtime_sweep.py"
    spec = importlib.util.spec_from_file_location("realtime_sweep", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_variants_are_parsed_and_unknown_keys_refused(sweep):
    changes, settings = sweep.parse_variant("noise=8+outinit=1+lr=0.005+layers=3,3,2,1,1+photos=coffee,astronaut+net=8x2")
    assert changes == {"noise": 8.0, "outinit": 1.0,
                       "layers": {"relu1_1": 3.0, "relu2_1": 3.0, "relu3_1": 2.0, "relu4_1": 1.0, "relu5_1": 1.0}}
    assert settings == {"lr": 0.005, "photos": ("coffee", "astronaut"),
                        "net_config": NetConfig(channels=8, residual_blocks=2)}
    assert sweep.parse_variant("base") == ({}, {})
    with pytest.raises(SystemExit, match="unknown setting 'momentum'"):
        sweep.parse_variant("base+momentum=0.9")


def _photo():
    return torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(3)).clamp(0.05, 0.95)


def test_network_changes_apply_inside_the_block_and_are_undone_after(sweep):
    photo = _photo()
    with sweep.network_changes({"noise": 2.0, "outinit": 1.0, "layers": {"relu1_1": 7.0}}):
        torch.manual_seed(0)
        net = TransformNet(channels=4, residual_blocks=1).eval()
        assert net.out.conv.in_channels == 4 + 2          # the noise channels reach the last convolution
        with torch.no_grad():
            first, second = net(photo), net(photo)
        assert torch.equal(first, second)                   # applied: the noise is seeded
        assert float((first - photo).abs().max()) > 1e-3    # a random start: no longer the identity
        assert style_training.preset_for("random").style_layers == {"relu1_1": 7.0}
    # Outside the block: the zero-started network returns the photo, and the preset is the library's again.
    plain = TransformNet(channels=4, residual_blocks=1)
    assert plain.out.conv.in_channels == 4
    assert torch.allclose(plain(photo), photo, atol=1e-6)
    assert style_training.preset_for("random") == presets.OFFLINE


def test_the_tanh_head_bounds_the_change(sweep):
    photo = _photo()
    with sweep.network_changes({"tanh": 0.25, "outinit": 30.0}):
        torch.manual_seed(0)
        with torch.no_grad():
            out = TransformNet(channels=4, residual_blocks=1)(photo)
    assert float((out - photo).abs().max()) <= 0.25 + 1e-6
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_the_colour_path_maps_every_pixel_alike_and_is_undone_after(sweep):
    """``colour=S``: a 1x1 convolution of the photo, times S, added to the logit change; zero at the start."""
    photo = _photo()
    with sweep.network_changes({"colour": 2.0}):
        net = TransformNet(channels=4, residual_blocks=1)
        assert sweep.parse_variant("colour=2")[0] == {"colour": 2.0}
        with torch.no_grad():
            assert torch.allclose(net(photo), photo, atol=1e-6)  # zero-started: still the photo
            net.colour.bias.copy_(torch.tensor([0.5, 0.0, -0.5]))
            out = net(photo)
    logit = torch.logit(photo, eps=1e-3)
    expected = torch.sigmoid(logit + 2.0 * torch.tensor([0.5, 0.0, -0.5]).view(1, 3, 1, 1))  # by hand
    assert torch.allclose(out, expected, atol=1e-5)
    assert not hasattr(TransformNet(channels=4, residual_blocks=1), "colour")
