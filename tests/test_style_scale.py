"""``stylize``'s ``style_scale`` (brush-stroke size), ``balance`` (per-layer weights by measurement) and the
per-layer shares a result carries."""

import pytest
import torch

import stlib
import stlib.transfer as transfer
from stlib.measures import pattern_scale


@pytest.fixture
def spy_targets(monkeypatch):
    """Records the shape of every style image ``compute_targets`` receives."""
    seen = []
    real = transfer.compute_targets

    def spy(model, content, styles, *args, **kwargs):
        seen.append((tuple(content.shape[-2:]), [tuple(s.shape[-2:]) for s in styles]))
        return real(model, content, styles, *args, **kwargs)

    monkeypatch.setattr(transfer, "compute_targets", spy)
    return seen


@pytest.mark.parametrize("scale, expected_long_edge", [(0.5, 32), (1.0, 64), (2.0, 128)])
def test_style_scale_resizes_the_painting_relative_to_the_output(vgg, tiny_pair, spy_targets, scale, expected_long_edge):
    content, _ = tiny_pair
    painting = torch.rand(1, 3, 200, 100, generator=torch.Generator().manual_seed(0))  # tall: long edge is H
    result = stlib.stylize(content, painting, model=vgg, size=64, steps=1, style_scale=scale, progress=False)
    (content_shape, style_shapes), = spy_targets
    assert content_shape == (48, 64) and max(style_shapes[0]) == expected_long_edge
    assert result.settings["style_scale"] == scale


def test_style_scale_applies_at_every_scale_of_a_coarse_to_fine_run(vgg, tiny_pair, spy_targets):
    content, style = tiny_pair
    stlib.stylize(content, stlib.resize(style, 256), model=vgg, size=64, scales=2, steps=1, style_scale=2.0,
                  progress=False)
    assert [max(s[1][0]) for s in spy_targets] == [64, 128]  # twice the 32 px and 64 px scales


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "big"])
def test_a_bad_style_scale_is_refused(vgg, tiny_pair, bad):
    content, style = tiny_pair
    with pytest.raises(ValueError, match="style_scale"):
        stlib.stylize(content, style, model=vgg, size=64, steps=1, style_scale=bad, progress=False)


def test_a_style_scale_too_small_for_the_deepest_layer_says_so(vgg, tiny_pair):
    content, style = tiny_pair
    with pytest.raises(ValueError, match="style image"):
        stlib.stylize(content, style, model=vgg, size=64, steps=1, style_scale=0.1, progress=False)


@pytest.mark.parametrize("by", ["loss", "gradient"])
def test_balance_gives_every_layer_its_share_at_the_start(vgg, tiny_pair, by):
    content, style = tiny_pair
    result = stlib.stylize(content, style, model=vgg, size=64, steps=2, balance=by, precision="fp32", progress=False)
    start = result.shares["start"]
    measured = start.loss if by == "loss" else start.gradient
    assert measured == pytest.approx(dict.fromkeys(stlib.STYLE_LAYERS, 0.2), rel=1e-3)
    if by == "loss":  # the history's own losses agree: step 1 is the start image
        assert result.layer_shares(1) == pytest.approx(dict.fromkeys(stlib.STYLE_LAYERS, 0.2), rel=1e-3)
    assert result.settings["balance"] == by and result.settings["style_layers"] != stlib.presets.OFFLINE.style_layers


def test_diagnostics_measure_the_shares_at_start_and_end(vgg, tiny_pair):
    content, style = tiny_pair
    plain = stlib.stylize(content, style, model=vgg, size=64, steps=2, progress=False)
    assert plain.shares == {}  # measuring costs about four steps: only when asked (or when balancing)
    result = stlib.stylize(content, style, model=vgg, size=64, steps=2, diagnostics=True, precision="fp32",
                           progress=False)
    assert set(result.shares) == {"start", "end"}
    assert result.shares["start"].loss == pytest.approx(result.layer_shares(1), rel=1e-4)
    for shares in result.shares.values():
        assert sum(shares.gradient.values()) == pytest.approx(1.0)


def test_notebook_06s_pattern_grows_with_style_scale_at_students_size(vgg):
    """Notebook 06's claim, at its normal size (192 px on a CPU), steps (60) and precision ("auto": bf16 here)."""
    photo, stripes = stlib.load_image("astronaut", 192), stlib.load_image("stripes", 384)
    widths = [pattern_scale(stlib.stylize(photo, stripes, style_scale=s, size=192, steps=60, model=vgg,
                                          precision="auto", progress=False).image) for s in (0.5, 1.0, 2.0)]
    assert widths[0] < widths[1] < widths[2], widths


def test_the_command_line_passes_style_scale_and_balance(monkeypatch, tmp_path):
    from stlib import cli

    seen = {}

    def fake_run(content, style, out, **kwargs):
        seen.update(kwargs["options"])
        raise SystemExit(0)

    real_run = cli._run
    monkeypatch.setattr(cli, "_run", fake_run)
    args = cli.build_parser().parse_args(
        ["transfer", "astronaut", "swirls", "-o", str(tmp_path / "o.png"), "--style-scale", "2", "--balance", "loss"])
    args.interrupts = None
    with pytest.raises(SystemExit):
        cli._cmd_transfer(args)
    assert seen["style_scale"] == 2.0 and seen["balance"] == "loss"
    monkeypatch.setattr(cli, "_run", real_run)
    assert cli.main(["transfer", "astronaut", "swirls", "-o", str(tmp_path / "o.png"), "--style-scale", "9",
                     "--weights", "random", "--size", "64", "--steps", "1", "--no-estimate"]) == cli.USER_ERROR_EXIT
