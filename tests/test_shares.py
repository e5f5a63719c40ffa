"""Per-layer diagnostics (``stlib.shares``) and weights balanced by measurement (``stlib.balance``), against
oracles: each layer's loss and gradient computed on its own with the course's functions and autograd."""

import pytest
import torch

import stlib
from stlib.balance import balanced_layer_weights, check_shares
from stlib.engine.objective import compute_targets
from stlib.shares import LayerShares, layer_shares, loss_shares, per_layer_gradient_norms

LAYERS = {"relu1_1": 1.0, "relu2_1": 2.0, "relu3_1": 3.0, "relu4_1": 5.0, "relu5_1": 10.0}


@pytest.fixture
def setting(vgg, tiny_pair):
    content, style = tiny_pair
    style = stlib.resize(style, 64)
    grams = compute_targets(vgg, content, [style], {}, LAYERS, [1.0]).style
    return content, grams


def naive(vgg, image, grams, weights):
    """Each layer alone: its weighted loss and the norm of that loss's gradient on the pixels."""
    losses, norms = {}, {}
    for name, w in weights.items():
        x = image.clone().requires_grad_(True)
        e = w * stlib.style_layer_loss(stlib.extract_features(vgg, x, [name])[name], grams[name])
        (g,) = torch.autograd.grad(e, x)
        losses[name], norms[name] = float(e.detach()), float(g.norm())
    return losses, norms


def test_shares_match_each_layer_computed_alone(vgg, setting):
    image, grams = setting
    losses, norms = naive(vgg, image, grams, LAYERS)
    shares = layer_shares(vgg, image, grams, LAYERS)
    assert shares.loss == pytest.approx({n: v / sum(losses.values()) for n, v in losses.items()}, rel=1e-5)
    assert shares.gradient == pytest.approx({n: v / sum(norms.values()) for n, v in norms.items()}, rel=1e-4)
    unweighted, _ = per_layer_gradient_norms(vgg, image, grams, LAYERS)
    assert unweighted == pytest.approx({n: losses[n] / LAYERS[n] for n in LAYERS}, rel=1e-5)


def test_loss_shares_by_hand():
    assert loss_shares({"style:a": 2.0, "style:b": 6.0, "content:c": 100.0}, {"a": 1.0, "b": 2.0}) == \
        pytest.approx({"a": 2 / 14, "b": 12 / 14})
    assert loss_shares({"a": 0.0, "b": 0.0}, {"a": 1.0, "b": 1.0}) == {"a": 0.5, "b": 0.5}


@pytest.mark.parametrize("by", ["loss", "gradient"])
def test_balanced_weights_give_the_stated_shares_and_keep_the_total(vgg, setting, by):
    image, grams = setting
    wanted = {"relu1_1": 0.4, "relu2_1": 0.3, "relu3_1": 0.15, "relu4_1": 0.1, "relu5_1": 0.05}
    weights = balanced_layer_weights(vgg, image, grams, LAYERS, by=by, shares=wanted)
    got = layer_shares(vgg, image, grams, weights)
    assert (got.loss if by == "loss" else got.gradient) == pytest.approx(wanted, rel=1e-4)
    losses, norms = naive(vgg, image, grams, LAYERS)
    balanced_losses, balanced_norms = naive(vgg, image, grams, weights)
    before, after = (losses, balanced_losses) if by == "loss" else (norms, balanced_norms)
    assert sum(after.values()) == pytest.approx(sum(before.values()), rel=1e-4)  # the same total pull
    equal = balanced_layer_weights(vgg, image, grams, LAYERS, by=by)
    shares = layer_shares(vgg, image, grams, equal)
    assert (shares.loss if by == "loss" else shares.gradient) == pytest.approx(dict.fromkeys(LAYERS, 0.2), rel=1e-4)


def test_balance_refuses_bad_shares(vgg, setting):
    image, grams = setting
    with pytest.raises(ValueError, match="exactly the style layers"):
        check_shares({"relu1_1": 1.0}, LAYERS)
    with pytest.raises(ValueError, match="> 0"):
        check_shares({**dict.fromkeys(LAYERS, 1.0), "relu5_1": -1.0}, LAYERS)
    with pytest.raises(ValueError, match="balance must be one of"):
        balanced_layer_weights(vgg, image, grams, LAYERS, by="pixels")


def test_result_carries_loss_shares_and_plots_draw_them(vgg, tiny_pair):
    content, style = tiny_pair
    result = stlib.stylize(content, style, model=vgg, size=64, steps=3, progress=False, precision="fp32")
    first = result.history[0]["layers"]
    weights = result.settings["style_layers"]
    total = sum(w * first[f"style:{n}"] for n, w in weights.items())
    assert result.layer_shares(1) == pytest.approx({n: w * first[f"style:{n}"] / total for n, w in weights.items()})
    assert sum(result.layer_shares().values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="step must be"):
        result.layer_shares(99)
    fig = stlib.plots.plot_layer_shares({"run": result, "measured": LayerShares(
        {"relu1_1": 0.9, "relu2_1": 0.1}, {"relu1_1": 0.5, "relu2_1": 0.5})})
    ax = fig.axes[0]
    widths = [p.get_width() for p in ax.patches]
    assert len(ax.get_yticklabels()) == 3 and sum(widths) == pytest.approx(300.0)  # three bars of 100 %
    assert [t.get_text() for t in ax.get_yticklabels()] == ["run", "measured: loss", "measured: gradient"]
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_notebook_03s_balanced_bars_at_students_size(vgg):
    """Notebook 03 (192 px on a CPU, chelsea x swirls, bf16 autocast as stylize runs): balanced by loss, every loss
    share is 20 %, while the gradient shares stay unequal - the claim its text makes."""
    from stlib.engine.precision import autocast

    photo, painting = stlib.load_image("chelsea", 192), stlib.load_image("swirls", 192)
    layers = stlib.presets.OFFLINE.style_layers
    with autocast("bf16", torch.device("cpu")):
        grams = compute_targets(vgg, photo, [painting], {}, layers, [1.0]).style
        balanced = balanced_layer_weights(vgg, photo, grams, layers)
        shares = layer_shares(vgg, photo, grams, balanced)
    assert shares.loss == pytest.approx(dict.fromkeys(layers, 0.2), rel=1e-3)
    assert max(shares.gradient.values()) > 2 * min(shares.gradient.values()), shares.gradient
