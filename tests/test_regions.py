"""Guided Gram matrices (spatial control) against hand computations and naive loops on tiny tensors."""

import itertools

import pytest
import torch

import stlib
from stlib.engine.objective import compute_targets, objective
from stlib.gram import gram_matrix
from stlib.regions import (guided_gram_matrix, guided_style_layer_loss, layer_masks, layer_size, load_masks,
                           region_targets)


def test_guided_gram_by_hand():
    # Two channels on a 1 x 3 grid; region 0 is the left position, region 1 the two right ones.
    f = torch.tensor([[[[1.0, 2.0, 0.0]], [[3.0, 0.0, 1.0]]]])               # (1, C=2, 1, 3)
    masks = torch.tensor([[[[1.0, 0.0, 0.0]], [[0.0, 1.0, 1.0]]]])           # (1, R=2, 1, 3)
    g = guided_gram_matrix(f, masks, normalize=False)
    assert g.shape == (1, 2, 2, 2)
    # Region 0 sees only position 0: F_0 = (1, 3) -> [[1, 3], [3, 9]].
    assert torch.equal(g[0, 0], torch.tensor([[1.0, 3.0], [3.0, 9.0]]))
    # Region 1 sees (2, 0) and (0, 1): [[4, 0], [0, 1]].
    assert torch.equal(g[0, 1], torch.tensor([[4.0, 0.0], [0.0, 1.0]]))
    # Normalised: divided by C * (mask mass) = 2 * 1 and 2 * 2.
    gn = guided_gram_matrix(f, masks)
    assert torch.allclose(gn[0, 0], g[0, 0] / 2) and torch.allclose(gn[0, 1], g[0, 1] / 4)
    assert torch.allclose(guided_gram_matrix(f, masks, "hw")[0, 1], g[0, 1] / 2)


def test_guided_gram_matches_naive_loop_with_soft_masks():
    gen = torch.Generator().manual_seed(3)
    f = torch.randn(2, 3, 4, 5, generator=gen)
    masks = torch.rand(1, 2, 4, 5, generator=gen)
    got = guided_gram_matrix(f, masks)
    for b, r, i, j in itertools.product(range(2), range(2), range(3), range(3)):
        s = mass = 0.0
        for y, x in itertools.product(range(4), range(5)):
            t = float(masks[0, r, y, x])
            s += t * float(f[b, i, y, x]) * t * float(f[b, j, y, x])
            mass += t * t
        assert abs(float(got[b, r, i, j]) - s / (3 * mass)) < 1e-5


@pytest.mark.parametrize("normalize", [True, "hw", False])
def test_a_mask_of_ones_gives_the_ordinary_gram(normalize):
    f = torch.randn(2, 4, 3, 5, generator=torch.Generator().manual_seed(1))
    g = guided_gram_matrix(f, torch.ones(1, 1, 3, 5), normalize)
    assert torch.allclose(g[:, 0], gram_matrix(f, normalize), rtol=1e-5)


def test_guided_gram_gradient_flows_only_through_the_region():
    f = torch.randn(1, 2, 2, 2, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
    masks = torch.zeros(1, 1, 2, 2)
    masks[..., 0, :] = 1.0                                                   # top row only
    guided_gram_matrix(f, masks).sum().backward()
    assert torch.all(f.grad[..., 1, :] == 0) and torch.any(f.grad[..., 0, :] != 0)


def test_layer_masks_follow_the_network(vgg):
    image = torch.rand(1, 3, 37, 45, generator=torch.Generator().manual_seed(0))
    feats = stlib.extract_features(vgg, image, stlib.STYLE_LAYERS)
    masks = load_masks(torch.rand(37, 45, generator=torch.Generator().manual_seed(1)))
    down = layer_masks(masks, stlib.STYLE_LAYERS)
    for name in stlib.STYLE_LAYERS:
        assert layer_size(name, 37, 45) == tuple(feats[name].shape[-2:])
        assert down[name].shape == (1, 2, *feats[name].shape[-2:])
        assert torch.allclose(down[name].sum(1), torch.ones(()))              # the two regions still add up to 1


def test_layer_masks_average_blocks():
    m = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])          # (2, 4)
    down = layer_masks(load_masks(m), ["relu2_1"])["relu2_1"]               # one pooling: 2x2 blocks
    assert torch.allclose(down[0, 0], torch.tensor([[0.75, 0.0]]))
    assert torch.allclose(down[0, 1], torch.tensor([[0.25, 1.0]]))


