"""The run monitor: everything ``stylize`` does around the optimisation steps, none of the maths.

It keeps the history and the best image, drives the progress bar and the callback, watches the stop event
and convergence, and turns a non-finite loss or Ctrl-C into a ``StopReason`` and a sentence, so that a run
always ends with an image.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from tqdm.auto import tqdm

from ..result import StepInfo, StopReason
from .optim import EVAL_NOISE, NOISE_MARGIN

#: Convergence is judged over this many steps: the best loss must improve by more than rtol (relative) ...
CONVERGENCE_WINDOW = 20
#: ... and not before a scale has run this many steps (L-BFGS's first steps can be flat before it finds its way).
CONVERGENCE_MIN_STEPS = 40
#: When the best loss has stopped improving, the run has converged if every loss of the window is within this
#: fraction of the best (no rise), and diverged if none is (it rose and did not come back); otherwise it goes on.
RISE_TOL = 1e-3


def plateau_reason(totals: list[float], rtol: float, tol: float = RISE_TOL) -> StopReason | None:
    """Whether a scale whose losses so far are ``totals`` should stop: CONVERGED, STALLED, DIVERGED or None.

    It stops only when the best loss improved by at most ``rtol`` (relative) over the last
    ``CONVERGENCE_WINDOW`` steps. Then DIVERGED when every loss of those steps lies more than ``tol`` (relative)
    above the best (the loss rose and stayed up); STALLED when the best never fell more than ``tol`` below the
    first loss (a run sitting at its start has not converged: it has not moved); CONVERGED when every loss of the
    window lies within ``tol`` of the best; a window with both is a run still moving, and it goes on. ``tol``:
    ``RISE_TOL``, or the evaluations' rounding noise where that is larger (``noise_tolerance``). (The safeguarded
    L-BFGS accepts only losses within that noise of its best, so it converges, stalls or goes on; plain L-BFGS and
    Adam can diverge.)
    """
    if rtol <= 0 or len(totals) <= CONVERGENCE_MIN_STEPS:
        return None
    old, best = min(totals[:-CONVERGENCE_WINDOW]), min(totals)
    if old - best > rtol * abs(old):  # relative, so the loss's scale does not matter
        return None
    near = [v <= best + tol * abs(best) for v in totals[-CONVERGENCE_WINDOW:]]
    if not any(near):
        return StopReason.DIVERGED
    if not fell(totals, tol):
        return StopReason.STALLED
    return StopReason.CONVERGED if all(near) else None


def fell(totals: list[float], tol: float = RISE_TOL) -> bool:
    """True when the best of ``totals`` lies more than ``tol`` (relative) below the first: the run moved."""
    return bool(totals) and min(totals) < totals[0] - tol * abs(totals[0])


def noise_tolerance(precision: str) -> float:
    """The relative band within which two losses of a ``precision`` run count as equal: ``RISE_TOL``, or the
    safeguard's tolerance for that precision's rounding noise where larger (bf16: 0.4 %)."""
    return max(RISE_TOL, NOISE_MARGIN * EVAL_NOISE.get(precision, 0.0))


class RunMonitor:
    """Watches one run of ``total_steps`` steps: ``start_scale``, then per step ``should_stop``, the closure's
    ``observe`` and ``end_step``; ``reason``/``message`` say why it ended early (None: it ran every step)."""

    def __init__(self, total_steps: int, *, progress: bool = True, every: int = 10, rtol: float = 0.0,
                 callback: Callable[[StepInfo], bool | None] | None = None, stop: Any = None,
                 t_start: float | None = None) -> None:
        self.total_steps, self.every, self.rtol, self.callback, self.stop = total_steps, every, rtol, callback, stop
        self.t_start = time.perf_counter() if t_start is None else t_start
        self.bar = tqdm(total=total_steps, disable=not progress, desc="stylize", unit="step", leave=True)
        self.history: list[dict[str, Any]] = []
        self.step = 0
        self.reason: StopReason | None = None
        self.message: str | None = None
        self.best_image: torch.Tensor | None = None
        self.best_loss = math.inf
        self.best_step: int | None = None  # the step whose image the run returns (the last scale's best)
        self.latest: dict[str, Any] = {}
        self._scale_start = 0
        self._plateau: StopReason | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start

    def start_scale(self, x: torch.Tensor) -> None:
        """A new stage begins at image ``x`` (a new scale, or float32 after the precision hand-over): the best
        image so far is its start, at an unknown loss."""
        self.best_image, self.best_loss, self.best_step = x.detach().clone(), math.inf, None
        self._scale_start = len(self.history)

    def scale_result(self, x: torch.Tensor) -> torch.Tensor:
        """What a finished scale hands on: its best image (or ``x`` if no loss was ever seen)."""
        return self.best_image if self.best_loss < math.inf else x.detach()

    def should_stop(self) -> bool:
        """True (with the reason recorded) when the stop event is set."""
        if self.stop is not None and self.stop.is_set():
            self._end(StopReason.STOP_EVENT, f"stopped at step {self.step}; returned the best image so far")
        return self.reason is not None

    def observe(self, values: dict[str, Any], x: torch.Tensor) -> None:
        """The closure's report: the terms at ``x`` (floats); keeps ``x`` if it is the best so far."""
        self.latest = values
        if values["total"] < self.best_loss:
            self.best_loss, self.best_image, self.best_step = values["total"], x.detach().clone(), self.step + 1

    def end_step(self, x: torch.Tensor, size: int, precision: str, last_of_scale: bool, accepted: bool = True,
                 stalled: bool = False) -> bool:
        """Record the step just taken (``accepted``: False when the safeguarded L-BFGS rejected its loss; ``stalled``:
        the optimiser gave up, its recoveries failed); True when this scale should end (it stopped improving,
        stalled, or the run was stopped)."""
        self.step += 1
        self.history.append({"step": self.step, **self.latest, "time": self.elapsed(), "size": size,
                             "precision": precision, "accepted": accepted})
        self.bar.update(1)
        if self.step % self.every == 0 or last_of_scale:
            self.bar.set_postfix(loss=f"{self.latest['total']:.4g}", refresh=False)
            if self.callback is not None:
                info = StepInfo(self.step, self.total_steps, x.detach().cpu().clone(),
                                {k: self.latest[k] for k in ("content", "style", "tv", "total")}, self.elapsed(),
                                accepted, dict(self.latest.get("layers", {})))
                if self.callback(info) is False:
                    self._end(StopReason.CALLBACK, f"stopped by the callback at step {self.step}")
                    return True
        if stalled:
            self._plateau = StopReason.STALLED
            return True
        return self._converged(precision)

    def stage_totals(self) -> list[float]:
        """The total losses of the current stage (since the last ``start_scale``), oldest first."""
        return [h["total"] for h in self.history[self._scale_start:]]

    def _converged(self, precision: str) -> bool:
        """This scale stopped improving (``plateau_reason``: converged, stalled or diverged)."""
        self._plateau = plateau_reason(self.stage_totals(), self.rtol, noise_tolerance(precision))
        return self._plateau is not None

    def converged_at_end(self) -> None:
        """The last scale stopped improving: the run ends early, as converged, stalled or diverged."""
        if self._plateau is StopReason.STALLED:
            totals = [h["total"] for h in self.history[self._scale_start:]]
            rejected = sum(not h["accepted"] for h in self.history[self._scale_start:])
            change = (f"the loss fell only {1 - min(totals) / totals[0]:.2%} from its start" if totals[0] > 0
                      else "the loss did not fall")
            self._end(StopReason.STALLED, f"stalled at step {self.step}: {change}, and {rejected} of "
                      f"{len(totals)} trials were rejected, even after restarts; returned the best image. "
                      "precision='fp32' or a different init may help.")
        elif self._plateau is StopReason.DIVERGED:
            self._end(StopReason.DIVERGED, f"diverged: the loss rose and stayed above its best (step {self.best_step}) "
                      f"for {CONVERGENCE_WINDOW} steps; stopped at step {self.step} and returned the best image. "
                      "A smaller lr, or optimizer='lbfgs', may help.")
        else:
            self._end(StopReason.CONVERGED, f"converged at step {self.step} (best loss improved < {self.rtol:g} "
                                            f"in {CONVERGENCE_WINDOW} steps, without a rise)")

    def mark_best(self) -> None:
        """Flag the history entry whose image the run returns (``best``: True on that one step only)."""
        for h in self.history:
            h["best"] = h["step"] == self.best_step

    def non_finite(self, weights: str) -> torch.Tensor | None:
        """The loss became inf or NaN: warn, and return the last image with a finite loss."""
        self._end(StopReason.NON_FINITE, f"the loss became infinite or NaN at step {self.step + 1}: the weights "
                  f"are probably too large ({weights}) or the learning rate too high. "
                  "Returned the last image with a finite loss.")
        warnings.warn("stlib.stylize: " + self.message, RuntimeWarning, stacklevel=3)
        return self.best_image

    def interrupted(self) -> torch.Tensor | None:
        """Ctrl-C: say so, and return the best image so far."""
        self._end(StopReason.INTERRUPTED, f"interrupted (Ctrl-C) at step {self.step}; returned the best image so far")
        print("stlib.stylize: " + str(self.message))
        return self.best_image

    def _end(self, reason: StopReason, message: str) -> None:
        self.reason, self.message = reason, message

    def close(self) -> None:
        self.bar.close()
