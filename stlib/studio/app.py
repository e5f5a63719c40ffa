"""``Studio``: wires the controls (widgets), the worker (the thread that runs ``stylize``), sweeps and the
loss plot together. See the package docstring for a tour."""

from __future__ import annotations

import html
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..engine.settings import default_size
from ..images import ImageLoadError, bundled_images, resize
from ..model import VGG19Features, load_vgg19, resolve_device
from ..presets import preset_for
from ..result import StepInfo
from ..units import format_number
from . import sweep as sweeps
from .controls import Controls, status_html
from .inputs import ImageStore, png_bytes, uploaded_files
from .lossplot import LossPlot
from .sharesplot import SharesPlot
from .settings import StudioSettings, preset_settings
from .worker import Listener, Worker, readable_error


class Studio(Listener):
    """Interactive style transfer: controls, a live preview and loss plot, re-targeting while it runs.

    ``content``/``style``: bundled image names (or file paths) to start with. ``model``: a loaded
    ``VGG19Features`` (else one is loaded with ``weights``). ``size``/``steps``: starting values of those
    sliders (default 256 px on a CPU, 512 on a GPU; 200 steps). ``layout``: "notebook" or "projector" (fits a
    1280x720 screen). ``every``/``preview``/``plot_every_s``: see ``Worker``. From code: ``run()``, ``stop()``,
    ``wait()``, ``pin()``, ``use_preset(name)``, ``reset()``, ``sweep()``, ``save_sweep(path)``, ``image``;
    every widget is an attribute (``studio.style_weight.value = 1e6``).
    """

    def __init__(self, content: str = "astronaut", style: str = "swirls", *, model: VGG19Features | None = None,
                 weights: str | Path = "auto", device: str | torch.device = "auto", precision: str = "auto",
                 size: int | None = None, steps: int = 200, layout: str = "notebook", every: int = 1,
                 preview: str | None = "auto", plot_every_s: float = 1.0) -> None:
        model = model if model is not None else load_vgg19(weights, device=resolve_device(device))
        self.images = ImageStore()
        choices = {}
        for kind, start in (("content", content), ("style", style)):
            options = [(name, name) for name in bundled_images(kind)]
            if start not in dict(options).values():
                self.images.get(start)  # a clear ImageLoadError now for a misspelt name or a missing file
                options.append((Path(start).name, start))
            choices[kind] = options
        self.preset = preset_for(model.weights_source)
        self.controls = Controls(self.preset, content, style, choices["content"], choices["style"],
                                 size=int(size or default_size(model.mean.device)), steps=int(steps), layout=layout)
        self.worker = Worker(model, self.controls.settings, self.images, self, precision=precision, every=every,
                             preview=preview, plot_every_s=plot_every_s)
        self.model, self.device, self.widget = model, self.worker.device, self.controls.widget
        self.widget.studio = self  # so that stlib.studio.studio() can hand back just the widget
        self.start_settings = self.controls.settings()
        self._plot = LossPlot(330, 250, 12.0) if layout == "projector" else LossPlot()
        self._shares_plot = SharesPlot(560, 120, 10.0) if layout == "projector" else SharesPlot()
        #: Settings generation of the picture now in the preview, and how many previews so far.
        self.preview_generation, self.preview_count = -1, 0
        #: The pinned result shown beside the live one: (settings, image), or None.
        self.pinned_result: tuple[StudioSettings, torch.Tensor] | None = None
        self.sweeper = sweeps.Sweeper(self.worker, self.controls, self.on_status)
        self._estimate_token = 0
        self._wire()
        self._show_thumbnails()
        start = resize(self.images.get(content), 600 if self.controls.big else 320)
        self.preview.value = png_bytes(start)  # the picture a run starts from, never a broken-image icon
        self.loss_plot.value = self._plot.render([])
        self.shares_plot.value = self._shares_plot.render(None)
        self._refresh_estimate()

    def _wire(self) -> None:
        c = self.controls
        for w in c.setting_widgets():
            w.observe(self._on_setting_change, names="value")
        c.content_upload.observe(lambda ch: self._on_upload("content", ch["new"]), names="value")
        c.style_upload.observe(lambda ch: self._on_upload("style", ch["new"]), names="value")
        c.content_pick.observe(lambda _c: self._show_thumbnails(), names="value")
        c.style_pick.observe(lambda _c: self._show_thumbnails(), names="value")
        c.run_button.on_click(lambda _b: self.run())
        c.stop_button.on_click(lambda _b: self.stop(wait=False))
        c.pin_button.on_click(lambda _b: self.pin())
        c.reset_button.on_click(lambda _b: self.reset())
        c.preset_pick.observe(lambda ch: ch["new"] and self._guard(self.use_preset, ch["new"]), names="value")
        c.sweep_button.on_click(lambda _b: self._guard(self.sweeper.sweep, c.sweep_kind.value, c.sweep_n.value,
                                                        wait=False))
        c.sweep_save.on_click(lambda _b: self._guard(self.sweeper.save_clicked))

    def __getattr__(self, name: str) -> Any:
        """Widgets by name (``studio.style_weight``), the worker's state and jobs (``image``, ``calls``, ``run``,
        ``stop``, ``wait`` ...) and the sweeper's (``sweep``, ``sweep_plan``, ``save_sweep``, ``sweep_cells``)."""
        for part in ("controls", "worker", "sweeper"):
            owner = self.__dict__.get(part)
            if owner is not None and hasattr(owner, name):
                return getattr(owner, name)
        raise AttributeError(f"'Studio' object has no attribute {name!r}")

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # ------------------------------------------------------------------ what the worker reports
    def on_status(self, text: str, kind: str = "info") -> None:
        self.controls.status.value = status_html(text, kind, "130%" if self.controls.big else "100%")

    def on_preview(self, image: torch.Tensor, generation: int, info: StepInfo | None) -> None:
        self.preview_generation = generation
        self.controls.preview.value = png_bytes(image)
        self.preview_count += 1
        self.controls.pin_button.disabled = False
        if info is not None:
            self.controls.progress.max, self.controls.progress.value = info.steps, info.step
            rate = self.worker.pace.step_seconds(max(image.shape[-2:]))
            self.on_status(f"Running (settings #{generation}): step {info.step}/{info.steps} at {max(image.shape[-2:])} "
                        f"px, loss {info.losses['total']:.3g}" + (f", {rate:.2f} s/step" if rate else ""))

    def on_plot(self, history: list[dict[str, float]], retargets: list[int]) -> None:
        self.controls.loss_plot.value = self._plot.render(history, retargets)

    def on_shares(self, shares: Any, step: int) -> None:
        self.controls.shares_plot.value = self._shares_plot.render(shares, step)

    def on_busy(self, what: str | None) -> None:
        self.controls.set_busy(what)
        if what is None:
            self._refresh_estimate()  # now with this machine's measured speed

    def _guard(self, action: Any, *args: Any, **kwargs: Any) -> None:
        """Run a button's action; a ValueError/RuntimeError/OSError becomes the status line."""
        try:
            action(*args, **kwargs)
        except (ValueError, RuntimeError, OSError, ImageLoadError) as exc:
            self._show_error(exc)

    def _show_error(self, exc: BaseException) -> None:
        self.worker.error = readable_error(exc)
        self.on_status(self.worker.error, "error")

    # ------------------------------------------------------------------ controls
    def settings(self) -> StudioSettings:
        """The current values of all controls."""
        return self.controls.settings()

    def _on_setting_change(self, change: dict[str, Any]) -> None:
        self.worker.changed()
        if change.get("owner") in (self.controls.size, self.controls.steps, self.controls.optimizer):
            self._refresh_estimate()

    def _refresh_estimate(self) -> None:
        """Show ``stlib.estimate``'s prediction under the Run controls. In a background thread: the first call
        calibrates (a second or two on a quiet machine, far longer on a busy one), and the studio must not wait."""
        self._estimate_token += 1
        threading.Thread(target=self._write_estimate, args=(self._estimate_token,), daemon=True).start()

    def _write_estimate(self, token: int) -> None:
        s = self.settings()
        est = self.worker.pace.estimate(s)
        if token != self._estimate_token:
            return  # the controls changed again meanwhile: a newer thread writes the label
        text = f"{s.steps} steps at {s.size} px" + (f": {est.message}" if est is not None else "")
        slow = est is not None and est.seconds > 60
        self.controls.estimate_label.value = (f"<small style='color:{'#8a5300' if slow else '#555'}'>"
                                              f"{'slow: ' if slow else ''}{html.escape(text)}</small>")

    def use_preset(self, name: str) -> None:
        """Set the controls to a studio preset ("tutorial-like", "paper-like", "style wins", "content wins")."""
        self.controls.apply(preset_settings(self.settings(), self.preset, name))
        self.on_status(f"Preset: {name}." + (" Press Run." if not self.worker.running else ""))

    def reset(self) -> None:
        """Back to the settings the studio started with."""
        self.controls.preset_pick.value = ""
        self.controls.apply(replace(self.start_settings, content=self.settings().content,
                                    style=self.settings().style))
        self.on_status("Reset to the starting settings.")

    def pin(self) -> StudioSettings:
        """Keep the current picture beside the live one, to compare A/B; returns the settings it was made with."""
        if self.worker.image is None:
            raise RuntimeError("There is no picture to pin yet: press Run first.")
        s = self.settings()
        self.pinned_result = (s, self.worker.image.clone())
        self.controls.pinned.value = png_bytes(self.worker.image)
        self.controls.pinned.layout.display = None  # shown from now on (hidden so no empty frame before)
        self.controls.pinned_title.value = (f"<b>pinned</b>: style/content {format_number(s.style_weight / s.content_weight)}"
                                            f", TV {format_number(s.tv_weight)}, {len(s.style_layers)} layers")
        return s

    # ------------------------------------------------------------------ images
    def _on_upload(self, kind: str, value: Any) -> None:
        for name, data in uploaded_files(value):
            self.add_upload(kind, name, data)

    def add_upload(self, kind: str, name: str, data: bytes) -> bool:
        """Add an uploaded image file as a content or style choice and select it; False (and a status
        message) if it cannot be read."""
        if kind not in ("content", "style"):
            raise ValueError(f"kind must be 'content' or 'style', not {kind!r}")
        try:
            key = self.images.add_upload(name, data)
        except ImageLoadError as exc:
            self._show_error(exc)
            return False
        pick = self.controls.content_pick if kind == "content" else self.controls.style_pick
        pick.options = [opt for opt in pick.options if opt[1] != key] + [(f"\u2191 {name}", key)]
        pick.value = key
        self.worker.error = None
        image = self.images.get(key)
        self.on_status(f"Loaded {name} ({image.shape[-1]}\u00d7{image.shape[-2]} px) as the {kind} image.")
        return True

    def _show_thumbnails(self) -> None:
        c = self.controls
        for key, target in ((c.content_pick.value, c.content_thumb), (c.style_pick.value, c.style_thumb)):
            self._guard(lambda: setattr(target, "value", png_bytes(resize(self.images.get(str(key)), 128))))

    def close(self) -> None:
        """Stop the worker and close all widgets."""
        self.worker.stop(wait=True)
        self.widget.close()
