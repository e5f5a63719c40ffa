"""Gram matrices and the three losses against naive loop implementations on tiny tensors."""

import itertools

import pytest
import torch

from stlib.gram import gram_matrix
from stlib.losses import content_loss, style_layer_loss, style_loss, tv_loss


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def naive_gram(f: torch.Tensor, divisor_of) -> torch.Tensor:
    """G[b, i, j] = sum_p F[b, i, p] F[b, j, p] / divisor, one product at a time."""
    b, c, h, w = f.shape
    out = torch.zeros(b, c, c, dtype=torch.float64)
    for n, i, j in itertools.product(range(b), range(c), range(c)):
        s = 0.0
        for y, x in itertools.product(range(h), range(w)):
            s += float(f[n, i, y, x]) * float(f[n, j, y, x])
        out[n, i, j] = s / divisor_of(c, h, w)
    return out


@pytest.mark.parametrize(
    "normalize, divisor_of",
    [
        (True, lambda c, h, w: c * h * w),
        ("chw", lambda c, h, w: c * h * w),
        ("hw", lambda c, h, w: h * w),
        (False, lambda c, h, w: 1),
        (None, lambda c, h, w: 1),
    ],
)
def test_gram_matches_triple_loop(normalize, divisor_of):
    f = _rand(2, 3, 4, 5)
    got = gram_matrix(f, normalize=normalize)
    assert got.shape == (2, 3, 3) and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), naive_gram(f, divisor_of), rtol=1e-5, atol=1e-6)


def test_gram_is_per_image_not_folded_into_channels():
    a, b = _rand(1, 4, 3, 3, seed=1), _rand(1, 4, 3, 3, seed=2) * 3
    both = gram_matrix(torch.cat([a, b]))
    torch.testing.assert_close(both[0], gram_matrix(a)[0])
    torch.testing.assert_close(both[1], gram_matrix(b)[0])


def test_gram_is_symmetric_and_float32_for_bf16_features():
    f = _rand(1, 5, 6, 6).to(torch.bfloat16)
    g = gram_matrix(f)
    assert g.dtype == torch.float32
    torch.testing.assert_close(g, g.transpose(1, 2))


def test_gram_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        gram_matrix(_rand(3, 4, 4))
    with pytest.raises(ValueError, match="normalize"):
        gram_matrix(_rand(1, 3, 4, 4), normalize="cw")


def test_content_loss_is_mean_squared_difference():
    f, t = _rand(2, 3, 4, 5, seed=1), _rand(2, 3, 4, 5, seed=2)
    naive = sum(float(a - b) ** 2 for a, b in zip(f.flatten(), t.flatten())) / f.numel()
    assert content_loss(f, t).item() == pytest.approx(naive, rel=1e-5)
    assert content_loss(f, f).item() == 0.0
    with pytest.raises(ValueError, match="size"):
        content_loss(f, t[..., :4])


def test_style_layer_loss_against_naive():
    f = _rand(2, 3, 4, 4, seed=3)
    target = _rand(1, 3, 3, seed=4)
    grams = naive_gram(f, lambda c, h, w: c * h * w)
    diffs = [float(grams[n, i, j] - target[0, i, j]) ** 2 for n in range(2) for i in range(3) for j in range(3)]
    assert style_layer_loss(f, target).item() == pytest.approx(sum(diffs) / len(diffs), rel=1e-5)
    grams_hw = naive_gram(f, lambda c, h, w: h * w)
    diffs_hw = [float(grams_hw[n, i, j] - target[0, i, j]) ** 2 for n in range(2) for i in range(3) for j in range(3)]
    assert style_layer_loss(f, target, normalize="hw").item() == pytest.approx(sum(diffs_hw) / 18, rel=1e-5)
    with pytest.raises(ValueError, match="differ"):
        style_layer_loss(f, _rand(1, 4, 4))


def test_style_loss_weights_layers_and_skips_zero_weights():
    feats = {"relu1_1": _rand(1, 3, 4, 4, seed=5), "relu2_1": _rand(1, 6, 2, 2, seed=6)}
    targets = {"relu1_1": _rand(1, 3, 3, seed=7), "relu2_1": _rand(1, 6, 6, seed=8)}
    l1 = style_layer_loss(feats["relu1_1"], targets["relu1_1"]).item()
    l2 = style_layer_loss(feats["relu2_1"], targets["relu2_1"]).item()
    assert style_loss(feats, targets).item() == pytest.approx(l1 + l2, rel=1e-6)
    assert style_loss(feats, targets, {"relu1_1": 2.0, "relu2_1": 0.5}).item() == pytest.approx(
        2 * l1 + 0.5 * l2, rel=1e-6)
    # a zero weight skips the layer entirely: its features need not even exist
    only_first = {"relu1_1": feats["relu1_1"]}
    assert style_loss(only_first, targets, {"relu1_1": 3.0, "relu2_1": 0.0}).item() == pytest.approx(3 * l1, rel=1e-6)


def test_tv_loss_against_naive():
    img = _rand(2, 3, 4, 5, seed=9)
    b, c, h, w = img.shape
    dx = [float(img[n, k, y, x + 1] - img[n, k, y, x]) ** 2
          for n in range(b) for k in range(c) for y in range(h) for x in range(w - 1)]
    dy = [float(img[n, k, y + 1, x] - img[n, k, y, x]) ** 2
          for n in range(b) for k in range(c) for y in range(h - 1) for x in range(w)]
    assert tv_loss(img).item() == pytest.approx(sum(dx) / len(dx) + sum(dy) / len(dy), rel=1e-5)
    assert tv_loss(torch.full((1, 3, 8, 8), 0.3)).item() == 0.0
