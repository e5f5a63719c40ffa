"""``stylize``'s run options, declared once: each option's name, type, default, meaning and check.

``RunOptions`` is that declaration. Everything else is derived from it or tested against it:

- ``stylize``'s keywords: its signature stays written out (students read it), and tests/test_options.py
  checks that every option is a keyword of ``stylize`` with the same default and type, and nothing more;
- validation: ``RunOptions(...)`` checks every value when it is made (``stylize`` makes one first thing);
- ``StylizeResult.settings``: ``RunSettings.summary`` starts from every option;
- the command line: ``stlib transfer`` has one flag per option with a ``flag`` (``--style-weight`` for
  ``style_weight``), its help text and parser taken from here;
- the studio: ``StudioSettings.stylize_kwargs`` is tested to produce only declared options.

Adding an option (say ``style_scale``) is one edit here plus its implementation:

1. add a field to ``RunOptions`` with ``option(default, help, check, flag)``;
2. add the same keyword, type and default to ``stylize``'s signature (the test names what differs);
3. use ``run.options.style_scale`` where it takes effect (``stlib.transfer`` / ``stlib.engine``).

The CLI flag, the validation and its mention in ``result.settings`` then come with it. Options whose
default depends on the network or the device (weights, layers, size) are resolved into ``RunSettings``
by ``stlib.engine.settings.resolve_settings``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable, Optional, Union

import torch

from ..gram import GRAM_NORMALIZATIONS
from ..layers import layer_index
from .optim import OPTIMIZERS
from .precision import PRECISIONS

LayerSpec = Union[Mapping[str, float], Sequence[str], str, None]  # Union: an alias is evaluated (Python 3.9)
PRESERVE_COLOR = (None, "luminance", "histogram")
INITS = ("content", "palette", "noise", "style")
#: The smallest long edge ``size`` may ask for (VGG-19 halves an image five times; load_image's minimum).
MIN_SIZE = 32


def is_int(value: Any) -> bool:
    """True for whole numbers (not bools)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_weight(name: str, value: float) -> float:
    """``value`` as a float, or a clear ValueError when it is not a finite number >= 0."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


# ------------------------------------------------------------------------------ one check per kind of value
def _weight(name: str, value: Any) -> None:
    if value is not None:
        check_weight(name, value)


def _layers(name: str, value: Any) -> None:
    if value is None:
        return
    items = value.items() if isinstance(value, Mapping) else [(value, 1.0)] if isinstance(value, str) else \
        [(v, 1.0) for v in value]
    for layer, weight in items:
        layer_index(str(layer))  # a KeyError that lists the layer names
        check_weight(f"{name} weight for {layer}", weight)


def _choice(allowed: Sequence[Any]) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, not {value!r}")
    return check


def _whole(minimum: int, none_ok: bool = False, what: str = "") -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if (value is None and none_ok) or (is_int(value) and value >= minimum):
            return
        raise ValueError(f"{name} must be a whole number >= {minimum}{what}{' or None' if none_ok else ''}, "
                         f"not {value!r}")
    return check


def _seed(name: str, value: Any) -> None:
    if not is_int(value):
        raise ValueError(f"{name} must be a whole number, not {value!r}")


def _steps(name: str, value: Any) -> None:
    counts = list(value) if isinstance(value, (list, tuple)) else [value]
    if not counts or not all(is_int(n) and n >= 0 for n in counts):
        raise ValueError(f"{name} must be a whole number >= 0 (or a list of them, one per scale), not {value!r}")


def _lr(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0):
        raise ValueError(f"{name} must be a finite number > 0 (or None for the optimiser's default), not {value!r}")


def _init(name: str, value: Any) -> None:
    if not isinstance(value, torch.Tensor) and value not in INITS:
        raise ValueError(f"{name} must be 'content', 'palette', 'noise', 'style' or an image tensor, not {value!r}")


def _scales(name: str, value: Any) -> None:
    if not (value is None or isinstance(value, str) or (is_int(value) and value >= 1)
            or (isinstance(value, (list, tuple)) and value and all(isinstance(f, numbers.Real) for f in value))):
        raise ValueError(f"{name} must be None, 'auto', a number of octaves >= 1 or a non-empty list of increasing "
                         f"fractions in (0, 1], not {value!r}")


def _blend(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not all(
            isinstance(b, numbers.Real) and math.isfinite(b) and b >= 0 for b in value) or sum(value) <= 0:
        raise ValueError(f"{name} needs finite weight(s) >= 0 (one per style image, not all zero), got {value}")


def _gram_norm(name: str, value: Any) -> None:
    if value not in GRAM_NORMALIZATIONS:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, GRAM_NORMALIZATIONS))}, not {value!r}")


def _optional_bool(name: str, value: Any) -> None:
    if value not in (None, True, False):
        raise ValueError(f"{name} must be True, False or None (automatic), not {value!r}")


def _tolerance(name: str, value: Any) -> None:
    if not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")


#: The largest ``style_scale``: the painting fed at 4x the output's size (a 512 px result reads a 2048 px painting).
MAX_STYLE_SCALE = 4.0
BALANCE = (None, "loss", "gradient")


def _style_scale(name: str, value: Any) -> None:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value) \
            or not 0 < value <= MAX_STYLE_SCALE:
        raise ValueError(f"{name} must be a number in (0, {MAX_STYLE_SCALE:g}] - the painting's size relative to the "
                         f"output: 0.5 gives strokes half as large, 2 twice as large - not {value!r}")


def _bool(name: str, value: Any) -> None:
    if value not in (True, False):
        raise ValueError(f"{name} must be True or False, not {value!r}")


def yes_no(text: str) -> bool:
    """A command-line switch's value: yes/no (also on/off, true/false, 1/0)."""
    words = {"yes": True, "on": True, "true": True, "1": True, "no": False, "off": False, "false": False, "0": False}
    if text.lower() not in words:
        raise ValueError(f"expected yes or no, not {text!r}")
    return words[text.lower()]


