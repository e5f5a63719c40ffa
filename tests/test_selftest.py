"""The real-weights check (``stlib.selftest``, ``stlib weights selftest``).

``test_imagenet_defaults_work`` runs only where ImageNet weights already exist on disk (the torch hub cache, an
exported ImageNet file there, or ``STLIB_TEST_IMAGENET=/path/to/weights.pth``): a maintainer's laptop, Colab.
It never downloads. Everything else here runs on the offline weights.
"""

import os
from pathlib import Path

import pytest
import torch

import stlib
from stlib import cli
from stlib.selftest import (SELFTEST_SIZE, SELFTEST_STEPS, SelftestResult, cannot_judge, content_correlation,
                            run_selftest, selftest_line)
from stlib.weights import EXPORT_NAME, cache_dir, cached_imagenet_path, weights_origin


def imagenet_weights_on_disk() -> "Path | None":
    """A file of ImageNet VGG-19 weights that is already here, or None (nothing is downloaded)."""
    candidates = [os.environ.get("STLIB_TEST_IMAGENET", ""), cached_imagenet_path(), cache_dir() / EXPORT_NAME]
    for path in (Path(c) for c in candidates if str(c)):
        if path.is_file() and weights_origin(f"file:{path}") == "imagenet":
            return path
    return None


@pytest.mark.skipif(imagenet_weights_on_disk() is None,
                    reason="no ImageNet VGG-19 weights on this machine (cached, or STLIB_TEST_IMAGENET=FILE)")
def test_imagenet_defaults_work():
    """256 px, chelsea x starry_night, 100 steps, stylize's defaults for ImageNet weights (issue 20)."""
    model = stlib.load_vgg19(str(imagenet_weights_on_disk()))
    result = run_selftest(model, SELFTEST_SIZE, SELFTEST_STEPS)
    assert result.style_ratio <= 0.10, result.line()
    assert min(result.layer_shares.values()) >= 0.01, result.line()
    assert result.content_correlation >= 0.5, result.line()


def test_offline_weights_are_not_judged(vgg, capsys):
    assert "cannot judge stlib's seeded offline (random) weights" in selftest_line(vgg)
    assert cannot_judge("imagenet") is None
    assert cli.main(["weights", "selftest", "--weights", "random"]) == cli.NOT_JUDGED_EXIT
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("weights selftest: cannot judge"), out


def test_content_correlation_oracle():
    gen = torch.Generator().manual_seed(0)
    photo = stlib.resize(stlib.load_image("chelsea"), 64)
    assert content_correlation(photo, photo) == pytest.approx(1.0, abs=1e-6)
    assert content_correlation(1 - photo, photo) == pytest.approx(-1.0, abs=1e-6)  # light and dark swapped
    noise = torch.rand(photo.shape, generator=gen)
    assert abs(content_correlation(noise, photo)) < 0.3
    # Fine texture added on top (what style transfer does) keeps the blurred layout.
    textured = (photo + 0.3 * (torch.rand(photo.shape, generator=gen) - 0.5)).clamp(0, 1)
    assert content_correlation(textured, photo) > 0.9


def test_the_verdict_names_what_fell_short():
    good = SelftestResult(0.05, {"relu1_1": 0.5, "relu5_1": 0.5}, 0.8, "imagenet", 256, 100)
    assert good.passed and good.line().startswith("weights selftest PASSED")
    bad = SelftestResult(0.2, {"relu1_1": 0.995, "relu5_1": 0.005}, 0.3, "imagenet", 256, 100)
    assert not bad.passed and len(bad.failures) == 3
    line = bad.line()
    assert "FAILED" in line and "relu5_1 0.50 %" in line and "report" in line and "\n" not in line


def test_the_check_measures_a_real_run(vgg):
    """On the offline weights at a tiny size: the numbers are computed from the run (not judged)."""
    result = run_selftest(vgg, size=64, steps=5)
    assert sum(result.layer_shares.values()) == pytest.approx(1.0)
    assert set(result.layer_shares) == set(stlib.STYLE_LAYERS)
    assert 0 < result.style_ratio < 1  # five L-BFGS steps lower the style loss
    assert -1 <= result.content_correlation <= 1
