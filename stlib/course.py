"""Small helpers the course notebooks share: fast mode, classroom sizes, an environment report, the weights note.

``STLIB_FAST=1`` (set by CI) makes every notebook pick tiny images and a handful of steps, so the whole
course runs in a minute or two; without it, sizes suit a 2-core laptop CPU and grow on a GPU.
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Optional, TypeVar

import torch

from .model import VGG19Features, resolve_device
from .engine.precision import cpu_has_fast_bf16, resolve_precision

T = TypeVar("T")


def fast_mode() -> bool:
    """True when ``STLIB_FAST`` is set to anything but "" or "0" (CI: tiny images, few steps)."""
    return os.environ.get("STLIB_FAST", "").strip() not in ("", "0")


def pick(normal: T, fast: T) -> T:
    """``fast`` in fast mode, ``normal`` otherwise: ``steps = course.pick(150, fast=5)``."""
    return fast if fast_mode() else normal


def image_size(cpu: int = 192, gpu: int = 384, fast: int = 64, device: str = "auto") -> int:
    """Long edge in pixels for the notebooks' runs: ``fast`` in fast mode, ``gpu`` on CUDA, else ``cpu``."""
    if fast_mode():
        return fast
    return gpu if resolve_device(device).type == "cuda" else cpu


def describe_weights(model: VGG19Features) -> str:
    """One clear sentence (or paragraph, for offline weights) about which VGG-19 weights ``model`` has."""
    source = model.weights_source
    if source == "imagenet":
        return "VGG-19 weights: ImageNet (torchvision), as in Gatys et al. - the pictures are the real thing."
    if source.startswith("file:"):
        return f"VGG-19 weights: loaded from {source[5:]} (ImageNet weights exported for offline use)."
    return (
        "VGG-19 weights: OFFLINE APPROXIMATION (seeded random filters, no ImageNet training).\n"
        "Every cell runs and every idea holds, but the pictures only approximate the paper's: colours and\n"
        "textures transfer and deep layers keep the photo's layout, but painterly strokes do not.\n"
        "For real weights on a machine without internet: run `stlib weights export -o vgg19-features.pth`\n"
        "on a connected machine, copy the file over, and set STLIB_WEIGHTS=/path/to/vgg19-features.pth\n"
        "before starting Jupyter (or pass weights='/path/to/vgg19-features.pth' to stlib.load_vgg19)."
    )


def environment_report(model: Optional[VGG19Features] = None) -> str:
    """Python, torch and stlib versions, the device and precision stlib will use, and the weights: a few lines."""
    import torchvision

    from . import __version__

    device = resolve_device("auto")
    if device.type == "cuda":
        where = f"cuda ({torch.cuda.get_device_name(device)})"
    elif device.type == "cpu":
        where = f"cpu ({torch.get_num_threads()} threads{', AMX/AVX-512 bf16' if cpu_has_fast_bf16() else ''})"
    else:
        where = device.type
    lines = [
        f"python      {platform.python_version()} ({sys.platform})",
        f"torch       {torch.__version__}, torchvision {torchvision.__version__}",
        f"stlib       {__version__}",
        f"device      {where}",
        f"precision   precision='auto' runs in {resolve_precision('auto', device)}",
        f"fast mode   {'on (STLIB_FAST=1: tiny images, few steps)' if fast_mode() else 'off'}",
    ]
    if "google.colab" in sys.modules:
        lines.append("running on  Google Colab" + ("" if device.type == "cuda" else
                                                   " - Runtime > Change runtime type > GPU makes every run much faster"))
    if model is not None:
        lines.append(f"weights     {model.weights_source} (pooling: {model.pooling})")
    return "\n".join(lines)


def load_model(pooling: str = "max", weights: str = "auto", note: bool = True) -> VGG19Features:
    """``stlib.load_vgg19`` for a notebook: prints which weights were loaded (``note``) instead of a warning."""
    import warnings

    from .model import load_vgg19
    from .weights import OfflineWeightsWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OfflineWeightsWarning)  # describe_weights says it below, more usefully
        model = load_vgg19(weights, pooling=pooling)
    if note:
        print(describe_weights(model))
    return model


class ClaimError(AssertionError):
    """A figure's claim did not hold when it was measured (raised by ``claim`` outside fast mode)."""


def claim(statement: str, holds: bool, measured: str = "") -> None:
    """Print one sentence saying whether the text's ``statement`` about the figure above holds.

    Every figure whose text makes a claim is followed by a cell that measures it and calls ``claim``.
    Normal mode (students' sizes): prints "Checked: <statement> (<measured>)." and raises ``ClaimError``
    when ``holds`` is false, so ``make test-course`` fails where the figure is drawn. Fast mode (tiny
    images, a few steps): the measurement is not meaningful, so nothing is asserted and the sentence is
    only the statement - identical on every machine, so nbval can compare it.
    """
    statement = statement.strip().rstrip(".")
    if not statement:
        raise ValueError("claim needs the statement the text makes, e.g. claim('the loss falls', ...)")
    if fast_mode():
        print(f"Claim (measured at students' sizes, not in fast mode): {statement}.")
        return
    detail = f" ({measured})" if measured else ""
    if not bool(holds):
        raise ClaimError(f"The text above claims that {statement}, but this run measured otherwise{detail}. "
                         "The figure and its text disagree: change the experiment or the text.")
    print(f"Checked: {statement}{detail}.")
