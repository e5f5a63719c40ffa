"""The live studio: sliders around ``stylize`` that re-target a running optimisation.

    from stlib.studio import Studio
    studio = Studio("astronaut", "swirls")
    studio          # shows the controls; press Run, then move the sliders

How it stays responsive: the optimisation runs in one worker thread (torch releases the GIL, so the
kernel keeps answering the browser). A slider change only bumps a *settings generation* and raises an
abort flag; the worker notices within one network layer (hooks on the model raise ``_Abort``), throws
away the current ``stylize`` call and starts a new one from the current image (a warm start) with the
latest settings. Changes are coalesced: ten quick ticks cause at most a couple of restarts, never a queue.
On a slow CPU the first steps after a restart run at a smaller "preview" size (``stylize``'s coarse-to-fine
``scales``), so the first picture under the new settings arrives within about a second.

Works with ipywidgets 7.7 (Google Colab) and 8 (JupyterLab 4): only widgets and traits both have are used;
comments naming "ipywidgets 7" / "8" (or "7 and 8") mark where the versions differ or were checked.
"""

from __future__ import annotations

import contextlib
import html
import io
import math
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import ipywidgets as widgets
import torch
from PIL import Image

from .color import recombine_color
from .images import ImageLoadError, bundled_images, load_image, resize, to_pil
from .layers import STYLE_LAYERS, VGG19_LAYERS, layer_channels, layer_index, layer_stride
from .model import VGG19Features, load_vgg19, resolve_device
from .engine.precision import resolve_precision
from .presets import preset_for
from .transfer import StepInfo, StylizeResult, stylize

#: Largest long edge an image is kept at once loaded (stylize shrinks it further to the chosen size).
MAX_SIZE = 1024
#: A run whose estimate exceeds this many seconds gets a warning in the status line before it starts.
SLOW_RUN_S = 60.0
#: After a slider change the first preview should come within about a second: the preview-stage step
#: (targets + one step at the preview size) is planned to take at most this long.
PREVIEW_STEP_BUDGET_S = 0.3
#: Previews are sent to the browser at most this often (each is a PNG over the websocket).
MIN_PREVIEW_INTERVAL_S = 0.1
INIT_CHOICES = (("content photo", "content"), ("noise", "noise"), ("style image", "style"),
                ("current image", "current"))
UPLOAD_PREFIX = "upload:"


class _Abort(Exception):
    """Raised inside the worker (from model hooks or the callback) to end the current ``stylize`` call."""


@dataclass(frozen=True)
class StudioSettings:
    """Everything the controls decide, read in one go; ``content``/``style`` are bundled names or upload keys."""

    content: str
    style: str
    content_weight: float
    style_weight: float
    style_layers: Dict[str, float]
    tv_weight: float
    size: int
    steps: int
    optimizer: str
    init: str
    preserve_color: bool

    def changes_from(self, other: "StudioSettings") -> List[str]:
        """Short human descriptions of what differs from ``other`` (e.g. ``"style weight 1e+05 -> 1e+06"``)."""
        out: List[str] = []
        for name in ("content", "style", "content_weight", "style_weight", "tv_weight", "size", "steps",
                     "optimizer", "init", "preserve_color"):
            old, new = getattr(other, name), getattr(self, name)
            if old != new:
                fmt = (lambda v: f"{v:.3g}") if isinstance(new, float) else str
                out.append(f"{name.replace('_', ' ')} {fmt(old)} \u2192 {fmt(new)}")
        if self.style_layers != other.style_layers:
            out.append("style layers")
        return out


@dataclass
class StylizeCall:
    """One ``stylize`` call the worker made: which settings generation, and whether it was a warm start."""

    generation: int
    settings: StudioSettings
    warm: bool
    init: Union[str, torch.Tensor]
    preview_size: Optional[int]
    started: float
    first_preview: Optional[float] = None
    last_image: Optional[torch.Tensor] = None
    outcome: str = "running"


@dataclass
class Estimate:
    """How long and how much memory a run should take, and where the numbers came from."""

    seconds: Optional[float]
    peak_bytes: Optional[int]
    source: str
    message: str = ""


# --------------------------------------------------------------------------- small helpers
def uploaded_files(value: Any) -> List[Tuple[str, bytes]]:
    """``(name, bytes)`` for each file in a ``FileUpload.value``, for ipywidgets 7 and 8 alike."""
    if not value:
        return []
    files: List[Tuple[str, bytes]] = []
    if isinstance(value, dict):
        # ipywidgets 7: {filename: {"metadata": {"name", "type", "size", "lastModified"}, "content": bytes}}
        for key, entry in value.items():
            name = entry.get("metadata", {}).get("name", key) if isinstance(entry, dict) else key
            files.append((str(name), bytes(entry["content"])))
    else:
        # ipywidgets 8: a tuple of {"name", "type", "size", "last_modified", "content": memoryview}
        for entry in value:
            files.append((str(entry.get("name", "upload")), bytes(entry["content"])))
    return files


def decode_upload(name: str, data: bytes, max_size: int = MAX_SIZE) -> torch.Tensor:
    """Decode an uploaded file's bytes into a (1, 3, H, W) image, or raise ImageLoadError naming the file."""
    if not data:
        raise ImageLoadError(f"Could not load {name!r}: the file is empty. Upload it again.")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            pil = img.copy()
    except Image.DecompressionBombError:
        raise ImageLoadError(
            f"Could not load {name!r}: it has too many pixels to open safely. Upload a smaller copy "
            f"(a long edge of {max_size} px is plenty)."
        ) from None
    except Exception as exc:  # PIL raises several unrelated types for bad files
        raise ImageLoadError(
            f"Could not load {name!r}: it is not an image Pillow can read ({type(exc).__name__}). "
            "Upload a PNG or JPEG file."
        ) from None
    try:
        return load_image(pil, max_size=max_size)
    except ImageLoadError as exc:
        raise ImageLoadError(f"Could not load {name!r}: {exc}") from None