def option(default: Any, help: str, check: Callable[[str, Any], None], flag: Optional[Callable[[str], Any]] = None,
           choices: Optional[Sequence[Any]] = None) -> Any:
    """A ``RunOptions`` field: its ``default``, a one-line ``help``, ``check(name, value)`` (raises a ValueError
    that names the option), and ``flag``: how the command line parses its text (None: no CLI flag), with
    ``choices`` for a flag that picks among names."""
    return field(default=default, metadata={"help": help, "check": check, "flag": flag, "choices": choices})


@dataclass(frozen=True)
class RunOptions:
    """What a ``stylize`` run is asked to do, checked when made. None means "the preset's" or "automatic"."""

    content_weight: float | None = option(
        None, "content weight α (default: the preset's)", _weight, flag=float)
    style_weight: float | None = option(
        None, "style weight β (default: the preset's)", _weight, flag=float)
    style_layers: LayerSpec = option(None, "{layer: weight} or names of the style layers (default: the preset's)",
                                     _layers)
    content_layers: LayerSpec = option(None, "{layer: weight} or names of the content layers (default: the "
                                             "preset's)", _layers)
    tv_weight: float | None = option(
        None, "total-variation weight (default: the preset's)", _weight, flag=float)
    steps: int | Sequence[int] = option(300, "optimisation steps, per scale (default 300)", _steps, flag=int)
    optimizer: str = option("lbfgs", "lbfgs (safeguarded, default), lbfgs-plain (as torch's tutorial) or adam",
                            _choice(OPTIMIZERS), flag=str, choices=OPTIMIZERS)
    lr: float | None = option(None, "step size (default: 1 for L-BFGS, 0.02 for Adam)", _lr)
    init: str | torch.Tensor = option(
        "content", "starting image: content, palette (the photo in the painting's colours), noise, style or a "
        "tensor (default: content)", _init, flag=str, choices=INITS)
    size: int | None = option(None, "long edge in pixels (default: 512 on a GPU, 256 on a CPU)",
                              _whole(MIN_SIZE, none_ok=True, what=" (pixels of the long edge)"), flag=int)
    precision: str = option("auto", "network precision: auto, fp32, bf16 or fp16 (default: auto)",
                            _choice(PRECISIONS))
    seed: int = option(0, "seed for init=noise (default 0)", _seed, flag=int)
    every: int = option(10, "steps between callback calls (default 10)", _whole(1))
    scales: str | int | Sequence[float] | None = option(
        None, "coarse-to-fine octaves, e.g. 3 = size/4, size/2, size (default: one scale)", _scales, flag=int)
    preserve_color: str | None = option(None, "keep the photo's colours: luminance or histogram (default: no)",
                                        _choice(PRESERVE_COLOR), flag=str, choices=PRESERVE_COLOR[1:])
    style_blend: Sequence[float] | None = option(None, "shares of several style images (default: equal)", _blend)
    gram_norm: bool | str | None = option(True, "Gram normalisation: True/'chw' (C*H*W), 'hw', False (raw sums)",
                                          _gram_norm)
    rtol: float = option(1e-6, "stop when the best loss improved by less than this (relative) over 20 steps",
                         _tolerance)
    cuda_graph: bool | None = option(None, "replay each step as a CUDA graph (default: automatic)", _optional_bool)
    style_scale: float = option(1.0, "brush-stroke size: the painting's size relative to the output (default 1; "
                                     "2 = strokes twice as large, 0.5 = half)", _style_scale, flag=float)
    balance: str | None = option(None, "per-layer style weights by measurement, each layer an equal share of the "
                                       "loss or gradient at the start: loss or gradient (default: fixed weights)",
                                 _choice(BALANCE), flag=str, choices=BALANCE[1:])
    diagnostics: bool = option(False, "measure each style layer's share of the loss and gradient at the start and "
                                      "end (result.shares; about four steps' work)", _bool)
    fp32_finish: bool = option(False, "bf16/fp16 runs go on in float32 once their progress stalls on the last scale "
                                      "(yes/no, default no: slower, for the float32 optimum)", _bool, flag=yes_no)

    def __post_init__(self) -> None:
        for f in fields(self):
            f.metadata["check"](f.name, getattr(self, f.name))

    @classmethod
    def pick(cls, values: Mapping[str, Any]) -> "RunOptions":
        """The options among ``values`` (e.g. ``stylize``'s ``locals()``); those missing keep their default."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    def reported(self) -> dict[str, Any]:
        """The options as ``StylizeResult.settings`` lists them (a tensor ``init`` as "tensor")."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if isinstance(out["init"], torch.Tensor):
            out["init"] = "tensor"
        return out


def declared_defaults() -> dict[str, Any]:
    """``{option: default}`` for every declared option, in declaration order."""
    return {f.name: f.default for f in fields(RunOptions) if f.default is not MISSING}
