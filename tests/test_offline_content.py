"""Notebook 01's content row, offline: the seeded random weights must keep the photo in a relu4_2 reconstruction.

The claim the notebook teaches (Gatys et al., Fig. 1): reconstructed from white noise, relu4_2 still shows the
photo's layout, and detail is lost with depth. Checked at fast-mode size with more steps than fast mode runs
(the notebook's 5 steps prove only that the cell works). Slow-ish (~15 s on a busy 2-core CPU), never timed.
"""

import pytest
import torch

import stlib
from stlib.images import resize

structural_similarity = pytest.importorskip("skimage.metrics").structural_similarity

SIZE = 64   # fast mode's image size (course.image_size(fast=64))
STEPS = 60  # enough for L-BFGS to settle at this size; the notebook runs 150 at 192 px


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Colour SSIM of two (1, 3, H, W) images in [0, 1] (scikit-image, data range 1)."""
    x, y = (t[0].permute(1, 2, 0).double().clamp(0, 1).numpy() for t in (a, b))
    return float(structural_similarity(x, y, channel_axis=2, data_range=1.0))


@pytest.fixture(scope="module")
def row():
    """Notebook 01's call at relu3_2, relu4_2 and relu5_2: {layer: reconstruction}, plus the photo and the start."""
    photo = stlib.load_image("chelsea", SIZE)
    model = stlib.load_vgg19("random", pooling="avg")
    images = {}
    for layer in ("relu3_2", "relu4_2", "relu5_2"):
        images[layer] = stlib.stylize(photo, "swirls", style_weight=0, content_layers=[layer], tv_weight=0,
                                      init="noise", size=SIZE, steps=STEPS, model=model, precision="fp32",
                                      progress=False).image
    start = torch.rand(photo.shape, generator=torch.Generator().manual_seed(0))  # stylize's init="noise", seed 0
    return photo, start, images


def test_relu4_2_reconstruction_is_the_photo_not_another_one(row):
    photo, start, images = row
    recon = images["relu4_2"]
    kept = ssim(recon, photo)
    others = [ssim(recon, resize(stlib.load_image(name, SIZE), tuple(photo.shape[-2:])))
              for name in ("astronaut", "rocket", "coffee")]
    # The photo, recognisably: far closer to it than to any other bundled photo, and far from the noise it began as.
    assert kept > 3 * max(others), (kept, others)
    assert kept > 10 * ssim(start, photo), (kept, ssim(start, photo))
    assert kept > ssim(recon, start)


def test_detail_is_lost_with_depth(row):
    photo, _, images = row
    scores = [ssim(images[layer], photo) for layer in ("relu3_2", "relu4_2", "relu5_2")]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1], scores