def png_bytes(image: torch.Tensor, compress_level: int = 1) -> bytes:
    """PNG bytes of an image (1, 3, H, W) in [0, 1]; low compression, because speed matters more here."""
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def rough_peak_bytes(size: int, precision: str = "fp32") -> int:
    """A rough upper bound on the memory of one stylize step at ``size`` px (square): activations kept for the
    backward pass up to relu5_1 (each twice: value and gradient), plus the network's weights."""
    per_value = 2 if precision in ("bf16", "fp16") else 4
    elements = 0
    for name in VGG19_LAYERS[: layer_index("relu5_1") + 1]:
        side = size / layer_stride(name)
        elements += layer_channels(name) * int(side) ** 2
    weights = 20_024_384 * 4  # parameters of VGG-19's 16 convolutions, float32
    return 2 * elements * per_value + weights + 4 * 3 * size * size * 8


def format_seconds(seconds: float) -> str:
    """``42 s``, ``3 min 5 s`` or ``1 h 2 min``: a duration a person reads at a glance."""
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def _available_bytes() -> Optional[int]:
    """Memory the operating system says is available (Linux), else None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _library_estimator() -> Optional[Callable[..., Any]]:
    """``stlib.estimate`` if this version of stlib has it (a function, or a module holding one), else None."""
    import importlib

    import stlib

    found = getattr(stlib, "estimate", None)
    if found is not None and not callable(found):
        found = getattr(found, "estimate", None)
    if found is None:
        try:
            found = getattr(importlib.import_module("stlib.engine.budget"), "estimate", None)
        except ImportError:
            return None
    return found if callable(found) else None


@contextlib.contextmanager
def _abortable(model: VGG19Features, flag: threading.Event) -> Iterator[None]:
    """While active, ``model`` raises ``_Abort`` soon after ``flag`` is set: before any layer of a forward pass,
    and between layers of a backward pass. That is what lets a slider or Stop interrupt a step that takes
    seconds on a CPU, instead of waiting for it to finish. The hooks are removed on exit.

    Only the thread that entered the context is interrupted (CPU backward passes run on that thread too), so
    another studio or notebook cell using the same model at the same time is left alone."""
    owner = threading.get_ident()

    def check(*_: Any) -> None:
        if flag.is_set() and threading.get_ident() == owner:
            raise _Abort()

    def after(module: torch.nn.Module, inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(check)  # runs during backward; returns None, so the gradient is unchanged

    handles = []
    for module in model.layers.children():
        handles.append(module.register_forward_pre_hook(check))
        handles.append(module.register_forward_hook(after))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _exponent_range(value: float, below: int, above: int) -> Tuple[int, int]:
    centre = math.floor(math.log10(value)) if value > 0 else 0
    return centre - below, centre + above


class LossPlot:
    """A small log-scale plot of the loss terms, rendered to PNG bytes. The figure is made once and only its
    lines move on each redraw (about 4x cheaper than a fresh figure); matplotlib's Agg canvas, no pyplot."""

    TERMS = (("total", "black"), ("style", "tab:red"), ("content", "tab:blue"), ("tv", "tab:green"))

    def __init__(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        self._lock = threading.Lock()
        self._fig = Figure(figsize=(4.0, 2.2), dpi=80)
        self._canvas = FigureCanvasAgg(self._fig)
        self._ax = self._fig.add_subplot(1, 1, 1)
        self._lines = {key: self._ax.plot([], [], color=colour, lw=1.2, label=key)[0] for key, colour in self.TERMS}
        self._marks: List[Any] = []
        self._ax.set_yscale("log")
        self._ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        self._ax.set_xlabel("step", fontsize=8)
        self._ax.tick_params(labelsize=7)
        self._fig.subplots_adjust(left=0.15, right=0.98, top=0.96, bottom=0.19)  # fixed: tick labels fit

    def render(self, history: Sequence[Dict[str, float]], marks: Sequence[int] = ()) -> bytes:
        """PNG of ``history`` (dicts with ``step`` and the terms), dashed vertical lines at the steps ``marks``."""
        with self._lock:
            ax = self._ax
            steps = [h["step"] for h in history]
            shown = []
            for key, line in self._lines.items():
                values = [h.get(key, 0.0) for h in history]
                visible = any(v > 0 for v in values)
                positive = [v if v > 0 else math.nan for v in values]  # a zero (e.g. content at step 0) has no log
                line.set_data(steps if visible else [], positive if visible else [])
                line.set_visible(visible)
                if visible:
                    shown.append(line)
            for mark in self._marks:
                mark.remove()
            self._marks = [ax.axvline(step, color="grey", ls="--", lw=0.8) for step in marks]
            legend = ax.get_legend()
            if legend is not None:
                legend.remove()
            if shown:
                ax.legend(handles=shown, fontsize=7, loc="upper right", frameon=False)
                ax.relim(visible_only=True)
                ax.autoscale_view()
            self._canvas.draw()
            width, height = self._canvas.get_width_height()
            rgba = Image.frombuffer("RGBA", (width, height), bytes(self._canvas.buffer_rgba()), "raw", "RGBA", 0, 1)
            buf = io.BytesIO()
            rgba.convert("RGB").save(buf, format="PNG", compress_level=1)
            return buf.getvalue()


# --------------------------------------------------------------------------- the studio
class Studio:
    """Interactive style transfer: controls, a live preview and loss plot, re-targeting while it runs.

    ``content``/``style``: bundled image names to start with. ``model``: a loaded ``VGG19Features`` to use
    (else one is loaded with ``weights``). ``size``/``steps``: starting values of those sliders (default
    256 px on a CPU, 512 on a GPU; 200 steps). ``every``: preview every this many steps. ``preview``:
    "auto" runs the first steps after a change at a smaller size when full-size steps are slow; None never.
    Programmatic use: ``run()``, ``stop()``, ``wait()``, ``sweep()``, ``save_sweep(path)``, ``image``.
    """

    def __init__(
        self,
        content: str = "astronaut",
        style: str = "swirls",
        *,
        model: Optional[VGG19Features] = None,
        weights: Union[str, Path] = "auto",
        device: Union[str, torch.device] = "auto",
        precision: str = "auto",
        size: Optional[int] = None,
        steps: int = 200,
        every: int = 1,
        preview: Optional[str] = "auto",
        plot_every_s: float = 1.0,
    ) -> None:
        if every < 1:
            raise ValueError("every must be >= 1 (the preview updates every `every` steps)")
        if preview not in ("auto", None):
            raise ValueError(f"preview must be 'auto' or None, not {preview!r}")
        self.model = model if model is not None else load_vgg19(weights, device=resolve_device(device))
        self.device = self.model.mean.device
        self.precision = precision
        self.precision_resolved = resolve_precision(precision, self.device)
        self.every = int(every)
        self.preview_mode = preview
        self.plot_every_s = float(plot_every_s)
        self.preset = preset_for(self.model.weights_source)

        self._lock = threading.RLock()
        self._abort = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._generation = 0
        self._uploads: Dict[str, bytes] = {}
        self._images: Dict[str, torch.Tensor] = {}
        self._step_seconds: Dict[int, float] = {}  # measured seconds per step, by working size
        self._work_image: Optional[torch.Tensor] = None  # what the optimiser works on (grey if colours kept)
        self._work_preserve = False
        self._plot_time = 0.0
        self._preview_time = 0.0
        self._plot: Optional[LossPlot] = None  # made on first use (importing matplotlib takes a moment)

        #: The latest image (1, 3, H, W) in [0, 1], colours recombined when "keep colours" is on.
        self.image: Optional[torch.Tensor] = None
        #: The last ``stylize`` result that ran to its end (None while re-targeting or after a Stop).
        self.result: Optional[StylizeResult] = None
        #: Every ``stylize`` call the worker made, oldest first.
        self.calls: List[StylizeCall] = []
        #: Loss per step across re-targets: dicts with ``step``, ``total``, ``content``, ``style``, ``tv``.
        self.history: List[Dict[str, float]] = []
        #: Steps (in ``history``'s numbering) at which the settings changed mid-run.
        self.retargets: List[int] = []
        #: The last error shown in the status line, or None.
        self.error: Optional[str] = None
        #: Settings generation that produced the picture now in the preview, and how many previews so far.
        self.preview_generation = -1
        self.preview_count = 0
        #: The sweep: one (title, PNG bytes, image) per cell, and what was swept.
        self.sweep_cells: List[Tuple[str, bytes, torch.Tensor]] = []
        self.sweep_label = ""

        self._build_widgets(content, style, size, steps)
        self._last_settings = self.settings()
        self._show_thumbnails()
        self._refresh_estimate()

    # ------------------------------------------------------------------ widgets
    def _build_widgets(self, content: str, style: str, size: Optional[int], steps: int) -> None:
        W = widgets
        label_w = {"description_width": "112px"}
        full = W.Layout(width="100%")
        preset = self.preset
        # Choices: the bundled images, plus ``content``/``style`` themselves when they are file paths.
        choices = {}
        for kind, start in (("content", content), ("style", style)):
            options = [(name, name) for name in bundled_images(kind)]
            if start not in dict(options).values():
                self._image(start)  # a clear ImageLoadError now for a misspelt name or a missing file
                options.append((Path(start).name, start))
            choices[kind] = options

        def log_slider(desc: str, value: float, below: int, above: int) -> widgets.FloatLogSlider:
            # continuous_update=False: a drag re-targets once, on release (keyboard arrows: once per press)
            lo, hi = _exponent_range(value, below, above)
            return W.FloatLogSlider(value=value, base=10, min=lo, max=hi, step=0.1, description=desc,
                                    readout_format=".2g", continuous_update=False, style=label_w, layout=full)

        # Images
        self.content_pick = W.Dropdown(options=choices["content"], value=content, description="content",
                                       style=label_w, layout=W.Layout(width="250px"))
        self.style_pick = W.Dropdown(options=choices["style"], value=style, description="style",
                                     style=label_w, layout=W.Layout(width="250px"))
        self.content_upload = W.FileUpload(accept="image/*", multiple=False, description="Upload",
                                           layout=W.Layout(width="120px"))
        self.style_upload = W.FileUpload(accept="image/*", multiple=False, description="Upload",
                                         layout=W.Layout(width="120px"))
        thumb = W.Layout(height="56px", width="auto", margin="0 0 0 6px")
        self.content_thumb = W.Image(format="png", layout=thumb)
        self.style_thumb = W.Image(format="png", layout=thumb)
        images_box = W.VBox([
            W.HBox([self.content_pick, self.content_upload, self.content_thumb], layout=W.Layout(align_items="center")),
            W.HBox([self.style_pick, self.style_upload, self.style_thumb], layout=W.Layout(align_items="center")),
        ])

        # Objective weights
        self.content_weight = log_slider("content weight", preset.content_weight, 3, 3)
        self.style_weight = log_slider("style weight", preset.style_weight, 4, 4)
        self.tv_on = W.Checkbox(value=preset.tv_weight > 0, description="", indent=False,
                                layout=W.Layout(width="28px"))
        self.tv_weight = log_slider("TV weight", preset.tv_weight if preset.tv_weight > 0 else 1.0, 3, 3)
        def spacer() -> widgets.Box:  # where other rows have an on/off box, so all sliders line up
            return W.Box(layout=W.Layout(width="28px", min_width="28px"))

        weights_box = W.VBox([W.HBox([spacer(), self.content_weight]), W.HBox([spacer(), self.style_weight]),
                              W.HBox([self.tv_on, self.tv_weight])])

        # Style layers: an on/off box and a weight per layer
        self.layer_on: Dict[str, widgets.Checkbox] = {}
        self.layer_weight: Dict[str, widgets.FloatLogSlider] = {}
        rows = []
        for name in STYLE_LAYERS:
            w = preset.style_layers.get(name, 1.0)
            self.layer_on[name] = W.Checkbox(value=name in preset.style_layers, description="", indent=False,
                                             layout=W.Layout(width="28px"))
            self.layer_weight[name] = log_slider(name, w if w > 0 else 1.0, 2, 3)
            rows.append(W.HBox([self.layer_on[name], self.layer_weight[name]]))
        layers_box = W.VBox(rows)

        # Run settings
        fast_default = 512 if self.device.type == "cuda" else 256
        self.size = W.IntSlider(value=int(size or fast_default), min=64, max=MAX_SIZE, step=32, description="size (px)",
                                continuous_update=False, style=label_w, layout=full)
        self.steps = W.IntSlider(value=int(steps), min=5, max=1000, step=5, description="steps",
                                 continuous_update=False, style=label_w, layout=full)
        self.optimizer = W.Dropdown(options=[("L-BFGS", "lbfgs"), ("Adam", "adam")], value="lbfgs",
                                    description="optimizer", style=label_w, layout=W.Layout(width="280px"))
        self.init = W.Dropdown(options=list(INIT_CHOICES), value="content", description="start from",
                               style=label_w, layout=W.Layout(width="280px"))
        self.keep_colors = W.Checkbox(value=False, description="keep the photo's colours (luminance only)",
                                      indent=False)
        self.estimate_label = W.HTML(value="")
        run_box = W.VBox([self.size, self.steps, self.optimizer, self.init, self.keep_colors, self.estimate_label])

        # Buttons and status
        self.run_button = W.Button(description="Run", button_style="success", icon="play",
                                   layout=W.Layout(width="110px"))
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True,
                                    layout=W.Layout(width="110px"))
        self.status = W.HTML(value=self._status_html("Ready. Press Run, then move the sliders while it runs."))
        self.run_button.on_click(lambda _b: self.run())
        self.stop_button.on_click(lambda _b: self.stop(wait=False))

        # Output: preview and loss plot
        self.preview = W.Image(format="png", layout=W.Layout(width="320px", height="auto", min_height="120px",
                                                             border="1px solid #ccc"))
        self.loss_plot = W.Image(format="png", layout=W.Layout(width="320px", height="auto"))

        def group(title: str, body: widgets.Widget) -> widgets.VBox:
            head = W.HTML(value=f"<b>{html.escape(title)}</b>")
            return W.VBox([head, body], layout=W.Layout(border="1px solid #ddd", padding="4px 8px",
                                                         margin="0 0 6px 0"))

        controls = W.VBox([
            group("Images", images_box),
            group("Objective weights", weights_box),
            group("Style layers (tick to use)", layers_box),
            group("Run", run_box),
        ], layout=W.Layout(width="480px"))
        output = W.VBox([
            W.HBox([self.run_button, self.stop_button]),
            self.status,
            self.preview,
            W.HTML(value="<small>loss (log scale); dashed lines: settings changed</small>"),
            self.loss_plot,
        ], layout=W.Layout(width="340px", margin="0 0 0 12px"))
        studio_tab = W.HBox([controls, output])

        # Sweep tab
        self.sweep_kind = W.Dropdown(options=[("style/content ratio", "ratio"), ("style layers", "layers")],
                                     value="ratio", description="sweep over", style=label_w,
                                     layout=W.Layout(width="300px"))
        self.sweep_n = W.IntSlider(value=5, min=2, max=9, description="cells", style=label_w, layout=full)
        self.sweep_steps = W.IntSlider(value=min(int(steps), 100), min=5, max=500, step=5, description="steps per cell",
                                       style=label_w, layout=full)
        self.sweep_button = W.Button(description="Compute sweep", button_style="info", icon="th",
                                     layout=W.Layout(width="160px"))
        self.sweep_progress = W.IntProgress(value=0, min=0, max=1, description="progress", style=label_w,
                                            layout=W.Layout(width="96%"))
        self.sweep_pick = W.IntSlider(value=1, min=1, max=1, description="show cell", disabled=True, style=label_w,
                                      layout=full)  # continuous: flipping between cached PNGs costs nothing
        self.sweep_title = W.HTML(value="<i>No sweep yet.</i>")
        self.sweep_image = W.Image(format="png", layout=W.Layout(width="320px", height="auto"))
        self.sweep_path = W.Text(value="sweep.png", description="save grid as", style=label_w,
                                 layout=W.Layout(width="300px"))
        self.sweep_save = W.Button(description="Save grid", icon="save", layout=W.Layout(width="110px"))
        self.sweep_button.on_click(lambda _b: self._sweep_clicked())
        self.sweep_save.on_click(lambda _b: self._save_clicked())
        self.sweep_pick.observe(lambda _c: self._show_sweep_cell(), names="value")
        sweep_tab = W.HBox([
            W.VBox([self.sweep_kind, self.sweep_n, self.sweep_steps, W.HBox([self.sweep_button]), self.sweep_progress,
                    self.sweep_pick, W.HBox([self.sweep_path, self.sweep_save])], layout=W.Layout(width="480px")),
            W.VBox([self.sweep_title, self.sweep_image], layout=W.Layout(margin="0 0 0 12px")),
        ])

        # CSS classes (add_class: ipywidgets 7 and 8) so that a browser test, or a custom stylesheet, finds them
        for w, name in ((self.preview, "preview"), (self.status, "status"), (self.style_weight, "style-weight"),
                        (self.run_button, "run"), (self.stop_button, "stop"), (self.loss_plot, "loss-plot"),
                        (self.sweep_image, "sweep-image"), (self.sweep_pick, "sweep-pick")):
            w.add_class(f"stlib-studio-{name}")

        self.tabs = W.Tab(children=[studio_tab, sweep_tab])
        # ipywidgets 7/8: set_title exists in both (8 also has a `titles` trait, 7 does not).
        self.tabs.set_title(0, "Studio")
        self.tabs.set_title(1, "Sweep")
        self.widget = W.VBox([W.HTML(value="<h3 style='margin:4px 0'>stlib studio</h3>"), self.tabs])
        self.widget.studio = self  # so that stlib.studio.studio() can hand back just the widget

        setting_widgets: List[widgets.Widget] = [
            self.content_pick, self.style_pick, self.content_weight, self.style_weight, self.tv_on, self.tv_weight,
            self.size, self.steps, self.optimizer, self.init, self.keep_colors,
            *self.layer_on.values(), *self.layer_weight.values(),
        ]
        for w in setting_widgets:
            w.observe(self._on_setting_change, names="value")
        self.content_upload.observe(lambda c: self._on_upload("content", c["new"]), names="value")
        self.style_upload.observe(lambda c: self._on_upload("style", c["new"]), names="value")
        self.content_pick.observe(lambda _c: self._show_thumbnails(), names="value")
        self.style_pick.observe(lambda _c: self._show_thumbnails(), names="value")

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # ------------------------------------------------------------------ state
    @property
    def generation(self) -> int:
        """Settings generation: goes up by one whenever a control changes."""
        return self._generation

    @property
    def running(self) -> bool:
        """True while the worker thread is alive (a run or a sweep)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def settings(self) -> StudioSettings:
        """The current values of all controls."""
        layers = {name: float(self.layer_weight[name].value) for name in STYLE_LAYERS if self.layer_on[name].value}
        return StudioSettings(
            content=str(self.content_pick.value), style=str(self.style_pick.value),
            content_weight=float(self.content_weight.value), style_weight=float(self.style_weight.value),
            style_layers=layers, tv_weight=float(self.tv_weight.value) if self.tv_on.value else 0.0,
            size=int(self.size.value), steps=int(self.steps.value), optimizer=str(self.optimizer.value),
            init=str(self.init.value), preserve_color=bool(self.keep_colors.value),
        )

    def _on_setting_change(self, change: Any) -> None:
        with self._lock:
            self._generation += 1
            if self.running:
                self._abort.set()  # the worker restarts with whatever the controls say when it gets there
        if change.get("owner") in (self.size, self.steps):
            self._refresh_estimate()

    def _status_html(self, text: str, kind: str = "info") -> str:
        colour = {"info": "#333", "warn": "#8a5300", "error": "#b00020", "done": "#1b5e20"}[kind]
        icon = {"info": "", "warn": "\u23f3 ", "error": "\u26a0 ", "done": "\u2714 "}[kind]
        return (f"<div style='color:{colour};min-height:2.6em;line-height:1.3em;white-space:normal'>"
                f"{icon}{html.escape(text)}</div>")

    def _say(self, text: str, kind: str = "info") -> None:
        self.status.value = self._status_html(text, kind)

    def _show_error(self, exc: BaseException) -> None:
        message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc) or type(exc).__name__
        if not isinstance(exc, (ImageLoadError, ValueError, KeyError, RuntimeError)):
            message = f"{type(exc).__name__}: {message}"
        lowered = message.lower()
        if isinstance(exc, MemoryError) or "out of memory" in lowered or "can't allocate memory" in lowered:
            message = "Out of memory: choose a smaller size and press Run again."
        self.error = message
        self._say(message, "error")

    # ------------------------------------------------------------------ images
    def _on_upload(self, kind: str, value: Any) -> None:
        for name, data in uploaded_files(value):
            self.add_upload(kind, name, data)

    def add_upload(self, kind: str, name: str, data: bytes) -> bool:
        """Add an uploaded image file as a content or style choice and select it; False (and a status
        message) if it cannot be read."""
        if kind not in ("content", "style"):
            raise ValueError(f"kind must be 'content' or 'style', not {kind!r}")
        key = UPLOAD_PREFIX + name
        try:
            image = decode_upload(name, data)
        except ImageLoadError as exc:
            self._show_error(exc)
            return False
        self._uploads[key] = data
        self._images[key] = image
        pick = self.content_pick if kind == "content" else self.style_pick
        options = [opt for opt in pick.options if opt[1] != key] + [(f"\u2191 {name}", key)]
        pick.options = options
        pick.value = key
        self.error = None
        self._say(f"Loaded {name} ({image.shape[-1]}\u00d7{image.shape[-2]} px) as the {kind} image.")
        return True

    def _image(self, key: str) -> torch.Tensor:
        if key not in self._images:
            if key.startswith(UPLOAD_PREFIX):
                self._images[key] = decode_upload(key[len(UPLOAD_PREFIX):], self._uploads.get(key, b""))
            else:
                try:
                    self._images[key] = load_image(key, max_size=MAX_SIZE)
                except ImageLoadError as exc:
                    raise ImageLoadError(f"Could not load {key!r}: {exc}") from None
        return self._images[key]

    def _show_thumbnails(self) -> None:
        for key, target in ((self.content_pick.value, self.content_thumb), (self.style_pick.value, self.style_thumb)):
            try:
                target.value = png_bytes(resize(self._image(str(key)), 64))
            except (ImageLoadError, OSError) as exc:
                self._show_error(exc)

    # ------------------------------------------------------------------ estimates
    def estimate(self, settings: Optional[StudioSettings] = None) -> Estimate:
        """Expected time and peak memory of a run with ``settings`` (default: the controls' values)."""
        s = settings or self.settings()
        estimator = _library_estimator()
        if estimator is not None:
            try:
                est = estimator(s.size, device=self.device, steps=s.steps, precision=self.precision)
                seconds, peak = getattr(est, "seconds", None), getattr(est, "peak_bytes", None)
                return Estimate(None if seconds is None else float(seconds), None if peak is None else int(peak),
                                "stlib.estimate", str(getattr(est, "message", "")))
            except Exception:  # an estimate must never stop a run; fall back to our own numbers
                pass
        per_step = self.measured_step_seconds(s.size)
        peak = rough_peak_bytes(s.size, self.precision_resolved)
        seconds = None if per_step is None else per_step * s.steps
        return Estimate(seconds, peak, "measured" if seconds is not None else "none")

    def measured_step_seconds(self, size: int) -> Optional[float]:
        """Seconds per step at ``size`` px on this machine, scaled by pixel count from the closest size measured
        so far (None before the first run)."""
        if not self._step_seconds:
            return None
        near = min(self._step_seconds, key=lambda s: abs(math.log(s / size)))
        return self._step_seconds[near] * (size / near) ** 2

    def _estimate_text(self, est: Estimate, s: StudioSettings) -> str:
        parts = []
        if est.seconds is not None:
            parts.append(f"about {format_seconds(est.seconds)}")
        if est.peak_bytes is not None:
            parts.append(f"~{est.peak_bytes / 2**30:.1f} GB peak memory")
        where = f"{s.steps} steps at {s.size} px on {self.device.type} ({self.precision_resolved})"
        return f"{where}: {', '.join(parts)}" if parts else where

    def _refresh_estimate(self) -> None:
        s = self.settings()
        est = self.estimate(s)
        slow = est.seconds is not None and est.seconds > SLOW_RUN_S
        text = html.escape(self._estimate_text(est, s))
        self.estimate_label.value = (f"<small style='color:{'#8a5300' if slow else '#555'}'>"
                                     f"{'slow: ' if slow else ''}{text}</small>")

    def _measure_step(self, s: StudioSettings, content: torch.Tensor, style: torch.Tensor) -> None:
        """Time a few steps at a small size when nothing is known yet (used for estimates and preview sizes)."""
        probe = min(s.size, 128)
        stamps: List[float] = []
        stylize(content, style, content_weight=s.content_weight, style_weight=s.style_weight,
                style_layers=s.style_layers, tv_weight=s.tv_weight, steps=3, optimizer=s.optimizer,
                size=probe, precision=self.precision, model=self.model, progress=False, every=1,
                callback=lambda _i: stamps.append(time.perf_counter()))
        if len(stamps) >= 2:
            self._step_seconds[probe] = (stamps[-1] - stamps[0]) / (len(stamps) - 1)

    def _preview_size(self, s: StudioSettings) -> Optional[int]:
        """Size for the first steps after a (re)start, so a preview comes quickly; None when full size is fast."""
        if self.preview_mode is None:
            return None
        per_step = self.measured_step_seconds(s.size)
        if per_step is None:  # nothing measured yet: a CPU is slow, a GPU is not
            side = None if self.device.type == "cuda" else s.size // 2
        elif per_step <= PREVIEW_STEP_BUDGET_S:
            side = None
        else:  # step time grows with the pixel count
            side = int(s.size * math.sqrt(PREVIEW_STEP_BUDGET_S / per_step)) // 16 * 16
        if side is None:
            return None
        side = max(64, side)
        return side if side <= 0.8 * s.size else None

    # ------------------------------------------------------------------ running
    def run(self) -> bool:
        """Start optimising in the background with the current settings; False if already running."""
        return self._start(self._run_job, "run")

    def stop(self, wait: bool = True, timeout: float = 5.0) -> bool:
        """Stop the run or sweep, keeping the image so far; with ``wait``, True once the worker has ended."""
        with self._lock:
            self._stop.set()
            self._abort.set()
        return self.wait(timeout) if wait else not self.running

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the worker is idle (or ``timeout`` seconds pass); True if it is idle."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    def close(self) -> None:
        """Stop the worker and close all widgets."""
        self.stop(wait=True)
        self.widget.close()

    def _start(self, job: Callable[[], None], what: str) -> bool:
        with self._lock:
            if self.running:
                self._say(f"Already running: press Stop before starting a {what}.", "warn")
                return False
            self._stop.clear()
            self._abort.clear()
            self.error = None
            self.run_button.disabled = True
            self.sweep_button.disabled = True
            self.stop_button.disabled = False
            self._thread = threading.Thread(target=self._guarded, args=(job,), name=f"stlib-studio-{what}",
                                            daemon=True)
            self._thread.start()
        return True

    def _guarded(self, job: Callable[[], None]) -> None:
        """Worker thread body: any exception becomes a readable status line, and the studio stays usable."""
        try:
            job()
        except _Abort:
            self._say("Stopped. The image so far is kept; press Run to start again.", "done")
        except Exception as exc:  # shown to the student instead of dying silently in a thread
            self._show_error(exc)
        finally:
            self.run_button.disabled = False
            self.sweep_button.disabled = False
            self.stop_button.disabled = True

    def _inputs(self, s: StudioSettings) -> Tuple[torch.Tensor, torch.Tensor]:
        return self._image(s.content), self._image(s.style)

    def _announce(self, s: StudioSettings, content: torch.Tensor, style: torch.Tensor) -> None:
        if _library_estimator() is None and not self._step_seconds:
            self._say("Measuring how fast this machine is ...")
            try:
                with _abortable(self.model, self._abort):
                    self._measure_step(s, content, style)
            except _Abort:
                if self._stop.is_set():
                    raise  # Stop; a slider change just means the run starts with the newest settings

        est = self.estimate(s)
        free = _available_bytes()
        if est.peak_bytes is not None and free is not None and est.peak_bytes > free:
            raise RuntimeError(
                f"A {s.size} px run would need about {est.peak_bytes / 2**30:.1f} GB of memory, but only "
                f"{free / 2**30:.1f} GB is free: choose a smaller size and press Run again."
            )
        text = self._estimate_text(est, s)
        if est.seconds is not None and est.seconds > SLOW_RUN_S:
            self._say(f"This run will be slow: {text}. Stop keeps the image so far.", "warn")
        else:
            self._say(f"Starting: {text}.")

    def _run_job(self) -> None:
        with self._lock:
            generation = self._generation
            self._abort.clear()
        s = self.settings()
        content, style = self._inputs(s)
        self._announce(s, content, style)
        self.history, self.retargets, self.result = [], [], None
        warm_from: Optional[torch.Tensor] = self._work_image if s.init == "current" else None
        if s.init == "current" and warm_from is None:
            raise ValueError("There is no current image yet: choose another 'start from' and press Run.")
        previous = s
        while True:
            call = StylizeCall(generation, s, warm_from is not None, warm_from if warm_from is not None else s.init,
                               self._preview_size(s), time.perf_counter())
            self.calls.append(call)
            for old in self.calls[:-3]:  # keep memory flat through a long demo: old records drop their images
                old.last_image = None
                old.init = "tensor" if isinstance(old.init, torch.Tensor) else old.init
            try:
                with _abortable(self.model, self._abort):
                    result = self._stylize(call, content, style)
            except _Abort:
                call.outcome = "aborted"
                if self._stop.is_set():
                    self._finish(s, None, "Stopped. The image so far is kept; press Run to start again.")
                    return
            else:
                call.outcome = "finished"
                if self._generation == generation:
                    self._finish(s, result, None)
                    return
            # The settings changed: start again from the current image with the newest settings.
            with self._lock:
                if self._stop.is_set():
                    self._finish(s, None, "Stopped. The image so far is kept; press Run to start again.")
                    return
                generation = self._generation
                self._abort.clear()
            s = self.settings()
            content, style = self._inputs(s)
            cold = s.content != previous.content or (s.init != previous.init and s.init != "current")
            warm_from = None if cold or self._work_image is None else self._work_image
            if self.history:
                self.retargets.append(int(self.history[-1]["step"]))
            changes = s.changes_from(previous) or ["settings"]
            start = "from the start" if warm_from is None else "from the current image"
            self._say(f"Re-targeting (settings #{generation}): {', '.join(changes)}; continuing {start}.")
            previous = s

    def _stylize(self, call: StylizeCall, content: torch.Tensor, style: torch.Tensor) -> StylizeResult:
        s = call.settings
        init: Union[str, torch.Tensor] = call.init
        if call.warm and s.preserve_color != self._work_preserve and self.image is not None:
            init = self.image  # switching colour mode: start from the picture as seen, not the grey working copy
        steps: Union[int, List[int]] = s.steps
        scales: Optional[List[float]] = None
        if call.preview_size is not None:
            per_small = self.measured_step_seconds(call.preview_size) or PREVIEW_STEP_BUDGET_S
            n_small = max(2, min(10, int(1.5 / per_small)))
            steps, scales = [min(n_small, s.steps), s.steps], [call.preview_size / s.size, 1.0]
        base = int(self.history[-1]["step"]) if self.history else 0
        colour_ref: Dict[Tuple[int, int], torch.Tensor] = {}
        last = {"time": None, "size": 0}

        def on_step(info: StepInfo) -> None:
            if self._abort.is_set():
                raise _Abort()
            now = time.perf_counter()
            h, w = info.image.shape[-2:]
            if last["time"] is not None and last["size"] == w:  # time per step, by working size
                measured = (now - last["time"]) / self.every
                old = self._step_seconds.get(max(h, w))
                self._step_seconds[max(h, w)] = measured if old is None else 0.7 * old + 0.3 * measured
            last["time"], last["size"] = now, w
            work = info.image
            shown = work
            if s.preserve_color:
                if (h, w) not in colour_ref:
                    colour_ref[(h, w)] = resize(content, (h, w))
                shown = recombine_color(work, colour_ref[(h, w)])
            self._work_image, self._work_preserve = work, s.preserve_color
            self.image = shown
            call.last_image = work
            self.history.append({"step": base + info.step, **info.losses})
            if call.first_preview is not None and now - self._preview_time < MIN_PREVIEW_INTERVAL_S:
                return  # fast steps (a GPU): do not flood the browser; the first picture of a call always goes
            self._preview_time = now
            self.preview_generation = call.generation
            self.preview.value = png_bytes(shown)
            self.preview_count += 1
            if call.first_preview is None:
                call.first_preview = now
            rate = self._step_seconds.get(max(h, w))
            self._say(f"Running (settings #{call.generation}): step {info.step}/{info.steps} at {max(h, w)} px, "
                      f"loss {info.losses['total']:.3g}" + (f", {rate:.2f} s/step" if rate else ""))
            if now - self._plot_time >= self.plot_every_s:
                self._plot_time = now
                self.loss_plot.value = self._loss_png()

        return stylize(
            content, style, content_weight=s.content_weight, style_weight=s.style_weight,
            style_layers=s.style_layers, tv_weight=s.tv_weight,
            steps=steps, scales=scales, optimizer=s.optimizer, init=init, size=s.size, precision=self.precision,
            model=self.model, callback=on_step, every=self.every, progress=False,
            preserve_color="luminance" if s.preserve_color else None,
        )

    def _finish(self, s: StudioSettings, result: Optional[StylizeResult], stopped: Optional[str]) -> None:
        if result is not None:
            self.result = result
            self.image = result.image
            self.preview.value = png_bytes(result.image)
        elif self.image is not None:
            if max(self.image.shape[-2:]) < s.size:
                self.image = resize(self.image, s.size)  # stopped during the preview stage: bring it to size
            self.preview.value = png_bytes(self.image)  # the latest picture, even if it came within the throttle
        self.loss_plot.value = self._loss_png()
        self._refresh_estimate()  # now with this machine's measured speed
        if stopped:
            self._say(stopped, "done")
        else:
            assert result is not None
            why = f" ({result.stopped})" if result.stopped else ""
            self._say(f"Done: {result.steps} steps in {format_seconds(result.elapsed)}, final loss "
                      f"{result.history[-1]['total']:.3g}{why}.", "done")

    def _loss_png(self) -> bytes:
        """PNG of the losses so far, with dashed lines where the settings changed."""
        if self._plot is None:
            self._plot = LossPlot()
        return self._plot.render(self.history, self.retargets)

    # ------------------------------------------------------------------ sweep
    def sweep_plan(self, kind: str = "ratio", n: int = 5) -> List[Tuple[str, StudioSettings]]:
        """The cells of a sweep around the current settings: ``"ratio"`` multiplies the style weight by
        10^-2 ... 10^2 (``n`` cells); ``"layers"`` uses style layers relu1_1, then relu1_1+relu2_1, ... (up to 5)."""
        s = self.settings()
        if kind == "ratio":
            if n < 2:
                raise ValueError("a ratio sweep needs at least 2 cells")
            cells = []
            for i in range(n):
                factor = 10 ** (-2 + 4 * i / (n - 1))
                cell = replace(s, style_weight=s.style_weight * factor)
                ratio = cell.style_weight / cell.content_weight if cell.content_weight > 0 else math.inf
                cells.append((f"style/content = {ratio:.2g}", cell))
            return cells
        if kind == "layers":
            weights = {name: float(self.layer_weight[name].value) for name in STYLE_LAYERS}
            cells = []
            for k in range(1, min(n, len(STYLE_LAYERS)) + 1):
                names = STYLE_LAYERS[:k]
                title = names[0] if k == 1 else f"{names[0]} \u2026 {names[-1]}"
                cells.append((title, replace(s, style_layers={m: weights[m] for m in names})))
            return cells
        raise ValueError(f"kind must be 'ratio' or 'layers', not {kind!r}")

    def sweep(self, kind: str = "ratio", n: int = 5, *, steps: Optional[int] = None, size: Optional[int] = None,
              wait: bool = True) -> List[Tuple[str, bytes, torch.Tensor]]:
        """Precompute a small grid of results (see ``sweep_plan``), each from the same start, with ``steps``
        steps at ``size`` px (defaults: the Sweep tab's steps, the size slider). Then the "show cell" slider
        flips between them instantly. Returns ``sweep_cells`` (with ``wait``; else starts in the background)."""
        plan = self.sweep_plan(kind, n)
        n_steps = int(steps if steps is not None else self.sweep_steps.value)
        if size is not None:
            plan = [(title, replace(cell, size=int(size))) for title, cell in plan]
        if n_steps < 1:
            raise ValueError("steps must be at least 1")
        self.sweep_label = f"{kind} sweep, {n_steps} steps at {plan[0][1].size} px"
        self.sweep_kind.value, self.sweep_steps.value = kind, n_steps  # the Sweep tab shows what was computed
        self.sweep_n.value = len(plan)
        if not self._start(lambda: self._sweep_job(plan, n_steps), "sweep"):
            raise RuntimeError("The studio is busy: stop the run before starting a sweep.")
        if wait:
            self.wait()
            if self.error:
                raise RuntimeError(self.error)
        return self.sweep_cells

    def _sweep_job(self, plan: List[Tuple[str, StudioSettings]], n_steps: int) -> None:
        self.sweep_cells = []
        self.sweep_pick.disabled = True
        self.sweep_progress.max = len(plan) * n_steps
        self.sweep_progress.value = 0
        start_image = self._work_image
        for i, (title, s) in enumerate(plan):
            content, style = self._inputs(s)
            init: Union[str, torch.Tensor] = start_image if s.init == "current" and start_image is not None else (
                "content" if s.init == "current" else s.init)
            self._say(f"Sweep: computing cell {i + 1} of {len(plan)} ({title}) ...")

            def tick(info: StepInfo, done: int = i * n_steps) -> None:
                if self._stop.is_set():
                    raise _Abort()
                self.sweep_progress.value = done + info.step

            with _abortable(self.model, self._stop):
                result = stylize(
                    content, style, content_weight=s.content_weight, style_weight=s.style_weight,
                    style_layers=s.style_layers, tv_weight=s.tv_weight, steps=n_steps,
                    optimizer=s.optimizer, init=init, size=s.size, precision=self.precision, model=self.model,
                    callback=tick, every=1, progress=False, preserve_color="luminance" if s.preserve_color else None,
                )
            self.sweep_cells.append((title, png_bytes(result.image), result.image))
            self.sweep_pick.max = len(self.sweep_cells)  # lowering max also lowers a larger value (7 and 8)
            self.sweep_pick.disabled = False
            self.sweep_pick.value = len(self.sweep_cells)
            self._show_sweep_cell()
        self.sweep_progress.value = self.sweep_progress.max
        self._say(f"Sweep done: {len(plan)} cells. Use 'show cell' on the Sweep tab to flip between them.", "done")

    def _show_sweep_cell(self) -> None:
        if not self.sweep_cells:
            return
        i = min(max(int(self.sweep_pick.value), 1), len(self.sweep_cells)) - 1
        title, png, _ = self.sweep_cells[i]
        self.sweep_image.value = png
        self.sweep_title.value = f"<b>{i + 1}/{len(self.sweep_cells)}: {html.escape(title)}</b>"

    def _sweep_clicked(self) -> None:
        try:
            self.sweep(str(self.sweep_kind.value), int(self.sweep_n.value), wait=False)
        except (ValueError, RuntimeError) as exc:
            self._show_error(exc)

    def save_sweep(self, path: Union[str, Path]) -> Path:
        """Save the sweep as one PNG grid, each cell titled with its setting; returns the path."""
        if not self.sweep_cells:
            raise RuntimeError("There is no sweep to save yet: run studio.sweep() (or Compute sweep) first.")
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        n = len(self.sweep_cells)
        cols = min(n, 5)
        rows = math.ceil(n / cols)
        fig = Figure(figsize=(2.6 * cols, 2.8 * rows + 0.4), dpi=100)
        FigureCanvasAgg(fig)
        for i, (title, _png, image) in enumerate(self.sweep_cells):
            ax = fig.add_subplot(rows, cols, i + 1)
            ax.imshow(image[0].permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_title(title, fontsize=9)
            ax.axis("off")
        fig.suptitle(self.sweep_label, fontsize=10)
        fig.tight_layout()
        out = Path(path).expanduser()
        if out.suffix.lower() != ".png":
            raise ValueError(f"save_sweep writes a PNG: give a path ending in .png, not {str(path)!r}")
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png")
        return out

    def _save_clicked(self) -> None:
        try:
            out = self.save_sweep(self.sweep_path.value)
            self._say(f"Saved the sweep grid to {out}.", "done")
        except (ValueError, RuntimeError, OSError) as exc:
            self._show_error(exc)


def studio(content: str = "astronaut", style: str = "swirls", **kwargs: Any) -> widgets.VBox:
    """Build a ``Studio`` and return its widget (leave it last in a cell to show it); the Studio itself is
    ``widget.studio``. Keyword arguments go to ``Studio``."""
    return Studio(content, style, **kwargs).widget
