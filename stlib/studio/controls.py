"""The studio's widget tree: every control, the preview and plot images, arranged for a notebook or a
projector. No torch and no running here: ``Controls.settings()`` reads the controls, ``apply`` sets them.

Works with ipywidgets 7.7 (Google Colab) and 8 (JupyterLab 4): only widgets and traits both have are used;
comments naming "ipywidgets 7" / "8" (or "7 and 8") mark where the versions differ or were checked.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import ipywidgets as W

from ..layers import STYLE_LAYERS
from ..presets import Preset
from .settings import INIT_CHOICES, OPTIMIZER_CHOICES, POOLING_CHOICES, PRESETS, SWEEP_KINDS, StudioSettings

#: One arrow-key press on a weight slider moves it by half a decade (x3.2): two presses are a factor of 10,
#: a difference the picture shows. (At a tenth of a decade, x1.26, two presses barely changed it.)
LOG_STEP = 0.5
LAYOUTS = ("notebook", "projector")
STATUS_COLORS = {"info": "#333", "warn": "#8a5300", "error": "#b00020", "done": "#1b5e20"}
STATUS_ICONS = {"info": "", "warn": "\u23f3 ", "error": "\u26a0 ", "done": "\u2714 "}


def status_html(text: str, kind: str = "info", size: str = "100%") -> str:
    """The status line's HTML: colour and icon by ``kind`` ("info", "warn", "error", "done")."""
    return (f"<div style='color:{STATUS_COLORS[kind]};font-size:{size};min-height:2.6em;line-height:1.3em;"
            f"white-space:normal'>{STATUS_ICONS[kind]}{html.escape(text)}</div>")


def _exponent_range(value: float, below: int, above: int) -> tuple[int, int]:
    centre = math.floor(math.log10(value)) if value > 0 else 0
    return centre - below, centre + above


