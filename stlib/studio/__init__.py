"""The live studio: sliders around ``stylize`` that re-target a running optimisation.

    from stlib.studio import Studio
    studio = Studio("astronaut", "swirls")            # layout="projector" fits a 1280x720 screen
    studio          # shows the controls; press Run, then move the sliders

The pieces, one job each (read them in this order):
- ``settings``: ``StudioSettings`` (what the controls decide), its one mapping to ``stylize`` keywords, presets;
- ``controls``: the widget tree for a notebook or a projector (ipywidgets only, no torch);
- ``worker``: the thread that runs ``stylize``, with settings generations, abort hooks and warm restarts
  (no widgets: it reports to a ``Listener``, so tests drive it headless);
- ``sweep``: grids of results that differ in one setting, with ranges measured on the images;
- ``lossplot``: the live loss plot; ``inputs``: bundled, file and uploaded images;
- ``app``: ``Studio``, which wires them together.
"""

from __future__ import annotations

from typing import Any

from .inputs import decode_upload, png_bytes, uploaded_files
from .settings import PRESETS, StudioSettings
from .worker import Listener, Worker

__all__ = ["PRESETS", "Listener", "Studio", "StudioSettings", "Worker", "decode_upload", "png_bytes", "studio",
           "uploaded_files"]


def __getattr__(name: str) -> Any:
    """``Studio`` is imported on first use, so the worker and settings run headless without ipywidgets."""
    if name == "Studio":
        from .app import Studio

        return Studio
    raise AttributeError(f"module 'stlib.studio' has no attribute {name!r}")


def studio(content: str = "astronaut", style: str = "swirls", **kwargs: Any) -> Any:
    """Build a ``Studio`` and return its widget (leave it last in a cell to show it); the Studio itself is
    ``widget.studio``. Keyword arguments go to ``Studio``."""
    from .app import Studio

    return Studio(content, style, **kwargs).widget
