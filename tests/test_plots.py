"""Course figures: what they draw (pixels, curve values, channels, table rows) and that each is shown once."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

import stlib  # noqa: E402
from stlib import plots  # noqa: E402
from stlib.layers import receptive_field  # noqa: E402


@pytest.fixture(autouse=True)
def no_open_figures():
    """Every plotting function must leave pyplot without open figures (Jupyter would draw them a second time)."""
    plt.close("all")
    yield
    assert plt.get_fignums() == [], "a plotting function left a pyplot figure open"


def _gradient_image(h=12, w=20):
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([xx, yy, 1 - xx]).unsqueeze(0)  # (1, 3, H, W)


def _drawn_images(fig):
    return [ax.images[0].get_array() for ax in fig.axes if ax.images]


# ------------------------------------------------------------------------------------------------ show_images
def test_show_images_draws_the_pixels_with_titles():
    img = _gradient_image()
    fig = plots.show_images([img, img[0]], titles=["a batch of one", "channels first"])
    assert isinstance(fig, Figure)
    drawn = _drawn_images(fig)
    assert len(drawn) == 2
    expected = img[0].permute(1, 2, 0).numpy()
    for array in drawn:
        np.testing.assert_allclose(np.asarray(array), expected, atol=1e-6)
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["a batch of one", "channels first"]


def test_show_images_accepts_dicts_pil_names_and_results():
    img = _gradient_image()
    pil = Image.fromarray((img[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8))

    class Result:  # anything with an .image tensor, like StylizeResult
        image = img

    fig = plots.show_images({"pil": pil, "bundled": "swirls", "result": Result()}, ncols=2)
    drawn = _drawn_images(fig)
    assert len(drawn) == 3
    assert len(fig.axes) == 4  # a 2x2 grid; the spare axes is blank
    np.testing.assert_allclose(np.asarray(drawn[0]), np.asarray(pil) / 255, atol=1e-6)
    np.testing.assert_allclose(np.asarray(drawn[2]), img[0].permute(1, 2, 0).numpy(), atol=1e-6)
    assert np.asarray(drawn[1]).shape == (512, 512, 3)


def test_show_images_with_a_real_stylize_result(vgg):
    result = stlib.stylize(_gradient_image(40, 48), _gradient_image(32, 32), size=48, steps=1, model=vgg,
                           progress=False)
    fig = plots.show_images(result)
    np.testing.assert_allclose(np.asarray(_drawn_images(fig)[0]), result.image[0].permute(1, 2, 0).numpy(),
                               atol=1e-6)


def test_show_images_rejects_mismatched_titles_and_nothing():
    with pytest.raises(ValueError, match="one title per image"):
        plots.show_images([_gradient_image()], titles=["a", "b"])
    with pytest.raises(ValueError, match="at least one image"):
        plots.show_images([])


# ------------------------------------------------------------------------------------------------ plot_losses
def _history(values, dt=0.5):
    return [{"step": i + 1, "total": v, "style": v / 2, "content": 0.0, "tv": 0.0, "time": dt * (i + 1),
             "layers": {"style:relu1_1": v / 4}} for i, v in enumerate(values)]


def test_plot_losses_draws_each_run_against_steps():
    runs = {"fast": _history([8.0, 4.0, 2.0]), "slow": _history([8.0, 6.0, 5.0, 4.5])}
    fig = plots.plot_losses(runs)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"fast", "slow"}
    np.testing.assert_array_equal(lines["fast"].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(lines["slow"].get_ydata(), [8.0, 6.0, 5.0, 4.5])
    assert ax.get_yscale() == "log"
    assert ax.get_legend() is not None


def test_plot_losses_against_time_per_layer_and_linear():
    fig = plots.plot_losses({"run": _history([8.0, 4.0], dt=1.5)}, key="style:relu1_1", x="time", logy=False)
    line = fig.axes[0].get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), [1.5, 3.0])
    np.testing.assert_array_equal(line.get_ydata(), [2.0, 1.0])
    assert fig.axes[0].get_yscale() == "linear"
    assert "seconds" in fig.axes[0].get_xlabel()


def test_plot_losses_skips_zeros_on_a_log_axis():
    fig = plots.plot_losses({"content only": _history([3.0, 2.0])}, key="content")
    assert len(fig.axes[0].get_lines()[0].get_ydata()) == 0  # all zero: nothing to draw on a log scale


def test_plot_losses_draws_into_given_axes_and_leaves_it_open():
    fig, ax = plt.subplots()
    try:
        out = plots.plot_losses({"a": _history([1.0, 0.5])}, ax=ax)
        assert out is fig and len(ax.get_lines()) == 1
    finally:
        plt.close(fig)


def test_plot_losses_explains_bad_arguments():
    with pytest.raises(KeyError, match="available: content, style, total, tv, style:relu1_1"):
        plots.plot_losses({"a": _history([1.0])}, key="styel")
    with pytest.raises(ValueError, match="'step' or 'time'"):
        plots.plot_losses({"a": _history([1.0])}, x="wall")
    with pytest.raises(TypeError, match="history lists"):
        plots.plot_losses({"a": 3.0})


# ------------------------------------------------------------------------------------------------ feature maps
def test_show_feature_maps_picks_the_channels_that_vary_most():
    feats = torch.zeros(1, 10, 6, 6)
    for c in (2, 5, 7):
        feats[0, c] = torch.arange(36.0).reshape(6, 6) * c  # only these channels vary over space
    fig = plots.show_feature_maps(feats, n=3)
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles == ["ch 2", "ch 5", "ch 7"]
    np.testing.assert_array_equal(np.asarray(fig.axes[1].images[0].get_array()), feats[0, 5].numpy())


def test_show_feature_maps_first_channels_and_dict_rows():
    feats = {"relu1_1": torch.rand(1, 8, 6, 6), "relu2_1": torch.rand(1, 16, 3, 3)}
    fig = plots.show_feature_maps(feats, n=4, pick="first")
    rows = [ax for ax in fig.axes if ax.images]
    assert len(rows) == 8
    assert [ax.get_title() for ax in rows[:4]] == ["ch 0", "ch 1", "ch 2", "ch 3"]
    assert "relu2_1" in fig.axes[4].get_ylabel() and "16×3×3" in fig.axes[4].get_ylabel()


def test_show_feature_maps_rejects_batches_and_bad_pick():
    with pytest.raises(ValueError, match=r"\(1, C, H, W\)"):
        plots.show_feature_maps(torch.rand(2, 4, 3, 3))
    with pytest.raises(ValueError, match="pick"):
        plots.show_feature_maps(torch.rand(1, 4, 3, 3), pick="best")


# ------------------------------------------------------------------------------------------------ gram
def test_show_gram_draws_the_top_left_block():
    f = torch.rand(1, 80, 5, 5)
    gram = stlib.gram_matrix(f)
    fig = plots.show_gram(gram, channels=64, title="relu1_1")
    drawn = np.asarray(fig.axes[0].images[0].get_array())
    np.testing.assert_allclose(drawn, gram[0, :64, :64].numpy(), rtol=1e-6)
    assert fig.axes[0].get_title() == "relu1_1"


def test_show_gram_dict_side_by_side_and_errors():
    grams = {"a": torch.eye(4), "b": 2 * torch.eye(4).unsqueeze(0)}
    fig = plots.show_gram(grams, channels=None)
    heat = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in heat] == ["a", "b"]
    np.testing.assert_array_equal(np.asarray(heat[1].images[0].get_array()), 2 * np.eye(4))
    with pytest.raises(ValueError, match="pick one image"):
        plots.show_gram(torch.rand(2, 4, 4))


# ------------------------------------------------------------------------------------------------ layers
def test_layer_table_shapes_strides_and_receptive_fields(vgg):
    image = torch.rand(1, 3, 64, 96)
    rows = plots.layer_table(vgg, image)
    assert [r.name for r in rows] == list(stlib.VGG19_LAYERS)
    by_name = {r.name: r for r in rows}
    assert by_name["relu1_1"].shape == (64, 64, 96)
    assert by_name["relu3_2"].shape == (256, 16, 24)  # two poolings: 64/4, 96/4
    assert by_name["pool5"].shape == (512, 2, 3)
    assert by_name["relu4_2"].stride == 8
    assert all(r.receptive_field == receptive_field(r.name) for r in rows)
    assert by_name["conv1_1"].receptive_field == 3


def test_format_layer_table_one_line_per_layer(vgg):
    rows = plots.layer_table(vgg, torch.rand(1, 3, 32, 32), ["relu2_1", "relu1_1"])
    lines = plots.format_layer_table(rows).splitlines()
    assert len(lines) == 3
    assert lines[1].split() == ["relu1_1", "64", "x", "32", "x", "32", "1", "3", "px"]  # sorted by depth
    assert lines[2].split()[0] == "relu2_1"


def test_plot_layer_table_and_receptive_fields(vgg):
    fig = plots.plot_layer_table(vgg, torch.rand(1, 3, 32, 32))
    channels = fig.axes[0].get_lines()[0].get_ydata()
    assert channels[0] == 64 and channels[-1] == 512
    fig = plots.show_receptive_fields(_gradient_image(200, 240), layers=["relu1_1", "relu3_1"])
    sides = sorted(p.get_width() for p in fig.axes[0].patches)
    assert sides == [receptive_field("relu1_1"), receptive_field("relu3_1")]


def test_save_figure_writes_a_png(tmp_path):
    path = plots.save_figure(plots.show_images(_gradient_image()), tmp_path / "sub" / "grid.png")
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width > 50


def test_show_images_true_size_draws_a_half_size_image_half_as_large():
    big, small = torch.rand(1, 3, 40, 60), torch.rand(1, 3, 20, 30)
    fig = plots.show_images({"big": big, "small": small}, true_size=True)
    for ax in fig.axes[:2]:
        assert ax.get_xlim() == (-0.5, 59.5) and ax.get_ylim() == (39.5, -0.5)
    assert fig.axes[1].images[0].get_array().shape[:2] == (20, 30)
    plain = plots.show_images({"big": big, "small": small})
    assert plain.axes[1].get_xlim() == (-0.5, 29.5)  # without it each image fills its panel
    plt.close("all")


def test_show_gram_shared_scale():
    a, b = torch.rand(8, 8), 10 * torch.rand(8, 8)
    shared = plots.show_gram({"a": a, "b": b}, shared_scale=True)
    limits = [ax.images[0].get_clim() for ax in shared.axes if ax.images]
    assert limits[0] == limits[1] == (float(min(a.min(), b.min())), float(max(a.max(), b.max())))
    own = plots.show_gram({"a": a, "b": b})
    assert [ax.images[0].get_clim() for ax in own.axes if ax.images][0][1] == pytest.approx(float(a.max()))
    plt.close("all")


def test_plot_losses_draws_rejected_trials_hollow_and_off_the_line():
    history = _history([8.0, 4.0, 30.0, 3.0])
    history[2]["accepted"] = False  # a trial the safeguard undid: the image never had loss 30
    fig = plots.plot_losses({"run": history})
    lines = fig.axes[0].get_lines()
    main = next(line for line in lines if line.get_label() == "run")
    np.testing.assert_array_equal(main.get_xdata(), [1, 2, 4])
    np.testing.assert_array_equal(main.get_ydata(), [8.0, 4.0, 3.0])
    hollow = [line for line in lines if line.get_linestyle() == "None" and len(line.get_xdata())]
    assert len(hollow) == 1 and hollow[0].get_markerfacecolor() == "none"
    np.testing.assert_array_equal(hollow[0].get_xdata(), [3])
    np.testing.assert_array_equal(hollow[0].get_ydata(), [30.0])
    assert "rejected trial (undone)" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
