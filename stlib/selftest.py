"""Do the ImageNet defaults work? A check that runs wherever real weights exist (``stlib weights selftest``).

Nothing on the machines that build stlib can download torchvision's ImageNet VGG-19, so the ``IMAGENET`` preset
is checked where the weights are: a student's laptop, Colab, a maintainer's machine. The check paints a bundled
photo in the style of The Starry Night (256 px, 100 steps, the defaults ``stylize`` picks) and asks three things:

- the style loss falls to <= 10 % of its start (the optimiser got somewhere);
- every style layer carries >= 1 % of the weighted style loss at the start (no layer is washed out);
- the content is kept: the blurred luminance of the result correlates with the photo's at >= 0.5.

On the seeded offline weights it does not run: the preset it would judge is another one, and its thresholds
were set for ImageNet weights, so it says it cannot judge them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .model import VGG19Features

SELFTEST_CONTENT = "chelsea"
SELFTEST_STYLE = "starry_night"
SELFTEST_SIZE = 256
SELFTEST_STEPS = 100
#: Thresholds (issue 20): style loss at the end / at the start, smallest layer share at the start, content kept.
MAX_STYLE_RATIO = 0.10
MIN_LAYER_SHARE = 0.01
MIN_CONTENT_CORRELATION = 0.5
#: The blurred luminance is compared on a grid of this many pixels along the long edge (area averages).
BLUR_GRID = 32
REPORT_URL = "https://github.com/stlib-course/stlib/issues"


def blurred_luminance(image: torch.Tensor, grid: int = BLUR_GRID) -> torch.Tensor:
    """Luminance (Rec. 601) of ``image`` (1, 3, H, W), area-averaged down to ``grid`` px on the long edge: (1, 1, h, w)."""
    lum = (image[:, :1] * 0.299 + image[:, 1:2] * 0.587 + image[:, 2:3] * 0.114).float()
    h, w = lum.shape[-2:]
    scale = grid / max(h, w)
    return F.adaptive_avg_pool2d(lum, (max(1, round(h * scale)), max(1, round(w * scale))))


def content_correlation(result: torch.Tensor, photo: torch.Tensor) -> float:
    """Pearson correlation of the blurred luminances of ``result`` and ``photo`` (resized to the result): near 1
    when the layout of light and dark is kept, near 0 when the photo is gone."""
    from .images import resize

    a = blurred_luminance(result).flatten()
    b = blurred_luminance(resize(photo, tuple(result.shape[-2:]))).flatten()
    a, b = a - a.mean(), b - b.mean()
    denom = float(a.norm() * b.norm())
    return float((a * b).sum()) / denom if denom > 0 else 0.0


@dataclass(frozen=True)
class SelftestResult:
    """The three measurements of the check, the verdict, and what it ran on."""

    style_ratio: float                 # weighted style loss at the end / at the start
    layer_shares: dict[str, float]     # each style layer's share of the weighted style loss at the start
    content_correlation: float
    weights_source: str
    size: int
    steps: int

    @property
    def failures(self) -> list[str]:
        """What fell short, one phrase each (empty: the defaults work)."""
        out = []
        if not self.style_ratio <= MAX_STYLE_RATIO:
            out.append(f"style loss only fell to {100 * self.style_ratio:.0f} % of its start (need <= "
                       f"{100 * MAX_STYLE_RATIO:.0f} %)")
        weak = {n: s for n, s in self.layer_shares.items() if not s >= MIN_LAYER_SHARE}
        if weak:
            out.append("washed-out layers " + ", ".join(f"{n} {100 * s:.2f} %" for n, s in weak.items())
                       + f" (need >= {100 * MIN_LAYER_SHARE:.0f} % each)")
        if not self.content_correlation >= MIN_CONTENT_CORRELATION:
            out.append(f"content lost (correlation {self.content_correlation:.2f}, need >= {MIN_CONTENT_CORRELATION})")
        return out

    @property
    def passed(self) -> bool:
        return not self.failures

    def line(self) -> str:
        """One line for people: the verdict and the three numbers."""
        layer, share = min(self.layer_shares.items(), key=lambda kv: kv[1])
        numbers = (f"style loss {100 * self.style_ratio:.1f} % of start, smallest layer share {layer} "
                   f"{100 * share:.1f} %, content correlation {self.content_correlation:.2f}")
        if self.passed:
            return f"weights selftest PASSED on {self.weights_source} weights: {numbers}"
        return (f"weights selftest FAILED on {self.weights_source} weights: {'; '.join(self.failures)} - "
                f"please report this line at {REPORT_URL}")


def cannot_judge(weights_source: str) -> str | None:
    """The sentence for weights the check cannot judge (anything but ImageNet's), or None for ImageNet weights."""
    from .weights import weights_origin

    origin = weights_origin(weights_source)
    if origin == "imagenet":
        return None
    what = "stlib's seeded offline (random) weights" if origin == "random" else f"weights of unknown origin ({weights_source})"
    return (f"weights selftest: cannot judge {what}: it checks the ImageNet defaults; get ImageNet weights with "
            "`stlib weights download` (or see `stlib weights info`) and run it again")


def run_selftest(model: VGG19Features, size: int = SELFTEST_SIZE, steps: int = SELFTEST_STEPS,
                 progress: bool = False) -> SelftestResult:
    """Paint the bundled photo in The Starry Night's style with ``stylize``'s defaults for ``model`` and measure.

    Runs on any weights (tests call it on the offline ones at a tiny size); only on ImageNet weights do its
    thresholds mean "the defaults work" (``cannot_judge``)."""
    from .images import load_image
    from .shares import loss_shares
    from .transfer import stylize

    result = stylize(SELFTEST_CONTENT, SELFTEST_STYLE, model=model, size=size, steps=steps, progress=progress)
    first = result.history[0]
    best = next((h for h in result.history if h.get("best")), result.history[-1])  # the returned image's step
    weights = result.settings["style_layers"]
    return SelftestResult(
        style_ratio=best["style"] / first["style"] if first["style"] > 0 else float("nan"),
        layer_shares=loss_shares(first["layers"], weights),
        content_correlation=content_correlation(result.image, load_image(SELFTEST_CONTENT)),
        weights_source=model.weights_source, size=size, steps=steps,
    )


def selftest_line(model: VGG19Features, size: int = SELFTEST_SIZE, steps: int = SELFTEST_STEPS) -> str:
    """The one line ``stlib weights selftest`` prints: the verdict on ImageNet weights, else why there is none."""
    reason = cannot_judge(model.weights_source)
    return reason if reason is not None else run_selftest(model, size, steps).line()
