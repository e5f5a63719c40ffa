"""The precision hand-over: reduced-precision steps while they make progress, float32 steps for the last stretch.

A bf16 step costs about a quarter of a float32 step on a CPU with AMX/AVX-512-BF16, and lowers the objective as
much per step while the image is far from the optimum. Near the optimum, though, the bf16 gradient's rounding
noise is as large as what is left to gain: the run stalls on a plateau just above the float32 optimum
(benchmarks/README.md, "precision hand-over"). ``HandOver`` watches the losses of the current stage and says
when that plateau has been reached - the best loss improved by less than ``rtol`` (relative) over the last
``window`` steps - so that ``stylize`` can go on in float32 from the best image so far.

The trigger is a measured plateau, not a fixed step count: a run that is still making progress in bf16 stays
in bf16, one that stalls early switches early.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Steps over which the bf16 progress is judged, and the least relative improvement of the best loss over them
#: that still counts as progress (measured at 256 px: benchmarks/README.md, "precision hand-over").
HANDOVER_WINDOW = 10
HANDOVER_RTOL = 1e-2
#: No hand-over before a stage has run this many steps (L-BFGS's first steps can be flat).
HANDOVER_MIN_STEPS = 20


@dataclass(frozen=True)
class HandOver:
    """When to switch a stage from reduced precision to float32: ``due(totals)`` on the stage's losses so far."""

    window: int = HANDOVER_WINDOW
    rtol: float = HANDOVER_RTOL
    min_steps: int = HANDOVER_MIN_STEPS

    def __post_init__(self) -> None:
        if self.window < 1 or self.min_steps < self.window:
            raise ValueError(f"HandOver needs window >= 1 and min_steps >= window, got {self.window}, {self.min_steps}")
        if not self.rtol >= 0:
            raise ValueError(f"HandOver needs rtol >= 0, got {self.rtol}")

    def due(self, totals: Sequence[float]) -> bool:
        """True when the best of ``totals`` (this stage's losses, oldest first) improved by less than ``rtol``
        (relative to the best before the window) over the last ``window`` steps."""
        if len(totals) < max(self.min_steps, self.window + 1):
            return False
        before = min(totals[: -self.window])
        best = min(totals)
        return before - best <= self.rtol * abs(before)
