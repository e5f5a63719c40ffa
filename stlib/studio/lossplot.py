"""The studio's live loss plot: log-scale loss terms per step, rendered to PNG bytes for an Image widget."""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Sequence
from typing import Any

from PIL import Image

TERMS = (("total", "black"), ("style", "tab:red"), ("content", "tab:blue"), ("tv", "tab:green"))


def canvas_png(canvas: Any) -> bytes:
    """The drawn Agg ``canvas`` as PNG bytes (RGB, fast compression): what the studio's plot widgets show."""
    canvas.draw()
    width, height = canvas.get_width_height()
    rgba = Image.frombuffer("RGBA", (width, height), bytes(canvas.buffer_rgba()), "raw", "RGBA", 0, 1)
    buf = io.BytesIO()
    rgba.convert("RGB").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class LossPlot:
    """A log-scale plot of the loss terms. The figure is made once and only its lines move on each redraw
    (about 4x cheaper than a fresh figure); matplotlib's Agg canvas, no pyplot, so any thread may draw.

    ``width``/``height`` in pixels and ``font_pt`` in points are what the browser shows at 100 % zoom
    (dpi 100): a projector layout asks for 12 pt, readable from the back of a room."""

    def __init__(self, width: int = 320, height: int = 176, font_pt: float = 8.0) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import LogLocator, MaxNLocator

        self.font_pt = font_pt
        self._lock = threading.Lock()
        self._fig = Figure(figsize=(width / 100, height / 100), dpi=100)
        self._canvas = FigureCanvasAgg(self._fig)
        self._ax = self._fig.add_subplot(1, 1, 1)
        self._lines = {key: self._ax.plot([], [], color=color, lw=1.5, label=key)[0] for key, color in TERMS}
        # Rejected trials (``accepted`` False): hollow circles of the term's colour, not joined into its line.
        self._rejected = {key: self._ax.plot([], [], color=color, ls="none", marker="o", markerfacecolor="none",
                                             markersize=3.5, markeredgewidth=0.9)[0] for key, color in TERMS}
        self._marks: list[Any] = []
        self._ax.set_yscale("log")
        self._ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        self._ax.yaxis.set_major_locator(LogLocator(numticks=4))  # big fonts: few labels, so they never overlap
        self._ax.set_xlabel("step", fontsize=font_pt)
        self._ax.tick_params(labelsize=font_pt)
        self._hint = self._ax.text(0.5, 0.5, "the loss appears here\nonce a run starts", ha="center", va="center",
                                   transform=self._ax.transAxes, fontsize=font_pt, color="grey")
        self._legend_columns = max(2, int(width / (7.5 * font_pt)))  # as many "── content" as fit in a row
        rows = math.ceil(len(TERMS) / self._legend_columns)
        top = 1 - (rows * 0.9 * font_pt * 1.5 * 100 / 72 + 4) / height  # legend rows above the axes, in pixels
        # A fixed frame, room for "10^-4"-style labels and the legend above: redraws never jump.
        inch = width / 100
        self._fig.subplots_adjust(left=min(0.5, 0.75 * font_pt / 12 / inch), right=0.97,
                                  bottom=min(0.5, 0.6 * font_pt / 12 / (height / 100)), top=top)

    def render(self, history: Sequence[dict[str, float]], marks: Sequence[int] = ()) -> bytes:
        """PNG of ``history`` (dicts with ``step`` and the terms), dashed vertical lines at the steps ``marks``.
        Entries with ``accepted`` False (trials the optimiser undid) are hollow circles off the lines."""
        with self._lock:
            ax = self._ax
            kept = [h for h in history if h.get("accepted", True)]
            undone = [h for h in history if not h.get("accepted", True)]
            steps = [h["step"] for h in kept]
            shown = []
            for key, line in self._lines.items():
                values = [h.get(key, 0.0) for h in kept]
                visible = any(v > 0 for v in values)
                positive = [v if v > 0 else math.nan for v in values]  # a zero (e.g. content at step 0) has no log
                line.set_data(steps if visible else [], positive if visible else [])
                line.set_visible(visible)
                trials = [(h["step"], h.get(key, 0.0)) for h in undone if h.get(key, 0.0) > 0] if visible else []
                self._rejected[key].set_data([t[0] for t in trials], [t[1] for t in trials])
                self._rejected[key].set_visible(bool(trials))
                if visible:
                    shown.append(line)
            self._hint.set_visible(not shown)
            for mark in self._marks:
                mark.remove()
            self._marks = [ax.axvline(step, color="grey", ls="--", lw=1.0) for step in marks]
            legend = ax.get_legend()
            if legend is not None:
                legend.remove()
            if shown:
                ax.legend(handles=shown, fontsize=self.font_pt * 0.9, loc="lower center", bbox_to_anchor=(0.5, 1.0),
                          frameon=False, ncol=min(len(shown), self._legend_columns), handlelength=1.0, columnspacing=0.8, borderaxespad=0.1)
                ax.relim(visible_only=True)
                ax.autoscale_view()
            return canvas_png(self._canvas)