class Controls:
    """All widgets of one studio. ``layout``: "notebook" (about 850 px wide) or "projector" (fits 1280x720:
    a 600 px preview beside the controls, a 12 pt loss plot). ``content_choices``/``style_choices`` are
    dropdown options ``(label, key)``."""

    def __init__(self, preset: Preset, content: str, style: str, content_choices: list[tuple[str, str]],
                 style_choices: list[tuple[str, str]], *, size: int, steps: int, layout: str = "notebook") -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
        self.layout = layout
        self.big = layout == "projector"
        self._label = {"description_width": "112px"}
        self._build_inputs(preset, content, style, content_choices, style_choices, size, steps)
        self._build_outputs()
        self._build_sweep(steps)
        self.widget = self._arrange_projector() if self.big else self._arrange_notebook()
        # CSS classes (add_class: ipywidgets 7 and 8) so that a browser test, or a custom stylesheet, finds them
        for w, name in ((self.preview, "preview"), (self.status, "status"), (self.style_weight, "style-weight"),
                        (self.run_button, "run"), (self.stop_button, "stop"), (self.loss_plot, "loss-plot"),
                        (self.shares_plot, "shares-plot"), (self.style_scale, "style-scale"),
                        (self.sweep_image, "sweep-image"), (self.sweep_pick, "sweep-pick"), (self.pin_button, "pin"),
                        (self.pinned, "pinned"), (self.preset_pick, "preset"), (self.reset_button, "reset"),
                        (self.controls_box, "controls"), (self.widget, "root")):
            w.add_class(f"stlib-studio-{name}")

    # ------------------------------------------------------------------ widgets
    def _log_slider(self, desc: str, value: float, below: int, above: int) -> W.FloatLogSlider:
        # continuous_update=False: a drag re-targets once, on release (keyboard arrows: once per press)
        lo, hi = _exponent_range(value, below, above)
        return W.FloatLogSlider(value=value, base=10, min=lo, max=hi, step=LOG_STEP, description=desc,
                                readout_format=".2g", continuous_update=False, style=self._label,
                                layout=W.Layout(width="100%"))

    def _build_inputs(self, preset: Preset, content: str, style: str, content_choices: list[tuple[str, str]],
                      style_choices: list[tuple[str, str]], size: int, steps: int) -> None:
        label, full = self._label, W.Layout(width="100%")
        pick = W.Layout(width="250px")
        self.content_pick = W.Dropdown(options=content_choices, value=content, description="content", style=label,
                                       layout=pick)
        self.style_pick = W.Dropdown(options=style_choices, value=style, description="style", style=label, layout=pick)
        self.content_upload = W.FileUpload(accept="image/*", multiple=False, description="Upload",
                                           layout=W.Layout(width="120px"))
        self.style_upload = W.FileUpload(accept="image/*", multiple=False, description="Upload",
                                         layout=W.Layout(width="120px"))
        thumb = W.Layout(height="96px" if self.big else "72px", width="auto", margin="0 0 0 6px")
        self.content_thumb = W.Image(format="png", layout=thumb)
        self.style_thumb = W.Image(format="png", layout=thumb)
        # stroke size: the painting's size relative to the output (stylize's style_scale), 1/2 ... 4 on a log scale
        # (not below 1/2: at the studio's smallest preview, 64 px, a quarter-size painting is too small for relu5_1)
        self.style_scale = W.FloatLogSlider(value=1.0, base=2, min=-1, max=2, step=0.25, description="stroke size",
                                            readout_format=".2g", continuous_update=False, style=label,
                                            layout=W.Layout(width="100%"))

        self.content_weight = self._log_slider("content weight", preset.content_weight, 3, 3)
        self.style_weight = self._log_slider("style weight", preset.style_weight, 4, 4)
        self.tv_on = W.Checkbox(value=preset.tv_weight > 0, description="", indent=False, layout=W.Layout(width="28px"))
        self.tv_weight = self._log_slider("TV weight", preset.tv_weight if preset.tv_weight > 0 else 1.0, 3, 3)
        self.layer_on: dict[str, W.Checkbox] = {}
        self.layer_weight: dict[str, W.FloatLogSlider] = {}
        for name in STYLE_LAYERS:
            w = preset.style_layers.get(name, 1.0)
            self.layer_on[name] = W.Checkbox(value=name in preset.style_layers, description="", indent=False,
                                             layout=W.Layout(width="28px"))
            self.layer_weight[name] = self._log_slider(name, w if w > 0 else 1.0, 2, 3)

        self.size = W.IntSlider(value=size, min=64, max=1024, step=32, description="size (px)",
                                continuous_update=False, style=label, layout=full)
        self.steps = W.IntSlider(value=steps, min=5, max=1000, step=5, description="steps", continuous_update=False,
                                 style=label, layout=full)
        drop = W.Layout(width="280px")
        self.optimizer = W.Dropdown(options=list(OPTIMIZER_CHOICES), value="lbfgs", description="optimizer",
                                    style=label, layout=drop)
        self.init = W.Dropdown(options=list(INIT_CHOICES), value="content", description="start from", style=label,
                               layout=drop)
        self.pooling = W.Dropdown(options=list(POOLING_CHOICES), value="max", description="pooling", style=label,
                                  layout=drop)
        self.keep_colors = W.Checkbox(value=False, description="keep the photo's colours (luminance only)",
                                      indent=False)
        self.estimate_label = W.HTML(value="")

    def _build_outputs(self) -> None:
        button = W.Layout(width="96px" if self.big else "90px")
        self.run_button = W.Button(description="Run", button_style="success", icon="play", layout=button)
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True,
                                    layout=button)
        self.pin_button = W.Button(description="Pin", icon="thumb-tack", disabled=True, layout=button,
                                   tooltip="keep the current picture beside the live one, to compare")
        self.preset_pick = W.Dropdown(options=[("preset\u2026", "")] + [(p.name, p.name) for p in PRESETS], value="",
                                      layout=W.Layout(width="150px"))
        self.reset_button = W.Button(description="Reset", icon="undo", layout=button,
                                     tooltip="back to the settings the studio started with")
        self.progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="100%", height="14px"))
        self.status = W.HTML(value=status_html("Ready. Press Run, then move the sliders while it runs."))
        side = "600px" if self.big else "320px"
        self.preview = W.Image(format="png", layout=W.Layout(width=side, height=side, object_fit="contain",
                                                             border="1px solid #ccc"))
        pin_side = "280px" if self.big else "320px"
        self.pinned = W.Image(format="png", layout=W.Layout(width=pin_side, height=pin_side, object_fit="contain",
                                                            border="1px solid #ccc", display="none"))
        self.pinned_title = W.HTML(value="")
        self.loss_plot = W.Image(format="png", layout=W.Layout(width="auto", height="auto"))
        self.shares_plot = W.Image(format="png", layout=W.Layout(width="auto", height="auto"))

    def _build_sweep(self, steps: int) -> None:
        label, full = self._label, W.Layout(width="100%")
        self.sweep_kind = W.Dropdown(options=list(SWEEP_KINDS), value="ratio", description="sweep over", style=label,
                                     layout=W.Layout(width="300px"))
        self.sweep_n = W.IntSlider(value=5, min=2, max=9, description="cells", style=label, layout=full)
        self.sweep_steps = W.IntSlider(value=min(int(steps), 100), min=5, max=500, step=5, description="steps per cell",
                                       style=label, layout=full)
        self.sweep_button = W.Button(description="Compute sweep", button_style="info", icon="th",
                                     layout=W.Layout(width="160px"))
        self.sweep_progress = W.IntProgress(value=0, min=0, max=1, description="progress", style=label,
                                            layout=W.Layout(width="96%"))
        self.sweep_pick = W.IntSlider(value=1, min=1, max=1, description="show cell", disabled=True, style=label,
                                      layout=full)  # continuous: flipping between cached PNGs costs nothing
        self.sweep_title = W.HTML(value="<i>No sweep yet.</i>")
        side = "200px" if self.big else "320px"
        self.sweep_image = W.Image(format="png", layout=W.Layout(width=side, height=side, object_fit="contain"))
        self.sweep_path = W.Text(value="sweep.png", description="save grid as", style=label,
                                 layout=W.Layout(width="300px"))
        self.sweep_save = W.Button(description="Save grid", icon="save", layout=W.Layout(width="110px"))

    # ------------------------------------------------------------------ arrangement
    def _groups(self) -> list[tuple[str, W.Widget]]:
        def spacer() -> W.Box:  # where other rows have an on/off box, so all sliders line up
            return W.Box(layout=W.Layout(width="28px", min_width="28px"))

        images = W.VBox([
            W.HBox([self.content_pick, self.content_upload, self.content_thumb], layout=W.Layout(align_items="center")),
            W.HBox([self.style_pick, self.style_upload, self.style_thumb], layout=W.Layout(align_items="center")),
            self.style_scale,
        ])
        weights = W.VBox([W.HBox([spacer(), self.content_weight]), W.HBox([spacer(), self.style_weight]),
                          W.HBox([self.tv_on, self.tv_weight])])
        layers = W.VBox([W.HBox([self.layer_on[n], self.layer_weight[n]]) for n in STYLE_LAYERS])
        run = W.VBox([self.size, self.steps, self.optimizer, self.init, self.pooling, self.keep_colors,
                      self.estimate_label])
        return [("Objective weights", weights), ("Style layers (tick to use)", layers), ("Images", images),
                ("Run", run)]

    def _sweep_panel(self, width: str) -> W.Widget:
        return W.HBox([
            W.VBox([self.sweep_kind, self.sweep_n, self.sweep_steps, W.HBox([self.sweep_button]), self.sweep_progress,
                    self.sweep_pick, W.HBox([self.sweep_path, self.sweep_save])], layout=W.Layout(width=width)),
            W.VBox([self.sweep_title, self.sweep_image], layout=W.Layout(margin="0 0 0 12px")),
        ])

    def _buttons(self) -> W.HBox:
        return W.HBox([self.run_button, self.stop_button, self.pin_button, self.preset_pick, self.reset_button],
                      layout=W.Layout(flex_flow="row wrap"))

    def _arrange_notebook(self) -> W.VBox:
        def group(title: str, body: W.Widget) -> W.VBox:
            return W.VBox([W.HTML(value=f"<b>{html.escape(title)}</b>"), body],
                          layout=W.Layout(border="1px solid #ddd", padding="4px 8px", margin="0 0 6px 0"))

        self.controls_box = W.VBox([group(t, b) for t, b in self._groups()], layout=W.Layout(width="480px"))
        output = W.VBox([self._buttons(), self.progress, self.status, self.preview, self.pinned_title, self.pinned,
                         W.HTML(value="<small>loss (log scale); dashed lines: settings changed</small>"),
                         self.loss_plot, W.HTML(value="<small>each style layer's share of the style loss and of "
                                                     "its gradient (live)</small>"), self.shares_plot],
                        layout=W.Layout(width="340px", margin="0 0 0 12px"))
        self.tabs = W.Tab(children=[W.HBox([self.controls_box, output]), self._sweep_panel("480px")])
        # ipywidgets 7/8: set_title exists in both (8 also has a `titles` trait, 7 does not).
        for i, title in enumerate(("Studio", "Sweep")):
            self.tabs.set_title(i, title)
        return W.VBox([W.HTML(value="<h3 style='margin:4px 0'>stlib studio</h3>"), self.tabs])

    def _arrange_projector(self) -> W.HBox:
        groups = self._groups()
        for _, body in groups:
            body.layout.width = "100%"  # else the sliders' tracks shrink to nothing inside a tab
        pages = [W.VBox([body], layout=W.Layout(padding="4px", width="100%")) for _, body in groups]
        pages[1].children = (*pages[1].children, self.shares_plot)  # the live bars beside the layer sliders
        pages.append(self._sweep_panel("300px"))
        self.tabs = W.Tab(children=pages, layout=W.Layout(height="265px", overflow="auto"))
        for i, title in enumerate(("Weights", "Layers", "Images", "Run", "Sweep")):
            self.tabs.set_title(i, title)
        self.controls_box = W.VBox([self._buttons(), self.progress, self.tabs], layout=W.Layout(width="100%"))
        compare = W.HBox([W.VBox([self.pinned_title, self.pinned], layout=W.Layout(width="300px")), self.loss_plot],
                         layout=W.Layout(align_items="flex-start"))
        left = W.VBox([self.preview, self.status], layout=W.Layout(width="610px", min_width="610px"))
        right = W.VBox([self.controls_box, compare], layout=W.Layout(width="640px", margin="0 0 0 12px"))
        return W.HBox([left, right], layout=W.Layout(width="1262px"))

    # ------------------------------------------------------------------ values
    def settings(self) -> StudioSettings:
        """The current values of all controls."""
        layers = {name: float(self.layer_weight[name].value) for name in STYLE_LAYERS if self.layer_on[name].value}
        return StudioSettings(
            content=str(self.content_pick.value), style=str(self.style_pick.value),
            content_weight=float(self.content_weight.value), style_weight=float(self.style_weight.value),
            style_layers=layers, tv_weight=float(self.tv_weight.value) if self.tv_on.value else 0.0,
            size=int(self.size.value), steps=int(self.steps.value), optimizer=str(self.optimizer.value),
            init=str(self.init.value), preserve_color=bool(self.keep_colors.value), pooling=str(self.pooling.value),
            style_scale=float(self.style_scale.value),
        )

    def apply(self, s: StudioSettings) -> None:
        """Set the controls to ``s`` (sliders widen their range when a value lies outside it)."""
        def put(slider: W.FloatLogSlider, value: float) -> None:
            exponent = math.log10(value)
            slider.min, slider.max = min(slider.min, math.floor(exponent)), max(slider.max, math.ceil(exponent))
            slider.value = value

        put(self.content_weight, s.content_weight)
        put(self.style_weight, s.style_weight)
        self.tv_on.value = s.tv_weight > 0
        if s.tv_weight > 0:
            put(self.tv_weight, s.tv_weight)
        for name in STYLE_LAYERS:
            self.layer_on[name].value = name in s.style_layers
            if name in s.style_layers and s.style_layers[name] > 0:
                put(self.layer_weight[name], s.style_layers[name])
        self.optimizer.value, self.init.value, self.pooling.value = s.optimizer, s.init, s.pooling
        self.keep_colors.value = s.preserve_color
        self.size.value, self.steps.value = s.size, s.steps
        self.style_scale.value = s.style_scale

    def setting_widgets(self) -> Sequence[W.Widget]:
        """Every widget whose value is part of ``settings()``."""
        return [self.content_pick, self.style_pick, self.content_weight, self.style_weight, self.tv_on, self.tv_weight,
                self.size, self.steps, self.optimizer, self.init, self.pooling, self.keep_colors, self.style_scale,
                *self.layer_on.values(), *self.layer_weight.values()]

    def set_busy(self, what: str | None) -> None:
        """Show whether a job runs: buttons, and a CSS class a stylesheet or test can see."""
        running = what is not None
        self.run_button.disabled = self.sweep_button.disabled = running
        self.stop_button.disabled = not running
        self.run_button.description = "Running\u2026" if what == "run" else "Run"
        (self.widget.add_class if running else self.widget.remove_class)("stlib-studio-busy")
