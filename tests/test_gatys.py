"""stlib.gatys, the reference algorithm, and the tie between it and the engine behind stylize."""

import pytest
import torch

import stlib
from stlib.algorithm import gatys
from stlib.presets import preset_for
from stlib.transfer import compute_targets, objective


@pytest.fixture
def pair(tiny_pair):
    """The tiny content (64x48) and its style at the content's long edge (as stylize would resize it)."""
    content, style = tiny_pair
    return content, stlib.resize(style, 64)


def reference_objective(vgg, image, content, style, **weights) -> float:
    """The objective of ``image`` computed by the engine's own objective, not by gatys."""
    p = preset_for(vgg.weights_source)
    c_layers, s_layers = dict(p.content_layers), dict(p.style_layers)
    with torch.no_grad():
        targets = compute_targets(vgg, content, [style], c_layers, s_layers, [1.0])
        terms = objective(vgg, image, targets, c_layers, s_layers, weights.get("content_weight", p.content_weight),
                          weights.get("style_weight", p.style_weight), weights.get("tv_weight", p.tv_weight))
    return float(terms["total"])


def test_gatys_lowers_the_objective_and_returns_a_picture(vgg, pair):
    content, style = pair
    result = gatys(vgg, content, style, steps=4)  # (at step 6 the preset weights overshoot, then recover)
    assert result.image.shape == content.shape and not result.image.requires_grad
    assert 0 <= float(result.image.min()) and float(result.image.max()) <= 1
    assert len(result.losses) == 4
    start = reference_objective(vgg, content, content, style)
    assert result.losses[0] == pytest.approx(start, rel=1e-5)  # the first loss is that of the photo
    assert reference_objective(vgg, result.image, content, style) < 0.8 * start


def test_gatys_noise_start_is_seeded(vgg, pair):
    content, style = pair
    a = gatys(vgg, content, style, steps=1, init="noise", seed=3)
    b = gatys(vgg, content, style, steps=1, init="noise", seed=3)
    c = gatys(vgg, content, style, steps=1, init="noise", seed=4)
    assert torch.equal(a.image, b.image) and not torch.equal(a.image, c.image)
    assert a.losses[0] != pytest.approx(reference_objective(vgg, content, content, style), rel=1e-3)
    with pytest.raises(ValueError, match="init"):
        gatys(vgg, content, style, steps=1, init="style")


def test_gatys_weights_and_layers_are_used(vgg, pair):
    content, style = pair
    only_content = gatys(vgg, content, style, steps=1, init="noise", style_weight=0.0, tv_weight=0.0,
                         content_layers={"relu2_1": 1.0})
    noise = torch.rand(content.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # by hand: the content loss at relu2_1 alone, of the seeded noise against the photo
        feats = stlib.extract_features(vgg, torch.cat([noise, content]), ["relu2_1"])["relu2_1"]
    assert only_content.losses[0] == pytest.approx(float(stlib.content_loss(feats[:1], feats[1:])), rel=1e-5)


def taught_objective(vgg, image, content, style, **weights) -> torch.Tensor:
    """The objective written with the course's plain functions, as ``gatys``'s closure writes it (the oracle)."""
    p = preset_for(vgg.weights_source)
    c_layers, s_layers = dict(p.content_layers), dict(p.style_layers)
    alpha = weights.get("content_weight", p.content_weight)
    beta = weights.get("style_weight", p.style_weight)
    gamma = weights.get("tv_weight", p.tv_weight)
    with torch.no_grad():
        c_targets = stlib.extract_features(vgg, content, c_layers)
        s_targets = {k: stlib.gram_matrix(f) for k, f in stlib.extract_features(vgg, style, s_layers).items()}
    feats = stlib.extract_features(vgg, image, [*c_layers, *s_layers])
    c = sum(a * stlib.content_loss(feats[k], c_targets[k]) for k, a in c_layers.items())
    s = sum(w * stlib.style_layer_loss(feats[k], s_targets[k]) for k, w in s_layers.items())
    return alpha * c + beta * s + gamma * stlib.tv_loss(image)


@pytest.mark.parametrize("weights", [{}, {"style_weight": 1e4}])
def test_engine_objective_and_gradient_equal_the_taught_ones(vgg, pair, weights):
    """At the same points, the engine's fp32 objective and its gradient equal the taught formula's.

    This is the exact part of the tie: one forward and backward, no optimiser to amplify rounding, so the
    tolerance is float32's (see conftest) at any thread count.
    """
    content, style = pair
    gen = torch.Generator().manual_seed(1)
    noise = torch.rand(content.shape, generator=gen)
    for point in (content, noise, 0.7 * content + 0.3 * noise):
        x_ref = point.clone().requires_grad_(True)
        ref = taught_objective(vgg, x_ref, content, style, **weights)
        ref.backward()
        p = preset_for(vgg.weights_source)
        c_layers, s_layers = dict(p.content_layers), dict(p.style_layers)
        targets = compute_targets(vgg, content, [style], c_layers, s_layers, [1.0])
        x = point.clone().requires_grad_(True)
        total = objective(vgg, x, targets, c_layers, s_layers, weights.get("content_weight", p.content_weight),
                          weights.get("style_weight", p.style_weight), weights.get("tv_weight", p.tv_weight))["total"]
        total.backward()
        assert float(total.detach()) == pytest.approx(float(ref.detach()), rel=1e-5)
        rel_grad = float((x.grad - x_ref.grad).norm() / x_ref.grad.norm())
        assert rel_grad < 1e-4, f"the engine's gradient differs from the taught one by {rel_grad:.1e} (relative)"


@pytest.mark.parametrize("weights", [{}, {"style_weight": 1e4}])
def test_stylize_fp32_takes_the_same_steps_as_gatys(vgg, pair, weights):
    """The engine (fp32, eager, one scale, no early stop) and the reference agree step by step.

    L-BFGS amplifies rounding differences (the engine's two-loop recursion runs on float64 dot products,
    torch's on float32 vectors; and the thread count changes the order of float32 sums), most of all after
    an overshoot. Measured at 1, 2 and 4 threads on two machines, the first 5 steps agree to < 1e-6 at both
    weightings, and later ones drift to 6e-5 and beyond: so the trajectories are compared over 5 steps, and
    the objective and gradient at the same points (the test above) carry the exact tie.
    """
    content, style = pair
    steps = 5
    # "lbfgs-plain": the safeguarded default deliberately leaves torch's path where it caps or rejects a step
    # (with the offline weights it caps from step 2 at the preset weights).
    engine = stlib.stylize(content, style, model=vgg, precision="fp32", cuda_graph=False, scales=None, rtol=0,
                           size=64, steps=steps, progress=False, optimizer="lbfgs-plain", **weights)
    reference = gatys(vgg, content, style, steps=steps, **weights)
    assert engine.steps == steps and len(reference.losses) == steps
    assert engine.losses() == pytest.approx(reference.losses, rel=1e-5)
    assert len(set(reference.losses)) == steps  # the objective moved at every step: the tie is not vacuous