def test_guided_loss_and_targets():
    f = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(5))
    masks = load_masks(torch.cat([torch.ones(4, 2), torch.zeros(4, 2)], dim=1))
    a, b = torch.randn(1, 3, 3), torch.randn(1, 3, 3)
    targets = region_targets([{"relu1_1": a}, {"relu1_1": b}])["relu1_1"]
    assert targets.shape == (1, 2, 3, 3) and torch.equal(targets[0, 1], b[0])
    g = guided_gram_matrix(f, masks)
    expected = 0.5 * (((g[0, 0] - a[0]) ** 2).mean() + ((g[0, 1] - b[0]) ** 2).mean())
    assert torch.allclose(guided_style_layer_loss(f, masks, targets), expected)
    with pytest.raises(ValueError, match="one style per region"):
        guided_style_layer_loss(f, masks, targets[:, :1])
    with pytest.raises(ValueError, match="layer_masks"):
        guided_gram_matrix(f, masks[..., :2, :2])


def test_load_masks_from_file_and_errors(tmp_path):
    from PIL import Image

    Image.new("L", (8, 6), 255).save(tmp_path / "white.png")
    masks = load_masks(tmp_path / "white.png", size=(3, 4))
    assert masks.shape == (1, 2, 3, 4) and torch.all(masks[0, 0] == 1) and torch.all(masks[0, 1] == 0)
    with pytest.raises(FileNotFoundError, match="white = region 0"):
        load_masks(tmp_path / "missing.png")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_masks(torch.full((2, 2), 2.0))


def test_bundled_mask_matches_its_generator_and_the_photo(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(stlib.__file__).resolve().parents[1]
    subprocess.run([sys.executable, str(root / "images" / "make_masks.py"), "--out", str(tmp_path)], check=True,
                   capture_output=True, timeout=60)
    assert torch.equal(load_masks(tmp_path / "rocket_sky.png"), load_masks("rocket_sky"))
    photo = stlib.load_image("rocket")
    masks = load_masks("rocket_sky", size=tuple(photo.shape[-2:]))
    sky = (masks[0, 0] > 0.5).float()
    assert 0.5 < float(sky.mean()) < 0.85                                   # mostly sky, but two real regions
    blue = photo[0, 2] - photo[0, 0]
    assert float((blue * sky).sum() / sky.sum()) > float((blue * (1 - sky)).sum() / (1 - sky).sum()) + 0.1


# ------------------------------------------------------------------------------------------------ in stylize
def test_one_full_region_gives_the_plain_objective(vgg, tiny_pair):
    content, style = tiny_pair
    layers, s_layers = {"relu4_2": 1.0}, {"relu1_1": 1.0, "relu3_1": 2.0}
    targets = compute_targets(vgg, content, [style], layers, s_layers, [1.0])
    guided = compute_targets(vgg, content, [style], layers, s_layers, [1.0], masks=torch.ones(1, 1, 5, 5))
    assert targets.masks is None and set(guided.masks) == set(s_layers)
    x = torch.rand(content.shape, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        plain = objective(vgg, x, targets, layers, s_layers, 1.0, 1e4, 0.0)
        regions = objective(vgg, x, guided, layers, s_layers, 1.0, 1e4, 0.0)
    assert torch.allclose(plain["total"], regions["total"], rtol=1e-5)


def _flat(color, seed):
    noise = torch.rand(1, 3, 48, 48, generator=torch.Generator().manual_seed(seed))
    return (torch.tensor(color).view(1, 3, 1, 1) * (0.6 + 0.4 * noise)).clamp(0, 1)


def test_stylize_paints_each_region_in_its_own_style(vgg):
    content = torch.full((1, 3, 48, 64), 0.5)
    red, blue = _flat([1.0, 0.1, 0.1], 1), _flat([0.1, 0.1, 1.0], 2)
    mask = torch.zeros(48, 64)
    mask[:, :32] = 1.0                                                       # left: region 0 (red), right: blue
    result = stlib.stylize(content, [red, blue], style_masks=mask, model=vgg, size=64, steps=40, content_weight=0,
                           tv_weight=0, progress=False, precision="fp32")
    redness = result.image[0, 0] - result.image[0, 2]
    left, right = float(redness[:, :24].mean()), float(redness[:, 40:].mean())
    assert left > 0.2 and right < -0.2, (left, right)
    assert result.settings["regions"] == 2


def test_stylize_region_errors(vgg, tiny_pair):
    content, style = tiny_pair
    with pytest.raises(ValueError, match="one style per region"):
        stlib.stylize(content, style, style_masks=torch.ones(48, 64), model=vgg, steps=1, progress=False)
    with pytest.raises(ValueError, match="style_blend"):
        stlib.stylize(content, [style, style], style_masks=torch.ones(48, 64), style_blend=[1, 1], model=vgg,
                      steps=1, progress=False)
