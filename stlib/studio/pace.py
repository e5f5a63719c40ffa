"""The studio's pace: how long a step takes at each working size, and the preview stage that follows from it.

After a change the first picture should arrive within about a second. On a GPU, or a small image on a CPU, a
full-size step is quick enough; otherwise the first few steps run at a smaller *preview* size (``stylize``'s
coarse-to-fine ``scales``) chosen so that one of them takes about ``PREVIEW_STEP_BUDGET_S``. The step times
come from the worker's own runs (smoothed, by working size); before the first run, from ``stlib.estimate``.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import torch

from .settings import StudioSettings

#: After a change the first preview should come within about a second: a preview-stage step (targets + one
#: step at the preview size) is planned to take at most this long.
PREVIEW_STEP_BUDGET_S = 0.3
#: The smallest preview size, and the largest as a fraction of the full size (above it a preview saves little).
PREVIEW_MIN_SIZE = 64
PREVIEW_MAX_FRACTION = 0.8
#: Weight of a new measurement in the smoothed seconds per step (the rest: the previous value).
SMOOTHING = 0.3
_ESTIMATE_LOCK = threading.Lock()


def estimate_run(s: StudioSettings, device: torch.device, precision: str, model: Any = None) -> Any:
    """``stlib.estimate`` for settings ``s`` (an ``Estimate``), or None if it cannot say: an estimate must
    never stop a run. ``model``: the studio's network, timed by the first (calibrating) call instead of a second
    network made for it."""
    from ..engine.budget import estimate

    try:
        with _ESTIMATE_LOCK:  # one calibration at a time; the others then find it cached
            return estimate(s.size, device=device, steps=s.steps, precision=precision, optimizer=s.optimizer,
                            model=model)
    except Exception:  # e.g. a calibration that fails on an unusual device
        return None


class Pace:
    """Measured seconds per step by working size, and the preview plan they imply.

    ``mode``: "auto" (a preview stage when full-size steps are slow) or None (never one). ``model``: the studio's
    network, which the estimate times before anything is measured (None: the estimate makes a network of its own).
    """

    def __init__(self, device: torch.device, precision: str, mode: str | None = "auto", model: Any = None) -> None:
        if mode not in ("auto", None):
            raise ValueError(f"preview must be 'auto' or None, not {mode!r}")
        self.device, self.precision, self.mode, self.model = device, precision, mode, model
        self._seconds: dict[int, float] = {}  # smoothed seconds per step, by long edge

    def estimate(self, s: StudioSettings) -> Any:
        """``estimate_run`` for settings ``s`` on this studio's device, precision and network (None if it cannot
        say): the one place the studio asks ``stlib.estimate``, so every caller times the same network."""
        return estimate_run(s, self.device, self.precision, self.model)

    def record(self, size: int, seconds: float) -> None:
        """A step at long edge ``size`` took ``seconds`` (smoothed with the earlier measurements at that size)."""
        old = self._seconds.get(size)
        self._seconds[size] = seconds if old is None else (1 - SMOOTHING) * old + SMOOTHING * seconds

    def step_seconds(self, size: int) -> float | None:
        """Seconds per step at ``size`` px on this machine, scaled by pixel count from the closest size measured
        so far (None before the first run)."""
        if not self._seconds:
            return None
        near = min(self._seconds, key=lambda s: abs(math.log(s / size)))
        return self._seconds[near] * (size / near) ** 2

    def preview_size(self, s: StudioSettings) -> int | None:
        """Size for the first steps after a (re)start, so a preview comes quickly; None when full size is fast."""
        if self.mode is None:
            return None
        per_step = self.step_seconds(s.size)
        if per_step is None:  # nothing measured yet: ask the library's calibrated estimate
            est = self.estimate(s)
            per_step = est.seconds_per_step if est is not None else None
        if per_step is None:
            side = None if self.device.type == "cuda" else s.size // 2
        elif per_step <= PREVIEW_STEP_BUDGET_S:
            side = None
        else:  # step time grows with the pixel count
            side = int(s.size * math.sqrt(PREVIEW_STEP_BUDGET_S / per_step)) // 16 * 16
        if side is None:
            return None
        side = max(PREVIEW_MIN_SIZE, side)
        return side if side <= PREVIEW_MAX_FRACTION * s.size else None

    def plan(self, s: StudioSettings, preview: int | None) -> tuple[int | list[int], list[float] | None]:
        """``stylize``'s ``(steps, scales)`` for settings ``s`` with a preview stage at ``preview`` px (None: none).
        About 1.5 s of preview steps (2 to 10, at most half the run); they count towards the slider's total:
        200 steps means 200 steps."""
        if preview is None or s.steps <= 2:
            return s.steps, None
        per_small = self.step_seconds(preview) or PREVIEW_STEP_BUDGET_S
        n_small = max(2, min(10, int(1.5 / per_small), s.steps // 2))
        return [n_small, s.steps - n_small], [preview / s.size, 1.0]
