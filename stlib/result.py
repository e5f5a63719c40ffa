"""What a run hands back: ``StylizeResult`` (the image, the loss history, why it stopped) and ``StepInfo``."""

from __future__ import annotations

import enum
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .images import save_image, to_pil


class StopReason(str, enum.Enum):
    """Why a run ended before its step budget (``StylizeResult.stop_reason``; None = it ran every step).

    A ``str`` enum, so ``result.stop_reason == "converged"`` also works.
    """

    CONVERGED = "converged"        # the loss fell, then its best stopped improving, without a rise
    STALLED = "stalled"            # the optimiser could not lower the loss (every trial rejected, recovery failed)
    DIVERGED = "diverged"          # the loss rose and stayed above its best (the best image is returned)
    NON_FINITE = "non_finite"      # the loss became inf or NaN
    INTERRUPTED = "interrupted"    # Ctrl-C (KeyboardInterrupt)
    STOP_EVENT = "stop_event"      # ``stop.is_set()`` (the studio's Stop button)
    CALLBACK = "callback"          # the callback returned False


@dataclass
class StepInfo:
    """What a ``callback`` sees every ``every`` steps: the current image (1, 3, H, W) on the CPU, the weighted
    loss terms (``accepted`` False: ``losses`` are of a trial the safeguarded L-BFGS rejected and undid), and the
    unweighted per-layer losses (``layers``: ``{"style:relu1_1": E_l, "content:relu4_2": ...}``)."""

    step: int
    steps: int
    image: torch.Tensor
    losses: dict[str, float]
    elapsed: float
    accepted: bool = True
    layers: dict[str, float] = field(default_factory=dict)


@dataclass
class StylizeResult:
    """The outcome of ``stylize``.

    ``image`` is (1, 3, H, W) in [0, 1] on the CPU; ``history`` has one dict per step with the weighted
    ``content``, ``style``, ``tv`` and ``total`` losses, the unweighted per-layer losses under ``layers``,
    ``time`` (seconds since the start), ``size``, ``accepted`` (False: a step the safeguarded L-BFGS rejected
    because it raised the loss) and ``best`` (True on the one step whose image is returned: ``best_step``, the
    lowest loss of the last scale). ``stop_reason`` is None for a complete run, else a ``StopReason``;
    ``stopped`` is the sentence that says why, for people. ``shares`` holds ``stlib.shares.LayerShares`` (each
    style layer's share of the weighted style loss and of the gradient) measured at the last scale's start
    (``"start"``) and at the returned image (``"end"``); ``layer_shares(step)`` gives the loss shares at any step.
    """

    image: torch.Tensor
    history: list[dict[str, Any]]
    elapsed: float
    setup_time: float
    steps: int
    weights_source: str
    device: str
    precision: str
    settings: dict[str, Any] = field(default_factory=dict)
    stopped: str | None = None
    stop_reason: StopReason | None = None
    best_step: int | None = None
    shares: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds_per_step(self) -> float:
        """Mean wall time of one optimisation step (setup excluded)."""
        return (self.elapsed - self.setup_time) / max(self.steps, 1)

    def losses(self, key: str = "total") -> list[float]:
        """One loss term over the steps, e.g. ``result.losses("style")``."""
        return [h[key] for h in self.history]

    def layer_shares(self, step: int | None = None) -> dict[str, float]:
        """Each style layer's share of the weighted style loss at ``step`` (1-based; default: the returned image's
        step), from the history and the per-layer weights in ``settings["style_layers"]``."""
        from .shares import loss_shares

        if not self.history:
            return {}
        if step is None:
            step = self.best_step if self.best_step is not None else self.history[-1]["step"]
        entry = next((h for h in self.history if h["step"] == step), None)
        if entry is None:
            raise ValueError(f"step must be one of 1 ... {self.history[-1]['step']}, not {step}")
        return loss_shares(entry["layers"], self.settings.get("style_layers", {}))

    def to_pil(self):
        """The image as a PIL image."""
        return to_pil(self.image)

    def save(self, path: str | Path) -> Path:
        """Write the image (PNG or JPEG by suffix)."""
        return save_image(self.image, path)

    def _repr_png_(self) -> bytes:  # a bare result at the end of a notebook cell shows the picture
        buf = io.BytesIO()
        self.to_pil().save(buf, format="PNG")
        return buf.getvalue()
