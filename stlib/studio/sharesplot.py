"""The studio's live per-layer bars: each style layer's share of the weighted style loss and of the gradient."""

from __future__ import annotations

import threading

from ..shares import LayerShares
from .lossplot import canvas_png


class SharesPlot:
    """Two stacked bars (loss, gradient) split by style layer, rendered to PNG bytes for an Image widget.
    matplotlib's Agg canvas without pyplot, so the worker thread may draw; ``width``/``height`` in pixels."""

    def __init__(self, width: int = 320, height: int = 120, font_pt: float = 8.0) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.font_pt = font_pt
        self._lock = threading.Lock()
        self._fig = Figure(figsize=(width / 100, height / 100), dpi=100)
        self._canvas = FigureCanvasAgg(self._fig)

    def render(self, shares: LayerShares | None, step: int | None = None) -> bytes:
        """PNG of ``shares`` (None: a hint that the bars appear once a run starts)."""
        from ..plots import draw_layer_shares

        with self._lock:
            self._fig.clear()
            ax = self._fig.add_subplot(1, 1, 1)
            if shares is None or not shares.loss:
                ax.axis("off")
                ax.text(0.5, 0.5, "each style layer's share of the pull\nappears here once a run starts",
                        ha="center", va="center", fontsize=self.font_pt, color="grey", transform=ax.transAxes)
            else:
                draw_layer_shares(ax, {"loss": shares.loss, "gradient": shares.gradient}, font_pt=self.font_pt)
                ax.set_xlabel(f"share of the style pull (%){'' if step is None else f', step {step}'}",
                              fontsize=self.font_pt)
                self._fig.tight_layout(pad=0.3)
            return canvas_png(self._canvas)
