"""Sweeps: a small grid of results that differ in one setting, computed once so a lecture can flip
between them instantly, and saved as one titled PNG for the slides.

Why the ratio sweep is centred on a measured *balance*: a fixed range (say 10^-2 ... 10^2 around the
current weight) often lands where style already wins every cell, and then 1e6, 1e7 and 1e8 look the same.
What decides the picture is how the style term compares with the content term, so ``balance`` measures
both on the actual images (``stylize``'s own objective, ``stlib.engine.objective``, at the sweep's size) and
the cells span the region where one gives way to the other.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..engine.objective import compute_targets, objective
from ..images import resize
from ..layers import CONTENT_LAYERS, STYLE_LAYERS
from ..model import VGG19Features
from ..result import StepInfo
from ..units import format_number
from .inputs import png_bytes
from .settings import INIT_CHOICES, SWEEP_KINDS, StudioSettings
from .worker import Abort, Worker, abortable

#: Decades below and above the balance that the ratio sweep spans (see ``balance``). Measured on astronaut/swirls
#: with the offline weights (128 px, 40 L-BFGS steps; benchmarks/README.md): from 10^-2 to 10^0 x the balance
#: every cell still looked like the photo, the change to texture happens between 10^0.5 and 10^1.5 x.
RATIO_SPAN = (-0.5, 1.5)
#: TV weights relative to the style term at the start (style weight x style loss / TV of the photo); the
#: same run: speckle below 10^-3.5, flat patches from 10^-0.5.
TV_SPAN = (-3.5, -0.5)


@torch.no_grad()
def balance(model: VGG19Features, content: torch.Tensor, style: torch.Tensor, s: StudioSettings) -> dict[str, float]:
    """Loss scales measured on the images at ``s.size``: ``style`` = weighted style loss of the photo (the start),
    ``content`` = content loss of the style image (what losing the photo entirely would cost), ``tv`` = TV of
    the photo. ``style_weight`` = the weight at which style and content terms are equal."""
    c, st = resize(content, s.size).to(model.mean.device), resize(style, s.size).to(model.mean.device)
    layers = dict(s.style_layers) or {name: 1.0 for name in STYLE_LAYERS}
    content_layers = {name: 1.0 for name in CONTENT_LAYERS}
    targets = compute_targets(model, c, [st], content_layers, layers, [1.0])
    at_photo = objective(model, c, targets, {}, layers, 0.0, 1.0, 1.0)  # the start: the photo itself
    at_style = objective(model, st, targets, content_layers, {}, 1.0, 0.0, 0.0)  # the photo lost entirely
    style_term, content_term, tv = float(at_photo["style"]), float(at_style["content"]), float(at_photo["tv"])
    return {"style": style_term, "content": content_term, "tv": tv,
            "style_weight": s.content_weight * content_term / max(style_term, 1e-30)}


def _log_spaced(low: float, high: float, n: int) -> list[float]:
    return [10 ** (low + (high - low) * i / (n - 1)) for i in range(n)]


def sweep_plan(kind: str, s: StudioSettings, n: int = 5, scales: dict[str, float] | None = None,
               layer_weights: dict[str, float] | None = None) -> list[tuple[str, StudioSettings]]:
    """The cells of a sweep around ``s``: (title, settings). ``scales``: ``balance``'s numbers (without them
    the ratio sweep spans 10^-2 ... 10^2 around the current weight). ``layer_weights``: the weight of every
    style layer, ticked or not (for the layer sweeps)."""
    if kind in ("ratio", "tv") and n < 2:
        raise ValueError(f"a {kind} sweep needs at least 2 cells")
    if kind == "ratio":
        if scales:
            centre = math.log10(scales["style_weight"])
            weights = _log_spaced(centre + RATIO_SPAN[0], centre + RATIO_SPAN[1], n)
        else:
            weights = [s.style_weight * f for f in _log_spaced(-2, 2, n)]
        return [(f"style/content {format_number(w / s.content_weight)}", replace(s, style_weight=w)) for w in weights]
    if kind == "tv":
        ref = s.style_weight * scales["style"] / max(scales["tv"], 1e-30) if scales else max(s.tv_weight, 1.0) * 100
        weights = [0.0] + [ref * f for f in _log_spaced(*TV_SPAN, n - 1)]
        return [(f"TV weight {format_number(w)}", replace(s, tv_weight=w)) for w in weights]
    if kind == "init":
        return [(f"start: {label}", replace(s, init=value)) for label, value in INIT_CHOICES if value != "current"]
    if kind == "optimizer":
        return [("L-BFGS", replace(s, optimizer="lbfgs")), ("Adam", replace(s, optimizer="adam"))]
    if kind == "pooling":
        return [("max pooling", replace(s, pooling="max")), ("average pooling", replace(s, pooling="avg"))]
    weights = layer_weights or {name: s.style_layers.get(name, 1.0) for name in STYLE_LAYERS}
    if kind == "layers":
        cells = []
        for k in range(1, min(n, len(STYLE_LAYERS)) + 1):
            names = STYLE_LAYERS[:k]
            title = names[0] if k == 1 else f"{names[0]} \u2026 {names[-1]}"
            cells.append((title, replace(s, style_layers={m: weights[m] for m in names})))
        return cells
    if kind == "layer":
        return [(f"only {name}", replace(s, style_layers={name: weights[name]})) for name in STYLE_LAYERS[:max(n, 1)]]
    raise ValueError(f"kind must be one of {', '.join(k for _, k in SWEEP_KINDS)}, not {kind!r}")


def save_grid(cells: list[tuple[str, torch.Tensor]], label: str, path: str | Path) -> Path:
    """Save ``(title, image)`` cells as one PNG grid titled ``label`` (``stlib.plots.show_images``)."""
    out = Path(path).expanduser()
    if out.suffix.lower() != ".png":
        raise ValueError(f"save_sweep writes a PNG: give a path ending in .png, not {str(path)!r}")
    from ..plots import show_images

    fig = show_images([image for _, image in cells], titles=[title for title, _ in cells], size=2.6)
    fig.suptitle(label, fontsize=11)
    fig.tight_layout(pad=0.3, rect=(0, 0, 1, 0.93))  # room for the suptitle above the cell titles
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=100)
    return out


def run_sweep(worker: Worker, plan: list[tuple[str, StudioSettings]], steps: int,
              start_image: torch.Tensor | None, tick: Callable[[int], None],
              cell_done: Callable[[str, torch.Tensor], None]) -> None:
    """Compute every cell of ``plan`` with ``steps`` steps from the same start (in the worker thread);
    ``tick(steps done)`` after every step, ``cell_done(title, image)`` after every cell. Stop ends it."""
    for i, (title, s) in enumerate(plan):
        init: str | torch.Tensor = s.init
        if s.init == "current":
            init = start_image if start_image is not None else "content"

        def on_step(info: StepInfo, done: int = i * steps) -> None:
            if worker.stop_flag.is_set():
                raise Abort()
            tick(done + info.step)

        with abortable(worker.model_for(s.pooling), worker.stop_flag):
            result = worker.stylize(s, init=init, steps=steps, callback=on_step, every=1)
        cell_done(title, result.image)


class Sweeper:
    """The Sweep tab's job: computes a sweep in the worker thread, keeps the cells, flips and saves them.
    ``controls`` is the studio's ``Controls``; ``status(text, kind)`` writes the status line."""

    def __init__(self, worker: Worker, controls: Any, status: Callable[..., None]) -> None:
        self.worker, self.controls, self.status = worker, controls, status
        #: One (title, PNG bytes, image) per cell, and what was swept.
        self.sweep_cells: list[tuple[str, bytes, torch.Tensor]] = []
        self.sweep_label = ""
        controls.sweep_pick.observe(lambda _c: self.show_cell(), names="value")

    def sweep_plan(self, kind: str = "ratio", n: int = 5, *, measure: bool = False,
                   settings: StudioSettings | None = None) -> list[tuple[str, StudioSettings]]:
        """The cells of a sweep around the current settings (``sweep_plan``); ``measure`` centres ratio and TV
        sweeps on loss scales measured on the images (``balance``)."""
        s = settings or self.controls.settings()
        scales = None
        if measure and kind in ("ratio", "tv"):
            images = self.worker.images
            scales = balance(self.worker.model_for(s.pooling), images.get(s.content), images.get(s.style), s)
        weights = {name: float(w.value) for name, w in self.controls.layer_weight.items()}
        return sweep_plan(kind, s, n, scales, weights)

    def sweep(self, kind: str = "ratio", n: int = 5, *, steps: int | None = None, size: int | None = None,
              wait: bool = True) -> list[tuple[str, bytes, torch.Tensor]]:
        """Precompute a small grid of results (see ``sweep_plan``; ratio and TV ranges come from the measured
        losses), each from the same start, ``steps`` steps at ``size`` px (defaults: the Sweep tab's steps,
        the size slider). The "show cell" slider then flips between them instantly. Returns ``sweep_cells``
        (with ``wait``; else it runs in the background)."""
        c = self.controls
        n_steps = int(steps if steps is not None else c.sweep_steps.value)
        if n_steps < 1:
            raise ValueError("steps must be at least 1")
        s = c.settings()
        s = replace(s, size=int(size or s.size))
        sweep_plan(kind, s, int(n))  # a clear ValueError for a bad kind, before the thread starts
        c.sweep_kind.value, c.sweep_steps.value, c.sweep_n.value = kind, n_steps, int(n)
        self.sweep_label = f"{kind} sweep, {n_steps} steps at {s.size} px"
        if not self.worker.start(lambda: self._job(kind, int(n), n_steps, s), "sweep"):
            raise RuntimeError("The studio is busy: stop the run before starting a sweep.")
        if wait:
            self.worker.wait()
            if self.worker.error:
                raise RuntimeError(self.worker.error)
        return self.sweep_cells

    def _job(self, kind: str, n: int, steps: int, s: StudioSettings) -> None:
        c = self.controls
        self.status("Sweep: measuring the losses at the start ...")
        plan = self.sweep_plan(kind, n, measure=True, settings=s)
        self.sweep_cells, c.sweep_pick.disabled = [], True
        c.sweep_progress.max, c.sweep_progress.value = len(plan) * steps, 0
        self.status(f"Sweep: computing {len(plan)} cells ({', '.join(t for t, _ in plan)}) ...")
        run_sweep(self.worker, plan, steps, self.worker.image, lambda done: setattr(c.sweep_progress, "value", done),
                  self._add_cell)
        self.status(f"Sweep done: {len(plan)} cells. Use 'show cell' on the Sweep tab to flip between them.", "done")

    def _add_cell(self, title: str, image: torch.Tensor) -> None:
        c = self.controls
        self.sweep_cells.append((title, png_bytes(image), image))
        c.sweep_pick.max = len(self.sweep_cells)  # lowering max also lowers a larger value (7 and 8)
        c.sweep_pick.disabled = False
        c.sweep_pick.value = len(self.sweep_cells)
        self.show_cell()

    def show_cell(self) -> None:
        """Show the cell the "show cell" slider points at."""
        if self.sweep_cells:
            i = min(max(int(self.controls.sweep_pick.value), 1), len(self.sweep_cells)) - 1
            title, png, _ = self.sweep_cells[i]
            self.controls.sweep_image.value = png
            self.controls.sweep_title.value = f"<b>{i + 1}/{len(self.sweep_cells)}: {html.escape(title)}</b>"

    def save_sweep(self, path: str | Path) -> Path:
        """Save the sweep as one PNG grid, each cell titled with its setting; returns the path."""
        if not self.sweep_cells:
            raise RuntimeError("There is no sweep to save yet: run studio.sweep() (or Compute sweep) first.")
        return save_grid([(title, image) for title, _, image in self.sweep_cells], self.sweep_label, path)

    def save_clicked(self) -> None:
        """The Save grid button."""
        self.status(f"Saved the sweep grid to {self.save_sweep(self.controls.sweep_path.value)}.", "done")
