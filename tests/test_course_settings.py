"""The course's key figures keep their content (issue 10): the settings of notebooks 00, 01, 04 and 06 at
fast-mode image sizes but their normal step counts. No accepted step's loss exceeds twice the best before it
(no blow-ups such as plain L-BFGS's overshoots), a trial step the safeguard rejected stays below
``REJECTED_TRIAL_FACTOR`` times it (the image went back: notebook 04 draws such trials as hollow circles, "the
picture never was that bad"), and the returned image keeps the photo's content. Not timed."""

import math

import pytest

import stlib
from stlib.engine.monitor import noise_tolerance

SIZE = 64  # fast mode's size (course.image_size(fast=64))


#: A rejected trial may overshoot (the safeguard then takes the image back), but not blow up: plain L-BFGS's
#: overshoots reach 50x and more (tests/test_optim.py); the safeguard's rejected trials measured 1.0-2.6x.
REJECTED_TRIAL_FACTOR = 5.0


def _rises(totals, factor=2.0, accepted=None):
    """How many evaluations exceed ``factor`` x the best before them; with ``accepted`` (one bool per evaluation),
    accepted ones above ``factor`` x and rejected trials above ``REJECTED_TRIAL_FACTOR`` x."""
    best, count = math.inf, 0
    for i, value in enumerate(totals):
        limit = factor if accepted is None or accepted[i] else max(factor, REJECTED_TRIAL_FACTOR)
        count += value > limit * best
        best = min(best, value)
    return count


def test_rises_counts_accepted_steps_at_2x_and_rejected_trials_at_5x():
    totals = [10.0, 25.0, 9.0, 40.0, 60.0]
    assert _rises(totals) == 3
    assert _rises(totals, accepted=[True, False, True, False, False]) == 1  # 25 and 40 are trials; 60 > 5 x 9
    assert _rises(totals, accepted=[True] * 5) == 3


def _ssim(a, b):
    """Colour SSIM of two (1, 3, H, W) images in [0, 1] (scikit-image, data range 1)."""
    from skimage.metrics import structural_similarity

    x, y = (t[0].permute(1, 2, 0).double().clamp(0, 1).numpy() for t in (a, b))
    return float(structural_similarity(x, y, channel_axis=2, data_range=1.0))


# (notebook, content, style, stylize keywords): the settings of the figures the notebooks draw conclusions from
TRANSFER_SETTINGS = [
    ("nb00/nb06 plain", "astronaut", "swirls", {"steps": 60}),
    ("nb04 L-BFGS", "chelsea", "swirls", {"steps": 100}),
    ("nb04 Adam", "chelsea", "swirls", {"steps": 100, "optimizer": "adam"}),
    ("nb06 luminance", "astronaut", "swirls", {"steps": 60, "preserve_color": "luminance"}),
]


@pytest.mark.parametrize("name, content, style, kwargs", TRANSFER_SETTINGS, ids=[s[0] for s in TRANSFER_SETTINGS])
def test_course_transfer_settings_keep_their_content(vgg, name, content, style, kwargs):
    photo, painting = stlib.load_image(content, SIZE), stlib.load_image(style, SIZE)
    result = stlib.stylize(photo, painting, size=SIZE, model=vgg, precision="auto", progress=False, **kwargs)
    totals = result.losses()
    accepted = [h["accepted"] for h in result.history]
    assert _rises(totals, accepted=accepted) == 0, f"{name}: steps above 2x the best so far: {totals} {accepted}"
    assert min(totals) < 0.5 * totals[0]  # and it did optimise
    # the content is not lost: the image is far more like the photo (SSIM) than the painting is. The offline
    # weights' relu4_2 distance no longer ranks this (their deep maps carry a large mean, and swirls' mean
    # activations happen to be close to chelsea's: benchmarks/OFFLINE_WEIGHTS.md). At 64 px the offline preset
    # keeps little of the photo (measured SSIM 0.3-0.4 vs the painting's 0.03), so this bound is loose: it
    # catches pure texture, not subtle losses.
    image = stlib.resize(result.image, tuple(photo.shape[-2:]))
    assert _ssim(image, photo) > 3 * _ssim(stlib.resize(painting, tuple(photo.shape[-2:])), photo)


@pytest.fixture(scope="module")
def vgg_avg():
    """The offline VGG-19 with average pooling, as notebook 01's reconstructions use it."""
    return stlib.load_vgg19("random", pooling="avg")


@pytest.mark.parametrize("layer", ["relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"])
def test_notebook01_reconstructions_run_their_budget_without_blowing_up(vgg_avg, layer):
    photo = stlib.load_image("chelsea", SIZE)
    result = stlib.stylize(photo, "swirls", style_weight=0, content_layers=[layer], tv_weight=0, init="noise",
                           size=SIZE, steps=150, model=vgg_avg, precision="auto", progress=False)
    totals = result.losses("content")
    assert _rises(totals) == 0, f"{layer}: evaluations above 2x the best so far"
    assert result.stop_reason in (None, "converged")  # it never stops as "converged" after a rise
    if result.stop_reason == "converged":
        recent = totals[-20:]
        assert max(recent) <= min(totals) * (1 + noise_tolerance(result.precision))  # bf16: within its noise
    assert min(totals) < 0.5 * totals[0]  # the reconstruction moved towards the photo
    assert result.history[result.best_step - 1]["total"] == min(result.losses())
