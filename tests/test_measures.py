"""stlib.measures (the numbers behind the course's figure claims) and course.claim."""

import math

import pytest
import torch
import torch.nn.functional as F

from stlib import course, measures


def _blocks(block, size=96, seed=0):
    """A grey image of random square blocks ``block`` px wide: its pattern has a known size."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 1, size // block, size // block, generator=g)
    return F.interpolate(small, scale_factor=block, mode="nearest").expand(1, 3, -1, -1).contiguous()


def test_ssim_is_one_for_the_same_image_and_falls_with_noise():
    image = _blocks(8)
    noise = torch.rand(image.shape, generator=torch.Generator().manual_seed(1))
    assert measures.ssim(image, image) == pytest.approx(1.0, abs=1e-12)
    values = [measures.ssim((image + a * (noise - 0.5)).clamp(0, 1), image) for a in (0.1, 0.4, 1.0)]
    assert values[0] > values[1] > values[2]


def test_ssim_matches_a_direct_computation_at_one_position():
    # An 11x11 image: the window fits exactly once, so SSIM is the formula with Gaussian-weighted statistics.
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(1, 3, 11, 11, generator=g), torch.rand(1, 3, 11, 11, generator=g)
    lx, ly = measures.luminance(x).double().flatten(), measures.luminance(y).double().flatten()
    c = torch.arange(11, dtype=torch.float64) - 5
    w = torch.exp(-(c**2) / (2 * 1.5**2))
    w = (w[:, None] * w[None, :]).flatten()
    w = w / w.sum()
    mx, my = (w * lx).sum(), (w * ly).sum()
    vx, vy = (w * (lx - mx) ** 2).sum(), (w * (ly - my) ** 2).sum()
    cov = (w * (lx - mx) * (ly - my)).sum()
    expected = ((2 * mx * my + 1e-4) * (2 * cov + 9e-4)) / ((mx**2 + my**2 + 1e-4) * (vx + vy + 9e-4))
    assert measures.ssim(x, y) == pytest.approx(float(expected), rel=1e-9)


def test_layout_similarity_sees_the_layout_and_not_the_palette_or_fine_texture():
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 96), indexing="ij")
    layout = torch.stack([xx, xx, xx]).unsqueeze(0)                     # dark left, light right
    grain = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    assert measures.layout_similarity(0.3 + 0.4 * layout, layout) == pytest.approx(1.0, abs=1e-9)
    assert measures.layout_similarity((layout + 0.3 * grain).clamp(0, 1), layout) > 0.95
    assert measures.layout_similarity(layout.flip(-1), layout) == pytest.approx(-1.0, abs=1e-9)
    assert abs(measures.layout_similarity(grain, layout)) < 0.3


def test_pattern_scale_grows_with_the_size_of_the_pattern():
    scales = [measures.pattern_scale(_blocks(b)) for b in (2, 4, 8, 16)]
    assert all(a < b for a, b in zip(scales, scales[1:])), scales
    # Random blocks b px wide: along an axis the correlation falls linearly to 0 at b, so 1/2 near b/2.
    assert scales[2] == pytest.approx(8 / 2, rel=0.35)


def test_measures_refuse_what_they_cannot_measure():
    with pytest.raises(ValueError, match="same size"):
        measures.ssim(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 20))
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        measures.layout_similarity(torch.rand(3, 16, 16), torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="flat image"):
        measures.pattern_scale(torch.full((1, 3, 16, 16), 0.5))


def test_claim_prints_only_the_statement_in_fast_mode_and_asserts_nothing(monkeypatch, capsys):
    monkeypatch.setenv("STLIB_FAST", "1")
    course.claim("the loss falls", False, "it rose by 3 %")
    assert capsys.readouterr().out == "Claim (measured at students' sizes, not in fast mode): the loss falls.\n"


def test_claim_states_what_was_measured_and_raises_when_it_fails_in_normal_mode(monkeypatch, capsys):
    monkeypatch.delenv("STLIB_FAST", raising=False)
    course.claim("the loss falls", True, "-97 %")
    assert capsys.readouterr().out == "Checked: the loss falls (-97 %).\n"
    with pytest.raises(course.ClaimError, match=r"claims that the loss falls, but .* \(it rose by 3 %\)"):
        course.claim("the loss falls.", False, "it rose by 3 %")
    with pytest.raises(ValueError, match="statement"):
        course.claim("  ", True)
